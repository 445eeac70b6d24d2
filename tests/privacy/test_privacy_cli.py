"""``promptops privacy ...`` against a live server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support.app import ADMIN_KEY
from tests.support.cli_support import Cli, LiveServer

END_USER = "cli.customer@example.net"
NOTE = "the CLI customer said Wombat-42"


def test_privacy_cli_subject_export_erase_and_retention(cli: Cli, server: LiveServer, tmp_path: Path) -> None:
    r = httpx.post(
        f"{server.url}/api/prompt/feedback",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        json={"promptId": "support/reply", "user": END_USER, "score": 2, "notes": NOTE},
    )
    assert r.status_code == 201, r.text
    found = cli.json("privacy", "subject", "--end-user", END_USER, "--json")
    subject = found["subjectId"]
    assert subject.startswith("eus_") and found["known"] is True
    assert subject in cli.ok("privacy", "subject", "--end-user", END_USER).stdout

    out = tmp_path / "dsar.json"
    assert "Wrote" in cli.ok("privacy", "export", subject, "--out", str(out)).stdout
    dsar = json.loads(out.read_text())
    assert [(f["user"], f["notes"]) for f in dsar["feedback"]] == [(END_USER, NOTE)]

    result = cli.run("privacy", "erase", subject, input="n\n")
    assert result.exit_code != 0  # declined: nothing erased
    assert cli.json("privacy", "subject", "--end-user", END_USER, "--json")["erased"] is False
    assert f"Erased {subject}" in cli.ok("privacy", "erase", subject, "--yes").stdout
    assert cli.json("privacy", "subject", "--end-user", END_USER, "--json")["erased"] is True
    exported = cli.ok("privacy", "export", subject).stdout
    assert NOTE not in exported and END_USER not in exported and "[erased]" in exported

    assert "runs: keep, feedback: keep" in cli.ok("privacy", "retention", "show").stdout
    assert "runs 30 days, feedback keep" in cli.ok("privacy", "retention", "set", "--runs-days", "30").stdout
    applied = cli.json("privacy", "retention", "apply", "--json")
    assert applied["runsDeleted"] == 0 and applied["feedbackDeleted"] == 0
    cli.fails("privacy", "retention", "set", "--runs-days", "0", code=2)
    cli.fails("privacy", "export", "not-an-id")
    cli.fails("privacy", "subject", code=2)
