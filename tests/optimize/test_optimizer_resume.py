"""Kill -9 the server in the middle of an optimization, start it again: the optimization finishes, no candidate
scored before the kill is scored again, and the stored call count never falls below the calls made nor
exceeds the budget. The server is a real ``promptops serve`` process; the model a real OpenAI-style server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_support import free_port
from fake_llm_server import DEFAULT_KEY, FakeLLMServer

from conftest import ADMIN_KEY

REVIEWS = [f"review number {i} about the product" for i in range(12)]
BUDGET = 120


class Server:
    """``promptops serve`` as a child process on ``db_url`` (that can be killed and started again)."""

    def __init__(self, db_url: str, tmp_path: Path) -> None:
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
        command = [str(Path(sys.executable).parent / "promptops"), "serve", "--port", str(self.port)]
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
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    s = Server(db_url, tmp_path)
    try:
        yield s
    finally:
        s.stop()


def render(template: str, review: str) -> str:
    return template.replace("{{ review }}", review)


def test_killed_server_resumes_the_optimization_without_rescoring_candidates(server: Server) -> None:
    with FakeLLMServer() as fake:
        fake.script("openai", delay=0.05, times=100_000)
        server.start()
        server.call(
            "POST",
            "/api/v1/providers",
            json={"name": "fake", "type": "openai", "baseUrl": fake.url + "/v1", "apiKey": DEFAULT_KEY},
        )
        server.call(
            "POST",
            "/api/v1/prompts",
            json={"name": "resume/opt", "template": "{{ review }}", "variables": [{"name": "review"}]},
        )
        cases = [
            {"id": f"r{i:02d}", "input": {"review": text}, "expected": "positive" if i % 2 else "negative"}
            for i, text in enumerate(REVIEWS)
        ]
        server.call("POST", "/api/v1/datasets", json={"name": "resume/reviews", "cases": cases})
        started = server.call(
            "POST",
            "/api/v1/optimizations",
            json={
                "prompt": "resume/opt",
                "dataset": "resume/reviews",
                "model": {"provider": "fake", "model": "gpt-fake"},
                "scorers": [{"type": "icontains"}],
                "budget": BUDGET,
                "concurrency": 2,
                "proposer": {"mode": "deterministic"},
            },
        )
        path = f"/api/v1/optimizations/{started['id']}"

        def scored() -> list[dict[str, Any]]:
            items = server.call("GET", f"{path}/candidates")["items"]
            return [c for c in items if c["status"] == "scored" and c["round"] >= 1]

        deadline = time.monotonic() + 120
        while len(before := scored()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        server.kill()
        sent_before = len(fake.requests_to("/chat/completions"))

        server.start()
        deadline = time.monotonic() + 180
        while (current := server.call("GET", path))["status"] != "completed":
            assert current["status"] in ("queued", "running"), current
            assert time.monotonic() < deadline, current
            time.sleep(0.1)
        assert current["attempts"] >= 2

        after = {c["id"]: c for c in server.call("GET", f"{path}/candidates")["items"]}
        for candidate in before:
            kept = after[candidate["id"]]
            assert kept["trainScore"] == candidate["trainScore"]
            assert kept["details"]["train"] == candidate["details"]["train"]

        # no training case of a candidate scored before the kill went to the model again after the restart
        requests = fake.requests_to("/chat/completions")
        sent_after = Counter(r.body["messages"][-1]["content"] for r in requests[sent_before:])
        train_reviews = [c["input"]["review"] for c in cases]
        for candidate in before:
            for review in train_reviews:
                if render(candidate["template"], review) in sent_after:
                    # the same text may be the validation of a finalist: allowed once, on the val split
                    assert candidate["valScore"] is None and after[candidate["id"]]["valScore"] is not None

        # the stored count covers every call made (an interrupted candidate stays charged) and the budget holds
        assert len(requests) <= current["callsUsed"] <= BUDGET
        assert current["report"]["winner"]["valScore"] == 1.0
        assert current["winnerVersionId"]
