"""Signed audit: Ed25519 keys with rotation, signed checkpoints, the JSONL export and its offline verification.

The tamper cases go through the real CLI on a file (``promptops audit verify --file``) against an export made by
a live server; the key and chain cases through the REST API. Both databases (``db_url``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from promptops.governance import exportfile, signatures
from promptops.governance.audit import hash_record
from promptops.governance.models import AuditSigningKey
from promptops.jobs import periodic
from tests.support.app import ADMIN_EMAIL, ADMIN_KEY, ADMIN_PASSWORD, Api
from tests.support.cli_support import Cli, LiveServer

pytest_plugins = ["tests.support.cli_support"]


def _post(server: LiveServer, path: str, body: Any = None) -> dict[str, Any]:
    r = httpx.post(
        f"{server.url}{path}", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, json=body or {}, timeout=120
    )
    assert r.status_code in (200, 201), r.text
    data: dict[str, Any] = r.json()
    return data


def _make_history(server: LiveServer, versions: int = 4) -> None:
    _post(
        server,
        "/api/v1/prompts",
        {"name": "signed/demo", "template": "v1 {{ x }}", "variables": [{"name": "x"}]},
    )
    for n in range(2, versions + 1):
        _post(
            server,
            "/api/v1/prompts/signed%2Fdemo/versions",
            {"template": f"v{n} {{{{ x }}}}", "variables": [{"name": "x"}]},
        )


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _events(lines: list[dict[str, Any]]) -> list[int]:
    return [i for i, line in enumerate(lines) if line["type"] == "event"]


def _first_problem(cli: Cli, export: Path, keys: Path) -> dict[str, Any]:
    result = cli.fails("audit", "verify", "--file", str(export), "--public-key", str(keys), "--json")
    report = json.loads(result.stdout)
    assert report["ok"] is False
    first: dict[str, Any] = report["firstProblem"]
    return first


def test_export_verifies_offline_and_tampering_is_located(
    cli: Cli, server: LiveServer, tmp_path: Path
) -> None:
    _make_history(server)
    checkpoint = cli.json("audit", "checkpoint")
    assert checkpoint["chain"] == "project" and checkpoint["seq"] > 0
    later_version = _post(
        server,
        "/api/v1/prompts/signed%2Fdemo/versions",
        {"template": "v9 {{ x }}", "variables": [{"name": "x"}]},
    )
    assert later_version["version"]["version"] == 5
    keys = tmp_path / "keys.json"
    cli.ok("audit", "public-keys", "-o", str(keys))
    export = tmp_path / "export.jsonl"
    out = cli.ok("audit", "export", "-o", str(export)).stdout
    assert "Exported" in out and export.is_file()

    ok = cli.ok("audit", "verify", "--file", str(export), "--public-key", str(keys))
    assert "OK: project chain" in ok.stdout
    report = json.loads(
        cli.ok("audit", "verify", "--file", str(export), "--public-key", str(keys), "--json").stdout
    )
    assert report["ok"] and report["signaturesVerified"] == 2  # the stored checkpoint and the trailer

    lines = _lines(export)
    assert lines[0]["type"] == "header" and lines[-1]["type"] == "trailer"
    assert {line["type"] for line in lines} == {"header", "publicKey", "event", "checkpoint", "trailer"}
    events = _events(lines)
    assert [lines[i]["event"]["seq"] for i in events] == list(range(1, len(events) + 1))
    assert all(lines[i]["hash"] == hash_record(lines[i]["event"]) for i in events)
    # no private key material anywhere in the export
    assert "private" not in export.read_text().lower()

    target = events[3]  # seq 4
    seq = lines[target]["event"]["seq"]

    # 1. one event's data modified
    edited = [dict(line) for line in lines]
    edited[target] = {**lines[target], "event": {**lines[target]["event"], "data": {"name": "evil"}}}
    first = _first_problem(cli, _write(tmp_path / "edited.jsonl", edited), keys)
    assert (first["seq"], first["kind"]) == (seq, "edited")
    human = cli.fails("audit", "verify", "--file", str(tmp_path / "edited.jsonl"), "--public-key", str(keys))
    assert f"at seq {seq}" in human.stdout and "edited" in human.stdout

    # 2. two events swapped
    swapped = list(lines)
    swapped[target], swapped[target + 1] = swapped[target + 1], swapped[target]
    first = _first_problem(cli, _write(tmp_path / "swapped.jsonl", swapped), keys)
    assert (first["seq"], first["kind"]) == (seq, "reordered")

    # 3. one event deleted
    deleted = lines[:target] + lines[target + 1 :]
    first = _first_problem(cli, _write(tmp_path / "deleted.jsonl", deleted), keys)
    assert (first["seq"], first["kind"]) == (seq, "missing")

    # 4. a checkpoint forged: its head moved to a later event without a new signature
    cp_index = next(i for i, line in enumerate(lines) if line["type"] == "checkpoint")
    forged = list(lines)
    later = lines[events[-1]]["event"]["seq"]
    forged[cp_index] = {**lines[cp_index], "seq": later, "headHash": lines[events[-1]]["hash"]}
    first = _first_problem(cli, _write(tmp_path / "forged.jsonl", forged), keys)
    assert (first["seq"], first["kind"]) == (later, "bad_signature")

    # 5. a checkpoint signed by a key that is not trusted (an attacker's own key)
    attacker, _, attacker_pub = signatures.new_private_key()
    fake = {**lines[cp_index], "keyId": signatures.key_id(attacker_pub)}
    fake["signature"] = signatures.sign(attacker, signatures.checkpoint_payload_of(fake))
    first = _first_problem(
        cli, _write(tmp_path / "foreign.jsonl", [*lines[:cp_index], fake, *lines[cp_index + 1 :]]), keys
    )
    assert (first["seq"], first["kind"]) == (lines[cp_index]["seq"], "unknown_key")

    # 6. an event rewritten and every later hash and link recomputed: only the signatures catch it
    rewritten = [dict(line) for line in lines]
    prev: str | None = None
    for i in events:
        record = dict(rewritten[i]["event"])
        if prev is not None:
            record["prevHash"] = prev
        if record["seq"] == 2:
            record["data"] = {**record["data"], "name": "rewritten"}
        rewritten[i] = {"type": "event", "hash": hash_record(record), "event": record}
        prev = rewritten[i]["hash"]
    first = _first_problem(cli, _write(tmp_path / "rewritten.jsonl", rewritten), keys)
    assert first["kind"] == "checkpoint_mismatch" and first["seq"] == checkpoint["seq"]

    # 7. the newest event removed: the signed trailer covers it
    cut = lines[: events[-1]] + lines[events[-1] + 1 :]
    first = _first_problem(cli, _write(tmp_path / "cut.jsonl", cut), keys)
    assert first["kind"] == "truncated" and first["seq"] == later

    # 8. the file cut short (no trailer)
    first = _first_problem(cli, _write(tmp_path / "short.jsonl", lines[:-3]), keys)
    assert first["kind"] in {"no_trailer", "truncated"}

    # the organization chain (sign-ins, signing keys) exports and verifies the same way
    org_export = tmp_path / "org.jsonl"
    cli.ok("audit", "checkpoint", "--chain", "org")
    cli.ok("audit", "export", "--chain", "org", "-o", str(org_export))
    org_ok = cli.ok("audit", "verify", "--file", str(org_export), "--public-key", str(keys))
    assert "OK: org chain" in org_ok.stdout
    assert _lines(org_export)[0]["chain"] == "org"

    # bad key input is a usage error, not a crash
    bad = cli.fails("audit", "verify", "--file", str(export), "--public-key", "not-a-key", code=2)
    assert "public key" in bad.stderr or "public key" in bad.stdout


async def _export(api: Api, chain: str = "project", key: str = ADMIN_KEY) -> list[bytes]:
    r = await api.get("/api/v1/audit/export", key, params={"chain": chain})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return r.content.splitlines()


async def _keys(api: Api) -> dict[str, Any]:
    r = await api.get("/api/v1/audit/public-keys")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_key_rotation_keeps_old_checkpoints_verifiable(api: Api) -> None:
    r = await api.post("/api/v1/audit/checkpoints", json={})
    assert r.status_code == 201, r.text
    first = r.json()
    r = await api.post("/api/v1/audit/signing-keys/rotate")
    assert r.status_code == 200, r.text
    keys = r.json()["keys"]
    assert len(keys) == 2 and [k["current"] for k in keys] == [False, True]
    old, new = keys
    assert old["keyId"] == first["keyId"] and old["validUntil"] is not None
    assert "BEGIN PUBLIC KEY" in new["publicKeyPem"]
    r = await api.post("/api/v1/audit/checkpoints", json={"chain": "project"})
    second = r.json()
    assert second["keyId"] == new["keyId"] != first["keyId"]

    lines = await _export(api)
    trusted = signatures.parse_public_keys(json.dumps(await _keys(api)))
    report = exportfile.verify_lines(lines, trusted)
    assert report.ok, report.to_dict()
    assert report.signatures_ok == 3  # two checkpoints and the trailer, by the old and the new key

    # only the new key trusted: the old checkpoint is named
    only_new = signatures.parse_public_keys(new["publicKey"])
    problems = exportfile.verify_lines(lines, only_new).to_dict()
    assert problems["firstProblem"]["kind"] == "unknown_key"
    assert problems["firstProblem"]["seq"] == first["seq"]

    # the old key signing after it was replaced is refused when the key list (with periods) is trusted
    async with api.app.state.runtime.db.transaction() as session:
        row = (
            await session.execute(select(AuditSigningKey).where(AuditSigningKey.id == old["keyId"]))
        ).scalar_one()
        assert row.private_key_ciphertext.startswith("v1.")  # sealed by the secret box, never the raw key
        box = api.app.state.runtime.box
        private = signatures.private_from_raw(
            signatures.unb64(box.decrypt(row.private_key_ciphertext, f"audit-signing-key:{row.id}"))
        )
    decoded = [json.loads(line) for line in lines]
    trailer = decoded[-1]
    late = {**trailer, "keyId": old["keyId"]}
    late["signature"] = signatures.sign(private, signatures.checkpoint_payload_of(late))
    report = exportfile.verify_lines([*lines[:-1], json.dumps(late).encode()], trusted)
    assert report.to_dict()["firstProblem"]["kind"] == "key_out_of_period"

    # rotation is audited in the organization chain; only admins may rotate
    r = await api.get("/api/v1/audit", params={"chain": "org", "eventType": "AuditSigningKeyRotated"})
    assert [e["data"]["newKeyId"] for e in r.json()["events"]] == [new["keyId"]]
    compliance = (await api.make_key("ComplianceOfficer"))["key"]
    r = await api.post("/api/v1/audit/signing-keys/rotate", compliance)
    assert (r.status_code, r.json()["code"]) == (403, "permission_denied")


async def test_logins_go_to_the_organization_chain(api: Api) -> None:
    r = await api.post("/api/v1/auth/login", None, json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    api.client.cookies.clear()
    r = await api.post("/api/v1/auth/logout", token)
    assert r.status_code == 204, r.text

    project = (await api.get("/api/v1/audit", params={"limit": 200})).json()["events"]
    assert not {"UserLoggedIn", "UserLoggedOut"} & {e["eventType"] for e in project}
    org = (await api.get("/api/v1/audit", params={"chain": "org", "limit": 200})).json()["events"]
    assert [e["eventType"] for e in org if e["eventType"].startswith("User")] == [
        "UserLoggedOut",
        "UserLoggedIn",
    ]
    assert org[0]["projectId"] is not None

    verified = (await api.get("/api/v1/audit/verify", params={"chain": "org"})).json()
    assert verified["ok"] and verified["eventsChecked"] == len(org)
    r = await api.post("/api/v1/audit/checkpoints", json={"chain": "org"})
    assert r.status_code == 201 and r.json()["chainId"] == r.json()["orgId"]
    lines = await _export(api, "org")
    header = json.loads(lines[0])
    assert header["chain"] == "org"
    report = exportfile.verify_lines(lines, signatures.parse_public_keys(json.dumps(await _keys(api))))
    assert report.ok and report.events == len(org) + 1, report.to_dict()  # + the signing key's creation

    # the organization chain (every project's sign-ins) needs audit:verify; the project chain audit:read
    engineer = (await api.make_key("PromptEngineer"))["key"]
    assert (await api.get("/api/v1/audit/export", engineer)).status_code == 200
    for path in ("/api/v1/audit/export", "/api/v1/audit", "/api/v1/audit/checkpoints"):
        r = await api.get(path, engineer, params={"chain": "org"})
        assert (r.status_code, r.json()["code"]) == (403, "permission_denied"), path
    viewer = (await api.make_key("Viewer"))["key"]
    assert (await api.get("/api/v1/audit/export", viewer)).status_code == 403
    assert (await api.get("/api/v1/audit/public-keys", viewer)).status_code == 403
    r = await api.get("/api/v1/audit/export", params={"chain": "everything"})
    assert r.status_code == 422


async def test_periodic_checkpoints_sign_every_grown_chain_once(api: Api) -> None:
    runtime = api.app.state.runtime
    assert await periodic.run_now(runtime, "audit.checkpoint")
    project = (await api.get("/api/v1/audit/checkpoints")).json()["checkpoints"]
    assert len(project) == 1 and project[0]["trigger"] == "periodic"
    assert await periodic.run_now(runtime, "audit.checkpoint")  # nothing new: nothing signed again
    assert len((await api.get("/api/v1/audit/checkpoints")).json()["checkpoints"]) == 1

    r = await api.post("/api/v1/prompts", json={"name": "periodic/one", "template": "hi"})
    assert r.status_code == 201, r.text
    assert await periodic.run_now(runtime, "audit.checkpoint")
    checkpoints = (await api.get("/api/v1/audit/checkpoints")).json()["checkpoints"]
    assert len(checkpoints) == 2 and checkpoints[0]["seq"] > checkpoints[1]["seq"]
    org = (await api.get("/api/v1/audit/checkpoints", params={"chain": "org"})).json()["checkpoints"]
    assert org and org[0]["chain"] == "org"  # the key's creation is the organization chain's first event

    lines = await _export(api)
    report = exportfile.verify_lines(lines, signatures.parse_public_keys(json.dumps(await _keys(api))))
    assert report.ok and report.signatures_ok == 3, report.to_dict()
    r = await api.get("/api/v1/audit", params={"eventType": "AuditExported"})
    assert r.json()["events"][0]["data"] == {"chain": "project", "chainId": json.loads(lines[0])["chainId"]}
