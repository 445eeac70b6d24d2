"""The provider layer's common language: one request/response shape for every wire protocol.

Adapters (openai, anthropic, huggingface, local) translate a :class:`ModelRequest` into their provider's
wire format and back, raise :class:`ProviderError` subclasses for failures, and report token usage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from promptops.errors import ProblemError

Role = Literal["system", "user", "assistant", "tool", "developer"]


@dataclass(frozen=True)
class ModelRequest:
    """One model call. Exactly one of ``prompt`` (plain completion) or ``messages`` (chat) is set."""

    model: str
    prompt: str | None = None
    messages: list[dict[str, Any]] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None  # OpenAI-style function tool definitions
    tool_choice: Any = None
    response_schema: dict[str, Any] | None = None  # JSON schema the output must follow, where supported
    extra: dict[str, Any] = field(default_factory=dict)  # provider-specific parameters passed through

    @property
    def is_chat(self) -> bool:
        return self.messages is not None


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    reported: bool = True  # False when we counted tokens ourselves because the provider reported none


@dataclass(frozen=True)
class ModelResponse:
    text: str
    usage: Usage
    model: str  # the model name the provider says answered
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class StreamEvent:
    """A piece of a streamed answer: text deltas, then one final event with ``done=True``."""

    delta: str = ""
    done: bool = False
    usage: Usage | None = None
    model: str | None = None
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class Provider(Protocol):
    """What every adapter implements."""

    async def complete(self, request: ModelRequest) -> ModelResponse: ...

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...


# --- errors: each maps to one stable problem code ----------------------------------------------------------------


class ProviderError(ProblemError):
    """A failed model call. ``retryable`` errors are retried (with backoff) and may trigger fallbacks."""

    status = 502
    code = "provider_error"
    title = "Model provider error"
    retryable = False


class ProviderAuthError(ProviderError):
    code = "provider_auth_failed"
    title = "The model provider rejected the credentials"


class ProviderRateLimited(ProviderError):
    status = 429
    code = "provider_rate_limited"
    title = "The model provider is rate limiting"
    retryable = True


class ContextTooLong(ProviderError):
    status = 422
    code = "context_length_exceeded"
    title = "Input too long for the model's context window"


class ProviderBadRequest(ProviderError):
    status = 422
    code = "provider_bad_request"
    title = "The model provider rejected the request"


class ProviderUnavailable(ProviderError):
    status = 502
    code = "provider_unavailable"
    title = "The model provider is unavailable"
    retryable = True


class ProviderTimeout(ProviderError):
    status = 504
    code = "provider_timeout"
    title = "The model provider did not answer in time"
    retryable = True


CONTEXT_HINTS = (
    "context length",
    "context_length",
    "maximum context",
    "too many tokens",
    "prompt is too long",
)


def looks_like_context_error(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in CONTEXT_HINTS)


ConnectionType = Literal["openai", "azure_openai", "anthropic", "huggingface", "local"]


@dataclass(frozen=True)
class ConnectionConfig:
    """How to reach one provider endpoint. ``api_key`` is the decrypted secret: never log or return it."""

    type: ConnectionType
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_version: str | None = None  # Azure OpenAI
    timeout_seconds: float = 60.0
    max_retries: int = 2
    options: dict[str, Any] = field(default_factory=dict)  # adapter-specific, e.g. {"api": "completions"}


def scrub(message: str, secret: str | None) -> str:
    """Remove a secret (and its longer fragments) from a message that came back from upstream."""
    if not secret:
        return message
    cleaned = message.replace(secret, "***")
    if len(secret) >= 12:
        # Providers often echo a key partially ("sk-abc...wxyz"); drop any 8+ character run of it.
        for size in range(len(secret) - 1, 7, -1):
            for start in range(0, len(secret) - size + 1):
                fragment = secret[start : start + size]
                if fragment in cleaned:
                    cleaned = cleaned.replace(fragment, "***")
    return cleaned
