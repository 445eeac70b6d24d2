"""The web UI: the single-page app built from ``web/`` (``make install`` runs ``npm run build``), served at ``/``.

Hashed assets under ``/assets/`` are immutable and cached for a year; every other GET that no API route
answers returns ``index.html`` (the app's router reads the path), so deep links work. API paths never fall
back to the page: an unknown ``/api/...`` path stays a 404 problem.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import FileResponse
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from promptops.auth.deps import PUBLIC
from promptops.config import Settings

SOURCE_DIST = Path(__file__).resolve().parents[3] / "web" / "dist"


class PagePath(Convertor[str]):
    """Any path outside the API and the asset folders (so an unknown API path is a 404, not the page)."""

    regex = r"(?!(?:api|assets|static)(?:/|$)).*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("page", PagePath())


def web_dir(settings: Settings) -> Path | None:
    """Where the built UI is: ``PROMPTOPS_WEB_DIR``, else ``web/dist`` of a source checkout; None if not built."""
    folder = settings.web_dir or SOURCE_DIST
    return folder if (folder / "index.html").is_file() else None


class ImmutableAssets(StaticFiles):
    """Vite's content-hashed files: a name never changes meaning, so browsers may keep them for a year."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def install_web(app: FastAPI, settings: Settings) -> None:
    """Serve the UI if it is built (the API works without it)."""
    folder = web_dir(settings)
    if folder is None:
        return
    index = folder / "index.html"
    if (folder / "assets").is_dir():
        app.mount("/assets", ImmutableAssets(directory=folder / "assets"), name="web-assets")
    router = APIRouter(dependencies=[Depends(PUBLIC)], include_in_schema=False)

    @router.get("/{path:page}")
    async def page(path: str) -> FileResponse:
        top = folder / path
        if path and "/" not in path and top.is_file() and top.resolve().parent == folder.resolve():
            return FileResponse(top)  # favicon and other files Vite copies from public/
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.include_router(router)
