"""The HTTP API (FastAPI): enrolment, recipients, subscriptions, keys, alerts, ingest and the console."""
