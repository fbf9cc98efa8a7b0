"""The Django admin: sources, destinations and routes (editable unless the config file
manages them), and events, deliveries and attempts (read-only records)."""

from hookway.admin import apikeys, config, records
from hookway.admin.base import MANAGED_NOTE

__all__ = ["MANAGED_NOTE", "apikeys", "config", "records"]
