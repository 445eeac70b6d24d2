"""``promptops serve --workers N``: several server processes on one port and one PostgreSQL database."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from usearch.index import Index

from promptops.db import utcnow
from promptops.search.embed import embedder
from promptops.search.spaces import Space
from promptops.search.vectors import ProjectIndex, VectorIndexes, _new_index
from tests.support.app import ADMIN_KEY, PG_URL, RUN_ID, _pg_exec, _pg_state
from tests.support.server_process import ServerProcess

PROMPTOPS = str(Path(sys.executable).parent / "promptops")


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """A PostgreSQL database with nothing in it (not migrated): the first start migrates it."""
    name = f"promptops_workers_{RUN_ID}_{os.getpid()}_{time.monotonic_ns()}"
    try:
        asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        pytest.fail(f"PostgreSQL is not reachable: {exc}")
    _pg_state.setdefault("created", []).append(name)  # dropped at the end of the session
    yield f"{PG_URL.rpartition('/')[0]}/{name}"


def workers_of(pid: int) -> list[int]:
    """The server processes uvicorn started (not multiprocessing's resource tracker)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in found if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]


def test_two_workers_share_one_postgresql_database(empty_pg_url: str, tmp_path: Path) -> None:
    server = ServerProcess(empty_pg_url, tmp_path, "--workers", "2")
    try:
        server.start()  # migrates and bootstraps once, then starts both workers
        assert server.proc is not None
        workers = workers_of(server.proc.pid)
        assert len(workers) == 2, f"expected two worker processes, found {workers}"
        log = (tmp_path / "server.log").read_text()
        assert log.count("PromptOps first start") == 1  # migrated and bootstrapped once, before the workers
        body = {"name": "notes/autumn-haiku", "template": "Write a haiku about autumn leaves falling."}
        assert server.call("POST", "/api/v1/prompts", json=body)["version"]["version"] == 1
        # every request on a new connection, so both workers answer some: each one finds the new prompt by
        # meaning, through its own vector index caught up from the database
        for _ in range(16):
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
                r = c.get(
                    "/api/v1/search", params={"q": "a short poem about fall foliage", "mode": "semantic"}
                )
                assert r.status_code == 200, r.text
                assert r.json()["items"][0]["name"] == "notes/autumn-haiku"
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=60) == 0
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    finally:
        server.stop()
    # both workers saved the project's index on the way out: the metadata names an index file that exists
    metas = list((tmp_path / "data" / "search-index").glob("*.json"))
    assert metas
    for meta_file in metas:
        meta = json.loads(meta_file.read_text())
        assert (meta_file.parent / meta["file"]).exists()
    # a restart with one process reads the saved index and serves the same results
    again = ServerProcess(empty_pg_url, tmp_path)
    try:
        again.start()
        found = again.call(
            "GET", "/api/v1/search", params={"q": "poem about fall leaves", "mode": "semantic"}
        )
        assert found["items"][0]["name"] == "notes/autumn-haiku"
    finally:
        again.stop()


def test_several_workers_need_postgresql(sqlite_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "PROMPTOPS_DATABASE_URL": sqlite_url, "PROMPTOPS_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [PROMPTOPS, "serve", "--workers", "2", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "several workers need PostgreSQL" in done.stderr
    reload = subprocess.run(
        [PROMPTOPS, "serve", "--workers", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert reload.returncode == 2 and "--workers" in reload.stderr


def test_processes_saving_one_index_never_mix_files(tmp_path: Path) -> None:
    """Two processes' indexes of one project, saved in turn into one folder: the metadata always names the index
    it was saved with, and files no longer named are removed once old."""
    folder = tmp_path / "search-index"
    a, b = VectorIndexes(), VectorIndexes()
    a.configure(folder)
    b.configure(folder)
    rng = np.random.default_rng(1)
    for i in range(6):
        index = _new_index(8)
        index.add(np.arange(i + 1, dtype=np.uint64), rng.random((i + 1, 8), dtype=np.float32))
        watermark = utcnow() - timedelta(seconds=i)
        (a if i % 2 else b).save(ProjectIndex("prj_1", "minilm", index, watermark))
        meta = json.loads((folder / "prj_1.json").read_text())
        assert meta["size"] == i + 1 and meta["watermark"] == watermark.isoformat()
    # a reader gets the last index with its own watermark
    reader = VectorIndexes()
    reader.configure(folder)
    loaded = reader._load("prj_1", Space("minilm", embedder().profile))
    assert loaded.index is not None and len(loaded.index) == 6
    assert (
        loaded.watermark is not None
        and loaded.watermark.isoformat() == json.loads((folder / "prj_1.json").read_text())["watermark"]
    )
    files = sorted(p.name for p in folder.iterdir())
    assert len([f for f in files if f.endswith(".usearch")]) == 6  # all younger than a minute: kept
    assert not [f for f in files if f.endswith(".tmp")]
    for path in folder.glob("*.usearch"):
        os.utime(path, (time.time() - 120, time.time() - 120))
    a.save(ProjectIndex("prj_1", "minilm", _filled(7), utcnow()))
    left = sorted(p.name for p in folder.glob("*.usearch"))
    assert left == [json.loads((folder / "prj_1.json").read_text())["file"]]


def _filled(n: int) -> Index:
    index = _new_index(8)
    index.add(np.arange(n, dtype=np.uint64), np.ones((n, 8), dtype=np.float32))
    return index
