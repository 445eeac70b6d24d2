"""PromptOps: create, version, test, optimize, ship and govern LLM prompts."""

__version__ = "0.1.0"
