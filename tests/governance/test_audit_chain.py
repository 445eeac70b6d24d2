"""The audit trail: every lifecycle action is recorded, filters work, no secrets, and tampering is detected."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from promptops.db import JSONType
from promptops.governance.audit import GENESIS_HASH, compute_hash, verify_events
from promptops.governance.models import AuditChainHead, AuditEvent
from tests.support.app import ADMIN_EMAIL, ADMIN_KEY, ADMIN_PASSWORD, Api

KEY_USER = "apikey:bootstrap-admin"
MEMBER_PASSWORD = "member-secret-pass-42"
PROMPT = {
    "name": "audit/demo",
    "description": "audited",
    "template": "v1 {{ x }}",
    "variables": [{"name": "x"}],
}


async def login_token(api: Api) -> str:
    r = await api.post("/api/v1/auth/login", None, json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    api.client.cookies.clear()
    return str(r.json()["token"])


async def all_events(api: Api, key: str = ADMIN_KEY, **params: Any) -> list[dict[str, Any]]:
    """Every event matching ``params``, newest first, following the cursor."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        r = await api.get("/api/prompt/audit", key, params=query)
        assert r.status_code == 200, r.text
        events += r.json()["events"]
        cursor = r.json()["nextCursor"]
        if cursor is None:
            return events


async def run_lifecycle(api: Api) -> dict[str, Any]:
    """Every audited action once; returns what the checks need (ids, secrets, the acting user)."""
    session = await login_token(api)
    r = await api.post("/api/v1/prompts", json=PROMPT)
    assert r.status_code == 201, r.text
    prompt_id = r.json()["prompt"]["id"]
    versions = [r.json()["version"]["id"]]
    for n in (2, 3):
        r = await api.post(
            "/api/v1/prompts/audit/demo/versions",
            json={"template": f"v{n} {{{{ x }}}}", "variables": [{"name": "x"}]},
        )
        assert r.status_code == 201, r.text
        versions.append(r.json()["version"]["id"])
    for n in (2, 3):
        r = await api.put(
            "/api/v1/prompts/audit/demo/labels/production", json={"version": n, "reason": f"ship {n}"}
        )
        assert r.status_code == 200 and r.json()["deployed"] is True, r.text
    r = await api.put("/api/v1/prompts/audit/demo/labels/candidate", json={"version": 1})
    assert r.status_code == 200 and r.json()["deployed"] is False, r.text
    r = await api.post(
        "/api/v1/prompts/audit/demo/labels/production/rollback",
        json={"reason": "regression", "approver": "lead@example.com"},
    )
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    r = await api.post(
        "/api/prompt/rollback",
        json={
            "promptId": prompt_id,
            "toVersion": 1,
            "reason": "older is better",
            "approver": "cto@example.com",
        },
    )
    assert r.status_code == 200 and r.json()["currentVersion"] == 1, r.text
    r = await api.post("/api/v1/prompts/audit/demo/fork", json={"newName": "audit/demo-fork", "version": 3})
    assert r.status_code == 201, r.text
    fork_id = r.json()["prompt"]["id"]

    r = await api.post("/api/v1/api-keys", session, json={"name": "audited-key", "role": "Viewer"})
    assert r.status_code == 201, r.text
    new_key = r.json()
    assert (await api.delete(f"/api/v1/api-keys/{new_key['id']}", session)).status_code == 200
    r = await api.post(
        "/api/v1/members",
        session,
        json={"email": "audited@example.com", "role": "Viewer", "password": MEMBER_PASSWORD},
    )
    assert r.status_code == 201, r.text
    member_id = r.json()["userId"]
    assert (
        await api.patch(f"/api/v1/members/{member_id}", session, json={"role": "QAAnalyst"})
    ).status_code == 200
    assert (await api.delete(f"/api/v1/members/{member_id}", session)).status_code == 204
    r = await api.patch("/api/v1/projects/current", json={"description": "audited project"})
    assert r.status_code == 200, r.text
    me = (await api.get("/api/v1/auth/me", session)).json()
    return {
        "prompt_id": prompt_id,
        "versions": versions,
        "fork_id": fork_id,
        "key": new_key,
        "member_id": member_id,
        "session": session,
        "user": me["name"],
        "user_id": me["id"],
        "project_id": me["projectId"],
    }


def find(events: list[dict[str, Any]], event_type: str, **where: Any) -> dict[str, Any]:
    """The one event of ``event_type`` whose fields/data match ``where`` (``data__x`` for data fields)."""

    def matches(e: dict[str, Any]) -> bool:
        for field, value in where.items():
            got = e["data"].get(field[6:]) if field.startswith("data__") else e.get(field)
            if got != value:
                return False
        return True

    found = [e for e in events if e["eventType"] == event_type and matches(e)]
    assert len(found) == 1, f"{event_type} {where}: {len(found)} matching events"
    return found[0]


async def test_every_lifecycle_action_is_audited(api: Api) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    ctx = await run_lifecycle(api)
    finished = datetime.now(UTC) + timedelta(seconds=1)
    events = await all_events(api)
    pid, v1, v2, v3 = ctx["prompt_id"], *ctx["versions"]
    user, key_id, member = ctx["user"], ctx["key"]["id"], ctx["member_id"]

    checked = [
        find(events, "PromptCreated", promptId=pid, user=KEY_USER, data__name="audit/demo"),
        *(
            find(
                events,
                "PromptVersionCreated",
                promptId=pid,
                user=KEY_USER,
                data__version=n,
                data__versionId=vid,
            )
            for n, vid in ((1, v1), (2, v2), (3, v3))
        ),
        find(events, "PromptDeployed", promptId=pid, user=KEY_USER, data__version=2, data__previousId=None),
        find(events, "PromptDeployed", promptId=pid, user=KEY_USER, data__version=3, data__previousId=v2),
        find(events, "LabelMoved", promptId=pid, user=KEY_USER, data__label="candidate", data__version=1),
        find(
            events,
            "RollbackTriggered",
            promptId=pid,
            user=KEY_USER,
            data__versionId=v2,
            data__previousId=v3,
            data__approver="lead@example.com",
            data__reason="regression",
        ),
        find(
            events,
            "RollbackTriggered",
            promptId=pid,
            user=KEY_USER,
            data__versionId=v1,
            data__previousId=v2,
            data__approver="cto@example.com",
            data__reason="older is better",
        ),
        find(
            events,
            "PromptForked",
            promptId=ctx["fork_id"],
            user=KEY_USER,
            data__fromPromptId=pid,
            data__fromVersionId=v3,
        ),
        find(events, "ApiKeyCreated", user=user, data__apiKeyId=key_id, data__prefix=ctx["key"]["prefix"]),
        find(events, "ApiKeyRevoked", user=user, data__apiKeyId=key_id),
        find(events, "MemberAdded", user=user, data__userId=member, data__role="Viewer"),
        find(events, "MemberRoleChanged", user=user, data__userId=member, data__to="QAAnalyst"),
        find(events, "MemberRemoved", user=user, data__userId=member),
        find(events, "ProjectUpdated", user=KEY_USER),
    ]
    for event in checked:
        assert started <= datetime.fromisoformat(event["timestamp"]) <= finished, event
        assert event["projectId"] == ctx["project_id"]
        assert event["actorType"] == ("api_key" if event["user"] == KEY_USER else "user")
    assert user == ADMIN_EMAIL
    assert find(events, "ProjectUpdated")["data"]["changes"]["description"]["to"] == "audited project"
    # newest first, gapless, each linked to its predecessor
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(len(events), 0, -1))
    assert all(new["prevHash"] == old["hash"] for new, old in pairwise(events))
    assert events[-1]["prevHash"] == GENESIS_HASH

    r = await api.get("/api/v1/audit/verify")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "projectId": ctx["project_id"],
        "ok": True,
        "eventsChecked": len(events),
        "lastSeq": len(events),
        "problems": [],
    }


async def test_no_secret_reaches_the_audit_trail(api: Api) -> None:
    ctx = await run_lifecycle(api)
    me = await api.post("/api/v1/auth/login", None, json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    api.client.cookies.clear()
    secrets = {
        "bootstrap admin key": ADMIN_KEY,
        "created API key": ctx["key"]["key"],
        "admin password": ADMIN_PASSWORD,
        "member password": MEMBER_PASSWORD,
        "session token": ctx["session"],
        "later session token": me.json()["token"],
        "csrf token": me.json()["csrfToken"],
    }
    events = await all_events(api)
    dumped = json.dumps(events)
    leaked = [what for what, secret in secrets.items() if secret in dumped]
    assert not leaked, f"secrets in the audit trail: {leaked}"
    assert ctx["key"]["prefix"] in dumped  # the visible prefix is what identifies a key


async def test_audit_filters_and_cursor_pagination(api: Api) -> None:
    ctx = await run_lifecycle(api)
    events = await all_events(api)
    pid = ctx["prompt_id"]

    by_id = await all_events(api, promptId=pid)
    assert by_id == [e for e in events if e["promptId"] == pid]
    assert sorted(e["eventType"] for e in by_id) == sorted(
        [
            "PromptCreated",
            *["PromptVersionCreated"] * 3,
            "PromptDeployed",
            "PromptDeployed",
            "LabelMoved",
            "RollbackTriggered",
            "RollbackTriggered",
        ]
    )
    assert await all_events(api, promptId="audit/demo") == by_id
    assert await all_events(api, promptId="audit/missing") == []

    by_user = await all_events(api, user=ADMIN_EMAIL)
    assert by_user and by_user == [e for e in events if e["user"] == ADMIN_EMAIL]
    assert {
        "ApiKeyCreated",
        "ApiKeyRevoked",
        "MemberAdded",
        "MemberRoleChanged",
        "MemberRemoved",
    } <= {e["eventType"] for e in by_user}
    assert await all_events(api, user=ctx["user_id"]) == [e for e in events if e["actorId"] == ctx["user_id"]]
    assert await all_events(api, user=KEY_USER) == [e for e in events if e["user"] == KEY_USER]
    # the login went to the organization's chain (governance/test_audit_signing.py covers that chain)
    assert "UserLoggedIn" not in {e["eventType"] for e in by_user}

    deployed = await all_events(api, eventType="PromptDeployed")
    assert deployed == [e for e in events if e["eventType"] == "PromptDeployed"] and len(deployed) >= 2
    assert await all_events(api, eventType="RollbackTriggered", promptId=pid) == [
        e for e in by_id if e["eventType"] == "RollbackTriggered"
    ]
    assert await all_events(api, eventType="NoSuchEvent") == []

    # from is inclusive, to exclusive; compare with the timestamps the API reports
    middle = events[len(events) // 2]
    boundary = datetime.fromisoformat(middle["timestamp"])
    stamp = middle["timestamp"]
    since = await all_events(api, **{"from": stamp})
    until = await all_events(api, to=stamp)
    assert middle in since and middle not in until
    assert since == [e for e in events if datetime.fromisoformat(e["timestamp"]) >= boundary]
    assert until == [e for e in events if datetime.fromisoformat(e["timestamp"]) < boundary]
    assert len(since) + len(until) == len(events)
    window = await all_events(api, **{"from": events[-1]["timestamp"], "to": events[0]["timestamp"]})
    assert window == events[1:]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await all_events(api, **{"from": later}) == []

    # cursor pagination: pages of 4, newest first, no duplicates or gaps, same as one big page
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        r = await api.get("/api/v1/audit", params=params)
        assert r.status_code == 200, r.text
        pages.append(r.json()["events"])
        cursor = r.json()["nextCursor"]
        if cursor is None:
            break
    assert [e for page in pages for e in page] == events
    assert all(len(page) == 4 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 4
    r = await api.get("/api/prompt/audit", params={"promptId": pid, "limit": 2})
    first = r.json()
    assert [e["seq"] for e in first["events"]] == [e["seq"] for e in by_id[:2]] and first["nextCursor"]
    r = await api.get(
        "/api/prompt/audit", params={"promptId": pid, "limit": 2, "cursor": first["nextCursor"]}
    )
    assert r.json()["events"] == by_id[2:4]

    for bad in ({"cursor": "abc"}, {"limit": 0}, {"limit": 201}, {"from": "yesterday"}):
        r = await api.get("/api/prompt/audit", params=bad)
        assert r.status_code == 422, (bad, r.text)


# --- tampering directly in the database -----------------------------------------------------------------------


def engine_of(api: Api) -> AsyncEngine:
    engine: AsyncEngine = api.app.state.runtime.db.engine
    return engine


async def chain_state(api: Api) -> tuple[str, int]:
    """(project id, number of events) of the admin key's project, after checking the chain is intact."""
    r = await api.get("/api/v1/audit/verify")
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    assert r.json()["lastSeq"] == r.json()["eventsChecked"] >= 5
    return r.json()["projectId"], r.json()["lastSeq"]


async def verify(api: Api) -> dict[str, Any]:
    r = await api.get("/api/v1/audit/verify")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def event_id(api: Api, project_id: str, seq: int) -> str:
    async with engine_of(api).connect() as conn:
        row = await conn.execute(
            text("SELECT id FROM audit_events WHERE project_id = :p AND seq = :s"),
            {"p": project_id, "s": seq},
        )
        return str(row.scalar_one())


async def test_edited_event_is_reported_at_its_seq(api: Api) -> None:
    project_id, last = await chain_state(api)
    seq = last // 2
    target = await event_id(api, project_id, seq)
    update = text("UPDATE audit_events SET data = :data WHERE project_id = :p AND seq = :s").bindparams(
        bindparam("data", type_=JSONType)
    )
    async with engine_of(api).begin() as conn:
        await conn.execute(update, {"data": {"name": "forged"}, "p": project_id, "s": seq})
    result = await verify(api)
    assert result["ok"] is False
    assert [(p["kind"], p["seq"], p["eventId"]) for p in result["problems"]] == [("edited", seq, target)]


async def test_deleted_middle_event_is_reported_missing(api: Api) -> None:
    project_id, last = await chain_state(api)
    seq = last // 2
    async with engine_of(api).begin() as conn:
        deleted = await conn.execute(
            text("DELETE FROM audit_events WHERE project_id = :p AND seq = :s"), {"p": project_id, "s": seq}
        )
        assert deleted.rowcount == 1
    result = await verify(api)
    assert result["ok"] is False and result["eventsChecked"] == last - 1
    assert [(p["kind"], p["seq"]) for p in result["problems"]] == [("missing", seq)]


async def test_deleted_newest_event_is_reported_truncated(api: Api) -> None:
    project_id, last = await chain_state(api)
    async with engine_of(api).begin() as conn:
        await conn.execute(
            text("DELETE FROM audit_events WHERE project_id = :p AND seq = :s"), {"p": project_id, "s": last}
        )
    result = await verify(api)
    assert result["ok"] is False and result["lastSeq"] == last - 1
    assert [(p["kind"], p["seq"]) for p in result["problems"]] == [("truncated", last)]


async def test_edited_and_rehashed_event_breaks_the_next_link(api: Api) -> None:
    project_id, last = await chain_state(api)
    seq = last // 2
    async with AsyncSession(engine_of(api), expire_on_commit=False) as session:
        event = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.project_id == project_id, AuditEvent.seq == seq)
            )
        ).scalar_one()
        event.data = {**event.data, "forged": True}
        event.actor_name = "someone-else"
        event.hash = compute_hash(event)
        await session.commit()
    next_id = await event_id(api, project_id, seq + 1)
    result = await verify(api)
    assert result["ok"] is False
    problems = [(p["kind"], p["seq"], p["eventId"]) for p in result["problems"]]
    assert problems == [("inserted", seq + 1, next_id)]
    assert f"seq {seq}" in result["problems"][0]["detail"]


# --- properties of verify_events on in-memory chains -----------------------------------------------------------

JSON_LEAF = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
EVENT_SPEC = st.fixed_dictionaries(
    {
        "event_type": st.sampled_from(["PromptCreated", "PromptDeployed", "MemberAdded", "ApiKeyRevoked"]),
        "actor_name": st.none() | st.text(max_size=20),
        "prompt_id": st.none() | st.from_regex(r"prm_[a-z0-9]{6}", fullmatch=True),
        "data": st.dictionaries(st.text(max_size=8), JSON_VALUE, max_size=4),
    }
)
CHAINS = st.lists(EVENT_SPEC, min_size=1, max_size=25)
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
PROJECT = "prj_property"


def build_chain(specs: list[dict[str, Any]]) -> tuple[list[AuditEvent], AuditChainHead]:
    events: list[AuditEvent] = []
    prev = GENESIS_HASH
    for seq, spec in enumerate(specs, start=1):
        event = AuditEvent(
            id=f"aud_{seq:06d}",
            project_id=PROJECT,
            seq=seq,
            actor_type="user",
            actor_id="usr_x",
            request_id=f"req-{seq}",
            occurred_at=BASE_TIME + timedelta(milliseconds=seq),
            prev_hash=prev,
            **spec,
        )
        event.hash = compute_hash(event)
        prev = event.hash
        events.append(event)
    return events, AuditChainHead(project_id=PROJECT, last_seq=len(events), last_hash=prev)


def _forge_data(e: AuditEvent) -> None:
    e.data = {**e.data, "__forged__": [e.data.get("__forged__")]}


def _forge_type(e: AuditEvent) -> None:
    e.event_type += "X"


def _forge_actor(e: AuditEvent) -> None:
    e.actor_name = (e.actor_name or "") + "x"


def _forge_prompt(e: AuditEvent) -> None:
    e.prompt_id = (e.prompt_id or "") + "x"


def _forge_time(e: AuditEvent) -> None:
    e.occurred_at += timedelta(microseconds=1)


def _forge_prev(e: AuditEvent) -> None:
    e.prev_hash = ("1" if e.prev_hash[0] != "1" else "2") + e.prev_hash[1:]


EDITS: list[Callable[[AuditEvent], None]] = [
    _forge_data,
    _forge_type,
    _forge_actor,
    _forge_prompt,
    _forge_time,
    _forge_prev,
]
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(specs=CHAINS, order=st.randoms(use_true_random=False))
def test_intact_chain_verifies_in_any_order(specs: list[dict[str, Any]], order: Any) -> None:
    events, head = build_chain(specs)
    shuffled = list(events)
    order.shuffle(shuffled)
    result = verify_events(PROJECT, shuffled, head)
    assert result.ok, result.problems
    assert (result.events_checked, result.last_seq) == (len(events), len(events))


@PROPERTY_SETTINGS
@given(specs=CHAINS, data=st.data())
def test_any_single_edit_is_reported_as_edited(specs: list[dict[str, Any]], data: st.DataObject) -> None:
    events, head = build_chain(specs)
    index = data.draw(st.integers(0, len(events) - 1), label="index")
    edit = data.draw(st.sampled_from(EDITS), label="edit")
    edit(events[index])
    result = verify_events(PROJECT, events, head)
    assert not result.ok
    assert [(p.kind, p.seq, p.event_id) for p in result.problems] == [("edited", index + 1, events[index].id)]


@PROPERTY_SETTINGS
@given(specs=CHAINS, data=st.data())
def test_any_single_delete_is_reported(specs: list[dict[str, Any]], data: st.DataObject) -> None:
    events, head = build_chain(specs)
    index = data.draw(st.integers(0, len(events) - 1), label="index")
    del events[index]
    result = verify_events(PROJECT, events, head)
    assert not result.ok
    kind = "truncated" if index == len(events) else "missing"
    assert [(p.kind, p.seq) for p in result.problems] == [(kind, index + 1)]


@PROPERTY_SETTINGS
@given(specs=CHAINS, data=st.data())
def test_any_edit_with_recomputed_hash_is_reported(specs: list[dict[str, Any]], data: st.DataObject) -> None:
    events, head = build_chain(specs)
    index = data.draw(st.integers(0, len(events) - 1), label="index")
    edit = data.draw(st.sampled_from(EDITS[:-1]), label="edit")  # a re-hashed prev_hash is a relink, below
    edit(events[index])
    events[index].hash = compute_hash(events[index])
    result = verify_events(PROJECT, events, head)
    assert not result.ok
    if index + 1 < len(events):
        assert [(p.kind, p.seq) for p in result.problems] == [("inserted", index + 2)]
    else:
        assert [(p.kind, p.seq) for p in result.problems] == [("head_mismatch", index + 1)]


@PROPERTY_SETTINGS
@given(specs=st.lists(EVENT_SPEC, min_size=2, max_size=25), data=st.data())
def test_a_swapped_or_duplicated_event_is_reported(specs: list[dict[str, Any]], data: st.DataObject) -> None:
    events, head = build_chain(specs)
    index = data.draw(st.integers(0, len(events) - 2), label="index")
    if data.draw(st.booleans(), label="duplicate"):
        events.append(events[index])
    else:  # swap sequence numbers of two neighbours (their hashes then no longer match)
        events[index].seq, events[index + 1].seq = events[index + 1].seq, events[index].seq
    assert not verify_events(PROJECT, events, head).ok
