"""A test job kind, ``test-steps``, whose durable state is files under ``<data_dir>/jobtest/<ref_id>/``.

A job runs ``steps`` steps; each finished step is appended to ``done`` (so a resumed job must skip it), each
handler call to ``calls``. ``spec.json`` may ask the handler to raise on its first ``fail_calls`` calls, or to
block before step ``block_at`` until a ``release`` file exists (it writes ``blocked`` while waiting and
``cancelled`` if it is cancelled there). ``finished`` marks a completed job; the pending query lists the rest.

Importing this module registers the kind, in the test process and in a worker subprocess alike.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from promptops.jobs import register_job
from promptops.runtime import Runtime

KIND = "test-steps"


def job_dir(data_dir: Path, ref_id: str) -> Path:
    return data_dir / "jobtest" / ref_id


def create_job(data_dir: Path, ref_id: str, steps: int = 3, **spec: Any) -> Path:
    """Write a job's spec (the domain object the job works on)."""
    path = job_dir(data_dir, ref_id)
    path.mkdir(parents=True, exist_ok=True)
    (path / "spec.json").write_text(json.dumps({"steps": steps, **spec}))
    return path


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text + "\n")


async def run_steps(runtime: Runtime, ref_id: str) -> None:
    path = job_dir(runtime.settings.data_dir, ref_id)
    spec = json.loads((path / "spec.json").read_text())
    _append(path / "calls", "call")
    calls = len(lines(path / "calls"))
    done = set(lines(path / "done"))
    for step in range(spec["steps"]):
        if str(step) in done:
            continue
        if calls <= spec.get("fail_calls", 0):
            raise RuntimeError(f"planned failure on call {calls}")
        if spec.get("block_at") == step:
            (path / "blocked").write_text(str(calls))
            try:
                while not (path / "release").exists():
                    await asyncio.sleep(0.02)
            except asyncio.CancelledError:
                (path / "cancelled").write_text(str(calls))
                raise
        _append(path / "done", str(step))
    (path / "finished").write_text("ok")


async def pending_steps(runtime: Runtime) -> list[str]:
    root = runtime.settings.data_dir / "jobtest"
    if not root.exists():
        return []
    return sorted(
        p.name for p in root.iterdir() if (p / "spec.json").exists() and not (p / "finished").exists()
    )


register_job(KIND, run_steps, pending_steps)


async def wait_for(path: Path, what: str, timeout: float = 60.0) -> None:
    """Poll until ``path`` exists; the timeout only guards against a hang (it is not what is tested)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} ({path})")
        await asyncio.sleep(0.02)
