"""A minimal Django project whose only job is django-tasks-db's ``db_worker`` delivering
webhooks: the peer for bench/delivery.py (what a Django developer writes with Django's
own task framework instead of Hookway)."""
