"""``promptops audit ...``: read the audit trail and verify its hash chain (online, or offline on a database)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from promptops.cli import output
from promptops.cli.client import CliError
from promptops.cli.common import JsonFlag, client, exit_failure

app = typer.Typer(help="Read and verify the tamper-evident audit trail.", no_args_is_help=True)

# Shown elsewhere in the row (name) or too long to read in a table (ids, hashes); --json has them all.
SUMMARY_SKIP = {"name", "deployRef", "contentHash"}


def _summary(data: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v}"
        for k, v in data.items()
        if k not in SUMMARY_SKIP and not k.endswith("Id") and v not in (None, "", [], {})
    )


@app.command("list")
def list_events(
    prompt: Annotated[str | None, typer.Option(help="Prompt name or id.")] = None,
    user: Annotated[
        str | None, typer.Option(help="Actor id or name (e.g. an email or apikey:<name>).")
    ] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Event type, e.g. LabelMoved.")] = None,
    since: Annotated[str | None, typer.Option(help="From this ISO 8601 time (inclusive).")] = None,
    until: Annotated[str | None, typer.Option(help="Until this ISO 8601 time (exclusive).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many events (newest first).")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List audit events, newest first."""
    with client() as api:
        page = api.get(
            "/api/prompt/audit",
            promptId=prompt,
            user=user,
            eventType=event_type,
            limit=limit,
            **{"from": since, "to": until},
        )
    output.listing(
        page,
        as_json,
        ["Seq", "Time", "Event", "Actor", "Prompt", "Details"],
        lambda e: [
            e["seq"],
            output.short_time(e["timestamp"]),
            e["eventType"],
            e["user"],
            (e["data"] or {}).get("name") or e["promptId"],
            _summary(e["data"] or {}),
        ],
        key="events",
        more="Older events exist; narrow the filters or raise --limit.",
    )


@app.command()
def verify(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Verify directly on this database (offline compliance check) instead of asking the server.",
        ),
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="With --database-url: only this project (id or name); default all.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Recompute the audit hash chain; exit status 1 when any event was edited, deleted or inserted."""
    if project is not None and database_url is None:
        raise typer.BadParameter(
            "--project needs --database-url (the server verifies the project of your credentials)",
            param_hint="--project",
        )
    if database_url is None:
        with client() as api:
            results = [api.get("/api/v1/audit/verify")]
        payload: Any = results[0]
    else:
        results = asyncio.run(verify_database(database_url, project))
        payload = {"ok": all(r["ok"] for r in results), "projects": results}
    if as_json:
        output.print_json(payload)
    else:
        for result in results:
            _print_result(result)
    broken = [r for r in results if not r["ok"]]
    if broken:
        count = sum(len(r["problems"]) for r in broken)
        output.error(f"Audit chain verification failed: {count} problem(s) found [audit_chain_broken]")
        raise exit_failure()


def _print_result(result: dict[str, Any]) -> None:
    label = result["projectId"] + (f" ({result['projectName']})" if result.get("projectName") else "")
    if result["ok"]:
        output.echo(
            f"OK: audit chain of project {label} is intact: {result['eventsChecked']} events verified "
            f"(last seq {result['lastSeq']})"
        )
        return
    output.echo(
        f"FAILED: audit chain of project {label}: {len(result['problems'])} problem(s) in "
        f"{result['eventsChecked']} events"
    )
    output.table(
        ["Seq", "Event id", "Kind", "Detail"],
        [[p["seq"], p["eventId"], p["kind"], p["detail"]] for p in result["problems"]],
    )


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


async def verify_database(url: str, project: str | None) -> list[dict[str, Any]]:
    """Verify the chains of every project in the database at ``url`` (or the one named) without the server."""
    # Imported here: only this offline path needs the ORM, and the rest of the CLI stays quick to start.
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from promptops.db import Database
    from promptops.governance.audit import verify_project
    from promptops.tenancy.models import Project

    normalized, shown = check_database_url(url)
    db = Database(normalized)
    try:
        async with db.transaction() as session:
            projects = list((await session.execute(select(Project).order_by(Project.created_at))).scalars())
            if project is not None:
                projects = [p for p in projects if project in (p.id, p.name)]
                if not projects:
                    raise CliError(
                        "Project not found", f"no project {project!r} in {shown}", "project_not_found"
                    )
            results = []
            for row in projects:
                result = (await verify_project(session, row.id)).to_dict()
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
