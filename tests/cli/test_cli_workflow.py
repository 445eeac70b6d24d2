"""The issue's acceptance through the CLI against a real server, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx

from tests.support.app import ADMIN_EMAIL, ADMIN_KEY, ADMIN_PASSWORD
from tests.support.cli_support import (
    KEY_RE,
    Cli,
    LiveServer,
    tamper_audit_log,
)

TRIAGE_V1 = """---
name: support/triage
description: Route a ticket
tags: [support]
variables:
  - {name: ticket, type: string}
  - {name: team, type: string, required: false, default: tier1}
modelConfig: {provider: local, model: gemma-3-270m, params: {temperature: 0}}
---
Classify this ticket for {{ team }}: {{ ticket }}
"""
TRIAGE_V2 = TRIAGE_V1.replace("Classify this ticket", "Route this ticket")
TRIAGE_V3 = TRIAGE_V2.replace("temperature: 0}", "temperature: 0.5}").replace(
    "---\nRoute", "labels: [staging]\ncommitMessage: warmer\n---\nRoute"
)


def test_prompt_lifecycle(cli: Cli, tmp_path: Path) -> None:
    created = cli.ok(
        "prompts",
        "create",
        "demo/greet",
        "--template",
        "Hello {{ who }}, you are {{ age }}!\n",
        "--var",
        "who",
        "--var",
        "age:integer=30",
        "--tag",
        "demo",
        "--description",
        "Greets",
        "-m",
        "first",
    )
    assert "Created demo/greet version 1" in created.stdout

    # Three versions pushed from a file; an unchanged file is reported as such and makes no version.
    folder = tmp_path / "prompts"
    file = folder / "support" / "triage.prompt.md"
    file.parent.mkdir(parents=True)
    file.write_text(TRIAGE_V1)
    pushed = cli.json("prompts", "push", str(folder))
    assert [(r["name"], r["action"], r["version"]) for r in pushed] == [("support/triage", "created", 1)]
    again = cli.ok("prompts", "push", str(file))
    assert "unchanged" in again.stdout and "support/triage" in again.stdout
    file.write_text(TRIAGE_V2)
    dry = cli.json("prompts", "push", str(file), "--dry-run")
    assert dry[0]["action"] == "would create version 2"
    assert cli.json("prompts", "push", str(file))[0]["action"] == "new version 2"
    file.write_text(TRIAGE_V3)
    third = cli.ok("prompts", "push", str(folder), "--label", "canary", "-m", "third")
    assert "new version 3" in third.stdout
    assert cli.json("prompts", "push", str(folder))[0]["action"] == "unchanged"
    # Labels from the front matter and from --label went to the new version.
    assert cli.json("prompts", "show", "support/triage@staging")["version"]["version"] == 3
    latest = cli.json("prompts", "show", "support/triage@canary")["version"]
    assert latest["version"] == 3 and latest["commitMessage"] == "third"
    versions = cli.json("prompts", "versions", "support/triage")
    assert [v["version"] for v in versions] == [3, 2, 1]

    # Labels, show by label and by version, rollback.
    moved = cli.ok("prompts", "label", "support/triage", "production", "2", "--reason", "ship it")
    assert "production → version 2" in moved.stdout and "deployment" in moved.stdout
    assert "(was 2)" in cli.ok("prompts", "label", "support/triage", "production", "3").stdout
    shown = cli.ok("prompts", "show", "support/triage@production")
    assert "Route this ticket for {{ team }}" in shown.stdout and "3 of 3" in shown.stdout
    first = cli.json("prompts", "show", "support/triage@1")
    assert first["version"]["template"] == "Classify this ticket for {{ team }}: {{ ticket }}\n"
    rolled = cli.ok("prompts", "rollback", "support/triage", "--reason", "too warm")
    assert "production → version 2 (was 3)" in rolled.stdout
    assert cli.json("prompts", "show", "support/triage@production")["version"]["version"] == 2
    to_one = cli.json("prompts", "rollback", "support/triage", "--to", "1", "--approver", "cto@example.com")
    assert (to_one["version"], to_one["previousVersion"]) == (1, 2)
    history = cli.json("prompts", "history", "support/triage", "--label", "production")
    assert [(e["action"], e["fromVersion"], e["toVersion"]) for e in history] == [
        ("rollback", 2, 1),
        ("rollback", 3, 2),
        ("set", 2, 3),
        ("set", None, 2),
    ]
    assert "rollback" in cli.ok("prompts", "history", "support/triage").stdout
    noop = cli.fails("prompts", "rollback", "support/triage", "--to", "1")
    assert "[rollback_noop]" in noop.stderr

    # Fork keeps the content and records lineage.
    forked = cli.ok("prompts", "fork", "support/triage", "support/triage-copy", "--version", "2")
    assert "Forked support/triage into support/triage-copy version 1" in forked.stdout
    copy = cli.json("prompts", "show", "support/triage-copy")["version"]
    assert copy["source"] == "forked" and copy["template"].startswith("Route this ticket")

    # Diff: colored unified text diff plus structured changes.
    diff = cli.ok("prompts", "diff", "support/triage", "1", "3")
    assert "-Classify this ticket for {{ team }}: {{ ticket }}" in diff.stdout
    assert "+Route this ticket for {{ team }}: {{ ticket }}" in diff.stdout
    assert "params.temperature" in diff.stdout and "Structured changes" in diff.stdout
    diff_json = cli.json("prompts", "diff", "support/triage", "production", "support/triage-copy@1")
    assert diff_json["from"] == "support/triage@1" and diff_json["to"] == "support/triage-copy@1"
    assert not diff_json["identical"]
    same = cli.ok("prompts", "diff", "support/triage", "2", "support/triage-copy@1")
    assert "No differences" in same.stdout

    # Render with variables: values parse as JSON when they can.
    rendered = cli.ok("prompts", "render", "demo/greet", "--var", "who=Ada", "--var", "age=36")
    assert rendered.stdout == "Hello Ada, you are 36!\n"
    assert cli.ok("prompts", "render", "demo/greet", "--var", "who=Bo").stdout == "Hello Bo, you are 30!\n"
    wrong_type = cli.fails("prompts", "render", "demo/greet", "--var", "who=Ada", "--var", "age=old")
    assert wrong_type.stderr.startswith("Error: Template error: ") and "age" in wrong_type.stderr
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps({"product": "Widget", "customer_name": "Ann", "message": "It broke"}))
    chat = cli.ok(
        "prompts",
        "render",
        "support/reply@production",
        "--vars-file",
        str(vars_file),
        "--var",
        "max_sentences=2",
    )
    assert chat.stdout.startswith(
        "[system]\nYou are a support agent for Widget. Answer in at most 2 sentences."
    )
    assert "\n\n[user]\nCustomer Ann writes:" in chat.stdout
    chat_json = cli.json("prompts", "render", "support/reply", "--vars-file", str(vars_file))
    assert chat_json["kind"] == "chat" and chat_json["messages"][0]["role"] == "system"

    # Pull round-trip: pulled files push back as unchanged.
    out = tmp_path / "pulled"
    pulled = cli.json("prompts", "pull", "support/triage", "demo/greet", "--dir", str(out))
    assert {r["name"]: r["version"] for r in pulled} == {"support/triage": 3, "demo/greet": 1}
    assert (
        (out / "support" / "triage.prompt.md")
        .read_text()
        .endswith("Route this ticket for {{ team }}: {{ ticket }}\n")
    )
    assert {r["action"] for r in cli.json("prompts", "push", str(out))} == {"unchanged"}
    everything = tmp_path / "everything"
    cli.ok("prompts", "pull", "--all", "--dir", str(everything))
    round_trip = cli.json("prompts", "push", str(everything))
    assert len(round_trip) == 6 and {r["action"] for r in round_trip} == {"unchanged"}, round_trip
    production = cli.json(
        "prompts", "pull", "--all", "--label", "production", "--dir", str(tmp_path / "prod")
    )
    assert {r["name"] for r in production} == {
        "support/triage",
        "support/reply",
        "sentiment/few-shot",
        "sentiment/zero-shot",
    }
    assert next(r for r in production if r["name"] == "support/triage")["version"] == 1
    skipped = cli.json("prompts", "pull", "demo/greet", "--label", "production", "--dir", str(tmp_path / "x"))
    assert skipped[0]["action"] == "skipped (no production)" and not (tmp_path / "x" / "demo").exists()
    old = cli.json("prompts", "pull", "support/triage", "--version", "1", "--dir", str(tmp_path / "v1"))
    assert old[0]["version"] == 1

    # Listing and removing labels.
    listed = cli.json("prompts", "list", "--prefix", "support/")
    assert [p["name"] for p in listed["items"]] == ["support/reply", "support/triage", "support/triage-copy"]
    paged = cli.json("prompts", "list", "--limit", "2", "--all")
    assert len(paged["items"]) == 6 and paged["nextCursor"] is None
    assert cli.json("prompts", "list", "--limit", "2")["nextCursor"]
    assert "demo/greet" in cli.ok("prompts", "list", "--tag", "demo").stdout
    assert "removed label canary" in cli.ok("prompts", "unlabel", "support/triage", "canary").stdout
    gone = cli.fails("prompts", "show", "support/triage@canary")
    assert (
        gone.stderr == "Error: Not found: Prompt 'support/triage' has no label 'canary' [label_not_found]\n"
    )


def test_identity_keys_members_projects(server: LiveServer, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "cfg" / "config.json", server.url)
    logged_in = cli.login_admin()
    assert ADMIN_KEY not in logged_in.stdout + logged_in.stderr
    assert "as bootstrap-admin (api_key, role PromptOpsAdmin" in logged_in.stdout
    assert stat.S_IMODE(cli.config_path.stat().st_mode) == 0o600
    assert json.loads(cli.config_path.read_text()) == {"url": server.url, "token": ADMIN_KEY}
    me = cli.json("whoami")
    assert me["kind"] == "api_key" and "prompt:write" in me["permissions"]

    # A key is shown once; the listing never shows it; a revoked key fails with a clear error.
    created = cli.ok("keys", "create", "ci-bot", "--role", "Viewer", "--expires-in-days", "7")
    match = KEY_RE.search(created.stdout)
    assert match is not None and "shown only this once" in created.stdout
    viewer_key = match.group(0)
    listed = cli.json("keys", "list")
    bot = next(k for k in listed if k["name"] == "ci-bot")
    assert bot["prefix"] == viewer_key[:11] and bot["expiresAt"] and "key" not in bot
    assert viewer_key not in cli.ok("keys", "list").stdout
    as_viewer = {"PROMPTOPS_API_KEY": viewer_key}
    assert "support/reply" in cli.ok("prompts", "list", env=as_viewer).stdout
    denied = cli.fails("prompts", "create", "x/y", "--template", "t", env=as_viewer)
    assert denied.stderr == (
        "Error: Permission denied: Role Viewer lacks permission prompt:write [permission_denied]\n"
    )
    assert "Revoked API key ci-bot" in cli.ok("keys", "revoke", bot["id"]).stdout
    revoked = cli.fails("prompts", "list", env=as_viewer)
    assert (
        revoked.stderr == "Error: Authentication required: This API key has been revoked [api_key_revoked]\n"
    )
    assert next(k for k in cli.json("keys", "list") if k["id"] == bot["id"])["revokedAt"]

    # Environment variables alone are enough (no config file).
    bare = Cli(tmp_path / "none" / "config.json")
    env_only = {"PROMPTOPS_URL": server.url, "PROMPTOPS_API_KEY": ADMIN_KEY}
    assert bare.json("whoami", env=env_only)["name"] == "bootstrap-admin"

    # Members: with a password, and with the password prompted for because the user is new.
    added = cli.ok(
        "members", "add", "bob@example.com", "--role", "PromptEngineer", "--password", "bob-password-1"
    )
    assert "Added bob@example.com" in added.stdout and "PromptEngineer" in added.stdout
    carol = cli.run(
        "members", "add", "carol@example.com", "--role", "Viewer", input="carol-pass-1\ncarol-pass-1\n"
    )
    assert carol.exit_code == 0, carol.stderr
    assert "no account yet" in carol.stdout and "carol-pass-1" not in carol.stdout
    members = {m["email"]: m for m in cli.json("members", "list")}
    assert set(members) == {ADMIN_EMAIL, "bob@example.com", "carol@example.com"}
    assert "carol@example.com" in cli.ok("members", "list").stdout
    duplicate = cli.fails("members", "add", "bob@example.com", "--role", "Viewer")
    assert "[member_exists]" in duplicate.stderr
    promoted = cli.ok("members", "set-role", members["carol@example.com"]["userId"], "QAAnalyst")
    assert "carol@example.com is now QAAnalyst" in promoted.stdout
    bad_role = cli.fails("members", "set-role", members["carol@example.com"]["userId"], "Boss")
    assert (
        bad_role.stderr.startswith("Error: Request validation failed: role: ")
        and "PromptEngineer" in bad_role.stderr
    )
    cli.ok("members", "remove", members["carol@example.com"]["userId"])
    assert "carol@example.com" not in {m["email"] for m in cli.json("members", "list")}

    # A user session: login with email and password, logout ends the session on the server too.
    bob = Cli(tmp_path / "bob" / "config.json", server.url)
    session = bob.ok(
        "login", "--url", server.url, "--email", "bob@example.com", "--password", "bob-password-1"
    )
    assert "as bob@example.com (user, role PromptEngineer" in session.stdout
    token = json.loads(bob.config_path.read_text())["token"]
    assert token.startswith("pos_") and token not in session.stdout
    assert bob.json("whoami")["kind"] == "user"
    wrong = bob.fails("login", "--url", server.url, "--email", "bob@example.com", "--password", "nope")
    assert wrong.stderr == "Error: Authentication required: Wrong email or password [invalid_credentials]\n"
    assert json.loads(bob.config_path.read_text())["token"] == token  # a failed login keeps the old one
    assert "Logged out." in bob.ok("logout").stdout
    assert (
        httpx.get(f"{server.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    assert "Not logged in" in bob.fails("whoami").stderr
    assert json.loads(bob.config_path.read_text()) == {"url": server.url}

    # Projects: a key sees only its own; a user session sees every project it is a member of.
    assert [p["name"] for p in cli.json("projects", "list")] == ["default"]
    admin = Cli(tmp_path / "admin" / "config.json", server.url)
    admin.ok("login", "--email", ADMIN_EMAIL, input=f"{ADMIN_PASSWORD}\n", env={"PROMPTOPS_URL": server.url})
    project = admin.json("projects", "create", "team-b", "--description", "Second team")
    assert "team-b" in admin.ok("projects", "list").stdout
    assert {p["name"] for p in admin.json("projects", "list")} == {"default", "team-b"}
    admin.ok("login", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD, "--project", "team-b")
    assert admin.json("whoami")["projectId"] == project["id"]
    assert admin.json("prompts", "list")["items"] == []
    assert json.loads(admin.config_path.read_text())["project"] == "team-b"
    taken = admin.fails("projects", "create", "team-b")
    assert "[project_exists]" in taken.stderr


def test_audit_trail_and_tamper_detection(cli: Cli, server: LiveServer, tmp_path: Path) -> None:
    file = tmp_path / "triage.prompt.md"
    file.write_text(TRIAGE_V1)
    cli.ok("prompts", "push", str(file))
    file.write_text(TRIAGE_V2)
    cli.ok("prompts", "push", str(file))
    cli.ok("prompts", "label", "support/triage", "production", "1")
    cli.ok("prompts", "label", "support/triage", "production", "2")
    cli.ok("prompts", "rollback", "support/triage", "--reason", "regression")

    events = cli.json("audit", "list", "--prompt", "support/triage")["events"]
    assert [e["eventType"] for e in events] == [
        "RollbackTriggered",
        "PromptDeployed",
        "PromptDeployed",
        "PromptVersionCreated",
        "PromptVersionCreated",
        "PromptCreated",
    ]
    assert {e["user"] for e in events} == {"apikey:bootstrap-admin"}
    table = cli.ok("audit", "list", "--prompt", "support/triage").stdout
    assert "RollbackTriggered" in table and "apikey:bootstrap-admin" in table and "reason=regression" in table
    only = cli.json("audit", "list", "--type", "RollbackTriggered")["events"]
    assert len(only) == 1 and only[0]["data"]["reason"] == "regression"
    assert len(cli.json("audit", "list", "--limit", "3")["events"]) == 3
    assert cli.json("audit", "list", "--user", "nobody")["events"] == []
    assert cli.json("audit", "list", "--since", "2999-01-01T00:00:00Z")["events"] == []

    intact = cli.ok("audit", "verify")
    assert intact.stdout.startswith("OK: audit chain of project ") and "events verified" in intact.stdout
    offline = cli.ok("audit", "verify", "--database-url", server.db_url)
    assert "OK: audit chain of project" in offline.stdout and "(default)" in offline.stdout
    online = cli.json("audit", "verify")
    assert online["ok"] and online["eventsChecked"] >= 10

    project_id = cli.json("whoami")["projectId"]
    tamper_audit_log(server.db_url, project_id, edit_seq=3, delete_seq=5)

    broken = cli.fails("audit", "verify")
    assert "FAILED" in broken.stdout and "edited" in broken.stdout and "missing" in broken.stdout
    assert "Audit chain verification failed: 2 problem(s)" in broken.stderr
    report = json.loads(cli.fails("audit", "verify", "--json").stdout)
    problems = [(p["seq"], p["kind"]) for p in report["problems"]]
    assert not report["ok"] and problems == [(3, "edited"), (5, "missing")]

    offline_broken = cli.fails("audit", "verify", "--database-url", server.db_url, "--project", "default")
    assert "edited" in offline_broken.stdout and "missing" in offline_broken.stdout
    offline_json = json.loads(cli.fails("audit", "verify", "--database-url", server.db_url, "--json").stdout)
    assert not offline_json["ok"]
    [only_project] = offline_json["projects"]
    assert [(p["seq"], p["kind"]) for p in only_project["problems"]] == [(3, "edited"), (5, "missing")]
    assert only_project["projectId"] == project_id
    unknown = cli.fails("audit", "verify", "--database-url", server.db_url, "--project", "nope")
    assert "Project not found" in unknown.stderr


def test_push_updates_description_and_tags_and_keeps_whitespace(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "ws"
    folder.mkdir()
    path = folder / "greet.prompt.md"
    path.write_text("---\nname: ws/greet\ndescription: first\ntags: [a]\n---\n\n  Hello {{ who }}\n\n")
    cli.ok("prompts", "push", str(path))
    shown = cli.json("prompts", "show", "ws/greet")
    assert shown["version"]["template"] == "\n  Hello {{ who }}\n\n"
    pulled = tmp_path / "pulled"
    cli.ok("prompts", "pull", "ws/greet", "--dir", str(pulled))
    out = cli.json("prompts", "push", str(pulled))
    assert [row["action"] for row in out] == ["unchanged"]
    path.write_text(
        path.read_text().replace("description: first", "description: second").replace("[a]", "[a, b]")
    )
    out = cli.json("prompts", "push", str(path))
    assert out[0]["action"] == "updated description+tags" and out[0]["version"] == 1
    shown = cli.json("prompts", "show", "ws/greet")
    assert shown["prompt"]["description"] == "second" and shown["prompt"]["tags"] == ["a", "b"]
