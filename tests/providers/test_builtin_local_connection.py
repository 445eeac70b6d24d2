"""The built-in ``local`` connection is read-only through the API, with the one answer docs/api.md gives:
``PATCH`` and ``DELETE`` are ``422 builtin_connection`` (never 404), a create named ``local`` is
``422 validation_error``, and ``GET`` answers the built-in connection."""

from __future__ import annotations

from tests.support.app import Api


async def test_local_cannot_be_changed_deleted_or_shadowed(api: Api) -> None:
    for method, body in (("PATCH", {"maxConcurrency": 1}), ("DELETE", None)):
        r = await api.request(method, "/api/v1/providers/local", json=body)
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["code"] == "builtin_connection"
        assert "'local' is the built-in embedded model" in problem["detail"]
    r = await api.post("/api/v1/providers", json={"name": "local", "type": "openai"})
    assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text
    r = await api.get("/api/v1/providers/local")
    assert r.status_code == 200 and r.json()["builtIn"] is True and r.json()["id"] is None
    # a connection that does not exist is the 404
    r = await api.delete("/api/v1/providers/no-such")
    assert r.status_code == 404 and r.json()["code"] == "connection_not_found"
