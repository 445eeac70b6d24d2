"""Every route depends on exactly one guard: an ``Authorize(permission)`` instance or ``PUBLIC``.

The walk goes through every ``APIRoute`` of the real app (included routers flattened, router-level
dependencies applied) and recursively through each route's dependency tree, so a guard hidden in a
sub-dependency counts, and a second guard anywhere in the tree is reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from promptops.app import create_app
from promptops.auth.deps import PUBLIC, Authorize, require
from promptops.auth.principal import Principal
from promptops.governance.rbac import Permission
from tests.support.app import make_settings
from tests.support.route_guard_walk import (
    DOCS_ASSETS_MOUNT,
    EXCLUDED_ROUTES,
    FASTAPI_DOCS_ROUTES,
    RouteGuards,
    walk,
)

EXPECTED_PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/api/v1/auth/login"),
    # Single sign-on: which providers exist (for the login page), starting a login, and the provider's redirect.
    ("GET", "/api/v1/auth/sso/providers"),
    ("GET", "/api/v1/auth/sso/{provider}/login"),
    ("GET", "/api/v1/auth/sso/{provider}/callback"),
    # Slack signs these requests (promptops.slack.verify); a bad or missing signature is a 401
    ("POST", "/slack/commands"),
    ("POST", "/slack/events"),
    ("POST", "/slack/interactions"),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    tmp: Path = tmp_path_factory.mktemp("guards")
    # Building the app opens no connection: the database URL is never used here.
    return create_app(make_settings(f"sqlite+aiosqlite:///{tmp / 'unused.db'}", tmp), migrate=False)


def guard_problems(routes: list[RouteGuards]) -> list[str]:
    problems = []
    for route in routes:
        if not route.guards:
            problems.append(
                f"{route.label}: no guard (add Depends(require(<permission>)) or Depends(PUBLIC))"
            )
        elif len(route.guards) > 1:
            problems.append(
                f"{route.label}: {len(route.guards)} guards {list(route.guards)} (exactly one allowed)"
            )
    return problems


def test_every_route_has_exactly_one_guard(app: FastAPI) -> None:
    routes, others = walk(app)
    assert len(routes) >= 30, f"the walk found only {len(routes)} API routes: is it still reaching them all?"
    problems = guard_problems([r for r in routes if not r.is_excluded])
    problems += [
        f"{other.path}: a {type(other.route).__name__}, not an APIRoute, so it cannot carry a guard"
        for other in others
        if other.path not in EXCLUDED_ROUTES
    ]
    assert not problems, "Routes without exactly one guard:\n  " + "\n  ".join(problems)


def test_only_the_docs_routes_are_excluded(app: FastAPI) -> None:
    # The whole exclusion list, spelled out: FastAPI's documentation routes and the docs pages' assets, and
    # the web UI's assets and page route (index.html for any page path).
    assert {
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/static/api-docs",
        "/assets",
        "/{path:page}",
    } == EXCLUDED_ROUTES
    routes, others = walk(app)
    assert "/openapi.json" in {o.path for o in others}
    for other in others:
        if other.path in (DOCS_ASSETS_MOUNT, "/assets"):
            assert isinstance(other.route, Mount) and isinstance(other.route.app, StaticFiles)
        else:
            assert other.path in FASTAPI_DOCS_ROUTES and set(other.route.methods) <= {"GET", "HEAD"}, other
    # excluded paths serve pages only: a write route there would escape the guard check
    for route in routes:
        if route.is_excluded:
            assert set(route.methods) <= {"GET", "HEAD"}, route.label


def test_public_routes_are_exactly_the_expected_ones(app: FastAPI) -> None:
    routes, _ = walk(app)
    public = {(method, r.path) for r in routes if r.is_public and not r.is_excluded for method in r.methods}
    assert public == EXPECTED_PUBLIC


def test_every_guard_names_a_known_permission(app: FastAPI) -> None:
    routes, _ = walk(app)
    for route in routes:
        for guard in route.guards:
            if guard is not PUBLIC:
                assert isinstance(guard.permission, Permission), route.label


def test_every_method_path_pair_is_unique(app: FastAPI) -> None:
    routes, _ = walk(app)
    pairs = [(method, r.path) for r in routes for method in r.methods]
    assert len(pairs) == len(set(pairs)), sorted(p for p in pairs if pairs.count(p) > 1)


async def nested(principal: Annotated[Principal, Depends(require(Permission.PROMPT_READ))]) -> Principal:
    """A sub-dependency carrying a guard (module level: string annotations resolve in module globals)."""
    return principal


def test_the_walk_reports_missing_double_and_nested_guards() -> None:
    """The checker itself: it must see an unguarded route, two guards, and a guard nested in a dependency."""

    router = APIRouter(prefix="/x", dependencies=[Depends(PUBLIC)])

    @router.get("/router-public")
    async def router_public() -> None: ...

    @router.get("/router-public-and-authorize", dependencies=[Depends(require(Permission.PROMPT_READ))])
    async def router_public_and_authorize() -> None: ...

    toy = FastAPI()

    @toy.get("/open")
    async def open_route() -> None: ...

    @toy.get("/one", dependencies=[Depends(require(Permission.PROMPT_READ))])
    async def one() -> None: ...

    @toy.get("/two", dependencies=[Depends(require(Permission.PROMPT_READ)), Depends(PUBLIC)])
    async def two() -> None: ...

    @toy.get("/nested")
    async def nested_route(principal: Annotated[Principal, Depends(nested)]) -> None: ...

    @toy.get("/nested-twice", dependencies=[Depends(require(Permission.PROMPT_WRITE))])
    async def nested_twice(principal: Annotated[Principal, Depends(nested)]) -> None: ...

    toy.include_router(router)
    routes, others = walk(toy)
    counts = {r.path: len(r.guards) for r in routes}
    assert counts == {
        "/open": 0,
        "/one": 1,
        "/two": 2,
        "/nested": 1,
        "/nested-twice": 2,
        "/x/router-public": 1,
        "/x/router-public-and-authorize": 2,
    }
    assert {o.path for o in others} == FASTAPI_DOCS_ROUTES  # a plain FastAPI app has exactly these
    flagged = {p.split(":")[0] for p in guard_problems(routes)}
    assert flagged == {"GET /open", "GET /two", "GET /nested-twice", "GET /x/router-public-and-authorize"}
    assert isinstance(next(r for r in routes if r.path == "/nested").guard, Authorize)
