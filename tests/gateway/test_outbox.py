"""The gateway's durable outbox: journals left by a crashed process are stored exactly once at the next start,
also when a process dies with kill -9 in the middle of real traffic (``promptops serve`` and ``promptops
gateway`` as child processes); plus the migration that adds ``runs.fingerprint``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import create_async_engine

from promptops.config import normalize_database_url
from promptops.migrate import downgrade, upgrade
from promptops.runs.models import Run, RunRollup
from tests.support.app import ADMIN_KEY, new_database, open_api
from tests.support.fake_llm_server import DEFAULT_KEY, FakeLLMServer
from tests.support.provider_support import fake_fixture, shared_fake_fixture  # noqa: F401 (fixtures)
from tests.support.server_process import ServerProcess


def journal_record(project_id: str, run_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": run_id,
        "project_id": project_id,
        "prompt_id": None,
        "version_id": None,
        "fingerprint": "0123456789abcdef",
        "provider": "fake",
        "provider_type": "openai",
        "model": "gpt-4o-mini",
        "params": {},
        "input": {"messages": [{"role": "user", "content": "hi"}]},
        "output": "You said: hi",
        "tool_calls": None,
        "finish_reason": "stop",
        "input_tokens": 1,
        "output_tokens": 3,
        "usage_estimated": False,
        "cost_usd": 0.001,
        "latency_ms": 12.5,
        "ttft_ms": None,
        "status": "ok",
        "error_class": None,
        "error_message": None,
        "source": "gateway",
        "cached": False,
        "attempt": 1,
        "trace_id": None,
        "actor_id": "key_x",
        "created_at": "2026-12-03T01:00:00+00:00",
        **extra,
    }


async def _counts(db_url: str, project_id: str | None = None) -> tuple[int, int]:
    """(gateway runs stored, gateway runs counted by the daily rollup)."""
    engine = create_async_engine(normalize_database_url(db_url))
    try:
        async with engine.connect() as conn:
            runs = await conn.scalar(select(func.count()).select_from(Run).where(Run.source == "gateway"))
            rolled = await conn.scalar(
                select(func.coalesce(func.sum(RunRollup.runs), 0)).where(
                    RunRollup.source == "gateway", RunRollup.grain == 24
                )
            )
    finally:
        await engine.dispose()
    return int(runs or 0), int(rolled or 0)


async def test_journals_left_by_a_crash_are_stored_exactly_once(db_url: str, tmp_path: Path) -> None:
    api, client, lifespan = await open_api(db_url, tmp_path)
    project_id = (await api.get("/api/v1/auth/me")).json()["projectId"]
    await client.aclose()
    await lifespan.__aexit__(None, None, None)

    outbox = tmp_path / "data" / "gateway-outbox"
    records = [journal_record(project_id, f"run_replay{i:020d}") for i in range(3)]
    lines = b"".join(orjson.dumps(r) + b"\n" for r in [*records, records[0]])
    # a crashed process's segment: three records, one written twice, and a line torn by the crash
    (outbox / "1-99999.journal").write_bytes(lines + b'{"id": "run_torn')
    # the same records again in another segment (as if a process died between storing and deleting them)
    (outbox / "2-99998.journal").write_bytes(lines)

    for start, (replayed, torn) in enumerate([(8, 1), (0, 0)]):  # the second start finds nothing left
        api, client, lifespan = await open_api(db_url, tmp_path)
        try:
            assert await _counts(db_url) == (3, 3), start
            assert len(list(outbox.glob("*.journal"))) == 1  # only this process's own, open segment
            metrics = (await api.client.get("/metrics")).text
            assert f"promptops_gateway_outbox_replayed_total {replayed}.0" in metrics
            assert f"promptops_gateway_outbox_dropped_total {torn}.0" in metrics
            assert "promptops_gateway_outbox_depth 0.0" in metrics
            r = await api.get("/api/v1/runs", params={"source": "gateway"})
            assert sorted(run["id"] for run in r.json()["items"]) == [rec["id"] for rec in records]
        finally:
            await client.aclose()
            await lifespan.__aexit__(None, None, None)
    assert list(outbox.glob("*.journal")) == []  # a clean stop drains and deletes its segment


class GatewayProcess(ServerProcess):
    """``promptops gateway`` as a child process (same database and data directory as the server's)."""

    def __init__(self, db_url: str, tmp_path: Path) -> None:
        super().__init__(db_url, tmp_path)
        self.db_url = db_url

    def start(self) -> None:
        command = [
            str(Path(sys.executable).parent / "promptops"),
            "gateway",
            "--port",
            str(self.port),
            "--database-url",
            self.db_url,
        ]
        env = {k: v for k, v in self.env.items() if k != "PROMPTOPS_DATABASE_URL"}
        self.proc = subprocess.Popen(command, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, "gateway exited during start-up"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "gateway did not become ready"
            time.sleep(0.1)


def _traffic(url: str, calls: int) -> list[str]:
    """``calls`` calls (every third one streamed) with the official client over real HTTP; the run ids."""
    client = openai.OpenAI(base_url=url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    ids = []
    for i in range(calls):
        messages = [{"role": "user", "content": f"call number {i}"}]
        if i % 3 == 0:
            with client.chat.completions.with_streaming_response.create(
                model="fake/gpt-4o-mini",
                messages=messages,
                stream=True,  # type: ignore[arg-type]
            ) as response:
                chunks = [line for line in response.iter_lines() if line.startswith("data: {")]
                assert len(chunks) > 3  # passed on chunk by chunk
                ids.append(response.headers["x-promptops-run-id"])
        else:
            raw = client.chat.completions.with_raw_response.create(
                model="fake/gpt-4o-mini",
                messages=messages,  # type: ignore[arg-type]
            )
            assert raw.parse().choices[0].message.content == f"You said: call number {i}"
            ids.append(raw.headers["x-promptops-run-id"])
    return ids


def _wait_for_runs(db_url: str, expected: int) -> tuple[int, int]:
    deadline = time.monotonic() + 30
    while True:
        counts = asyncio.run(_counts(db_url))
        if counts[0] >= expected or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


def test_kill_9_mid_traffic_loses_no_acknowledged_call(
    db_url: str, tmp_path: Path, fake: FakeLLMServer, killable_server: ServerProcess
) -> None:
    server = killable_server
    server.start()
    server.call(
        "POST",
        "/api/v1/providers",
        json={"name": "fake", "type": "openai", "baseUrl": fake.url + "/v1", "apiKey": DEFAULT_KEY},
    )
    sent = _traffic(server.url, 12)
    server.kill()  # before or while the outbox drains
    server.start()
    assert _wait_for_runs(db_url, 12) == (12, 12)
    server.stop()

    gateway = GatewayProcess(db_url, tmp_path)
    try:
        gateway.start()
        sent += _traffic(gateway.url, 9)
        gateway.kill()
        gateway.start()
        assert _wait_for_runs(db_url, 21) == (21, 21)
        metrics = httpx.get(gateway.url + "/metrics", timeout=10).text  # the standalone app serves it too
        assert "promptops_gateway_outbox_depth 0.0" in metrics
    finally:
        gateway.stop()
    assert len(set(sent)) == 21


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_fingerprint_migration_up_and_down(kind: str, tmp_path: Path, sqlite_template: Path) -> None:
    url = normalize_database_url(new_database(kind, tmp_path, sqlite_template))

    async def columns() -> tuple[set[str], set[str]]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            cols = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("runs")})
            idx = await conn.run_sync(lambda c: {i["name"] for i in inspect(c).get_indexes("runs")})
        await engine.dispose()
        return cols, idx

    cols, idx = asyncio.run(columns())
    assert "fingerprint" in cols and "ix_runs_project_fingerprint" in idx
    downgrade(url, "0006")
    cols, idx = asyncio.run(columns())
    assert "fingerprint" not in cols and "ix_runs_project_fingerprint" not in idx
    upgrade(url)
    cols, idx = asyncio.run(columns())
    assert "fingerprint" in cols and "ix_runs_project_fingerprint" in idx
