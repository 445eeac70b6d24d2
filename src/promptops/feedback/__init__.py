"""Feedback from people and automation, and the annotation queue QA analysts work through."""
