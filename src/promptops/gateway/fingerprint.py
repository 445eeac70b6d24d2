"""Fingerprints group calls of unregistered prompts: the normalised text of the system (or first) message.

Normalisation lowercases, folds white space and replaces every number with ``0``, so calls made from one
template with different ids, dates or amounts group together. The fingerprint is the first 16 hex digits of
the SHA-256 of the normalised text.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from promptops.providers.base import content_text

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SPACE = re.compile(r"\s+")
SAMPLE_CHARS = 500


def template_text(body: dict[str, Any]) -> str | None:
    """The text that identifies the prompt of an OpenAI or Anthropic request: the system prompt, else the
    first message, else the completion prompt."""
    system = body.get("system")
    if system:
        return content_text(system)
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        for message in messages:
            if isinstance(message, dict) and message.get("role") in ("system", "developer"):
                return content_text(message.get("content"))
        first = messages[0]
        return content_text(first.get("content")) if isinstance(first, dict) else None
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        return prompt[0]
    return None


def normalise(text: str) -> str:
    return _SPACE.sub(" ", _NUMBER.sub("0", text.lower())).strip()


def fingerprint(text: str | None) -> str | None:
    if not text or not text.strip():
        return None
    return hashlib.sha256(normalise(text).encode()).hexdigest()[:16]
