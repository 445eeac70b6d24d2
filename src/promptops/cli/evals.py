"""``promptops eval ...``: start evaluations, follow them with a progress bar, compare versions, gate CI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from xml.etree import ElementTree as ET

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from promptops.cli import output
from promptops.cli.client import ApiClient, CliError, path_segment
from promptops.cli.common import JsonFlag, client, exit_failure, parse_assignment, watch_job

app = typer.Typer(help="Evaluate prompt versions on datasets, compare them, gate CI on the result.")


def parse_model(raw: str) -> dict[str, Any]:
    """``provider/model`` (the model part may itself contain '/')."""
    provider, sep, model = raw.partition("/")
    if not sep or not provider or not model:
        raise typer.BadParameter(f"expected PROVIDER/MODEL, got {raw!r}", param_hint="--model")
    return {"provider": provider, "model": model}


def parse_scorer(raw: str) -> dict[str, Any]:
    """``type`` or ``type=value`` (``not-`` prefix negates), e.g. ``regex=^\\w+$``, ``not-contains=sorry``."""
    kind, sep, value = raw.partition("=")
    spec: dict[str, Any] = {}
    if kind.startswith("not-"):
        kind, spec["negate"] = kind[4:], True
    spec["type"] = kind
    if sep:
        spec["value"] = value
    return spec


def parse_provider_map(raw: list[str] | None) -> dict[str, str]:
    """``PREFIX=CONNECTION`` options (``openai=my-openai``, ``ollama:=local-ollama``) as a prefix map."""
    mapping: dict[str, str] = {}
    for item in raw or []:
        prefix, connection = parse_assignment(item, "--provider-map")
        prefix, connection = prefix.removesuffix(":"), connection.strip()
        if not prefix or ":" in prefix or not connection:
            raise typer.BadParameter(
                f"expected PREFIX=CONNECTION such as openai=my-openai, got {item!r}",
                param_hint="--provider-map",
            )
        mapping[prefix] = connection
    return mapping


def wait_for(api: ApiClient, run: dict[str, Any], *, quiet: bool) -> dict[str, Any]:
    """Poll an evaluation until it finishes, drawing a progress bar on stderr unless ``quiet``."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    return watch_job(
        api,
        f"/api/v1/evals/{path_segment(run['id'])}",
        run,
        quiet=quiet,
        columns=columns,
        total=lambda r: r["totalCells"],
        completed=lambda r: r["doneCells"],
        fields=lambda r: {"status": r["status"]},
    )


def print_summary(run: dict[str, Any], *, wide: bool = False) -> None:
    """The aggregates per (version, model) in a table that fits 80 columns (``wide``: latency p50, tokens
    and cost too), then, for labelled cases, how each compares with always answering the majority label."""
    output.echo(f"Evaluation {run['id']} {run['status']}: {run['name']}")
    if run.get("error"):
        output.error(run["error"])
    columns = ["version", "model", "passed", "pass rate", "mean", "p95 ms", "errors"]
    if wide:
        columns[5:5] = ["p50 ms"]
        columns += ["tokens", "cost $"]
    rows = []
    for g in run["summary"]:
        cells = [
            g["label"],
            g["target"],
            f"{g['passed']}/{g['completed']}",
            f"{g['passRate']:.1%}" if g["passRate"] is not None else "-",
            f"{g['meanScore']:.3f}" if g["meanScore"] is not None else "-",
            g["latencyP95Ms"],
            g["errors"],
        ]
        if wide:
            cells[5:5] = [g["latencyP50Ms"]]
            cells += [g["inputTokens"] + g["outputTokens"], f"{g['costUsd']:.6f}"]
        rows.append(cells)
    output.table(columns, rows, wide=wide)
    for g in run["summary"]:
        baselines = g.get("baselines")
        if baselines:
            output.echo(f"{g['label']} on {g['target']}: {baselines['sentence']}")


WideFlag = Annotated[bool, typer.Option("--wide", help="Every column (latency p50, tokens, cost).")]


def write_junit(api: ApiClient, run: dict[str, Any], path: Path) -> None:
    """One <testsuite> per (version, model), one <testcase> per case; failures carry the scorer reasons."""
    results = api.paginate(f"/api/v1/evals/{path_segment(run['id'])}/results", {"limit": 500})
    suites = ET.Element("testsuites", name=f"promptops eval {run['id']}")
    for group in run["summary"]:
        rows = [
            r
            for r in results
            if r["versionId"] == group["versionId"] and r["targetIndex"] == group["targetIndex"]
        ]
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"{group['label']} on {group['target']}",
            tests=str(len(rows)),
            failures=str(sum(1 for r in rows if not r["passed"] and not r["errorClass"])),
            errors=str(sum(1 for r in rows if r["errorClass"])),
            time=f"{sum(r['latencyMs'] for r in rows) / 1000:.3f}",
        )
        for r in sorted(rows, key=lambda r: r["caseKey"]):
            case = ET.SubElement(
                suite,
                "testcase",
                classname=group["label"],
                name=r["caseKey"],
                time=f"{r['latencyMs'] / 1000:.3f}",
            )
            if r["errorClass"]:
                ET.SubElement(case, "error", type=r["errorClass"], message=r["errorMessage"] or "")
            elif not r["passed"]:
                reasons = "; ".join(s.get("reason", "") for s in r["scores"] if not s.get("passed"))
                failure = ET.SubElement(case, "failure", message=reasons or f"score {r['score']:.3f}")
                failure.text = f"output: {r['output']!r}"
            ET.SubElement(case, "system-out").text = r["output"] or ""
    ET.indent(suites)
    path.write_bytes(ET.tostring(suites, encoding="utf-8", xml_declaration=True))


def _findings(result: dict[str, Any]) -> None:
    """Everything the import left out or warns about, one line each on stderr."""
    for item in result["skipped"]:
        output.warn(f"unsupported, skipped: {item['where']}: {item['message']}")
    for item in result["warnings"]:
        output.warn(f"{item['where']}: {item['message']}")


def _print_translation(result: dict[str, Any]) -> None:
    """A dry run's answer: what the import would create, the models and scorers, and what it leaves out."""
    output.echo(f"promptfoo import (dry run, nothing written): {result['description']}")
    output.table(
        ["action", "prompt", "version", "kind", "from"],
        [[p["action"], p["name"], p["version"], p["kind"], p["source"]] for p in result["prompts"]],
        title="Prompts",
    )
    ds = result["dataset"]
    output.echo(f"dataset: {ds['action']} {ds['name']} version {ds['version']} ({ds['caseCount']} cases)")
    for m in result["models"]:
        output.echo(f"model: {m['provider']}/{m['model']} (from {m['source']})")
    if not result["models"]:
        output.echo("model: each prompt's own model settings (else the local model)")
    scorers = ", ".join(s["type"] for s in result["scorers"]) or "none (per-case assertions or output only)"
    output.echo(f"run scorers: {scorers}")
    output.echo(f"skipped: {len(result['skipped'])}, warnings: {len(result['warnings'])}")
    for item in result["skipped"]:
        output.echo(f"  skipped  {item['where']}: {item['message']}")
    for item in result["warnings"]:
        output.echo(f"  warning  {item['where']}: {item['message']}")


def import_promptfoo(
    api: ApiClient, config_path: Path, prefix: str | None, options: dict[str, Any]
) -> dict[str, Any]:
    """Read a promptfoo config and the files it names, and import it on the server (one transaction)."""
    from promptops.evals.promptfoo.bundle import collect

    folder = re.sub(r"[^a-z0-9._-]+", "-", config_path.resolve().parent.name.lower()).strip("-._")
    prefix = prefix or f"promptfoo/{folder or 'config'}"
    bundle = collect(
        config_path, prefix=prefix, provider_map=options.get("providerMap"), grader=options.get("grader")
    )
    body = {
        "config": bundle.config,
        "configName": bundle.config_name,
        "files": bundle.files,
        "prefix": prefix,
        **{k: v for k, v in options.items() if v is not None},
    }
    try:
        result: dict[str, Any] = api.post("/api/v1/evals/import/promptfoo", body)
    except CliError as exc:
        # A refused import still says what it would have left out: show it with the reason.
        for item in exc.problem.get("errors") or []:
            if isinstance(item, dict) and "where" in item:
                output.error(f"{item['where']}: {item.get('message', '')}")
        _findings(
            {"skipped": exc.problem.get("skipped") or [], "warnings": exc.problem.get("warnings") or []}
        )
        raise
    return result


@app.command("run")
def run_eval(
    prompt: Annotated[
        list[str] | None,
        typer.Option(
            "--prompt", "-p", help="Prompt version: name, name@label, name@3 or ver_ id (repeatable)."
        ),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Dataset: name, name@N or dsv_ id.")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="PROVIDER/MODEL to run on (repeatable).")
    ] = None,
    scorer: Annotated[
        list[str] | None,
        typer.Option(
            "--scorer", "-s", help="Scorer TYPE or TYPE=VALUE, e.g. label, regex=^\\w+$ (repeatable)."
        ),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="Model parameter KEY=VALUE for every --model.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="A promptfoo config (promptfooconfig.yaml) to run.")
    ] = None,
    prefix: Annotated[
        str | None, typer.Option(help="Registry/dataset name prefix for what --config imports.")
    ] = None,
    provider_map: Annotated[
        list[str] | None,
        typer.Option(
            "--provider-map",
            metavar="PREFIX=CONNECTION",
            help="With --config: run promptfoo providers PREFIX:... (e.g. openai) on this PromptOps "
            "connection (repeatable).",
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=64, help="Cells run at once (default 8, or the config's).")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Only cases with this tag (repeatable).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N cases.")] = None,
    cache: Annotated[
        bool, typer.Option("--cache", help="Reuse identical model answers for an hour.")
    ] = False,
    fail_under: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Exit 1 when any version's pass rate is below this (e.g. 0.9)."),
    ] = None,
    junit: Annotated[Path | None, typer.Option(help="Write a JUnit XML report here (for CI).")] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Start the evaluation and return its id.")
    ] = False,
    grader: Annotated[
        str | None,
        typer.Option(
            metavar="PROVIDER_ID",
            help="With --config: grade llm-rubric assertions that name no provider with this promptfoo "
            "provider (e.g. openai:gpt-4.1-mini, mapped like the config's providers).",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="With --config: print what the import would create and everything it skips; write nothing.",
        ),
    ] = False,
    wide: WideFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Run prompt versions on a dataset (a background job on the server) and report the aggregates."""
    params = dict(parse_assignment(p, "--param") for p in param or [])
    models = [{**parse_model(m), "params": params} for m in model or []]
    options: dict[str, Any] = {"concurrency": concurrency, "tags": tag or [], "limit": limit}
    if cache:
        options["cacheTtlSeconds"] = 3600
    with client() as api:
        if config is not None:
            if prompt or dataset:
                raise typer.BadParameter(
                    "give --config or --prompt/--dataset, not both", param_hint="--config"
                )
            if scorer:
                raise typer.BadParameter(
                    "the config's assertions are the scorers; --scorer applies without --config",
                    param_hint="--scorer",
                )
            options.update(
                providerMap=parse_provider_map(provider_map),
                models=models or None,
                grader=grader,
                dryRun=dry_run,
            )
            result = import_promptfoo(api, config, prefix, options)
            if dry_run:
                output.print_json(result) if as_json else _print_translation(result)
                return
            _findings(result)
            run = result["evalRun"]
        else:
            if not prompt or not dataset:
                raise typer.BadParameter(
                    "--prompt and --dataset are required (or --config)", param_hint="--prompt"
                )
            for flag, given in (
                ("--provider-map", provider_map),
                ("--grader", grader),
                ("--dry-run", dry_run),
            ):
                if given:
                    raise typer.BadParameter("only applies to --config", param_hint=flag)
            body: dict[str, Any] = {"prompts": prompt, "dataset": dataset, "models": models}
            if scorer:  # none named: the server's defaults (a label match on expected outputs) apply
                body["scorers"] = [parse_scorer(s) for s in scorer]
            body.update({k: v for k, v in options.items() if v is not None})
            run = api.post("/api/v1/evals", body)
        if no_wait:
            output.print_json(run) if as_json else output.echo(run["id"])
            return
        run = wait_for(api, run, quiet=as_json)
        if junit is not None:
            write_junit(api, run, junit)
    if as_json:
        output.print_json(run)
    else:
        print_summary(run, wide=wide)
    if run["status"] != "completed":
        raise exit_failure()
    if fail_under is not None:
        low = [g for g in run["summary"] if (g["passRate"] or 0.0) < fail_under]
        for g in low:
            output.error(
                f"{g['label']} on {g['target']}: pass rate {g['passRate'] or 0:.1%} < {fail_under:.1%}"
            )
        if low:
            raise exit_failure()


@app.command("show")
def show(run_id: str, wide: WideFlag = False, as_json: JsonFlag = False) -> None:
    """An evaluation's status, progress and aggregates per version and model."""
    with client() as api:
        run = api.get(f"/api/v1/evals/{path_segment(run_id)}")
    if as_json:
        output.print_json(run)
        return
    output.echo(f"progress {run['doneCells']}/{run['totalCells']} cells")
    print_summary(run, wide=wide)


@app.command("list")
def list_evals(
    status: Annotated[
        str | None, typer.Option(help="queued, running, completed, failed or cancelled.")
    ] = None,
    prompt: Annotated[str | None, typer.Option(help="Only evaluations of this prompt.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Recent evaluations, newest first."""
    with client() as api:
        page = api.get("/api/v1/evals", status=status, prompt=prompt, limit=limit)
    output.listing(
        page,
        as_json,
        ["id", "status", "name", "cells", "created"],
        lambda r: [
            r["id"],
            r["status"],
            r["name"],
            f"{r['doneCells']}/{r['totalCells']}",
            output.short_time(r["createdAt"]),
        ],
    )


@app.command("results")
def results(
    run_id: str,
    failed: Annotated[bool, typer.Option("--failed", help="Only failing cases.")] = False,
    version: Annotated[str | None, typer.Option(help="Only this version id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Per-case results of an evaluation: output, score, pass/fail, latency."""
    params: dict[str, Any] = {"limit": limit, "versionId": version}
    if failed:
        params["passed"] = "false"
    with client() as api:
        page = api.get(f"/api/v1/evals/{path_segment(run_id)}/results", **params)
    output.listing(
        page,
        as_json,
        ["case", "version", "model", "passed", "score", "output", "ms", "error"],
        lambda r: [
            r["caseKey"],
            r["versionId"],
            r["target"],
            "yes" if r["passed"] else "no",
            f"{r['score']:.3f}",
            (r["output"] or "").strip()[:60],
            round(r["latencyMs"], 1),
            r["errorClass"],
        ],
    )


@app.command("cancel")
def cancel(run_id: str, as_json: JsonFlag = False) -> None:
    """Stop a queued or running evaluation (finished cells are kept)."""
    with client() as api:
        run = api.post(f"/api/v1/evals/{path_segment(run_id)}/cancel")
    output.print_json(run) if as_json else output.echo(
        f"Cancellation requested for {run['id']} ({run['status']})."
    )


@app.command("compare")
def compare(
    run_id: Annotated[str, typer.Argument(help="Evaluation holding side A (and B unless --against).")],
    against: Annotated[str | None, typer.Option(help="Another evaluation holding side B.")] = None,
    a: Annotated[str | None, typer.Option("--a", help="Side A version (label, ref or id).")] = None,
    b: Annotated[str | None, typer.Option("--b", help="Side B version.")] = None,
    alpha: Annotated[float, typer.Option(min=0.001, max=0.49)] = 0.05,
    show_flips: Annotated[int, typer.Option("--flips", min=0, help="How many flipped cases to list.")] = 10,
    require_better: Annotated[
        bool, typer.Option("--require-better", help="Exit 1 unless B is significantly better than A.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Paired comparison of two versions on the same cases: flips, McNemar p, bootstrap CI, plain verdict."""
    with client() as api:
        result = api.get("/api/v1/evals/compare", run=run_id, against=against, a=a, b=b, alpha=alpha)
    if as_json:
        output.print_json(result)
    else:
        output.fields(
            [
                (
                    "A",
                    f"{result['a']['label']}: pass rate {result['aPassRate']:.1%}, mean {result['aMeanScore']:.3f}",
                ),
                (
                    "B",
                    f"{result['b']['label']}: pass rate {result['bPassRate']:.1%}, mean {result['bMeanScore']:.3f}",
                ),
                ("cases", result["cases"]),
                (
                    "flips",
                    f"{result['mcnemar']['bOnly']} fixed by B, {result['mcnemar']['aOnly']} broken by B",
                ),
                ("McNemar p", f"{result['mcnemar']['pValue']:.4g} ({result['mcnemar']['method']})"),
                (
                    "score diff",
                    f"{result['scoreDiff']['points']:+.1f} points, {result['scoreDiff']['confidence']:.0%} CI "
                    f"[{result['scoreDiff']['low']:.1f}, {result['scoreDiff']['high']:.1f}]",
                ),
            ],
            title="Comparison",
        )
        output.echo(result["verdict"])
        if show_flips and result["flipped"]:
            output.table(
                ["case", "", "A output", "B output"],
                [
                    [
                        f["caseKey"],
                        f["direction"],
                        (f["aOutput"] or "").strip()[:40],
                        (f["bOutput"] or "").strip()[:40],
                    ]
                    for f in result["flipped"][:show_flips]
                ],
                title="Flipped cases",
            )
    if require_better and not (result["significant"] and result["winner"] == "B"):
        raise exit_failure()


@app.command("latest")
def latest(prompt: str, as_json: JsonFlag = False) -> None:
    """The latest completed evaluation scores of a prompt version (name@label, name@3 or ver_ id)."""
    with client() as api:
        found = api.get("/api/v1/evals/latest", prompt=prompt)
    if as_json:
        output.print_json(found)
        return
    output.echo(f"Evaluation {found['evalRunId']} on {found['dataset']}")
    print_summary(
        {"id": found["evalRunId"], "status": "completed", "name": prompt, "summary": found["groups"]}
    )
