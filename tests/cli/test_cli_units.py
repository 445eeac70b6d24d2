"""The CLI's own logic without a server: parsing, config file, HTTP error mapping, ``serve``."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer

from promptops.cli import config as cfg
from promptops.cli import output
from promptops.cli.client import ApiClient, CliError
from promptops.cli.common import json_or_string
from promptops.cli.optimize import print_report, progress_line
from promptops.cli.prompts import parse_variable
from tests.support.cli_support import Cli


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("who", {"name": "who"}),
        ("age:integer", {"name": "age", "type": "integer"}),
        ("age:integer=30", {"name": "age", "type": "integer", "default": 30, "required": False}),
        ("team=tier1", {"name": "team", "default": "tier1", "required": False}),
        ("code:string=42", {"name": "code", "type": "string", "default": "42", "required": False}),
        ("tags:array=[1, 2]", {"name": "tags", "type": "array", "default": [1, 2], "required": False}),
        ("flag:boolean=true", {"name": "flag", "type": "boolean", "default": True, "required": False}),
        ("eq=a=b", {"name": "eq", "default": "a=b", "required": False}),
    ],
)
def test_variable_declarations(spec: str, expected: dict[str, Any]) -> None:
    assert parse_variable(spec) == expected


def test_variable_declaration_needs_a_name() -> None:
    with pytest.raises(typer.BadParameter):
        parse_variable(":string=x")


def test_values_are_json_when_they_parse() -> None:
    assert json_or_string("3") == 3
    assert json_or_string("2.5") == 2.5
    assert json_or_string("true") is True
    assert json_or_string('["a", 1]') == ["a", 1]
    assert json_or_string("hello") == "hello"
    assert json_or_string("") == ""


# --- config file ------------------------------------------------------------------------------------------------


def test_config_file_is_private_and_logout_keeps_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "dir" / "config.json"
    monkeypatch.setenv(cfg.CONFIG_ENV, str(path))
    monkeypatch.delenv(cfg.URL_ENV, raising=False)
    monkeypatch.delenv(cfg.KEY_ENV, raising=False)
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o644)
    cfg.save(cfg.CliConfig(url="http://x", token="po_secret", project="p"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cfg.load_effective() == cfg.CliConfig(url="http://x", token="po_secret", project="p")
    monkeypatch.setenv(cfg.URL_ENV, "http://env")
    monkeypatch.setenv(cfg.KEY_ENV, "po_env")
    assert cfg.load_effective() == cfg.CliConfig(url="http://env", token="po_env", project="p")
    assert cfg.clear() is True
    assert json.loads(path.read_text()) == {"url": "http://x", "project": "p"}
    assert cfg.clear() is False


def test_default_config_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(cfg.CONFIG_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cfg.config_path() == tmp_path / ".config" / "promptops" / "config.json"


def test_unreadable_config_is_a_clear_error(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "config.json")
    cli.config_path.write_text("not json")
    result = cli.fails("whoami")
    assert (
        result.stderr.startswith("Error: Cannot read the config file: ")
        and "[invalid_config]" in result.stderr
    )


# --- HTTP -------------------------------------------------------------------------------------------------------


def _client(handler: Any) -> ApiClient:
    return ApiClient("http://server/", "po_token", "proj", transport=httpx.MockTransport(handler))


def test_client_sends_credentials_and_maps_problems() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            409,
            json={"title": "Conflict", "detail": "Prompt 'a' already exists", "code": "prompt_exists"},
            headers={"content-type": "application/problem+json"},
        )

    with pytest.raises(CliError) as caught, _client(handler) as api:
        api.post("/api/v1/prompts", {"name": "a"})
    assert str(caught.value) == "Conflict: Prompt 'a' already exists [prompt_exists]"
    assert caught.value.status == 409
    assert seen[0].headers["authorization"] == "Bearer po_token"
    assert seen[0].headers["x-project"] == "proj"


def test_client_handles_non_problem_errors_and_empty_bodies() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/gone":
            return httpx.Response(204)
        return httpx.Response(502, text="<html>Bad gateway</html>")

    with _client(handler) as api:
        assert api.delete("/gone") is None
        with pytest.raises(CliError) as caught:
            api.get("/x")
    assert str(caught.value) == "HTTP 502: <html>Bad gateway</html>"


def test_client_follows_cursors_and_drops_unset_parameters() -> None:
    pages = {None: {"items": [1, 2], "nextCursor": "c2"}, "c2": {"items": [3], "nextCursor": None}}
    queries: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        queries.append(dict(request.url.params))
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    with _client(handler) as api:
        assert api.paginate("/list", {"tag": None, "limit": 2}) == [1, 2, 3]
    assert queries == [{"limit": "2"}, {"limit": "2", "cursor": "c2"}]


def test_error_messages_are_one_line() -> None:
    assert str(CliError("Bad", "line one\n  line two", "c")) == "Bad: line one line two [c]"
    assert str(CliError("Only a title")) == "Only a title"


# --- output -----------------------------------------------------------------------------------------------------


def test_user_text_is_never_read_as_markup(capsys: pytest.CaptureFixture[str]) -> None:
    output.table(["A"], [["[bold]x[/bold] {{ y }}"]])
    output.text_block("[red]template[/red]\n", title="[t]")
    out = capsys.readouterr().out
    assert "[bold]x[/bold] {{ y }}" in out and "[red]template[/red]" in out and "[t]" in out


# --- serve ------------------------------------------------------------------------------------------------------


def test_serve_runs_uvicorn_with_the_factory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    from promptops import config, logging

    calls: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.update(target=target, **kw))
    monkeypatch.setattr(logging, "configure_logging", lambda level, json: calls.update(logging=(level, json)))
    monkeypatch.setenv("PROMPTOPS_HOST", "0.0.0.0")
    monkeypatch.setenv("PROMPTOPS_PORT", "9123")
    config.get_settings.cache_clear()
    try:
        Cli(tmp_path / "c.json").ok("serve")
        assert calls["target"] == "promptops.app:build_default_app" and calls["factory"] is True
        assert (calls["host"], calls["port"], calls["reload"]) == ("0.0.0.0", 9123, False)
        assert calls["access_log"] is False and calls["loop"] == "uvloop" and calls["http"] == "httptools"
        assert calls["logging"][0] == "INFO"
        Cli(tmp_path / "c.json").ok("serve", "--host", "127.0.0.2", "--port", "9999", "--reload")
        assert (calls["host"], calls["port"], calls["reload"]) == ("127.0.0.2", 9999, True)
    finally:
        config.get_settings.cache_clear()


def test_diff_is_colored_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    output.diff("--- a@1\n+++ a@2\n@@ -1 +1 @@\n-old [x]\n+new [y]\n")
    out = capsys.readouterr().out
    assert "\x1b[31m-old [x]" in out  # red
    assert "\x1b[32m+new [y]" in out  # green


def test_optimizer_progress_line_shows_calls_round_and_scores() -> None:
    running = {
        "callsUsed": 120,
        "budget": 300,
        "round": 2,
        "bestTrainScore": 0.625,
        "report": {"baseline": {"trainScore": 0.0, "valScore": 0.025}},
    }
    assert progress_line(running) == (
        "calls 120/300 · round 2 · best train 0.625 (start 0.000) · validation start 0.025"
    )
    queued = {"callsUsed": 0, "budget": 300, "round": 0, "bestTrainScore": None, "report": {}}
    assert progress_line(queued) == "calls 0/300 · round 0"


def test_optimizer_report_fits_80_columns_unless_wide(capsys: pytest.CaptureFixture[str]) -> None:
    row = {
        "round": 12,
        "strategy": "few-shot:reorder",
        "status": "evaluating",
        "screenScore": 0.5,
        "trainScore": 0.625,
        "valScore": 0.55,
        "calls": 1200,
        "tokens": 812,
        "candidateId": "candidate_01m8v30cwj7fdc9a6fy80hwk3p",
    }
    found = {
        "id": "opt_01m8v2jrg32j55fbm8qz0jjk11",
        "status": "running",
        "callsUsed": 1200,
        "budget": 5000,
        "spec": {
            "promptName": "support/triage",
            "version": 3,
            "dataset": {"name": "support/tickets", "version": 2},
            "trainCases": 200,
            "valCases": 200,
        },
        "trajectory": [row] * 3,
        "report": {},
    }
    print_report(found)
    narrow = capsys.readouterr().out
    table = [line for line in narrow.splitlines() if "few-shot:reorder" in line]
    assert table and all(len(line) <= 80 for line in table), narrow
    assert "candidate_01m8v30cwj7fdc9a6fy80hwk3p" not in narrow
    print_report(found, wide=True)
    assert "candidate_01m8v30cwj7fdc9a6fy80hwk3p" in " ".join(capsys.readouterr().out.split())
