"""Alerts: rules evaluated on a schedule, deduplicated alerts with history, notification channels."""
