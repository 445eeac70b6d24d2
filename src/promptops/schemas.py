"""Shared Pydantic base: camelCase JSON on the wire, snake_case in Python, unknown fields rejected."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from promptops.validation import check_datetime, check_json


class ApiModel(BaseModel):
    """Every request body: each field passes :mod:`promptops.validation` (text, numbers, depth, dates)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    @field_validator("*")
    @classmethod
    def _within_limits(cls, value: Any) -> Any:
        return check_datetime(check_json(value))


class ApiOut(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


def _json_size_limit(limit: int) -> Any:
    def check(value: Any) -> Any:
        if value is not None and len(orjson.dumps(value)) > limit:
            raise ValueError(f"must encode to at most {limit} bytes of JSON")
        return value

    return AfterValidator(check)


SmallJson = Annotated[dict[str, Any], AfterValidator(check_json), _json_size_limit(65_536)]


class MessageIn(ApiModel):
    """One chat message of a prompt version or a model call (shared by the registry and providers)."""

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str = Field(max_length=200_000)
