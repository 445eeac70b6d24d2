"""Security headers on every response, and the Content-Security-Policy of the web UI.

* The web UI's pages get a strict policy: scripts only from the server's own origin (no inline script, no
  ``eval``), no plugins, no framing, no ``<base>``, forms and connections to the same origin only. Styles allow
  inline ``<style>`` because the UI's component library and editor inject their styles at run time; no script
  can run from a style, so the policy still blocks script injection.
* The API documentation pages (``/docs``, ``/redoc``) carry the inline bootstrap script of Swagger UI and a
  Redoc worker, so they get a policy that allows exactly that on those two paths.
* Every other response (JSON, files) gets ``default-src 'none'``: nothing a browser loads from them can run.
* Always: ``nosniff``, no referrer, no framing, same-origin opener, no powerful features; HSTS when the
  server is told it runs behind HTTPS (``PROMPTOPS_COOKIE_SECURE``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UI_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
DOCS_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
DOCS_PATHS = ("/docs", "/redoc")

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def policy_for(path: str, content_type: str) -> str:
    if path in DOCS_PATHS or path.startswith("/docs/") or path.startswith("/redoc/"):
        return DOCS_POLICY
    if content_type.startswith("text/html"):
        return UI_POLICY
    return API_POLICY


class SecurityHeaders:
    """Pure ASGI middleware (no body buffering: streams pass through untouched)."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                content_type = next(
                    (v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), ""
                )
                extra = [h for h in _COMMON if h[0] not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", policy_for(path, content_type).encode()))
                if self.hsts and HSTS[0] not in present:
                    extra.append(HSTS)
                message = {**message, "headers": headers + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)
