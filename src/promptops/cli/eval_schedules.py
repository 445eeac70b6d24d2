"""``promptops eval schedule``: scheduled regression evaluations of a prompt label (cron + pinned dataset)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from promptops.cli import output
from promptops.cli.client import path_segment
from promptops.cli.common import JsonFlag, LimitOpt, client

app = typer.Typer(
    help="Regression schedules: re-run a pinned dataset against PROMPT@LABEL on a cron schedule.",
    no_args_is_help=True,
)


def _path(schedule_id: str, *rest: str) -> str:
    return "/".join([f"/api/v1/eval-schedules/{path_segment(schedule_id)}", *rest])


def _show(item: dict[str, Any]) -> None:
    output.fields(
        [
            ("Id", item["id"]),
            ("Prompt", f"{item['promptName']}@{item['label']}"),
            ("Cron", f"{item['cron']} ({item['timezone']}): {item['description']}"),
            ("Dataset", f"{item['dataset']['name']}@{item['dataset']['version']}"),
            ("Scorers", ", ".join(s["type"] for s in item["scorers"])),
            ("Models", ", ".join(f"{m['provider']}/{m['model']}" for m in item["models"]) or "the version's"),
            ("Enabled", item["enabled"]),
            ("Next run", output.short_time(item["nextRunAt"])),
            ("Last run", output.short_time(item["lastRunAt"])),
            ("Last status", item["lastStatus"]),
            ("Baseline run", item["baselineEvalRunId"]),
        ],
        title=item["name"],
    )


def _print(item: dict[str, Any], as_json: bool, message: str) -> None:
    if as_json:
        output.print_json(item)
        return
    output.echo(message)
    _show(item)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Schedule name")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="Prompt name or prm_ id")],
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="Dataset (latest version is pinned), name@N or dsv_ id")
    ],
    cron: Annotated[str, typer.Option(help="Five-field cron expression, e.g. '0 3 * * *'")],
    label: Annotated[str, typer.Option("--label", "-l")] = "production",
    timezone: Annotated[str, typer.Option("--tz", help="IANA time zone of the cron expression")] = "UTC",
    scorer: Annotated[
        list[str] | None, typer.Option("--scorer", "-s", help="Scorer type or JSON spec (repeatable)")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="PROVIDER/MODEL (repeatable)")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the comparison")] = 0.05,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it switched off")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a regression schedule on PROMPT@LABEL."""
    body: dict[str, Any] = {
        "name": name,
        "prompt": prompt,
        "label": label,
        "cron": cron,
        "timezone": timezone,
        "dataset": dataset,
        "alpha": alpha,
        "enabled": not disabled,
    }
    if scorer:
        body["scorers"] = [json.loads(s) if s.strip().startswith("{") else {"type": s} for s in scorer]
    if model:
        targets = []
        for m in model:
            provider, sep, name_ = m.partition("/")
            if not sep or not provider or not name_:
                raise typer.BadParameter(f"expected PROVIDER/MODEL, got {m!r}", param_hint="--model")
            targets.append({"provider": provider, "model": name_})
        body["models"] = targets
    with client() as api:
        item = api.post("/api/v1/eval-schedules", body)
    _print(item, as_json, f"Created regression schedule {item['id']}.")


@app.command("list")
def list_schedules(
    prompt: Annotated[str | None, typer.Option(help="Prompt name or id")] = None,
    limit: LimitOpt = 50,
    as_json: JsonFlag = False,
) -> None:
    """Regression schedules, newest first."""
    with client() as api:
        page = api.get("/api/v1/eval-schedules", prompt=prompt, limit=limit)
    output.listing(
        page,
        as_json,
        ["id", "name", "prompt", "cron", "next run", "last status", "enabled"],
        lambda s: [
            s["id"],
            s["name"],
            f"{s['promptName']}@{s['label']}",
            f"{s['cron']} {s['timezone']}",
            output.short_time(s["nextRunAt"]),
            s["lastStatus"],
            s["enabled"],
        ],
    )


@app.command("show")
def show(schedule_id: Annotated[str, typer.Argument(help="evs_ id")], as_json: JsonFlag = False) -> None:
    """One regression schedule."""
    with client() as api:
        item = api.get(_path(schedule_id))
    if as_json:
        output.print_json(item)
        return
    _show(item)


@app.command("update")
def update(
    schedule_id: Annotated[str, typer.Argument(help="evs_ id")],
    cron: Annotated[str | None, typer.Option(help="New cron expression")] = None,
    timezone: Annotated[str | None, typer.Option("--tz")] = None,
    enable: Annotated[bool | None, typer.Option("--enable/--disable")] = None,
    alpha: Annotated[float | None, typer.Option()] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change the timing or switch a schedule on or off."""
    body = {
        k: v
        for k, v in (("cron", cron), ("timezone", timezone), ("enabled", enable), ("alpha", alpha))
        if v is not None
    }
    with client() as api:
        item = api.patch(_path(schedule_id), body)
    _print(item, as_json, f"Updated regression schedule {item['id']}.")


@app.command("run")
def run(schedule_id: Annotated[str, typer.Argument(help="evs_ id")], as_json: JsonFlag = False) -> None:
    """Make the schedule due now (the scheduler fires it within its next round)."""
    with client() as api:
        item = api.post(_path(schedule_id, "run"))
    _print(item, as_json, f"Schedule {item['id']} is due now.")


@app.command("history")
def history(
    schedule_id: Annotated[str, typer.Argument(help="evs_ id")],
    status: Annotated[str | None, typer.Option(help="running | baseline | pass | regressed | failed")] = None,
    limit: LimitOpt = 50,
    as_json: JsonFlag = False,
) -> None:
    """The schedule's runs, newest first, with the verdict of each comparison."""
    with client() as api:
        page = api.get(_path(schedule_id, "runs"), status=status, limit=limit)
    output.listing(
        page,
        as_json,
        ["id", "status", "version", "pass rate", "eval run", "verdict", "scheduled for"],
        lambda h: [
            h["id"],
            h["status"],
            h["version"],
            h["passRate"],
            h["evalRunId"],
            (h["comparison"] or {}).get("verdict") or h["error"],
            output.short_time(h["scheduledFor"]),
        ],
    )


@app.command("delete")
def delete(schedule_id: Annotated[str, typer.Argument(help="evs_ id")]) -> None:
    """Remove a schedule and its history (its evaluation runs stay)."""
    with client() as api:
        api.delete(_path(schedule_id))
    output.echo(f"Deleted regression schedule {schedule_id}.")
