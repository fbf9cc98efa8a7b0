"""A minimal Django project: the plain-Django peers of Hookway's ingest benchmark.

One model (the same columns as Hookway's Event), three views doing what a Django
developer would write by hand: verify the HMAC, parse the JSON, then insert the row
(sync view, or async view through ``sync_to_async``) or hand the payload to Celery.
Settings come from the environment (INGEST_DB, INGEST_SECRET, INGEST_CELERY_BROKER).
"""
