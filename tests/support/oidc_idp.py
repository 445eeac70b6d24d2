"""A real OpenID Connect provider for the SSO tests: panva/oidc-provider run by ``tests/support/oidc_idp/server.mjs``
on 127.0.0.1 (its npm packages are installed by ``make install``), and a browser-less user agent that signs in
through its HTML forms.

The IdP has test controls (see server.mjs): rotate its signing key, change a user's claims (groups), and have the
next token response carry an ID token with another audience or an expiry in the past, signed with its own key.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

IDP_DIR = Path(__file__).parent / "oidc_idp"
TEST_BASE = "http://testserver"
CLIENT_ID = "promptops"
CLIENT_SECRET = "test-client-secret-0123456789"

USERS: dict[str, dict[str, Any]] = {
    "alice": {
        "password": "alice-pass",
        "email": "alice@example.com",
        "name": "Alice Admin",
        "groups": ["promptops-admins", "everyone"],
    },
    "bob": {"password": "bob-pass", "email": "bob@example.com", "name": "Bob Viewer", "groups": ["everyone"]},
    "carol": {"password": "carol-pass", "email": "carol@other.org", "name": "Carol", "groups": ["everyone"]},
    # Keycloak: realm roles, no groups claim
    "dave": {
        "password": "dave-pass",
        "email": "dave@example.com",
        "name": "Dave",
        "claims": {"realm_access": {"roles": ["po-engineer", "offline_access"]}},
    },
    # Entra ID: no email claim (preferred_username is the sign-in name), app roles
    "erin": {
        "password": "erin-pass",
        "name": "Erin",
        "claims": {"preferred_username": "erin@example.com", "roles": ["PromptOps.Admin"]},
    },
    # Entra ID group overage: the groups come by reference to Microsoft Graph
    "frank": {
        "password": "frank-pass",
        "email": "frank@example.com",
        "name": "Frank",
        "claims": {"_claim_names": {"groups": "src1"}, "hasgroups": True},
    },
    # Google: a Workspace account (hd) and a consumer account with an address in the same domain
    "gina": {
        "password": "gina-pass",
        "email": "gina@example.com",
        "name": "Gina",
        "claims": {"hd": "example.com"},
    },
    "hank": {"password": "hank-pass", "email": "hank@example.com", "name": "Hank"},
}


def callback_url(provider: str) -> str:
    return f"{TEST_BASE}/api/v1/auth/sso/{provider}/callback"


class OidcIdp:
    """The provider process; ``issuer`` is http://127.0.0.1:<port>."""

    def __init__(self, workdir: Path, providers: list[str]) -> None:
        node = shutil.which("node")
        if node is None or not (IDP_DIR / "node_modules" / "oidc-provider").exists():
            pytest.fail(
                "the test OIDC provider needs node and `make install` (npm ci in tests/support/oidc_idp)"
            )
        config = {
            "clients": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": [callback_url(p) for p in providers],
                }
            ],
            "users": USERS,
        }
        path = workdir / "idp-config.json"
        path.write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [node, str(IDP_DIR / "server.mjs"), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("LISTENING "):
            self.stop()
            pytest.fail(f"the test OIDC provider did not start: {line!r}")
        self.issuer = f"http://127.0.0.1:{int(line.split()[1])}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(base_url=self.issuer) as client:
            response = await client.request(method, f"/__test/{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    async def rotate_key(self) -> str:
        return str((await self.control("POST", "rotate"))["kid"])

    async def set_user(self, user: str, **claims: Any) -> None:
        await self.control("PUT", f"users/{user}", {**USERS[user], **claims})

    async def next_id_token(self, **change: Any) -> None:
        await self.control("POST", "next-id-token", change)

    async def log(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.control("GET", "log")
        return result


def browser(app: Any) -> httpx.AsyncClient:
    """A user agent with a cookie jar: PromptOps in-process at http://testserver, the IdP over real HTTP."""
    return httpx.AsyncClient(
        mounts={TEST_BASE: httpx.ASGITransport(app=app)},
        headers={"Accept": "application/json"},
        timeout=30,
    )


_FORM = re.compile(r'<form method="post" action="([^"]+)">')


async def sign_in_at_idp(
    agent: httpx.AsyncClient, provider: str, username: str, password: str | None = None, next_path: str = "/"
) -> str:
    """Start the login at PromptOps, sign in and consent at the IdP; the callback URL (not yet called)."""
    response = await agent.get(f"{TEST_BASE}/api/v1/auth/sso/{provider}/login", params={"next": next_path})
    assert response.status_code == 302, response.text
    url = response.headers["location"]
    for _ in range(12):
        if url.startswith(callback_url(provider)):
            return url
        response = await agent.get(url)
        if response.status_code in (302, 303):
            url = urljoin(url, response.headers["location"])
            continue
        assert response.status_code == 200, response.text
        action = _FORM.search(response.text)
        assert action is not None, response.text
        form = {}
        if action.group(1).endswith("/login"):
            form = {"login": username, "password": password or str(USERS[username]["password"])}
        response = await agent.post(urljoin(url, action.group(1)), data=form)
        assert response.status_code in (302, 303), response.text
        url = urljoin(url, response.headers["location"])
    raise AssertionError(f"the IdP never redirected back to PromptOps (last URL {url})")


async def sso_login(
    app: Any, provider: str, username: str, next_path: str = "/"
) -> tuple[httpx.AsyncClient, httpx.Response]:
    """A full login in a fresh user agent; the agent (holding the session cookies) and the callback's response."""
    agent = browser(app)
    callback = await sign_in_at_idp(agent, provider, username, next_path=next_path)
    return agent, await agent.get(callback)
