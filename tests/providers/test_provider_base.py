"""The helpers the remote adapters share (``promptops.providers.base``), without a server."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from promptops.providers.base import (
    MAX_DETAIL_CHARS,
    ConnectionConfig,
    ContextTooLong,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    Upstream,
    cause_text,
    content_text,
    error_for_status,
    looks_like_context_error,
    retry_after_seconds,
    scrub,
    shorten,
)
from tests.support.adapter_support import key_fragments

WRONG_KEY = "sk-Wr0ngKeyQ7v9XkLmN2pR4sT6uV8wY"


# --- scrub ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        f"bad key {WRONG_KEY}",
        "bad key sk-Wr0*********************uV8wY.",
        "bad key sk-Wr0...V8wY",
        f"bad key ****{WRONG_KEY[-6:]}",
        f"key '{WRONG_KEY[2:20]}' rejected",
    ],
)
def test_scrub_hides_full_partial_and_masked_keys(message: str) -> None:
    cleaned = scrub(message, WRONG_KEY)
    assert not key_fragments(WRONG_KEY, cleaned)
    assert cleaned.startswith(("bad key", "key"))


def test_scrub_leaves_unrelated_text_alone() -> None:
    assert scrub("Loading... please wait ***", WRONG_KEY) == "Loading... please wait ***"
    assert scrub("anything", None) == "anything"


@pytest.mark.parametrize(
    "echo",
    ["sk-Wr0*****V8wY", "sk-Wr0…V8wY", "****V8wY", "sk-Wr0****"],
)
def test_scrub_replaces_a_masked_echo_as_a_whole(echo: str) -> None:
    assert scrub(f"Incorrect API key provided: {echo}.", WRONG_KEY) == "Incorrect API key provided: ***."


def test_scrub_keeps_masked_tokens_of_other_keys() -> None:
    assert scrub("key hf_xyz*****abcd rejected", WRONG_KEY) == "key hf_xyz*****abcd rejected"


def test_scrub_of_a_short_secret_replaces_only_the_whole_secret() -> None:
    # Too short for its fragments or masked echoes to be told apart from ordinary text.
    assert scrub("pass abc12 and abc*****12", "abc12") == "pass *** and abc*****12"


# --- shorten --------------------------------------------------------------------------------------------------


def test_shorten_folds_white_space_and_caps_the_length() -> None:
    assert shorten("  an\n\terror   page ") == "an error page"
    long = shorten("x" * 2000)
    assert len(long) == MAX_DETAIL_CHARS
    assert long.endswith("…")
    assert shorten("abcdef", limit=4) == "abc…"


# --- retry_after_seconds --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "0.1"}, 0.1),
        ({"retry-after": "120"}, 120.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the precise header wins
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),  # an unreadable one falls back to the other
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "later"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_from_seconds_and_milliseconds(
    headers: dict[str, str] | None, expected: float | None
) -> None:
    assert retry_after_seconds(headers) == (pytest.approx(expected) if expected is not None else None)


def test_retry_after_header_names_are_case_insensitive_in_http_headers() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "3"})) == 3.0
    assert retry_after_seconds(httpx.Headers({"Retry-After-Ms": "1500"})) == 1.5


def test_retry_after_from_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    past = email.utils.formatdate(time.time() - 30, usegmt=True)

    seconds = retry_after_seconds({"retry-after": later})

    assert seconds is not None and 28 <= seconds <= 30
    assert retry_after_seconds({"retry-after": past}) == 0.0


# --- context errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
        "prompt is too long: 210000 tokens > 200000 maximum",
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` "
        "tokens and 200 `max_new_tokens`",
        "Input validation error: `inputs` must have less than 4096 tokens. Given: 5000",
    ],
)
def test_context_errors_are_recognised(message: str) -> None:
    assert looks_like_context_error(message)


@pytest.mark.parametrize(
    "message",
    [
        "Input validation error: `temperature` must be strictly positive",
        "Input validation error: `max_new_tokens` must be <= 512",
        "model 'gpt-test' not found",
    ],
)
def test_other_errors_are_not_context_errors(message: str) -> None:
    assert not looks_like_context_error(message)


# --- error_for_status -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, ProviderAuthError),
        (403, ProviderAuthError),
        (429, ProviderRateLimited),
        (408, ProviderUnavailable),
        (500, ProviderUnavailable),
        (529, ProviderUnavailable),
        (400, ProviderBadRequest),
        (404, ProviderBadRequest),
        (422, ProviderBadRequest),
    ],
)
def test_error_for_status(status: int, expected: type[ProviderError]) -> None:
    error = error_for_status(status, "detail")
    assert type(error) is expected
    assert error.detail == "detail"
    assert error.extra == {}


def test_context_overflow_and_outage_come_from_the_caller() -> None:
    assert type(error_for_status(400, "x", context_overflow=True)) is ContextTooLong
    assert type(error_for_status(424, "x", outage=True)) is ProviderUnavailable
    # Credentials and rate limits are decided by the status alone.
    assert type(error_for_status(401, "x", context_overflow=True, outage=True)) is ProviderAuthError
    assert type(error_for_status(429, "x", context_overflow=True)) is ProviderRateLimited


def test_retry_after_goes_on_rate_limits_and_outages() -> None:
    assert error_for_status(429, "x", retry_after=1.5).to_problem()["retryAfter"] == 1.5
    assert error_for_status(503, "x", retry_after=2.0).extra == {"retryAfter": 2.0}
    assert error_for_status(400, "x", retry_after=2.0).extra == {}


# --- Upstream and the other small helpers ---------------------------------------------------------------------


def test_upstream_messages_name_it_and_hide_the_key() -> None:
    upstream = Upstream.of(
        "the Hugging Face endpoint",
        ConnectionConfig(type="huggingface", api_key=WRONG_KEY, timeout_seconds=2.5),
    )

    assert upstream.title == "The Hugging Face endpoint"
    assert WRONG_KEY not in repr(upstream)
    timed_out = upstream.timed_out()
    assert isinstance(timed_out, ProviderTimeout)
    assert timed_out.detail == "The Hugging Face endpoint did not answer within 2.5 s"
    unreachable = upstream.unreachable(f"ConnectError: refused for {WRONG_KEY}")
    assert isinstance(unreachable, ProviderUnavailable)
    assert (
        unreachable.detail == "The Hugging Face endpoint could not be reached (ConnectError: refused for ***)"
    )
    failed = upstream.call_failed(RuntimeError("boom"))
    assert type(failed) is ProviderError
    assert failed.detail == "The Hugging Face endpoint call failed: RuntimeError: boom"
    assert (
        upstream.stream_stalled().detail
        == "The stream from the Hugging Face endpoint stalled: no data for 2.5 s"
    )
    assert isinstance(upstream.stream_broken("invalid event"), ProviderUnavailable)
    assert upstream.stream_broken("invalid event").detail == (
        "The stream from the Hugging Face endpoint ended unexpectedly (invalid event)"
    )
    assert upstream.stream_unfinished("the final event").detail == (
        "The stream from the Hugging Face endpoint ended unexpectedly before the final event"
    )


def test_upstream_safe_scrubs_then_shortens() -> None:
    upstream = Upstream("Anthropic", WRONG_KEY, 60.0)

    assert upstream.safe(f"bad\n key {WRONG_KEY}") == "bad key ***"
    assert len(upstream.safe("y" * 1000)) == MAX_DETAIL_CHARS


def test_cause_text_names_what_broke_underneath() -> None:
    try:
        try:
            raise ConnectionRefusedError("refused")
        except ConnectionRefusedError as inner:
            raise RuntimeError("Connection error.") from inner
    except RuntimeError as outer:
        assert cause_text(outer) == "ConnectionRefusedError: refused"
    assert cause_text(RuntimeError("alone")) is None


def test_content_text_of_strings_and_parts() -> None:
    assert content_text(None) == ""
    assert content_text("hi") == "hi"
    assert content_text([{"type": "text", "text": "a"}, "b", {"type": "image_url"}]) == "ab"
    assert content_text(42) == "42"
