"""Recovering variables from a rendered prompt runs on RE2: a template of many placeholders against a text
that does not match answers at once (Python's backtracking ``re`` took minutes on 400 characters), and a
variable used twice must capture the same text each time."""

from __future__ import annotations

import pytest

from promptops.datasets.recover import compile_template, match


def recovered(template: str, text: str) -> dict[str, str] | None:
    pattern = compile_template(template)
    assert pattern is not None
    return match(pattern, text)


def test_a_non_matching_text_fails_in_linear_time() -> None:
    assert recovered("{{a}} {{b}} {{c}} {{d}} {{e}}!", " " * 200_000) is None
    assert recovered("{{a}} {{b}} {{c}} {{d}} {{e}}!", " " * 100_000 + "!") == dict.fromkeys("abcd", "") | {
        "e": " " * (100_000 - 4)
    }


@pytest.mark.parametrize(
    ("template", "text", "expected"),
    [
        ("Hi {{a}}, {{b}}. Bye {{a}}!", "Hi Ann, Bob, Cy. Bye Ann!", {"a": "Ann", "b": "Bob, Cy"}),
        ("Hi {{a}}, {{b}}. Bye {{a}}!", "Hi Ann, Bob. Bye Bo!", None),  # the repeat differs
        ("é {{a}} \\d+ $ (x) [{{b}}]\n* .", "é 1\n2 \\d+ $ (x) [\t]\n* .", {"a": "1\n2", "b": "\t"}),
        ("Review: {{ review }}\nSentiment:", "Review: ok\nSentiment:", {"review": "ok"}),
        ("Review: {{ review }}\nSentiment:", "Review: ok\nMood:", None),
    ],
)
def test_literals_match_exactly_and_placeholders_capture(
    template: str, text: str, expected: dict[str, str] | None
) -> None:
    assert recovered(template, text) == expected
