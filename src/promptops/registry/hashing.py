"""Content hash of a prompt version: what changes behaviour (not commit message or metadata).

Shared by the server and the CLI, so ``promptops prompts push`` can tell an unchanged file from a new version.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson


def content_hash(
    kind: str,
    template: str | None,
    messages: list[dict[str, Any]] | None,
    variables: list[dict[str, Any]],
    model_config: dict[str, Any],
    response_schema: dict[str, Any] | None,
) -> str:
    canonical = {
        "kind": kind,
        "template": template,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages] if messages else None,
        "variables": variables,
        "modelConfig": model_config,
        "responseSchema": response_schema,
    }
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()
