"""Commands an operator runs on the database itself, without the server (``--database-url``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from promptops.cli.client import CliError


def check_database_url(url: str) -> tuple[str, str]:
    """The normalized async URL and a password-free form for messages; a missing SQLite file is an error."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from promptops.config import normalize_database_url

    normalized = normalize_database_url(url)
    try:
        parsed = make_url(normalized)
    except ArgumentError as exc:
        raise CliError("Invalid database URL", str(exc), "invalid_database_url")
    shown = parsed.render_as_string(hide_password=True)
    # Opening a missing SQLite file would silently create an empty database and report it as intact.
    if parsed.get_backend_name() == "sqlite" and (
        not parsed.database or parsed.database == ":memory:" or not Path(parsed.database).is_file()
    ):
        raise CliError("No such SQLite database", shown, "database_not_found")
    return normalized, shown


async def on_each_project(
    url: str,
    project: str | None,
    work: Callable[[Any, str], Awaitable[dict[str, Any]]],
    *,
    write: bool = False,
) -> list[dict[str, Any]]:
    """Run ``work(session, project_id)`` for every project of the database at ``url`` (or the one named, by id
    or name), each answer with ``projectName`` added; database problems become a readable :class:`CliError`."""
    # Imported here: only the offline paths need the ORM, and the rest of the CLI stays quick to start.
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from promptops.db import Database
    from promptops.tenancy.models import Project

    normalized, shown = check_database_url(url)
    db = Database(normalized)
    try:
        async with db.transaction(write=write) as session:
            projects = list((await session.execute(select(Project).order_by(Project.created_at))).scalars())
            if project is not None:
                projects = [p for p in projects if project in (p.id, p.name)]
                if not projects:
                    raise CliError(
                        "Project not found", f"no project {project!r} in {shown}", "project_not_found"
                    )
            results = []
            for row in projects:
                result = await work(session, row.id)
                result["projectName"] = row.name
                results.append(result)
    except SQLAlchemyError as exc:
        # The driver's own message (exc.orig) without SQLAlchemy's statement dump and help link.
        first_line = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CliError("Cannot read the database", f"{shown}: {first_line}", "database_error")
    except OSError as exc:
        raise CliError("Cannot connect to the database", f"{shown}: {exc}", "database_error")
    finally:
        await db.dispose()
    return results
