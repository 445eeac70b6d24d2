"""Single sign-on against a real OpenID Connect provider (panva/oidc-provider on 127.0.0.1), on both databases.

Each login goes through the provider's own HTML login and consent forms; PromptOps exchanges the code (PKCE),
verifies the ID token against the provider's JWKS and opens the session the web UI uses (cookies).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import ADMIN_EMAIL, ADMIN_KEY, ADMIN_PASSWORD, Api, open_api
from tests.support.oidc_idp import (
    CLIENT_ID,
    CLIENT_SECRET,
    TEST_BASE,
    USERS,
    OidcIdp,
    browser,
    sign_in_at_idp,
    sso_login,
)

PROVIDER = "corp"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcIdp]:
    provider = OidcIdp(tmp_path_factory.mktemp("idp"), [PROVIDER, "entra", "keycloak", "google"])
    yield provider
    provider.stop()


@pytest.fixture
async def sso_api(db_url: str, tmp_path: Path, idp: OidcIdp) -> AsyncIterator[Api]:
    """The app with loopback identity-provider URLs allowed (the test IdP runs on 127.0.0.1)."""
    api, client, lifespan = await open_api(db_url, tmp_path, provider_allowed_hosts=["127.0.0.1"])
    try:
        yield api
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
        for user in USERS:  # claims a test changed at the IdP
            await idp.set_user(user)


async def add_provider(api: Api, idp: OidcIdp, name: str = PROVIDER, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "displayName": "Corp IdP", "issuer": idp.issuer, "clientId": CLIENT_ID}
    body["scopes"] = ["openid", "email", "profile", "groups"]
    body["clientSecret"] = CLIENT_SECRET
    r = await api.post("/api/v1/sso/providers", json={**body, **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def map_groups(api: Api, mappings: dict[str, str], name: str = PROVIDER, key: str = ADMIN_KEY) -> None:
    body = {"mappings": [{"group": g, "role": r} for g, r in mappings.items()]}
    r = await api.put(f"/api/v1/sso/providers/{name}/mappings", key, json=body)
    assert r.status_code == 200, r.text


STANDARD = {"promptops-admins": "PromptOpsAdmin", "everyone": "Viewer"}


async def me(agent: Any) -> dict[str, Any]:
    r = await agent.get(f"{TEST_BASE}/api/v1/auth/me")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def audit_types(api: Api) -> list[str]:
    r = await api.get("/api/v1/audit", params={"limit": 200})
    assert r.status_code == 200, r.text
    return [e["eventType"] for e in r.json()["events"]]


async def test_full_login_gives_a_working_session_with_the_mapped_role(sso_api: Api, idp: OidcIdp) -> None:
    provider = await add_provider(sso_api, idp)
    assert "clientSecret" not in provider and provider["hasClientSecret"] is True
    assert provider["callbackUrl"] == f"{TEST_BASE}/api/v1/auth/sso/{PROVIDER}/callback"
    await map_groups(sso_api, STANDARD)

    options = (await sso_api.get("/api/v1/auth/sso/providers", key=None)).json()
    assert options == [
        {"name": PROVIDER, "displayName": "Corp IdP", "loginUrl": f"/api/v1/auth/sso/{PROVIDER}/login"}
    ]

    agent, done = await sso_login(sso_api.app, PROVIDER, "alice", next_path="/prompts")
    async with aclosing(agent):
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/prompts"
        who = await me(agent)
        assert who["kind"] == "user" and who["name"] == "alice@example.com"
        assert who["role"] == "PromptOpsAdmin"
        # the session is the web UI's: a cookie plus the CSRF header for changes
        csrf = agent.cookies.get("promptops_csrf")
        r = await agent.post(
            f"{TEST_BASE}/api/v1/api-keys",
            json={"name": "from-sso", "role": "Viewer"},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 201, r.text

    agent, done = await sso_login(sso_api.app, PROVIDER, "bob")
    async with aclosing(agent):
        assert done.status_code == 303
        assert (await me(agent))["role"] == "Viewer"
        r = await agent.post(
            f"{TEST_BASE}/api/v1/api-keys",
            json={"name": "nope", "role": "Viewer"},
            headers={"X-CSRF-Token": agent.cookies.get("promptops_csrf")},
        )
        assert r.status_code == 403 and r.json()["code"] == "permission_denied"
        # logout: first where to end the IdP's session too, then the PromptOps session
        r = await agent.get(f"{TEST_BASE}/api/v1/auth/sso/end-session")
        assert r.status_code == 200, r.text
        assert r.json()["endSessionUrl"].startswith(f"{idp.issuer}/session/end?client_id={CLIENT_ID}")
        r = await agent.post(
            f"{TEST_BASE}/api/v1/auth/logout", headers={"X-CSRF-Token": agent.cookies.get("promptops_csrf")}
        )
        assert r.status_code == 204, r.text
        assert (await agent.get(f"{TEST_BASE}/api/v1/auth/me")).status_code == 401

    members = {m["email"]: m["role"] for m in (await sso_api.get("/api/v1/members")).json()}
    assert members["alice@example.com"] == "PromptOpsAdmin" and members["bob@example.com"] == "Viewer"
    types = await audit_types(sso_api)
    assert {"SsoProviderCreated", "SsoMappingsChanged", "SsoUserProvisioned", "MemberAdded"} <= set(types)


async def test_a_token_for_another_audience_is_refused(sso_api: Api, idp: OidcIdp) -> None:
    await add_provider(sso_api, idp)
    await map_groups(sso_api, STANDARD)
    agent = browser(sso_api.app)
    async with agent:
        callback = await sign_in_at_idp(agent, PROVIDER, "alice")
        await idp.next_id_token(aud="another-application")
        r = await agent.get(callback)
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "sso_wrong_audience"
        assert "promptops_session" not in agent.cookies
    members = [m["email"] for m in (await sso_api.get("/api/v1/members")).json()]
    assert "alice@example.com" not in members


async def test_an_expired_id_token_is_refused(sso_api: Api, idp: OidcIdp) -> None:
    await add_provider(sso_api, idp)
    await map_groups(sso_api, STANDARD)
    agent = browser(sso_api.app)
    async with agent:
        callback = await sign_in_at_idp(agent, PROVIDER, "alice")
        await idp.next_id_token(expOffset=-7200)  # issued two hours ago: expired beyond the clock skew
        r = await agent.get(callback)
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "sso_token_expired"
        assert "promptops_session" not in agent.cookies


async def test_a_replayed_state_and_a_state_from_another_browser_are_refused(
    sso_api: Api, idp: OidcIdp
) -> None:
    await add_provider(sso_api, idp)
    await map_groups(sso_api, STANDARD)
    agent = browser(sso_api.app)
    async with agent:
        callback = await sign_in_at_idp(agent, PROVIDER, "alice")
        assert (await agent.get(callback)).status_code == 303
        replay = await agent.get(callback)
        assert replay.status_code == 400 and replay.json()["code"] == "sso_state_invalid"

    # a callback URL carried to another browser (login CSRF): the state is bound to the starting browser
    first, second = browser(sso_api.app), browser(sso_api.app)
    async with first, second:
        callback = await sign_in_at_idp(first, PROVIDER, "bob")
        r = await second.get(callback)
        assert r.status_code == 400 and r.json()["code"] == "sso_browser_mismatch"
        # and the state is spent: the rightful browser cannot use it afterwards either
        assert (await first.get(callback)).json()["code"] == "sso_state_invalid"

    # a browser gets sent back to the login page with the reason
    agent = browser(sso_api.app)
    async with agent:
        callback = await sign_in_at_idp(agent, PROVIDER, "alice")
        assert (await agent.get(callback)).status_code == 303
        r = await agent.get(callback, headers={"Accept": "text/html"})
        assert r.status_code == 303 and r.headers["location"] == "/login?ssoError=sso_state_invalid"


async def test_key_rotation_refetches_the_jwks_and_the_login_succeeds(sso_api: Api, idp: OidcIdp) -> None:
    await add_provider(sso_api, idp)
    await map_groups(sso_api, STANDARD)
    before = (await idp.log())["jwksFetches"]
    agent, done = await sso_login(sso_api.app, PROVIDER, "alice")
    await agent.aclose()
    assert done.status_code == 303
    assert (await idp.log())["jwksFetches"] == before + 1
    # a second login uses the cached keys
    agent, done = await sso_login(sso_api.app, PROVIDER, "alice")
    await agent.aclose()
    assert done.status_code == 303
    assert (await idp.log())["jwksFetches"] == before + 1

    new_kid = await idp.rotate_key()
    agent, done = await sso_login(sso_api.app, PROVIDER, "alice")
    async with aclosing(agent):
        assert done.status_code == 303, done.text
        assert (await me(agent))["role"] == "PromptOpsAdmin"
    log = await idp.log()
    assert log["signingKid"] == new_kid
    assert log["jwksFetches"] == before + 2  # the unknown kid made exactly one refetch


async def test_sso_only_refuses_password_logins_except_the_break_glass_admin(
    sso_api: Api, idp: OidcIdp
) -> None:
    r = await sso_api.put("/api/v1/sso/policy", json={"ssoOnly": True})
    assert r.status_code == 422 and r.json()["code"] == "sso_no_provider"
    r = await sso_api.post(
        "/api/v1/members",
        json={"email": "dave@example.com", "role": "PromptEngineer", "password": "dave-password-1"},
    )
    assert r.status_code == 201, r.text
    login = {"email": "dave@example.com", "password": "dave-password-1"}
    assert (await sso_api.post("/api/v1/auth/login", key=None, json=login)).status_code == 200

    await add_provider(sso_api, idp)
    r = await sso_api.put("/api/v1/sso/policy", json={"ssoOnly": True})
    assert r.status_code == 200 and r.json()["ssoOnly"] is True
    assert r.json()["breakGlassEmail"] == ADMIN_EMAIL

    refused = await sso_api.post("/api/v1/auth/login", key=None, json=login)
    assert refused.status_code == 401, refused.text
    assert refused.json()["code"] == "sso_required"
    assert "single sign-on" in refused.json()["detail"]

    admin = await sso_api.post(
        "/api/v1/auth/login", key=None, json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert admin.status_code == 200, admin.text
    types = await audit_types(sso_api)
    assert "BreakGlassPasswordLogin" in types and "SsoPolicyChanged" in types

    r = await sso_api.put("/api/v1/sso/policy", json={"ssoOnly": False})
    assert r.json()["ssoOnly"] is False
    assert (await sso_api.post("/api/v1/auth/login", key=None, json=login)).status_code == 200


async def test_group_and_mapping_changes_apply_at_the_next_login(sso_api: Api, idp: OidcIdp) -> None:
    await add_provider(sso_api, idp)
    await map_groups(sso_api, STANDARD)

    agent, done = await sso_login(sso_api.app, PROVIDER, "bob")
    async with aclosing(agent):
        assert (await me(agent))["role"] == "Viewer"

    # the IdP puts bob in the admins group: his next login makes him a PromptOpsAdmin
    await idp.set_user("bob", groups=["everyone", "promptops-admins"])
    agent, done = await sso_login(sso_api.app, PROVIDER, "bob")
    async with aclosing(agent):
        assert (await me(agent))["role"] == "PromptOpsAdmin"

    # the project maps 'everyone' to QAAnalyst and drops the admins mapping
    await map_groups(sso_api, {"everyone": "QAAnalyst"})
    agent, done = await sso_login(sso_api.app, PROVIDER, "bob")
    async with aclosing(agent):
        assert (await me(agent))["role"] == "QAAnalyst"
    r = await sso_api.get(f"/api/v1/sso/providers/{PROVIDER}/mappings")
    assert r.json()["mappings"] == [{"group": "everyone", "role": "QAAnalyst"}]

    # no mapping left for bob's groups: the managed membership goes and the login is refused
    await map_groups(sso_api, {"promptops-admins": "PromptOpsAdmin"})
    await idp.set_user("bob", groups=["everyone"])
    agent, done = await sso_login(sso_api.app, PROVIDER, "bob")
    async with aclosing(agent):
        assert done.status_code == 401 and done.json()["code"] == "sso_no_role"
    members = [m["email"] for m in (await sso_api.get("/api/v1/members")).json()]
    assert "bob@example.com" not in members
    types = await audit_types(sso_api)
    assert types.count("MemberRoleChanged") >= 2 and "MemberRemoved" in types


async def test_domains_existing_accounts_and_first_logins_without_a_role(sso_api: Api, idp: OidcIdp) -> None:
    await add_provider(sso_api, idp, allowedDomains=["Example.com"])
    await map_groups(sso_api, {"everyone": "Viewer"})
    agent, done = await sso_login(sso_api.app, PROVIDER, "carol")  # carol@other.org
    await agent.aclose()
    assert done.status_code == 401 and done.json()["code"] == "sso_domain_not_allowed"

    # an existing password account with the same email is not taken over unless the provider may link
    r = await sso_api.post(
        "/api/v1/members",
        json={"email": "bob@example.com", "role": "PromptEngineer", "password": "bob-password-1"},
    )
    assert r.status_code == 201
    agent, done = await sso_login(sso_api.app, PROVIDER, "bob")
    await agent.aclose()
    assert done.status_code == 409 and done.json()["code"] == "sso_account_exists"
    r = await sso_api.patch(f"/api/v1/sso/providers/{PROVIDER}", json={"linkExistingUsers": True})
    assert r.status_code == 200 and r.json()["linkExistingUsers"] is True
    agent, done = await sso_login(sso_api.app, PROVIDER, "bob")
    async with aclosing(agent):
        assert done.status_code == 303
        assert (await me(agent))["role"] == "Viewer"  # the mapping now manages bob's membership
    assert "SsoIdentityLinked" in await audit_types(sso_api)

    # groups no project maps: no user is created
    await map_groups(sso_api, {"promptops-admins": "PromptOpsAdmin"})
    await sso_api.patch(f"/api/v1/sso/providers/{PROVIDER}", json={"allowedDomains": []})
    agent, done = await sso_login(sso_api.app, PROVIDER, "carol")
    await agent.aclose()
    assert done.status_code == 401 and done.json()["code"] == "sso_no_role"


async def test_claim_quirks_of_keycloak_entra_and_google(sso_api: Api, idp: OidcIdp) -> None:
    scopes = ["openid", "email", "profile", "groups"]
    await add_provider(sso_api, idp, "keycloak", kind="keycloak", scopes=scopes)
    assert (await sso_api.get("/api/v1/sso/providers/keycloak")).json()[
        "groupsClaim"
    ] == "groups,realm_access.roles"
    await map_groups(sso_api, {"po-engineer": "PromptEngineer"}, name="keycloak")
    agent, done = await sso_login(sso_api.app, "keycloak", "dave")
    async with aclosing(agent):
        assert done.status_code == 303, done.text
        assert (await me(agent))["role"] == "PromptEngineer"  # from realm_access.roles

    await add_provider(sso_api, idp, "entra", kind="entra", scopes=scopes)
    await map_groups(sso_api, {"PromptOps.Admin": "PromptOpsAdmin"}, name="entra")
    agent, done = await sso_login(sso_api.app, "entra", "erin")
    async with aclosing(agent):
        assert done.status_code == 303, done.text
        who = await me(agent)
        assert (
            who["name"] == "erin@example.com" and who["role"] == "PromptOpsAdmin"
        )  # preferred_username, app role
    agent, done = await sso_login(sso_api.app, "entra", "frank")
    await agent.aclose()
    assert done.status_code == 401 and done.json()["code"] == "sso_group_overage"

    await add_provider(sso_api, idp, "google", kind="google", scopes=scopes, allowedDomains=["example.com"])
    assert (await sso_api.get("/api/v1/sso/providers/google")).json()["groupsClaim"] == ""
    await map_groups(sso_api, {"*": "Viewer"}, name="google")
    agent = browser(sso_api.app)
    async with agent:
        start = await agent.get(f"{TEST_BASE}/api/v1/auth/sso/google/login")
        assert "hd=example.com" in start.headers["location"]  # the account chooser hint
    agent, done = await sso_login(sso_api.app, "google", "gina")
    async with aclosing(agent):
        assert done.status_code == 303, done.text
        assert (await me(agent))["role"] == "Viewer"
    agent, done = await sso_login(sso_api.app, "google", "hank")  # an address in the domain, but no hd
    await agent.aclose()
    assert done.status_code == 401 and done.json()["code"] == "sso_domain_not_allowed"


async def test_a_loopback_issuer_fails_the_ssrf_guard_without_the_operators_allow_list(
    api: Api, idp: OidcIdp
) -> None:
    body = {"name": "corp", "issuer": idp.issuer, "clientId": "x", "clientSecret": "y"}
    r = await api.post("/api/v1/sso/providers", json=body)
    assert r.status_code == 422 and r.json()["code"] == "unsafe_base_url"


async def test_provider_configuration_is_validated_guarded_and_audited(sso_api: Api, idp: OidcIdp) -> None:
    body = {"name": "bad", "issuer": idp.issuer + "/other", "clientId": "x", "clientSecret": "y"}
    r = await sso_api.post("/api/v1/sso/providers", json=body)
    assert r.status_code == 502 and r.json()["code"] == "sso_idp_unavailable"  # no discovery there
    r = await sso_api.post("/api/v1/sso/providers", json={**body, "issuer": "http://idp.example.com"})
    assert r.status_code == 422 and r.json()["code"] == "sso_invalid_issuer"  # http only on loopback
    r = await sso_api.post("/api/v1/sso/providers", json={**body, "issuer": idp.issuer, "scopes": ["email"]})
    assert r.status_code == 422 and r.json()["code"] == "sso_openid_scope_required"

    await add_provider(sso_api, idp)
    r = await sso_api.post("/api/v1/sso/providers", json={**body, "name": PROVIDER, "issuer": idp.issuer})
    assert r.status_code == 409 and r.json()["code"] == "sso_provider_exists"
    # issuer and client id are fixed: another IdP must not inherit the mappings
    r = await sso_api.patch(f"/api/v1/sso/providers/{PROVIDER}", json={"issuer": "https://evil.example.com"})
    assert r.status_code == 422
    r = await sso_api.patch(f"/api/v1/sso/providers/{PROVIDER}", json={"clientSecret": "rotated-secret"})
    assert r.status_code == 200
    r = await sso_api.put(
        f"/api/v1/sso/providers/{PROVIDER}/mappings",
        json={"mappings": [{"group": "a", "role": "Viewer"}, {"group": "a", "role": "PromptOpsAdmin"}]},
    )
    assert r.status_code == 422 and r.json()["code"] == "sso_duplicate_mapping"
    r = await sso_api.put(
        f"/api/v1/sso/providers/{PROVIDER}/mappings", json={"mappings": [{"group": "a", "role": "Owner"}]}
    )
    assert r.status_code == 422

    viewer = (await sso_api.make_key("Viewer"))["key"]
    compliance = (await sso_api.make_key("ComplianceOfficer"))["key"]
    assert (await sso_api.get("/api/v1/sso/providers", viewer)).status_code == 403
    assert (await sso_api.get("/api/v1/sso/providers", compliance)).status_code == 200
    r = await sso_api.put("/api/v1/sso/policy", compliance, json={"ssoOnly": True})
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    listed = (await sso_api.get("/api/v1/sso/providers")).json()
    assert "rotated-secret" not in str(listed) and CLIENT_SECRET not in str(listed)

    assert (await sso_api.get("/api/v1/auth/sso/nope/login", key=None)).json()[
        "code"
    ] == "sso_provider_not_found"
    r = await sso_api.get(
        f"/api/v1/auth/sso/{PROVIDER}/login", key=None, params={"next": "//evil.example.com"}
    )
    assert r.status_code == 422 and r.json()["code"] == "sso_invalid_next"

    r = await sso_api.delete(f"/api/v1/sso/providers/{PROVIDER}")
    assert r.status_code == 204
    assert (await sso_api.get(f"/api/v1/sso/providers/{PROVIDER}")).status_code == 404
    types = await audit_types(sso_api)
    assert {"SsoProviderCreated", "SsoProviderUpdated", "SsoProviderDeleted"} <= set(types)
