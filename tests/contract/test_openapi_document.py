"""The OpenAPI document declares every operation's problem responses (src/promptops/openapi.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promptops.app import create_app
from promptops.openapi import PROBLEM_JSON, PROBLEM_REF
from tests.support.app import make_settings

PUBLIC = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/api/v1/auth/login"),
    ("get", "/api/v1/auth/sso/providers"),
    ("get", "/api/v1/auth/sso/{provider}/login"),
    ("get", "/api/v1/auth/sso/{provider}/callback"),
}


def _operations(tmp_path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", tmp_path), migrate=False)
    document = app.openapi()
    assert "Problem" in document["components"]["schemas"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert app.openapi() is document
    return [(m, p, op) for p, ops in document["paths"].items() for m, op in ops.items()]


def test_every_error_response_is_a_problem(tmp_path: Path) -> None:
    operations = _operations(tmp_path)
    assert len(operations) > 80
    for method, path, operation in operations:
        responses = operation["responses"]
        assert "500" in responses, (method, path)
        for status, response in responses.items():
            if int(status) >= 400:
                assert response["content"] == {PROBLEM_JSON: {"schema": PROBLEM_REF}}, (method, path, status)
        authenticated = {"401", "403", "404"} <= responses.keys()
        assert authenticated != ((method, path) in PUBLIC), (method, path)
        if "requestBody" in operation:
            assert {"413", "422"} <= responses.keys(), (method, path)


def test_statuses_the_rules_cannot_see(tmp_path: Path) -> None:
    responses = {(m, p): op["responses"] for m, p, op in _operations(tmp_path)}
    assert "503" in responses["get", "/readyz"]
    assert "401" in responses["post", "/api/v1/auth/login"]
    assert "409" in responses["post", "/api/v1/prompts"]
    assert "409" not in responses["post", "/api/v1/prompts/{name}/render"]
    assert {"429", "502", "504"} <= responses["post", "/api/v1/playground/run"].keys()
    assert {"200", "201"} <= responses["post", "/api/v1/datasets/{name}/import"].keys()
    assert "text/plain" in responses["get", "/metrics"]["200"]["content"]


def test_every_schema_has_its_own_name(tmp_path: Path) -> None:
    # Two Pydantic models with one class name make FastAPI publish "promptops__pkg__schemas__Name" for both:
    # the generated TypeScript types (web UI, SDK) then lose the plain name and stop compiling.
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", tmp_path), migrate=False)
    names = list(app.openapi()["components"]["schemas"])
    assert [n for n in names if "__" in n] == []
