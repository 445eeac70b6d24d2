"""``promptops run`` and the provider commands against a real server with the real local model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli_support import Cli, admin_cli, running_server


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Iterator[Cli]:
    with running_server(db_url, tmp_path) as live:
        yield admin_cli(live.url, tmp_path)


def test_run_example_prompt_on_local_model(cli: Cli) -> None:
    result = cli.ok(
        "run", "sentiment/few-shot@production", "--var", "review=Terrible quality, broke in a week."
    )
    lines = result.stdout.strip().splitlines()
    assert "negative" in lines[0].lower()
    assert "local/gemma-3-270m" in lines[-1] and " in / " in lines[-1] and "$0.000000" in lines[-1]
    streamed = cli.ok("run", "sentiment/few-shot", "--var", "review=I love it, works perfectly.", "--stream")
    assert "positive" in streamed.stdout.lower() and "first token" in streamed.stdout
    reply = ["run", "support/reply", "--var", "product=Acme", "--var", "customer_name=Ada"]
    reply += ["--var", "message=Where is my order?"]
    data = cli.json(*reply, "--param", "max_tokens=20")
    assert data["kind"] == "chat" and data["results"][0]["status"] == "ok" and data["results"][0]["text"]
    # an answer cut by the token limit says so
    cut = cli.ok(*reply, "--param", "max_tokens=3")
    assert "cut at max_tokens=3" in cut.stdout.strip().splitlines()[-1], cut.stdout
    runs = cli.json("runs", "list")
    assert len(runs["items"]) == 4 and {r["source"] for r in runs["items"]} == {"playground"}
    shown = cli.ok("runs", "show", runs["items"][0]["id"])
    assert "gemma-3-270m" in shown.stdout


def test_run_errors_and_provider_commands(cli: Cli) -> None:
    failed = cli.fails("run", "sentiment/few-shot")
    assert "missing_variables" in failed.stderr and "review" in failed.stderr
    failed = cli.fails("run", "sentiment/few-shot", "--var", "review=x", "--model", "nope/model")
    assert "connection_not_found" in failed.stderr
    providers = cli.json("providers", "list")
    assert providers[0]["name"] == "local" and providers[0]["builtIn"] is True
    refused = cli.fails(
        "providers", "create", "evil", "--type", "openai", "--base-url", "http://169.254.169.254/"
    )
    assert "unsafe_base_url" in refused.stderr
    models = cli.json("models", "list")
    assert any(m["model"] == "gpt-4o-mini" and m["inputPer1M"] == 0.15 for m in models)
