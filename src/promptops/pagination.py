"""Cursor pagination shared by the list endpoints.

A page is fetched with ``limit + 1`` rows: the extra row only says that another page exists, and the
cursor names the last row of this page. Cursors are either opaque (URL-safe base64 of a name or a number,
:func:`encode_cursor`) or the plain id of the last row (:func:`id_cursor` checks its kind).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query
from sqlalchemy import Select, func, or_
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.errors import ValidationProblem
from promptops.ids import has_prefix
from promptops.validation import BoundedDatetime, parse_db_int, text_problem

T = TypeVar("T")

INVALID_CURSOR = "Invalid cursor: pass back the nextCursor of the previous page"

# Query parameters the list endpoints share.
PageLimit = Annotated[int, Query(ge=1, le=200, description="Page size (at most 200)")]
IdCursor = Annotated[str | None, Query(max_length=40, description="nextCursor of the previous page")]
Since = Annotated[
    datetime | None, Query(alias="from", description="From this time (inclusive)"), BoundedDatetime
]
Until = Annotated[
    datetime | None, Query(alias="to", description="Until this time (exclusive)"), BoundedDatetime
]
PromptFilter = Annotated[str | None, Query(max_length=200, description="Prompt id or name")]
VersionIdFilter = Annotated[str | None, Query(alias="versionId", max_length=40)]


def invalid_cursor() -> ValidationProblem:
    return ValidationProblem(INVALID_CURSOR, code="invalid_cursor")


def encode_cursor(value: str) -> str:
    """An opaque cursor for ``value`` (URL-safe base64 without padding)."""
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The value behind a cursor from :func:`encode_cursor`; anything else is ``invalid_cursor`` (422)."""
    try:
        value = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        value = ""
    if not value or text_problem(value):
        raise invalid_cursor()
    return value


def decode_int_cursor(cursor: str) -> int:
    """A cursor that encodes an integer (a version number, a position)."""
    number = parse_db_int(decode_cursor(cursor))
    if number is None:
        raise invalid_cursor()
    return number


def id_cursor(cursor: str, kind: str) -> str:
    """A cursor that is the id of the last row seen; it must be an id of ``kind`` (see promptops.ids)."""
    if not has_prefix(cursor, kind):
        raise invalid_cursor()
    return cursor


def filter_by_name(stmt: Select[Any], model: Any, *, prefix: str | None, query: str | None) -> Select[Any]:
    """Keep rows of a named model (``name``, ``description``) in the folder ``prefix`` and matching ``query``.

    ``prefix`` ``a/b`` (or ``a/b/``) keeps ``a/b`` itself and every name under ``a/b/``; ``query`` is a
    case-insensitive substring of the name or the description.
    """
    if prefix:
        folder = prefix if prefix.endswith("/") else prefix + "/"
        stmt = stmt.where(
            or_(model.name.startswith(folder, autoescape=True), model.name == prefix.rstrip("/"))
        )
    if query:
        # autoescape: % and _ in the query (and the escape character /) match themselves, not anything
        needle = query.lower()
        stmt = stmt.where(
            or_(
                func.lower(model.name).contains(needle, autoescape=True),
                func.lower(model.description).contains(needle, autoescape=True),
            )
        )
    return stmt


async def fetch_page(
    session: AsyncSession, stmt: Select[Any], limit: int, next_cursor: Callable[[Any], str]
) -> tuple[list[Any], str | None]:
    """Run an ordered ``stmt`` for one page: the rows and the cursor of the next page (None on the last).

    ``next_cursor`` turns the last row of this page into the cursor of the next one.
    """
    rows = list((await session.execute(stmt.limit(limit + 1))).scalars())
    return rows[:limit], next_cursor(rows[limit - 1]) if len(rows) > limit else None
