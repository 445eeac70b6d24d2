"""Datasets through the REST API on SQLite and PostgreSQL: versions, patches, files, limits, runs, access."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app import ADMIN_EMAIL, ADMIN_PASSWORD, Api, open_api
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import provider_app

BASE = "/api/v1/datasets"
REPO = Path(__file__).resolve().parents[2]

CASES = [
    {"id": "a", "input": {"review": "Lovely"}, "expected": "positive", "tags": ["short"]},
    {"id": "b", "input": {"review": "Awful, it broke"}, "expected": "negative", "tags": ["short", "edge"]},
    {"input": {"review": "Fine I guess"}, "expected": None},
]


def problem(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json().get("code")


async def create(api: Api, name: str = "team/reviews", cases: list[Any] | None = None, **kw: Any) -> Any:
    r = await api.post(BASE, json={"name": name, "cases": CASES if cases is None else cases, **kw})
    assert r.status_code == 201, r.text
    return r.json()


async def cases_of(api: Api, name: str, version: int, **params: Any) -> list[dict[str, Any]]:
    r = await api.get(f"{BASE}/{name}/versions/{version}/cases", params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def imported(api: Api, name: str, content: str | bytes, fmt: str, **params: Any) -> httpx.Response:
    return await api.post(f"{BASE}/{name}/import", params={"format": fmt, **params}, content=content)


async def events(api: Api, event_type: str) -> list[dict[str, Any]]:
    r = await api.get("/api/v1/audit", params={"eventType": event_type})
    assert r.status_code == 200, r.text
    return r.json()["events"]


# --- the example --------------------------------------------------------------------------------------------


async def test_example_sentiment_dataset_is_loaded(api: Api) -> None:
    r = await api.get(f"{BASE}/sentiment/reviews")
    assert r.status_code == 200, r.text
    latest = r.json()["latest"]
    assert latest["version"] == 1 and latest["caseCount"] >= 40
    cases = await cases_of(api, "sentiment/reviews", 1)
    labels = [c["expected"] for c in cases]
    assert labels.count("positive") == labels.count("negative") == len(cases) // 2
    assert all(set(c["input"]) == {"review"} and 5 <= len(c["input"]["review"].split()) <= 30 for c in cases)
    # the repository's examples/ file is the one the package ships
    shipped = (REPO / "src/promptops/examples/datasets/sentiment-reviews.jsonl").read_bytes()
    assert (REPO / "examples/datasets/sentiment-reviews.jsonl").read_bytes() == shipped
    assert len(shipped.splitlines()) == len(cases)


# --- versions -----------------------------------------------------------------------------------------------


async def test_create_version_patch_and_immutability(api: Api) -> None:
    created = await create(api, description="Team reviews", commitMessage="first")
    assert created["created"] is True and created["version"]["version"] == 1
    assert created["version"]["caseCount"] == 3 and created["version"]["source"] == "manual"
    v1 = await cases_of(api, "team/reviews", 1)
    assert [c["key"] for c in v1[:2]] == ["a", "b"] and len(v1[2]["key"]) == 16  # derived from the input
    assert v1[2]["expected"] is None and v1[1]["tags"] == ["edge", "short"]
    assert [c["position"] for c in v1] == [0, 1, 2]

    # full replacement
    r = await api.post(f"{BASE}/team/reviews/versions", json={"cases": CASES[:2], "commitMessage": "drop c"})
    assert (
        r.status_code == 201 and r.json()["version"]["version"] == 2 and r.json()["version"]["caseCount"] == 2
    )
    # the same content again is a no-op answering the latest version
    r = await api.post(f"{BASE}/team/reviews/versions", json={"cases": CASES[:2]})
    assert r.status_code == 200 and r.json()["created"] is False and r.json()["version"]["version"] == 2

    ops = [
        {"op": "add", "cases": [{"id": "c", "input": {"review": "Superb"}, "expected": "positive"}]},
        {"op": "update", "key": "a", "expected": "very positive", "tags": "x|y"},
        {"op": "remove", "keys": ["b"]},
    ]
    r = await api.post(f"{BASE}/team/reviews/versions", json={"operations": ops, "commitMessage": "patch"})
    assert r.status_code == 201, r.text
    assert r.json()["version"]["version"] == 3 and r.json()["version"]["source"] == "edit"
    v3 = await cases_of(api, "team/reviews", 3)
    assert [(c["key"], c["expected"], c["tags"]) for c in v3] == [
        ("a", "very positive", ["x", "y"]),
        ("c", "positive", []),
    ]
    assert v3[0]["input"] == {"review": "Lovely"}
    # an update with expected: null clears it; other fields stay
    r = await api.post(
        f"{BASE}/team/reviews/versions", json={"operations": [{"op": "update", "key": "a", "expected": None}]}
    )
    assert r.status_code == 201
    v4 = await cases_of(api, "team/reviews", 4)
    assert [{**c, "id": None} for c in v4] == [{**v3[0], "id": None, "expected": None}, {**v3[1], "id": None}]

    # bad patches: nothing written
    bad = [
        ([{"op": "remove", "keys": ["zzz"]}], (404, "case_not_found")),
        ([{"op": "add", "cases": [{"id": "a", "input": {"x": "1"}}]}], (422, "duplicate_case_id")),
        ([{"op": "update", "key": "a", "tags": ["bad tag!"]}], (422, "invalid_case")),
        ([{"op": "rename"}], (422, "validation_error")),
    ]
    for operations, expected in bad:
        r = await api.post(f"{BASE}/team/reviews/versions", json={"operations": operations})
        assert problem(r) == expected, (operations, r.text)
    r = await api.post(f"{BASE}/team/reviews/versions", json={"cases": [], "operations": ops})
    assert r.status_code == 422

    # old versions are immutable
    assert await cases_of(api, "team/reviews", 1) == v1
    r = await api.get(f"{BASE}/team/reviews/versions")
    assert [v["version"] for v in r.json()["items"]] == [4, 3, 2, 1]
    assert [v["commitMessage"] for v in r.json()["items"]][1:] == ["patch", "drop c", "first"]
    page = (await api.get(f"{BASE}/team/reviews/versions", params={"limit": 3})).json()
    rest = (await api.get(f"{BASE}/team/reviews/versions", params={"cursor": page["nextCursor"]})).json()
    assert [v["version"] for v in page["items"] + rest["items"]] == [4, 3, 2, 1] and rest[
        "nextCursor"
    ] is None
    r = await api.get(f"{BASE}/team/reviews/versions/2")
    assert r.status_code == 200 and r.json()["caseCount"] == 2
    assert problem(await api.get(f"{BASE}/team/reviews/versions/9")) == (404, "dataset_version_not_found")

    dataset = (await api.get(f"{BASE}/team/reviews")).json()
    assert dataset["latestVersion"] == 4 and dataset["description"] == "Team reviews"
    assert dataset["latest"]["caseCount"] == 2

    created_events = await events(api, "DatasetVersionCreated")
    mine = [e["data"] for e in created_events if e["data"]["name"] == "team/reviews"]
    assert sorted(d["version"] for d in mine) == [1, 2, 3, 4]
    v3_event = next(d for d in mine if d["version"] == 3)
    assert v3_event["caseCount"] == 2 and v3_event["source"] == "edit" and len(v3_event["contentHash"]) == 64
    assert v3_event["operations"] == {"added": 1, "removed": 1, "updated": 1}
    assert any(e["data"]["name"] == "team/reviews" for e in await events(api, "DatasetCreated"))


async def test_concurrent_versions_are_gapless(api: Api) -> None:
    await create(api, "race", [])
    results = await asyncio.gather(
        *[
            api.post(f"{BASE}/race/versions", json={"cases": [{"id": "x", "input": {"n": str(i)}}]})
            for i in range(20)
        ],
        *[api.post(BASE, json={"name": "race/new", "cases": []}) for _ in range(5)],
    )
    versions, creates = results[:20], results[20:]
    assert all(r.status_code == 201 for r in versions), [r.text for r in versions if r.status_code != 201][:3]
    assert sorted(r.json()["version"]["version"] for r in versions) == list(range(2, 22))
    assert sorted(r.status_code for r in creates) == [201, 409, 409, 409, 409], [r.text for r in creates]
    r = await api.get(f"{BASE}/race/versions", params={"limit": 200})
    assert [v["version"] for v in r.json()["items"]] == list(range(21, 0, -1))


async def test_case_pages_and_tag_filter(api: Api) -> None:
    cases = [
        {"id": f"c{i:03d}", "input": {"n": str(i)}, "tags": ["even" if i % 2 == 0 else "odd"]}
        for i in range(25)
    ]
    await create(api, "paging", cases)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get(f"{BASE}/paging/versions/1/cases", params=params)).json()
        seen += [c["key"] for c in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert seen == [c["id"] for c in cases]
    odd = await cases_of(api, "paging", 1, tag="odd")
    assert [c["key"] for c in odd] == [f"c{i:03d}" for i in range(1, 25, 2)]
    page = (await api.get(f"{BASE}/paging/versions/1/cases", params={"tag": "even", "limit": 5})).json()
    after = (
        await api.get(
            f"{BASE}/paging/versions/1/cases",
            params={"tag": "even", "limit": 50, "cursor": page["nextCursor"]},
        )
    ).json()
    assert [c["key"] for c in page["items"] + after["items"]] == [f"c{i:03d}" for i in range(0, 25, 2)]
    assert problem(await api.get(f"{BASE}/paging/versions/1/cases", params={"cursor": "!!"})) == (
        422,
        "invalid_cursor",
    )


async def test_names_listing_archive_and_idempotency(api: Api) -> None:
    for bad in ("Bad Name", "a/versions", "x/export", "from-runs", "a//b", "a@1"):
        r = await api.post(BASE, json={"name": bad, "cases": []})
        assert problem(r) == (422, "invalid_dataset_name"), bad
    await create(api, "team/a", [])
    assert problem(await api.post(BASE, json={"name": "team/a"})) == (409, "dataset_exists")
    await create(api, "team/b", CASES)
    await create(api, "other", CASES)
    r = await api.get(BASE, params={"prefix": "team"})
    assert [d["name"] for d in r.json()["items"]] == ["team/a", "team/b"]
    assert r.json()["items"][0]["latest"]["caseCount"] == 0
    page = (await api.get(BASE, params={"limit": 2})).json()
    rest = (await api.get(BASE, params={"limit": 2, "cursor": page["nextCursor"]})).json()
    names = [d["name"] for d in page["items"] + rest["items"]]
    assert names == sorted(names) and {"team/a", "team/b", "other", "sentiment/reviews"} <= set(names)

    r = await api.delete(f"{BASE}/team/b")
    assert r.status_code == 200 and r.json()["archived"] is True
    assert "team/b" not in [d["name"] for d in (await api.get(BASE)).json()["items"]]
    assert [d["name"] for d in (await api.get(BASE, params={"archived": True})).json()["items"]] == ["team/b"]
    assert problem(await api.post(f"{BASE}/team/b/versions", json={"cases": []})) == (409, "dataset_archived")
    assert problem(await imported(api, "team/b", "{}", "jsonl")) == (409, "dataset_archived")
    assert (await api.get(f"{BASE}/team/b/versions/1/cases")).status_code == 200  # still readable
    r = await api.post(BASE, json={"name": "team/b"})
    assert problem(r) == (409, "dataset_exists") and "archived" in r.json()["detail"]
    archived = await events(api, "DatasetArchived")
    assert archived[0]["data"]["name"] == "team/b" and archived[0]["data"]["latestVersion"] == 1
    r = await api.patch(f"{BASE}/team/b", json={"archived": False, "description": "back"})
    assert r.status_code == 200 and r.json()["archived"] is False and r.json()["description"] == "back"
    assert (await api.post(f"{BASE}/team/b/versions", json={"cases": []})).status_code == 201

    headers = {"Idempotency-Key": "ds-1"}
    body = {"name": "idem", "cases": CASES}
    first = await api.post(BASE, json=body, headers=headers)
    again = await api.post(BASE, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    assert problem(await api.post(BASE, json={**body, "name": "idem2"}, headers=headers))[0] == 422

    assert problem(await api.get(f"{BASE}/nope")) == (404, "dataset_not_found")
    assert problem(await api.get(f"{BASE}/nope/versions")) == (404, "dataset_not_found")
    assert problem(await api.delete(f"{BASE}/nope")) == (404, "dataset_not_found")


# --- files --------------------------------------------------------------------------------------------------

CSV_FILE = (
    "id,review,expected,tags,__description\n"
    'r1,"Great, really great",positive,product|short,first\n'
    'r2,"Two\nlines",negative,movie,\n'
    ",No id here,,,\n"
)


async def test_import_export_round_trip_in_every_format(api: Api) -> None:
    r = await imported(api, "files/src", CSV_FILE, "csv", message="from csv", description="imported")
    assert r.status_code == 201, r.text
    source = r.json()["version"]
    assert source["caseCount"] == 3 and source["source"] == "import" and source["commitMessage"] == "from csv"
    cases = await cases_of(api, "files/src", 1)
    assert cases[0]["metadata"] == {"description": "first"} and cases[1]["input"] == {"review": "Two\nlines"}
    assert cases[2]["expected"] is None and cases[0]["tags"] == ["product", "short"]
    # re-importing the same file changes nothing
    r = await imported(api, "files/src", CSV_FILE, "csv")
    assert r.status_code == 200 and r.json()["created"] is False and r.json()["version"]["version"] == 1

    for fmt, media in (("csv", "text/csv"), ("jsonl", "application/x-ndjson"), ("json", "application/json")):
        r = await api.get(f"{BASE}/files/src/export", params={"format": fmt})
        assert r.status_code == 200 and r.headers["content-type"].startswith(media), r.headers
        assert r.headers["x-content-hash"] == source["contentHash"]
        assert f'filename="files-src-v1.{fmt}"' in r.headers["content-disposition"]
        # the Content-Type alone tells the format on import
        back = await api.post(
            f"{BASE}/files/{fmt}/import", content=r.content, headers={"Content-Type": media}
        )
        assert back.status_code == 201, back.text
        assert back.json()["version"]["contentHash"] == source["contentHash"], fmt
    exported = (await api.get(f"{BASE}/files/src/export", params={"format": "json"})).json()
    assert exported["name"] == "files/src" and exported["version"] == 1 and len(exported["cases"]) == 3
    lines = (await api.get(f"{BASE}/files/src/export")).text.splitlines()  # JSONL by default
    assert json.loads(lines[0]) == {
        "id": "r1",
        "input": {"review": "Great, really great"},
        "expected": "positive",
        "tags": ["product", "short"],
        "metadata": {"description": "first"},
    }
    # an older version exports as it was
    await imported(api, "files/src", "review\nonly one\n", "csv")
    r = await api.get(f"{BASE}/files/src/export", params={"format": "jsonl", "version": 1})
    assert len(r.text.splitlines()) == 3 and r.headers["x-dataset-version"] == "1"
    assert len((await api.get(f"{BASE}/files/src/export")).text.splitlines()) == 1

    # import modes
    assert problem(await imported(api, "files/src", CSV_FILE, "csv", mode="create")) == (
        409,
        "dataset_exists",
    )
    assert problem(await imported(api, "files/new", CSV_FILE, "csv", mode="version")) == (
        404,
        "dataset_not_found",
    )
    # flat JSONL objects and promptfoo-style vars
    flat = '{"review": "ok", "expected": 3}\n\n{"vars": {"review": "meh"}, "tags": "a,b"}\n'
    r = await imported(api, "files/flat", flat, "jsonl")
    assert r.status_code == 201, r.text
    flat_cases = await cases_of(api, "files/flat", 1)
    assert [(c["input"], c["expected"], c["tags"]) for c in flat_cases] == [
        ({"review": "ok"}, "3", []),
        ({"review": "meh"}, None, ["a", "b"]),
    ]


async def test_malformed_files_get_errors_with_line_numbers(api: Api) -> None:
    jsonl = "\n".join([f'{{"input": {{"q": "{i}"}}}}' for i in range(6)] + ['{"input": {"q": "x"}', ""])
    r = await imported(api, "bad/one", jsonl, "jsonl")
    assert problem(r) == (422, "invalid_dataset")
    assert "line 7: invalid JSON" in r.json()["detail"] and r.json()["errors"][0]["line"] == 7

    r = await imported(
        api, "bad/one", "id,review,expected\nr1,a,positive\nr2,b,negative\nr3,c,neg,extra\n", "csv"
    )
    assert problem(r) == (422, "invalid_dataset")
    assert "row 3 (line 4): column count 4, header has 3" in r.json()["detail"]

    r = await imported(api, "bad/one", "id,q\nx,1\nx,2\ny,3\n", "csv")
    assert "duplicate id 'x' at row 1 (line 2) and row 2 (line 3)" in r.json()["detail"]

    r = await imported(api, "bad/one", '[{"q": "1"}, {"q": "1"}]', "json")
    assert "case 1 and case 2 have the same input" in r.json()["detail"]

    r = await imported(api, "bad/one", '[{"q": "1"},\n {"q": 2,}]', "json")
    assert problem(r) == (422, "invalid_dataset") and r.json()["detail"].startswith(
        "JSON file: line 2, column"
    )

    r = await imported(api, "bad/one", "q,metadata\n1,{oops}\n", "csv")
    assert "row 1 (line 2): column 'metadata': invalid JSON" in r.json()["detail"]

    r = await imported(
        api, "bad/one", '{"input": {"1x": "a"}}\n{"input": 7}\n{"input": {}, "foo": 1}\n', "jsonl"
    )
    errors = r.json()["errors"]
    assert [e["line"] for e in errors] == [1, 2, 3] and r.json()["errorCount"] == 3
    assert (
        "invalid variable name '1x'" in errors[0]["message"]
        and "unknown field(s) 'foo'" in errors[2]["message"]
    )
    assert errors[1] == {
        "line": 2,
        "column": "input",
        "message": "line 2: field 'input': must be a string, an object of variables or a list of chat "
        "messages, got a number",
    }

    r = await imported(api, "bad/one", b"review\ncaf\xe9\n", "csv")
    assert problem(r) == (422, "invalid_encoding") and "line 2" in r.json()["detail"]

    assert problem(await imported(api, "bad/one", "", "csv"))[0] == 422
    assert problem(await imported(api, "bad/one", "a,,b\n1,2,3\n", "csv"))[0] == 422
    assert problem(await api.post(f"{BASE}/bad/one/import", content="x")) == (422, "unknown_format")
    assert problem(await api.post(f"{BASE}/bad/one/import", params={"format": "xml"}, content="x"))[0] == 422
    # nothing was written by any of these
    assert problem(await api.get(f"{BASE}/bad/one")) == (404, "dataset_not_found")

    r = await api.post(BASE, json={"name": "bad/two", "cases": [{"input": {"x": "1"}}, {"input": 5}]})
    assert problem(r) == (422, "invalid_dataset") and r.json()["detail"].startswith("cases: case 2:")


# --- the shapes people have ---------------------------------------------------------------------------------

MESSAGES = [{"role": "system", "content": "Classify."}, {"role": "user", "content": "Loved it"}]
PROMPTFOO_TEST = {
    "description": "refund",
    "vars": {"ticket": "I was charged twice"},
    "assert": [{"type": "icontains", "value": "billing"}, {"type": "javascript", "value": "true"}],
}
SHAPES = [
    {"input": "Arrived broken", "expected": "negative"},  # a text input
    {"input": MESSAGES, "ideal": ["positive", "pos"]},  # OpenAI evals
    {"input": {"review": "Meh"}, "expected_output": "neutral", "metadata": {"trace": "t1"}},  # Langfuse
    PROMPTFOO_TEST,  # promptfoo
    {"id": "own", "input": {"review": "Fine"}, "expected": "positive"},  # ours
]


async def test_import_accepts_the_shapes_people_have(api: Api) -> None:
    jsonl = "".join(json.dumps(obj) + "\n" for obj in SHAPES)
    r = await imported(api, "shapes/all", jsonl, "jsonl")
    assert r.status_code == 201, r.text
    cases = await cases_of(api, "shapes/all", 1)
    text, openai, langfuse, promptfoo, ours = cases
    assert (text["input"], text["expected"], text["metadata"]) == ("Arrived broken", "negative", {})
    assert (openai["input"], openai["expected"]) == ({"messages": MESSAGES}, "positive")
    assert openai["metadata"] == {"ideal": ["positive", "pos"]}
    assert (langfuse["input"], langfuse["expected"], langfuse["metadata"]) == (
        {"review": "Meh"},
        "neutral",
        {"trace": "t1"},
    )
    assert promptfoo["input"] == {"ticket": "I was charged twice"} and promptfoo["expected"] == "billing"
    meta = promptfoo["metadata"]
    assert meta["assert"] == PROMPTFOO_TEST["assert"] and meta["description"] == "refund"
    assert meta["scorers"] == [{"type": "icontains", "value": "billing"}]
    assert meta["unsupported"][0].startswith("assert[1]: type 'javascript' is not supported")
    assert ours["key"] == "own" and ours["input"] == {"review": "Fine"}

    # the export gives back what was imported (a text input stays a text), in every format
    lines = [json.loads(line) for line in (await api.get(f"{BASE}/shapes/all/export")).text.splitlines()]
    assert lines[0] == {"id": text["key"], "input": "Arrived broken", "expected": "negative"}
    assert lines[1] == {
        "id": openai["key"],
        "input": {"messages": MESSAGES},
        "expected": "positive",
        "metadata": {"ideal": ["positive", "pos"]},
    }
    hash_v1 = (await api.get(f"{BASE}/shapes/all/versions/1")).json()["contentHash"]
    for fmt in ("jsonl", "json"):  # CSV cells are text: 'messages' would come back as JSON text
        exported = (await api.get(f"{BASE}/shapes/all/export", params={"format": fmt})).text
        again = await imported(api, "shapes/all", exported, fmt)
        assert again.status_code == 200 and again.json()["created"] is False, (fmt, again.text)
        copy = await imported(api, f"shapes/copy-{fmt}", exported, fmt)
        assert copy.json()["version"]["contentHash"] == hash_v1, fmt
    csv_text = (await api.get(f"{BASE}/shapes/all/export", params={"format": "csv"})).text
    assert csv_text.splitlines()[0] == "id,__input,messages,review,ticket,expected,metadata"

    # a patch can give a case a text input, and the case list shows it as a text
    r = await api.post(
        f"{BASE}/shapes/all/versions",
        json={"operations": [{"op": "update", "key": "own", "input": "Fine, really"}]},
    )
    assert r.status_code == 201, r.text
    assert (await cases_of(api, "shapes/all", 2))[4]["input"] == "Fine, really"


async def test_csv_import_with_input_and_expected_columns(api: Api) -> None:
    table = "id,question,answer,source\nq1,Why?,Because,faq\nq2,How?,Like this,docs\n"
    r = await imported(api, "cols/one", table, "csv", inputCol="question", expectedCol="answer")
    assert r.status_code == 201, r.text
    cases = await cases_of(api, "cols/one", 1)
    assert [(c["key"], c["input"], c["expected"], c["metadata"]) for c in cases] == [
        ("q1", "Why?", "Because", {"source": "faq"}),
        ("q2", "How?", "Like this", {"source": "docs"}),
    ]
    exported = (await api.get(f"{BASE}/cols/one/export", params={"format": "csv"})).text
    assert exported.splitlines()[0] == "id,__input,expected,metadata"
    again = await imported(api, "cols/one", exported, "csv")
    assert again.status_code == 200 and again.json()["created"] is False

    r = await api.post(
        f"{BASE}/cols/two/import",
        params=[
            ("format", "csv"),
            ("inputCol", "question"),
            ("inputCol", "source"),
            ("expectedCol", "answer"),
        ],
        content=table,
    )
    assert r.status_code == 201, r.text
    assert (await cases_of(api, "cols/two", 1))[0]["input"] == {"question": "Why?", "source": "faq"}
    # the defaults are unchanged: every other column is a variable
    r = await imported(api, "cols/three", table, "csv")
    assert (await cases_of(api, "cols/three", 1))[0]["input"] == {
        "question": "Why?",
        "answer": "Because",
        "source": "faq",
    }

    r = await imported(api, "cols/bad", table, "csv", inputCol="text")
    assert problem(r) == (422, "invalid_dataset")
    assert r.json()["detail"] == (
        "CSV file: line 1: the header has no column 'text' (an input column); it has: id, question, answer, source"
    )
    r = await imported(api, "cols/bad", "id,text\n1,\n", "csv", inputCol="text")
    assert r.json()["errors"][0] == {
        "line": 2,
        "row": 1,
        "column": "text",
        "message": "row 1 (line 2): column 'text': must not be empty",
    }
    r = await imported(api, "cols/bad", '{"question": "x"}\n', "jsonl", inputCol="question")
    assert problem(r) == (422, "invalid_column_map")
    r = await imported(api, "cols/bad", table, "csv", inputCol="answer", expectedCol="answer")
    assert problem(r) == (422, "invalid_column_map")
    assert problem(await api.get(f"{BASE}/cols/bad")) == (404, "dataset_not_found")


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        (
            '{"input": "a"}\n{"input": "b"}\n{"input": 3}\n',
            "jsonl",
            "JSONL file: line 3: field 'input': must be a string, an object of variables or a list of chat "
            "messages, got a number",
        ),
        (
            '[{"input": "a"}, {"input": [{"text": "hi"}]}]',
            "json",
            "JSON file: case 2: field 'input': must be",
        ),
        (
            '{"input": "a", "ideal": "x", "expected": "y"}\n',
            "jsonl",
            "JSONL file: line 1: field 'ideal': give one of",
        ),
        (
            '{"vars": {}, "assert": "equals"}\n',
            "jsonl",
            "JSONL file: line 1: field 'assert': must be a list of assertions",
        ),
        (
            '{"vars": {"f": "file://x.txt"}, "assert": []}\n',
            "jsonl",
            "JSONL file: line 1: file:// references (x.txt)",
        ),
        ("id,__input,q\n1,a,b\n", "csv", "CSV file: row 1 (line 2): give the input as text (__input) or as"),
    ],
)
async def test_unknown_shapes_are_422_naming_the_place(
    api: Api, content: str, fmt: str, message: str
) -> None:
    r = await imported(api, "shapes/bad", content, fmt)
    assert problem(r) == (422, "invalid_dataset")
    assert r.json()["detail"].startswith(message), r.json()["detail"]


async def test_evaluation_binds_a_text_input_to_the_prompt_variable(db_url: str, tmp_path: Path) -> None:
    with FakeLLMServer() as fake:
        async with provider_app(db_url, tmp_path, fake) as api:
            for name, variables in (("echo/one", ["review"]), ("echo/two", ["review", "product"])):
                r = await api.post(
                    "/api/v1/prompts",
                    json={
                        "name": name,
                        "template": "{{ review }}" + (" {{ product }}" if len(variables) == 2 else ""),
                        "variables": [{"name": v} for v in variables],
                    },
                )
                assert r.status_code == 201, r.text
            lines = '{"input": "arrived broken", "expected": "arrived broken"}\n{"input": "lovely", "expected": "lovely"}\n'
            assert (await imported(api, "echo/texts", lines, "jsonl")).status_code == 201
            body: dict[str, Any] = {
                "dataset": "echo/texts",
                "models": [{"provider": "fake", "model": "gpt-fake"}],
            }
            r = await api.post(
                "/api/v1/evals", json={**body, "prompts": ["echo/one"], "scorers": [{"type": "contains"}]}
            )
            assert r.status_code == 201, r.text
            run = await finished(api, r.json()["id"])
            assert run["status"] == "completed" and run["summary"][0]["passRate"] == 1.0, run
            prompts = [q.body["messages"][-1]["content"] for q in fake.requests_to("/chat/completions")]
            assert sorted(prompts) == ["arrived broken", "lovely"]

            # a prompt with two variables cannot take a text: a 422 naming them, before any call
            calls = len(fake.requests_to("/chat/completions"))
            r = await api.post(
                "/api/v1/evals", json={**body, "prompts": ["echo/two"], "scorers": [{"type": "contains"}]}
            )
            assert r.status_code == 422 and r.json()["code"] == "ambiguous_input", r.text
            assert "has a text input but the prompt has the variables review, product" in r.json()["detail"]
            # ... and the optimizer refuses it the same way
            optimization = {"dataset": "echo/texts", "prompt": "echo/two", "model": body["models"][0]}
            r = await api.post("/api/v1/optimizations", json=optimization)
            assert r.status_code == 422 and r.json()["code"] == "ambiguous_input", r.text
            assert len(fake.requests_to("/chat/completions")) == calls


async def finished(api: Api, run_id: str) -> dict[str, Any]:
    for _ in range(600):
        run = (await api.get(f"/api/v1/evals/{run_id}")).json()
        if run["status"] in ("completed", "failed", "cancelled"):
            return dict(run)
        await asyncio.sleep(0.05)
    raise AssertionError(f"evaluation {run_id} did not finish")


async def test_size_limits(db_url: str, tmp_path: Path) -> None:
    api, client, lifespan = await open_api(db_url, tmp_path, max_upload_bytes=4_000_000)
    try:
        lines = "".join(f'{{"i":"{i}"}}\n' for i in range(100_001))
        r = await imported(api, "big", lines, "jsonl")
        assert problem(r) == (422, "too_many_cases") and "100000" in r.json()["detail"]
        r = await imported(api, "big", json.dumps([{"x": "y" * 300_000}]), "json")
        assert problem(r) == (422, "invalid_dataset") and "at most 262144" in r.json()["detail"]
        r = await imported(api, "big", "x" * 4_000_001, "csv")
        assert r.status_code == 413
        assert problem(await api.get(f"{BASE}/big"))[0] == 404
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


# --- access ---------------------------------------------------------------------------------------------------


async def other_project_key(api: Api) -> str:
    r = await api.post("/api/v1/auth/login", None, json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    token = r.json()["token"]
    api.client.cookies.clear()
    r = await api.post("/api/v1/projects", token, json={"name": "team-b"})
    assert r.status_code == 201, r.text
    r = await api.post(
        "/api/v1/api-keys",
        token,
        headers={"X-Project": "team-b"},
        json={"name": "team-b-admin", "role": "PromptOpsAdmin"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


async def test_tenant_isolation(api: Api) -> None:
    await create(api, "secret/set")
    other = await other_project_key(api)
    for path in (
        f"{BASE}/secret/set",
        f"{BASE}/secret/set/versions",
        f"{BASE}/secret/set/versions/1/cases",
        f"{BASE}/secret/set/export",
        f"{BASE}/sentiment/reviews",
    ):
        assert problem(await api.get(path, other)) == (404, "dataset_not_found"), path
    assert (await api.get(BASE, other)).json()["items"] == []
    assert problem(await api.delete(f"{BASE}/secret/set", other)) == (404, "dataset_not_found")
    # the same name is free in the other project, and each sees its own
    r = await api.post(BASE, other, json={"name": "secret/set", "cases": CASES[:1]})
    assert r.status_code == 201
    assert (await api.get(f"{BASE}/secret/set")).json()["latest"]["caseCount"] == 3
    assert (await api.get(f"{BASE}/secret/set", other)).json()["latest"]["caseCount"] == 1


async def test_roles(api: Api) -> None:
    await create(api, "roles/set")
    viewer = (await api.make_key("Viewer"))["key"]
    qa = (await api.make_key("QAAnalyst"))["key"]
    compliance = (await api.make_key("ComplianceOfficer"))["key"]
    for key in (viewer, compliance):
        assert (await api.get(f"{BASE}/roles/set", key)).status_code == 200
        assert (await api.get(f"{BASE}/roles/set/export", key)).status_code == 200
        assert problem(await api.post(BASE, key, json={"name": "x"})) == (403, "permission_denied")
        assert problem(await imported_as(api, key, "roles/set")) == (403, "permission_denied")
    r = await api.post(f"{BASE}/roles/set/versions", qa, json={"cases": CASES[:1]})
    assert r.status_code == 201
    event = (await events(api, "DatasetVersionCreated"))[0]
    assert event["actorType"] == "api_key" and event["data"]["version"] == 2


async def imported_as(api: Api, key: str, name: str) -> httpx.Response:
    return await api.post(f"{BASE}/{name}/import", key, params={"format": "csv"}, content="a\n1\n")


@pytest.mark.parametrize("ref_kind", ["name", "name@1", "id"])
async def test_resolve_version_for_the_eval_engine(api: Api, ref_kind: str) -> None:
    from promptops.auth.principal import Principal
    from promptops.datasets import service
    from promptops.errors import NotFound
    from promptops.governance.rbac import Role

    created = await create(api, "eng/set")
    await api.post(f"{BASE}/eng/set/versions", json={"cases": CASES[:1]})
    runtime = api.app.state.runtime
    me = (await api.get("/api/v1/auth/me")).json()
    principal = Principal("system", "system", "system", me["projectId"], me["orgId"], Role.ADMIN)
    ref = {"name": "eng/set", "name@1": "eng/set@1", "id": created["version"]["id"]}[ref_kind]
    async with runtime.db.transaction() as session:
        dataset, version = await service.resolve_version(session, principal, ref)
        cases = await service.list_cases(session, principal, version.id, tags=["short"])
    assert dataset.name == "eng/set"
    assert version.version == (2 if ref_kind == "name" else 1)
    assert [c.key for c in cases] == (["a"] if ref_kind == "name" else ["a", "b"])
    stranger = Principal("system", "system", "system", "prj_other", me["orgId"], Role.ADMIN)
    async with runtime.db.transaction() as session:
        with pytest.raises(NotFound):
            await service.resolve_version(session, stranger, ref)


async def test_dataset_uploads_may_exceed_the_general_body_limit(api: Api) -> None:
    """A 2 MB import is accepted (upload limit 20 MiB) while other routes keep the 1 MiB body limit."""
    lines = [
        json.dumps({"id": f"c{i}", "input": {"review": "x" * 200 + str(i)}, "expected": "positive"})
        for i in range(9000)
    ]
    body = "\n".join(lines).encode()
    assert len(body) > 2_000_000
    r = await api.post("/api/v1/datasets/big/reviews/import", params={"format": "jsonl"}, content=body)
    assert r.status_code == 201, r.text[:500]
    assert r.json()["version"]["caseCount"] == 9000
    r = await api.post("/api/v1/prompts", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("fmt", "content", "message"),
    [
        ("jsonl", '{"input": {"text": "a\\u0000b"}, "expected": "x"}\n', "input.text: must not contain NUL"),
        ("json", '[{"input": "ok", "expected": "x", "metadata": {"k": "\\u0000"}}]', "metadata.k: must not"),
        ("csv", "text,__expected\na\x00b,x\n", "NUL"),
    ],
)
async def test_unstorable_values_in_an_upload_are_a_422_naming_the_line(
    api: Api, fmt: str, content: str, message: str
) -> None:
    r = await imported(api, "hostile/upload", content, fmt)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"], r.json()
    assert (await api.get(f"{BASE}/hostile/upload")).status_code == 404
