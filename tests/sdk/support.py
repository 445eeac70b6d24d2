"""Helpers of the SDK tests: clients pointed at a test server, prompts and runs through the REST API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promptops_sdk import PromptOps

from tests.support.app import ADMIN_KEY
from tests.support.server_process import ServerProcess


def client(server: ServerProcess, tmp_path: Path, **options: Any) -> PromptOps:
    options.setdefault("cache_dir", tmp_path / "sdk-cache")
    options.setdefault("flush_interval", 0.05)
    return PromptOps(server.url, ADMIN_KEY, **options)


def create_prompt(server: ServerProcess, **body: Any) -> dict[str, Any]:
    """Create a prompt (``name``, ``template`` or ``kind="chat"`` + ``messages``, ...): the Resolved answer."""
    return dict(server.call("POST", "/api/v1/prompts", json=body))


def sdk_runs(server: ServerProcess, **params: Any) -> list[dict[str, Any]]:
    return list(server.call("GET", "/api/v1/runs", params={"source": "sdk", "limit": 200, **params})["items"])
