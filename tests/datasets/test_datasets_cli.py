"""``promptops datasets ...`` against a real server, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli_support import Cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "datasets" / "sentiment-reviews.jsonl"


def test_import_list_show_export_versions_archive(cli: Cli, tmp_path: Path) -> None:
    listed = cli.json("datasets", "list")["items"]
    assert [d["name"] for d in listed] == ["sentiment/reviews"] and listed[0]["latest"]["caseCount"] >= 40

    result = cli.ok("datasets", "import", "mine/reviews", str(EXAMPLE), "-m", "seed")
    assert "Imported mine/reviews version 1: 50 cases" in result.stdout
    # the same file again writes nothing
    assert "is unchanged: version 1" in cli.ok("datasets", "import", "mine/reviews", str(EXAMPLE)).stdout

    out = tmp_path / "out.csv"
    result = cli.ok("datasets", "export", "mine/reviews", "-o", str(out))
    assert f"as csv to {out}" in result.stdout
    assert out.read_text().splitlines()[0].strip() == "id,review,expected,tags"
    edited = out.read_text().replace("r01,", "r01-edited,", 1)
    out.write_text(edited)
    saved = cli.json("datasets", "import", "mine/reviews", str(out), "-m", "rename r01")
    assert saved["created"] is True and saved["version"]["version"] == 2

    shown = cli.ok("datasets", "show", "mine/reviews", "--limit", "3").stdout
    assert (
        "2 of 2" in shown and "r01-edited" in shown and "rename r01" in shown and "Showing 3 cases" in shown
    )
    data = cli.json("datasets", "show", "mine/reviews", "--version", "1", "--tag", "movie", "--limit", "1000")
    assert data["version"]["version"] == 1 and all("movie" in c["tags"] for c in data["cases"])
    assert {c["key"] for c in data["cases"]} and "r01" not in {c["key"] for c in data["cases"]}

    versions = cli.json("datasets", "versions", "mine/reviews")
    assert [v["version"] for v in versions] == [2, 1] and versions[1]["commitMessage"] == "seed"
    assert "rename r01" in cli.ok("datasets", "versions", "mine/reviews").stdout

    # stdout export (JSONL by default) of the first version equals the example file's cases
    exported = cli.ok("datasets", "export", "mine/reviews", "--version", "1").stdout
    original = [json.loads(line) for line in EXAMPLE.read_text().splitlines()]
    assert [json.loads(line) for line in exported.splitlines()] == original

    created = cli.json("datasets", "create", "empty/one", "--description", "nothing yet")
    assert created["version"]["caseCount"] == 0
    failure = cli.fails("datasets", "create", "empty/one", "--file", str(EXAMPLE))
    assert "already exists" in failure.stderr and "[dataset_exists]" in failure.stderr

    assert "Archived empty/one." in cli.ok("datasets", "archive", "empty/one").stdout
    assert "empty/one" not in [d["name"] for d in cli.json("datasets", "list")["items"]]
    assert [d["name"] for d in cli.json("datasets", "list", "--archived")["items"]] == ["empty/one"]
    assert "Unarchived empty/one." in cli.ok("datasets", "unarchive", "empty/one").stdout


def test_errors_name_the_line(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": {"q": "1"}}\n{"input": {"q": "2"}\n')
    failure = cli.fails("datasets", "import", "bad/set", str(bad))
    assert "line 2: invalid JSON" in failure.stderr and "[invalid_dataset]" in failure.stderr

    table = tmp_path / "bad.csv"
    table.write_text("a,b,c\n1,2,3\n4,5\n")
    failure = cli.fails("datasets", "import", "bad/set", str(table))
    assert "row 2 (line 3): column count 2, header has 3" in failure.stderr

    unknown = tmp_path / "cases.txt"
    unknown.write_text("a\n1\n")
    failure = cli.fails("datasets", "import", "bad/set", str(unknown))
    assert "[unknown_format]" in failure.stderr
    assert cli.ok("datasets", "import", "bad/set", str(unknown), "--format", "csv").stdout.startswith(
        "Imported"
    )

    failure = cli.fails("datasets", "import", "bad/set", str(tmp_path / "missing.csv"))
    assert "Cannot read dataset file" in failure.stderr
    failure = cli.fails("datasets", "show", "no/such")
    assert "[dataset_not_found]" in failure.stderr


def test_from_runs(cli: Cli) -> None:
    # real calls of the example prompt on the built-in local model (Gemma 3 270M, 3 tokens each)
    for review in ("I love this phone.", "It broke after a day."):
        cli.ok("run", "sentiment/few-shot", "--var", f"review={review}")
    runs = cli.json("runs", "list", "--prompt", "sentiment/few-shot")["items"]
    assert len(runs) == 2
    result = cli.ok("datasets", "from-runs", "traffic/sentiment", "--run", runs[-1]["id"], "--no-expected")
    assert "Saved traffic/sentiment version 1: 1 cases" in result.stdout and "1 new cases" in result.stdout
    data = cli.json("datasets", "from-runs", "traffic/sentiment", "--prompt", "sentiment/few-shot")
    assert (data["added"], data["existing"], data["recovered"]) == (1, 1, 2)
    assert data["version"]["version"] == 2 and data["version"]["source"] == "runs"
    cases = cli.json("datasets", "show", "traffic/sentiment")["cases"]
    assert [c["input"] for c in cases] == [
        {"review": "I love this phone."},
        {"review": "It broke after a day."},
    ]
    assert cases[0]["expected"] is None and cases[1]["expected"] == runs[0]["output"]
    assert [c["sourceRunId"] for c in cases] == [runs[1]["id"], runs[0]["id"]]
    cli.fails("datasets", "from-runs", "x", "--run", "run_nope", "--prompt", "sentiment/few-shot", code=2)
    failure = cli.fails("datasets", "from-runs", "x", "--run", "run_01nope")
    assert "[run_not_found]" in failure.stderr


def test_import_the_shapes_people_have(cli: Cli, tmp_path: Path) -> None:
    shapes = tmp_path / "shapes.jsonl"
    shapes.write_text(
        '{"input": "Arrived broken", "expected": "negative"}\n'
        '{"input": [{"role": "user", "content": "Loved it"}], "ideal": "positive"}\n'
        '{"input": {"review": "Meh"}, "expected_output": "neutral", "metadata": {"trace": "t1"}}\n'
        '{"vars": {"review": "Fine"}, "assert": [{"type": "equals", "value": "positive"}]}\n'
    )
    assert (
        "Imported mine/shapes version 1: 4 cases"
        in cli.ok("datasets", "import", "mine/shapes", str(shapes)).stdout
    )
    cases = cli.json("datasets", "show", "mine/shapes")["cases"]
    assert [(c["input"], c["expected"]) for c in cases] == [
        ("Arrived broken", "negative"),
        ({"messages": [{"role": "user", "content": "Loved it"}]}, "positive"),
        ({"review": "Meh"}, "neutral"),
        ({"review": "Fine"}, "positive"),
    ]
    assert "Arrived broken" in cli.ok("datasets", "show", "mine/shapes").stdout
    # export -> import is a no-op
    out = tmp_path / "out.jsonl"
    cli.ok("datasets", "export", "mine/shapes", "-o", str(out))
    assert (
        out.read_text().splitlines()[0]
        == f'{{"id":"{cases[0]["key"]}","input":"Arrived broken","expected":"negative"}}'
    )
    assert "is unchanged" in cli.ok("datasets", "import", "mine/shapes", str(out)).stdout

    failure = cli.fails(
        "datasets",
        "import",
        "bad/shapes",
        str(_write(tmp_path / "bad.jsonl", '{"input": "a"}\n{"input": 3}\n')),
    )
    assert (
        "line 2: field 'input': must be a string, an object of variables or a list of chat messages, got a number"
        in failure.stderr
    )


def test_import_csv_with_input_and_expected_columns(cli: Cli, tmp_path: Path) -> None:
    table = _write(
        tmp_path / "faq.csv", "id,question,answer,source\nq1,Why?,Because,faq\nq2,How?,Like this,docs\n"
    )
    saved = cli.json(
        "datasets", "import", "mine/faq", str(table), "--input-col", "question", "--expected-col", "answer"
    )
    assert saved["version"]["caseCount"] == 2
    cases = cli.json("datasets", "show", "mine/faq")["cases"]
    assert [(c["input"], c["expected"], c["metadata"]) for c in cases] == [
        ("Why?", "Because", {"source": "faq"}),
        ("How?", "Like this", {"source": "docs"}),
    ]
    out = tmp_path / "faq-out.csv"
    cli.ok("datasets", "export", "mine/faq", "-o", str(out))
    assert out.read_text().splitlines()[0].strip() == "id,__input,expected,metadata"
    assert "is unchanged" in cli.ok("datasets", "import", "mine/faq", str(out)).stdout

    several = cli.json(
        "datasets", "import", "mine/faq-vars", str(table), "--input-col", "question", "--input-col", "source"
    )
    assert several["created"] is True
    assert cli.json("datasets", "show", "mine/faq-vars")["cases"][0]["input"] == {
        "question": "Why?",
        "source": "faq",
    }

    failure = cli.fails("datasets", "import", "bad/faq", str(table), "--input-col", "text")
    assert "line 1: the header has no column 'text' (an input column)" in failure.stderr
    jsonl = _write(tmp_path / "faq.jsonl", '{"question": "Why?"}\n')
    failure = cli.fails("datasets", "import", "bad/faq", str(jsonl), "--input-col", "question")
    assert "[invalid_column_map]" in failure.stderr and "only be chosen for CSV files" in failure.stderr


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
