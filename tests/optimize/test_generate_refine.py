"""PromptOpt ``POST /api/prompt/generate`` and ``POST /api/prompt/refine`` through the REST API, on SQLite and
PostgreSQL: LLM strategies against a real HTTP server speaking the OpenAI wire format (scripted answers), and
the acceptance criterion of refine on the real embedded model (Gemma 3 270M).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import Api
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import fake_fixture, provider_app, shared_fake_fixture  # noqa: F401 (fixtures)
from tests.support.tenancy import make_project_b

FAKE = {"provider": "fake", "model": "gpt-fake"}
TASK = "Classify the sentiment of a product review as positive or negative"
ONE_WORD = r"^\W*[A-Za-z][A-Za-z'-]*\W*$"
VERBOSE_PARENT = {
    "name": "acceptance/sentiment",
    "template": "Is the sentiment of the following review positive or negative?\n\nReview: {{ review }}\nSentiment:",
    "variables": [{"name": "review"}],
    "modelConfig": {
        "provider": "local",
        "model": "gemma-3-270m",
        "params": {"temperature": 0, "max_tokens": 16},
    },
}


@pytest.fixture
async def oapi(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> AsyncIterator[Api]:
    async with provider_app(db_url, tmp_path, fake) as api:
        yield api


async def audit_events(api: Api, event_type: str) -> list[dict[str, Any]]:
    r = await api.get("/api/prompt/audit", params={"eventType": event_type, "limit": 200})
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


async def versions_of(api: Api, name: str) -> list[dict[str, Any]]:
    r = await api.get(f"/api/v1/prompts/{name}/versions", params={"limit": 100})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


# --- generate -------------------------------------------------------------------------------------------------


async def test_generate_mixes_llm_and_structural_candidates(oapi: Api, fake: FakeLLMServer) -> None:
    good = "Decide whether the review is positive or negative.\nReview: {{ review }}\nSentiment:"
    fake.script("openai", text=f"Sure!\n<prompt>\n{good}\n</prompt>")
    fake.script("openai", text="<prompt>Tell me about the weather.</prompt>")  # lost the variable
    fake.script("openai", text=f"<prompt>{good}</prompt>")  # duplicate
    r = await oapi.post(
        "/api/prompt/generate",
        json={
            "task": TASK,
            "context": "Reviews come from an online shop.",
            "count": 5,
            "dataset": "sentiment/reviews",
            "model": FAKE,
            "maxCases": 4,
        },
    )
    assert r.status_code == 201, r.text
    out = r.json()
    candidates = out["candidates"]
    assert len(candidates) == 5
    assert len({c["prompt"] for c in candidates}) == 5
    for c in candidates:
        assert isinstance(c["score"], float) and 0 <= c["score"] <= 1
        assert c["modelVersion"] in ("fake/gpt-fake", "structural")
        assert "{{ review }}" in c["prompt"]
        assert c["evalScore"] is not None and c["evalModel"] == "fake/gpt-fake"
        assert c["score"] == round(0.9 * c["evalScore"] + 0.1 * c["qualityScore"], 4)
    assert [c["score"] for c in candidates] == sorted((c["score"] for c in candidates), reverse=True)
    llm = [c for c in candidates if c["modelVersion"] == "fake/gpt-fake"]
    assert len(llm) == 1 and llm[0]["prompt"] == good and llm[0]["strategy"] == "llm:clarify"
    reasons = {d["strategy"]: d["reason"] for d in out["discarded"]}
    assert reasons == {
        "llm:role": "lost the variable(s) review",
        "llm:format": "duplicate of another candidate",
    }
    # few-shot examples come from the dataset, labels balanced
    shots = [c for c in candidates if "-shot" in c["strategy"]]
    assert shots and all("positive" in c["prompt"] and "negative" in c["prompt"] for c in shots)
    assert out["cases"] == 4 and out["datasetVersionId"].startswith("dsv_")
    # 3 meta-prompt calls, then 5 candidates x 4 cases
    assert len(fake.requests) == 3 + 20

    name = "generated/classify-the-sentiment-of-a-product-review-as"
    assert out["name"] == name
    saved = await versions_of(oapi, name)
    assert {v["id"] for v in saved} == {c["versionId"] for c in candidates}
    assert all(v["source"] == "generated" and set(v["labels"]) <= {"latest"} for v in saved), saved[0][
        "labels"
    ]
    assert {v["metadata"]["promptopt"]["strategy"] for v in saved} == {c["strategy"] for c in candidates}
    events = await audit_events(oapi, "PromptGenerated")
    assert len(events) == 5
    for event in events:
        data = event["data"]
        assert data["promptId"] == out["promptId"] == event["promptId"]
        assert data["templateId"] is None and data["user"] and data["timestamp"]
        assert data["versionId"] in {c["versionId"] for c in candidates}

    # a second run appends versions to the same prompt
    r = await oapi.post(
        "/api/prompt/generate",
        json={"task": TASK, "count": 2, "strategies": ["structural"], "variables": ["review"]},
    )
    assert r.status_code == 201, r.text
    assert r.json()["promptId"] == out["promptId"]
    assert len(await versions_of(oapi, name)) == 7


async def test_generate_from_template_twenty_structural(oapi: Api, fake: FakeLLMServer) -> None:
    base = (await oapi.get("/api/v1/prompts/sentiment/zero-shot@production")).json()["version"]
    r = await oapi.post(
        "/api/prompt/generate",
        json={
            "task": TASK,
            "templateId": "sentiment/zero-shot@production",
            "count": 20,
            "strategies": ["structural"],
        },
    )
    assert r.status_code == 201, r.text
    out = r.json()
    candidates = out["candidates"]
    assert len(candidates) == 20 and len({c["prompt"] for c in candidates}) == 20
    assert base["template"] not in {c["prompt"] for c in candidates}
    assert out["baseVersionId"] == base["id"] and out["templateId"] == "sentiment/zero-shot@production"
    for c in candidates:
        assert c["modelVersion"] == "structural" and c["evalScore"] is None
        assert c["score"] == c["qualityScore"]
        assert "{{ review }}" in c["prompt"]
        assert c["modelConfig"] == base["modelConfig"]
    assert fake.requests == []
    saved = await versions_of(oapi, "sentiment/zero-shot")
    drafts = [v for v in saved if v["id"] in {c["versionId"] for c in candidates}]
    assert len(drafts) == 20
    assert all(v["parentVersionId"] == base["id"] and v["source"] == "generated" for v in drafts)
    # drafts move no label
    r = await oapi.get("/api/v1/prompts/sentiment/zero-shot@production")
    assert r.json()["version"]["id"] == base["id"]
    events = await audit_events(oapi, "PromptGenerated")
    assert len(events) == 20 and {e["data"]["templateId"] for e in events} == {
        "sentiment/zero-shot@production"
    }


async def test_generate_only_llm_falls_back_to_structural(oapi: Api, fake: FakeLLMServer) -> None:
    # Every model answer is junk: structural candidates fill all the slots.
    r = await oapi.post(
        "/api/prompt/generate",
        json={"task": "Summarize the text", "count": 3, "model": FAKE, "strategies": ["llm"]},
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert len(out["candidates"]) == 3 and {c["modelVersion"] for c in out["candidates"]} == {"structural"}
    assert len(out["discarded"]) == 3 and all("input" in d["reason"] for d in out["discarded"])
    assert all("{{ input }}" in c["prompt"] for c in out["candidates"])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"task": TASK, "count": 0}, 422, "validation_error"),
        ({"task": TASK, "count": 21}, 422, "validation_error"),
        ({"task": "", "count": 3}, 422, "validation_error"),
        ({"task": TASK, "templateId": "no/such-prompt"}, 404, "prompt_not_found"),
        ({"task": TASK, "templateId": "sentiment/zero-shot@nolabel"}, 404, "label_not_found"),
        ({"task": TASK, "templateId": "support/reply"}, 422, "unsupported_prompt_kind"),
        ({"task": TASK, "dataset": "no/such-dataset"}, 404, None),
        ({"task": TASK, "templateId": "support/reply", "dataset": "sentiment/reviews"}, 422, None),
        ({"task": TASK, "name": "Bad Name!"}, 422, "invalid_prompt_name"),
        ({"task": TASK, "model": {"provider": "nope", "model": "x"}}, 404, None),
        ({"task": TASK, "strategies": ["magic"]}, 422, "validation_error"),
        ({"task": TASK, "variables": ["1bad"]}, 422, "invalid_variable"),
    ],
)
async def test_generate_rejects_bad_requests(
    oapi: Api, fake: FakeLLMServer, body: dict[str, Any], status: int, code: str | None
) -> None:
    r = await oapi.post("/api/prompt/generate", json=body)
    assert r.status_code == status, r.text
    if code:
        assert r.json()["code"] == code
    assert await audit_events(oapi, "PromptGenerated") == []
    assert (await oapi.get("/api/v1/prompts", params={"limit": 200})).json()["items"].__len__() == 3


async def test_generate_dataset_mismatch_and_permissions(oapi: Api, fake: FakeLLMServer) -> None:
    r = await oapi.post(
        "/api/v1/prompts",
        json={"name": "other/text", "template": "Summarize: {{ text }}", "variables": [{"name": "text"}]},
    )
    assert r.status_code == 201, r.text
    r = await oapi.post(
        "/api/prompt/generate",
        json={"task": TASK, "templateId": "other/text", "dataset": "sentiment/reviews"},
    )
    assert r.status_code == 422 and r.json()["code"] == "dataset_mismatch"
    body = {"task": TASK, "count": 1, "strategies": ["structural"]}
    for role, status in (("Viewer", 403), ("QAAnalyst", 403), ("PromptEngineer", 201)):
        key = (await oapi.make_key(role))["key"]
        r = await oapi.post("/api/prompt/generate", key, json=body)
        assert r.status_code == status, (role, r.text)
    # another project's prompt is not found
    other = (await make_project_b(oapi))["key"]
    r = await oapi.post("/api/prompt/generate", other, json={**body, "templateId": "sentiment/zero-shot"})
    assert r.status_code == 404


# --- refine ---------------------------------------------------------------------------------------------------


async def test_refine_tightens_format_from_a_note(oapi: Api, fake: FakeLLMServer) -> None:
    r = await oapi.post(
        "/api/v1/prompts", json={**VERBOSE_PARENT, "modelConfig": {**FAKE, "params": {"max_tokens": 50}}}
    )
    assert r.status_code == 201, r.text
    parent = r.json()["version"]
    fake.script("openai", text="<prompt>I think the prompt is fine.</prompt>")  # critique-and-edit: junk
    r = await oapi.post(
        "/api/prompt/refine",
        json={"prompt": "acceptance/sentiment", "feedback": "Too chatty - answer with one word"},
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["strategy"] == "tighten-format" and out["parentId"] == parent["id"] and out["version"] == 2
    assert out["modelConfig"]["params"] == {"max_tokens": 4, "temperature": 0, "stop": ["\n", ".", ","]}
    assert out["modelConfig"]["provider"] == "fake"
    assert "+Answer with exactly one word." in out["diff"] and out["diff"].startswith("---")
    assert "Answer with exactly one word." in out["prompt"] and out["prompt"].rstrip().endswith("Sentiment:")
    assert "Winner: tighten-format" in out["rationale"] and "heuristics" in out["rationale"]
    notes = {c["strategy"]: c for c in out["candidates"]}
    assert (
        notes["critique-and-edit"]["applied"] is False
        and "lost the variable" in notes["critique-and-edit"]["note"]
    )
    assert notes["counter-examples"]["applied"] is False
    assert out["scores"] is None and out["feedbackUsed"]["notes"] == 1
    assert len(fake.requests) == 1  # the critique call; no evaluation without cases

    saved = (await oapi.get(f"/api/v1/prompts/acceptance/sentiment@{out['version']}")).json()["version"]
    assert saved["id"] == out["versionId"] and saved["source"] == "refined"
    assert saved["parentVersionId"] == parent["id"] and set(saved["labels"]) <= {"latest"}
    events = await audit_events(oapi, "PromptRefined")
    assert len(events) == 1
    data = events[0]["data"]
    assert data["promptId"] == out["promptId"] == events[0]["promptId"] and data["parentId"] == parent["id"]
    assert data["user"] and data["feedback"] == "Too chatty - answer with one word"
    assert data["deltas"]["modelConfig"] and "+Answer with exactly one word." in data["deltas"]["template"]


async def test_refine_dry_run_saves_nothing_then_accept_saves_the_reviewed_text(
    oapi: Api, fake: FakeLLMServer
) -> None:
    r = await oapi.post(
        "/api/v1/prompts", json={**VERBOSE_PARENT, "modelConfig": {**FAKE, "params": {"max_tokens": 50}}}
    )
    assert r.status_code == 201, r.text
    parent = r.json()["version"]
    fake.script("openai", text="<prompt>I think the prompt is fine.</prompt>")
    note = "Too chatty - answer with one word"
    r = await oapi.post(
        "/api/prompt/refine", json={"prompt": "acceptance/sentiment", "feedback": note, "dryRun": True}
    )
    assert r.status_code == 201, r.text
    preview = r.json()
    assert preview["versionId"] is None and preview["version"] is None
    assert preview["strategy"] == "tighten-format" and "+Answer with exactly one word." in preview["diff"]
    assert "(proposed)" in preview["diff"] and preview["modelConfig"]["params"]["max_tokens"] == 4
    assert len(await versions_of(oapi, "acceptance/sentiment")) == 1  # nothing saved
    assert await audit_events(oapi, "PromptRefined") == []

    # The reviewer edits the proposal and saves it: no model call, the same lineage and audit event.
    calls = len(fake.requests)
    edited = preview["prompt"].replace("exactly one word", "one lowercase word")
    r = await oapi.post(
        "/api/prompt/refine",
        json={
            "prompt": "acceptance/sentiment",
            "feedback": note,
            "accept": {
                "template": edited,
                "strategy": preview["strategy"],
                "params": preview["modelConfig"]["params"],
            },
        },
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert len(fake.requests) == calls
    assert (
        out["version"] == 2 and out["prompt"] == edited and "+Answer with one lowercase word." in out["diff"]
    )
    saved = (await oapi.get("/api/v1/prompts/acceptance/sentiment@2")).json()["version"]
    assert saved["source"] == "refined" and saved["parentVersionId"] == parent["id"]
    assert saved["modelConfig"]["params"] == preview["modelConfig"]["params"]
    events = await audit_events(oapi, "PromptRefined")
    assert len(events) == 1 and events[0]["data"]["feedback"] == note

    # One step at a time, and an accepted text must still be a valid template.
    r = await oapi.post(
        "/api/prompt/refine",
        json={"prompt": "acceptance/sentiment", "dryRun": True, "accept": {"template": "x {{ review }}"}},
    )
    assert r.status_code == 422 and "dryRun" in r.text
    r = await oapi.post(
        "/api/prompt/refine",
        json={"prompt": "acceptance/sentiment", "accept": {"template": "broken {{ review "}},
    )
    assert r.status_code == 422, r.text
    assert len(await versions_of(oapi, "acceptance/sentiment")) == 2


async def test_refine_from_evaluation_failures_chooses_by_quick_evaluation(
    oapi: Api, fake: FakeLLMServer
) -> None:
    # The fake model echoes the first words of the prompt, so a prompt that starts with worked examples ending in
    # the right label "answers" correctly for the cases whose label comes first.
    r = await oapi.post(
        "/api/v1/prompts",
        json={
            "name": "echo/sentiment",
            "template": "Review: {{ review }}\nSentiment:",
            "variables": [{"name": "review"}],
            "modelConfig": FAKE,
        },
    )
    assert r.status_code == 201, r.text
    parent = r.json()["version"]
    r = await oapi.post(
        "/api/v1/evals",
        json={
            "prompts": ["echo/sentiment"],
            "dataset": "sentiment/reviews@1",
            "scorers": [{"type": "icontains"}],
        },
    )
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    for _ in range(600):
        run = (await oapi.get(f"/api/v1/evals/{run_id}")).json()
        if run["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.05)
    assert run["status"] == "completed", run
    fake.reset()
    r = await oapi.post(
        "/api/prompt/refine",
        json={
            "prompt": parent["id"],
            "evalRunId": run_id,
            "strategies": ["counter-examples", "apply-notes"],
            "feedback": "Use the reviewer's words",
            "maxCases": 10,
        },
    )
    assert r.status_code == 201, r.text
    out = r.json()
    scores = out["scores"]
    assert scores["cases"] == 10 and scores["model"] == "fake/gpt-fake"
    assert scores["parent"]["passRate"] == 0.0  # every case failed in the evaluation
    tried = {c["strategy"]: c for c in out["candidates"]}
    assert tried["counter-examples"]["applied"] and tried["counter-examples"]["score"] is not None
    assert tried["apply-notes"]["applied"] and tried["apply-notes"]["score"] is not None
    best = max(tried.values(), key=lambda c: c["score"])
    assert out["strategy"] == best["strategy"] and scores["refined"]["score"] == best["score"]
    assert "quick evaluation on 10 case(s) from evaluation" in out["rationale"]
    assert out["feedbackUsed"]["failedCases"] > 0
    if out["strategy"] == "counter-examples":
        assert out["prompt"].count("Sentiment:") > 1
    # parent + 2 candidates, 10 cases each
    assert len(fake.requests) == 30

    r = await oapi.post("/api/prompt/refine", json={"prompt": parent["id"], "evalRunId": "evr_nope"})
    assert r.status_code == 404
    r = await oapi.post("/api/prompt/refine", json={"prompt": "sentiment/zero-shot", "evalRunId": run_id})
    assert r.status_code == 422 and r.json()["code"] == "no_results_for_version"


async def test_refine_uses_recorded_feedback_and_critique(oapi: Api, fake: FakeLLMServer) -> None:
    r = await oapi.post("/api/v1/prompts", json={**VERBOSE_PARENT, "modelConfig": FAKE})
    assert r.status_code == 201, r.text
    parent = r.json()["version"]
    for score, notes in ((1, "Please respond in JSON"), (5, ""), (2, "")):
        r = await oapi.post("/api/v1/feedback", json={"prompt": parent["id"], "score": score, "notes": notes})
        assert r.status_code == 201, r.text
    r = await oapi.post(
        "/api/prompt/refine",
        json={"prompt": "acceptance/sentiment@1", "useFeedback": True, "strategies": ["tighten-format"]},
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["strategy"] == "tighten-format" and "JSON" in out["prompt"]
    assert out["feedbackUsed"] == {"notes": 1, "lowRatings": 2, "failedCases": 0, "testCases": 0}
    assert fake.requests == []

    edited = "You are a sentiment classifier.\nReview: {{ review }}\nAnswer positive or negative:"
    fake.script("openai", text=f"<prompt>{edited}</prompt>")
    r = await oapi.post(
        "/api/prompt/refine",
        json={
            "prompt": out["versionId"],
            "feedback": "be more direct",
            "strategies": ["critique-and-edit"],
            "model": FAKE,
        },
    )
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["strategy"] == "critique-and-edit" and second["prompt"] == edited
    assert second["parentId"] == out["versionId"] and second["version"] == 3
    sent = fake.requests[0].body
    assert "be more direct" in str(sent)


async def test_refine_rejects_bad_requests(oapi: Api, fake: FakeLLMServer) -> None:
    r = await oapi.post("/api/prompt/refine", json={"prompt": "sentiment/zero-shot"})
    assert r.status_code == 422 and r.json()["code"] == "no_feedback"
    r = await oapi.post("/api/prompt/refine", json={"prompt": "sentiment/zero-shot", "useFeedback": True})
    assert r.status_code == 422 and r.json()["code"] == "no_feedback"
    r = await oapi.post("/api/prompt/refine", json={"prompt": "no/such", "feedback": "shorter"})
    assert r.status_code == 404
    r = await oapi.post("/api/prompt/refine", json={"prompt": "support/reply", "feedback": "shorter"})
    assert r.status_code == 422 and r.json()["code"] == "unsupported_prompt_kind"
    r = await oapi.post(
        "/api/prompt/refine",
        json={"prompt": "sentiment/zero-shot", "feedback": "nice", "strategies": ["tighten-format"]},
    )
    assert r.status_code == 422 and r.json()["code"] == "nothing_to_refine"
    r = await oapi.post(
        "/api/prompt/refine", json={"prompt": "sentiment/zero-shot", "feedback": "x" * 10_001}
    )
    assert r.status_code == 422
    for role in ("Viewer", "QAAnalyst"):
        key = (await oapi.make_key(role))["key"]
        r = await oapi.post(
            "/api/prompt/refine", key, json={"prompt": "sentiment/zero-shot", "feedback": "shorter"}
        )
        assert r.status_code == 403
    assert await audit_events(oapi, "PromptRefined") == []
    assert len(await versions_of(oapi, "sentiment/zero-shot")) == 1


# --- acceptance on the real local model --------------------------------------------------------------------------


async def one_word_pass_rate(api: Api, ref: str, reviews: list[str]) -> float:
    r = await api.post(
        "/api/prompt/evaluate",
        json={
            "prompt": ref,
            "testCases": [{"input": text} for text in reviews],
            "scorers": [{"type": "regex", "value": ONE_WORD}],
        },
        timeout=600,
    )
    assert r.status_code == 200, r.text
    rate: float = r.json()["passRate"]
    return rate


async def sample_reviews(api: Api, count: int) -> list[str]:
    r = await api.get("/api/v1/datasets/sentiment/reviews/versions/1/cases", params={"limit": count})
    assert r.status_code == 200, r.text
    return [c["input"]["review"] for c in r.json()["items"]]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_acceptance_refine_one_word_on_local_model(api: Api) -> None:
    """``refine`` with the note "answer with one word" yields a version that passes a one-word regex scorer
    more often than its parent, on the embedded Gemma 3 270M (default strategies, no test cases)."""
    r = await api.post("/api/v1/prompts", json=VERBOSE_PARENT)
    assert r.status_code == 201, r.text
    parent = r.json()["version"]
    r = await api.post(
        "/api/prompt/refine",
        json={"prompt": "acceptance/sentiment", "feedback": "answer with one word"},
        timeout=600,
    )
    assert r.status_code == 201, r.text
    refined = r.json()
    assert refined["parentId"] == parent["id"] and refined["strategy"] == "tighten-format"
    reviews = await sample_reviews(api, 12)
    before = await one_word_pass_rate(api, parent["id"], reviews)
    after = await one_word_pass_rate(api, refined["versionId"], reviews)
    print(f"one-word pass rate on gemma-3-270m: parent {before:.2f} -> refined {after:.2f}")
    assert after > before
    assert after >= 0.5


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_refine_with_dataset_on_local_model_chooses_by_evaluation(api: Api) -> None:
    r = await api.post("/api/v1/prompts", json=VERBOSE_PARENT)
    assert r.status_code == 201, r.text
    r = await api.post(
        "/api/prompt/refine",
        json={
            "prompt": "acceptance/sentiment",
            "feedback": "answer with one word",
            "dataset": "sentiment/reviews",
            "scorers": [{"type": "regex", "value": ONE_WORD}],
            "strategies": ["tighten-format", "apply-notes"],
            "maxCases": 8,
        },
        timeout=600,
    )
    assert r.status_code == 201, r.text
    out = r.json()
    scores = out["scores"]
    print(f"quick evaluation on gemma-3-270m: {scores}")
    assert out["strategy"] == "tighten-format"
    assert scores["refined"]["passRate"] > scores["parent"]["passRate"]
    assert "quick evaluation on 8 case(s) from dataset sentiment/reviews" in out["rationale"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_generate_on_local_model_returns_count_distinct_candidates(api: Api) -> None:
    """The weak local model may or may not write a usable rewrite; either way ``count`` distinct candidates come
    back, each with a score and a modelVersion, evaluated on the example dataset."""
    r = await api.post(
        "/api/prompt/generate",
        json={
            "task": TASK,
            "templateId": "sentiment/zero-shot@production",
            "count": 3,
            "strategies": ["clarify", "structural"],
            "dataset": "sentiment/reviews",
            "maxCases": 4,
        },
        timeout=600,
    )
    assert r.status_code == 201, r.text
    out = r.json()
    candidates = out["candidates"]
    assert len(candidates) == 3 and len({c["prompt"] for c in candidates}) == 3
    for c in candidates:
        assert c["modelVersion"] in ("local/gemma-3-270m", "structural")
        assert isinstance(c["score"], float) and c["evalModel"] == "local/gemma-3-270m"
    wrote = [c for c in candidates if c["modelVersion"] != "structural"]
    assert len(wrote) + len(out["discarded"]) == 1
    print(
        f"local generate: {[(c['strategy'], c['score']) for c in candidates]}, discarded {out['discarded']}"
    )
