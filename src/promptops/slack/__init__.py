"""The Slack face: the ``/prompt`` slash command, Events API and interactivity endpoints (HTTP mode)."""
