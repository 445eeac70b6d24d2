"""The web UI is served at / from its built folder; API paths never fall back to the page."""

from __future__ import annotations

from pathlib import Path

from tests.support.app import open_api


def built_ui(folder: Path) -> Path:
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html><div id=root></div>")
    (folder / "assets" / "index-abc123.js").write_text("console.log(1)")
    (folder / "favicon.svg").write_text("<svg/>")
    return folder


async def test_pages_assets_and_api_paths(db_url: str, tmp_path: Path) -> None:
    api, client, lifespan = await open_api(db_url, tmp_path, web_dir=built_ui(tmp_path / "dist"))
    try:
        for path in ("/", "/login", "/prompts/support/triage", "/prompts/a%2Fb?tab=labels"):
            r = await client.get(path)
            assert (r.status_code, r.text) == (200, "<!doctype html><div id=root></div>"), path
            assert r.headers["cache-control"] == "no-cache"
        r = await client.get("/assets/index-abc123.js")
        assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
        assert (await client.get("/favicon.svg")).text == "<svg/>"
        # API paths and missing assets stay problems, never the page.
        for path in ("/api/v1/nope", "/api", "/assets/missing.js"):
            r = await client.get(path)
            assert r.status_code == 404, path
            assert r.headers["content-type"] == "application/problem+json", path
        r = await client.post("/prompts/x")
        assert (r.status_code, r.headers["allow"]) == (405, "GET")
        # The page route is not part of the API document.
        assert not any(p == "/{path}" for p in api.app.openapi()["paths"])
        # Files outside the folder are not served.
        (tmp_path / "secret.txt").write_text("no")
        for path in ("/%2e%2e/secret.txt", "/..%2fsecret.txt"):
            assert (await client.get(path)).text != "no", path
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def test_without_a_build_the_api_still_works(db_url: str, tmp_path: Path) -> None:
    api, client, lifespan = await open_api(db_url, tmp_path, web_dir=tmp_path / "not-built")
    try:
        assert (await client.get("/")).status_code == 404
        assert (await api.get("/api/v1/prompts")).status_code == 200
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
