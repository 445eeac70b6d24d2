"""How the CLI fails: server problems, no server, no credentials, bad usage, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.app import ADMIN_KEY
from tests.support.cli_support import Cli, LiveServer, free_port


@pytest.fixture
def offline(tmp_path: Path) -> Cli:
    """A CLI whose config points at a port where nothing listens."""
    return Cli(tmp_path / "offline.json", f"http://127.0.0.1:{free_port()}")


def test_server_problems_print_title_detail_and_code(server: LiveServer, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "c.json", server.url)
    cli.login_admin()
    missing = cli.fails("prompts", "show", "nope/missing")
    assert missing.stdout == ""
    assert missing.stderr == "Error: Not found: Prompt 'nope/missing' not found [prompt_not_found]\n"
    missing_json = cli.fails("prompts", "show", "nope/missing", "--json")
    assert missing_json.stdout == "" and "[prompt_not_found]" in missing_json.stderr
    invalid = cli.fails("prompts", "create", "Bad Name", "--template", "x")
    assert invalid.stderr.startswith("Error: Request validation failed: Invalid prompt name 'Bad Name'")
    assert invalid.stderr.endswith("[invalid_prompt_name]\n")
    exists = cli.fails("prompts", "create", "support/reply", "--template", "x")
    assert exists.stderr == "Error: Conflict: Prompt 'support/reply' already exists [prompt_exists]\n"
    no_version = cli.fails("prompts", "label", "support/reply", "production", "9")
    assert "[version_not_found]" in no_version.stderr


def test_json_output_parses_for_every_reader(server: LiveServer, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "c.json", server.url)
    assert json.loads(cli.ok("login", "--url", server.url, "--key", ADMIN_KEY, "--json").stdout)["me"]["role"]
    for args in (
        ("whoami",),
        ("prompts", "list"),
        ("prompts", "show", "support/reply"),
        ("prompts", "versions", "support/reply"),
        ("prompts", "history", "support/reply"),
        ("prompts", "diff", "sentiment/few-shot", "1", "sentiment/zero-shot@1"),
        ("keys", "list"),
        ("members", "list"),
        ("projects", "list"),
        ("audit", "list"),
        ("audit", "verify"),
    ):
        assert cli.json(*args) is not None, args


def test_bad_prompt_files_are_reported_per_file(server: LiveServer, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "c.json", server.url)
    cli.login_admin()
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "a.prompt.md").write_text("---\nname: good/one\n---\nHello {{ x }}\n")
    (folder / "b.prompt.md").write_text("---\nname: bad/one\ncolour: red\n---\nHi\n")
    (folder / "c.prompt.md").write_text("---\nname: [unclosed\n---\nHi\n")
    result = cli.fails("prompts", "push", str(folder))
    assert "good/one" in result.stdout and "created" in result.stdout
    assert (
        "Warning: good/one@1: PL003 undeclared-variable: Variable 'x' is used but not declared"
        in result.stderr
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 2
    assert (
        lines[0].startswith("Error: Request validation failed: ")
        and "b.prompt.md: unknown front matter keys: colour" in lines[0]
    )
    assert "c.prompt.md" in lines[1] and "[invalid_prompt_file]" in lines[1]
    created = cli.fails("prompts", "create", "x/y", "--file", str(folder / "b.prompt.md"))
    assert "[invalid_prompt_file]" in created.stderr
    nothing = cli.fails("prompts", "push", str(tmp_path / "missing"))
    assert nothing.stderr.startswith("Error: No such file or folder: ")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "No prompt files found" in cli.fails("prompts", "push", str(empty)).stderr


def test_connection_refused_names_the_url(offline: Cli) -> None:
    url = offline.url
    assert url is not None
    login = offline.fails("login", "--url", url, "--key", ADMIN_KEY)
    assert login.stderr.startswith(
        f"Error: Cannot connect to the PromptOps server at {url}: connection refused"
    )
    assert "[connection_failed]" in login.stderr
    assert not offline.config_path.exists()
    listing = offline.fails("prompts", "list", env={"PROMPTOPS_URL": url, "PROMPTOPS_API_KEY": ADMIN_KEY})
    assert f"Cannot connect to the PromptOps server at {url}" in listing.stderr


def test_not_logged_in_and_usage_errors(offline: Cli) -> None:
    not_logged_in = offline.fails("prompts", "list")
    assert not_logged_in.stderr.startswith("Error: Not logged in: run 'promptops login")
    assert offline.ok("logout").stdout == "Not logged in.\n"
    # Usage errors are Typer's: exit status 2, checked before any request is made.
    offline.fails("prompts", "create", "x/y", code=2)
    offline.fails("prompts", "create", "x/y", "--template", "a", "--file", "f.prompt.md", code=2)
    offline.fails("prompts", "label", "x/y", "production", "three", code=2)
    offline.fails("prompts", "pull", "--dir", "out", code=2)
    offline.fails("prompts", "pull", "a/b", "--label", "x", "--version", "2", code=2)
    offline.fails("prompts", "render", "a/b", "--var", "novalue", code=2)
    offline.fails("audit", "verify", "--project", "default", code=2)
    offline.fails("login", "--key", "k", "--email", "e@x.org", code=2)
    offline.fails("no-such-command", code=2)
    assert "Usage" in offline.run("prompts").stdout + offline.run("prompts").stderr


def test_offline_verify_rejects_missing_databases(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "c.json")
    missing = tmp_path / "nope.db"
    result = cli.fails("audit", "verify", "--database-url", f"sqlite:///{missing}")
    assert (
        result.stderr.startswith("Error: No such SQLite database: ")
        and "[database_not_found]" in result.stderr
    )
    assert not missing.exists()
    unreachable = cli.fails(
        "audit", "verify", "--database-url", f"postgresql://u:secret@127.0.0.1:{free_port()}/x"
    )
    assert "Cannot" in unreachable.stderr and "secret" not in unreachable.stderr
