"""Hostile input never reaches the database: NUL characters, numbers beyond a column, non-finite or huge JSON
numbers, deep nesting, dates near year 9999, malformed bodies. Each is a 422 ``validation_error`` naming the
field (or a 404 for a valid value that names nothing), never a 500, and nothing is written."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.support.app import Api

PROMPT = "sentiment/zero-shot"
HUGE = [2**31, 2**63, 2**64 + 1, -1]


def cursor(value: object) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def nested(depth: int) -> str:
    """JSON text of ``depth`` nested objects (built as text: encoders refuse very deep values)."""
    return '{"a": ' * depth + '"leaf"' + "}" * depth


JSON_HEADERS = {"content-type": "application/json"}


def raw_json(body: dict[str, Any], **raw: str) -> dict[str, Any]:
    """Request arguments for ``body`` with each placeholder ``"@name"`` replaced by the JSON text ``raw[name]``."""
    text = json.dumps(body)
    for name, value in raw.items():
        text = text.replace(f'"@{name}"', value)
    return {"content": text.encode(), "headers": JSON_HEADERS}


async def written(api: Api) -> tuple[int, ...]:
    """What a write would change: audit events, prompts, versions of the example prompt, datasets, keys."""
    audit = (await api.get("/api/v1/audit/verify")).json()["eventsChecked"]
    prompts = len((await api.get("/api/v1/prompts", params={"limit": 200})).json()["items"])
    versions = (await api.get(f"/api/v1/prompts/{PROMPT}")).json()["prompt"]["latestVersion"]
    datasets = len((await api.get("/api/v1/datasets", params={"limit": 200})).json()["items"])
    keys = len((await api.get("/api/v1/api-keys")).json())
    return audit, prompts, versions, datasets, keys


async def rejected(api: Api, method: str, url: str, loc: list[str] | None, **kwargs: Any) -> dict[str, Any]:
    """Send one hostile request: a 422 validation_error with an error whose loc starts with ``loc``."""
    r = await api.request(method, url, **kwargs)
    assert r.status_code == 422, (url, r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["code"] in ("validation_error", "invalid_cursor"), body
    if loc is not None:
        assert any(e["loc"][: len(loc)] == loc for e in body["errors"]), body
    return body


def prompt_body(**fields: Any) -> dict[str, Any]:
    return {"name": "hostile/p", "template": "Hi {{ who }}", "variables": [{"name": "who"}], **fields}


NUL = "a\x00b"

NUL_BODIES: list[tuple[str, str, dict[str, Any], list[str]]] = [
    ("POST", "/api/v1/prompts", prompt_body(name=NUL), ["body", "name"]),
    ("POST", "/api/v1/prompts", prompt_body(description=NUL), ["body", "description"]),
    ("POST", "/api/v1/prompts", prompt_body(template="Hi\x00 {{ who }}"), ["body", "template"]),
    ("POST", "/api/v1/prompts", prompt_body(tags=["ok", NUL]), ["body", "tags"]),
    (
        "POST",
        "/api/v1/prompts",
        prompt_body(variables=[{"name": "who", "description": NUL}]),
        ["body", "variables"],
    ),
    (
        "POST",
        "/api/v1/prompts",
        prompt_body(variables=[{"name": "who", "default": [NUL]}]),
        ["body", "variables"],
    ),
    ("POST", "/api/v1/prompts", prompt_body(commitMessage=NUL), ["body", "commitMessage"]),
    ("POST", "/api/v1/prompts", prompt_body(metadata={NUL: 1}), ["body", "metadata"]),
    ("POST", f"/api/v1/prompts/{PROMPT}/versions", {"template": "x", "commitMessage": NUL}, ["body"]),
    ("POST", "/api/v1/datasets", {"name": "hostile-d", "cases": [{"input": {"x": NUL}}]}, ["body", "cases"]),
    ("POST", "/api/v1/datasets", {"name": "hostile-d", "description": NUL}, ["body", "description"]),
    ("POST", "/api/v1/api-keys", {"name": NUL, "role": "Viewer"}, ["body", "name"]),
    ("POST", "/api/v1/prompts", prompt_body(description="lone \ud800 surrogate"), ["body", "description"]),
    ("POST", "/api/v1/prompts", prompt_body(metadata={"x": "lone \udfff"}), ["body", "metadata"]),
]


@pytest.mark.parametrize(("method", "url", "body", "loc"), NUL_BODIES, ids=lambda v: str(v)[:40])
async def test_nul_in_a_text_field_is_a_422_naming_it(
    api: Api, method: str, url: str, body: dict[str, Any], loc: list[str]
) -> None:
    before = await written(api)
    # json.dumps escapes NUL and lone surrogates as \\u sequences (httpx refuses to encode a lone surrogate)
    found = await rejected(api, method, url, loc, **raw_json(body))
    assert any(word in found["detail"] for word in ("NUL", "surrogate", "unicode")), found
    assert await written(api) == before


@pytest.mark.parametrize("field", ["email", "password"])
async def test_nul_in_login_is_a_422(api: Api, field: str) -> None:
    body = {"email": "admin@localhost", "password": "admin-password-123", field: NUL}
    found = await rejected(api, "POST", "/api/v1/auth/login", ["body", field], json=body, key=None)
    assert "must not contain NUL characters" in found["errors"][0]["msg"]


@pytest.mark.parametrize(
    ("url", "loc"),
    [
        ("/api/v1/prompts?q=a%00b", ["query", "q"]),
        ("/api/v1/prompts?tag=%00", ["query", "tag"]),
        ("/api/v1/prompts/sentiment%00x", ["path"]),
        ("/api/v1/audit?user=x%00", ["query", "user"]),
        ("/api/v1/datasets/a%00b", ["path"]),
        (f"/api/v1/prompts/{PROMPT}/versions?cursor=" + cursor("a\x00"), None),
    ],
)
async def test_nul_in_path_or_query_is_a_422(api: Api, url: str, loc: list[str] | None) -> None:
    await rejected(api, "GET", url, loc)


@pytest.mark.parametrize("value", HUGE, ids=str)
async def test_numbers_beyond_a_column_are_422(api: Api, value: int) -> None:
    before = await written(api)
    base = f"/api/v1/prompts/{PROMPT}"
    await rejected(api, "GET", f"{base}?version={value}", ["query", "version"])
    await rejected(api, "GET", f"/api/v1/prompts?limit={value}", ["query", "limit"])
    await rejected(api, "GET", f"{base}/versions/{value}/lint", ["path", "number"] if value > 0 else None)
    await rejected(api, "PUT", f"{base}/labels/staging", ["body", "version"], json={"version": value})
    await rejected(api, "POST", f"{base}/render", ["body", "version"], json={"version": value})
    await rejected(api, "POST", f"{base}/labels/production/rollback", ["body"], json={"version": value})
    await rejected(api, "GET", f"{base}/versions?cursor={cursor(value)}", None)
    await rejected(api, "GET", f"/api/v1/datasets/x/export?version={value}", ["query", "version"])
    if value > 0:  # a negative number is a label name here: valid, and not found
        await rejected(api, "GET", f"{base}@{value}", ["path", "name"])
        await rejected(api, "GET", f"{base}/diff?from={value}&to=1", ["query", "from"])
        await rejected(api, "GET", f"{base}/diff?from=1&to={PROMPT}@{value}", ["query", "to"])
        await rejected(api, "GET", f"/api/v1/datasets/x/versions/{value}", ["path", "version"])
        await rejected(api, "GET", f"/api/v1/audit?cursor={value * 2**32}", ["query", "cursor"])
    else:
        r = await api.get(f"{base}/diff?from={value}&to=1")
        assert r.status_code in (404, 422), r.text
    assert await written(api) == before


@pytest.mark.parametrize("value", [2**31, 2**63, 2**64 + 1], ids=str)
@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/evals", {"prompts": ["@ref"], "dataset": "d"}, "prompts"),
        ("/api/v1/evals", {"prompts": [PROMPT], "dataset": "d@@n"}, "dataset"),
        ("/api/prompt/feedback", {"promptId": "@ref", "score": 3}, "promptId"),
        ("/api/v1/feedback", {"prompt": "@ref", "score": 3}, "prompt"),
        ("/api/v1/playground/run", {"prompt": "@ref"}, "prompt"),
        ("/api/prompt/rollback", {"promptId": "@ref", "reason": "r"}, "promptId"),
        ("/api/v1/optimizations", {"prompt": "@ref", "dataset": "d"}, "prompt"),
    ],
)
async def test_references_with_huge_version_numbers_are_422(
    api: Api, url: str, body: dict[str, Any], field: str, value: int
) -> None:
    before = await written(api)
    text = json.dumps(body).replace("@ref", f"{PROMPT}@{value}").replace("@@n", f"@{value}")
    await rejected(api, "POST", url, ["body", field], content=text.encode(), headers=JSON_HEADERS)
    assert await written(api) == before


@pytest.mark.parametrize(
    ("url", "field", "body"),
    [
        ("/api/prompt/feedback", "score", '{"promptId": "%s", "score": 1%s}'),
        ("/api/v1/feedback", "score", '{"prompt": "%s", "score": 1%s}'),
        ("/api/v1/feedback", "rubric", '{"prompt": "%s", "rubric": {"clarity": 1%s}}'),
    ],
)
async def test_scores_that_overflow_a_float_are_422(api: Api, url: str, field: str, body: str) -> None:
    content = (body % (PROMPT, "0" * 400)).encode()
    await rejected(api, "POST", url, ["body", field], content=content, headers=JSON_HEADERS)


async def test_a_prompt_named_with_digits_is_not_a_version_number(api: Api) -> None:
    name = str(2**64)
    r = await api.post("/api/v1/prompts", json={"name": name, "template": "x"})
    assert r.status_code == 201, r.text
    assert (await api.get(f"/api/v1/prompts/{name}")).status_code == 200
    await rejected(api, "GET", f"/api/v1/prompts/{name}@{name}", ["path", "name"])


@pytest.mark.parametrize("selector", ["²", "٣", "9" * 5000])
async def test_odd_digits_in_a_reference_are_422(api: Api, selector: str) -> None:
    await rejected(api, "GET", f"/api/v1/prompts/{PROMPT}@{selector}", ["path", "name"])
    await rejected(api, "GET", f"/api/v1/prompts/{PROMPT}/versions?cursor={cursor(selector)}", None)


@pytest.mark.parametrize(
    "raw",
    ["NaN", "Infinity", "-Infinity", "1e400", str(2**64 + 1), str(-(2**53) - 1)],
)
@pytest.mark.parametrize("field", ["metadata", "responseSchema", "modelConfig"])
async def test_non_finite_or_huge_json_numbers_are_422(api: Api, raw: str, field: str) -> None:
    before = await written(api)
    value = {"params": {"temperature": "@n"}} if field == "modelConfig" else {"x": ["@n"]}
    request = raw_json(prompt_body(**{field: value}), n=raw)
    found = await rejected(api, "POST", "/api/v1/prompts", ["body", field], **request)
    assert "finite" in found["detail"] or "2^53" in found["detail"]
    assert await written(api) == before


@pytest.mark.parametrize("depth", [33, 300, 990])
async def test_deep_free_form_json_is_422(api: Api, depth: int) -> None:
    before = await written(api)
    # the framework's JSON parser itself refuses the deepest bodies: then the whole body is named
    where = ["body", "metadata"] if depth < 500 else ["body"]
    meta = prompt_body(metadata="@deep")
    found = await rejected(api, "POST", "/api/v1/prompts", where, **raw_json(meta, deep=nested(depth)))
    assert "nest" in found["detail"]
    cases = {"name": "deep", "cases": [{"input": {"x": "1"}, "metadata": "@deep"}]}
    await rejected(api, "POST", "/api/v1/datasets", where[:1], **raw_json(cases, deep=nested(depth)))
    assert await written(api) == before
    ok = await api.post("/api/v1/prompts", **raw_json(meta, deep=nested(31)))
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize(
    "when",
    ["9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59", "0001-01-01T00:00:00+23:59", "1969-12-31T23:00:00Z"],
)
async def test_dates_outside_the_window_are_422(api: Api, when: str) -> None:
    before = await written(api)
    await rejected(api, "GET", "/api/v1/audit", ["query", "from"], params={"from": when})
    await rejected(api, "GET", "/api/prompt/audit", ["query", "to"], params={"to": when})
    await rejected(api, "GET", "/api/v1/runs", ["query", "from"], params={"from": when})
    body = {"name": "k", "role": "Viewer", "expiresAt": when}
    await rejected(api, "POST", "/api/v1/api-keys", ["body", "expiresAt"], json=body)
    assert await written(api) == before


async def test_dates_inside_the_window_still_work(api: Api) -> None:
    r = await api.get(
        "/api/v1/audit", params={"from": "1970-01-01T00:00:00Z", "to": "8999-12-31T23:59:59-23:59"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["events"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"name": "hostile/p", "template": "\xff\xfe"}', "UTF-8"),
        (
            b'{"name": "hostile/p", "template": "x", "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "deep",
        ),
        (b"[" * 5000 + b"]" * 5000, "deep"),
        (b'{"name": "hostile/p", "template": ', "JSON"),
    ],
    ids=["utf8", "deep-field", "deep-body", "truncated"],
)
async def test_unparsable_bodies_are_422(api: Api, content: bytes, needle: str) -> None:
    before = await written(api)
    found = await rejected(
        api,
        "POST",
        "/api/v1/prompts",
        ["body"],
        content=content,
        headers={"content-type": "application/json"},
    )
    assert needle in found["detail"] or needle in json.dumps(found["errors"]), found
    assert await written(api) == before
