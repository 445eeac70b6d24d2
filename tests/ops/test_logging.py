"""Server log format: JSON lines into files and pipes, readable coloured lines on a terminal, and the override."""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import structlog

from promptops.logging import LOG_FORMAT_ENV, configure_logging, log

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# One event through structlog and one through stdlib logging (the path uvicorn's own messages take).
EMIT = (
    "import logging, sys\n"
    "from promptops.logging import configure_logging, log\n"
    "configure_logging('INFO')\n"
    "log.info('hello', user='ada')\n"
    "logging.getLogger('uvicorn.error').info('from stdlib')\n"
)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Every test configures logging its own way; put back what the other tests had."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def on_terminal(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter whose stderr is a pseudo-terminal; return what it wrote there."""
    master, slave = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", LOG_FORMAT_ENV)}
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=slave,
            env={**environment, **env},
        )
    finally:
        os.close(slave)
    written = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if child.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every copy of the terminal's other end is closed, the child is done
                break
            if not chunk:
                break
            written += chunk
        assert child.wait(timeout=10) == 0, written
    finally:
        os.close(master)
        if child.poll() is None:
            child.kill()
    return written.decode("utf-8").replace("\r\n", "\n")


def test_a_terminal_gets_coloured_key_value_lines() -> None:
    written = on_terminal(EMIT)

    assert ANSI.search(written), written
    plain = ANSI.sub("", written)
    lines = plain.splitlines()
    hello = next(line for line in lines if "hello" in line)
    assert "[info" in hello and "user=ada" in hello and not hello.startswith("{")
    assert any("from stdlib" in line and "[uvicorn.error]" in line for line in lines), plain


def test_the_override_keeps_json_on_a_terminal() -> None:
    written = on_terminal(EMIT, **{LOG_FORMAT_ENV: "json"})

    events = [json.loads(line) for line in written.splitlines() if line.strip()]
    assert [e["event"] for e in events] == ["hello", "from stdlib"]
    assert events[0]["user"] == "ada" and events[0]["level"] == "info"


def test_a_pipe_gets_json_lines(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOG_FORMAT_ENV, raising=False)
    configure_logging("INFO")
    log.info("hello", user="ada")

    (line,) = capsys.readouterr().err.splitlines()
    event = json.loads(line)
    assert (event["event"], event["user"], event["level"]) == ("hello", "ada", "info")
    assert "timestamp" in event


@pytest.mark.parametrize(("override", "log_json"), [("console", True), ("", False), ("CONSOLE ", True)])
def test_console_format_on_request_without_colours_in_a_pipe(
    override: str, log_json: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOG_FORMAT_ENV, override)
    configure_logging("INFO", json=log_json)
    log.info("hello", user="ada")

    err = capsys.readouterr().err
    assert "hello" in err and "user=ada" in err and not err.startswith("{")
    assert not ANSI.search(err)


def test_an_unknown_format_is_reported_and_the_default_used(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOG_FORMAT_ENV, "yaml")
    configure_logging("INFO")

    (line,) = capsys.readouterr().err.splitlines()
    warning = json.loads(line)
    assert warning["event"] == "log_format_unknown" and warning["value"] == "yaml"
