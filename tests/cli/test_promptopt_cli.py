"""``promptops generate`` and ``promptops refine`` against a live server (SQLite and PostgreSQL), with a fake
OpenAI-compatible model whose answers are never usable prompts (so structural strategies fill the slots)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli_support import Cli, LiveServer, running_server_with_fake
from tests.support.fake_llm_server import FakeLLMServer


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def server(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> Iterator[LiveServer]:
    with running_server_with_fake(db_url, tmp_path, fake) as live:
        yield live


def test_generate_and_refine_commands(server: LiveServer, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home" / "promptops.json", server.url)
    cli.login_admin()

    out = cli.json(
        "generate",
        "--task",
        "Classify the sentiment of a review",
        "--from",
        "sentiment/zero-shot@production",
        "--count",
        "3",
        "--model",
        "fake/gpt-fake",
        "--dataset",
        "sentiment/reviews",
    )
    candidates = out["candidates"]
    assert len(candidates) == 3 and len({c["prompt"] for c in candidates}) == 3
    assert all(c["versionId"].startswith("ver_") and c["evalScore"] is not None for c in candidates)
    assert {d["strategy"] for d in out["discarded"]} == {"llm:clarify", "llm:role"}

    shown = cli.ok(
        "generate", "--task", "Summarize a support ticket", "--count", "2", "--strategy", "structural"
    ).stdout
    assert "2 candidate(s) saved as drafts of generated/summarize-a-support-ticket" in shown
    assert "structural:" in shown and "best: generated/summarize-a-support-ticket@" in shown

    refined = cli.json(
        "refine", "sentiment/zero-shot", "--note", "answer with one word", "--model", "fake/gpt-fake"
    )
    assert refined["strategy"] == "tighten-format" and refined["version"] == 5
    shown = cli.ok(
        "refine",
        "sentiment/zero-shot@5",
        "--note",
        "Reply in JSON",
        "--strategy",
        "tighten-format",
    ).stdout
    assert "Saved v6" in shown and "with tighten-format" in shown
    assert "Rationale:" in shown and "Winner: tighten-format" in shown
    assert "+Respond with a single valid JSON object and nothing else." in shown

    failed = cli.fails("refine", "sentiment/zero-shot")
    assert "no_feedback" in failed.stderr or "Nothing to refine" in failed.stderr
    failed = cli.fails("generate", "--task", "x", "--count", "21", code=2)
    assert "--count" in failed.stderr
