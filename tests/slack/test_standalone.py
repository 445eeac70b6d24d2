"""``promptops slack``: the Slack routes alone (HTTP mode), on the shared database."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from typer.testing import CliRunner

from promptops.cli.main import app as cli
from promptops.config import get_settings
from promptops.slack.standalone import create_slack_app
from tests.slack.test_slack import SECRET, signed
from tests.support.app import make_settings


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
