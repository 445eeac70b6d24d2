"""``promptops experiments``: create (A/B or bandit), list, show, start, pause, resume, stop, ship, reallocate
and read live experiments."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from promptops.cli import output
from promptops.cli.client import path_segment
from promptops.cli.common import JsonFlag, client

app = typer.Typer(help="Live A/B experiments on a prompt label.", no_args_is_help=True)

ARM_RE = re.compile(
    r"^(?:(?P<name>[a-z][a-z0-9_-]*)=)?(?P<version>ver_[a-z0-9]+|\d+)(?::(?P<weight>[0-9.]+))?(?:@(?P<model>.+))?$"
)
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the audit log).")]


def parse_arm(raw: str) -> dict[str, Any]:
    """``[NAME=]VERSION[:WEIGHT][@MODEL]``: e.g. ``1``, ``b=2:3``, ``big=1@gpt-4o``, ``ver_...``."""
    found = ARM_RE.match(raw.strip())
    if found is None:
        raise typer.BadParameter(f"expected [NAME=]VERSION[:WEIGHT][@MODEL], got {raw!r}", param_hint="--arm")
    arm: dict[str, Any] = {}
    if found["name"]:
        arm["name"] = found["name"]
    version = found["version"]
    if version.startswith("ver_"):
        arm["versionId"] = version
    else:
        arm["version"] = int(version)
    if found["weight"]:
        try:
            arm["weight"] = float(found["weight"])
        except ValueError:
            raise typer.BadParameter(f"invalid weight in {raw!r}", param_hint="--arm")
    if found["model"]:
        arm["model"] = found["model"]
    return arm


def parse_metric(raw: str) -> dict[str, Any]:
    """``NAME[:KIND[:DIRECTION]]``, e.g. ``signup``, ``revenue:continuous``, ``refund:conversion:decrease``."""
    parts = raw.split(":")
    if not 1 <= len(parts) <= 3 or not parts[0]:
        raise typer.BadParameter(f"expected NAME[:KIND[:DIRECTION]], got {raw!r}", param_hint="--metric")
    metric: dict[str, Any] = {"name": parts[0]}
    if len(parts) > 1:
        metric["kind"] = parts[1]
    if len(parts) > 2:
        metric["direction"] = parts[2]
    return metric


def _path(experiment_id: str, *rest: str) -> str:
    return "/".join([f"/api/v1/experiments/{path_segment(experiment_id)}", *rest])


def _show(item: dict[str, Any]) -> None:
    output.fields(
        [
            ("Id", item["id"]),
            ("Name", item["name"]),
            ("Prompt", f"{item['promptName']}@{item['label']}"),
            ("Status", item["status"]),
            ("Mode", item.get("mode", "ab")),
            (
                "Bandit",
                (
                    f"metric {b['metric']}, every {b['intervalSeconds']} s, floor {b['floor']:g}"
                    f", next {output.short_time(b['nextAllocationAt']) or '-'}"
                )
                if (b := item.get("bandit"))
                else None,
            ),
            ("Alpha", item["alpha"]),
            (
                "Metrics",
                ", ".join(
                    f"{m['name']} ({m['kind']}{', guardrail' if m['guardrail'] else ''})"
                    for m in item["metrics"]
                ),
            ),
            ("Shipped arm", item["shippedArm"]),
            ("Started", output.short_time(item["startedAt"])),
            ("Ended", output.short_time(item["endedAt"])),
        ],
        title=item["name"],
    )
    output.table(
        ["arm", "version", "model", "share", "paused"],
        [
            [
                a["name"] + (" (control)" if a["control"] else ""),
                a["version"],
                a["model"],
                f"{a['share']:.0%}",
                a["pausedReason"] or ("yes" if a["paused"] else ""),
            ]
            for a in item["arms"]
        ],
    )


def _print(item: dict[str, Any], as_json: bool, message: str) -> None:
    if as_json:
        output.print_json(item)
        return
    output.echo(message)
    _show(item)


@app.command("create")
def create(
    prompt: Annotated[str, typer.Argument(help="Prompt name or prm_ id.")],
    arm: Annotated[
        list[str],
        typer.Option(
            "--arm",
            "-a",
            help="[NAME=]VERSION[:WEIGHT][@MODEL], 2-10 times; the first is the control. E.g. 1, b=2:3, big=1@gpt-4o.",
        ),
    ],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Experiment name (default: PROMPT@LABEL test).")
    ] = None,
    label: Annotated[
        str, typer.Option("--label", "-l", help="The label whose traffic is split.")
    ] = "production",
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric", "-m", help="NAME[:conversion|continuous[:increase|decrease]]; the first is primary."
        ),
    ] = None,
    alpha: Annotated[float, typer.Option(help="False-positive rate of the sequential test.")] = 0.05,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    start: Annotated[bool, typer.Option("--start", help="Start it right away.")] = False,
    bandit: Annotated[
        bool, typer.Option("--bandit", help="Thompson sampling: new units go to the arms likely best.")
    ] = False,
    bandit_metric: Annotated[
        str | None,
        typer.Option("--bandit-metric", help="The metric the bandit optimises (default: primary)."),
    ] = None,
    interval: Annotated[
        int | None, typer.Option("--interval", help="Bandit: recompute the allocation every N seconds (60+).")
    ] = None,
    floor: Annotated[
        float | None, typer.Option("--floor", help="Bandit: least share each live arm keeps (0-0.2).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a draft experiment on PROMPT's LABEL (guardrails on errors, latency and cost are always added)."""
    body: dict[str, Any] = {
        "name": name or f"{prompt}@{label} test",
        "prompt": prompt,
        "label": label,
        "arms": [parse_arm(a) for a in arm],
        "alpha": alpha,
        "description": description,
    }
    settings = {"metric": bandit_metric, "intervalSeconds": interval, "floor": floor}
    if bandit or any(v is not None for v in settings.values()):
        body["mode"] = "bandit"
        body["bandit"] = {k: v for k, v in settings.items() if v is not None}
    if metric:
        body["metrics"] = [parse_metric(m) for m in metric]
    with client() as api:
        item = api.post("/api/v1/experiments", body)
        if start:
            item = api.post(_path(item["id"], "start"))
    _print(item, as_json, f"Created experiment {item['id']} ({item['status']}).")


@app.command("list")
def list_experiments(
    prompt: Annotated[str | None, typer.Option(help="Prompt name or id.")] = None,
    status: Annotated[str | None, typer.Option(help="draft | running | paused | stopped | shipped")] = None,
    label: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Experiments, newest first."""
    with client() as api:
        page = api.get("/api/v1/experiments", prompt=prompt, status=status, label=label, limit=limit)
    output.listing(
        page,
        as_json,
        ["id", "name", "prompt", "status", "arms", "created"],
        lambda e: [
            e["id"],
            e["name"],
            f"{e['promptName']}@{e['label']}",
            e["status"],
            ", ".join(f"{a['name']}=v{a['version']}" for a in e["arms"]),
            output.short_time(e["createdAt"]),
        ],
    )


@app.command("show")
def show(experiment_id: Annotated[str, typer.Argument(help="exp_ id")], as_json: JsonFlag = False) -> None:
    """One experiment."""
    with client() as api:
        item = api.get(_path(experiment_id))
    if as_json:
        output.print_json(item)
        return
    _show(item)


def _action(experiment_id: str, action: str, reason: str, as_json: bool) -> None:
    with client() as api:
        item = api.post(_path(experiment_id, action), {"reason": reason} if action != "start" else None)
    _print(item, as_json, f"Experiment {item['id']} is {item['status']}.")


@app.command("start")
def start_command(
    experiment_id: Annotated[str, typer.Argument(help="exp_ id")], as_json: JsonFlag = False
) -> None:
    """Start splitting the label's traffic (resolves with a unit get the unit's arm)."""
    _action(experiment_id, "start", "", as_json)


@app.command("pause")
def pause(
    experiment_id: Annotated[str, typer.Argument(help="exp_ id")],
    reason: ReasonOpt = "",
    as_json: JsonFlag = False,
) -> None:
    """Pause: the label serves its own version until resumed."""
    _action(experiment_id, "pause", reason, as_json)


@app.command("resume")
def resume(
    experiment_id: Annotated[str, typer.Argument(help="exp_ id")],
    reason: ReasonOpt = "",
    as_json: JsonFlag = False,
) -> None:
    """Resume a paused experiment (units keep their arms)."""
    _action(experiment_id, "resume", reason, as_json)


@app.command("stop")
def stop(
    experiment_id: Annotated[str, typer.Argument(help="exp_ id")],
    reason: ReasonOpt = "",
    as_json: JsonFlag = False,
) -> None:
    """End the experiment without shipping (the label keeps its version)."""
    _action(experiment_id, "stop", reason, as_json)


@app.command("ship")
def ship(
    experiment_id: Annotated[str, typer.Argument(help="exp_ id")],
    arm: Annotated[str, typer.Argument(help="The arm to ship, e.g. b")],
    reason: ReasonOpt = "",
    as_json: JsonFlag = False,
) -> None:
    """Move the label to ARM's version (a deployment for production) and end the experiment."""
    with client() as api:
        item = api.post(_path(experiment_id, "ship"), {"arm": arm, "reason": reason})
    if item.get("pendingApproval"):
        _print(
            item,
            as_json,
            f"{item['promptName']}@{item['label']} needs approval: request {item['pendingApproval']} was made; "
            "ship again once it is approved.",
        )
        return
    _print(item, as_json, f"Shipped arm {arm}: {item['promptName']}@{item['label']} now serves its version.")


@app.command("reallocate")
def reallocate(
    experiment_id: Annotated[str, typer.Argument(help="exp_ id of a bandit")], as_json: JsonFlag = False
) -> None:
    """Recompute a bandit's allocation now from the outcomes so far (it also runs on its schedule)."""
    with client() as api:
        found = api.post(_path(experiment_id, "allocation"))
    if as_json:
        output.print_json(found)
        return
    allocation = found["allocation"]
    output.echo(
        f"Allocation {allocation['seq']} of {experiment_id}: "
        + ", ".join(f"{a['name']} {a['share']:.1%}" for a in allocation["arms"])
    )


def _num(value: float | None, digits: int = 4) -> str | None:
    return None if value is None else f"{value:.{digits}g}"


def _interval(low: float | None, high: float | None) -> str | None:
    return None if low is None or high is None else f"[{_num(low)}, {_num(high)}]"


@app.command("results")
def results(experiment_id: Annotated[str, typer.Argument(help="exp_ id")], as_json: JsonFlag = False) -> None:
    """Per-arm means with intervals, differences against the control with the always-valid test, SRM check."""
    with client() as api:
        found = api.get(_path(experiment_id, "results"))
    if as_json:
        output.print_json(found)
        return
    srm = found["sampleRatio"]
    output.fields(
        [
            ("Experiment", found["experimentId"]),
            ("Status", found["status"]),
            ("Test", f"{found['test']}, alpha {found['alpha']}"),
            ("Exposures", ", ".join(f"{a['name']} {a['exposures']}" for a in found["arms"])),
            (
                "Sample ratio",
                ("MISMATCH" if srm["mismatch"] else "ok")
                + (f" (p={_num(srm['pValue'], 3)})" if srm["pValue"] is not None else ""),
            ),
        ]
    )
    for metric in found["metrics"]:
        comparisons = {c["arm"]: c for c in metric["comparisons"]}
        rows = []
        for arm in metric["arms"]:
            c = comparisons.get(arm["arm"])
            rows.append(
                [
                    arm["arm"],
                    arm["n"],
                    _num(arm["mean"]),
                    _interval(arm["ciLow"], arm["ciHigh"]),
                    _num(c["difference"]) if c else "control",
                    _interval(c["sequenceLow"], c["sequenceHigh"]) if c else None,
                    _num(c["pValue"], 3) if c else None,
                    ("better" if c["better"] else "worse") if c and c["significant"] else ("" if c else None),
                ]
            )
        title = f"{metric['name']} ({metric['kind']}, {metric['direction']} is better{', guardrail' if metric['guardrail'] else ''})"
        output.table(
            ["arm", "n", "mean", "95% CI", "difference", "always-valid CI", "p", "significant"],
            rows,
            title=title,
        )
    bandit = found.get("bandit")
    if bandit:
        output.fields(
            [
                ("Bandit metric", f"{bandit['metric']} ({bandit['kind']}, {bandit['direction']} is better)"),
                ("Best arm", bandit["bestArm"]),
                ("Regret", f"{_num(bandit['regret'])} ({_num(bandit['regretPerUnit'])} per unit)"),
            ]
        )
        history = bandit["allocation"][-20:]
        names = [a["name"] for a in history[-1]["arms"]] if history else []
        output.table(
            ["#", "at", "reason", "units", "regret", *names],
            [
                [
                    row["seq"],
                    output.short_time(row["computedAt"]),
                    row["reason"],
                    row["exposures"],
                    _num(row["regret"]),
                    *[f"{a['share']:.1%}" for a in row["arms"]],
                ]
                for row in history
            ],
            title="Allocation over time (latest 20)",
        )
    for violation in found["guardrailViolations"]:
        output.warn(
            f"guardrail: arm {violation['arm']} is worse on {violation['metric']} (p={_num(violation['pValue'], 3)})"
        )
