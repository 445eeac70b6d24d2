"""``promptops optimize``: search for a better prompt automatically, follow it, print the trajectory."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from promptops.cli import output
from promptops.cli.client import ApiClient, path_segment
from promptops.cli.common import JsonFlag, client, exit_failure
from promptops.cli.evals import parse_model

app = typer.Typer(
    help="Optimize a prompt on a dataset: propose candidates, score them, keep the best on held-out cases.",
    invoke_without_command=True,
)

POLL_SECONDS = 0.5
TERMINAL = {"completed", "failed", "cancelled"}


def _path(optimization_id: str) -> str:
    return f"/api/v1/optimizations/{path_segment(optimization_id)}"


def wait_for(api: ApiClient, optimization: dict[str, Any], *, quiet: bool) -> dict[str, Any]:
    """Poll until the optimization finishes; a progress bar of model calls against the budget on stderr."""
    path = _path(optimization["id"])
    if quiet:
        while optimization["status"] not in TERMINAL:
            time.sleep(POLL_SECONDS)
            optimization = api.get(path)
        return optimization
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} calls"),
        TextColumn("round {task.fields[round]} best {task.fields[best]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=output.console(stderr=True), transient=False) as progress:
        task = progress.add_task(optimization["id"], total=optimization["budget"], round=0, best="-")
        while True:
            best = optimization.get("bestTrainScore")
            progress.update(
                task,
                completed=optimization["callsUsed"],
                round=optimization["round"],
                best=f"{best:.2f}" if best is not None else "-",
            )
            if optimization["status"] in TERMINAL:
                return optimization
            time.sleep(POLL_SECONDS)
            optimization = api.get(path)


def _score(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


def print_report(optimization: dict[str, Any]) -> None:
    """The trajectory table, then the result: the winner's version and the held-out improvement."""
    spec = optimization["spec"]
    output.echo(
        f"Optimization {optimization['id']} {optimization['status']}: {spec['promptName']}@{spec['version']} "
        f"on {spec['dataset']['name']}@{spec['dataset']['version']} "
        f"({spec['trainCases']} training / {spec['valCases']} validation cases), "
        f"{optimization['callsUsed']}/{optimization['budget']} model calls"
    )
    output.table(
        ["round", "strategy", "status", "train score", "val score", "calls", "tokens", "candidate"],
        [
            [
                row["round"],
                row["strategy"],
                row["status"],
                _score(row["trainScore"]),
                _score(row["valScore"]),
                row["calls"],
                row["tokens"],
                row["candidateId"],
            ]
            for row in optimization["trajectory"]
        ],
        title="Trajectory",
    )
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
            f"Winner: {spec['promptName']}@{winner['version']} ({winner['versionId']}, {winner['strategy']}): "
            f"validation {_score(baseline['valScore'])} -> {_score(winner['valScore'])}, "
            f"{report['improvementPoints']:+.1f} points on the held-out split"
        )
    promotion = report.get("promotion")
    if promotion:
        if promotion.get("promoted"):
            output.echo(f"Label {promotion['label']!r} now points at the winner.")
        else:
            output.warn(f"Label {promotion['label']!r} not moved: {promotion.get('detail')}")


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
        print_report(finished)
    if finished["status"] != "completed":
        raise exit_failure()


@app.command("show")
def show(optimization_id: str, as_json: JsonFlag = False) -> None:
    """An optimization's progress, trajectory and result."""
    with client() as api:
        found = api.get(_path(optimization_id))
    if as_json:
        output.print_json(found)
        return
    print_report(found)


@app.command("cancel")
def cancel(optimization_id: str, as_json: JsonFlag = False) -> None:
    """Stop a running optimization (scored candidates are kept, no version is saved)."""
    with client() as api:
        found = api.post(f"{_path(optimization_id)}/cancel")
    output.print_json(found) if as_json else output.echo(f"{found['id']} {found['status']}")
