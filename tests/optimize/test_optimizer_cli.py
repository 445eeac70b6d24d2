"""``promptops optimize`` against a real server and the real local model (Gemma 3 270M): the issue's acceptance.

Starting from the zero-shot example prompt, on the example sentiment dataset, the optimizer must find a prompt
at least 30 points more accurate on the held-out split within 300 model calls, print the trajectory, and save
the winner as a new, unlabelled version. (The run is on SQLite only: the real model makes it the slowest test
of the feature; the storage paths are covered on both databases by the API tests with a fake model.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app import new_database, release_database
from tests.support.cli_support import Cli, LiveServer, running_server

pytest.importorskip("llama_cpp")


@pytest.fixture
def server(tmp_path: Path, sqlite_template: Path) -> Iterator[LiveServer]:
    url = new_database("sqlite", tmp_path, sqlite_template)
    try:
        with running_server(url, tmp_path) as live:
            yield live
    finally:
        release_database(url)


def test_optimize_beats_zero_shot_by_30_points_within_300_calls(server: LiveServer, tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home" / "promptops.json", server.url)
    cli.login_admin()
    result = cli.ok(
        "optimize",
        "--prompt",
        "sentiment/zero-shot@production",
        "--dataset",
        "sentiment/reviews",
        "--budget",
        "300",
    )
    text = result.stdout
    assert "Trajectory" in text and "baseline" in text and "few-shot" in text
    assert "Winner: sentiment/zero-shot@2" in text and "held-out cases" in text, text
    # the report fits an 80-column terminal (ids only with --wide)
    table = [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and max(len(line) for line in table) <= 80, text
    flat = " ".join(text.split())
    assert "The winner gains +" in flat and "95% CI [" in flat and "always answering" in flat, text
    optimization_id = text.split()[1]

    shown = cli.json("optimize", "show", optimization_id)
    report = shown["report"]
    assert shown["status"] == "completed" and shown["callsUsed"] <= 300
    assert report["baseline"]["strategy"] == "baseline"
    gain = report["winner"]["valScore"] - report["baseline"]["valScore"]
    assert gain >= 0.30, report
    assert report["improvementPoints"] == pytest.approx(100 * gain, abs=0.01)
    assert sum(row["calls"] for row in shown["trajectory"]) == shown["callsUsed"]
    held = report["heldOut"]
    assert held["significant"] is True and held["ci95"][0] > 0 and held["beatsMajority"] is True
    assert "Trajectory" in cli.ok("optimize", "show", optimization_id).stdout

    # the winner is saved as version 2 and the production label did not move
    resolved = cli.json("prompts", "show", "sentiment/zero-shot@production")
    assert resolved["version"]["version"] == 1
    winner = cli.json("prompts", "show", "sentiment/zero-shot@2")
    assert winner["version"]["source"] == "generated"
    assert winner["version"]["metadata"]["optimizationId"] == optimization_id
