"""``promptops monitor``: per-version production metrics, one metric, drift checks and online evaluation."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from promptops.cli import output
from promptops.cli.client import path_segment
from promptops.cli.common import JsonFlag, client, json_or_string

app = typer.Typer(
    help="Monitor prompts in production: metrics, drift and online evaluation.", no_args_is_help=True
)
online_app = typer.Typer(help="Online evaluation: score a share of production runs.", no_args_is_help=True)
app.add_typer(online_app, name="online")

LabelOpt = Annotated[
    str,
    typer.Option("--label", "-l", help="Label whose serving versions are monitored; '*' = every version."),
]
FromOpt = Annotated[str | None, typer.Option("--from", help="Start (ISO 8601); default 7 days ago.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="End (ISO 8601); default now.")]
METRICS = "volume, error_rate, latency_p50_ms, latency_p95_ms, tokens, cost_usd, feedback_mean, online_eval_pass_rate"


def _path(prompt: str, *rest: str) -> str:
    return "/".join([f"/api/v1/monitoring/prompts/{path_segment(prompt)}", *rest])


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if value else "0"
    return str(value)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _stats_row(s: dict[str, Any]) -> list[Any]:
    return [
        s["runs"],
        _rate(s["errorRate"]),
        _num(s["latencyP50Ms"], 0),
        _num(s["latencyP95Ms"], 0),
        s["tokens"],
        f"${s['costUsd']:.4f}",
        _num(s["feedbackMean"], 2),
        _rate(s["onlineEvalPassRate"]),
    ]


STATS_HEADERS = ["runs", "errors", "p50 ms", "p95 ms", "tokens", "cost", "feedback", "pass rate"]


@app.command("show")
def show(
    prompt: Annotated[str, typer.Argument(help="Prompt name or prm_ id.")],
    label: LabelOpt = "production",
    since: FromOpt = None,
    until: ToOpt = None,
    bucket: Annotated[str, typer.Option(help="hour | day")] = "day",
    as_json: JsonFlag = False,
) -> None:
    """Volume, errors, latency p50/p95, tokens, cost, feedback mean and online pass rate per bucket, for each
    version that served LABEL in the range."""
    params = {"label": label, "from": since, "to": until, "bucket": bucket}
    with client() as api:
        body = api.get(_path(prompt), **params)
    if as_json:
        output.print_json(body)
        return
    title = f"{body['promptName']}@{body['label'] or '*'}"
    output.echo(f"{title}: {output.short_time(body['from'])} to {output.short_time(body['to'])} by {bucket}")
    numbers = {v["versionId"]: v["version"] for v in body["versions"]}
    output.table(
        ["version", *STATS_HEADERS],
        [[f"v{v['version']}", *_stats_row(v["totals"])] for v in body["versions"]]
        + [["all", *_stats_row(body["totals"])]],
    )
    rows = [
        [output.short_time(p["bucketStart"]), f"v{numbers.get(p['versionId'])}", *_stats_row(p)]
        for p in body["points"]
    ]
    if rows:
        output.table(["bucket", "version", *STATS_HEADERS], rows)


@app.command("metric")
def metric(
    prompt: Annotated[str, typer.Argument(help="Prompt name or prm_ id.")],
    name: Annotated[str, typer.Argument(help=f"One of: {METRICS}.")],
    label: LabelOpt = "production",
    window: Annotated[int, typer.Option("--window", "-w", help="Trailing window in minutes.", min=1)] = 60,
    as_json: JsonFlag = False,
) -> None:
    """One metric of PROMPT@LABEL over the trailing window."""
    with client() as api:
        body = api.get(_path(prompt, "metrics", name), label=label, windowMinutes=window)
    if as_json:
        output.print_json(body)
        return
    output.echo(f"{body['metric']} = {_num(body['value'], 6)} ({body['samples']} samples, last {window} min)")


@app.command("drift")
def drift(
    prompt: Annotated[str, typer.Argument(help="Prompt name or prm_ id.")],
    label: LabelOpt = "production",
    window: Annotated[int, typer.Option("--window", "-w", help="Current window in minutes.", min=1)] = 24
    * 60,
    baseline: Annotated[
        int, typer.Option("--baseline", "-b", help="Baseline window (before it) in minutes.", min=1)
    ] = 7 * 24 * 60,
    alpha: Annotated[float, typer.Option(help="Significance level of every test.")] = 0.01,
    as_json: JsonFlag = False,
) -> None:
    """Compare the current window with the baseline before it; exits 1 when something drifted."""
    with client() as api:
        body = api.get(
            _path(prompt, "drift"), label=label, windowMinutes=window, baselineMinutes=baseline, alpha=alpha
        )
    if as_json:
        output.print_json(body)
    else:
        verdict = "DRIFTED" if body["drifted"] else "no drift"
        output.echo(
            f"{body['promptName']}@{body['label'] or '*'}: {verdict} "
            f"(current {body['current']['runs']} runs, baseline {body['baseline']['runs']} runs, alpha {body['alpha']})"
        )
        output.table(
            ["signal", "drifted", "statistic", "threshold", "detail"],
            [
                [s["name"], "yes" if s["drifted"] else "", s["statistic"], s["threshold"], s["detail"]]
                for s in body["signals"]
            ],
        )
        if body["skipped"]:
            output.table(["skipped", "why"], [[s["name"], s["reason"]] for s in body["skipped"]])
        if body["runIds"]:
            output.echo(f"{len(body['runIds'])} runs to review, e.g. {', '.join(body['runIds'][:5])}")
    if body["drifted"]:
        raise typer.Exit(1)


# --- online evaluation --------------------------------------------------------------------------------------------

CONFIGS = "/api/v1/monitoring/online-evals/configs"


def _scorer(raw: str) -> dict[str, Any]:
    """``TYPE[=VALUE]``, or a JSON object for a full scorer spec."""
    text = raw.strip()
    if text.startswith("{"):
        value = json_or_string(text)
        if not isinstance(value, dict):
            raise typer.BadParameter(f"not a JSON object: {raw!r}", param_hint="--scorer")
        return value
    kind, sep, value = text.partition("=")
    if not kind:
        raise typer.BadParameter(
            f"expected TYPE[=VALUE] or a JSON object, got {raw!r}", param_hint="--scorer"
        )
    return {"type": kind, **({"value": json_or_string(value)} if sep else {})}


def _config_row(c: dict[str, Any]) -> list[Any]:
    scope = c["promptName"] or "(project default)"
    if c["label"]:
        scope += f"@{c['label']}"
    return [
        c["id"],
        scope,
        f"{c['sampleRate']:.0%}" if c["sampleRate"] * 100 == int(c["sampleRate"] * 100) else c["sampleRate"],
        ", ".join(str(s.get("type")) for s in c["scorers"]),
        "yes" if c["enabled"] else "no",
    ]


@online_app.command("set")
def set_config(
    scorer: Annotated[
        list[str],
        typer.Option(
            "--scorer", "-s", help="TYPE[=VALUE] (e.g. max-length=200) or a JSON scorer spec; repeatable."
        ),
    ],
    rate: Annotated[float, typer.Option("--rate", "-r", help="Share of matching runs scored, 0-1.")],
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="Prompt name; none = project default.")
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", "-l", help="Only versions serving this label.")
    ] = None,
    pass_threshold: Annotated[
        float, typer.Option("--pass-threshold", help="Weighted score to pass, 0-1.")
    ] = 1.0,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", help="gateway | sdk | playground | experiment; repeatable."),
    ] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Save it switched off.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create or replace the online-evaluation config of PROMPT[@LABEL] (or the project default)."""
    body: dict[str, Any] = {
        "sampleRate": rate,
        "scorers": [_scorer(s) for s in scorer],
        "passThreshold": pass_threshold,
        "enabled": not disabled,
    }
    if prompt:
        body["prompt"] = prompt
    if label:
        body["label"] = label
    if source:
        body["sources"] = source
    with client() as api:
        item = api.put(CONFIGS, body)
    if as_json:
        output.print_json(item)
        return
    output.echo(f"Saved online-evaluation config {item['id']}.")
    output.table(["id", "scope", "rate", "scorers", "enabled"], [_config_row(item)])


@online_app.command("list")
def list_configs(as_json: JsonFlag = False) -> None:
    """The project's online-evaluation configs."""
    with client() as api:
        body = api.get(CONFIGS)
    if as_json:
        output.print_json(body)
        return
    output.table(["id", "scope", "rate", "scorers", "enabled"], [_config_row(c) for c in body["items"]])


@online_app.command("delete")
def delete_config(config_id: Annotated[str, typer.Argument(help="oec_ id")]) -> None:
    """Delete a config (its pending samples too; scored ones stay in the charts)."""
    with client() as api:
        api.delete(f"{CONFIGS}/{path_segment(config_id)}")
    output.echo(f"Deleted online-evaluation config {config_id}.")


@online_app.command("samples")
def samples(
    prompt: Annotated[str | None, typer.Option("--prompt", "-p")] = None,
    status: Annotated[str | None, typer.Option(help="pending | done | failed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Sampled runs and their scores, newest first."""
    with client() as api:
        page = api.get("/api/v1/monitoring/online-evals/samples", prompt=prompt, status=status, limit=limit)
    output.listing(
        page,
        as_json,
        ["id", "run", "status", "score", "passed", "run at"],
        lambda s: [
            s["id"],
            s["runId"],
            s["status"],
            _num(s["score"]),
            "" if s["passed"] is None else ("yes" if s["passed"] else "no"),
            output.short_time(s["runCreatedAt"]),
        ],
    )
