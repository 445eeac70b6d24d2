"""Fixtures of the monitoring tests: a fake provider server per module (``fake_llm``) and the app with a
connection to it (``fapi``), for the online LLM judge."""

from tests.support.feedback_support import fake_llm_fixture, fapi_fixture

__all__ = ["fake_llm_fixture", "fapi_fixture"]
