"""Run payloads sealed where a project asks for it (``settings.privacy.sealRunPayloads``): a gateway call that
names its end user is sealed under that end user's key, every other run (SDK traces, playground) under the
project's run-payload key; the API shows plaintext until the subject is erased and ``[erased]`` after, the
database never holds the plaintext, the access export includes the end user's runs, and the chain verifies.
With the setting off runs are stored exactly as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.gateway.support import drained, gateway_app, openai_client
from tests.privacy.test_erasure_api import stored_text
from tests.support.app import Api
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import fake_fixture, shared_fake_fixture  # noqa: F401 (fixtures)

END_USER = "dana.endcustomer@example.org"
GATEWAY_TEXT = "my parcel Quokka-4411 never arrived"
SDK_INPUT = "Summarise the Wombat-7702 complaint"
SDK_OUTPUT = "The Wombat-7702 customer is unhappy"
SDK_TOOL = "lookup_order_Numbat9"
SDK_ERROR = "upstream refused text Bilby-3390"
PLAYGROUND_TEXT = "hello from Echidna-5521"
SECRETS = ("Quokka-4411", "Wombat-7702", "Numbat9", "Bilby-3390", "Echidna-5521", END_USER)


def leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s.lower() in text.lower()]


async def set_sealing(api: Api, on: bool) -> str:
    """Turn the setting on or off; the project's id."""
    r = await api.patch("/api/v1/projects/current", json={"settings": {"privacy": {"sealRunPayloads": on}}})
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["privacy"] == {"sealRunPayloads": on}
    return str(r.json()["id"])


async def record_runs(api: Api) -> dict[str, str]:
    """One gateway call naming its end user, one SDK trace and one playground run; their ids."""
    client = openai_client(api)
    raw = await client.chat.completions.with_raw_response.create(
        model="fake/gpt-4o-mini", messages=[{"role": "user", "content": GATEWAY_TEXT}], user=END_USER
    )
    gateway_id = raw.headers["x-promptops-run-id"]
    await drained(api)
    r = await api.post(
        "/api/v1/runs/batch",
        json={
            "runs": [
                {
                    "model": "m",
                    "input": {"prompt": SDK_INPUT},
                    "output": SDK_OUTPUT,
                    "toolCalls": [{"name": SDK_TOOL, "arguments": "{}"}],
                    "status": "error",
                    "errorMessage": SDK_ERROR,
                }
            ]
        },
    )
    assert r.status_code in (200, 201), r.text
    sdk_id = r.json()["runIds"][0]
    r = await api.post(
        "/api/v1/playground/run",
        json={
            "messages": [{"role": "user", "content": PLAYGROUND_TEXT}],
            "models": [{"provider": "fake", "model": "gpt-4o-mini"}],
        },
    )
    assert r.status_code == 200, r.text
    return {"gateway": gateway_id, "sdk": sdk_id, "playground": r.json()["results"][0]["runId"]}


async def run_of(api: Api, run_id: str) -> dict[str, Any]:
    r = await api.get(f"/api/v1/runs/{run_id}")
    assert r.status_code == 200, r.text
    one: dict[str, Any] = r.json()
    listed = {
        item["id"]: item for item in (await api.get("/api/v1/runs", params={"limit": 50})).json()["items"]
    }
    assert listed[run_id] == one  # the list and the detail reveal alike
    return one


def assert_plain(runs: dict[str, dict[str, Any]]) -> None:
    gateway, sdk, playground = runs["gateway"], runs["sdk"], runs["playground"]
    assert gateway["input"]["messages"][0]["content"] == GATEWAY_TEXT
    assert GATEWAY_TEXT.split()[0] in gateway["output"] and "Quokka-4411" in gateway["output"]
    assert sdk["input"] == {"prompt": SDK_INPUT} and sdk["output"] == SDK_OUTPUT
    assert sdk["toolCalls"] == [{"name": SDK_TOOL, "arguments": "{}"}] and sdk["errorMessage"] == SDK_ERROR
    assert playground["input"]["messages"][0]["content"] == PLAYGROUND_TEXT
    assert "Echidna-5521" in playground["output"]


async def all_runs(api: Api, ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {name: await run_of(api, run_id) for name, run_id in ids.items()}


async def test_sealed_run_payloads_are_unreadable_after_erasure(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        project_id = await set_sealing(api, True)
        ids = await record_runs(api)
        runs = await all_runs(api, ids)
        assert_plain(runs)
        # Stored sealed only: no plaintext anywhere in the database.
        assert leaked(await stored_text(api)) == []

        # The end user's access export holds their gateway run, revealed; not the project's other runs.
        r = await api.post("/api/v1/privacy/subjects/resolve", json={"endUser": END_USER})
        assert r.status_code == 200, r.text
        subject = r.json()["subjectId"]
        assert r.json()["known"] is True
        r = await api.get(f"/api/v1/privacy/subjects/{subject}/export")
        assert r.status_code == 200, r.text
        exported = r.json()["runs"]
        assert [x["id"] for x in exported] == [ids["gateway"]]
        assert exported[0]["input"]["messages"][0]["content"] == GATEWAY_TEXT

        # Erasing the end user shreds their run; the others still read.
        r = await api.post(f"/api/v1/privacy/subjects/{subject}/erase")
        assert r.status_code == 200, r.text
        after = await all_runs(api, ids)
        assert (
            after["gateway"]["input"] == {"prompt": "[erased]"} and after["gateway"]["output"] == "[erased]"
        )
        assert after["sdk"]["output"] == SDK_OUTPUT and after["playground"] == runs["playground"]
        r = await api.get(f"/api/v1/privacy/subjects/{subject}/export")
        assert leaked(r.text) == [] and r.json()["runs"][0]["output"] == "[erased]"

        # The project's run-payload subject shreds every other sealed run at once.
        payload_subject = "rpl_" + project_id.split("_", 1)[1]
        r = await api.post(f"/api/v1/privacy/subjects/{payload_subject}/erase")
        assert r.status_code == 200, r.text
        assert r.json()["kind"] == "runs" and r.json()["alreadyErased"] is False
        after = await all_runs(api, ids)
        sdk = after["sdk"]
        assert sdk["input"] == {"prompt": "[erased]"} and sdk["output"] == "[erased]"
        assert sdk["toolCalls"] == [{"content": "[erased]"}] and sdk["errorMessage"] == "[erased]"
        assert after["playground"]["output"] == "[erased]"
        assert leaked(str(after)) == []

        # A new run after erasure gets a fresh key and reads again.
        r = await api.post(
            "/api/v1/runs/batch",
            json={"runs": [{"model": "m", "input": {"prompt": "fresh"}, "output": "new"}]},
        )
        assert (await run_of(api, r.json()["runIds"][0]))["output"] == "new"

        assert leaked(await stored_text(api)) == []
        verify = (await api.get("/api/v1/audit/verify")).json()
        assert verify["ok"] is True, verify
        changed = (await api.get("/api/v1/audit", params={"eventType": "ProjectUpdated"})).json()["events"]
        assert changed[0]["data"]["changes"]["settings"]["to"]["privacy"] == {"sealRunPayloads": True}
        # Another project's payload subject is not found here.
        r = await api.post("/api/v1/privacy/subjects/rpl_01aaaaaaaaaaaaaaaaaaaaaaaa/erase")
        assert r.status_code == 404 and r.json()["code"] == "subject_not_found"


async def test_without_the_setting_runs_are_stored_as_before(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    async with gateway_app(db_url, tmp_path, fake) as api:
        r = await api.patch(
            "/api/v1/projects/current", json={"settings": {"privacy": {"sealRunPayloads": "yes"}}}
        )
        assert r.status_code == 422, r.text
        await set_sealing(api, False)
        ids = await record_runs(api)
        assert_plain(await all_runs(api, ids))
        stored = await stored_text(api)
        assert "Quokka-4411" in stored and "Wombat-7702" in stored and "$sealed" not in stored


async def cases_of(api: Api, name: str, version: int) -> dict[str, dict[str, Any]]:
    """{source run id: case} of a dataset version."""
    r = await api.get(f"/api/v1/datasets/{name}/versions/{version}/cases", params={"limit": 50})
    assert r.status_code == 200, r.text
    return {c["sourceRunId"]: c for c in r.json()["items"]}


async def test_dataset_cases_copied_from_sealed_runs_are_sealed_and_erased_with_them(
    db_url: str, tmp_path: Path, fake: FakeLLMServer
) -> None:
    """A case made from a sealed run is stored sealed under the run's subject: it reads as plaintext (cases,
    export, the subject's access export), stays sealed through edits, and reads ``[erased]`` once its subject
    is erased, while the other subject's case still reads."""
    async with gateway_app(db_url, tmp_path, fake) as api:
        project_id = await set_sealing(api, True)
        ids = await record_runs(api)
        name = "support/sealed-cases"
        r = await api.post(
            "/api/v1/datasets/from-runs", json={"name": name, "runIds": [ids["gateway"], ids["sdk"]]}
        )
        assert r.status_code == 201, r.text
        assert r.json()["added"] == 2
        cases = await cases_of(api, name, 1)
        gateway, sdk = cases[ids["gateway"]], cases[ids["sdk"]]
        assert (
            gateway["input"]["messages"][0]["content"] == GATEWAY_TEXT
            and "Quokka-4411" in gateway["expected"]
        )
        assert sdk["input"] == {"input": SDK_INPUT} and sdk["expected"] == SDK_OUTPUT
        r = await api.get(f"/api/v1/datasets/{name}/export", params={"format": "jsonl"})
        assert r.status_code == 200 and GATEWAY_TEXT in r.text and SDK_OUTPUT in r.text

        # An edit by operations and a full resend (as a client that round-trips the cases) stay sealed.
        r = await api.post(
            f"/api/v1/datasets/{name}/versions",
            json={"operations": [{"op": "update", "key": sdk["key"], "tags": ["reviewed"]}]},
        )
        assert r.status_code == 201, r.text
        exported = [orjson.loads(line) for line in r_lines(await api.get(f"/api/v1/datasets/{name}/export"))]
        for case in exported:
            case["tags"] = [*case.get("tags", []), "resent"]
        r = await api.post(f"/api/v1/datasets/{name}/versions", json={"cases": exported})
        assert r.status_code == 201, r.text
        assert (await cases_of(api, name, 3))[ids["sdk"]]["expected"] == SDK_OUTPUT
        assert leaked(await stored_text(api)) == []  # cases too: no plaintext in the database

        # The end user's access export lists the copies of their run (one per version).
        r = await api.post("/api/v1/privacy/subjects/resolve", json={"endUser": END_USER})
        subject = r.json()["subjectId"]
        r = await api.get(f"/api/v1/privacy/subjects/{subject}/export")
        assert r.status_code == 200, r.text
        copies = r.json()["datasetCases"]
        assert sorted(c["version"] for c in copies) == [1, 2, 3]
        assert {c["dataset"] for c in copies} == {name} and all(
            c["sourceRunId"] == ids["gateway"] for c in copies
        )
        assert copies[0]["input"]["messages"][0]["content"] == GATEWAY_TEXT

        # Erasing the end user shreds their copies in every version; the project subject's case still reads.
        r = await api.post(f"/api/v1/privacy/subjects/{subject}/erase")
        assert r.status_code == 200, r.text
        for version in (1, 2, 3):
            after = await cases_of(api, name, version)
            assert after[ids["gateway"]]["input"] == {"input": "[erased]"}
            assert after[ids["gateway"]]["expected"] == "[erased]"
            assert after[ids["sdk"]]["expected"] == SDK_OUTPUT
        r = await api.get(f"/api/v1/privacy/subjects/{subject}/export")
        assert leaked(r.text) == [] and r.json()["datasetCases"][0]["expected"] == "[erased]"

        r = await api.post(f"/api/v1/privacy/subjects/rpl_{project_id.split('_', 1)[1]}/erase")
        assert r.status_code == 200, r.text
        after = await cases_of(api, name, 3)
        assert (
            after[ids["sdk"]]["input"] == {"input": "[erased]"}
            and after[ids["sdk"]]["expected"] == "[erased]"
        )
        r = await api.get(f"/api/v1/datasets/{name}/export", params={"format": "jsonl"})
        assert r.status_code == 200 and leaked(r.text) == []


def r_lines(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [line for line in response.text.splitlines() if line.strip()]
