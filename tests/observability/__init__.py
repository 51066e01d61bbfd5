"""Observability: metrics scraped from real runconsumer processes, healthcheck against a real
broker and database (and without them), the probe views, traces end to end."""
