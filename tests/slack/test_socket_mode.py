"""``promptops slack --socket-mode`` against a loopback Slack: the stand-in answers ``apps.connections.open`` with
the ``ws://`` URL of its own WebSocket endpoint, greets the connection with ``hello``, sends envelopes and checks
every acknowledgement (known envelope id, within 3 s, Block Kit limits). The bot under test is the standalone
Slack app in Socket Mode (its lifespan connects out), sharing the database with a main app used for set-up."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from promptops.slack.socket_mode import SocketModeError
from promptops.slack.standalone import create_slack_app
from tests.slack.slack_stub import APP_TOKEN, BOT_TOKEN, Ack, SlackStub
from tests.slack.test_slack import TEAM, add_prompt, command, session_token, slack_app, text_of
from tests.support.app import ADMIN_EMAIL, ADMIN_PASSWORD, make_settings
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import (  # noqa: F401 (fixtures)
    fake_fixture,
    shared_fake_fixture,
)


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStub]:
    with SlackStub() as stub:
        yield stub


@asynccontextmanager
async def socket_bot(
    db_url: str, tmp_path: Path, slack: SlackStub, **overrides: Any
) -> AsyncIterator[FastAPI]:
    """``promptops slack --socket-mode``'s app, running (connected) on the test's database."""
    values: dict[str, Any] = {
        "slack_app_token": APP_TOKEN,
        "slack_bot_token": BOT_TOKEN,
        "slack_api_url": slack.url + "/api/",
        "slack_response_url_prefix": slack.url + "/hooks/",
        "slack_notify_interval_seconds": 0,
        "slack_web_url": "https://promptops.example.test",  # as the main app's (tests.slack.test_slack)
        "provider_allowed_hosts": ["127.0.0.1"],
        **overrides,
    }
    app = create_slack_app(make_settings(db_url, tmp_path, **values), migrate=False, socket_mode=True)
    hellos = slack.hellos
    async with app.router.lifespan_context(app):
        await until(lambda: slack.hellos > hellos, "the hello of a new connection")
        yield app


async def until(check: Any, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def acked(slack: SlackStub, envelope_id: str) -> Ack:
    await until(lambda: slack.ack_for(envelope_id) is not None, f"the ack of {envelope_id}")
    ack = slack.ack_for(envelope_id)
    assert ack is not None and ack.problems == [], ack
    return ack


def slash(text: str, user: str = "U0001", **fields: str) -> dict[str, str]:
    """A slash_commands envelope payload as Slack sends it over the socket (the HTTP form's fields)."""
    return {
        "token": "verification-token-unused",
        "team_id": TEAM,
        "team_domain": "acme",
        "channel_id": "C0001",
        "channel_name": "general",
        "user_id": user,
        "user_name": "someone",
        "command": "/prompt",
        "text": text,
        "api_app_id": "A0001",
        "is_enterprise_install": "false",
        "response_url": "",
        "trigger_id": "1.2.3",
        **fields,
    }


async def socket_command(slack: SlackStub, text: str, user: str = "U0001", **fields: str) -> dict[str, Any]:
    envelope = slack.send_envelope(
        "slash_commands", slash(text, user, **fields), accepts_response_payload=True
    )
    ack = await acked(slack, envelope)
    assert "payload" in ack.body, ack.body
    return dict(ack.body["payload"])


async def test_slash_commands_and_events_over_the_socket(
    db_url: str, tmp_path: Path, slack: SlackStub, fake: FakeLLMServer
) -> None:
    async with slack_app(db_url, tmp_path, slack, fake, notify_every=0) as api:
        await add_prompt(api)
        async with socket_bot(db_url, tmp_path, slack):
            (opened,) = slack.calls_to("/api/apps.connections.open")
            assert opened.headers["authorization"] == f"Bearer {APP_TOKEN}"  # the app-level token
            # unlinked: the same answer as over HTTP (one code path)
            over_socket = await socket_command(slack, "show support/triage@staging", user="U0042")
            assert over_socket == await command(api, "show support/triage@staging", user="U0042")
            assert "not linked" in over_socket["text"]
            # login over the socket, code redeemed on the main server
            answer = await socket_command(slack, "login")
            code = re.search(r"\*([0-9A-F]{6}-[0-9A-F]{6})\*", answer["text"])
            assert code, answer
            token = await session_token(api, ADMIN_EMAIL, ADMIN_PASSWORD)
            r = await api.client.post(
                "/api/v1/slack/links",
                json={"code": code.group(1)},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 201, r.text
            # now linked: search and the card, answered in the acknowledgement
            assert "support/triage" in text_of(await socket_command(slack, "search triage"))
            card = await socket_command(slack, "show support/triage@staging")
            assert card["blocks"][0]["text"]["text"] == "support/triage v1"
            assert card == await command(api, "show support/triage@staging")
            # run: acknowledged at once, the result posted to the response_url
            hook = slack.url + "/hooks/T0001/B1/socket-run"
            ack = await socket_command(slack, "run support/triage@staging ticket=toaster", response_url=hook)
            assert "Running support/triage@staging" in ack["text"]
            await until(lambda: slack.calls_to("/hooks/T0001/B1/socket-run"), "the run result")
            (result,) = slack.calls_to("/hooks/T0001/B1/socket-run")
            assert result.problems == [] and "You said: Classify this ticket: toaster" in text_of(result.body)
            # share: chat.postMessage with the bot token
            shared = await socket_command(slack, "share support/triage@staging <#C0777|prompts>")
            assert "Shared" in shared["text"]
            post = slack.calls_to("/api/chat.postMessage")[-1]
            assert post.body["channel"] == "C0777" and post.headers["authorization"] == f"Bearer {BOT_TOKEN}"
            # a malformed command is answered, not dropped (Slack would show the user an error)
            bad = await socket_command(slack, "search", user="")
            assert "team_id and user_id are required" in bad["text"]


async def test_events_are_acknowledged_and_handled_once(
    db_url: str, tmp_path: Path, slack: SlackStub, fake: FakeLLMServer
) -> None:
    async with slack_app(db_url, tmp_path, slack, fake, notify_every=0), socket_bot(db_url, tmp_path, slack):
        event = {
            "token": "unused",
            "team_id": TEAM,
            "api_app_id": "A0001",
            "type": "event_callback",
            "event_id": "Ev0SOCKET1",
            "event_time": 1700000000,
            "event": {"type": "app_mention", "channel": "C0555", "user": "U1", "text": "<@B1> hi"},
        }
        first = slack.send_envelope("events_api", event)
        assert "payload" not in (await acked(slack, first)).body
        await until(lambda: slack.calls_to("/api/chat.postMessage"), "the reply to the mention")
        # Slack retries an event it thinks was lost: acknowledged again, not handled again
        retry = slack.send_envelope("events_api", event, retry_attempt=1, retry_reason="timeout")
        await acked(slack, retry)
        interactive = slack.send_envelope("interactive", {"type": "block_actions", "team": {"id": TEAM}})
        await acked(slack, interactive)
        await asyncio.sleep(0.2)
        posts = slack.calls_to("/api/chat.postMessage")
        assert [p.body["channel"] for p in posts] == ["C0555"] and posts[0].problems == []


async def test_reconnects_when_slack_asks(
    db_url: str, tmp_path: Path, slack: SlackStub, fake: FakeLLMServer
) -> None:
    async with slack_app(db_url, tmp_path, slack, fake, notify_every=0), socket_bot(db_url, tmp_path, slack):
        opened = len(slack.calls_to("/api/apps.connections.open"))
        hellos = slack.hellos
        slack.send_raw({"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "stub"}})
        await until(lambda: slack.hellos > hellos, "a new connection")
        assert (
            len(slack.calls_to("/api/apps.connections.open")) == opened + 1
        )  # a fresh URL (tickets are single-use)
        assert "search" in (await socket_command(slack, "help"))["text"]


async def test_refused_app_token_stops_the_start(db_url: str, tmp_path: Path, slack: SlackStub) -> None:
    with pytest.raises(SocketModeError, match="invalid_auth"):
        async with socket_bot(db_url, tmp_path, slack, slack_app_token="xapp-1-A0001-wrong"):
            pass
    with pytest.raises(SocketModeError, match="xapp-"):  # a bot token is not an app-level token
        async with socket_bot(db_url, tmp_path, slack, slack_app_token=BOT_TOKEN):
            pass
