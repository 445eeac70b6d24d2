"""Request and response bodies of the registry API (camelCase on the wire)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema, model_validator

from promptops.schemas import ApiModel, ApiOut, MessageIn, SmallJson
from promptops.validation import DbInt

Kind = Literal["text", "chat"]
Source = Literal["manual", "generated", "refined", "forked", "imported"]
VarType = Literal["string", "number", "integer", "boolean", "array", "object", "any"]
# Tags and label names: the service checks them (422 invalid_tag / invalid_label naming the value); the schema
# states the same rules so generated clients and forms know them.
TagText = Annotated[str, WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"})]
LabelText = Annotated[
    str,
    WithJsonSchema({"type": "string", "pattern": r"^[a-z][a-z0-9_-]{0,62}$", "not": {"const": "latest"}}),
]


class VariableIn(ApiModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: VarType = "string"
    required: bool = True
    default: Any = None
    description: str = Field(default="", max_length=1000)


class ModelConfigIn(ApiModel):
    provider: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=200)
    params: SmallJson = Field(default_factory=dict)


class VersionFields(ApiModel):
    kind: Kind = "text"
    template: str | None = Field(default=None, max_length=200_000)
    messages: list[MessageIn] | None = Field(default=None, max_length=200)
    variables: list[VariableIn] = Field(default_factory=list, max_length=100)
    model_config_: ModelConfigIn = Field(default_factory=ModelConfigIn, alias="modelConfig")
    response_schema: SmallJson | None = None
    metadata: SmallJson = Field(default_factory=dict)
    commit_message: str = Field(default="", max_length=2000)
    source: Source = "manual"
    parent_version_id: str | None = Field(default=None, max_length=40)

    @model_validator(mode="after")
    def _shape(self) -> VersionFields:
        if self.kind == "text":
            if self.template is None:
                raise ValueError("a text prompt needs 'template'")
            if self.messages is not None:
                raise ValueError("a text prompt takes 'template', not 'messages'")
        else:
            if not self.messages:
                raise ValueError("a chat prompt needs a non-empty 'messages' list")
            if self.template is not None:
                raise ValueError("a chat prompt takes 'messages', not 'template'")
        names = [v.name for v in self.variables]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variables declared twice: {', '.join(dupes)}")
        if self.source == "forked":
            raise ValueError("source 'forked' is set by the fork endpoint")
        return self


class CreateVersionIn(VersionFields):
    labels: list[LabelText] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _labels(self) -> CreateVersionIn:
        validate_label_list(self.labels)
        return self


class CreatePromptIn(CreateVersionIn):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    tags: list[TagText] = Field(default_factory=list, max_length=32)


class PushPromptIn(CreatePromptIn):
    """A prompt file's content for ``PUT /api/v1/prompts/{name}``; ``name`` may be left out (the path names it)."""

    name: str = Field(default="", max_length=200)


class UpdatePromptIn(ApiModel):
    description: str | None = Field(default=None, max_length=2000)
    tags: list[TagText] | None = Field(default=None, max_length=32)
    archived: bool | None = None


class SetLabelIn(ApiModel):
    version: DbInt | None = None
    version_id: str | None = Field(default=None, max_length=40)
    reason: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _one(self) -> SetLabelIn:
        if (self.version is None) == (self.version_id is None):
            raise ValueError("give exactly one of 'version' or 'versionId'")
        return self


class RollbackIn(ApiModel):
    version: DbInt | None = None
    reason: str = Field(default="", max_length=2000)
    approver: str | None = Field(default=None, max_length=254)


class RenderIn(ApiModel):
    variables: dict[str, Any] = Field(default_factory=dict, max_length=200)
    label: str | None = Field(default=None, max_length=63)
    version: DbInt | None = None


class PreviewIn(CreateVersionIn):
    """An unsaved version body and the variables to render it with (the editor's live preview)."""

    render_variables: dict[str, Any] = Field(default_factory=dict, max_length=200)


class ForkIn(ApiModel):
    new_name: str = Field(min_length=1, max_length=200)
    label: str | None = Field(default=None, max_length=63)
    version: DbInt | None = None
    description: str | None = Field(default=None, max_length=2000)
    tags: list[TagText] | None = Field(default=None, max_length=32)
    commit_message: str = Field(default="", max_length=2000)


LABEL_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def label_name_problem(label: str) -> str | None:
    """Why ``label`` cannot be set, or None if it can."""
    if not LABEL_RE.match(label):
        return f"Invalid label {label!r}: 1-63 lowercase letters, digits, '-' or '_', starting with a letter"
    if label == "latest":
        return "'latest' is derived (the newest version) and cannot be set"
    return None


def validate_label_list(labels: list[str]) -> None:
    for label in labels:
        problem = label_name_problem(label)
        if problem:
            raise ValueError(problem)


# --- responses ------------------------------------------------------------------------------------------------


class LintFindingOut(ApiOut):
    rule: str
    name: str
    severity: Literal["error", "warning", "info"]
    message: str
    message_index: int | None = None
    line: int | None = None
    hint: str = ""


class PromptOut(ApiOut):
    id: str
    name: str
    description: str
    tags: list[str]
    archived: bool
    latest_version: int
    labels: dict[str, int]
    created_at: datetime
    updated_at: datetime


class VersionOut(ApiOut):
    id: str
    prompt_id: str
    prompt_name: str
    version: int
    kind: Kind
    template: str | None
    messages: list[dict[str, Any]] | None
    variables: list[dict[str, Any]]
    model_config_: dict[str, Any] = Field(alias="modelConfig")
    response_schema: dict[str, Any] | None
    metadata: dict[str, Any]
    commit_message: str
    parent_version_id: str | None
    source: str
    content_hash: str
    labels: list[str]
    warnings: list[str]
    lint: list[LintFindingOut] = Field(
        default_factory=list, description="Save-time lint findings (warnings holds them as text)"
    )
    created_by: str | None
    created_at: datetime


class ResolvedOut(ApiOut):
    prompt: PromptOut
    version: VersionOut
    resolved_by: str


class NearDuplicateOut(ApiOut):
    prompt_id: str
    name: str
    version: int
    version_id: str
    similarity: float = Field(description="Cosine similarity of the two versions' text vectors (0-1)")
    duplicate_score: float = Field(
        description="0.4 x similarity + 0.6 x the share of stemmed words the texts have in common (0-1)"
    )


class ApprovalRequestRef(ApiOut):
    """An approval request a save opened instead of moving a gated label (see /api/v1/approvals)."""

    id: str
    label: str
    version: int
    required: int
    status: str


class PromptSavedOut(ResolvedOut):
    pending_approvals: list[ApprovalRequestRef] = Field(
        default_factory=list,
        description="Labels asked for (``labels``) that the project gates with approvals: each became an "
        "approval request instead of moving",
    )
    near_duplicates: list[NearDuplicateOut] = Field(
        default_factory=list,
        description="Other prompts of the project whose latest version is probably the same instruction "
        "(duplicate score >= 0.26), most alike first: a hint that the prompt may already exist; the save is "
        "not blocked",
    )


class PushOut(ApiOut):
    action: Literal["created", "versionCreated", "updated", "unchanged"] = Field(
        description="created: a new prompt; versionCreated: the content differed from the latest version; "
        "updated: only description/tags changed; unchanged: nothing to do"
    )
    dry_run: bool
    changed: list[str] = Field(description="Prompt details the push changes: description, tags")
    name: str
    version: int = Field(description="The version current after the push (new or existing)")
    resolved: ResolvedOut | None = Field(
        description="The prompt and its current version after the push (null on a dry run)"
    )
    pending_approvals: list[ApprovalRequestRef] = Field(
        default_factory=list,
        description="Labels of the file that the project gates with approvals: each became an approval request",
    )


class PromptPage(ApiOut):
    items: list[PromptOut]
    next_cursor: str | None


class VersionPage(ApiOut):
    items: list[VersionOut]
    next_cursor: str | None


class LabelOut(ApiOut):
    name: str
    version: int
    version_id: str
    deployable: bool
    updated_at: datetime
    updated_by: str | None


class LabelEventOut(ApiOut):
    id: str
    label: str
    action: str
    from_version: int | None
    to_version: int | None
    from_version_id: str | None
    to_version_id: str | None
    reason: str
    actor_id: str | None
    created_at: datetime


class LabelMoveOut(ApiOut):
    prompt_id: str
    name: str
    label: str
    version: int
    version_id: str
    previous_version: int | None
    previous_version_id: str | None
    deployed: bool


class RenderedVersionRef(ApiOut):
    prompt_id: str
    name: str
    version_id: str
    version: int


class RenderOut(ApiOut):
    kind: Kind
    text: str | None
    messages: list[dict[str, str]] | None
    prompt_id: str
    version_id: str
    version: int
    versions_used: list[RenderedVersionRef]


class PreviewOut(ApiOut):
    kind: str
    text: str | None
    messages: list[dict[str, Any]] | None
    versions_used: list[RenderedVersionRef] = Field(description="Prompts pulled in by {% include %}")


class DiffOut(ApiOut):
    from_ref: str = Field(alias="from")
    to_ref: str = Field(alias="to")
    from_version_id: str
    to_version_id: str
    identical: bool
    kind_changed: bool
    template: str
    variables: list[dict[str, Any]]
    model_config_: list[dict[str, Any]] = Field(alias="modelConfig")
    response_schema: list[dict[str, Any]]
    metadata: list[dict[str, Any]]


# --- lint -----------------------------------------------------------------------------------------------------


class LintIn(CreateVersionIn):
    """A prompt body to lint without saving: a create-version body, optionally with a prompt file's keys."""

    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    tags: list[TagText] | None = Field(default=None, max_length=32)
    output_labels: list[str] | None = Field(
        default=None, max_length=100, description="Exact labels a scorer expects (overrides metadata.labels)"
    )


class LineageLinkOut(ApiOut):
    prompt: str = Field(description="The prompt that holds the forked version")
    version: int
    from_prompt: str = Field(description="The prompt it was forked from")
    from_version: int
    created_at: datetime


class LineageOut(ApiOut):
    name: str
    forked_from: list[LineageLinkOut] = Field(
        description="Versions of this prompt copied from another prompt"
    )
    forks: list[LineageLinkOut] = Field(description="Prompts forked from a version of this one, newest first")


class LintRuleOut(ApiOut):
    id: str
    name: str
    default_severity: Literal["error", "warning", "info"]
    severity: Literal["error", "warning", "info"] = Field(description="With this project's overrides")
    enabled: bool = Field(description="False when this project's lint settings disable it")
    catches: str
    fix: str


class LintSummary(ApiOut):
    error: int
    warning: int
    info: int


class LintOut(ApiOut):
    name: str | None = None
    version: int | None = None
    findings: list[LintFindingOut]
    summary: LintSummary
    block_on: str
    blocked_labels: list[str] = Field(
        description="Protected labels (lint.blockOnLabels) this prompt could not be moved to right now"
    )
