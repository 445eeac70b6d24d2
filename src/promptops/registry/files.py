"""Prompt files: YAML front matter for everything but the template, the template as the body.

```
---
name: support/triage
description: Route a ticket
tags: [support]
variables:
  - {name: ticket, type: string}
modelConfig: {provider: local, model: gemma-3-270m}
labels: [production]
---
Classify this ticket: {{ ticket }}
```

A chat prompt keeps its ``messages`` list in the front matter and has an empty body. Used by
``promptops prompts push | pull`` and by the bundled examples, so prompts can live in git.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from promptops.errors import ValidationProblem

SUFFIX = ".prompt.md"
FRONT_MATTER_KEYS = {
    "name",
    "description",
    "tags",
    "kind",
    "messages",
    "variables",
    "modelConfig",
    "responseSchema",
    "metadata",
    "labels",
    "commitMessage",
}


def _split_front_matter(text: str, source: str) -> tuple[dict[str, Any], str]:
    """(front matter, body) with the body kept byte for byte, so pull -> push round-trips exactly."""
    text = text.lstrip("\ufeff")
    if not text.startswith("---\n") and not text.startswith("---\r\n"):
        raise ValidationProblem(
            f"{source}: a prompt file starts with '---' and YAML front matter", code="invalid_prompt_file"
        )
    first_break = text.index("\n") + 1
    end = text.find("\n---", first_break - 1)
    while end != -1 and text[end + 4 : end + 5] not in ("\n", "\r", ""):
        end = text.find("\n---", end + 4)
    if end == -1:
        raise ValidationProblem(
            f"{source}: the front matter has no closing '---' line", code="invalid_prompt_file"
        )
    header = text[first_break : end + 1]
    rest = text[end + 4 :]
    body = rest[2:] if rest.startswith("\r\n") else rest[1:] if rest.startswith("\n") else rest
    try:
        meta = yaml.safe_load(header) if header.strip() else {}
    except yaml.YAMLError as exc:
        raise ValidationProblem(
            f"{source}: front matter is not valid YAML: {exc}", code="invalid_prompt_file"
        )
    if not isinstance(meta, dict):
        raise ValidationProblem(f"{source}: front matter must be a YAML mapping", code="invalid_prompt_file")
    return meta, body


def parse_prompt_file(text: str, *, source: str = "<string>") -> dict[str, Any]:
    """A create-prompt body (camelCase keys) from a prompt file's text."""
    meta, content = _split_front_matter(text, source)
    unknown = sorted(set(meta) - FRONT_MATTER_KEYS)
    if unknown:
        raise ValidationProblem(
            f"{source}: unknown front matter keys: {', '.join(unknown)}", code="invalid_prompt_file"
        )
    if "name" not in meta:
        raise ValidationProblem(f"{source}: front matter needs a 'name'", code="invalid_prompt_file")
    kind = meta.get("kind") or ("chat" if "messages" in meta else "text")
    body: dict[str, Any] = {k: v for k, v in meta.items() if v is not None}
    body["kind"] = kind
    if kind == "text":
        body["template"] = content
    elif content.strip():
        raise ValidationProblem(
            f"{source}: a chat prompt keeps its messages in the front matter; the body must be empty",
            code="invalid_prompt_file",
        )
    return body


def dump_prompt_file(prompt: dict[str, Any], version: dict[str, Any]) -> str:
    """The text of a prompt file for one version (``prompt`` and ``version`` as the API returns them)."""
    meta: dict[str, Any] = {"name": prompt["name"]}
    if prompt.get("description"):
        meta["description"] = prompt["description"]
    if prompt.get("tags"):
        meta["tags"] = prompt["tags"]
    meta["kind"] = version["kind"]
    if version["kind"] == "chat":
        meta["messages"] = version["messages"]
    for key in ("variables", "modelConfig", "responseSchema", "metadata"):
        if version.get(key):
            meta[key] = version[key]
    header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    body = (version.get("template") or "") if version["kind"] == "text" else ""
    return f"---\n{header}---\n{body}"


def path_for(root: Path, name: str) -> Path:
    return root.joinpath(*name.split("/")).with_name(name.split("/")[-1] + SUFFIX)


def find_prompt_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob(f"*{SUFFIX}") if p.is_file())
