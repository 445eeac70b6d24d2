"""Find every route of an app and the guards (``Authorize`` instances or ``PUBLIC``) it depends on.

Shared by ``test_route_guards.py`` and ``test_authz_matrix.py`` so that both see exactly the same routes: a
route added to the app is picked up by both without editing either test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, routing
from fastapi.routing import APIRoute

from promptops.auth.deps import PUBLIC, Authorize

# FastAPI's own documentation routes: the only routes allowed to skip a guard (they may also carry PUBLIC).
FASTAPI_DOCS_ROUTES = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
# The static assets (Swagger UI / ReDoc JS and CSS) of those pages, bundled instead of loaded from a CDN
# (promptops.ops.docs): a StaticFiles mount, which cannot carry a dependency.
DOCS_ASSETS_MOUNT = "/static/api-docs"
# The web UI (promptops.ops.web, present when web/dist is built): its hashed assets (a StaticFiles mount) and
# the page route that answers index.html; both serve the same public files to everyone, like the docs pages.
WEB_UI_ROUTES = frozenset({"/assets", "/{path:page}"})
EXCLUDED_ROUTES = FASTAPI_DOCS_ROUTES | {DOCS_ASSETS_MOUNT} | WEB_UI_ROUTES


@dataclass(frozen=True)
class OtherRoute:
    """A route that is not an ``APIRoute`` (FastAPI's docs routes, mounts)."""

    path: str
    route: Any


@dataclass(frozen=True)
class RouteGuards:
    path: str
    methods: tuple[str, ...]
    guards: tuple[Any, ...]

    @property
    def label(self) -> str:
        return f"{'|'.join(self.methods)} {self.path}"

    @property
    def guard(self) -> Any:
        """The single guard (call only after checking there is exactly one)."""
        assert len(self.guards) == 1, self.label
        return self.guards[0]

    @property
    def is_public(self) -> bool:
        return len(self.guards) == 1 and self.guards[0] is PUBLIC

    @property
    def is_excluded(self) -> bool:
        return self.path in EXCLUDED_ROUTES


def is_guard(call: Any) -> bool:
    return isinstance(call, Authorize) or call is PUBLIC


def guards_of(dependant: Any) -> list[Any]:
    """Every guard in a dependency tree, depth first, duplicates kept (two guards are an error too)."""
    found: list[Any] = []
    for dependency in dependant.dependencies:
        if is_guard(dependency.call):
            found.append(dependency.call)
        found.extend(guards_of(dependency))
    return found


def _route_contexts(app: FastAPI) -> Iterator[tuple[Any, Any]]:
    """(original route, effective route) pairs, flattening included routers.

    FastAPI 0.163 keeps included routers as nested ``_IncludedRouter`` entries of ``app.routes``;
    ``iter_route_contexts`` yields each route with the prefix and router-level dependencies applied. Older
    FastAPI versions copied routes flat into ``app.routes``.
    """
    iterate = getattr(routing, "iter_route_contexts", None)
    if iterate is None:  # pragma: no cover - older FastAPI
        for route in app.routes:
            yield route, route
        return
    for context in iterate(app.routes):
        yield context.original_route, context


def walk(app: FastAPI) -> tuple[list[RouteGuards], list[OtherRoute]]:
    """(every API route with its guards, every other route)."""
    api_routes: list[RouteGuards] = []
    others: list[OtherRoute] = []
    for original, effective in _route_contexts(app):
        if isinstance(original, APIRoute):
            api_routes.append(
                RouteGuards(
                    path=effective.path,
                    methods=tuple(sorted(effective.methods or ())),
                    guards=tuple(guards_of(effective.dependant)),
                )
            )
        else:
            others.append(OtherRoute(str(getattr(effective, "path", None) or repr(original)), original))
    return api_routes, others
