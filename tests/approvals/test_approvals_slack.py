"""Approval requests in Slack: the channel notice carries Approve / Reject buttons; a click decides as the Slack
user's linked PromptOps account, under the same four-eyes rules. A loopback Slack stand-in records the notices
and the response_url answers; both databases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from promptops.slack.handling import post_message
from promptops.slack.notify import notify_once
from tests.approvals.support import PROMPT, add_version, label_version, set_rules
from tests.slack.slack_stub import SlackStub
from tests.slack.test_slack import TEAM, command, link, link_admin, member, signed, slack_app
from tests.slack.test_socket_mode import acked, socket_bot, until
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import fake_fixture, shared_fake_fixture  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStub]:
    with SlackStub() as stub:
        yield stub


@pytest.fixture
async def sapi(db_url: str, tmp_path: Path, slack: SlackStub, fake: FakeLLMServer) -> AsyncIterator[Any]:
    async with slack_app(db_url, tmp_path, slack, fake, notify_every=0) as api_:
        yield api_


async def click(api: Any, slack: SlackStub, user: str, action: str, request_id: str) -> tuple[int, str]:
    """Press a button of a notice as Slack user ``user``: (HTTP status, the text sent to the response_url)."""
    hook = f"{slack.url}/hooks/T/{user}/{action}"
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": user, "team_id": TEAM},
        "actions": [{"action_id": action, "value": request_id, "type": "button"}],
        "response_url": hook,
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = {"Content-Type": "application/x-www-form-urlencoded", **signed(body)}
    r = await api.client.post("/slack/interactions", content=body, headers=headers)
    answers = [c for c in slack.calls if c.path.startswith(f"/hooks/T/{user}/{action}")]
    return r.status_code, answers[-1].body["text"] if answers else ""


async def test_approve_and_reject_from_the_channel_notice(sapi: Any, slack: SlackStub) -> None:
    api = sapi
    author = await member(api, "author@example.test", "PromptEngineer")
    reviewer = await member(api, "reviewer@example.test", "PromptEngineer")
    viewer = await member(api, "viewer@example.test", "Viewer")
    for slack_user, token in (("U0AUTH", author), ("U0REV", reviewer), ("U0VIEW", viewer)):
        assert (await link(api, slack_user, token)).status_code == 201
    r = await api.post(
        "/api/v1/prompts", json={"name": PROMPT, "template": "v1 {{ t }}", "labels": ["production"]}
    )
    assert r.status_code == 201, r.text
    await set_rules(api, {"production": {"required": 1}})
    await link_admin(api)
    assert "notices go to" in (await command(api, "notify <#C0900|alerts>"))["text"]

    await add_version(api, author, "v2 {{ t }}")
    r = await api.put(
        f"/api/v1/prompts/{PROMPT}/labels/production", author, json={"version": 2, "reason": "faster"}
    )
    assert r.status_code == 202, r.text
    rid = r.json()["id"]
    runtime = api.app.state.runtime
    before = len(slack.calls_to("/api/chat.postMessage"))
    await notify_once(runtime, post_message)
    (posted,) = slack.calls_to("/api/chat.postMessage")[before:]
    assert posted.problems == []
    assert "asks to move it v1 → v2" in posted.body["text"] and "faster" in posted.body["text"]
    blocks = posted.body["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("approval_approve", rid),
        ("approval_reject", rid),
    ]

    # the author's click is refused (four eyes), a viewer lacks the permission, an unlinked user is told to link
    status, text = await click(api, slack, "U0AUTH", "approval_approve", rid)
    assert status == 200 and "four-eyes" in text
    status, text = await click(api, slack, "U0VIEW", "approval_approve", rid)
    assert "approval:review" in text
    status, text = await click(api, slack, "U0NOBODY", "approval_approve", rid)
    assert "not linked" in text
    assert await label_version(api) == 1
    # the reviewer's click moves the label
    status, text = await click(api, slack, "U0REV", "approval_approve", rid)
    assert status == 200 and "applied (1/1 approvals)" in text and "now serves v2" in text
    assert await label_version(api) == 2
    r = await api.get(f"/api/v1/approvals/{rid}")
    decision = r.json()["request"]["decisions"][0]
    assert decision["reviewerId"].startswith("usr_") and decision["reviewerRole"] == "PromptEngineer"
    assert decision["comment"] == "approved in Slack"

    # Reject from a second request
    await add_version(api, author, "v3 {{ t }}")
    r = await api.put(f"/api/v1/prompts/{PROMPT}/labels/production", author, json={"version": 3})
    rid = r.json()["id"]
    status, text = await click(api, slack, "U0REV", "approval_reject", rid)
    assert "You rejected" in text and "rejected (0/1 approvals)" in text
    assert await label_version(api) == 2


async def test_approve_over_socket_mode(db_url: str, tmp_path: Path, sapi: Any, slack: SlackStub) -> None:
    """The same button press arriving as a Socket Mode ``interactive`` envelope: acknowledged at once, decided as
    the linked user, answered through the response_url."""
    api = sapi
    author = await member(api, "author@example.test", "PromptEngineer")
    reviewer = await member(api, "reviewer@example.test", "PromptEngineer")
    for slack_user, token in (("U0AUTH", author), ("U0REV", reviewer)):
        assert (await link(api, slack_user, token)).status_code == 201
    r = await api.post(
        "/api/v1/prompts", json={"name": PROMPT, "template": "v1 {{ t }}", "labels": ["production"]}
    )
    assert r.status_code == 201, r.text
    await set_rules(api, {"production": {"required": 1}})
    await add_version(api, author, "v2 {{ t }}")
    r = await api.put(f"/api/v1/prompts/{PROMPT}/labels/production", author, json={"version": 2})
    assert r.status_code == 202, r.text
    rid = r.json()["id"]

    def press(user: str, hook: str) -> str:
        return slack.send_envelope(
            "interactive",
            {
                "type": "block_actions",
                "team": {"id": TEAM},
                "user": {"id": user, "team_id": TEAM},
                "actions": [{"action_id": "approval_approve", "value": rid, "type": "button"}],
                "response_url": f"{slack.url}/hooks/T/{hook}",
            },
        )

    async with socket_bot(db_url, tmp_path, slack):
        await acked(slack, press("U0AUTH", "sock-author"))  # four eyes: refused, told why
        await until(lambda: slack.calls_to("/hooks/T/sock-author"), "the answer to the author")
        assert "four-eyes" in slack.calls_to("/hooks/T/sock-author")[0].body["text"]
        assert await label_version(api) == 1
        await acked(slack, press("U0REV", "sock-reviewer"))
        await until(lambda: slack.calls_to("/hooks/T/sock-reviewer"), "the answer to the reviewer")
        (answer,) = slack.calls_to("/hooks/T/sock-reviewer")
        assert answer.problems == [] and "now serves v2" in answer.body["text"]
    assert await label_version(api) == 2
