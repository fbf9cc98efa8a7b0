"""The operator API (``/api/v1/``): async django-ninja views over the async ORM.

app: the NinjaAPI and its error shape; auth: API keys and staff sessions; errors: ApiError;
one module per resource (events, deliveries, sources, destinations, routes), plus stats
and the Server-Sent Events stream."""
