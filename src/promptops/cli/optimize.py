"""``promptops optimize``: search for a better prompt automatically, follow it, print the trajectory."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

from promptops.cli import output
from promptops.cli.client import ApiClient, path_segment
from promptops.cli.common import JsonFlag, client, exit_failure, watch_job
from promptops.cli.evals import parse_model

app = typer.Typer(
    help="Optimize a prompt on a dataset: propose candidates, score them, keep the best on held-out cases.",
    invoke_without_command=True,
)


def _path(optimization_id: str) -> str:
    return f"/api/v1/optimizations/{path_segment(optimization_id)}"


def progress_line(optimization: dict[str, Any]) -> str:
    """``calls 120/300 · round 2 · best train 0.625 (start 0.100) · validation start 0.125``."""
    report = optimization.get("report") or {}
    parts = [f"calls {optimization['callsUsed']}/{optimization['budget']}", f"round {optimization['round']}"]
    start = report.get("baseline") or {}
    best = optimization.get("bestTrainScore")
    if best is None:
        best = start.get("trainScore")
    if best is not None:
        text = f"best train {best:.3f}"
        if start.get("trainScore") is not None:
            text += f" (start {start['trainScore']:.3f})"
        parts.append(text)
    if start.get("valScore") is not None:
        parts.append(f"validation start {start['valScore']:.3f}")
    return " · ".join(parts)


def wait_for(api: ApiClient, optimization: dict[str, Any], *, quiet: bool) -> dict[str, Any]:
    """Poll until the optimization finishes; on stderr a progress line: calls used against the budget, the
    round, the best training score against the start, the start's validation score and the elapsed time."""
    return watch_job(
        api,
        _path(optimization["id"]),
        optimization,
        quiet=quiet,
        columns=(BarColumn(bar_width=12), TextColumn("{task.fields[line]}"), TimeElapsedColumn()),
        total=lambda o: o["budget"],
        completed=lambda o: o["callsUsed"],
        fields=lambda o: {"line": progress_line(o)},
    )


def _score(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


def _short(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def print_report(optimization: dict[str, Any], *, wide: bool = False) -> None:
    """The trajectory table (fits 80 columns; ``wide`` adds tokens and candidate ids), then the result: the
    winner's version, the held-out gain with its interval and test, and the trivial baselines."""
    spec = optimization["spec"]
    output.echo(
        f"Optimization {optimization['id']} {optimization['status']}: {spec['promptName']}@{spec['version']} "
        f"on {spec['dataset']['name']}@{spec['dataset']['version']} "
        f"({spec['trainCases']} training / {spec['valCases']} validation cases), "
        f"{optimization['callsUsed']}/{optimization['budget']} model calls"
    )
    columns = ["rnd", "strategy", "status", "screen", "train", "val", "calls"]
    if wide:
        columns += ["tokens", "candidate"]
    rows = []
    for row in optimization["trajectory"]:
        cells = [
            row["round"],
            row["strategy"],
            row["status"],
            _short(row.get("screenScore")),
            _short(row["trainScore"]),
            _short(row["valScore"]),
            row["calls"],
        ]
        if wide:
            cells += [row["tokens"], row["candidateId"]]
        rows.append(cells)
    output.table(columns, rows, title="Trajectory", wide=wide)
    report = optimization["report"]
    if optimization.get("error"):
        output.error(optimization["error"])
    if optimization["status"] != "completed":
        return
    baseline, winner = report["baseline"], report["winner"]
    output.echo(f"Stopped: {report.get('stopReason')}")
    if report.get("keptBaseline"):
        output.echo(
            f"No candidate beat the starting version on the validation split "
            f"({_score(baseline['valScore'])}); no version saved."
        )
    else:
        output.echo(
            f"Winner: {spec['promptName']}@{winner['version']} ({winner['strategy']}): "
            f"validation {_score(baseline['valScore'])} -> {_score(winner['valScore'])}"
        )
    if report.get("summary"):
        output.echo(report["summary"])
    promotion = report.get("promotion")
    if promotion:
        if promotion.get("promoted"):
            output.echo(f"Label {promotion['label']!r} now points at the winner.")
        else:
            output.warn(f"Label {promotion['label']!r} not moved: {promotion.get('detail')}")


WideFlag = Annotated[bool, typer.Option("--wide", help="Every column (tokens, candidate ids).")]


@app.callback()
def optimize(
    ctx: typer.Context,
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="Starting version: name@label, name@3 or ver_ id.")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Dataset: name, name@N or dsv_ id.")
    ] = None,
    budget: Annotated[int, typer.Option(min=10, max=5000, help="Model calls to spend at most.")] = 300,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="PROVIDER/MODEL to optimize for (default: the prompt's)."),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the split and of the proposals.")] = 0,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=10, help="Parents kept per round.")] = 3,
    train_fraction: Annotated[
        float, typer.Option(min=0.1, max=0.9, help="Share of cases for training.")
    ] = 0.5,
    proposer: Annotated[
        str, typer.Option(help="auto, deterministic, llm or mixed (who proposes candidates).")
    ] = "auto",
    promote: Annotated[
        str | None, typer.Option("--promote", help="Move this label to the winner if it beats the start.")
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Start the optimization and print its id.")
    ] = False,
    wide: WideFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Start an optimization (a background job on the server), follow it, print the trajectory and winner."""
    if ctx.invoked_subcommand is not None:
        return
    if not prompt or not dataset:
        raise typer.BadParameter("--prompt and --dataset are required", param_hint="--prompt")
    body: dict[str, Any] = {
        "prompt": prompt,
        "dataset": dataset,
        "budget": budget,
        "seed": seed,
        "topK": top_k,
        "trainFraction": train_fraction,
        "proposer": {"mode": proposer},
    }
    if model:
        body["model"] = parse_model(model)
    if promote:
        body["promoteLabel"] = promote
    with client() as api:
        started = api.post("/api/v1/optimizations", body)
        if no_wait:
            output.print_json(started) if as_json else output.echo(started["id"])
            return
        finished = wait_for(api, started, quiet=as_json)
    if as_json:
        output.print_json(finished)
    else:
        print_report(finished, wide=wide)
    if finished["status"] != "completed":
        raise exit_failure()


@app.command("show")
def show(optimization_id: str, wide: WideFlag = False, as_json: JsonFlag = False) -> None:
    """An optimization's progress, trajectory and result."""
    with client() as api:
        found = api.get(_path(optimization_id))
    if as_json:
        output.print_json(found)
        return
    print_report(found, wide=wide)


@app.command("cancel")
def cancel(optimization_id: str, as_json: JsonFlag = False) -> None:
    """Stop a running optimization (scored candidates are kept, no version is saved)."""
    with client() as api:
        found = api.post(f"{_path(optimization_id)}/cancel")
    output.print_json(found) if as_json else output.echo(f"{found['id']} {found['status']}")
