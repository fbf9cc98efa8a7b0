from django.db import models


class Event(models.Model):
    """The same columns as hookway.models.Event (without the foreign key)."""

    id = models.CharField(primary_key=True, max_length=32)
    source_id = models.IntegerField()
    event_name = models.CharField(max_length=255, blank=True, db_index=True)
    delivery_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    content_type = models.CharField(max_length=255, blank=True)
    headers = models.JSONField(default=dict)
    body = models.BinaryField()
    received_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.id
