"""Every 405 carries an ``Allow`` header with all the methods the path supports, and a problem+json body."""

from __future__ import annotations

import pytest

from tests.support.app import Api


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/healthz", "GET"),
        ("PUT", "/api/v1/prompts", "GET, POST"),
        ("POST", "/api/v1/evals/compare", "GET"),
        ("DELETE", "/static/api-docs/favicon.png", "GET, HEAD"),  # a mounted app names its own methods
        ("POST", "/api/prompt/evaluate/x", None),  # no route at all: 404, not 405
        # one route per method, several routes on the path: all of them are named
        ("POST", "/api/v1/prompts/a/labels/production", "GET, PUT, PATCH, DELETE"),
        # a prompt name cannot end in a sub-resource word, so these paths are only the sub-resources' routes
        ("PATCH", "/api/v1/prompts/team/a/versions", "GET, POST"),
        ("DELETE", "/api/v1/prompts/a/labels", "GET"),
        ("GET", "/api/v1/prompts/a/render", "POST"),
        ("PUT", "/api/v1/prompts/a/history", "GET"),
    ],
)
async def test_405_names_the_allowed_methods(api: Api, method: str, path: str, allow: str | None) -> None:
    r = await api.request(method, path)
    if allow is None:
        assert r.status_code == 404 and "allow" not in r.headers
        return
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allow
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "method_not_allowed" and body["status"] == 405
    assert body["detail"] == f"{method} is not allowed on {path}; allowed: {allow}"


async def test_405_before_authentication(api: Api) -> None:
    r = await api.request("PATCH", "/api/v1/prompts", key=None)
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
