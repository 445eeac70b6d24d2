"""PromptOpt: generate candidates, refine from feedback, and search for a better prompt automatically."""
