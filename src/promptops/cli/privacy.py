"""``promptops privacy ...``: find a data subject, export everything about it (DSAR), erase it, and set and
apply the project's retention policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from promptops.cli import output
from promptops.cli.client import path_segment
from promptops.cli.common import JsonFlag, client

app = typer.Typer(help="GDPR: subject access exports, erasure, retention policies.", no_args_is_help=True)
retention_app = typer.Typer(help="How long the project keeps runs and feedback.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@app.command()
def subject(
    end_user: Annotated[
        str | None,
        typer.Option("--end-user", help="An end user as applications name them (feedback's user)."),
    ] = None,
    email: Annotated[str | None, typer.Option(help="A member's email.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the data subject id of an end user or a member (what export and erase take)."""
    if (end_user is None) == (email is None):
        raise typer.BadParameter("give exactly one of --end-user or --email", param_hint="--end-user")
    body = {"endUser": end_user} if end_user is not None else {"email": email}
    with client() as api:
        found = api.post("/api/v1/privacy/subjects/resolve", body)
    if as_json:
        output.print_json(found)
        return
    state = "erased" if found["erased"] else ("known" if found["known"] else "no data in this project")
    output.echo(f"{found['subjectId']}  ({found['kind']}, {state})")


@app.command("export")
def export_subject(
    subject_id: Annotated[str, typer.Argument(help="usr_... or eus_... (see `promptops privacy subject`).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the JSON file here (default: print it).")
    ] = None,
) -> None:
    """Export everything the project holds about one data subject as JSON (a subject access request)."""
    with client() as api:
        response = api.send("GET", f"/api/v1/privacy/subjects/{path_segment(subject_id)}/export")
    if out is None:
        output.echo(response.text)
        return
    out.write_bytes(response.content)
    output.echo(f"Wrote {out} ({len(response.content)} bytes)")


@app.command()
def erase(
    subject_id: Annotated[str, typer.Argument(help="usr_... or eus_...")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Erase a data subject: its data key is destroyed, so its personal data is unreadable everywhere."""
    if not yes:
        typer.confirm(f"Erase {subject_id}? Its personal data becomes unreadable for good", abort=True)
    with client() as api:
        erased = api.post(f"/api/v1/privacy/subjects/{path_segment(subject_id)}/erase")
    if as_json:
        output.print_json(erased)
        return
    note = " (was already erased)" if erased["alreadyErased"] else ""
    output.echo(f"Erased {erased['subjectId']}{note}; {erased['sessionsRevoked']} session(s) revoked")


def _days(value: int | None) -> str:
    return "keep" if value is None else f"{value} days"


@retention_app.command("show")
def retention_show(as_json: JsonFlag = False) -> None:
    """Show the retention policy."""
    with client() as api:
        policy = api.get("/api/v1/privacy/retention")
    if as_json:
        output.print_json(policy)
        return
    output.echo(f"runs: {_days(policy['runsDays'])}, feedback: {_days(policy['feedbackDays'])}")


@retention_app.command("set")
def retention_set(
    runs_days: Annotated[
        int | None, typer.Option("--runs-days", min=1, max=36500, help="Delete runs older.")
    ] = None,
    feedback_days: Annotated[
        int | None, typer.Option("--feedback-days", min=1, max=36500, help="Delete feedback older.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Set the retention policy (an option left out keeps that kind of data forever)."""
    with client() as api:
        policy = api.put("/api/v1/privacy/retention", {"runsDays": runs_days, "feedbackDays": feedback_days})
    if as_json:
        output.print_json(policy)
        return
    output.echo(f"Retention: runs {_days(policy['runsDays'])}, feedback {_days(policy['feedbackDays'])}")


@retention_app.command("apply")
def retention_apply(as_json: JsonFlag = False) -> None:
    """Apply the retention policy now (the server also does it every hour)."""
    with client() as api:
        applied = api.post("/api/v1/privacy/retention/apply")
    if as_json:
        output.print_json(applied)
        return
    output.echo(
        f"Deleted {applied['runsDeleted']} run(s) and {applied['feedbackDeleted']} feedback record(s)"
    )
