"""Run bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from promptops.schemas import ApiOut


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


class RunPage(ApiOut):
    items: list[RunOut]
    next_cursor: str | None
