"""``promptops audit ...``: read the audit trail and verify its hash chain (online, or offline on a database)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from promptops.cli import output
from promptops.cli.common import JsonFlag, client, exit_failure
from promptops.cli.offline import on_each_project

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


async def verify_database(url: str, project: str | None) -> list[dict[str, Any]]:
    """Verify the chains of every project in the database at ``url`` (or the one named) without the server."""
    from promptops.governance.audit import verify_project

    async def verify(session: Any, project_id: str) -> dict[str, Any]:
        return (await verify_project(session, project_id)).to_dict()

    return await on_each_project(url, project, verify)
