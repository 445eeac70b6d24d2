"""``promptops generate`` and ``promptops refine``: PromptOpt's seed 004 generate and refine endpoints."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from promptops.cli import config as cfg
from promptops.cli import output
from promptops.cli.client import ApiClient, CliError
from promptops.cli.common import JsonFlag
from promptops.cli.evals import parse_model, parse_scorer

# Model calls (meta-prompts, quick evaluations) can take minutes on the embedded model.
TIMEOUT_SECONDS = 900.0

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="PROVIDER/MODEL that writes and answers (default: the prompt's, else local)."
    ),
]
DatasetOpt = Annotated[
    str | None, typer.Option("--dataset", "-d", help="Dataset (name, name@N or dsv_ id) to evaluate on.")
]
ScorerOpt = Annotated[
    list[str] | None,
    typer.Option("--scorer", help="Scorer for the quick evaluation: type or type=value (repeatable)."),
]
StrategyOpt = Annotated[list[str] | None, typer.Option("--strategy", help="Strategy to use (repeatable).")]


def _client() -> ApiClient:
    config = cfg.load_effective()
    if not config.token:
        raise CliError(
            "Not logged in",
            f"run 'promptops login --url URL --key KEY' or set {cfg.URL_ENV} and {cfg.KEY_ENV}",
            "not_logged_in",
        )
    return ApiClient(config.url or cfg.DEFAULT_URL, config.token, config.project, timeout=TIMEOUT_SECONDS)


def generate(
    task: Annotated[str, typer.Option("--task", "-t", help="What the prompt must do.")],
    context: Annotated[str, typer.Option("--context", "-c", help="Background the prompt may use.")] = "",
    from_ref: Annotated[
        str | None,
        typer.Option("--from", help="Start from a registry prompt: name, name@label, name@3 or ver_ id."),
    ] = None,
    count: Annotated[
        int, typer.Option("--count", "-n", min=1, max=20, help="Candidates to make (1-20).")
    ] = 4,
    dataset: DatasetOpt = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Prompt to save drafts to (default generated/<task>).")
    ] = None,
    model: ModelOpt = None,
    strategy: StrategyOpt = None,
    scorer: ScorerOpt = None,
    variable: Annotated[
        list[str] | None, typer.Option("--variable", help="Input variable of a new prompt (repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the structural strategies.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Generate prompt candidates for a task, scored and saved as draft versions (no labels move)."""
    body: dict[str, Any] = {"task": task, "context": context, "count": count, "seed": seed}
    if from_ref:
        body["templateId"] = from_ref
    if dataset:
        body["dataset"] = dataset
    if name:
        body["name"] = name
    if model:
        body["model"] = parse_model(model)
    if strategy:
        body["strategies"] = list(strategy)
    if scorer:
        body["scorers"] = [parse_scorer(s) for s in scorer]
    if variable:
        body["variables"] = list(variable)
    with _client() as api:
        result = api.post("/api/prompt/generate", body)
    if as_json:
        output.print_json(result)
        return
    output.echo(
        f"{len(result['candidates'])} candidate(s) saved as drafts of {result['name']} ({result['scoring']})."
    )
    output.table(
        ["#", "score", "version", "version id", "strategy", "model", "eval", "lint"],
        [
            [
                i + 1,
                f"{c['score']:.3f}",
                f"v{c['version']}",
                c["versionId"],
                c["strategy"],
                c["modelVersion"],
                None if c["evalScore"] is None else f"{c['evalScore']:.3f}",
                c["lintFindings"],
            ]
            for i, c in enumerate(result["candidates"])
        ],
    )
    if result["candidates"]:
        best = result["candidates"][0]
        output.text_block(best["prompt"], title=f"best: {result['name']}@{best['version']}")
    for item in result.get("discarded") or []:
        output.warn(f"discarded {item['strategy']}: {item['reason']}")


def refine(
    ref: Annotated[str, typer.Argument(help="Prompt to refine: name, name@label, name@3 or ver_ id.")],
    note: Annotated[list[str] | None, typer.Option("--note", help="Feedback note (repeatable).")] = None,
    use_feedback: Annotated[
        bool, typer.Option("--use-feedback", help="Also use the version's recorded notes and low ratings.")
    ] = False,
    eval_run: Annotated[
        str | None, typer.Option("--eval", help="Evaluation whose failed cases to learn from (evr_ id).")
    ] = None,
    dataset: DatasetOpt = None,
    model: ModelOpt = None,
    strategy: StrategyOpt = None,
    scorer: ScorerOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Refine a prompt from feedback; saves the result as a new draft version and prints rationale and diff."""
    body: dict[str, Any] = {"prompt": ref, "feedback": "\n".join(note or []), "useFeedback": use_feedback}
    if eval_run:
        body["evalRunId"] = eval_run
    if dataset:
        body["dataset"] = dataset
    if model:
        body["model"] = parse_model(model)
    if strategy:
        body["strategies"] = list(strategy)
    if scorer:
        body["scorers"] = [parse_scorer(s) for s in scorer]
    with _client() as api:
        result = api.post("/api/prompt/refine", body)
    if as_json:
        output.print_json(result)
        return
    output.echo(
        f"Saved v{result['version']} ({result['versionId']}) refined from {result['parentId']} "
        f"with {result['strategy']}."
    )
    if result.get("scores"):
        parent, refined = result["scores"]["parent"], result["scores"]["refined"]
        output.echo(
            f"Score: {parent['score']:.3f} -> {refined['score']:.3f} "
            f"(pass rate {parent['passRate']:.2f} -> {refined['passRate']:.2f})"
        )
    output.echo("\nRationale:")
    output.echo(result["rationale"])
    output.echo("\nDiff:")
    if result["diff"]:
        output.diff(result["diff"])
    else:
        output.echo("(template unchanged)")
    config_changes = result.get("deltas", {}).get("modelConfig") or []
    for change in config_changes:
        output.echo(f"modelConfig.{change['path']}: {change.get('from')!r} -> {change.get('to')!r}")
