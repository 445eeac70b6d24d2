"""Notification channels through the REST API: signed webhooks, Slack and email delivered to real receivers on
127.0.0.1 (an HTTP server and an aiosmtpd SMTP server), retries and the delivery log, the SSRF guard, secrets
shown once, permissions and audit, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from promptops.alerts import channels
from tests.alerts.support import (
    audit_events,
    create_channel,
    http_receiver,
    smtp_receiver,
    verify,
    wait_deliveries,
)
from tests.support.app import Api, open_api


@pytest.fixture
async def aapi(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app with loopback allowed for outgoing URLs (the provider setting the SSRF guard reads)."""
    api_, client, lifespan = await open_api(db_url, tmp_path, provider_allowed_hosts=["127.0.0.1"])
    try:
        yield api_
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_webhook_is_signed_and_its_secret_shown_once(aapi: Api) -> None:
    with http_receiver() as receiver:
        made = await create_channel(
            aapi, {"name": "ops-hook", "type": "webhook", "url": f"{receiver.url}/hook"}
        )
        secret = made["signingSecret"]
        assert secret.startswith("whsec_") and made["secretHint"].endswith(secret[-4:])
        assert made["config"] == {"url": f"{receiver.url}/hook"}
        shown = (await aapi.get("/api/v1/alert-channels/ops-hook")).json()
        assert shown["signingSecret"] is None and shown["id"] == made["id"]
        listed = (await aapi.get("/api/v1/alert-channels")).json()["items"]
        assert [c["name"] for c in listed] == ["ops-hook"] and listed[0]["signingSecret"] is None

        r = await aapi.post("/api/v1/alert-channels/ops-hook/test")
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "pending" and r.json()["event"] == "test"
        (delivery,) = await wait_deliveries(aapi, "ops-hook")
        assert (
            delivery["status"] == "sent" and delivery["attempts"] == 1 and delivery["responseStatus"] == 200
        )
        (got,) = receiver.requests
        assert got.path == "/hook" and verify(secret, got)
        assert (
            got.headers["x-promptops-event"] == "test"
            and got.headers["x-promptops-delivery"] == delivery["id"]
        )
        assert got.json()["event"] == "test" and got.json()["channel"] == "ops-hook"
        assert not verify("whsec_wrong", got)

        # rotating gives a new secret, once; the next notification is signed with it
        r = await aapi.patch("/api/v1/alert-channels/ops-hook", json={"rotateSecret": True})
        assert r.status_code == 200, r.text
        rotated = r.json()["signingSecret"]
        assert rotated and rotated != secret
        await aapi.post(f"/api/v1/alert-channels/{made['id']}/test")
        await wait_deliveries(aapi, "ops-hook", count=2)
        assert verify(rotated, receiver.requests[1]) and not verify(secret, receiver.requests[1])

    created_events = await audit_events(aapi, "AlertChannelCreated")
    assert created_events[0]["data"]["hasSecret"] is True
    for event_type in ("AlertChannelCreated", "AlertChannelUpdated", "AlertChannelTested"):
        for event in await audit_events(aapi, event_type):
            assert secret not in str(event) and rotated not in str(event)
    updated = await audit_events(aapi, "AlertChannelUpdated")
    assert updated[0]["data"]["changed"] == ["signingSecret"]


async def test_slack_and_email_channels_deliver(aapi: Api) -> None:
    with http_receiver() as receiver, smtp_receiver() as smtp:
        slack_url = f"{receiver.url}/services/T000/B000/secretpath"
        slack = await create_channel(aapi, {"name": "slack", "type": "slack", "url": slack_url})
        assert slack["config"] == {"host": "127.0.0.1"} and slack["signingSecret"] is None
        assert "secretpath" not in str(slack)
        email = await create_channel(
            aapi,
            {
                "name": "qa-mail",
                "type": "email",
                "email": {
                    "host": smtp.host,
                    "port": smtp.port,
                    "from": "alerts@example.com",
                    "to": ["qa@example.com", "lead@example.com"],
                    "starttls": False,
                },
            },
        )
        assert email["config"]["to"] == ["qa@example.com", "lead@example.com"] and email["config"]["from"]

        assert (await aapi.post("/api/v1/alert-channels/slack/test")).status_code == 202
        assert (await aapi.post("/api/v1/alert-channels/qa-mail/test")).status_code == 202
        (slack_delivery,) = await wait_deliveries(aapi, "slack")
        (mail_delivery,) = await wait_deliveries(aapi, "qa-mail")
        assert slack_delivery["status"] == "sent" and mail_delivery["status"] == "sent", mail_delivery
        (got,) = receiver.requests
        assert got.path == "/services/T000/B000/secretpath"
        body = got.json()
        assert body["text"] == "[PromptOps] Test notification" and body["blocks"][0]["type"] == "header"
        assert "x-promptops-signature" not in got.headers
        ((envelope, message),) = smtp.messages
        assert envelope.mail_from == "alerts@example.com"
        assert sorted(envelope.rcpt_tos) == ["lead@example.com", "qa@example.com"]
        assert message["Subject"] == "[PromptOps] Test notification"
        assert "qa-mail" in message.get_payload()


async def test_failed_delivery_is_retried_then_given_up(aapi: Api) -> None:
    runtime = aapi.app.state.runtime
    with http_receiver() as receiver:
        receiver.fail = 100
        await create_channel(aapi, {"name": "flaky", "type": "webhook", "url": receiver.url})
        await aapi.post("/api/v1/alert-channels/flaky/test")
        # the background send failed once: it waits for its retry
        first: dict = {}
        for _ in range(200):
            first = (await aapi.get("/api/v1/alert-channels/flaky/deliveries")).json()["items"][0]
            if first["attempts"] == 1 and first["lastError"]:
                break
            await asyncio.sleep(0.05)
        assert first["status"] == "pending" and first["responseStatus"] == 500
        assert "HTTP 500" in first["lastError"]
        # nothing is due before the backoff has passed
        assert await channels.deliver_due(runtime, now=datetime.now(UTC)) == 0
        later = datetime.now(UTC)
        for _ in range(channels.MAX_ATTEMPTS - 1):
            later += timedelta(hours=1)
            assert await channels.deliver_due(runtime, now=later) == 1
        final = (await aapi.get("/api/v1/alert-channels/flaky/deliveries")).json()["items"][0]
        assert final["status"] == "failed" and final["attempts"] == channels.MAX_ATTEMPTS
        assert len(receiver.requests) == channels.MAX_ATTEMPTS
        failed = (
            await aapi.get("/api/v1/alert-channels/flaky/deliveries", params={"status": "failed"})
        ).json()
        assert [d["id"] for d in failed["items"]] == [final["id"]]


async def test_channel_problems(api: Api) -> None:
    # the default app allows no private hosts: loopback and metadata addresses are refused
    for url in ("http://127.0.0.1:9/hook", "http://169.254.169.254/latest"):
        r = await api.post("/api/v1/alert-channels", json={"name": "x", "type": "webhook", "url": url})
        assert r.status_code == 422 and r.json()["code"] == "unsafe_base_url", r.text
    r = await api.post(
        "/api/v1/alert-channels",
        json={
            "name": "m",
            "type": "email",
            "email": {"host": "127.0.0.1", "port": 25, "from": "a@example.com", "to": ["b@example.com"]},
        },
    )
    assert r.status_code == 422 and r.json()["code"] == "unsafe_base_url"
    r = await api.post(
        "/api/v1/alert-channels", json={"name": "x", "type": "webhook", "url": "ftp://example.com/x"}
    )
    assert r.status_code == 422 and r.json()["code"] == "unsafe_base_url"
    for body in (
        {"name": "x", "type": "email"},
        {"name": "x", "type": "webhook"},
        {
            "name": "x",
            "type": "email",
            "email": {"host": "mail.example.com", "from": "nope", "to": ["b@example.com"]},
        },
        {
            "name": "x",
            "type": "email",
            "email": {"host": "mail.example.com", "from": "a@example.com", "to": []},
        },
        {
            "name": "x",
            "type": "email",
            "email": {
                "host": "mail.example.com",
                "from": "a@example.com",
                "to": ["b@example.com"],
                "username": "u",
            },
        },
        {"name": "bad/name", "type": "webhook", "url": "https://example.com/h"},
        {"name": "x", "type": "pager", "url": "https://example.com/h"},
    ):
        r = await api.post("/api/v1/alert-channels", json=body)
        assert r.status_code == 422, (body, r.text)
    r = await api.get("/api/v1/alert-channels/nope")
    assert r.status_code == 404 and r.json()["code"] == "channel_not_found"
    r = await api.post("/api/v1/alert-channels/nope/test")
    assert r.status_code == 404


async def test_channel_changes_and_permissions(aapi: Api) -> None:
    viewer = (await aapi.make_key("Viewer"))["key"]
    qa = (await aapi.make_key("QAAnalyst"))["key"]
    engineer = (await aapi.make_key("PromptEngineer"))["key"]
    body = {"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/h"}
    for key in (viewer, qa):
        r = await aapi.post("/api/v1/alert-channels", key, json=body)
        assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    made = await create_channel(aapi, body, key=engineer)
    assert (await aapi.get("/api/v1/alert-channels", viewer)).status_code == 200
    assert (await aapi.post("/api/v1/alert-channels/hook/test", viewer)).status_code == 403
    assert (await aapi.delete("/api/v1/alert-channels/hook", qa)).status_code == 403
    r = await aapi.post("/api/v1/alert-channels", json=body)
    assert r.status_code == 409 and r.json()["code"] == "channel_exists"
    r = await aapi.patch(
        "/api/v1/alert-channels/hook",
        json={"email": {"host": "h.example.com", "from": "a@example.com", "to": ["b@example.com"]}},
    )
    assert r.status_code == 409 and r.json()["code"] == "channel_type_mismatch"
    r = await aapi.patch("/api/v1/alert-channels/hook", json={"name": "hook2", "enabled": False})
    assert r.status_code == 200 and r.json()["name"] == "hook2" and r.json()["enabled"] is False
    assert r.json()["signingSecret"] is None
    r = await aapi.delete(f"/api/v1/alert-channels/{made['id']}", engineer)
    assert r.status_code == 204
    assert (await aapi.get("/api/v1/alert-channels/hook2")).status_code == 404
    deleted = await audit_events(aapi, "AlertChannelDeleted")
    assert deleted[0]["data"]["name"] == "hook2"
