"""The provider layer's common language: one request/response shape for every wire protocol.

Adapters (openai, anthropic, huggingface, local) translate a :class:`ModelRequest` into their provider's
wire format and back, raise :class:`ProviderError` subclasses for failures, and report token usage. The
helpers at the end are what the remote adapters share: keeping keys out of upstream messages, reading
``Retry-After``, recognising context overflows, mapping error statuses and wording errors (:class:`Upstream`).
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import AsyncIterator, Mapping
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


@dataclass(frozen=True)
class EmbeddingResponse:
    """One vector per input text, in input order."""

    vectors: list[list[float]]
    usage: Usage
    model: str


class EmbeddingProvider(Protocol):
    """What an adapter that can embed text implements besides :class:`Provider` (openai, local)."""

    async def embed(self, model: str, texts: list[str]) -> EmbeddingResponse: ...


class EmbeddingsNotSupported(ProblemError):
    status = 422
    code = "embeddings_not_supported"
    title = "The connection cannot embed text"


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


ConnectionType = Literal["openai", "azure_openai", "anthropic", "huggingface", "local", "echo"]


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


# --- helpers the remote adapters share ---------------------------------------------------------------------------

# Upstream error bodies can be whole HTML pages from a proxy; problem details only need the gist.
MAX_DETAIL_CHARS = 500

# Lower-case phrases by which providers say the input does not fit the model's context window.
CONTEXT_HINTS = (
    "context length",
    "context_length",
    "maximum context",
    "too many tokens",
    "prompt is too long",
)
# TGI words overflows its own way: "`inputs` tokens + `max_new_tokens` must be <= 4096" and "`inputs` must
# have less than 4096 tokens". They need a pattern rather than a hint: "must be <=" next to "tokens" also
# fits parameter limits such as "`max_new_tokens` must be <= 512", which are not overflows.
_TGI_CONTEXT = re.compile(
    r"inputs`?\s+(?:tokens\s+\+\s+`?max_new_tokens`?\s+must be <=|must have less than)", re.I
)

_MASK_RUN = re.compile(r"\*{2,}|\.{3}|…")
_MASKED_TOKEN = re.compile(r"[A-Za-z0-9_\-]*(?:(?:\*{2,}|\.{3}|…)[A-Za-z0-9_\-]*)+")


def looks_like_context_error(message: str) -> bool:
    """Whether an upstream error message says the input is too long for the model's context window."""
    lowered = message.lower()
    return any(hint in lowered for hint in CONTEXT_HINTS) or _TGI_CONTEXT.search(message) is not None


def scrub(message: str, secret: str | None) -> str:
    """Remove a secret from a message that came back from upstream, with its fragments and masked echoes.

    Runs of eight or more of its characters go, and so do masked echoes such as ``sk-abc*****wxyz``:
    providers that mask a key still echo its first and last few characters, which together narrow the key
    down, so any masked token that starts or ends like the secret is replaced as a whole.
    """
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
    if len(secret) < 8:
        return cleaned

    def hide(match: re.Match[str]) -> str:
        token = match.group(0)
        parts = _MASK_RUN.split(token)
        head, tail = parts[0], parts[-1]
        if (len(head) >= 3 and secret.startswith(head)) or (len(tail) >= 3 and secret.endswith(tail)):
            return "***"
        return token

    return _MASKED_TOKEN.sub(hide, cleaned)


def shorten(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """Cut an upstream message down to a readable length."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the upstream asked us to wait, from ``retry-after-ms`` or ``Retry-After`` (seconds or date)."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())


def content_text(content: Any) -> str:
    """Plain text of an OpenAI message content (a string or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", "")) if isinstance(part, Mapping) else str(part) for part in content
        )
    return str(content)


def describe(exc: BaseException) -> str:
    """``Type: message``, for error details that name what broke."""
    return f"{type(exc).__name__}: {exc}"


def cause_text(exc: BaseException) -> str | None:
    """What broke underneath an SDK's connection error (the SDK's own message only says the call failed)."""
    cause = exc.__cause__ or exc.__context__
    return describe(cause) if cause else None


def error_for_status(
    status: int,
    message: str,
    *,
    context_overflow: bool = False,
    outage: bool = False,
    retry_after: float | None = None,
) -> ProviderError:
    """The provider error for an upstream HTTP error ``status``, with ``message`` as its detail.

    Each wire protocol signals a context overflow (``context_overflow``) and, beyond 408 and 5xx, an outage
    (``outage``) its own way, so the caller reads those from the body. ``retry_after`` is reported on the
    rate limit or outage it comes with. Anything else is a bad request: 404 is how these servers say "no
    such model/deployment", a configuration problem rather than an outage.
    """
    extra: dict[str, Any] = {"retryAfter": retry_after} if retry_after is not None else {}
    if status in (401, 403):
        return ProviderAuthError(message)
    if status == 429:
        return ProviderRateLimited(message, **extra)
    if context_overflow:
        return ContextTooLong(message)
    if outage or status == 408 or status >= 500:
        return ProviderUnavailable(message, **extra)
    return ProviderBadRequest(message)


@dataclass(frozen=True)
class Upstream:
    """How an adapter names its upstream in error details, and the key those details must never carry."""

    name: str  # as it reads mid-sentence: "Anthropic", "the Hugging Face endpoint"
    secret: str | None = field(repr=False)
    timeout_seconds: float

    @classmethod
    def of(cls, name: str, config: ConnectionConfig) -> Upstream:
        return cls(name, config.api_key, config.timeout_seconds)

    @property
    def title(self) -> str:
        """The name as it reads at the start of a sentence."""
        return self.name[:1].upper() + self.name[1:]

    def safe(self, message: str) -> str:
        """An upstream message fit for problem details: key scrubbed, white space folded, length capped."""
        return shorten(scrub(message, self.secret))

    def timed_out(self) -> ProviderTimeout:
        return ProviderTimeout(f"{self.title} did not answer within {self.timeout_seconds:g} s")

    def unreachable(self, reason: str) -> ProviderUnavailable:
        return ProviderUnavailable(self.safe(f"{self.title} could not be reached ({reason})"))

    def call_failed(self, exc: BaseException) -> ProviderError:
        return ProviderError(self.safe(f"{self.title} call failed: {describe(exc)}"))

    def stream_stalled(self) -> ProviderTimeout:
        return ProviderTimeout(f"The stream from {self.name} stalled: no data for {self.timeout_seconds:g} s")

    def stream_broken(self, reason: str) -> ProviderUnavailable:
        """A stream that failed once started: the answer is incomplete, and a retry would repeat its start."""
        return ProviderUnavailable(self.safe(f"The stream from {self.name} ended unexpectedly ({reason})"))

    def stream_unfinished(self, missing: str) -> ProviderUnavailable:
        """A stream that closed without its end marker although nothing failed (e.g. a proxy cut it)."""
        return ProviderUnavailable(f"The stream from {self.name} ended unexpectedly before {missing}")
