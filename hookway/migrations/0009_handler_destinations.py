"""Destinations that are Python handlers or Celery tasks instead of URLs (docs/handlers.md).

Depends on 0006 on the branch that added it; other branches add a 0007, and the merge
puts this one after it.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hookway", "0008_list_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="attempt",
            name="error_kind",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "-"),
                    ("http_status", "http_status"),
                    ("timeout", "timeout"),
                    ("connection_refused", "connection_refused"),
                    ("dns", "dns"),
                    ("tls", "tls"),
                    ("connection_reset", "connection_reset"),
                    ("connection", "connection"),
                    ("refused_by_guard", "refused_by_guard"),
                    ("invalid_destination", "invalid_destination"),
                    ("handler_error", "handler_error"),
                    ("retry_requested", "retry_requested"),
                    ("rejected", "rejected"),
                    ("broker", "broker"),
                    ("interrupted", "interrupted"),
                    ("internal", "internal"),
                ],
                max_length=32,
            ),
        ),
        migrations.AlterField(
            model_name="destination",
            name="url",
            field=models.URLField(blank=True, default="", max_length=2000),
        ),
        migrations.AddField(
            model_name="destination",
            name="handler",
            field=models.CharField(
                blank=True,
                default="",
                help_text='A Python callable, "module:function" (docs/handlers.md); instead of a URL.',
                max_length=300,
            ),
        ),
        migrations.AddField(
            model_name="destination",
            name="celery_task",
            field=models.CharField(
                blank=True,
                default="",
                help_text='A Celery task name, e.g. "myapp.tasks.process_hook"; instead of a URL.',
                max_length=300,
            ),
        ),
        migrations.AddConstraint(
            model_name="destination",
            constraint=models.CheckConstraint(
                condition=(
                    models.Q(url__gt="", handler="", celery_task="")
                    | models.Q(url="", handler__gt="", celery_task="")
                    | models.Q(url="", handler="", celery_task__gt="")
                ),
                name="destination_one_kind",
                violation_error_message="Set exactly one of URL, handler and Celery task.",
            ),
        ),
    ]
