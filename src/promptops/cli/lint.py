"""``promptops lint``: lint local prompt files offline and registry prompts through the API.

Files are linted right here with :mod:`promptops.templates.lint` (it is pure), so no server is needed; their
includes cannot be checked offline and show up as info findings. Registry prompts are linted by the server
(``GET /api/v1/prompts/{name}/versions/{n}/lint``) with the project's lint settings. The command exits 1
when any finding is at or above ``--fail-on`` (default ``error``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from promptops.cli import output
from promptops.cli.client import ApiClient, CliError
from promptops.cli.common import JsonFlag, client, exit_failure, prompt_path
from promptops.cli.prompts import read_prompt_file
from promptops.registry.files import find_prompt_files
from promptops.templates import lint as linting

_SEVERITY_STYLE = {"error": "ERROR", "warning": "warning", "info": "info"}


def lint(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Prompt files (*.prompt.md) or folders searched recursively; linted offline."),
    ] = None,
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", "-p", help="A registry prompt: name, name@label or name@3 (repeatable)."),
    ] = None,
    all_prompts: Annotated[
        bool, typer.Option("--all", help="Lint the latest version of every prompt in the registry.")
    ] = False,
    fail_on: Annotated[
        str, typer.Option("--fail-on", help="Exit 1 when a finding is at or above: error, warning or info.")
    ] = "error",
    disable: Annotated[
        list[str] | None,
        typer.Option("--disable", help="Skip a rule (id or slug) when linting files (repeatable)."),
    ] = None,
    context_window: Annotated[
        int | None,
        typer.Option(min=1, help="Context window (tokens) for files whose model the catalog does not know."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Lint prompts: undeclared variables, injection risks, secrets, personal data, length and more."""
    if fail_on not in linting.SEVERITIES:
        raise typer.BadParameter("expected error, warning or info", param_hint="--fail-on")
    if not paths and not prompt and not all_prompts:
        raise typer.BadParameter("give prompt files or folders, --prompt REF or --all", param_hint="PATHS")
    try:
        config = linting.LintConfig(disabled=frozenset(disable or ()))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--disable")

    reports: list[dict[str, Any]] = []
    for path in paths or []:
        if not path.exists():
            raise CliError("No such file or folder", str(path), "file_error")
        files = find_prompt_files(path)
        if not files:
            raise CliError("No prompt files found", f"no *.prompt.md files under {path}", "no_prompt_files")
        reports.extend(_lint_file(file, config, context_window) for file in files)
    if prompt or all_prompts:
        with client() as api:
            refs = list(prompt or [])
            if all_prompts:
                refs += [
                    p["name"] for p in api.paginate("/api/v1/prompts", {"limit": 200}) if p["latestVersion"]
                ]
            reports.extend(_lint_registry(api, ref) for ref in dict.fromkeys(refs))

    failing = sum(
        1 for report in reports for f in report["findings"] if linting.at_or_above(f["severity"], fail_on)
    )
    if as_json:
        output.print_json(reports)
    else:
        _print(reports)
    if failing:
        if not as_json:
            output.error(f"{failing} finding(s) at or above {fail_on!r}")
        raise exit_failure()


def _summary(findings: list[dict[str, Any]]) -> dict[str, int]:
    return {severity: sum(f["severity"] == severity for f in findings) for severity in linting.SEVERITIES}


def _lint_file(file: Path, config: linting.LintConfig, context_window: int | None) -> dict[str, Any]:
    from promptops.registry import service as registry  # loaded on use: it pulls in the database layer
    from promptops.registry.schemas import LintIn

    report: dict[str, Any] = {"source": str(file), "name": None, "version": None}
    try:
        raw = read_prompt_file(file)
        report["name"] = raw.get("name")
        body = LintIn.model_validate(raw)
    except CliError as exc:
        return _failed(report, str(exc))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _failed(report, f"{file}: {where + ': ' if where else ''}{first.get('msg')}")
    findings = registry.lint_offline(
        body, config, context_window=context_window, output_labels=body.output_labels
    )
    report["findings"] = [f.to_dict() for f in findings]
    report["summary"] = _summary(report["findings"])
    return report


def _failed(report: dict[str, Any], detail: str) -> dict[str, Any]:
    finding = linting.LintFinding(
        rule="PL001",
        name="syntax-error",
        severity="error",
        message=f"Not a valid prompt file: {detail}",
        hint="Fix the front matter (see `promptops prompts push`).",
    )
    report["findings"] = [finding.to_dict()]
    report["summary"] = _summary(report["findings"])
    return report


def _lint_registry(api: ApiClient, ref: str) -> dict[str, Any]:
    resolved = api.get(prompt_path(ref))
    name, number = resolved["prompt"]["name"], resolved["version"]["version"]
    result = api.get(prompt_path(name, "versions", str(number), "lint"))
    return {
        "source": "registry",
        "name": name,
        "version": number,
        "findings": result["findings"],
        "summary": result["summary"],
    }


def _where(finding: dict[str, Any]) -> str:
    parts = []
    if finding.get("messageIndex") is not None:
        parts.append(f"message {finding['messageIndex']}")
    if finding.get("line") is not None:
        parts.append(f"line {finding['line']}")
    return ", ".join(parts)


def _print(reports: list[dict[str, Any]]) -> None:
    for report in reports:
        title = report["name"] or report["source"]
        if report["version"] is not None:
            title += f"@{report['version']}"
        if report["source"] != "registry":
            title += f" ({report['source']})"
        if not report["findings"]:
            output.echo(f"{title}: no findings")
            continue
        output.table(
            ["Severity", "Rule", "Where", "Message", "Fix"],
            [
                [
                    _SEVERITY_STYLE.get(f["severity"], f["severity"]),
                    f"{f['rule']} {f['name']}",
                    _where(f),
                    f["message"],
                    f.get("hint"),
                ]
                for f in report["findings"]
            ],
            title=title,
        )
    totals = _summary([f for report in reports for f in report["findings"]])
    output.echo(
        f"{len(reports)} prompt(s): {totals['error']} error(s), {totals['warning']} warning(s), "
        f"{totals['info']} info"
    )
