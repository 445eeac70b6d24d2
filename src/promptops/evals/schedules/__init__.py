"""Scheduled regression evaluations: a cron schedule per prompt label that re-runs a pinned dataset."""
