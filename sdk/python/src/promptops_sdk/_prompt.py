"""A fetched prompt version: render it locally, turn it into OpenAI messages, read its model config."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from promptops_sdk._template import Included, Renderer


@dataclass(frozen=True)
class Prompt:
    """One immutable registry version (or a ``fallback=`` stand-in) with the includes it needs to render.

    ``source`` says where it came from: ``"server"``, ``"disk"`` (the persisted fallback, the server was
    unreachable) or ``"fallback"`` (the ``fallback=`` argument of ``get_prompt``).

    Fetched with a ``unit`` while an experiment runs on the label: ``experiment`` and ``arm`` name the unit's
    (sticky) arm, ``unit`` the unit; the version is the arm's, and ``model_config["model"]`` the arm's model
    when the arm overrides it. Traces of the prompt carry the experiment and arm, so the run counts for it.
    """

    name: str
    kind: str
    template: str | None
    messages: tuple[Mapping[str, str], ...] | None
    variables: tuple[Mapping[str, Any], ...]
    model_config: Mapping[str, Any]
    version: int | None
    version_id: str | None
    prompt_id: str | None
    label: str | None
    includes: Mapping[str, Included] = field(default_factory=dict, repr=False)
    source: str = "server"
    max_depth: int = 5
    experiment: str | None = None
    arm: str | None = None
    unit: str | None = None

    @functools.cached_property
    def _renderer(self) -> Renderer:
        return Renderer(
            self.kind, self.template, self.messages, self.variables, self.includes, max_depth=self.max_depth
        )

    @property
    def is_fallback(self) -> bool:
        return self.source == "fallback"

    def render(self, **variables: Any) -> str | list[dict[str, str]]:
        """The rendered text (text prompt) or messages (chat prompt), exactly as the server renders them.

        Raises :class:`~promptops_sdk.TemplateError` with the server's ``code`` (``missing_variables``,
        ``invalid_variable_type``, ``template_render_error``, ...)."""
        text, messages = self._renderer.render(variables)
        return messages if messages is not None else text or ""

    def to_openai_messages(self, **variables: Any) -> list[dict[str, str]]:
        """Chat messages for an OpenAI-style API: a chat prompt's messages, a text prompt as one user message."""
        text, messages = self._renderer.render(variables)
        if messages is not None:
            return [{"role": m["role"], "content": m["content"]} for m in messages]
        return [{"role": "user", "content": text or ""}]

    # --- persistence (the disk cache) ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "template": self.template,
            "messages": [dict(m) for m in self.messages] if self.messages is not None else None,
            "variables": [dict(v) for v in self.variables],
            "modelConfig": dict(self.model_config),
            "version": self.version,
            "versionId": self.version_id,
            "promptId": self.prompt_id,
            "label": self.label,
            "maxDepth": self.max_depth,
            "experiment": self.experiment,
            "arm": self.arm,
            "unit": self.unit,
            "includes": {
                ref: {
                    "promptId": inc.prompt_id,
                    "name": inc.name,
                    "versionId": inc.version_id,
                    "version": inc.version,
                    "kind": inc.kind,
                    "template": inc.template,
                    "variables": [dict(v) for v in inc.variables],
                    "error": list(inc.error) if inc.error else None,
                }
                for ref, inc in self.includes.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "server") -> Prompt:
        includes = {
            ref: Included(
                ref=ref,
                prompt_id=inc.get("promptId") or "",
                name=inc.get("name") or "",
                version_id=inc.get("versionId") or "",
                version=int(inc.get("version") or 0),
                kind=inc.get("kind") or "text",
                template=inc.get("template") or "",
                variables=tuple(inc.get("variables") or ()),
                error=(inc["error"][0], inc["error"][1], dict(inc["error"][2])) if inc.get("error") else None,
            )
            for ref, inc in (data.get("includes") or {}).items()
        }
        messages = data.get("messages")
        return cls(
            name=data["name"],
            kind=data.get("kind") or "text",
            template=data.get("template"),
            messages=tuple(dict(m) for m in messages) if messages is not None else None,
            variables=tuple(data.get("variables") or ()),
            model_config=dict(data.get("modelConfig") or {}),
            version=data.get("version"),
            version_id=data.get("versionId"),
            prompt_id=data.get("promptId"),
            label=data.get("label"),
            includes=includes,
            source=source,
            max_depth=int(data.get("maxDepth") or 5),
            experiment=data.get("experiment"),
            arm=data.get("arm"),
            unit=data.get("unit"),
        )

    @classmethod
    def from_fallback(
        cls, name: str, fallback: str | Sequence[Mapping[str, str]], label: str | None
    ) -> Prompt:
        """A stand-in built from ``get_prompt(..., fallback=...)``: a text template or a list of messages."""
        if isinstance(fallback, str):
            return cls(name, "text", fallback, None, (), {}, None, None, None, label, source="fallback")
        messages = tuple({"role": m["role"], "content": m["content"]} for m in fallback)
        return cls(name, "chat", None, messages, (), {}, None, None, None, label, source="fallback")
