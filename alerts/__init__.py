"""Alert lifecycle, routing, escalation and signed webhook delivery (see the alerts issue)."""
