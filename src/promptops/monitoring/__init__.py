"""Production monitoring: per-version metrics over time, online evaluation and drift detection."""
