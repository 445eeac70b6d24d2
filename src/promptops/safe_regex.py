"""Regular expressions written by users, run on RE2: time linear in the text, memory bounded.

Python's ``re`` backtracks, so a pattern such as ``^(a+)+$`` takes exponential time on a short text and, run
in the server's event loop, stalls every other request. RE2 (``google-re2``) never backtracks; in exchange
it has no backreferences and no lookaround, and a pattern that needs them is refused with a message saying
so. Every pattern that comes from a user goes through :func:`compile_user_pattern`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import re2

MAX_PATTERN_CHARS = 1000
MAX_PROGRAM_BYTES = 4 << 20  # RE2's max_mem: compiled program and DFA cache of one pattern
FLAGS = "ims"  # i ignore case, m ^ and $ at line breaks, s dot matches a line break
RE2_SYNTAX = (
    "RE2 syntax is required (patterns run in time linear in the text, so backreferences such as \\1 and "
    "lookaround such as (?=...), (?!...), (?<=...) are not available)"
)


class PatternError(ValueError):
    """A pattern that is too long, has unknown flags, or is not valid RE2."""


@dataclass(frozen=True)
class Found:
    start: int
    text: str


class UserPattern:
    """A compiled user pattern; ``search`` finds the first match anywhere in a text."""

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled

    def search(self, text: str) -> Found | None:
        match = self._compiled.search(text)
        if match is None:
            return None
        return Found(int(match.start()), str(match.group(0)))

    def fullmatch_groups(self, text: str) -> tuple[str, ...] | None:
        """The numbered groups when the whole text matches (a group that took no part is ``""``)."""
        match = self._compiled.fullmatch(text)
        if match is None:
            return None
        return tuple(str(group or "") for group in match.groups())


@functools.lru_cache(maxsize=256)
def compile_user_pattern(pattern: str, flags: str = "") -> UserPattern:
    """Compile ``pattern`` with the ``flags`` letters of :data:`FLAGS`; raises :class:`PatternError`."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"the regular expression is longer than {MAX_PATTERN_CHARS} characters")
    unknown = sorted(set(flags) - set(FLAGS))
    if unknown:
        raise PatternError(
            f"unknown regular expression flag(s) {', '.join(unknown)}: use i (ignore case), m (multi-line) "
            "or s (dot matches newline); RE2 has no verbose mode (x)"
        )
    inline = "".join(letter for letter in FLAGS if letter in flags)
    try:
        return _compile(f"(?{inline}){pattern}" if inline else pattern)
    except PatternError as exc:
        raise PatternError(f"invalid regular expression: {exc}; {RE2_SYNTAX}") from None


def compile_built_pattern(source: str) -> UserPattern | None:
    """A pattern that code built from user text (escaped literals, groups), or None when RE2 cannot compile
    it, e.g. because it needs more than :data:`MAX_PROGRAM_BYTES`."""
    try:
        return _compile(source)
    except PatternError:
        return None


def _compile(source: str) -> UserPattern:
    options = re2.Options()
    options.max_mem = MAX_PROGRAM_BYTES
    options.log_errors = False
    try:
        return UserPattern(re2.compile(source, options))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        raise PatternError(
            reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        ) from None
