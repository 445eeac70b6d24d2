"""``promptops feedback`` and ``promptops annotate`` against a live server, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app import ADMIN_KEY
from tests.support.cli_support import LiveServer, admin_cli, running_server_with_fake
from tests.support.fake_llm_server import FakeLLMServer

EXAMPLE = "sentiment/few-shot"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def server(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> Iterator[LiveServer]:
    with running_server_with_fake(db_url, tmp_path, fake) as live:
        yield live


def make_run(server: LiveServer, review: str) -> dict[str, Any]:
    r = httpx.post(
        f"{server.url}/api/v1/playground/run",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        json={
            "prompt": EXAMPLE,
            "variables": {"review": review},
            "models": [{"provider": "fake", "model": "gpt-4o-mini"}],
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return {"runId": r.json()["results"][0]["runId"], "versionId": r.json()["versionId"]}


def test_feedback_and_annotation_commands(server: LiveServer, tmp_path: Path) -> None:
    cli = admin_cli(server.url, tmp_path)
    run1, run2, run3 = (make_run(server, f"cli review {i}") for i in range(3))

    given = cli.json(
        "feedback", "give", EXAMPLE, "--score", "4", "--notes", "Solid", "--user", "qa@example.com"
    )
    assert given["score"] == 4.0 and given["notes"] == "Solid" and given["user"] == "qa@example.com"
    assert given["versionId"] == run1["versionId"]
    shown = cli.ok(
        "feedback",
        "give",
        "--run",
        run1["runId"],
        "--thumbs",
        "down",
        "--tag",
        "wrong",
        "--rubric",
        "correctness=2",
        "--notes",
        "Mislabelled",
    )
    assert "Recorded feedback fbk_" in shown.stdout and "Mislabelled" in shown.stdout

    listed = cli.json("feedback", "list", "--run", run1["runId"])
    assert [(f["thumbs"], f["rubric"], f["tags"]) for f in listed["items"]] == [
        (-1, {"correctness": 2.0}, ["wrong"])
    ]
    table = cli.ok("feedback", "list").stdout
    assert "qa@example.com" in table and "Mislabelled" in table

    summary = cli.json("feedback", "summary", EXAMPLE)
    assert summary["overall"]["count"] == 2 and summary["overall"]["meanScore"] == 4.0
    assert summary["overall"]["thumbsDown"] == 1
    text = cli.ok("feedback", "summary", EXAMPLE).stdout
    assert "v1" in text and "correctness 2.00" in text and "wrong (1)" in text

    # bad input is a clear error, not a traceback
    failed = cli.fails("feedback", "give", EXAMPLE, "--notes", "no rating", code=2)
    assert "--score, --thumbs or --rubric" in failed.stderr
    failed = cli.fails("feedback", "give", "no/such", "--score", "3")
    assert "Error:" in failed.stderr and "not found" in failed.stderr
    cli.fails("feedback", "give", EXAMPLE, "--score", "6", code=2)

    queued = cli.json("annotate", "queue", "--run", run2["runId"], "--run", run3["runId"])
    assert [i["runId"] for i in queued["created"]] == [run2["runId"], run3["runId"]]
    assert "Already waiting: " + run2["runId"] in cli.ok("annotate", "queue", "--run", run2["runId"]).stdout
    assert run3["runId"] in cli.ok("annotate", "list", "--status", "pending").stdout

    claimed = cli.ok("annotate", "next")
    assert "You said:" in claimed.stdout and "annotate rate ann_" in claimed.stdout
    first = next(i for i in queued["created"] if i["runId"] == run2["runId"])
    assert first["id"] in claimed.stdout
    rated = cli.ok("annotate", "rate", first["id"], "--score", "5", "--notes", "perfect")
    assert "Rated " + first["id"] in rated.stdout
    second = cli.json("annotate", "next")
    assert second["runId"] == run3["runId"]
    assert cli.json("annotate", "release", second["id"])["status"] == "pending"
    assert cli.json("annotate", "show", second["id"])["subject"]["kind"] == "run"
    assert "Skipped" in cli.ok("annotate", "skip", second["id"], "--reason", "duplicate").stdout
    assert "Nothing is waiting" in cli.ok("annotate", "next").stdout
    failed = cli.fails("annotate", "rate", first["id"], "--score", "3")
    assert "already done" in failed.stderr

    by_source = cli.json("feedback", "list", "--source", "annotation")
    assert [(f["runId"], f["score"], f["notes"]) for f in by_source["items"]] == [
        (run2["runId"], 5.0, "perfect")
    ]
