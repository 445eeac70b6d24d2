"""``promptops slack``: the Slack bot alone (HTTP mode or Socket Mode), on the shared database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from typer.testing import CliRunner

from promptops.cli.main import app as cli
from promptops.config import get_settings
from promptops.slack.standalone import create_slack_app
from tests.slack.slack_stub import APP_TOKEN, BOT_TOKEN, SlackStub
from tests.slack.test_slack import SECRET, signed
from tests.support.app import make_settings
from tests.support.cli_support import free_port


async def test_standalone_app_answers_signed_commands(db_url: str, tmp_path: Path) -> None:
    app = create_slack_app(make_settings(db_url, tmp_path, slack_signing_secret=SECRET), migrate=False)
    body = urlencode({"team_id": "T1", "user_id": "U1", "text": "search x"})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://slack.test") as client:
            ok = await client.post("/slack/commands", content=body, headers={**headers, **signed(body)})
            assert ok.status_code == 200 and "not linked" in ok.json()["text"]
            bad = await client.post("/slack/commands", content=body, headers=headers)
            assert bad.status_code == 401
            assert bad.headers["content-type"].startswith("application/problem+json")
            assert bad.json()["code"] == "slack_unsigned"
            assert (await client.get("/api/v1/prompts")).status_code == 404  # only the Slack routes


def test_cli_refuses_to_start_without_a_signing_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv(
        "PROMPTOPS_DATABASE_URL", url
    )  # the command sets it; monkeypatch removes it afterwards
    try:
        result = CliRunner().invoke(cli, ["slack", "--database-url", url])
    finally:
        get_settings.cache_clear()
    assert result.exit_code != 0 and "PROMPTOPS_SLACK_SIGNING_SECRET" in result.output


def test_cli_socket_mode_needs_an_app_level_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv("PROMPTOPS_DATABASE_URL", url)
    monkeypatch.setenv("PROMPTOPS_SLACK_SIGNING_SECRET", SECRET)  # HTTP mode's secret is not what it needs
    monkeypatch.setenv("PROMPTOPS_SLACK_APP_TOKEN", BOT_TOKEN)  # a bot token, not xapp-...
    try:
        result = CliRunner().invoke(cli, ["slack", "--socket-mode", "--database-url", url])
    finally:
        get_settings.cache_clear()
    assert result.exit_code != 0 and "PROMPTOPS_SLACK_APP_TOKEN" in result.output


def test_cli_socket_mode_process_answers_over_the_socket(sqlite_url: str, tmp_path: Path) -> None:
    """The real command as a child process: it connects out, answers a slash command, serves health."""
    with SlackStub() as slack:
        port = free_port()
        env = {
            **os.environ,
            "PROMPTOPS_DATABASE_URL": sqlite_url,
            "PROMPTOPS_DATA_DIR": str(tmp_path / "data"),
            "PROMPTOPS_SLACK_APP_TOKEN": APP_TOKEN,
            "PROMPTOPS_SLACK_API_URL": slack.url + "/api/",
            "PROMPTOPS_LOG_JSON": "true",
        }
        env.pop("PROMPTOPS_SLACK_SIGNING_SECRET", None)  # Socket Mode needs no signing secret
        command = [
            str(Path(sys.executable).parent / "promptops"),
            "slack",
            "--socket-mode",
            "--port",
            str(port),
        ]
        with (tmp_path / "slack.log").open("wb") as log:
            proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
            try:
                deadline = time.monotonic() + 60
                while slack.hellos == 0:
                    assert proc.poll() is None, (tmp_path / "slack.log").read_text()
                    assert time.monotonic() < deadline, "no Socket Mode connection"
                    time.sleep(0.05)
                assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
                payload = {"team_id": "T1", "user_id": "U1", "channel_id": "C1", "text": "search x"}
                envelope = slack.send_envelope("slash_commands", payload, accepts_response_payload=True)
                while (ack := slack.ack_for(envelope)) is None:
                    assert time.monotonic() < deadline, "no acknowledgement"
                    time.sleep(0.05)
                assert ack.problems == [], ack
                assert "No PromptOps project shares" in json.dumps(ack.body["payload"])
            finally:
                proc.terminate()
                proc.wait(timeout=30)
