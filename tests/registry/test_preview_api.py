"""``POST /api/v1/render``: render an unsaved body (the editor's live preview) like a saved version."""

from __future__ import annotations

from tests.support.app import Api


async def test_preview_renders_text_chat_and_includes(api: Api) -> None:
    r = await api.post(
        "/api/v1/render",
        json={
            "template": "Hello {{ name }}, tier {{ tier }}",
            "variables": [{"name": "name"}, {"name": "tier", "required": False, "default": "gold"}],
            "renderVariables": {"name": "Ada"},
        },
    )
    assert r.status_code == 200, r.text
    assert (r.json()["text"], r.json()["messages"], r.json()["versionsUsed"]) == (
        "Hello Ada, tier gold",
        None,
        [],
    )

    await api.post("/api/v1/prompts", json={"name": "shared/tone", "template": "Be brief."})
    r = await api.post(
        "/api/v1/render",
        json={
            "kind": "chat",
            "messages": [
                {"role": "system", "content": '{% include "shared/tone" %}'},
                {"role": "user", "content": "{{ q }}"},
            ],
            "variables": [{"name": "q"}],
            "renderVariables": {"q": "Why?"},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why?"},
    ]
    assert [(u["name"], u["version"]) for u in body["versionsUsed"]] == [("shared/tone", 1)]


async def test_preview_problems_are_422_and_nothing_is_saved(api: Api) -> None:
    before = (await api.get("/api/v1/prompts")).json()["items"]
    r = await api.post("/api/v1/render", json={"template": "Hi {{ who }}", "variables": [{"name": "who"}]})
    assert r.status_code == 422, r.text
    assert "who" in r.json()["detail"]
    r = await api.post("/api/v1/render", json={"template": "{% if %}"})
    assert r.status_code == 422, r.text
    r = await api.post("/api/v1/render", json={"template": '{% include "no/such" %}'})
    assert r.status_code in (404, 422), r.text
    assert (await api.get("/api/v1/prompts")).json()["items"] == before


async def test_preview_needs_a_key(api: Api) -> None:
    r = await api.post("/api/v1/render", key=None, json={"template": "x"})
    assert r.status_code == 401
    viewer = await api.make_key("Viewer")
    r = await api.post("/api/v1/render", viewer["key"], json={"template": "x"})
    assert r.status_code == 200, r.text
