"""Run bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from promptops.schemas import ApiModel, ApiOut, SmallJson, _json_size_limit


class RunOut(ApiOut):
    id: str
    prompt_id: str | None
    version_id: str | None
    provider: str
    provider_type: str
    model: str
    params: dict[str, Any]
    input: dict[str, Any]
    output: str | None
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str | None
    input_tokens: int
    output_tokens: int
    usage_estimated: bool
    cost_usd: float
    latency_ms: float
    ttft_ms: float | None
    status: str
    error_class: str | None
    error_message: str | None
    source: str
    cached: bool
    attempt: int
    trace_id: str | None
    actor_id: str | None
    created_at: datetime
    experiment_id: str | None = Field(default=None, description="The live experiment whose arm served it")
    experiment_arm: str | None = None


class RunPage(ApiOut):
    items: list[RunOut]
    next_cursor: str | None


# --- recording runs made elsewhere (POST /api/v1/runs/batch) -------------------------------------------------

MAX_INGEST_RUNS = 500
# Client-generated run ids (the SDK makes ULID-like ones): retries of a batch send the same ids.
CLIENT_RUN_ID = r"^run_[0-9A-Za-z]{10,36}$"


class RunIn(ApiModel):
    """One model call an application made itself (SDK traces), recorded with ``source="sdk"``."""

    id: str | None = Field(
        default=None, pattern=CLIENT_RUN_ID, description="Client-generated id: makes retries idempotent"
    )
    prompt: str | None = Field(default=None, max_length=200, description="Registry prompt name or prm_ id")
    version: int | None = Field(default=None, ge=1, le=1_000_000, description="With prompt: its version")
    version_id: str | None = Field(default=None, max_length=40, description="A ver_ id of this project")
    provider: str = Field(default="sdk", min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=200)
    params: SmallJson = Field(default_factory=dict)
    input: Annotated[dict[str, Any], _json_size_limit(524_288)] = Field(default_factory=dict)
    output: str | None = Field(default=None, max_length=500_000)
    tool_calls: list[SmallJson] | None = Field(default=None, max_length=128)
    finish_reason: str | None = Field(default=None, max_length=40)
    input_tokens: int = Field(default=0, ge=0, le=1_000_000_000)
    output_tokens: int = Field(default=0, ge=0, le=1_000_000_000)
    cost_usd: float | None = Field(default=None, ge=0, le=1_000_000)
    latency_ms: float = Field(default=0.0, ge=0, le=86_400_000)
    ttft_ms: float | None = Field(default=None, ge=0, le=86_400_000)
    status: Literal["ok", "error"] = "ok"
    error_class: str | None = Field(default=None, max_length=60)
    error_message: str | None = Field(default=None, max_length=2000)
    trace_id: str | None = Field(default=None, max_length=64)
    created_at: datetime | None = None
    experiment_id: str | None = Field(
        default=None, max_length=40, description="The live experiment whose arm served this run (with 'arm')"
    )
    arm: str | None = Field(default=None, max_length=63, description="That experiment's arm")

    @model_validator(mode="after")
    def _experiment_pair(self) -> RunIn:
        if (self.experiment_id is None) != (self.arm is None):
            raise ValueError("give 'experimentId' and 'arm' together")
        return self

    @field_validator("input")
    @classmethod
    def _input_shape(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            return value
        if set(value) == {"prompt"} and isinstance(value["prompt"], str):
            return value
        messages = value.get("messages")
        if (
            set(value) == {"messages"}
            and isinstance(messages, list)
            and all(isinstance(m, dict) for m in messages)
        ):
            return value
        raise ValueError('must be {"prompt": string} or {"messages": [object, ...]}')


class RunBatchIn(ApiModel):
    runs: list[RunIn] = Field(min_length=1, max_length=MAX_INGEST_RUNS)


class RunBatchOut(ApiOut):
    accepted: int
    duplicates: int
    run_ids: list[str]
