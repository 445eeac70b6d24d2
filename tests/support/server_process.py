"""``promptops serve`` as a child process that a test can kill -9 and start again (crash-recovery tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app import ADMIN_KEY
from tests.support.cli_support import free_port


class ServerProcess:
    """``promptops serve`` as a child process on ``db_url`` (that can be killed and started again)."""

    def __init__(self, db_url: str, tmp_path: Path, *args: str) -> None:
        self.args = list(args)  # more ``promptops serve`` options
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (tmp_path / "server.log").open("ab")
        self.env = {
            **os.environ,
            "PROMPTOPS_DATABASE_URL": db_url,
            "PROMPTOPS_DATA_DIR": str(tmp_path / "data"),
            "PROMPTOPS_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
            "PROMPTOPS_BOOTSTRAP_ADMIN_PASSWORD": "admin-password-123",
            "PROMPTOPS_PROVIDER_ALLOWED_HOSTS": "127.0.0.1",
            "PROMPTOPS_LOG_JSON": "true",
            "PROMPTOPS_JOB_STALLED_SECONDS": "3",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            str(Path(sys.executable).parent / "promptops"),
            "serve",
            "--port",
            str(self.port),
            *self.args,
        ]
        self.proc = subprocess.Popen(command, env=self.env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, "server exited during start-up"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        r = httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)
        assert r.status_code < 300, r.text
        return r.json() if r.content else None


@pytest.fixture
def killable_server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """The server on the test's fresh database; not started (tests start, kill and restart it)."""
    s = ServerProcess(db_url, tmp_path)
    try:
        yield s
    finally:
        s.stop()
