"""Operational surface: health, readiness, metrics, request ids, problem+json, structured logs."""

from __future__ import annotations

import json

import pytest

from tests.support.app import ADMIN_KEY, Api


async def test_health_and_readiness(api: Api) -> None:
    r = await api.get("/healthz", key=None)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = await api.get("/readyz", key=None)
    assert r.status_code == 200 and r.json()["database"] in {"sqlite", "postgresql"}


async def test_metrics_count_requests_by_route(api: Api) -> None:
    await api.get("/api/v1/prompts/sentiment/few-shot@production")
    r = await api.get("/metrics", key=None)
    assert r.status_code == 200
    assert (
        'promptops_http_requests_total{method="GET",route="/api/v1/prompts/{name:prompt}",status="200"}'
        in r.text
    )
    assert "promptops_http_request_duration_seconds_bucket" in r.text


async def test_request_id_echoed_or_generated(api: Api) -> None:
    r = await api.get("/healthz", key=None, headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await api.get("/healthz", key=None, headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces" and len(r.headers["x-request-id"]) == 32


async def test_problem_json_everywhere(api: Api) -> None:
    r = await api.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "not_found" and body["requestId"] == r.headers["x-request-id"]
    r = await api.delete("/api/v1/prompts")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"
    r = await api.get("/api/v1/prompts", key=None)
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    r = await api.get("/api/v1/prompts", key="po_nothere0_" + "x" * 40)
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    r = await api.post("/api/v1/prompts", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


async def test_audit_events_carry_request_id(api: Api) -> None:
    r = await api.post(
        "/api/v1/prompts", json={"name": "ops/rid", "template": "hi"}, headers={"X-Request-ID": "trace-42"}
    )
    assert r.status_code == 201
    events = (await api.get("/api/prompt/audit", params={"promptId": "ops/rid"})).json()["events"]
    assert events and all(e["requestId"] == "trace-42" for e in events)


async def test_structured_logs_have_request_id_and_no_secrets(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    from promptops.logging import configure_logging

    configure_logging("INFO", json=True)
    capsys.readouterr()
    await api.get("/api/v1/prompts", headers={"X-Request-ID": "log-check-1"})
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    request_lines = [ln for ln in lines if ln.get("event") == "request"]
    assert any(ln.get("request_id") == "log-check-1" and ln["status"] == 200 for ln in request_lines)
    assert ADMIN_KEY not in err


async def test_openapi_and_docs(api: Api) -> None:
    r = await api.get("/openapi.json", key=None)
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/prompt/rollback" in paths and "/api/prompt/audit" in paths
    schema = r.json()["components"]["schemas"]["CreatePromptIn"]["properties"]
    assert {"modelConfig", "commitMessage", "responseSchema"} <= set(schema)
    r = await api.get("/docs", key=None)
    assert r.status_code == 200


async def test_docs_served_without_cdn(api: Api) -> None:
    r = await api.get("/docs", key=None)
    assert r.status_code == 200 and "/static/api-docs/swagger-ui-bundle.js" in r.text and "cdn" not in r.text
    r = await api.get("/static/api-docs/swagger-ui-bundle.js", key=None)
    assert r.status_code == 200 and len(r.content) > 100_000
    r = await api.get("/redoc", key=None)
    assert r.status_code == 200 and "redoc.standalone.js" in r.text


async def test_unexpected_error_is_500_problem_with_request_id(api: Api) -> None:
    from fastapi import Depends

    from promptops.auth.deps import PUBLIC

    async def boom() -> None:
        raise RuntimeError("secret internals")

    api.app.router.add_api_route("/boom-test-only", boom, dependencies=[Depends(PUBLIC)])
    r = await api.get("/boom-test-only", key=None, headers={"X-Request-ID": "req-500"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "req-500"
    body = r.json()
    assert body["code"] == "internal_error" and body["requestId"] == "req-500"
    assert "secret internals" not in r.text


async def test_chunked_body_over_limit_is_413(api: Api) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 65_536

    r = await api.post("/api/v1/prompts", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large" and r.json()["requestId"]
    r = await api.post(
        "/api/v1/prompts", content=b"x" * 2_000_000, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["instance"] == "/api/v1/prompts" and r.json()["requestId"]
