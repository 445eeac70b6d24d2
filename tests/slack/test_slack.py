"""The Slack face against the app on both databases: signed requests built with Slack's signing algorithm
(HMAC-SHA256 of ``v0:<ts>:<body>``), a loopback stand-in for Slack's Web API and response URLs, a loopback
fake model provider for ``/prompt run``."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from promptops.slack import blocks as bk
from promptops.slack.handling import post_message
from promptops.slack.notify import notify_once
from tests.slack.slack_stub import BOT_TOKEN, SlackStub, block_kit_problems
from tests.support.app import ADMIN_EMAIL, ADMIN_PASSWORD, Api
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import (  # noqa: F401 (fixtures)
    fake_fixture,
    provider_app,
    shared_fake_fixture,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0001"


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStub]:
    with SlackStub() as stub:
        yield stub


@asynccontextmanager
async def slack_app(
    db_url: str, tmp_path: Path, slack: SlackStub, fake: FakeLLMServer, notify_every: float
) -> AsyncIterator[Api]:
    """The app with Slack set up against the stand-in (and a provider connection ``fake``)."""
    slack.calls.clear()
    async with provider_app(
        db_url,
        tmp_path,
        fake,
        slack_signing_secret=SECRET,
        slack_bot_token=BOT_TOKEN,
        slack_api_url=slack.url + "/api/",
        slack_response_url_prefix=slack.url + "/hooks/",
        slack_web_url="https://promptops.example.test",
        slack_notify_interval_seconds=notify_every,
    ) as api_:
        yield api_


@pytest.fixture
async def api(db_url: str, tmp_path: Path, slack: SlackStub, fake: FakeLLMServer) -> AsyncIterator[Api]:
    # no notifier loop: the tests below send notices themselves (notify_once)
    async with slack_app(db_url, tmp_path, slack, fake, notify_every=0) as api_:
        yield api_


def signed(body: str, *, secret: str = SECRET, ts: int | None = None) -> dict[str, str]:
    """Headers Slack sends: the timestamp and ``v0=`` + hex HMAC-SHA256 of ``v0:<ts>:<body>``."""
    stamp = str(int(time.time()) if ts is None else ts)
    mac = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={mac}"}


async def command(api: Api, text: str, user: str = "U0001", **fields: str) -> dict[str, Any]:
    form = {
        "team_id": TEAM,
        "user_id": user,
        "channel_id": "C0001",
        "command": "/prompt",
        "text": text,
        "response_url": fields.pop("response_url", "") or "",
        **fields,
    }
    body = urlencode(form)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **signed(body)}
    r = await api.client.post("/slack/commands", content=body, headers=headers)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert block_kit_problems(answer) == []
    return answer


def text_of(answer: dict[str, Any]) -> str:
    parts = [answer["text"]]
    for block in answer["blocks"]:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts.extend(e.get("text", "") for e in block.get("elements", []) if isinstance(e.get("text"), str))
    return "\n".join(parts)


async def session_token(api: Api, email: str, password: str) -> str:
    r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def link(api: Api, slack_user: str, token: str) -> httpx.Response:
    answer = await command(api, "login", user=slack_user)
    match = re.search(r"\*([0-9A-F]{6}-[0-9A-F]{6})\*", answer["text"])
    assert match, answer
    return await api.client.post(
        "/api/v1/slack/links", json={"code": match.group(1)}, headers={"Authorization": f"Bearer {token}"}
    )


async def link_admin(api: Api, slack_user: str = "U0001") -> None:
    r = await link(api, slack_user, await session_token(api, ADMIN_EMAIL, ADMIN_PASSWORD))
    assert r.status_code == 201, r.text


async def member(api: Api, email: str, role: str) -> str:
    r = await api.post(
        "/api/v1/members", json={"email": email, "role": role, "password": "slack-member-password-1"}
    )
    assert r.status_code == 201, r.text
    return await session_token(api, email, "slack-member-password-1")


async def add_prompt(api: Api, name: str = "support/triage", **extra: Any) -> None:
    body = {
        "name": name,
        "description": "Route a ticket",
        "template": "Classify this ticket: {{ ticket }}\n",
        "variables": [{"name": "ticket", "type": "string"}],
        "modelConfig": {"provider": "fake", "model": "gpt-4o-mini"},
        **extra,
    }
    r = await api.post("/api/v1/prompts", json=body)
    assert r.status_code == 201, r.text
    r = await api.put(f"/api/v1/prompts/{name}/labels/staging", json={"version": 1})
    assert r.status_code == 200, r.text


# --- request verification ---------------------------------------------------------------------------------


async def test_bad_signature_and_stale_timestamp_are_401(api: Api) -> None:
    body = urlencode({"team_id": TEAM, "user_id": "U1", "text": "help"})
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    wrong = await api.client.post(
        "/slack/commands", content=body, headers={**form, **signed(body, secret="x")}
    )
    assert wrong.status_code == 401 and wrong.json()["code"] == "slack_bad_signature"
    tampered = await api.client.post(
        "/slack/commands", content=body + "&x=1", headers={**form, **signed(body)}
    )
    assert tampered.status_code == 401 and tampered.json()["code"] == "slack_bad_signature"
    stale = await api.client.post(
        "/slack/commands", content=body, headers={**form, **signed(body, ts=int(time.time()) - 301)}
    )
    assert stale.status_code == 401 and stale.json()["code"] == "slack_stale"
    unsigned = await api.client.post("/slack/events", content="{}")
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "slack_unsigned"
    ok = await api.client.post("/slack/commands", content=body, headers={**form, **signed(body)})
    assert ok.status_code == 200 and "search" in ok.json()["text"]


async def test_events_url_verification_and_retries_processed_once(api: Api, slack: SlackStub) -> None:
    challenge = json.dumps({"type": "url_verification", "challenge": "abc123"})
    r = await api.client.post("/slack/events", content=challenge, headers=signed(challenge))
    assert r.status_code == 200 and r.json() == {"challenge": "abc123"}
    event = json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM,
            "event_id": "Ev0001",
            "event": {"type": "app_mention", "channel": "C0042", "user": "U1", "text": "<@B1> help"},
        }
    )
    first = await api.client.post("/slack/events", content=event, headers=signed(event))
    assert first.status_code == 204
    for retry in ("1", "2"):
        again = await api.client.post(
            "/slack/events",
            content=event,
            headers={**signed(event), "X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"},
        )
        assert again.status_code == 204
    posts = slack.calls_to("/api/chat.postMessage")
    assert [p.body["channel"] for p in posts] == ["C0042"]
    assert posts[0].problems == []


async def test_interactions_are_verified(api: Api) -> None:
    body = urlencode({"payload": json.dumps({"type": "block_actions", "team": {"id": TEAM}})})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await api.client.post("/slack/interactions", content=body, headers=headers)).status_code == 401
    r = await api.client.post("/slack/interactions", content=body, headers={**headers, **signed(body)})
    assert r.status_code == 204


# --- identity ---------------------------------------------------------------------------------------------


async def test_unlinked_users_only_search_what_their_workspace_shares(api: Api) -> None:
    await add_prompt(api)  # the default project
    token = await session_token(api, ADMIN_EMAIL, ADMIN_PASSWORD)
    admin = {"Authorization": f"Bearer {token}"}
    r = await api.client.post("/api/v1/projects", json={"name": "private"}, headers=admin)
    assert r.status_code == 201, r.text
    r = await api.client.post(
        "/api/v1/prompts",
        json={"name": "secret/triage", "description": "Internal triage", "template": "x"},
        headers={**admin, "X-Project": "private"},
    )
    assert r.status_code == 201, r.text
    # nothing is shared with the workspace yet
    nothing = await command(api, "search triage", user="U_NOBODY")
    assert "No PromptOps project shares" in nothing["text"] and "/prompt login" in nothing["text"]
    # an admin of the default project sends its notices to a channel of this workspace: that shares it here
    await link_admin(api)
    assert "searchable by everyone in this workspace" in (await command(api, "notify #prompt-alerts"))["text"]
    found = text_of(await command(api, "search triage", user="U_NOBODY"))
    assert "support/triage" in found and "(default, v1)" in found
    assert "secret/triage" not in found  # the other project shares nothing
    assert "not linked" in found and "/prompt login" in found
    everything = text_of(await command(api, "search", user="U_NOBODY"))
    assert "support/triage" in everything and "secret" not in everything
    assert "No shared prompt matches" in (await command(api, "search zebra", user="U_NOBODY"))["text"]
    # another workspace sees nothing of it
    elsewhere = await command(api, "search triage", user="U_NOBODY", team_id="T0002")
    assert "No PromptOps project shares" in elsewhere["text"]
    # every other command needs a link, even for what is shared
    for text in (
        "show support/triage@staging",
        "run support/triage@staging ticket=x",
        "share support/triage@staging #general",
        "notify #elsewhere",
    ):
        answer = await command(api, text, user="U_NOBODY")
        assert "not linked" in answer["text"] and "/prompt login" in answer["text"], text
    # notices off: the project is no longer shared
    await command(api, "notify off")
    again = await command(api, "search triage", user="U_NOBODY")
    assert "No PromptOps project shares" in again["text"]


async def test_link_code_is_single_use_and_needs_a_user(api: Api) -> None:
    answer = await command(api, "login", user="U0009")
    code = re.search(r"\*([0-9A-F-]{13})\*", answer["text"])
    assert code
    # an API key is not a person: the link needs a user's session
    r = await api.post("/api/v1/slack/links", json={"code": code.group(1)})
    assert r.status_code == 422 and r.json()["code"] == "slack_link_needs_user"
    token = await session_token(api, ADMIN_EMAIL, ADMIN_PASSWORD)
    auth = {"Authorization": f"Bearer {token}"}
    r = await api.client.post("/api/v1/slack/links", json={"code": code.group(1)}, headers=auth)
    assert r.status_code == 201, r.text
    assert r.json()["slackUserId"] == "U0009" and r.json()["teamId"] == TEAM
    again = await api.client.post("/api/v1/slack/links", json={"code": code.group(1)}, headers=auth)
    assert again.status_code == 404 and again.json()["code"] == "slack_code_invalid"
    listed = await api.client.get("/api/v1/slack/links", headers=auth)
    assert [x["slackUserId"] for x in listed.json()] == ["U0009"]
    audit = await api.get("/api/v1/audit", params={"type": "slack.linked"})
    assert audit.status_code == 200 and "slack.linked" in audit.text
    assert code.group(1) not in audit.text  # the code is a secret: never in the audit log


# --- commands ---------------------------------------------------------------------------------------------


async def test_search_and_show_card(api: Api) -> None:
    await add_prompt(api)
    await add_prompt(api, "billing/refund", description="Refund policy")
    await link_admin(api)
    found = text_of(await command(api, "search triage"))
    assert "support/triage" in found and "billing/refund" not in found
    card = await command(api, "show support/triage@staging")
    text = text_of(card)
    assert card["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "support/triage v1"},
    }
    assert "Classify this ticket" in text and "staging→v1" in text and "fake" not in card["blocks"][0]["text"]
    button = card["blocks"][-1]["elements"][0]
    assert button["url"] == "https://promptops.example.test/prompts/support/triage"
    missing = await command(api, "show support/nothing@staging")
    assert "not found" in missing["text"].lower()


async def test_user_text_is_escaped_for_mrkdwn(api: Api) -> None:
    # Slack reads <...> as links/mentions and & as an entity: a prompt's own text must not become markup
    await add_prompt(
        api,
        "html/one",
        template="Answer in <b>bold</b> if a < b & c {{ ticket }}",
        description="<!channel> & co",
    )
    await link_admin(api)
    text = text_of(await command(api, "show html/one@staging"))
    assert "&lt;b&gt;bold&lt;/b&gt; if a &lt; b &amp; c" in text and "&lt;!channel&gt; &amp; co" in text
    assert "<!channel>" not in text and "<b>" not in text
    found = text_of(await command(api, "search html"))
    assert "&lt;!channel&gt;" in found and "<!channel>" not in found


async def test_long_template_card_stays_within_block_kit_limits(api: Api) -> None:
    await add_prompt(api, "long/one", template="word " * 5000 + "{{ ticket }}", description="d" * 1900)
    await link_admin(api)
    card = await command(api, "show long/one@staging")
    assert all(len(b.get("text", {}).get("text", "")) <= bk.MAX_SECTION_TEXT for b in card["blocks"])
    assert "…" in text_of(card)


async def test_run_acks_then_posts_result_to_response_url(api: Api, slack: SlackStub) -> None:
    await add_prompt(api)
    await link_admin(api)
    hook = slack.url + "/hooks/T0001/B1/run1"
    ack = await command(api, 'run support/triage@staging ticket="printer on fire"', response_url=hook)
    assert "Running support/triage@staging" in ack["text"]
    (posted,) = slack.calls_to("/hooks/T0001/B1/run1")
    assert posted.problems == []
    text = text_of(posted.body)
    assert "You said: Classify this ticket: printer on fire" in text
    assert "Cost:" in text and "Latency:" in text and "fake/gpt-4o-mini" in text
    runs = await api.get("/api/v1/runs")
    assert runs.status_code == 200 and len(runs.json()["items"]) == 1
    # a response_url outside the configured Slack prefix is never called
    await command(api, "run support/triage@staging ticket=x", response_url="http://127.0.0.2/hooks/x")
    assert len(slack.calls_to("/hooks/")) == 1
    bad = await command(api, "run support/triage@staging oops", response_url=hook)
    assert "Running" in bad["text"]
    assert "key=value" in slack.calls_to("/hooks/T0001/B1/run1")[-1].body["text"]


async def test_share_posts_card_to_channel(api: Api, slack: SlackStub) -> None:
    await add_prompt(api)
    await link_admin(api)
    answer = await command(api, "share support/triage@staging <#C0777|prompts>")
    assert "Shared" in answer["text"]
    (post,) = slack.calls_to("/api/chat.postMessage")
    assert post.body["channel"] == "C0777" and post.problems == []
    assert post.body["blocks"][0]["text"]["text"] == "support/triage v1"
    refused = await command(api, "share support/triage@staging #archived")
    assert "is_archived" in refused["text"]
    usage = await command(api, "share support/triage@staging")
    assert "Usage" in usage["text"]


@pytest.mark.parametrize(
    ("role", "can_show", "can_run"),
    [("Viewer", True, False), ("QAAnalyst", True, False), ("PromptEngineer", True, True)],
)
async def test_actions_run_with_the_linked_users_role(
    api: Api, slack: SlackStub, role: str, can_show: bool, can_run: bool
) -> None:
    await add_prompt(api)
    token = await member(api, f"{role.lower()}@example.test", role)
    assert (await link(api, "U0100", token)).status_code == 201
    card = await command(api, "show support/triage@staging", user="U0100")
    assert ("support/triage v1" in card["text"]) is can_show
    hook = slack.url + "/hooks/T0001/B1/role"
    ack = await command(api, "run support/triage@staging ticket=x", user="U0100", response_url=hook)
    if can_run:
        assert "Running" in ack["text"] and len(slack.calls_to("/hooks/T0001/B1/role")) == 1
    else:
        assert "lacks `playground:run`" in ack["text"] and role in ack["text"]
        assert slack.calls_to("/hooks/") == []
    # the role is read at each command: a demotion applies at once
    users = {m["email"]: m["userId"] for m in (await api.get("/api/v1/members")).json()}
    r = await api.patch(f"/api/v1/members/{users[f'{role.lower()}@example.test']}", json={"role": "Viewer"})
    assert r.status_code == 200, r.text
    later = await command(api, "run support/triage@staging ticket=x", user="U0100", response_url=hook)
    assert "lacks `playground:run`" in later["text"]


# --- notifications ----------------------------------------------------------------------------------------


async def test_notices_for_protected_label_moves_only(api: Api, slack: SlackStub) -> None:
    await add_prompt(api)
    await link_admin(api)
    runtime = api.app.state.runtime

    async def notices() -> list[str]:
        before = len(slack.calls_to("/api/chat.postMessage"))
        await notify_once(runtime, post_message)
        posts = slack.calls_to("/api/chat.postMessage")[before:]
        assert all(p.body["channel"] == "C0900" and p.problems == [] for p in posts)
        return [p.body["text"] for p in posts]

    r = await api.put("/api/v1/prompts/support/triage/labels/production", json={"version": 1})
    assert r.status_code == 200
    assert "notices go to" in (await command(api, "notify <#C0900|alerts>"))["text"]
    assert await notices() == []  # events before the channel was set are not sent
    r = await api.post(
        "/api/v1/prompts/support/triage/versions",
        json={"template": "v2 {{ ticket }}", "variables": [{"name": "ticket"}]},
    )
    assert r.status_code == 201, r.text
    # an unprotected label: no notice
    assert (
        await api.put("/api/v1/prompts/support/triage/labels/canary", json={"version": 2})
    ).status_code == 200
    assert (
        await api.put("/api/v1/prompts/support/triage/labels/staging", json={"version": 2})
    ).status_code == 200
    assert await notices() == []
    # production is deployable (protected by default): deployed, then rolled back
    r = await api.put("/api/v1/prompts/support/triage/labels/production", json={"version": 2, "reason": "go"})
    assert r.status_code == 200, r.text
    (deployed,) = await notices()
    assert "support/triage@production* deployed: v1 → v2" in deployed and "(go)" in deployed
    assert await notices() == []  # each event once
    r = await api.post("/api/v1/prompts/support/triage/labels/production/rollback", json={"reason": "bad"})
    assert r.status_code == 200, r.text
    (rolled,) = await notices()
    assert "support/triage@production* rolled back: v2 → v1" in rolled and "(bad)" in rolled
    # labels the project protects: lint-gated ones and its own deployable labels
    settings = {"deployableLabels": ["production", "prod-eu"], "lint": {"blockOnLabels": ["staging"]}}
    assert (await api.patch("/api/v1/projects/current", json={"settings": settings})).status_code == 200
    assert await notices() == []  # the settings change itself is no notice
    for label in ("staging", "prod-eu", "canary"):
        r = await api.put(f"/api/v1/prompts/support/triage/labels/{label}", json={"version": 1})
        assert r.status_code == 200, r.text
    moved = await notices()
    assert len(moved) == 2
    assert "support/triage@staging* moved: v2 → v1" in moved[0]
    assert "support/triage@prod-eu* deployed: none → v1" in moved[1]
    r = await api.post("/api/v1/prompts/support/triage/labels/canary/rollback", json={})
    assert r.status_code == 200, r.text
    assert await notices() == []  # rolling back an unprotected label: still no notice
    assert "Project notices are off" in (await command(api, "notify off"))["text"]
    await api.put("/api/v1/prompts/support/triage/labels/production", json={"version": 2})
    assert await notices() == []
    viewer = await member(api, "viewer@example.test", "Viewer")
    assert (await link(api, "U0200", viewer)).status_code == 201
    denied = await command(api, "notify #alerts", user="U0200")
    assert "lacks `project:manage`" in denied["text"]


async def test_notices_are_sent_by_the_running_server(
    db_url: str, tmp_path: Path, slack: SlackStub, fake: FakeLLMServer
) -> None:
    async with slack_app(db_url, tmp_path, slack, fake, notify_every=0.05) as api:
        await add_prompt(api)
        await link_admin(api)
        await command(api, "notify #prompt-alerts")
        r = await api.put("/api/v1/prompts/support/triage/labels/production", json={"version": 1})
        assert r.status_code == 200
        deadline = time.monotonic() + 10
        while not slack.calls_to("/api/chat.postMessage") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    (post,) = slack.calls_to("/api/chat.postMessage")
    assert post.body["channel"] == "#prompt-alerts" and "support/triage@production" in post.body["text"]


async def test_card_shows_last_evaluation_and_eval_finished_is_noticed(api: Api, slack: SlackStub) -> None:
    r = await api.post(
        "/api/v1/prompts",
        json={"name": "echo/a", "template": "{{ review }}", "variables": [{"name": "review"}]},
    )
    assert r.status_code == 201, r.text
    cases = [
        {"id": "c1", "input": {"review": "great battery"}, "expected": "great battery"},
        {"id": "c2", "input": {"review": "cold soup"}, "expected": "nothing like this"},
    ]
    assert (await api.post("/api/v1/datasets", json={"name": "echo/set", "cases": cases})).status_code == 201
    await link_admin(api)
    assert "no prompt" not in text_of(await command(api, "notify #evals")).lower()
    assert "Last evaluation:* none" in text_of(await command(api, "show echo/a"))
    spec = {
        "prompts": ["echo/a"],
        "dataset": "echo/set",
        "models": [{"provider": "fake", "model": "gpt-fake"}],
        "scorers": [{"type": "contains"}],
    }
    r = await api.post("/api/v1/evals", json=spec)
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    deadline = time.monotonic() + 60
    while (await api.get(f"/api/v1/evals/{run_id}")).json()["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert "pass rate 50%" in text_of(await command(api, "show echo/a"))
    assert await notify_once(api.app.state.runtime, post_message) == 1
    (post,) = slack.calls_to("/api/chat.postMessage")
    assert post.body["channel"] == "#evals" and "Evaluation finished" in post.body["text"]
    assert "pass rate 50%" in post.body["text"]
