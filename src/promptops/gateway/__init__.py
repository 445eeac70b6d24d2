"""The capture gateway: OpenAI- and Anthropic-compatible endpoints that route to provider connections and
record every call as a run (a face, like ``cli``: see docs/architecture.md)."""
