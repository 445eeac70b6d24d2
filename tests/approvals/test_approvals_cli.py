"""``promptops approvals`` (and a gated ``promptops prompts label``) against a live server, both databases."""

from __future__ import annotations

import httpx

from tests.support.app import ADMIN_KEY
from tests.support.cli_support import Cli, LiveServer

PROMPT = "appr/cli"


def test_approval_commands(server: LiveServer, cli: Cli) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=server.url, headers=admin, timeout=30) as http:
        keys = {}
        for who in ("author", "reviewer"):
            r = http.post("/api/v1/api-keys", json={"name": who, "role": "PromptEngineer"})
            assert r.status_code == 201, r.text
            keys[who] = r.json()["key"]
        r = http.post(
            "/api/v1/prompts", json={"name": PROMPT, "template": "v1 {{ x }}", "labels": ["production"]}
        )
        assert r.status_code == 201, r.text
        r = http.patch(
            "/api/v1/projects/current",
            json={"settings": {"approvals": {"labels": {"production": {"required": 1}}}}},
        )
        assert r.status_code == 200, r.text

    def as_(who: str) -> dict[str, str | None]:
        return {"PROMPTOPS_URL": server.url, "PROMPTOPS_API_KEY": keys[who]}

    http_author = {"Authorization": f"Bearer {keys['author']}"}
    with httpx.Client(base_url=server.url, headers=http_author, timeout=30) as http:
        r = http.post(f"/api/v1/prompts/{PROMPT}/versions", json={"template": "v2 {{ x }} please"})
        assert r.status_code == 201, r.text

    asked = cli.ok("prompts", "label", PROMPT, "production", "2", env=as_("author")).stdout
    assert "needs 1 approval(s)" in asked and "apr_" in asked
    listed = cli.json("approvals", "list")
    assert [(i["promptName"], i["version"], i["status"]) for i in listed["items"]] == [(PROMPT, 2, "open")]
    rid = listed["items"][0]["id"]
    table = cli.ok("approvals", "list").stdout
    assert rid in table and "v1 → v2" in table and "0/1" in table

    shown = cli.ok("approvals", "show", rid, env=as_("reviewer")).stdout
    assert "You may decide" in shown and "yes" in shown and "+v2 {{ x }} please" in shown
    assert "No completed evaluation" in shown

    refused = cli.fails("approvals", "approve", rid, env=as_("author"))
    assert "four-eyes" in refused.stdout + refused.stderr
    cli.fails("approvals", "reject", rid, code=2, env=as_("reviewer"))  # --comment is required
    done = cli.ok("approvals", "approve", rid, "-m", "fine", env=as_("reviewer")).stdout
    assert "applied (1/1 approvals)" in done and "Moved appr/cli@production: v1 → v2" in done

    # the rollback fast path (default): back to v1, which held the label before, at once
    rolled = cli.json("prompts", "rollback", PROMPT, "--to", "1", env=as_("author"))
    assert rolled["version"] == 1 and rolled["previousVersion"] == 2
    # an admin override of a new request, with the note
    asked = cli.json("prompts", "label", PROMPT, "production", "2", env=as_("author"))
    assert asked["status"] == "open"
    cli.fails("approvals", "override", asked["id"], "--note", "me", env=as_("author"))
    out = cli.ok("approvals", "override", asked["id"], "--note", "incident 7").stdout
    assert "overridden" in out and "v1 → v2" in out
    assert cli.json("approvals", "list", "--all")["items"][0]["status"] == "overridden"
