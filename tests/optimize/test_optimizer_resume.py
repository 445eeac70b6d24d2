"""Kill -9 the server in the middle of an optimization, start it again: the optimization finishes, no candidate
scored before the kill is scored again, and the stored call count never falls below the calls made nor
exceeds the budget. The server is a real ``promptops serve`` process; the model a real OpenAI-style server.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from tests.support.fake_llm_server import FakeLLMServer
from tests.support.resume_support import start_with_review_prompt
from tests.support.server_process import ServerProcess

REVIEWS = [f"review number {i} about the product" for i in range(12)]
BUDGET = 120


def render(template: str, review: str) -> str:
    return template.replace("{{ review }}", review)


def test_killed_server_resumes_the_optimization_without_rescoring_candidates(
    killable_server: ServerProcess,
) -> None:
    server = killable_server
    with FakeLLMServer() as fake:
        fake.script("openai", delay=0.05, times=100_000)
        cases = [
            {"id": f"r{i:02d}", "input": {"review": text}, "expected": "positive" if i % 2 else "negative"}
            for i, text in enumerate(REVIEWS)
        ]
        start_with_review_prompt(server, fake, "resume/opt", "resume/reviews", cases)
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
