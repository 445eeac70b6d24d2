"""Dashboards: usage, cost, latency, error-rate, feedback and evaluation trends, aggregated on the server."""
