"""``promptops sso ...`` against a live server and a real OIDC provider on 127.0.0.1 (both databases)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli_support import Cli, LiveServer, running_server
from tests.support.oidc_idp import CLIENT_ID, CLIENT_SECRET, OidcIdp


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcIdp]:
    provider = OidcIdp(tmp_path_factory.mktemp("idp"), ["corp"])
    yield provider
    provider.stop()


@pytest.fixture(name="server")
def server_fixture(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with running_server(db_url, tmp_path, provider_allowed_hosts=["127.0.0.1"]) as live:
        yield live


def test_providers_mappings_and_policy_through_the_cli(cli: Cli, idp: OidcIdp) -> None:
    created = cli.run(
        "sso",
        "providers",
        "create",
        "corp",
        "--kind",
        "keycloak",
        "--issuer",
        idp.issuer,
        "--client-id",
        CLIENT_ID,
        "--domain",
        "example.com",
        "--display-name",
        "Corp",
        input=CLIENT_SECRET + "\n",
    )
    assert created.exit_code == 0, created.stdout + created.stderr
    assert "/api/v1/auth/sso/corp/callback" in created.stdout
    assert CLIENT_SECRET not in created.stdout

    listed = cli.json("sso", "providers", "list")
    assert [(p["name"], p["kind"], p["groupsClaim"]) for p in listed] == [
        ("corp", "keycloak", "groups,realm_access.roles")
    ]
    assert listed[0]["allowedDomains"] == ["example.com"]

    shown = cli.ok("sso", "providers", "show", "corp").stdout
    assert idp.issuer in shown and "example.com" in shown

    updated = cli.json(
        "sso",
        "providers",
        "update",
        "corp",
        "--any-domain",
        "--client-secret",
        env={"PROMPTOPS_SSO_CLIENT_SECRET": "new"},
    )
    assert updated["allowedDomains"] == []

    mappings = cli.json("sso", "mappings", "set", "corp", "promptops-admins=PromptOpsAdmin", "*=Viewer")
    assert mappings["mappings"] == [
        {"group": "*", "role": "Viewer"},
        {"group": "promptops-admins", "role": "PromptOpsAdmin"},
    ]
    assert "promptops-admins" in cli.ok("sso", "mappings", "show", "corp").stdout
    bad = cli.fails("sso", "mappings", "set", "corp", "everyone=Owner")
    assert "mappings.0.role" in bad.stderr and "PromptOpsAdmin" in bad.stderr

    on = cli.json("sso", "policy", "set", "--sso-only")
    assert on["ssoOnly"] is True
    assert "SSO only" in cli.ok("sso", "policy", "show").stdout
    assert cli.json("sso", "policy", "set", "--allow-passwords")["ssoOnly"] is False

    cli.ok("sso", "providers", "delete", "corp")
    missing = cli.fails("sso", "providers", "show", "corp")
    assert "sso_provider_not_found" in missing.stderr or "not found" in missing.stderr
