"""``promptops search``, ``promptops prompts similar`` and ``promptops prompts duplicates`` against a live server."""

from __future__ import annotations

from tests.support.cli_support import Cli


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
