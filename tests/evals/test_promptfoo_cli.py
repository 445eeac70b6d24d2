"""``promptops eval run -c promptfooconfig.yaml`` against a live server and a fake OpenAI-compatible model.

The configs are shaped like promptfoo's own examples: per-case assertions without a ``defaultTest``, no
assertions at all, providers that need ``--provider-map``, and prompts given as bare file paths. The fake model
answers ``You said: <the first twelve words of the prompt>``, so an output shows which prompt text was sent.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli_support import Cli, LiveServer, running_server_with_fake
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.provider_support import shared_fake_fixture  # noqa: F401 (fixture)


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path, shared_fake: FakeLLMServer) -> Iterator[LiveServer]:
    # The importer and the run's scoring are the subject, not the database: SQLite.
    with running_server_with_fake(sqlite_url, tmp_path, shared_fake) as live:
        yield live


@pytest.fixture
def cli(server: LiveServer, tmp_path: Path) -> Cli:
    runner = Cli(tmp_path / "home" / "promptops.json", server.url)
    runner.login_admin()
    return runner


def write_config(folder: Path, config: str, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    path = folder / "promptfooconfig.yaml"
    path.write_text(textwrap.dedent(config).lstrip())
    return path


def run_config(cli: Cli, path: Path, *options: str) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """Run a config to the end: (the run, its results in output order, what was warned on stderr)."""
    result = cli.ok("eval", "run", "-c", str(path), "--prefix", "pf/example", *options, "--json")
    run = json.loads(result.stdout)
    assert run["status"] == "completed", run
    items = cli.json("eval", "results", run["id"], "--limit", "500")["items"]
    return run, sorted(items, key=lambda r: (r["output"] or "", r["target"])), result.stderr


def run_tests(
    cli: Cli, tmp_path: Path, tests: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """Run promptfoo ``tests`` of one prompt, "Tell me about {{ topic }}", on the fake model."""
    config = {"prompts": ["Tell me about {{ topic }}"], "providers": ["openai:chat:gpt-fake"], "tests": tests}
    path = write_config(tmp_path / "pf", yaml.safe_dump(config))
    return run_config(cli, path, "--provider-map", "openai=fake")


def scorer_types(item: dict[str, Any]) -> list[str]:
    return [s["type"] for s in item["scores"]]


def test_per_case_assertions_are_the_only_scorers(cli: Cli, tmp_path: Path) -> None:
    """promptfoo's examples assert per test and have no defaultTest: no default ``label`` scorer is added
    (a case with an expected value is not also label-matched, a case without assertions does not fail)."""
    run, items, _ = run_tests(
        cli,
        tmp_path,
        [
            {"vars": {"topic": "bananas"}, "assert": [{"type": "contains", "value": "bananas"}]},
            {"vars": {"topic": "apples"}, "assert": [{"type": "icontains", "value": "TELL ME"}]},
            {"vars": {"topic": "pears"}},
        ],
    )
    assert run["scorers"] == []
    # in output order: apples, bananas, pears
    assert [scorer_types(i) for i in items] == [["icontains"], ["contains"], []]
    assert all(i["passed"] for i in items), items
    assert run["summary"][0]["passRate"] == 1.0 and run["summary"][0]["target"] == "fake/gpt-fake"


def test_per_case_assertions_without_expected_values_are_not_refused(cli: Cli, tmp_path: Path) -> None:
    """Assertions that compare with no reference (regex, not-contains) used to get ``422 no_scorers``."""
    run, items, _ = run_tests(
        cli,
        tmp_path,
        [
            {"vars": {"topic": "bananas"}, "assert": [{"type": "regex", "value": "^You said"}]},
            {"vars": {"topic": "apples"}, "assert": [{"type": "not-contains", "value": "apples"}]},
        ],
    )
    assert [scorer_types(i) for i in items] == [["contains"], ["regex"]]  # apples, bananas
    assert [i["passed"] for i in items] == [False, True]
    assert run["summary"][0]["passed"] == 1


def test_a_config_without_assertions_runs_output_only(cli: Cli, tmp_path: Path) -> None:
    run, items, _ = run_tests(cli, tmp_path, [{"vars": {"topic": "rain"}}, {"vars": {"topic": "snow"}}])
    assert run["scorers"] == [] and run["summary"][0]["completed"] == 2
    assert [i["output"] for i in items] == ["You said: Tell me about rain", "You said: Tell me about snow"]
    assert all(i["scores"] == [] and i["errorClass"] is None for i in items)

    # only an explicit empty scorer list (what the importer sends) runs output-only; the CLI names none
    failed = cli.fails("eval", "run", "-p", "pf/example/prompt-1", "-d", "pf/example/tests", "-m", "fake/x")
    assert "no expected outputs" in failed.stderr and "scorers" in failed.stderr


def test_provider_map_maps_promptfoo_prefixes_to_connections(cli: Cli, tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "pf",
        """
        prompts: ["Hello {{ name }}"]
        providers:
          - ollama:chat:llama3
          - id: openai:chat:gpt-fake
            config: {apiKey: sk-not-ours, temperature: 0}
        tests:
          - vars: {name: Ada}
            assert: [{type: contains, value: Ada}]
        """,
    )
    # unmapped: the warning names the flag that maps it, and the run uses the providers that could be mapped
    run, _, warned = run_config(cli, path, "--provider-map", "openai:=fake")
    assert "map its prefix 'ollama'" in warned and "--provider-map ollama=CONNECTION" in warned
    assert "--provider-map openai=CONNECTION" in warned  # the apiKey belongs to a connection
    assert [g["target"] for g in run["summary"]] == ["fake/gpt-fake"]

    run, _, warned = run_config(cli, path, "--provider-map", "openai=fake", "--provider-map", "ollama=fake")
    assert "ollama" not in warned
    assert [g["target"] for g in run["summary"]] == ["fake/llama3", "fake/gpt-fake"]
    assert all(g["passRate"] == 1.0 for g in run["summary"])

    bad = cli.fails("eval", "run", "-c", str(path), "--provider-map", "openai", code=2)
    assert "PREFIX=CONNECTION" in bad.stderr or "KEY=VALUE" in bad.stderr
    bad = cli.fails("eval", "run", "-c", str(path), "--provider-map", "openai:chat=fake", code=2)
    assert "PREFIX=CONNECTION" in bad.stderr
    bad = cli.fails("eval", "run", "-p", "a/b", "-d", "a/c", "--provider-map", "openai=fake", code=2)
    assert "only applies to --config" in bad.stderr


def test_bare_prompt_paths_are_read_from_files(cli: Cli, tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "pf",
        """
        prompts:
          - prompts.txt
          - file://prompts/chat.json
          - prompts/missing.txt
        providers: [openai:chat:gpt-fake]
        tests: [{vars: {topic: tea}}]
        """,
        {
            "prompts.txt": "Summarise {{ topic }} from the text file",
            "prompts/chat.json": '[{"role": "user", "content": "Chat about {{ topic }} from JSON"}]',
        },
    )
    run, items, warned = run_config(cli, path, "--provider-map", "openai=fake")
    assert "'prompts/missing.txt' looks like a file path, but no such file exists" in warned
    assert [v["promptName"] for v in run["versions"]] == [
        "pf/example/prompts",
        "pf/example/chat",
        "pf/example/prompt-3",
    ]
    assert [i["output"] for i in items] == [
        "You said: Chat about tea from JSON",
        "You said: Summarise tea from the text file",
        "You said: prompts/missing.txt",
    ]

    # the legacy {path: label} map reads its keys as files too
    path.write_text(
        "prompts: {prompts.txt: From a file}\nproviders: [openai:chat:gpt-fake]\ntests: [{vars: {topic: cake}}]\n"
    )
    run, items, _ = run_config(cli, path, "--provider-map", "openai=fake")
    assert [v["promptName"] for v in run["versions"]] == ["pf/example/from-a-file"]
    assert [i["output"] for i in items] == ["You said: Summarise cake from the text file"]


def test_dry_run_prints_the_translation_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "pf",
        """
        description: Dry
        prompts: [file://hello.txt]
        providers: [openai:chat:gpt-fake, replicate:meta/llama]
        tests:
          - vars: {name: Ada}
            assert: [{type: contains, value: Ada}, {type: python, value: "len(output) > 1"}]
        """,
        {"hello.txt": "Hello {{ name }}"},
    )
    args = (
        "eval",
        "run",
        "-c",
        str(path),
        "--prefix",
        "pf/dry",
        "--provider-map",
        "openai=fake",
        "--dry-run",
    )
    shown = cli.ok(*args)
    out = shown.stdout
    assert "promptfoo import (dry run, nothing written): Dry" in out
    assert "create" in out and "pf/dry/hello" in out and "file://hello.txt" in out
    assert "dataset: create pf/dry/tests version 1 (1 cases)" in out
    assert "model: fake/gpt-fake (from providers[0])" in out
    assert "skipped  providers[1]: provider 'replicate:meta/llama' has no PromptOps connection" in out
    assert "skipped  tests[0].assert[1]: type 'python' is not supported" in out
    # nothing was written: a second dry run still creates everything, and the prompt does not exist
    again = cli.json(*args)
    assert again["dryRun"] is True and [p["action"] for p in again["prompts"]] == ["create"]
    cli.fails("prompts", "show", "pf/dry/hello")
    cli.fails("eval", "run", "-p", "a/b", "-d", "a/c", "--dry-run", code=2)


def test_local_file_errors_name_the_file(cli: Cli, tmp_path: Path) -> None:
    path = write_config(tmp_path / "pf", "prompts: [file://prompts/missing.txt]\nproviders: [echo]\n")
    failed = cli.fails("eval", "run", "-c", str(path))
    assert "prompts[0]: no file matches file://prompts/missing.txt" in failed.stderr
    assert "Request validation failed" not in failed.stderr

    path = write_config(
        tmp_path / "pf2",
        "prompts: ['Hi {{ x }}']\nproviders: [echo]\ntests: file://tests.yaml\n",
        {"tests.yaml": "- vars: {x: [unclosed\n"},
    )
    failed = cli.fails("eval", "run", "-c", str(path))
    assert "tests.yaml: invalid YAML at line" in failed.stderr

    (tmp_path / "pf3").mkdir()
    (tmp_path / "pf3" / "promptfooconfig.yaml").write_bytes(b"prompts: ['\xff']\n")
    failed = cli.fails("eval", "run", "-c", str(tmp_path / "pf3" / "promptfooconfig.yaml"))
    assert f"{tmp_path / 'pf3' / 'promptfooconfig.yaml'}: the config file is not UTF-8 text" in failed.stderr
    failed = cli.fails("eval", "run", "-c", str(tmp_path / "nowhere.yaml"))
    assert "nowhere.yaml: no such config file" in failed.stderr


def test_model_override_and_the_echo_provider(cli: Cli, tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "pf",
        """
        prompts: ["Echo {{ word }} back"]
        providers: [echo, openai:chat:gpt-fake]
        tests:
          - vars: {word: tea}
            assert: [{type: equals, value: Echo tea back}]
        """,
    )
    run, items, _ = run_config(cli, path, "--provider-map", "openai=fake")
    assert [g["target"] for g in run["summary"]] == ["echo/echo", "fake/gpt-fake"]
    # echo answers with the rendered prompt, so its equals assertion passes; the fake model's does not
    assert {i["target"]: (i["output"], i["passed"]) for i in items} == {
        "echo/echo": ("Echo tea back", True),
        "fake/gpt-fake": ("You said: Echo tea back", False),
    }
    # -m replaces the config's providers (and their findings)
    run, _, warned = run_config(cli, path, "-m", "fake/other-model", "--param", "temperature=0")
    assert [g["target"] for g in run["summary"]] == ["fake/other-model"] and "providers" not in warned


def test_a_refused_import_still_lists_what_it_would_skip(cli: Cli, tmp_path: Path) -> None:
    config = {
        "prompts": ["Tell me about {{ topic }}"],
        "providers": ["openai:chat:gpt-fake"],
        "tests": [
            {
                "vars": {"topic": "bees"},
                "assert": [
                    {"type": "similar", "value": "bees"},
                    {"type": "javascript", "value": "output.length"},
                ],
            }
        ],
    }
    path = write_config(tmp_path / "pf", yaml.safe_dump(config))
    failed = cli.fails("eval", "run", "-c", str(path), "--provider-map", "openai=fake")
    assert "similar" in failed.stderr and "embedding" in failed.stderr
    assert "unsupported, skipped: tests[0].assert[1]" in failed.stderr  # the javascript assertion
