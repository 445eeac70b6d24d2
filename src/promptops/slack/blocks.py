"""Block Kit messages within Slack's limits (50 blocks a message, 3000 characters a section text)."""

from __future__ import annotations

from typing import Any

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10


def escape(text: str) -> str:
    """User text inside mrkdwn: Slack reads ``&``, ``<`` and ``>`` as markup (links, mentions) unless escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER_TEXT)}}


def section(markdown: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(markdown, MAX_SECTION_TEXT)}}


def code(text: str) -> dict[str, Any]:
    """A preformatted section: the text clipped so the fence still fits the section limit."""
    return section("```" + escape(clip(text.replace("```", "'''"), MAX_SECTION_TEXT - 40)) + "```")


def context(*parts: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": clip(p, MAX_SECTION_TEXT)} for p in parts[:MAX_CONTEXT_ELEMENTS]
        ],
    }


def link_button(label: str, url: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [{"type": "button", "text": {"type": "plain_text", "text": clip(label, 75)}, "url": url}],
    }


def action_buttons(*buttons: tuple[str, str, str, str | None]) -> dict[str, Any]:
    """An actions block of interactive buttons: (text, action_id, value, style ``primary``/``danger``/None)."""
    elements = []
    for text, action_id, value, style in buttons[:25]:
        button: dict[str, Any] = {
            "type": "button",
            "text": {"type": "plain_text", "text": clip(text, 75)},
            "action_id": clip(action_id, 255),
            "value": clip(value, 2000),
        }
        if style:
            button["style"] = style
        elements.append(button)
    return {"type": "actions", "elements": elements}


def message(text: str, blocks: list[dict[str, Any]], *, in_channel: bool = False) -> dict[str, Any]:
    """A slash-command answer or chat.postMessage body; blocks beyond Slack's limit are dropped."""
    return {
        "response_type": "in_channel" if in_channel else "ephemeral",
        "text": clip(text, MAX_SECTION_TEXT),
        "blocks": blocks[:MAX_BLOCKS],
    }


def reply(text: str) -> dict[str, Any]:
    """A plain ephemeral answer (only the Slack user who typed the command sees it)."""
    return message(text, [section(text)])
