"""``promptops lint``: local prompt files offline, registry prompts through a real server, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.app import ADMIN_KEY
from tests.support.cli_support import Cli, LiveServer, admin_cli

CLEAN = """---
name: support/clean
variables:
  - {name: ticket, type: string}
modelConfig: {provider: local, model: gemma-3-270m}
metadata: {labels: [billing, technical]}
---
Route the ticket. Answer with one word: billing or technical.
<ticket>{{ ticket }}</ticket>
"""
WARNS = """---
name: support/warns
modelConfig: {provider: local, model: gemma-3-270m}
---
Write to jane@acme-corp.io.
Hello {{ who }}.
{% include "shared/tone@production" %}
"""
LEAKY = """---
name: support/leaky
kind: chat
messages:
  - {role: system, content: "Use key AKIAIOSFODNN7EXAMPLE. Be concise. Explain in detail."}
  - {role: user, content: "{{ q }}"}
variables:
  - {name: q}
---
"""


@pytest.fixture
def offline(tmp_path: Path) -> Cli:
    """A CLI that is not logged in anywhere: file linting must not need a server."""
    return Cli(tmp_path / "home" / "promptops.json")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.prompt.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_files_are_linted_offline_with_exit_codes(offline: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    clean = write(folder, "clean", CLEAN)
    warns = write(folder / "more", "warns", WARNS)

    result = offline.ok("lint", str(clean))
    assert "support/clean" in result.stdout and "no findings" in result.stdout

    # Warnings (and the offline include notice) do not fail by default; --fail-on warning does.
    result = offline.ok("lint", str(folder))
    assert "PL003 undeclared-variable" in result.stdout and "PL009 personal-data" in result.stdout
    assert "PL006 include-unchecked" in result.stdout and "0 error(s), 2 warning(s), 1 info" in result.stdout
    failed = offline.fails("lint", str(warns), "--fail-on", "warning")
    assert "2 finding(s) at or above 'warning'" in failed.stderr
    offline.fails("lint", str(warns), "--fail-on", "info")
    offline.ok("lint", str(warns), "--fail-on", "warning", "--disable", "PL003", "--disable", "personal-data")

    reports = json.loads(offline.ok("lint", str(folder), "--json").stdout)
    assert [r["name"] for r in reports] == ["support/clean", "support/warns"]
    assert reports[1]["summary"] == {"error": 0, "warning": 2, "info": 1}
    assert reports[1]["source"] == str(warns) and reports[1]["version"] is None


def test_errors_fail_and_bad_files_are_reported(offline: Cli, tmp_path: Path) -> None:
    leaky = write(tmp_path, "leaky", LEAKY)
    result = offline.fails("lint", str(leaky))
    assert "PL008 secret" in result.stdout and "PL013 contradictory-instructions" in result.stdout
    assert "PL007" not in result.stdout  # the variable is in the user message
    assert "AKIAIOSFODNN7EXAMPLE" not in result.stdout

    broken = write(
        tmp_path, "broken", "---\nname: x/broken\nvariables: [{name: a, type: float}]\n---\n{{ a }}\n"
    )
    report = json.loads(offline.fails("lint", str(broken), "--json").stdout)[0]
    assert report["findings"][0]["rule"] == "PL001" and report["name"] == "x/broken"
    syntax = write(tmp_path, "syntax", "---\nname: x/syntax\n---\nline\n{% if %}\n")
    report = json.loads(offline.fails("lint", str(syntax), "--json").stdout)[0]
    assert (report["findings"][0]["rule"], report["findings"][0]["line"]) == ("PL001", 2)

    # A long file for gemma's 8192-token window: the catalog is known offline too.
    long_text = (
        "---\nname: x/long\nmodelConfig: {provider: local, model: gemma-3-270m}\n---\n" + "word " * 7000
    )
    report = json.loads(offline.fails("lint", str(write(tmp_path, "long", long_text)), "--json").stdout)[0]
    assert [f["rule"] for f in report["findings"]] == ["PL011"]

    assert offline.fails("lint", code=2).exit_code == 2  # nothing to lint
    offline.fails("lint", str(tmp_path / "missing"))
    offline.fails("lint", str(leaky), "--fail-on", "fatal", code=2)
    offline.fails("lint", str(leaky), "--disable", "PL999", code=2)
    # Registry prompts need a login.
    assert "Not logged in" in offline.fails("lint", "--prompt", "x/y").stderr


def test_registry_prompts_are_linted_by_the_server(server: LiveServer, tmp_path: Path) -> None:
    cli = admin_cli(server.url, tmp_path)
    folder = tmp_path / "prompts"
    write(folder, "clean", CLEAN)
    write(folder, "warns", WARNS)
    cli.ok("prompts", "push", str(folder))

    # On the server the include is checked for real: the missing label is an error.
    result = cli.fails("lint", "--prompt", "support/warns")
    assert "support/warns@1" in result.stdout and "PL005 unresolved-include" in result.stdout
    reports = cli.json("lint", "--prompt", "support/clean@1")
    assert reports == [
        {
            "source": "registry",
            "name": "support/clean",
            "version": 1,
            "findings": [],
            "summary": {"error": 0, "warning": 0, "info": 0},
        }
    ]

    # --all covers every prompt (including the bootstrapped examples) once.
    reports = json.loads(cli.run("lint", "--all", "--prompt", "support/clean", "--json").stdout)
    names = [r["name"] for r in reports]
    assert "support/clean" in names and "support/warns" in names and len(names) == len(set(names))
    assert cli.fails("lint", "--prompt", "no/such").stderr.count("not found") == 1

    # The project's lint settings apply on the server: disabling the rule makes the prompt pass.
    r = httpx.patch(
        f"{server.url}/api/v1/projects/current",
        json={"settings": {"lint": {"disabled": ["unresolved-include"]}}},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert r.status_code == 200, r.text
    cli.ok("lint", "--prompt", "support/warns")
    # Files and registry prompts in one run.
    result = cli.ok("lint", "--prompt", "support/clean", str(folder / "clean.prompt.md"))
    assert "support/clean@1" in result.stdout and "2 prompt(s)" in result.stdout
