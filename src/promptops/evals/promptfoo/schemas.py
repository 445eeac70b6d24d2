"""Request and response bodies of ``POST /api/v1/evals/import/promptfoo`` (camelCase on the wire)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from promptops.evals.schemas import EvalRunOut
from promptops.providers.schemas import ModelTarget
from promptops.schemas import ApiModel, ApiOut

MAX_BUNDLE_FILES = 500
MAX_BUNDLE_BYTES = 20 * 1024 * 1024  # config and files together (the upload body limit)


class PromptfooImportIn(ApiModel):
    """A promptfoo config and the files it names, read by the client (the server reads no files of its own).

    ``files`` maps each referenced file's path, relative to the config's folder (no absolute path, no
    ``..``), to its text. The evaluation options (``name``, ``concurrency``, ``tags``, ``limit``,
    ``cacheTtlSeconds``) apply when ``run`` starts one."""

    config: str = Field(min_length=1, max_length=5 * 1024 * 1024)
    config_name: str = Field(default="promptfooconfig.yaml", min_length=1, max_length=200)
    files: dict[str, str] = Field(default_factory=dict, max_length=MAX_BUNDLE_FILES)
    prefix: str = Field(default="promptfoo", min_length=1, max_length=150)
    provider_map: dict[str, str] = Field(default_factory=dict, max_length=50)
    # grades llm-rubric assertions that name no provider (promptfoo's --grader), e.g. openai:gpt-4.1-mini
    grader: str | None = Field(default=None, min_length=1, max_length=200)
    # replaces the config's providers (the CLI's -m PROVIDER/MODEL)
    models: list[ModelTarget] | None = Field(default=None, max_length=10)
    dry_run: bool = False
    run: bool = True
    name: str | None = Field(default=None, max_length=200)
    concurrency: int | None = Field(default=None, ge=1, le=64)
    tags: list[str] = Field(default_factory=list, max_length=20)
    limit: int | None = Field(default=None, ge=1, le=100_000)
    cache_ttl_seconds: int | None = Field(default=None, ge=1, le=30 * 24 * 3600)


class FindingOut(ApiOut):
    where: str
    message: str


class ImportedPromptOut(ApiOut):
    name: str
    label: str
    kind: Literal["text", "chat"]
    source: str
    # create: a new prompt; version: a new version of it; unchanged: its latest version has this content
    action: Literal["create", "version", "unchanged"]
    version: int | None  # the version number (a dry run: the number it would get)
    version_id: str | None  # None in a dry run unless unchanged
    variables: list[dict[str, Any]]


class ImportedDatasetOut(ApiOut):
    name: str
    action: Literal["create", "version", "unchanged"]
    version: int | None
    version_id: str | None
    case_count: int


class ImportedModelOut(ApiOut):
    provider: str
    model: str
    params: dict[str, Any]
    source: str  # the promptfoo provider entry (providers[0]) or "models[0]" for an override


class PromptfooImportOut(ApiOut):
    dry_run: bool
    description: str
    prompts: list[ImportedPromptOut]
    dataset: ImportedDatasetOut
    models: list[ImportedModelOut]
    scorers: list[dict[str, Any]]
    skipped: list[FindingOut]
    warnings: list[FindingOut]
    # the POST /api/v1/evals body of the evaluation (started unless run was false)
    evaluation: dict[str, Any]
    eval_run: EvalRunOut | None = None
