"""``promptops eval ...`` against a real server and the real local model (Gemma 3 270M): the issue's acceptance.

With the example sentiment dataset (50 reviews), the few-shot example prompt scores clearly above the zero-shot
one and ``eval compare`` calls the difference significant; ``--fail-under`` gates CI and ``--junit`` writes a
report; a promptfoo config runs as it is.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from tests.support.cli_support import Cli, LiveServer, running_server

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip("llama_cpp")


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    # The engine is tested on both databases elsewhere; here the subject is the local model (slow), so SQLite.
    with running_server(sqlite_url, tmp_path) as live:
        yield live


def test_few_shot_beats_zero_shot_significantly_on_the_local_model(cli: Cli, tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    result = cli.fails(
        "eval",
        "run",
        "--prompt",
        "sentiment/zero-shot@production",
        "--prompt",
        "sentiment/few-shot@production",
        "--dataset",
        "sentiment/reviews",
        "--fail-under",
        "0.9",
        "--junit",
        str(junit),
    )
    # the zero-shot prompt is below the bar, so the command fails the build, and says why
    assert "sentiment/zero-shot@1 on local/gemma-3-270m: pass rate" in result.stderr
    assert "completed" in result.stdout and "sentiment/few-shot@1" in result.stdout
    run_id = result.stdout.split()[1]
    run = cli.json("eval", "show", run_id)
    groups = {g["promptName"]: g for g in run["summary"]}
    few, zero = groups["sentiment/few-shot"], groups["sentiment/zero-shot"]
    assert few["completed"] == zero["completed"] == 50
    assert few["passRate"] >= 0.9 and few["passRate"] - zero["passRate"] >= 0.3, (few, zero)

    suites = ET.parse(junit).getroot().findall("testsuite")
    assert [s.get("tests") for s in suites] == ["50", "50"]
    assert int(suites[0].get("failures") or 0) > int(suites[1].get("failures") or 0)

    compared = cli.json("eval", "compare", run_id)
    assert compared["significant"] is True and compared["winner"] == "B"
    assert compared["mcnemar"]["pValue"] < 0.001
    text = cli.ok("eval", "compare", run_id, "--require-better").stdout
    assert "sentiment/few-shot@1 beats sentiment/zero-shot@1 by" in text and "p < 0.001" in text

    latest = cli.json("eval", "latest", "sentiment/few-shot@production")
    assert latest["evalRunId"] == run_id and latest["groups"][0]["passRate"] == few["passRate"]
    # the same run as a gate that passes: only the few-shot prompt, above the bar
    cli.ok(
        "eval", "run", "-p", "sentiment/few-shot@production", "-d", "sentiment/reviews", "--fail-under", "0.9"
    )


def test_a_promptfoo_config_runs_as_it_is(cli: Cli, tmp_path: Path) -> None:
    work = tmp_path / "pf"
    shutil.copytree(REPO / "examples" / "promptfoo", work)
    run = cli.json("eval", "run", "-c", str(work / "promptfooconfig.yaml"), "--prefix", "migrated/sentiment")
    assert run["status"] == "completed"
    assert {v["promptName"] for v in run["versions"]} == {
        "migrated/sentiment/zero-shot",
        "migrated/sentiment/few-shot",
    }
    assert run["dataset"]["name"] == "migrated/sentiment/tests"
    assert all(g["completed"] == 8 for g in run["summary"])
    # unsupported parts are reported, not silently dropped
    (work / "promptfooconfig.yaml").write_text(
        (work / "promptfooconfig.yaml").read_text()
        + "defaultTest:\n  assert:\n    - type: javascript\n      value: output.length < 10\n"
    )
    result = cli.ok("eval", "run", "-c", str(work / "promptfooconfig.yaml"), "--prefix", "migrated/sentiment")
    assert "unsupported, skipped" in result.stderr and "javascript" in result.stderr
