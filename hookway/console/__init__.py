"""The operator console: server-rendered pages (Django templates, htmx vendored under
static/, no build step) to watch webhooks arrive, see what is failing and why, and
replay. It reads through the same queries as the operator API (hookway.store.browse,
hookway.store.stats) and writes through hookway.gate; staff users only (docs/console.md).
"""
