"""The Django admin: sources, destinations and routes (editable unless the config file
manages them), and events, deliveries and attempts (read-only records)."""

from django.contrib import admin

from hookway.admin import apikeys, config, records
from hookway.admin.base import MANAGED_NOTE

admin.site.site_header = "Hookway"
admin.site.site_title = "Hookway admin"
admin.site.index_title = "Sources, destinations and what was received and delivered"

__all__ = ["MANAGED_NOTE", "apikeys", "config", "records"]
