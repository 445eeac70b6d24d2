"""Kill -9 the server in the middle of an evaluation, start it again: the run finishes, and no case whose
result was stored before the kill is sent to the model again. The server is a real ``promptops serve``
process; the model is a real HTTP server speaking the OpenAI wire format.
"""

from __future__ import annotations

import time
from collections import Counter

from tests.support.app import ADMIN_KEY
from tests.support.fake_llm_server import FakeLLMServer
from tests.support.resume_support import start_with_review_prompt
from tests.support.server_process import ServerProcess

CASES = 30
HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


def review(i: int) -> str:
    return f"review number {i} says the product is fine"


def test_killed_server_resumes_the_evaluation_without_rerunning_cases(killable_server: ServerProcess) -> None:
    server = killable_server
    with FakeLLMServer() as fake:
        fake.script("openai", delay=0.15, times=10_000)
        cases = [
            {"id": f"r{i:02d}", "input": {"review": review(i)}, "expected": review(i)} for i in range(CASES)
        ]
        start_with_review_prompt(server, fake, "resume/echo", "resume/reviews", cases)
        run = server.call(
            "POST",
            "/api/v1/evals",
            json={
                "prompts": ["resume/echo"],
                "dataset": "resume/reviews",
                "models": [{"provider": "fake", "model": "gpt-fake"}],
                "scorers": [{"type": "contains"}],
                "concurrency": 2,
            },
        )
        while server.call("GET", f"/api/v1/evals/{run['id']}")["doneCells"] < 8:
            time.sleep(0.05)
        stored = server.call("GET", f"/api/v1/evals/{run['id']}/results", params={"limit": 500})["items"]
        server.kill()
        done_before = {r["caseKey"] for r in stored}
        assert 8 <= len(done_before) < CASES

        server.start()
        deadline = time.monotonic() + 120
        while (current := server.call("GET", f"/api/v1/evals/{run['id']}"))["status"] != "completed":
            assert current["status"] in ("queued", "running"), current
            assert time.monotonic() < deadline, current
            time.sleep(0.1)
        assert current["attempts"] >= 2 and current["doneCells"] == CASES
        assert current["summary"][0]["passed"] == CASES

        results = server.call("GET", f"/api/v1/evals/{run['id']}/results", params={"limit": 500})["items"]
        assert sorted(r["caseKey"] for r in results) == [f"r{i:02d}" for i in range(CASES)]
        # results stored before the kill are the same rows, untouched
        before = {r["caseKey"]: r["id"] for r in stored}
        assert all(r["id"] == before[r["caseKey"]] for r in results if r["caseKey"] in before)

        sent = Counter(
            m["content"] for r in fake.requests_to("/chat/completions") for m in r.body["messages"]
        )
        for key in done_before:
            assert sent[review(int(key[1:]))] == 1, f"case {key} was run again after the restart"
        # Only cells not stored at the kill may have been sent twice: those in flight (at most the concurrency,
        # 2) and those answered but still in the writer's batch (at most one flush interval's worth, again 2).
        assert sum(sent.values()) <= CASES + 2 * 2
