"""Pure functions that diff two prompt versions: text for templates, structure for everything else."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "diff_versions",
    "messages_as_text",
    "structured_diff",
    "unified_text_diff",
    "variables_diff",
]

_NO_NEWLINE = "\\ No newline at end of file\n"


def messages_as_text(messages: list[dict[str, str]] | None) -> str:
    """Chat messages as stable text (``"[role]\\ncontent\\n"`` blocks separated by a blank line)."""
    if not messages:
        return ""
    return "\n".join(f"[{message.get('role', '')}]\n{message.get('content', '')}\n" for message in messages)


def unified_text_diff(a: str, b: str, from_name: str, to_name: str, context: int = 3) -> str:
    """A unified diff of two texts with ``context`` lines of context; ``""`` when they are equal."""
    if a == b:
        return ""
    out: list[str] = []
    for line in difflib.unified_diff(
        a.splitlines(keepends=True),
        b.splitlines(keepends=True),
        fromfile=from_name,
        tofile=to_name,
        n=context,
    ):
        out.append(line)
        if not line.endswith("\n"):
            # Without this the next diff line would be glued onto a final line that lacks a newline,
            # and a change to just the trailing newline would be invisible.
            out.append("\n" + _NO_NEWLINE)
    return "".join(out)


def structured_diff(a: Any, b: Any, path: str = "") -> list[dict[str, Any]]:
    """Changes that turn ``a`` into ``b``, recursing into dicts (keys sorted) and lists (by index).

    Each change is ``{"path", "op": "changed", "from", "to"}``, ``{"path", "op": "added", "to"}`` or
    ``{"path", "op": "removed", "from"}``; paths look like ``params.temperature`` or ``items[2]``.
    """
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        changes: list[dict[str, Any]] = []
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in b:
                changes.append({"path": sub, "op": "removed", "from": a[key]})
            elif key not in a:
                changes.append({"path": sub, "op": "added", "to": b[key]})
            else:
                changes.extend(structured_diff(a[key], b[key], sub))
        return changes
    if _is_list(a) and _is_list(b):
        changes = []
        for index in range(max(len(a), len(b))):
            sub = f"{path}[{index}]"
            if index >= len(b):
                changes.append({"path": sub, "op": "removed", "from": a[index]})
            elif index >= len(a):
                changes.append({"path": sub, "op": "added", "to": b[index]})
            else:
                changes.extend(structured_diff(a[index], b[index], sub))
        return changes
    if _same_scalar(a, b):
        return []
    return [{"path": path, "op": "changed", "from": a, "to": b}]


def variables_diff(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Changes between two variable declaration lists, matched by ``name``.

    Added or removed variables appear whole (``path`` is the name); changed fields of a variable appear as
    ``name.type``, ``name.default`` and so on. Variables are reported in name order.
    """
    before = _by_name(a or [])
    after = _by_name(b or [])
    changes: list[dict[str, Any]] = []
    for name in sorted(set(before) | set(after)):
        if name not in after:
            changes.append({"path": name, "op": "removed", "from": before[name]})
        elif name not in before:
            changes.append({"path": name, "op": "added", "to": after[name]})
        else:
            changes.extend(structured_diff(before[name], after[name], name))
    return changes


def diff_versions(a: Mapping[str, Any], b: Mapping[str, Any], from_name: str, to_name: str) -> dict[str, Any]:
    """Diff two versions given as mappings with ``kind``, ``template``, ``messages``, ``variables``,
    ``modelConfig``, ``responseSchema`` and ``metadata``.

    Templates are compared as text (chat messages via :func:`messages_as_text`), everything else
    structurally. ``identical`` is true when no part differs.
    """
    result: dict[str, Any] = {
        "kindChanged": a.get("kind") != b.get("kind"),
        "template": unified_text_diff(_template_text(a), _template_text(b), from_name, to_name),
        "variables": variables_diff(a.get("variables") or [], b.get("variables") or []),
        # A missing config or metadata object means the same as an empty one.
        "modelConfig": structured_diff(a.get("modelConfig") or {}, b.get("modelConfig") or {}),
        "responseSchema": structured_diff(a.get("responseSchema"), b.get("responseSchema")),
        "metadata": structured_diff(a.get("metadata") or {}, b.get("metadata") or {}),
    }
    result["identical"] = not any(result.values())
    return result


def _template_text(version: Mapping[str, Any]) -> str:
    if version.get("kind") == "chat":
        return messages_as_text(version.get("messages"))
    return version.get("template") or ""


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _same_scalar(a: Any, b: Any) -> bool:
    # True == 1 in Python, but a flag turning into a number is a real change in JSON.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _by_name(variables: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    named: dict[str, dict[str, Any]] = {}
    for index, variable in enumerate(variables):
        # A declaration without a name cannot be matched; keep it distinguishable rather than dropping it.
        name = variable.get("name") if isinstance(variable, Mapping) else None
        named[str(name) if name is not None else f"#{index}"] = variable
    return named
