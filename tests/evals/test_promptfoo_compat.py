"""The promptfoo compatibility runner (``bench/promptfoo-compat/run.py``) over a few of promptfoo's own example
configs, unchanged: a live server, the CLI, and a fake model server speaking the OpenAI and Anthropic formats.
The whole set (20 configs) runs with ``.venv/bin/python bench/promptfoo-compat/run.py``."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.app import ADMIN_KEY
from tests.support.cli_support import LiveServer, running_server
from tests.support.fake_llm_server import DEFAULT_KEY, FakeLLMServer
from tests.support.provider_support import shared_fake_fixture  # noqa: F401 (fixture)

RUNNER = Path(__file__).resolve().parents[2] / "bench" / "promptfoo-compat" / "run.py"


def load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("promptfoo_compat_run", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path, shared_fake: FakeLLMServer) -> Iterator[LiveServer]:
    with running_server(sqlite_url, tmp_path, provider_allowed_hosts=["127.0.0.1"]) as live:
        yield live


def test_example_configs_run_unchanged(server: LiveServer, shared_fake: FakeLLMServer) -> None:
    run = load_runner()
    run.add_connections(server.url, ADMIN_KEY, shared_fake.url, DEFAULT_KEY)
    names = ["getting-started", "claude-vs-gpt", "eval-customer-support-rubric", "simple-test"]
    outcomes = {o.name: o for o in run.run_all(server.url, ADMIN_KEY, names)}
    assert list(outcomes) == sorted(names)

    # two prompts x two OpenAI models x two tests, every assertion translated
    clean = outcomes["getting-started"]
    assert (clean.result, clean.cells, clean.errors, clean.skipped) == ("ran", 8, 0, [])

    # Anthropic and OpenAI, a chat prompt file of Anthropic content parts; the code assertion and the cache
    # settings are named, and so is the cost assertion on a model without a price
    mixed = outcomes["claude-vs-gpt"]
    assert (mixed.result, mixed.cells, mixed.errors) == ("ran-with-warnings", 30, 0)
    findings = "\n".join(mixed.skipped)
    assert "defaultTest.assert[2]: type 'javascript' is not supported" in findings
    assert "providers[0].config.cache_control: not supported" in findings
    assert "claude-3-5-sonnet-20241022 has no price" in findings

    # the echo provider answers with the rendered prompt; llm-rubric graded by the config's options.provider
    echo = outcomes["eval-customer-support-rubric"]
    assert (echo.result, echo.cells, echo.errors) == ("ran-with-warnings", 8, 0)
    assert all("__threshold" in line for line in echo.skipped)

    # similar without an embedding model is refused at import, naming the assertion
    rejected = outcomes["simple-test"]
    assert rejected.result == "rejected" and "tests[3].assert[2]: 'similar'" in rejected.reason

    table = run.report(list(outcomes.values()))
    assert table.splitlines()[-1] == "total 4: 3 ran (1 clean, 2 with warnings), 1 rejected, 0 failed"
