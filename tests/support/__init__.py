"""Helpers the tests share (an app per test, fake provider servers, a live `promptops serve`, the CLI)."""
