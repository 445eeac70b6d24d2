"""Fixtures of the feedback tests: a fake provider server per module (``fake_llm``) and the app with a
connection to it (``fapi``)."""

from tests.support.feedback_support import fake_llm_fixture, fapi_fixture

__all__ = ["fake_llm_fixture", "fapi_fixture"]
