"""What a route does with an event beyond its event-name globs: a CEL ``filter``, a
``$``-operator ``match`` document, and a CEL ``transform`` of the body it sends
(docs/delivery.md, "Filters and transformations").

Plain code, no Django and no database: the config file and the API validate with it,
the store evaluates filters where it fans an event out and transforms where it claims a
delivery, and the API's test endpoint runs both on a sample.
"""
