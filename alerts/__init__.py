"""Alert lifecycle, routing, escalation and signed webhook delivery: the router (docs/ALERTS.md)."""
