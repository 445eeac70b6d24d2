"""What conftest.py does so the same commit gives the same outcome everywhere: a derandomized Hypothesis
profile, and no PROMPTOPS_* settings leaking in from the shell that runs the tests."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st


def test_the_loaded_profile_is_derandomized_and_timing_free() -> None:
    active = settings()
    assert active.derandomize is True
    assert active.database is None  # no examples replayed from an earlier, local-only run
    assert active.deadline is None and active.print_blob is True


def draws() -> list[tuple[int, str]]:
    """Every example one property test is given, in order."""
    seen: list[tuple[int, str]] = []

    @settings(max_examples=25)
    @given(st.integers(), st.text(max_size=5))
    def prop(number: int, text: str) -> None:
        seen.append((number, text))

    prop()
    return seen


def test_a_property_sees_the_same_examples_on_every_run() -> None:
    first = draws()
    assert len(first) > 1 and len(set(first)) > 1
    assert draws() == first


def test_no_promptops_setting_leaks_in_from_the_shell() -> None:
    leaked = [n for n in os.environ if n.startswith("PROMPTOPS_") and not n.startswith("PROMPTOPS_TEST_")]
    assert leaked == []
