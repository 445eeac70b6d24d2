"""One input-validation layer: the limits every request value must respect before it reaches the database.

- text never holds NUL characters or lone surrogates (PostgreSQL and UTF-8 reject both);
- integers that reach an integer column fit a 32-bit signed column (:data:`DB_INT_MAX`);
- free-form JSON holds finite numbers within ±2^53 and nests at most :data:`MAX_JSON_DEPTH` levels;
- datetimes fall in the years 1970-9000 (after applying their offset; naive ones are taken as UTC).

:class:`promptops.schemas.ApiModel` applies :func:`json_problem` and :func:`check_datetime` to every field of
every request body; routes use the annotated types below for path and query parameters, and the middleware
rejects NUL characters anywhere in the path or query string (:func:`target_problem`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from promptops.errors import ValidationProblem

DB_INT_MAX = 2**31 - 1
JSON_INT_MAX = 2**53
MAX_JSON_DEPTH = 32
YEAR_MIN, YEAR_MAX = 1970, 9000

NUL_MESSAGE = "must not contain NUL characters"
SURROGATE_MESSAGE = "must be valid Unicode text (no lone surrogates)"


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (NUL, lone surrogate), or None."""
    if "\x00" in text:
        return NUL_MESSAGE
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    return None


def _where(path: tuple[Any, ...] | None) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    where = "".join(reversed(parts)).lstrip(".").replace("\x00", "\\0")
    where = where.encode("utf-8", "backslashreplace").decode()  # lone surrogates cannot be sent back
    return where if len(where) <= 200 else where[:200] + "..."


def json_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> tuple[str, str] | None:
    """The first value in a JSON-like ``value`` that breaks the limits: (where, why), or None.

    One iterative walk (no recursion, so any depth is safe): text as :func:`text_problem`, integers within
    ±2^53, finite floats, at most ``max_depth`` nested objects/arrays. Other Python values are left alone.
    """
    stack: list[tuple[Any, int, tuple[Any, ...] | None]] = [(value, 0, None)]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            why = text_problem(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            why = f"integers must be within ±2^53 ({JSON_INT_MAX})" if abs(item) > JSON_INT_MAX else None
        elif isinstance(item, float):
            why = None if math.isfinite(item) else "numbers must be finite (no NaN or Infinity)"
        elif isinstance(item, dict | list | tuple):
            if depth >= max_depth:
                return _where(path), f"must not nest deeper than {max_depth} levels"
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str) and (why := text_problem(key)):
                        return _where((path, key)), f"keys {why}"
                    stack.append((child, depth + 1, (path, key)))
            else:
                stack.extend((child, depth + 1, (path, i)) for i, child in enumerate(item))
            continue
        else:
            continue
        if why:
            return _where(path), why
    return None


def check_json(value: Any) -> Any:
    """Pydantic check for a value that must satisfy :func:`json_problem`."""
    found = json_problem(value)
    if found:
        where, why = found
        raise PydanticCustomError(
            "invalid_value", "{where}{why}", {"where": f"{where}: " if where else "", "why": why}
        )
    return value


def check_datetime(value: Any) -> Any:
    """Pydantic check: a datetime within the years 1970-9000 once in UTC (a naive one is taken as UTC)."""
    if isinstance(value, datetime) and not (
        YEAR_MIN <= value.year <= YEAR_MAX
        and (value.tzinfo is None or YEAR_MIN <= value.astimezone(UTC).year <= YEAR_MAX)
    ):
        raise PydanticCustomError(
            "datetime_range",
            "must be between the years {low} and {high} (UTC)",
            {"low": YEAR_MIN, "high": YEAR_MAX},
        )
    return value


def parse_db_int(text: str) -> int | None:
    """``text`` as an integer of an integer column (ASCII digits, 0..2^31-1), or None."""
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if number <= DB_INT_MAX else None


def _check_version_number(selector: str) -> None:
    if selector.isdigit() and parse_db_int(selector) is None:
        raise PydanticCustomError(
            "version_range", "version numbers must be ASCII digits from 0 to {high}", {"high": DB_INT_MAX}
        )


def check_ref(value: Any) -> Any:
    """Pydantic check for a reference (``name``, ``name@3``, ``name@label``, an id): a number fits a column."""
    if isinstance(value, str):
        why = text_problem(value)
        if why:
            raise PydanticCustomError("invalid_text", why)
        _, sep, selector = value.partition("@")
        if sep:
            _check_version_number(selector)
    return value


def check_version_ref(value: Any) -> Any:
    """:func:`check_ref` for a selector that may also be a bare version number (``3``)."""
    if isinstance(check_ref(value), str) and "@" not in value:
        _check_version_number(value)
    return value


def check_seq(value: Any) -> Any:
    """Pydantic check for a cursor that is a sequence number (a 64-bit column)."""
    if isinstance(value, str) and value and not (value.isascii() and value.isdigit() and int(value) < 2**63):
        raise PydanticCustomError(
            "invalid_cursor", "Invalid cursor: pass back the nextCursor of the previous page"
        )
    return value


DbInt = Annotated[int, Field(ge=1, le=DB_INT_MAX)]
"""A positive integer stored in an integer column (version numbers, positions)."""
Ref = Annotated[str, AfterValidator(check_ref)]
"""A prompt or dataset reference whose version number (after ``@``) fits a column."""
VersionRef = Annotated[str, AfterValidator(check_version_ref)]
"""A version selector: a number, a label, a reference or an id; a number fits a column."""
SEQ_CURSOR = AfterValidator(check_seq)
BoundedDatetime = AfterValidator(check_datetime)


def target_problem(path: str, query_string: bytes) -> ValidationProblem | None:
    """A 422 for a request whose path or query string holds a NUL character, else None."""
    if "\x00" in path:
        return _loc_problem(["path"], NUL_MESSAGE)
    if b"%00" in query_string or b"\x00" in query_string:
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name + value:
                return _loc_problem(["query", name.replace("\x00", "\\0")], NUL_MESSAGE)
        return _loc_problem(["query"], NUL_MESSAGE)
    return None


def _loc_problem(loc: list[str], message: str) -> ValidationProblem:
    detail = f"{'.'.join(loc[1:]) or loc[0]}: {message}"
    return ValidationProblem(detail, errors=[{"loc": loc, "msg": message, "type": "value_error"}])


def body_problem(cause: BaseException | None) -> ValidationProblem | None:
    """A 422 for a JSON body the framework could not parse (``cause`` of its 400), else None."""
    if isinstance(cause, UnicodeDecodeError):
        return _loc_problem(["body"], f"not valid UTF-8 (byte {cause.start})")
    if isinstance(cause, RecursionError):
        return _loc_problem(["body"], "JSON nests too deeply")
    return None
