"""``promptops sso ...``: the organization's OpenID Connect providers, the project's role mappings, "SSO only"."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from promptops.cli import output
from promptops.cli.client import path_segment
from promptops.cli.common import JsonFlag, client

app = typer.Typer(
    help="Single sign-on (OpenID Connect): providers, role mappings, SSO only.", no_args_is_help=True
)
providers_app = typer.Typer(help="The organization's identity providers.", no_args_is_help=True)
mappings_app = typer.Typer(help="Which IdP group gets which role in this project.", no_args_is_help=True)
policy_app = typer.Typer(
    help="Whether password logins are refused for the organization.", no_args_is_help=True
)
app.add_typer(providers_app, name="providers")
app.add_typer(mappings_app, name="mappings")
app.add_typer(policy_app, name="policy")

KINDS = "generic, entra, okta, keycloak or google"
SECRET_ENV = "PROMPTOPS_SSO_CLIENT_SECRET"


def _show(provider: dict[str, Any]) -> None:
    output.fields(
        [
            ("Name", provider["name"]),
            ("Display name", provider["displayName"]),
            ("Kind", provider["kind"]),
            ("Issuer", provider["issuer"]),
            ("Client id", provider["clientId"]),
            ("Scopes", " ".join(provider["scopes"])),
            ("Allowed domains", ", ".join(provider["allowedDomains"]) or "any"),
            ("Groups claim", provider["groupsClaim"] or "none"),
            ("Link existing users", provider["linkExistingUsers"]),
            ("Enabled", provider["enabled"]),
            ("Redirect URI", provider["callbackUrl"]),
            ("Login URL", provider["loginUrl"]),
        ],
        title=f"SSO provider {provider['name']}",
    )


@providers_app.command("list")
def list_providers(as_json: JsonFlag = False) -> None:
    """List the organization's SSO providers (never their client secrets)."""
    with client() as api:
        rows = api.get("/api/v1/sso/providers")
    if as_json:
        output.print_json(rows)
        return
    output.table(
        ["Name", "Kind", "Issuer", "Client id", "Enabled"],
        [[r["name"], r["kind"], r["issuer"], r["clientId"], r["enabled"]] for r in rows],
    )


@providers_app.command("show")
def show_provider(name: str, as_json: JsonFlag = False) -> None:
    """Show one provider, with the redirect URI to register at the IdP."""
    with client() as api:
        row = api.get(f"/api/v1/sso/providers/{path_segment(name)}")
    if as_json:
        output.print_json(row)
        return
    _show(row)


@providers_app.command("create")
def create_provider(
    name: Annotated[str, typer.Argument(help="Used in the login URL; lowercase letters, digits and '-'.")],
    issuer: Annotated[
        str, typer.Option("--issuer", help="The issuer URL, exactly as its discovery names it.")
    ],
    client_id: Annotated[str, typer.Option("--client-id", help="The application (client) id at the IdP.")],
    client_secret: Annotated[
        str,
        typer.Option(
            "--client-secret",
            envvar=SECRET_ENV,
            prompt=True,
            hide_input=True,
            help=f"The client secret (prompted when not given; or set {SECRET_ENV}). Stored encrypted.",
        ),
    ],
    kind: Annotated[str, typer.Option("--kind", help=f"Claim quirks: {KINDS}.")] = "generic",
    display_name: Annotated[str, typer.Option("--display-name", help="Shown on the sign-in button.")] = "",
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="A scope (repeat); default per kind.")
    ] = None,
    domain: Annotated[
        list[str] | None, typer.Option("--domain", help="An allowed email domain (repeat).")
    ] = None,
    groups_claim: Annotated[
        str | None, typer.Option("--groups-claim", help="Claim(s) with the groups, comma-separated.")
    ] = None,
    link_existing_users: Annotated[
        bool,
        typer.Option("--link-existing-users", help="Let a first login sign in an existing user by email."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add an OpenID Connect provider to the organization (its discovery document is fetched and checked)."""
    body: dict[str, Any] = {
        "name": name,
        "issuer": issuer,
        "clientId": client_id,
        "clientSecret": client_secret,
        "kind": kind,
        "displayName": display_name,
        "allowedDomains": domain or [],
        "linkExistingUsers": link_existing_users,
    }
    if scope:
        body["scopes"] = scope
    if groups_claim is not None:
        body["groupsClaim"] = groups_claim
    with client() as api:
        row = api.post("/api/v1/sso/providers", body)
    if as_json:
        output.print_json(row)
        return
    _show(row)


@providers_app.command("update")
def update_provider(
    name: str,
    display_name: Annotated[str | None, typer.Option("--display-name")] = None,
    new_secret: Annotated[
        bool, typer.Option("--client-secret", help=f"Replace the client secret (prompted, or {SECRET_ENV}).")
    ] = False,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="Replace the scopes (repeat).")] = None,
    domain: Annotated[list[str] | None, typer.Option("--domain", help="Replace the allowed domains.")] = None,
    any_domain: Annotated[bool, typer.Option("--any-domain", help="Allow every email domain.")] = False,
    groups_claim: Annotated[str | None, typer.Option("--groups-claim")] = None,
    link_existing_users: Annotated[
        bool | None, typer.Option("--link-existing-users/--no-link-existing-users")
    ] = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a provider (issuer and client id are fixed: delete and re-create for another IdP)."""
    import os

    body: dict[str, Any] = {}
    if display_name is not None:
        body["displayName"] = display_name
    if new_secret:
        body["clientSecret"] = os.environ.get(SECRET_ENV) or typer.prompt("Client secret", hide_input=True)
    if scope:
        body["scopes"] = scope
    if domain or any_domain:
        body["allowedDomains"] = [] if any_domain else domain
    if groups_claim is not None:
        body["groupsClaim"] = groups_claim
    if link_existing_users is not None:
        body["linkExistingUsers"] = link_existing_users
    if enabled is not None:
        body["enabled"] = enabled
    with client() as api:
        row = api.patch(f"/api/v1/sso/providers/{path_segment(name)}", body)
    if as_json:
        output.print_json(row)
        return
    _show(row)


@providers_app.command("delete")
def delete_provider(name: str) -> None:
    """Remove a provider with its mappings (memberships it gave stay until removed)."""
    with client() as api:
        api.delete(f"/api/v1/sso/providers/{path_segment(name)}")
    output.echo(f"Deleted SSO provider {name}")


def _show_mappings(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        output.print_json(result)
        return
    output.table(["Group", "Role"], [[m["group"], m["role"]] for m in result["mappings"]])


@mappings_app.command("show")
def show_mappings(provider: str, as_json: JsonFlag = False) -> None:
    """This project's group -> role mappings for a provider."""
    with client() as api:
        result = api.get(f"/api/v1/sso/providers/{path_segment(provider)}/mappings")
    _show_mappings(result, as_json)


@mappings_app.command("set")
def set_mappings(
    provider: str,
    mapping: Annotated[
        list[str] | None,
        typer.Argument(
            help="GROUP=ROLE pairs ('*' for every user of the provider); none clears the mappings."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Replace this project's mappings; they apply at each user's next login."""
    pairs = []
    for item in mapping or []:
        group, sep, role = item.rpartition("=")
        if not sep or not group or not role:
            raise typer.BadParameter(f"expected GROUP=ROLE, got {item!r}")
        pairs.append({"group": group, "role": role})
    with client() as api:
        result = api.put(f"/api/v1/sso/providers/{path_segment(provider)}/mappings", {"mappings": pairs})
    _show_mappings(result, as_json)


@policy_app.command("show")
def show_policy(as_json: JsonFlag = False) -> None:
    """Whether the organization refuses password logins."""
    with client() as api:
        result = api.get("/api/v1/sso/policy")
    _print_policy(result, as_json)


@policy_app.command("set")
def set_policy(
    sso_only: Annotated[
        bool, typer.Option("--sso-only/--allow-passwords", help="Refuse password logins or not.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Turn "SSO only" on (the bootstrap admin keeps a password login as break-glass) or off."""
    with client() as api:
        result = api.put("/api/v1/sso/policy", {"ssoOnly": sso_only})
    _print_policy(result, as_json)


def _print_policy(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        output.print_json(result)
        return
    state = "SSO only (password logins refused)" if result["ssoOnly"] else "passwords and SSO"
    output.echo(f"Organization {result['orgId']}: {state}; break-glass admin {result['breakGlassEmail']}")
