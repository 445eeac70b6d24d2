"""``promptops search``, ``promptops prompts similar``, ``promptops prompts duplicates`` and ``promptops
search-embeddings`` against a live server."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.cli_support import Cli, admin_cli, running_server_with_fake
from tests.support.fake_llm_server import EMBEDDING_DIM, FakeLLMServer
from tests.support.provider_support import fake_fixture, shared_fake_fixture  # noqa: F401 (fixtures)


def test_search_similar_and_duplicates(cli: Cli) -> None:
    text = (
        "Write a polite email to a customer who asks for a refund of order {{ order }}; explain the policy."
    )
    cli.ok("prompts", "create", "cs/refund", "--template", text, "--var", "order")
    twin = (
        "Write a polite email to a customer asking for a refund of order {{ order }} and explain our policy."
    )
    created = cli.ok("prompts", "create", "cs/refund-copy", "--template", twin, "--var", "order")
    assert "similar to cs/refund@1" in created.stdout + created.stderr

    out = cli.ok("search", "refund email").stdout
    assert "cs/refund" in out and "Similarity" in out
    found = cli.json("search", "customer wants money back", "--mode", "semantic", "--json")
    assert found["items"][0]["name"] in {"cs/refund", "cs/refund-copy"}
    assert cli.json("search", "refund", "--mode", "text", "--tag", "nope", "--json")["items"] == []

    similar = cli.json("prompts", "similar", "cs/refund", "--json")
    assert similar["items"][0]["name"] == "cs/refund-copy" and similar["items"][0]["duplicate"] is True
    assert "cs/refund-copy" in cli.ok("prompts", "similar", "cs/refund").stdout

    clusters = cli.json("prompts", "duplicates", "--json")["clusters"]
    assert ["cs/refund", "cs/refund-copy"] in [sorted(p["name"] for p in c["prompts"]) for c in clusters]
    assert "cs/refund-copy@1" in cli.ok("prompts", "duplicates").stdout

    bad = cli.run("search", "refund", "--mode", "fuzzy")
    assert bad.exit_code != 0 and "mode" in (bad.stdout + bad.stderr)
    missing = cli.run("prompts", "similar", "no/such")
    assert missing.exit_code != 0 and "no/such" in (missing.stdout + missing.stderr)


def test_search_embeddings_commands(db_url: str, tmp_path: Path, fake: FakeLLMServer) -> None:
    """``promptops search-embeddings``: a provider model for the project's search, against a loopback server
    speaking the OpenAI embeddings API; searches by meaning use it once the versions are embedded again."""
    with running_server_with_fake(db_url, tmp_path, fake) as live:
        cli = admin_cli(live.url, tmp_path)
        shown = cli.ok("search-embeddings", "show").stdout
        assert "the server's offline model" in shown
        bad = cli.run("search-embeddings", "set", "--connection", "nowhere", "--model", "m")
        assert bad.exit_code != 0 and "nowhere" in (bad.stdout + bad.stderr)

        data = cli.json("search-embeddings", "set", "-c", "fake", "-m", "text-embedding-3-small", "--json")
        assert (data["source"], data["connection"], data["dimensions"]) == ("provider", "fake", EMBEDDING_DIM)
        deadline = time.monotonic() + 30
        while cli.json("search-embeddings", "show", "--json")["documentsWaiting"]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert "fake/text-embedding-3-small" in cli.ok("search-embeddings", "show").stdout
        cli.ok("prompts", "create", "cs/refund", "--template", "Write a refund email to the customer.")
        found = cli.json("search", "refund email customer", "--mode", "semantic", "--json")
        assert found["items"][0]["name"] == "cs/refund" and found["warnings"] == []
        assert any(r.path.endswith("/embeddings") for r in fake.requests)

        assert "the server's offline model" in cli.ok("search-embeddings", "reset").stdout
