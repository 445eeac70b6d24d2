"""A real ``promptops serve`` for benchmarks: a fresh SQLite database in a temporary folder, a free port on
127.0.0.1, the bootstrap admin key, stopped on exit. ``with serve() as (base_url, headers): ...``"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

KEY = "po_bench000_" + "O" * 40
HEADERS = {"Authorization": f"Bearer {KEY}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not become ready")


@contextmanager
def serve(database_url: str | None = None, prefix: str = "promptops-bench-") -> Iterator[tuple[str, Path]]:
    """(base URL, temporary folder) of a server that runs until the block ends."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PROMPTOPS_DATA_DIR": str(tmp / "data"),
        "PROMPTOPS_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
        "PROMPTOPS_BOOTSTRAP_ADMIN_KEY": KEY,
        "PROMPTOPS_LOG_LEVEL": "warning",
    }
    with (tmp / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "promptops"), "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            wait_ready(base, server)
            yield base, tmp
        finally:
            server.terminate()
            server.wait(timeout=30)
