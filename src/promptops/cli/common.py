"""Helpers shared by the command groups: the configured client, common options, value parsing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from promptops.cli import config as cfg
from promptops.cli.client import ApiClient, CliError, path_segment
from promptops.jobs.states import TERMINAL

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the server's JSON instead of tables.")]

LimitOpt = Annotated[int, typer.Option(min=1, max=200, help="Page size.")]
AllPagesFlag = Annotated[bool, typer.Option("--all", help="Follow cursors and list every match.")]

ROLES_HELP = "One of: Viewer, QAAnalyst, PromptEngineer, PromptOpsAdmin, ComplianceOfficer."


def client() -> ApiClient:
    """A client for the configured server and credentials (config file, then environment overrides)."""
    config = cfg.load_effective()
    if not config.token:
        raise CliError(
            "Not logged in",
            f"run 'promptops login --url URL --key KEY' or set {cfg.URL_ENV} and {cfg.KEY_ENV}",
            "not_logged_in",
        )
    return ApiClient(config.url or cfg.DEFAULT_URL, config.token, config.project)


def list_page(path: str, params: dict[str, Any], all_pages: bool = False) -> dict[str, Any]:
    """One page of a cursor-paginated listing as ``{"items", "nextCursor"}``; every page with ``all_pages``."""
    with client() as api:
        if all_pages:
            return {"items": api.paginate(path, params), "nextCursor": None}
        page = api.get(path, **params)
    return {"items": page["items"], "nextCursor": page.get("nextCursor")}


def prompt_path(name: str, *rest: str) -> str:
    """``/api/v1/prompts/<name>[/rest...]`` with the name escaped for the path."""
    path = f"/api/v1/prompts/{path_segment(name)}"
    for part in rest:
        path += "/" + path_segment(part)
    return path


def json_or_string(raw: str) -> Any:
    """``raw`` decoded as JSON when it parses (numbers, booleans, lists, objects), else the string itself."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_assignment(raw: str, option: str) -> tuple[str, str]:
    """Split ``key=value`` (the value may itself contain '=')."""
    key, sep, value = raw.partition("=")
    if not sep or not key.strip():
        raise typer.BadParameter(f"expected KEY=VALUE, got {raw!r}", param_hint=option)
    return key.strip(), value


def exit_failure() -> typer.Exit:
    """The exception that ends a command with status 1 after its error was printed."""
    return typer.Exit(code=1)


def parse_variables(assignments: list[str] | None, vars_file: Path | None) -> dict[str, Any]:
    """Variables from ``--vars-file`` (a JSON object) overlaid with ``--var KEY=VALUE`` options."""
    variables: dict[str, Any] = {}
    if vars_file is not None:
        try:
            loaded = json.loads(vars_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"{vars_file}: {exc}", param_hint="--vars-file")
        if not isinstance(loaded, dict):
            raise typer.BadParameter(f"{vars_file}: expected a JSON object", param_hint="--vars-file")
        variables.update(loaded)
    for raw in assignments or []:
        key, value = parse_assignment(raw, "--var")
        variables[key] = json_or_string(value)
    return variables


POLL_SECONDS = 0.5


def watch_job(
    api: ApiClient,
    path: str,
    job: dict[str, Any],
    *,
    quiet: bool,
    columns: tuple[Any, ...],
    total: Callable[[dict[str, Any]], float],
    completed: Callable[[dict[str, Any]], float],
    fields: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """Poll ``path`` until the job is in a terminal state; unless ``quiet``, a rich progress bar on stderr
    with ``columns``, fed by ``completed``/``total`` and the extra task ``fields`` the columns show."""
    from rich.progress import Progress

    from promptops.cli import output

    if quiet:
        while job["status"] not in TERMINAL:
            time.sleep(POLL_SECONDS)
            job = api.get(path)
        return job
    with Progress(*columns, console=output.console(stderr=True), transient=False) as progress:
        task = progress.add_task(str(job["id"]), total=total(job), **fields(job))
        while True:
            progress.update(task, completed=completed(job), **fields(job))
            if job["status"] in TERMINAL:
                return job
            time.sleep(POLL_SECONDS)
            job = api.get(path)
