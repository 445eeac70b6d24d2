"""PromptOpt's seed 004 contract flows: ``POST /api/prompt/generate`` and ``POST /api/prompt/refine``."""
