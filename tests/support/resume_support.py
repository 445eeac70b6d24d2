"""What the kill -9 resume tests of both job kinds (tests/evals/test_eval_resume.py,
tests/optimize/test_optimizer_resume.py) set up on a real ``promptops serve``: a provider connection ``fake`` to
the fake OpenAI-style server, a prompt whose template is the case's review, and a dataset of the cases.

Import it as ``jobs.resume_support`` (``tests`` is on the pythonpath).
"""

from __future__ import annotations

from typing import Any

from tests.support.fake_llm_server import DEFAULT_KEY, FakeLLMServer
from tests.support.server_process import ServerProcess


def start_with_review_prompt(
    server: ServerProcess, fake: FakeLLMServer, prompt: str, dataset: str, cases: list[dict[str, Any]]
) -> None:
    """Start ``server`` and create the connection, the prompt ``{{ review }}`` and the dataset ``cases``."""
    server.start()
    server.call(
        "POST",
        "/api/v1/providers",
        json={"name": "fake", "type": "openai", "baseUrl": fake.url + "/v1", "apiKey": DEFAULT_KEY},
    )
    server.call(
        "POST",
        "/api/v1/prompts",
        json={"name": prompt, "template": "{{ review }}", "variables": [{"name": "review"}]},
    )
    server.call("POST", "/api/v1/datasets", json={"name": dataset, "cases": cases})
