"""Crypto-shredding: personal fields are never stored in plaintext, and after erasure they are unreadable
everywhere (API answers, database bytes, DSAR and audit exports) while the audit chain still verifies."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from tests.support.app import ADMIN_KEY, Api

EMAIL = "erin.example@example.com"
NAME = "Erin Quillfeather"
END_USER = "dana.endcustomer@example.org"
USER_NOTE = "Erin thinks the tone is off for Zanzibar customers"
END_USER_NOTE = "Dana mentioned her order 77-ALPHA-991 was late"
PASSWORD = "erin-secret-pass-1"
SECRETS = (EMAIL, NAME, END_USER, USER_NOTE, END_USER_NOTE, "Quillfeather", "77-ALPHA-991", "Zanzibar")
EXAMPLE = "support/reply"


def database_bytes(api: Api) -> bytes:
    """Everything the database holds, as bytes: the SQLite files (with the WAL) or every PostgreSQL row."""
    url: str = api.app.state.runtime.settings.database_url
    if url.startswith("sqlite"):
        path = Path(url.split(":///", 1)[1])
        with sqlite3.connect(path) as conn:  # fold the WAL in too, then read every file there is
            conn.execute("PRAGMA wal_checkpoint(FULL)")
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    raise AssertionError("use postgres_rows for PostgreSQL")


async def stored_text(api: Api) -> str:
    url: str = api.app.state.runtime.settings.database_url
    if url.startswith("sqlite"):
        return database_bytes(api).decode("latin-1")
    conn = await asyncpg.connect(url)
    try:
        tables = [
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        parts = []
        for table in tables:
            rows = await conn.fetch(f'SELECT t::text AS row FROM "{table}" t')
            parts.extend(r["row"] for r in rows)
        return "\n".join(parts)
    finally:
        await conn.close()


def leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s.lower() in text.lower()]


async def login(api: Api, email: str, password: str) -> Any:
    r = await api.post("/api/v1/auth/login", None, json={"email": email, "password": password})
    api.client.cookies.clear()
    return r


async def seed_subject_data(api: Api) -> dict[str, str]:
    r = await api.post(
        "/api/v1/members", json={"email": EMAIL, "name": NAME, "role": "PromptEngineer", "password": PASSWORD}
    )
    assert r.status_code == 201, r.text
    user_id = r.json()["userId"]
    r = await login(api, EMAIL, PASSWORD)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    # Erin rates as herself (no "user": the acting user is the subject) and records a run.
    r = await api.post("/api/v1/feedback", token, json={"prompt": EXAMPLE, "score": 2, "notes": USER_NOTE})
    assert r.status_code == 201, r.text
    r = await api.post(
        "/api/v1/runs/batch",
        token,
        json={"runs": [{"model": "m", "input": {"prompt": "hello"}, "output": "hi", "prompt": EXAMPLE}]},
    )
    assert r.status_code in (200, 201), r.text
    # An application reports feedback from one of its end users.
    r = await api.post(
        "/api/prompt/feedback",
        json={"promptId": EXAMPLE, "user": END_USER, "score": 1, "notes": END_USER_NOTE},
    )
    assert r.status_code == 201, r.text
    return {"userId": user_id, "token": token}


async def test_personal_data_is_sealed_then_unreadable_after_erasure(api: Api) -> None:
    seeded = await seed_subject_data(api)
    user_id = seeded["userId"]

    # Readable through the API while the subjects exist ...
    members = {m["userId"]: m for m in (await api.get("/api/v1/members")).json()}
    assert members[user_id]["email"] == EMAIL and members[user_id]["name"] == NAME
    notes = {f["notes"]: f for f in (await api.get("/api/v1/feedback")).json()["items"]}
    assert {USER_NOTE, END_USER_NOTE} <= set(notes) and notes[END_USER_NOTE]["user"] == END_USER
    by_email = (await api.get("/api/v1/feedback", params={"user": END_USER})).json()["items"]
    assert [f["notes"] for f in by_email] == [END_USER_NOTE]
    events = (await api.get("/api/v1/audit", params={"user": EMAIL, "limit": 200})).json()["events"]
    assert events and {e["user"] for e in events} == {EMAIL}  # shown through the key, stored as the id
    # ... but never stored in plaintext, and never in the audit chain.
    assert leaked(await stored_text(api)) == []

    r = await api.post("/api/v1/privacy/subjects/resolve", json={"endUser": END_USER})
    assert r.status_code == 200, r.text
    end_user = r.json()
    assert end_user["subjectId"].startswith("eus_") and end_user["known"] and not end_user["erased"]
    r = await api.post("/api/v1/privacy/subjects/resolve", json={"email": EMAIL.upper()})
    assert r.json()["subjectId"] == user_id and r.json()["kind"] == "user"

    # Erase both subjects.
    for subject in (user_id, end_user["subjectId"]):
        r = await api.post(f"/api/v1/privacy/subjects/{subject}/erase")
        assert r.status_code == 200, r.text
        assert r.json()["subjectId"] == subject and r.json()["alreadyErased"] is False
    again = await api.post(f"/api/v1/privacy/subjects/{user_id}/erase")
    assert again.status_code == 200 and again.json()["alreadyErased"] is True

    # API answers show the marker.
    members = {m["userId"]: m for m in (await api.get("/api/v1/members")).json()}
    assert members[user_id]["email"] == "[erased]" and members[user_id]["name"] == "[erased]"
    items = (await api.get("/api/v1/feedback")).json()["items"]
    assert {(f["user"], f["notes"]) for f in items} == {("[erased]", "[erased]")}
    one = (await api.get(f"/api/v1/feedback/{items[0]['id']}")).json()
    assert one["notes"] == "[erased]"
    audit_page = (await api.get("/api/v1/audit", params={"limit": 200})).json()
    assert {e["user"] for e in audit_page["events"] if e["actorId"] == user_id} == {"[erased]"}
    # The account is gone: no login, the old session is revoked.
    assert (await login(api, EMAIL, PASSWORD)).status_code == 401
    assert (await api.get("/api/v1/auth/me", seeded["token"])).status_code == 401

    # No export holds the plaintext: the subject export, the audit export.
    for subject in (user_id, end_user["subjectId"]):
        r = await api.get(f"/api/v1/privacy/subjects/{subject}/export")
        assert r.status_code == 200, r.text
        assert leaked(r.text) == [] and r.json()["erased"] is True
    dsar = (await api.get(f"/api/v1/privacy/subjects/{user_id}/export")).json()
    assert dsar["account"]["email"] == "[erased]" and dsar["feedback"][0]["notes"] == "[erased]"
    audit_export = await api.get("/api/v1/audit/export")
    assert audit_export.status_code == 200, audit_export.text
    assert leaked(audit_export.text) == [] and "SubjectErased" in audit_export.text
    assert leaked(r.text + str(audit_page)) == []

    # The database holds no plaintext, and the chain verifies.
    assert leaked(await stored_text(api)) == []
    verify = (await api.get("/api/v1/audit/verify")).json()
    assert verify["ok"] is True, verify
    erased = [e for e in audit_page["events"] if e["eventType"] == "SubjectErased"]
    assert {e["data"]["subjectId"] for e in erased} == {user_id, end_user["subjectId"]}

    # An end user seen again after erasure gets a fresh key; the old records stay erased.
    r = await api.post(
        "/api/prompt/feedback", json={"promptId": EXAMPLE, "user": END_USER, "score": 5, "notes": "new"}
    )
    assert r.status_code == 201 and r.json()["notes"] == "new"
    mine = (await api.get("/api/v1/feedback", params={"user": END_USER})).json()["items"]
    assert sorted(f["notes"] for f in mine) == ["[erased]", "new"]


async def test_feedback_audit_event_holds_subject_and_digest_only(api: Api) -> None:
    r = await api.post(
        "/api/prompt/feedback",
        json={"promptId": EXAMPLE, "user": END_USER, "score": 4, "notes": END_USER_NOTE},
    )
    assert r.status_code == 201
    event = (await api.get("/api/v1/audit", params={"eventType": "FeedbackSubmitted"})).json()["events"][0]
    assert event["data"]["user"].startswith("eus_")
    assert event["data"]["notes"].startswith("hmac-sha256:") and leaked(str(event)) == []
    # Empty notes stay empty (nothing to hide, and the digest of "" would say so anyway).
    r = await api.post(
        "/api/prompt/feedback", json={"promptId": EXAMPLE, "user": "u2", "score": 4, "notes": ""}
    )
    event = (await api.get("/api/v1/audit", params={"eventType": "FeedbackSubmitted"})).json()["events"][0]
    assert event["data"]["notes"] == ""


async def test_erasure_permissions_and_problems(api: Api) -> None:
    seeded = await seed_subject_data(api)
    user_id = seeded["userId"]
    keys = {role: (await api.make_key(role))["key"] for role in ("Viewer", "QAAnalyst", "PromptEngineer")}
    compliance = (await api.make_key("ComplianceOfficer"))["key"]
    for role, key in keys.items():
        for method, path in (
            ("POST", f"/api/v1/privacy/subjects/{user_id}/erase"),
            ("GET", f"/api/v1/privacy/subjects/{user_id}/export"),
            ("PUT", "/api/v1/privacy/retention"),
        ):
            r = await api.request(method, path, key, json={} if method == "PUT" else None)
            assert r.status_code == 403 and r.json()["code"] == "permission_denied", (role, path, r.text)
    assert (await api.get("/api/v1/privacy/retention", keys["Viewer"])).status_code == 403
    # Problems: a malformed id, an unknown member, an unknown end user, both or neither lookup field.
    r = await api.post("/api/v1/privacy/subjects/prm_01abc/erase")
    assert r.status_code == 422 and r.json()["code"] == "invalid_subject_id"
    r = await api.post("/api/v1/privacy/subjects/NOT-AN-ID/erase")
    assert r.status_code == 422
    r = await api.post("/api/v1/privacy/subjects/usr_00000000000000000000000000/erase")
    assert r.status_code == 404 and r.json()["code"] == "member_not_found"
    r = await api.get("/api/v1/privacy/subjects/eus_0123456789abcdef0123456789abcdef/export")
    assert r.status_code == 404 and r.json()["code"] == "subject_not_found"
    for body in ({}, {"endUser": "a", "email": "a@b.c"}, {"endUser": "x" * 201}, {"other": 1}):
        r = await api.post("/api/v1/privacy/subjects/resolve", json=body)
        assert r.status_code == 422, (body, r.text)
    r = await api.post("/api/v1/privacy/subjects/resolve", json={"email": "nobody@example.com"})
    assert r.status_code == 404
    # Nobody erases their own account.
    r = await api.post(f"/api/v1/privacy/subjects/{user_id}/erase", seeded["token"])
    assert r.status_code == 403  # an engineer lacks privacy:erase in the first place
    # A compliance officer may export and erase.
    r = await api.get(f"/api/v1/privacy/subjects/{user_id}/export", compliance)
    assert r.status_code == 200 and r.json()["account"]["email"] == EMAIL
    r = await api.post(f"/api/v1/privacy/subjects/{user_id}/erase", compliance)
    assert r.status_code == 200 and r.json()["sessionsRevoked"] == 1
    assert (await api.get("/api/v1/audit/verify", ADMIN_KEY)).json()["ok"] is True


async def test_dsar_export_has_everything_about_the_subject(api: Api) -> None:
    seeded = await seed_subject_data(api)
    user_id = seeded["userId"]
    r = await api.get(f"/api/v1/privacy/subjects/{user_id}/export")
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == f'attachment; filename="dsar-{user_id}.json"'
    dsar = r.json()
    assert dsar["format"] == "promptops.dsar/v1" and dsar["subjectId"] == user_id and dsar["kind"] == "user"
    assert dsar["erased"] is False and dsar["truncated"] == []
    assert dsar["account"]["email"] == EMAIL and dsar["account"]["name"] == NAME and dsar["account"]["active"]
    assert [m["role"] for m in dsar["memberships"]] == ["PromptEngineer"]
    assert [f["notes"] for f in dsar["feedback"]] == [USER_NOTE] and dsar["feedback"][0]["user"] == EMAIL
    assert [(x["input"], x["output"]) for x in dsar["runs"]] == [({"prompt": "hello"}, "hi")]
    assert {"UserLoggedIn", "FeedbackSubmitted"} & {e["eventType"] for e in dsar["auditEvents"]}
    assert "FeedbackSubmitted" in {e["eventType"] for e in dsar["auditEvents"]}
    generated = datetime.fromisoformat(dsar["generatedAt"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - generated).total_seconds()) < 3600
    # The end user's export holds their feedback only; the export itself is audited (ids only).
    subject = (await api.post("/api/v1/privacy/subjects/resolve", json={"endUser": END_USER})).json()[
        "subjectId"
    ]
    dsar = (await api.get(f"/api/v1/privacy/subjects/{subject}/export")).json()
    assert dsar["account"] is None and dsar["runs"] == []
    assert [(f["user"], f["notes"]) for f in dsar["feedback"]] == [(END_USER, END_USER_NOTE)]
    exported = (await api.get("/api/v1/audit", params={"eventType": "SubjectExported"})).json()["events"]
    assert [e["data"]["subjectId"] for e in exported] == [subject, user_id]
    assert exported[0]["data"]["feedback"] == 1 and leaked(str(exported)) == []
