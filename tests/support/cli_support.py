"""Test harness for the CLI: a real uvicorn server in a thread, and a CliRunner bound to one config file.

Test modules import the fixtures ``server_fixture`` (registered as ``server``: a live server on ``db_url``) and
``cli_fixture`` (``cli``: the admin logged in to ``server``) so that pytest sees them; a module may define its
own ``server`` and still use ``cli``.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import structlog
import uvicorn
from typer.testing import CliRunner, Result

from promptops.app import create_app
from promptops.cli.main import app
from tests.support.app import ADMIN_KEY, make_settings
from tests.support.fake_llm_server import DEFAULT_KEY, FakeLLMServer

KEY_RE = re.compile(r"po_[a-z0-9]{8}_[A-Za-z0-9_-]{32,64}")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class LiveServer:
    url: str
    db_url: str


@contextmanager
def running_server(db_url: str, tmp_path: Path, **overrides: Any) -> Iterator[LiveServer]:
    """The app on ``db_url`` (already migrated) served by uvicorn on a free port until the block ends.

    The server's structured log goes to ``tmp_path/server.log``: by default structlog prints to whatever
    ``sys.stdout`` is at the time, which inside CliRunner is the CLI's captured output.
    """
    saved_logging = structlog.get_config()
    log_file = (tmp_path / "server.log").open("a", encoding="utf-8")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=log_file))
    app_ = create_app(make_settings(db_url, tmp_path, **overrides), migrate=False)
    port = free_port()
    config = uvicorn.Config(
        app_, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on", loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            if not thread.is_alive():
                raise RuntimeError("the test server stopped during start-up")
            try:
                if server.started and httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test server at {url} did not become healthy")
            time.sleep(0.05)
        yield LiveServer(url=url, db_url=db_url)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        structlog.configure(**saved_logging)
        log_file.close()


@contextmanager
def running_server_with_fake(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> Iterator[LiveServer]:
    """:func:`running_server` with loopback provider URLs allowed and a connection ``fake`` to ``fake``."""
    with running_server(db_url, tmp_path, provider_allowed_hosts=["127.0.0.1"]) as live:
        r = httpx.post(
            f"{live.url}/api/v1/providers",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            json={"name": "fake", "type": "openai", "baseUrl": fake.url + "/v1", "apiKey": DEFAULT_KEY},
        )
        assert r.status_code == 201, r.text
        yield live


@pytest.fixture(name="server")
def server_fixture(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with running_server(db_url, tmp_path) as live:
        yield live


@pytest.fixture(name="cli")
def cli_fixture(server: LiveServer, tmp_path: Path) -> Cli:
    return admin_cli(server.url, tmp_path)


def admin_cli(url: str, tmp_path: Path) -> Cli:
    """A CLI with its config under ``tmp_path/home``, logged in to ``url`` with the bootstrap admin key."""
    runner = Cli(tmp_path / "home" / "promptops.json", url)
    runner.login_admin()
    return runner


class Cli:
    """Runs ``promptops`` in-process with its own config file and a wide terminal for readable tables."""

    def __init__(self, config_path: Path, url: str | None = None) -> None:
        self.config_path = config_path
        self.url = url
        self.runner = CliRunner()

    def env(self, **extra: str | None) -> dict[str, str | None]:
        env: dict[str, str | None] = {
            "PROMPTOPS_CONFIG": str(self.config_path),
            # Never let the developer's own environment pick the server or key.
            "PROMPTOPS_URL": None,
            "PROMPTOPS_API_KEY": None,
            "COLUMNS": "250",
            "NO_COLOR": "1",
        }
        env.update(extra)
        return env

    def run(self, *args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Result:
        """Run one command; returns the click Result (exit_code, stdout, stderr)."""
        return self.runner.invoke(app, list(args), input=input, env=self.env(**(env or {})))

    def ok(self, *args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Result:
        """Run a command that must succeed."""
        result = self.run(*args, input=input, env=env)
        assert result.exit_code == 0, _explain(args, result)
        return result

    def json(self, *args: str, env: dict[str, str | None] | None = None) -> Any:
        """Run a command with ``--json`` and decode its stdout."""
        result = self.ok(*args, "--json", env=env)
        return json.loads(result.stdout)

    def fails(self, *args: str, code: int = 1, env: dict[str, str | None] | None = None) -> Result:
        """Run a command that must exit with ``code``."""
        result = self.run(*args, env=env)
        assert result.exit_code == code, _explain(args, result)
        return result

    def login_admin(self) -> Result:
        """Log in with the bootstrap admin key."""
        assert self.url is not None
        return self.ok("login", "--url", self.url, "--key", ADMIN_KEY)


def _explain(args: Sequence[str], result: Result) -> str:
    return (
        f"promptops {' '.join(args)} -> exit {result.exit_code}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\nexception: {result.exception!r}"
    )


# --- tampering with the audit log behind the server's back ------------------------------------------------------


def tamper_audit_log(db_url: str, project_id: str, edit_seq: int, delete_seq: int) -> None:
    """Edit one audit event's data and delete another, directly in the database."""
    edited = '{"x": 1}'
    if db_url.startswith("sqlite"):
        path = db_url.split(":///", 1)[1]
        with sqlite3.connect(path) as conn:
            cursor = conn.execute(
                "UPDATE audit_events SET data = ? WHERE project_id = ? AND seq = ?",
                (edited, project_id, edit_seq),
            )
            assert cursor.rowcount == 1
            cursor = conn.execute(
                "DELETE FROM audit_events WHERE project_id = ? AND seq = ?", (project_id, delete_seq)
            )
            assert cursor.rowcount == 1
        return

    async def run() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            status = await conn.execute(
                "UPDATE audit_events SET data = $1::jsonb WHERE project_id = $2 AND seq = $3",
                edited,
                project_id,
                edit_seq,
            )
            assert status == "UPDATE 1", status
            status = await conn.execute(
                "DELETE FROM audit_events WHERE project_id = $1 AND seq = $2", project_id, delete_seq
            )
            assert status == "DELETE 1", status
        finally:
            await conn.close()

    asyncio.run(run())
