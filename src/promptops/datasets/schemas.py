"""Request and response bodies of the datasets API (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from promptops.datasets.formats import MAX_CASES, MAX_KEY_LENGTH
from promptops.registry.refs import NAME_RE
from promptops.schemas import ApiModel, ApiOut

# The dataset naming rule, for OpenAPI (the service enforces it, with code invalid_dataset_name).
NAME_SCHEMA: dict[str, Any] = {"pattern": NAME_RE.pattern}

CaseObject = dict[str, Any]
"""A case as in a JSONL line: ``{"id", "input"|"vars", "expected", "tags", "metadata"}``, flat, or the OpenAI
evals, Langfuse or promptfoo shape (see :mod:`promptops.datasets.formats`)."""

CaseKey = Annotated[str, Field(min_length=1, max_length=MAX_KEY_LENGTH)]


class CreateDatasetIn(ApiModel):
    name: str = Field(min_length=1, max_length=200, json_schema_extra=NAME_SCHEMA)
    description: str = Field(default="", max_length=2000)
    cases: list[CaseObject] = Field(default_factory=list, max_length=MAX_CASES)
    commit_message: str = Field(default="", max_length=2000)


class AddOp(ApiModel):
    op: Literal["add"]
    cases: list[CaseObject] = Field(min_length=1, max_length=MAX_CASES)


class RemoveOp(ApiModel):
    op: Literal["remove"]
    keys: list[CaseKey] = Field(min_length=1, max_length=MAX_CASES)


class UpdateOp(ApiModel):
    """Replace the given fields of one case; fields left out keep their value (``expected: null`` clears)."""

    op: Literal["update"]
    key: CaseKey
    input: dict[str, Any] | str | list[Any] | None = Field(
        default=None, description="Variables, a text, or a list of chat messages (becomes 'messages')"
    )
    expected: Any = None
    tags: list[str] | str | None = None
    metadata: dict[str, Any] | None = None


Operation = Annotated[AddOp | RemoveOp | UpdateOp, Field(discriminator="op")]


class NewVersionIn(ApiModel):
    """Either the full case list of the new version (``cases``) or ``operations`` on the latest one."""

    cases: list[CaseObject] | None = Field(default=None, max_length=MAX_CASES)
    operations: list[Operation] | None = Field(default=None, min_length=1, max_length=1000)
    commit_message: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _one(self) -> NewVersionIn:
        if (self.cases is None) == (self.operations is None):
            raise ValueError("give exactly one of 'cases' (the full list) or 'operations' (a patch)")
        return self


class UpdateDatasetIn(ApiModel):
    description: str | None = Field(default=None, max_length=2000)
    archived: bool | None = None


class RunFilterIn(ApiModel):
    prompt_id: str | None = Field(default=None, max_length=200, description="Prompt id or name")
    version_id: str | None = Field(default=None, max_length=40)
    source: str | None = Field(default=None, max_length=20, description="playground, eval, gateway, sdk ...")
    status: Literal["ok", "error", "any"] = "ok"
    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None
    limit: int = Field(default=100, ge=1, le=10_000)


class FromRunsIn(ApiModel):
    name: str = Field(min_length=1, max_length=200, json_schema_extra=NAME_SCHEMA)
    run_ids: list[Annotated[str, Field(max_length=40)]] | None = Field(
        default=None, min_length=1, max_length=10_000
    )
    filter: RunFilterIn | None = None
    expected_from: Literal["output", "none"] = "output"
    description: str = Field(default="", max_length=2000)
    commit_message: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _one(self) -> FromRunsIn:
        if self.run_ids is not None and self.filter is not None:
            raise ValueError("give 'runIds' or 'filter', not both")
        return self


# --- responses ------------------------------------------------------------------------------------------------


class DatasetVersionOut(ApiOut):
    id: str
    dataset_id: str
    dataset_name: str
    version: int
    case_count: int
    content_hash: str
    commit_message: str
    source: str
    created_by: str | None
    created_at: datetime


class DatasetOut(ApiOut):
    id: str
    name: str
    description: str
    archived: bool
    latest_version: int
    latest: DatasetVersionOut | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class SavedOut(ApiOut):
    dataset: DatasetOut
    version: DatasetVersionOut
    created: bool = Field(description="False when the content equalled the latest version (nothing written)")


class FromRunsOut(SavedOut):
    runs: int = Field(description="Runs read")
    added: int = Field(description="Cases added")
    duplicates: int = Field(description="Runs whose input repeated a newer run's")
    existing: int = Field(description="Runs whose case the dataset already had")
    recovered: int = Field(description="Cases whose template variables were recovered from the prompt")


class CaseOut(ApiOut):
    id: str
    key: str
    position: int
    input: dict[str, Any] | str = Field(description="The template variables, or the text of a text input")
    expected: str | None
    tags: list[str]
    metadata: dict[str, Any]
    source_run_id: str | None


class CasePage(ApiOut):
    dataset_name: str
    version: int
    version_id: str
    case_count: int
    items: list[CaseOut]
    next_cursor: str | None


class DatasetPage(ApiOut):
    items: list[DatasetOut]
    next_cursor: str | None


class DatasetVersionPage(ApiOut):
    items: list[DatasetVersionOut]
    next_cursor: str | None
