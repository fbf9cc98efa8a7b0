"""Prometheus metrics: what Hookway counts as it works (hookway.metrics.registry), what
it reads from the database when scraped (hookway.metrics.exposition), who may scrape
(hookway.metrics.access), and where: ``GET /metrics`` on the web server
(hookway.metrics.views) and, for a standalone dispatcher on another machine, its own
small endpoint (hookway.metrics.server). docs/operations.md, "Metrics"."""
