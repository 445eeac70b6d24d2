"""Datasets built from recorded runs: playground calls against a fake OpenAI-compatible server become cases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import ADMIN_EMAIL, ADMIN_PASSWORD, Api
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import fake_fixture, provider_app, shared_fake_fixture  # noqa: F401 (fixtures)

BASE = "/api/v1/datasets"
MODEL = [{"provider": "openai-test", "model": "gpt-4o-mini"}]


@pytest.fixture
async def papi(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> AsyncIterator[Api]:
    async with provider_app(db_url, tmp_path, fake, "openai-test") as api:
        yield api


async def play(api: Api, key: str | None = None, **body: Any) -> dict[str, Any]:
    r = await api.post("/api/v1/playground/run", *([key] if key else []), json={"models": MODEL, **body})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()["results"][0]
    return result


async def cases_of(api: Api, name: str, version: int) -> list[dict[str, Any]]:
    r = await api.get(f"{BASE}/{name}/versions/{version}/cases", params={"limit": 1000})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_runs_of_a_prompt_become_cases_with_recovered_variables(papi: Api, fake: FakeLLMServer) -> None:
    reviews = ["I love it", "It broke on day one", "I love it", "Decent\nbut loud"]
    runs = [await play(papi, prompt="sentiment/few-shot", variables={"review": t}) for t in reviews]
    await play(papi, template="Say hello to {{ who }} please", variables={"who": "Ada"})
    r = await papi.post(
        f"{BASE}/from-runs",
        json={
            "name": "prod/sentiment",
            "filter": {"promptId": "sentiment/few-shot"},
            "commitMessage": "harvest",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["runs"], body["added"], body["duplicates"], body["existing"], body["recovered"]) == (
        4,
        3,
        1,
        0,
        3,
    )
    assert body["version"]["source"] == "runs" and body["version"]["caseCount"] == 3
    cases = await cases_of(papi, "prod/sentiment", 1)
    # chronological, one case per distinct input, the variables of the template recovered
    assert [c["input"] for c in cases] == [
        {"review": "It broke on day one"},
        {"review": "I love it"},
        {"review": "Decent\nbut loud"},
    ]
    newest_love = runs[2]
    love = cases[1]
    assert love["sourceRunId"] == newest_love["runId"] and love["expected"] == newest_love["text"]
    assert love["expected"].startswith("You said:") and love["tags"] == ["source:playground"]
    assert love["metadata"]["runId"] == newest_love["runId"] and love["metadata"]["model"] == "gpt-4o-mini"

    # a raw template run (no registry version) keeps its rendered text as the input; existing inputs are skipped
    template_run = (await papi.get("/api/v1/runs", params={"limit": 1})).json()["items"][0]
    r = await papi.post(
        f"{BASE}/from-runs",
        json={
            "name": "prod/sentiment",
            "runIds": [template_run["id"], runs[0]["runId"]],
            "expectedFrom": "none",
        },
    )
    assert r.status_code == 201, r.text
    assert (r.json()["added"], r.json()["existing"], r.json()["version"]["version"]) == (1, 1, 2)
    added = (await cases_of(papi, "prod/sentiment", 2))[-1]
    assert added["input"] == {"input": "Say hello to Ada please"} and added["expected"] is None
    # nothing new: no version
    r = await papi.post(f"{BASE}/from-runs", json={"name": "prod/sentiment", "runIds": [template_run["id"]]})
    assert r.status_code == 200 and r.json()["created"] is False and r.json()["version"]["version"] == 2

    r = await papi.post(f"{BASE}/from-runs", json={"name": "x", "runIds": ["run_00000000000000000000000000"]})
    assert r.status_code == 404 and r.json()["code"] == "run_not_found"
    r = await papi.post(f"{BASE}/from-runs", json={"name": "x", "filter": {"promptId": "support/reply"}})
    assert r.status_code == 422 and r.json()["code"] == "no_runs"
    r = await papi.post(f"{BASE}/from-runs", json={"name": "x", "filter": {"promptId": "no/such"}})
    assert r.status_code == 404
    r = await papi.post(f"{BASE}/from-runs", json={"name": "x", "runIds": [runs[0]["runId"]], "filter": {}})
    assert r.status_code == 422
    events = (await papi.get("/api/v1/audit", params={"eventType": "DatasetVersionCreated"})).json()["events"]
    assert events[0]["data"]["source"] == "runs" and events[0]["data"]["added"] == 1


async def test_chat_runs_failed_runs_and_other_projects(papi: Api, fake: FakeLLMServer) -> None:
    variables = {"product": "Acme Router", "customer_name": "Ana", "message": "It keeps\nrebooting."}
    chat = await play(papi, prompt="support/reply", variables=variables)
    fake.script("openai", status=500, error="server")
    r = await papi.post(
        "/api/v1/playground/run",
        json={"models": MODEL, "messages": [{"role": "user", "content": "hello there"}]},
    )
    assert r.status_code == 502 and r.json()["runId"]

    r = await papi.post(f"{BASE}/from-runs", json={"name": "support/tickets", "runIds": [chat["runId"]]})
    assert r.status_code == 201 and r.json()["recovered"] == 1
    case = (await cases_of(papi, "support/tickets", 1))[0]
    # the default of max_sentences was rendered too, and comes back as the declared integer
    assert case["input"] == {**variables, "max_sentences": 4}

    r = await papi.post(
        f"{BASE}/from-runs", json={"name": "support/errors", "filter": {"status": "error", "limit": 10}}
    )
    assert r.status_code == 201, r.text
    case = (await cases_of(papi, "support/errors", 1))[0]
    assert case["input"] == {"messages": [{"role": "user", "content": "hello there"}]}
    assert case["expected"] is None and case["metadata"]["status"] == "error"

    # another project cannot read these runs
    r = await papi.post("/api/v1/auth/login", None, json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    token = r.json()["token"]
    papi.client.cookies.clear()
    assert (await papi.post("/api/v1/projects", token, json={"name": "team-b"})).status_code == 201
    r = await papi.post(
        "/api/v1/api-keys",
        token,
        headers={"X-Project": "team-b"},
        json={"name": "b", "role": "PromptOpsAdmin"},
    )
    other = r.json()["key"]
    r = await papi.post(f"{BASE}/from-runs", other, json={"name": "steal", "runIds": [chat["runId"]]})
    assert r.status_code == 404 and r.json()["code"] == "run_not_found"
    r = await papi.post(f"{BASE}/from-runs", other, json={"name": "steal", "filter": {"status": "any"}})
    assert r.status_code == 422 and r.json()["code"] == "no_runs"
    viewer = (await papi.make_key("Viewer"))["key"]
    r = await papi.post(f"{BASE}/from-runs", viewer, json={"name": "v", "runIds": [chat["runId"]]})
    assert r.status_code == 403
