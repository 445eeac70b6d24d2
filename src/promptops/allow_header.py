"""The ``Allow`` header of a 405 answer: every method some route of the app accepts on the request's path.

FastAPI makes one route per method, and Starlette's 405 names only the methods of the first route whose path
matches, so the header is rebuilt by asking the app's routes which methods would fully match the path (RFC
9110 section 15.5.6 requires the header on every 405). Mounted apps (static files) name their own methods in
the exception's headers, which are kept.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.routing import Match, Mount

METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request, raised: Mapping[str, str] | None = None) -> str:
    """The methods the request's path supports, comma-separated in the usual order."""
    methods = {m.strip().upper() for m in (raised or {}).get("Allow", "").split(",") if m.strip()}
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    for method in METHOD_ORDER:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in routes):
            methods.add(method)
    return ", ".join([m for m in METHOD_ORDER if m in methods] + sorted(methods - set(METHOD_ORDER)))
