"""``promptops run`` (call a model with a prompt), ``providers``, ``models`` and ``runs``."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from promptops.cli import output
from promptops.cli.client import ApiClient, CliError, path_segment
from promptops.cli.common import (
    JsonFlag,
    client,
    exit_failure,
    json_or_string,
    parse_assignment,
    parse_variables,
)
from promptops.cli.offline import on_each_project

providers_app = typer.Typer(help="Provider connections (admins).", no_args_is_help=True)
models_app = typer.Typer(help="The model catalog and prices.", no_args_is_help=True)
runs_app = typer.Typer(help="Recorded model calls.", no_args_is_help=True)

# How long `promptops run` waits for its answers. The server gives up on a busy local model sooner
# (PROMPTOPS_LOCAL_QUEUE_TIMEOUT_SECONDS, 900 s), so its own clear error arrives before this limit.
RUN_TIMEOUT_ENV = "PROMPTOPS_RUN_TIMEOUT"
DEFAULT_RUN_TIMEOUT = 1200.0
# A streamed run whose local model has not produced a token after this long is queued behind other calls.
BUSY_NOTICE_SECONDS = 2.0
BUSY_NOTICE = "waiting for the local model (busy)…"
LOCAL_CONNECTION = "local"

ModelOpt = Annotated[
    list[str] | None,
    typer.Option("--model", "-m", help="provider/model, e.g. local/gemma-3-270m (repeat to compare models)."),
]


def parse_target(raw: str, params: dict[str, Any]) -> dict[str, Any]:
    provider, sep, model = raw.partition("/")
    if not sep or not provider or not model:
        raise typer.BadParameter(f"expected PROVIDER/MODEL, got {raw!r}", param_hint="--model")
    return {"provider": provider, "model": model, "params": params}


def _summary(result: dict[str, Any]) -> str:
    usage = result.get("usage") or {}
    tokens = f"{usage.get('inputTokens', 0)} in / {usage.get('outputTokens', 0)} out"
    if usage.get("estimated"):
        tokens += " (estimated)"
    parts = [
        f"{result['provider']}/{result['model']}",
        tokens,
        f"${result['costUsd']:.6f}",
        f"{result['latencyMs']:.0f} ms",
    ]
    if result.get("ttftMs") is not None:
        parts.append(f"first token {result['ttftMs']:.0f} ms")
    if result.get("cached"):
        parts.append("cached")
    if result.get("fallbackFrom"):
        parts.append(f"fallback from {result['fallbackFrom']}")
    if result.get("truncated"):
        limit = (result.get("params") or {}).get("max_tokens")
        parts.append(f"cut at max_tokens={limit}" if limit is not None else "cut at the output limit")
    parts.append(result["runId"])
    return " · ".join(parts)


def run(
    ref: Annotated[str, typer.Argument(help="name, name@label or name@3")],
    var: Annotated[
        list[str] | None, typer.Option("--var", help="KEY=VALUE (JSON values are parsed).")
    ] = None,
    vars_file: Annotated[Path | None, typer.Option("--vars-file", help="A JSON object of variables.")] = None,
    model: ModelOpt = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="Model parameter KEY=VALUE, e.g. temperature=0.2.")
    ] = None,
    stream: Annotated[bool, typer.Option("--stream", help="Print tokens as they arrive.")] = False,
    cache: Annotated[
        int | None, typer.Option("--cache", help="Use the response cache with this TTL in seconds.")
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=1,
            envvar=RUN_TIMEOUT_ENV,
            help="Seconds to wait for the answers, including time queued behind other calls to the local model.",
        ),
    ] = DEFAULT_RUN_TIMEOUT,
    as_json: JsonFlag = False,
) -> None:
    """Render a prompt and call its model (default: the version's modelConfig, else the local model).

    A busy local model is waited for (up to --timeout); with --stream a notice says so after a few seconds.
    """
    params = dict(parse_assignment(p, "--param") for p in param or [])
    body: dict[str, Any] = {
        "prompt": ref,
        "variables": parse_variables(var, vars_file),
        "models": [parse_target(m, {}) for m in model or []],
        "stream": stream and not as_json,
    }
    if params:
        # over every model's params, the prompt's own model included
        body["params"] = {k: json_or_string(v) for k, v in params.items()}
    if cache:
        body["cache"] = {"ttlSeconds": cache}
    with client() as api:
        if body["stream"]:
            _run_streaming(api, body)
            return
        try:
            result = api.post("/api/v1/playground/run", body, timeout=timeout)
        except CliError as exc:
            if exc.code != "timeout":
                raise
            raise CliError(
                f"No answer within {timeout:g} s",
                f"the model is still busy or generating; wait longer with --timeout SECONDS or {RUN_TIMEOUT_ENV}",
                "timeout",
            )
    if as_json:
        output.print_json(result)
        return
    failed = False
    for item in result["results"]:
        if len(result["results"]) > 1:
            output.echo(f"--- {item['provider']}/{item['model']}")
        if item["status"] == "ok":
            typer.echo(item["text"] or "")
        else:
            failed = True
            _show_problem(item["error"])
        output.echo(_summary(item))
    if failed:
        raise exit_failure()


def _run_streaming(api: ApiClient, body: dict[str, Any]) -> None:
    several = len(body["models"]) > 1
    failed = False
    # Shown once when a local model has said nothing BUSY_NOTICE_SECONDS after the server accepted the run.
    notice = threading.Timer(BUSY_NOTICE_SECONDS, _busy_notice)
    notice.daemon = True
    local: set[int] = set()
    try:
        for event, data in api.stream_events("/api/v1/playground/run", body):
            if event == "start":
                local = {m["index"] for m in data["models"] if m["provider"] == LOCAL_CONNECTION}
                if local:
                    notice.start()
            elif data.get("index") in local or event == "error":
                notice.cancel()
            failed = _show_event(event, data, several) or failed
    finally:
        notice.cancel()
    if failed:
        raise exit_failure()


def _busy_notice() -> None:
    typer.echo(BUSY_NOTICE, err=True)


def _show_event(event: str, data: Any, several: bool) -> bool:
    """Print one streamed event; True when it reports a failure."""
    if event == "delta":
        prefix = f"[{data['index']}] " if several else ""
        typer.echo(prefix + data["text"], nl=False)
    elif event == "result":
        typer.echo("")
        if data["status"] != "ok":
            _show_problem(data["error"])
        output.echo(_summary(data))
        return bool(data["status"] != "ok")
    elif event == "error":
        # The run failed after the stream started (the headers were sent already): the problem comes in-band.
        _show_problem(data)
        return True
    return False


def _show_problem(problem: dict[str, Any]) -> None:
    output.error(str(CliError(str(problem.get("title")), problem.get("detail"), problem.get("code"))))


# --- providers ----------------------------------------------------------------------------------------------


def _connection_rows(items: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            c["name"],
            c["type"],
            c.get("baseUrl") or "",
            "yes" if c["hasApiKey"] else "no",
            ", ".join(c.get("allowedModels") or []),
            c["maxConcurrency"],
            "built-in" if c.get("builtIn") else "",
        ]
        for c in items
    ]


@providers_app.command("list")
def providers_list(as_json: JsonFlag = False) -> None:
    """List provider connections (API keys are never shown)."""
    with client() as api:
        items = api.get("/api/v1/providers")
    _show_connections(items, as_json, single=False)


def _show_connections(items: list[dict[str, Any]], as_json: bool, *, single: bool = True) -> None:
    if as_json:
        output.print_json(items[0] if single else items)
        return
    output.table(
        ["name", "type", "base URL", "key", "allowed models", "concurrency", ""], _connection_rows(items)
    )


def _connection_body(
    base_url: str | None,
    api_key: str | None,
    api_version: str | None,
    allowed_model: list[str] | None,
    max_concurrency: int | None,
    timeout: float | None,
    retries: int | None,
    option: list[str] | None,
    default_param: list[str] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "baseUrl": base_url,
        "apiKey": api_key,
        "apiVersion": api_version,
        "allowedModels": allowed_model,
        "maxConcurrency": max_concurrency,
        "timeoutSeconds": timeout,
        "maxRetries": retries,
    }
    if option:
        body["options"] = {k: json_or_string(v) for k, v in (parse_assignment(o, "--option") for o in option)}
    if default_param:
        body["defaultParams"] = {
            k: json_or_string(v) for k, v in (parse_assignment(o, "--default-param") for o in default_param)
        }
    return {k: v for k, v in body.items() if v is not None}


BaseUrl = Annotated[str | None, typer.Option("--base-url", help="Endpoint, e.g. https://api.openai.com/v1.")]
ApiKeyOpt = Annotated[
    bool,
    typer.Option("--api-key", help="Prompt for the API key (hidden input; or set PROMPTOPS_PROVIDER_KEY)."),
]
ApiVersion = Annotated[str | None, typer.Option("--api-version", help="Azure OpenAI api-version.")]
AllowedModel = Annotated[list[str] | None, typer.Option("--allowed-model", help="Restrict to these models.")]
Concurrency = Annotated[
    int | None, typer.Option("--max-concurrency", min=1, help="Concurrent calls at most.")
]
Timeout = Annotated[float | None, typer.Option("--timeout", help="Seconds per call.")]
Retries = Annotated[int | None, typer.Option("--max-retries", min=0, help="Retries on 429/5xx/timeouts.")]
Option = Annotated[
    list[str] | None, typer.Option("--option", help="Adapter option KEY=VALUE, e.g. api=completions.")
]
DefaultParam = Annotated[
    list[str] | None, typer.Option("--default-param", help="Default model parameter KEY=VALUE.")
]


def _read_key(ask: bool) -> str | None:
    import os

    from_env = os.environ.get("PROMPTOPS_PROVIDER_KEY")
    if from_env:
        return from_env
    if ask:
        return str(typer.prompt("API key", hide_input=True))
    return None


@providers_app.command("create")
def providers_create(
    name: str,
    type_: Annotated[str, typer.Option("--type", help="openai | azure_openai | anthropic | huggingface")],
    base_url: BaseUrl = None,
    api_key: ApiKeyOpt = False,
    api_version: ApiVersion = None,
    allowed_model: AllowedModel = None,
    max_concurrency: Concurrency = None,
    timeout: Timeout = None,
    max_retries: Retries = None,
    option: Option = None,
    default_param: DefaultParam = None,
    as_json: JsonFlag = False,
) -> None:
    """Add a provider connection; the key is sent once and stored encrypted."""
    body = _connection_body(
        base_url,
        _read_key(api_key),
        api_version,
        allowed_model,
        max_concurrency,
        timeout,
        max_retries,
        option,
        default_param,
    )
    with client() as api:
        created = api.post("/api/v1/providers", {"name": name, "type": type_, **body})
    _show_connections([created], as_json)


@providers_app.command("update")
def providers_update(
    name: str,
    base_url: BaseUrl = None,
    api_key: ApiKeyOpt = False,
    api_version: ApiVersion = None,
    allowed_model: AllowedModel = None,
    max_concurrency: Concurrency = None,
    timeout: Timeout = None,
    max_retries: Retries = None,
    option: Option = None,
    default_param: DefaultParam = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a provider connection (only the options given)."""
    body = _connection_body(
        base_url,
        _read_key(api_key),
        api_version,
        allowed_model,
        max_concurrency,
        timeout,
        max_retries,
        option,
        default_param,
    )
    if not body:
        raise CliError("Nothing to change", "give at least one option", "usage")
    with client() as api:
        updated = api.patch(f"/api/v1/providers/{path_segment(name)}", body)
    _show_connections([updated], as_json)


@providers_app.command("delete")
def providers_delete(name: str) -> None:
    """Remove a provider connection."""
    with client() as api:
        api.delete(f"/api/v1/providers/{path_segment(name)}")
    output.echo(f"Deleted provider connection {name}")


# --- models and runs ----------------------------------------------------------------------------------------


@models_app.command("list")
def models_list(as_json: JsonFlag = False) -> None:
    """Known models with price per 1M tokens and context window (project overrides applied)."""
    with client() as api:
        items = api.get("/api/v1/models")
    if as_json:
        output.print_json(items)
        return
    output.table(
        ["provider", "model", "$ in / 1M", "$ out / 1M", "context", "source"],
        [
            [m["provider"], m["model"], m["inputPer1M"], m["outputPer1M"], m["contextWindow"], m["source"]]
            for m in items
        ],
    )


@models_app.command("set-price")
def models_set_price(
    provider: str,
    model: str,
    input_per_1m: float,
    output_per_1m: float,
    context_window: Annotated[int | None, typer.Option("--context-window")] = None,
) -> None:
    """Override a model's price (USD per 1M input and output tokens) for this project."""
    with client() as api:
        api.request(
            "PUT",
            "/api/v1/models/prices",
            json={
                "provider": provider,
                "model": model,
                "inputPer1M": input_per_1m,
                "outputPer1M": output_per_1m,
                "contextWindow": context_window,
            },
        )
    output.echo(f"Price of {provider}/{model} set")


@runs_app.command("list")
def runs_list(
    prompt: Annotated[str | None, typer.Option(help="Prompt name or id.")] = None,
    model: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option(help="ok | error")] = None,
    source: Annotated[str | None, typer.Option(help="playground | eval | gateway | sdk | experiment")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Recent model calls, newest first."""
    with client() as api:
        page = api.get("/api/v1/runs", prompt=prompt, model=model, status=status, source=source, limit=limit)
    if as_json:
        output.print_json(page)
        return
    output.table(
        ["run", "when", "model", "status", "tokens in/out", "cost $", "latency ms", "source"],
        [
            [
                r["id"],
                output.short_time(r["createdAt"]),
                f"{r['provider']}/{r['model']}",
                r["status"],
                f"{r['inputTokens']}/{r['outputTokens']}",
                f"{r['costUsd']:.6f}",
                f"{r['latencyMs']:.0f}",
                r["source"],
            ]
            for r in page["items"]
        ],
    )


@runs_app.command("show")
def runs_show(run_id: str, as_json: JsonFlag = False) -> None:
    """One run with its input and output."""
    with client() as api:
        item = api.get(f"/api/v1/runs/{path_segment(run_id)}")
    if as_json:
        output.print_json(item)
        return
    output.fields(
        [
            (k, v if not isinstance(v, dict | list) else json.dumps(v))
            for k, v in item.items()
            if k not in ("input", "output")
        ],
        title=run_id,
    )
    output.text_block(json.dumps(item["input"], indent=2), title="input")
    output.text_block(item.get("output") or "", title="output")


@runs_app.command("rebuild-rollup")
def runs_rebuild_rollup(
    database_url: Annotated[
        str,
        typer.Option("--database-url", help="The database to repair (the server's PROMPTOPS_DATABASE_URL)."),
    ],
    project: Annotated[
        str | None, typer.Option(help="Only this project (id or name); default every project.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Recompute the dashboards' run rollup from the runs themselves (offline, on the database).

    For runs written without their rollup: an instance of an older release still serving during a rolling
    upgrade, or a bulk load that bypassed the server. Each project is rebuilt in one transaction.
    """
    from promptops.runs import rollup

    async def rebuild(session: Any, project_id: str) -> dict[str, Any]:
        return {"projectId": project_id, "runs": await rollup.rebuild(session, project_id)}

    results = asyncio.run(on_each_project(database_url, project, rebuild, write=True))
    if as_json:
        output.print_json({"projects": results})
        return
    for result in results:
        output.echo(f"Rebuilt the rollup of project {result['projectName']} from {result['runs']} run(s)")
