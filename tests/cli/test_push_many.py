"""``promptops prompts push`` with several files and folders, against a real server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli_support import Cli


def prompt_file(path: Path, name: str, body: str = "Hello {{ who }}\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\nname: {name}\nvariables:\n  - {{name: who}}\n---\n{body}")
    return path


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error: ")]


def test_push_takes_files_and_folders_and_reports_each_failure(cli: Cli, tmp_path: Path) -> None:
    a = prompt_file(tmp_path / "a.prompt.md", "many/a")
    bad = tmp_path / "b.prompt.md"
    bad.write_text("---\nname: [unclosed\n---\nHi\n")
    folder = tmp_path / "dir"
    x = prompt_file(folder / "x.prompt.md", "many/x")
    prompt_file(folder / "nested" / "y.prompt.md", "many/y")
    missing = tmp_path / "missing"

    # The bad file and the missing path fail; everything else is pushed, x once although named twice.
    first = cli.fails("prompts", "push", str(a), str(bad), str(folder), str(missing), str(x), "--json")
    assert [(Path(r["file"]).name, r["name"], r["action"]) for r in json.loads(first.stdout)] == [
        ("a.prompt.md", "many/a", "created"),
        ("b.prompt.md", None, "error"),
        ("y.prompt.md", "many/y", "created"),  # a folder's files in sorted order: nested/y before x
        ("x.prompt.md", "many/x", "created"),
        ("missing", None, "error"),
    ]
    errors = error_lines(first.stderr)
    assert len(errors) == 2
    assert str(bad) in errors[0] and "[invalid_prompt_file]" in errors[0]
    assert errors[1].startswith("Error: No such file or folder: ") and str(missing) in errors[1]
    for name in ("many/a", "many/x", "many/y"):
        assert [v["version"] for v in cli.json("prompts", "versions", name)] == [1]
    summary = cli.fails("prompts", "push", str(missing), str(a)).stdout
    assert "many/a" in summary and "Summary: 1 unchanged, 1 failed (2 in all)." in summary

    # One new version per changed file, none for the unchanged one; exit status 0 when nothing failed.
    prompt_file(a, "many/a", "Hi {{ who }}\n")
    prompt_file(x, "many/x", "Hey {{ who }}\n")
    dry = cli.ok("prompts", "push", str(folder), str(a), "--dry-run")
    assert "Summary: 2 new versions, 1 unchanged (3 in all; dry run, nothing changed)." in dry.stdout
    second = cli.json("prompts", "push", str(folder), str(a), "-m", "batch")
    assert [(r["name"], r["action"]) for r in second] == [
        ("many/y", "unchanged"),
        ("many/x", "new version 2"),
        ("many/a", "new version 2"),
    ]
    latest = cli.json("prompts", "show", "many/a")["version"]
    assert (latest["version"], latest["commitMessage"], latest["template"]) == (2, "batch", "Hi {{ who }}\n")
    assert [v["version"] for v in cli.json("prompts", "versions", "many/y")] == [1]
    again = cli.ok("prompts", "push", str(a), str(folder))
    assert "Summary: 3 unchanged (3 in all)." in again.stdout and not error_lines(again.stderr)


def test_push_needs_a_path(cli: Cli) -> None:
    assert "Missing argument" in cli.fails("prompts", "push", code=2).stderr
