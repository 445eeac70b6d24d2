"""``promptops keys | members | projects ...``: API keys, project members and projects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from promptops.cli import output
from promptops.cli.client import CliError, path_segment
from promptops.cli.common import ROLES_HELP, JsonFlag, client

keys_app = typer.Typer(help="Create, list and revoke API keys of the project.", no_args_is_help=True)
members_app = typer.Typer(help="Manage who can access the project, with which role.", no_args_is_help=True)
projects_app = typer.Typer(help="List and create projects.", no_args_is_help=True)

RoleOpt = Annotated[str, typer.Option("--role", "-r", help=ROLES_HELP)]


# --- API keys -------------------------------------------------------------------------------------------------


@keys_app.command("create")
def create_key(
    name: str,
    role: RoleOpt,
    expires_in_days: Annotated[
        int | None, typer.Option("--expires-in-days", min=1, help="Expire the key after this many days.")
    ] = None,
    rate_limit_per_minute: Annotated[
        int | None,
        typer.Option(
            "--rate-limit-per-minute",
            min=0,
            max=1_000_000,
            help="Gateway requests a minute for this key (0: no limit); default: the project's limit.",
        ),
    ] = None,
    permission: Annotated[
        list[str] | None,
        typer.Option(
            "--permission",
            help="Limit the key to this permission of its role (repeatable), e.g. prompt:read.",
        ),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Limit the key to the read permissions of its role.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key; the key is printed once and cannot be shown again."""
    body: dict[str, Any] = {"name": name, "role": role}
    if permission or read_only:
        body["permissions"] = [*(permission or []), *(["read"] if read_only else [])]
    if expires_in_days is not None:
        body["expiresAt"] = (datetime.now(UTC) + timedelta(days=expires_in_days)).isoformat()
    if rate_limit_per_minute is not None:
        body["rateLimitPerMinute"] = rate_limit_per_minute
    with client() as api:
        created = api.post("/api/v1/api-keys", body)
    if as_json:
        output.print_json(created)
        return
    expires = output.short_time(created["expiresAt"]) or "never"
    limited = f", limited to {', '.join(created['permissions'])}" if created.get("permissions") else ""
    output.secret(
        f"API key {created['name']} ({created['id']}, role {created['role']}{limited}, expires {expires})",
        created["key"],
        "Store this key now: it is shown only this once and the server keeps only its hash.",
    )


@keys_app.command("list")
def list_keys(as_json: JsonFlag = False) -> None:
    """List the project's API keys (never the keys themselves)."""
    with client() as api:
        keys = api.get("/api/v1/api-keys")
    if as_json:
        output.print_json(keys)
        return
    output.table(
        ["Id", "Name", "Role", "Prefix", "Status", "Expires", "Last used", "Rate limit"],
        [
            [
                k["id"],
                k["name"],
                k["role"],
                k["prefix"],
                _key_status(k),
                output.short_time(k["expiresAt"]),
                output.short_time(k["lastUsedAt"]),
                _rate_limit(k.get("rateLimitPerMinute")),
            ]
            for k in keys
        ],
    )


def _rate_limit(value: int | None) -> str:
    if value is None:
        return "project"
    return "none" if value == 0 else f"{value}/min"


def _key_status(key: dict[str, Any]) -> str:
    if key["revokedAt"]:
        return f"revoked {output.short_time(key['revokedAt'])}"
    if key["expiresAt"] and datetime.fromisoformat(key["expiresAt"]) <= datetime.now(UTC):
        return "expired"
    return "active"


@keys_app.command("revoke")
def revoke_key(key_id: str, as_json: JsonFlag = False) -> None:
    """Revoke an API key; it stops working at once."""
    with client() as api:
        key = api.delete(f"/api/v1/api-keys/{path_segment(key_id)}")
    if as_json:
        output.print_json(key)
        return
    output.echo(f"Revoked API key {key['name']} ({key['id']}, {key['prefix']}...)")


# --- members --------------------------------------------------------------------------------------------------


def _member_rows(members: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [m["userId"], m["email"], m["name"], m["role"], output.short_time(m["createdAt"])] for m in members
    ]


MEMBER_COLUMNS = ["User id", "Email", "Name", "Role", "Since"]


@members_app.command("list")
def list_members(as_json: JsonFlag = False) -> None:
    """List the project's members and their roles."""
    with client() as api:
        members = api.get("/api/v1/members")
    if as_json:
        output.print_json(members)
        return
    output.table(MEMBER_COLUMNS, _member_rows(members))


@members_app.command("add")
def add_member(
    email: str,
    role: RoleOpt,
    password: Annotated[
        str | None,
        typer.Option(help="Password for a new user (prompted for when the user does not exist yet)."),
    ] = None,
    name: Annotated[str, typer.Option(help="Display name of a new user.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Add a user to the project, creating the account when it does not exist."""
    body: dict[str, Any] = {"email": email, "role": role, "name": name, "password": password}
    with client() as api:
        try:
            member = api.post("/api/v1/members", body)
        except CliError as exc:
            # Only the server knows whether the user exists; ask for a password when it says one is needed.
            if exc.code != "password_required" or password is not None:
                raise
            body["password"] = typer.prompt(
                f"{email} has no account yet; password for the new user",
                hide_input=True,
                confirmation_prompt=True,
            )
            member = api.post("/api/v1/members", body)
    if as_json:
        output.print_json(member)
        return
    output.echo(f"Added {member['email']} ({member['userId']}) as {member['role']}")


@members_app.command("set-role")
def set_role(
    user_id: str,
    role: Annotated[str, typer.Argument(help=ROLES_HELP)],
    as_json: JsonFlag = False,
) -> None:
    """Change a member's role."""
    with client() as api:
        member = api.patch(f"/api/v1/members/{path_segment(user_id)}", {"role": role})
    if as_json:
        output.print_json(member)
        return
    output.echo(f"{member['email']} is now {member['role']}")


@members_app.command("remove")
def remove_member(user_id: str) -> None:
    """Remove a member from the project (the user account stays)."""
    with client() as api:
        api.delete(f"/api/v1/members/{path_segment(user_id)}")
    output.echo(f"Removed {user_id} from the project")


# --- projects -------------------------------------------------------------------------------------------------


@projects_app.command("list")
def list_projects(as_json: JsonFlag = False) -> None:
    """List the projects you can access."""
    with client() as api:
        projects = api.get("/api/v1/projects")
    if as_json:
        output.print_json(projects)
        return
    output.table(
        ["Id", "Name", "Role", "Description", "Created"],
        [
            [p["id"], p["name"], p["role"], p["description"], output.short_time(p["createdAt"])]
            for p in projects
        ],
    )


@projects_app.command("create")
def create_project(
    name: str,
    description: Annotated[str, typer.Option(help="What the project is for.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create a project in your organization (you become its admin)."""
    with client() as api:
        project = api.post("/api/v1/projects", {"name": name, "description": description})
    if as_json:
        output.print_json(project)
        return
    output.echo(f"Created project {project['name']} ({project['id']})")
