"""Bodies of the provider, model and playground endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from promptops.schemas import ApiModel, ApiOut, MessageIn, SmallJson
from promptops.validation import Ref

CONNECTION_NAME = r"^[a-z][a-z0-9_-]{0,63}$"


class ConnectionIn(ApiModel):
    name: str = Field(min_length=1, max_length=64, pattern=CONNECTION_NAME)
    # "local" is built in and configured by the operator only: a model_path option would let a project
    # admin make the server open any file on its disk.
    type: Literal["openai", "azure_openai", "anthropic", "huggingface"]
    base_url: str | None = Field(default=None, max_length=500)
    api_key: str | None = Field(default=None, min_length=1, max_length=4000)
    api_version: str | None = Field(default=None, max_length=40)
    default_params: SmallJson = Field(default_factory=dict)
    allowed_models: list[str] = Field(default_factory=list, max_length=200)
    options: SmallJson = Field(default_factory=dict)
    max_concurrency: int = Field(default=8, ge=1, le=1000)
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    max_retries: int = Field(default=2, ge=0, le=10)

    @model_validator(mode="after")
    def _shape(self) -> ConnectionIn:
        if self.name == "local":
            raise ValueError("'local' is the built-in embedded model connection; choose another name")
        if self.name == "echo":
            raise ValueError(
                "'echo' is the built-in echo provider (answers with the prompt); choose another name"
            )
        if self.type == "azure_openai" and (not self.base_url or not self.api_version):
            raise ValueError(
                "an azure_openai connection needs baseUrl (the resource endpoint) and apiVersion"
            )
        if self.type == "huggingface" and not self.base_url:
            raise ValueError("a huggingface connection needs baseUrl (the endpoint or TGI server)")
        return self


class ConnectionUpdate(ApiModel):
    base_url: str | None = Field(default=None, max_length=500)
    api_key: str | None = Field(default=None, min_length=1, max_length=4000)
    api_version: str | None = Field(default=None, max_length=40)
    default_params: SmallJson | None = None
    allowed_models: list[str] | None = Field(default=None, max_length=200)
    options: SmallJson | None = None
    max_concurrency: int | None = Field(default=None, ge=1, le=1000)
    timeout_seconds: float | None = Field(default=None, gt=0, le=600)
    max_retries: int | None = Field(default=None, ge=0, le=10)


class ConnectionOut(ApiOut):
    id: str | None
    name: str
    type: str
    base_url: str | None
    has_api_key: bool
    api_key_hint: str | None = Field(description="Last 4 characters of the key, for recognising it")
    api_version: str | None
    default_params: dict[str, Any]
    allowed_models: list[str]
    options: dict[str, Any]
    max_concurrency: int
    timeout_seconds: float
    max_retries: int
    built_in: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ModelOut(ApiOut):
    provider: str
    model: str
    input_per_1m: float
    output_per_1m: float
    context_window: int | None
    source: Literal["catalog", "project"]


class PriceIn(ApiModel):
    provider: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=200)
    input_per_1m: float = Field(ge=0, le=10_000)
    output_per_1m: float = Field(ge=0, le=10_000)
    context_window: int | None = Field(default=None, ge=1, le=100_000_000)


class ModelTarget(ApiModel):
    """One model to call: ``provider`` is a connection name (``local`` is built in)."""

    provider: str = Field(default="local", min_length=1, max_length=64)
    model: str = Field(default="gemma-3-270m", min_length=1, max_length=200)
    params: SmallJson = Field(default_factory=dict)


class CacheOptions(ApiModel):
    ttl_seconds: int = Field(default=3600, ge=1, le=30 * 24 * 3600)


class PlaygroundIn(ApiModel):
    prompt: Ref | None = Field(default=None, max_length=300, description="name, name@label or name@3")
    template: str | None = Field(default=None, max_length=200_000, description="A raw text template")
    messages: list[MessageIn] | None = Field(
        default=None, min_length=1, max_length=200, description="Raw chat messages [{role, content}]"
    )
    variables: dict[str, Any] = Field(default_factory=dict, max_length=200)
    models: list[ModelTarget] = Field(default_factory=list, max_length=8)
    fallbacks: list[ModelTarget] = Field(default_factory=list, max_length=4)
    # applied over the params of every model called, the prompt's own model (its modelConfig) included
    params: dict[str, Any] = Field(default_factory=dict, max_length=20)
    stream: bool = False
    cache: CacheOptions | None = None
    trace_id: str | None = Field(default=None, max_length=64)
    source: Literal["playground", "sdk"] = "playground"

    @model_validator(mode="after")
    def _one_input(self) -> PlaygroundIn:
        given = [x for x in (self.prompt, self.template, self.messages) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'prompt' (a registry reference), 'template' or 'messages'")
        return self


class UsageOut(ApiOut):
    input_tokens: int
    output_tokens: int
    estimated: bool


class CallResultOut(ApiOut):
    index: int
    provider: str
    model: str
    status: Literal["ok", "error"]
    text: str | None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    # the parameters the call was made with (defaults included), and whether a limit cut the answer short
    params: dict[str, Any] = Field(default_factory=dict)
    truncated: bool = False
    notice: str | None = None
    usage: UsageOut | None
    cost_usd: float
    latency_ms: float
    ttft_ms: float | None = None
    cached: bool = False
    run_id: str
    fallback_from: str | None = None
    error: dict[str, Any] | None = None


class PlaygroundOut(ApiOut):
    kind: Literal["text", "chat"]
    rendered: dict[str, Any]
    prompt_id: str | None
    version_id: str | None
    results: list[CallResultOut]
