"""Evaluation: scorers, evaluation runs, comparison with significance."""
