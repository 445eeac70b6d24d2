"""Slack request signatures: HMAC-SHA256 of ``v0:<timestamp>:<body>`` with the signing secret.

The timestamp must be within five minutes of now (replays are refused); slack_sdk compares the signatures in
constant time.
"""

from __future__ import annotations

import time

from slack_sdk.signature import Clock, SignatureVerifier

from promptops.errors import NotFound, Unauthenticated

MAX_SKEW_SECONDS = 300


def check_signature(
    secret: str | None, body: bytes, timestamp: str | None, signature: str | None, *, now: float | None = None
) -> None:
    """Raise 401 unless the request carries a fresh, valid Slack signature (404 when Slack is not set up)."""
    if not secret:
        raise NotFound("Slack is not configured on this server", code="slack_not_configured")
    if not timestamp or not signature:
        raise Unauthenticated("Missing X-Slack-Signature or X-Slack-Request-Timestamp", code="slack_unsigned")
    try:
        sent = int(timestamp)
    except ValueError:
        raise Unauthenticated("X-Slack-Request-Timestamp is not a number", code="slack_unsigned") from None
    current = time.time() if now is None else now
    if abs(current - sent) > MAX_SKEW_SECONDS:
        raise Unauthenticated("The Slack request timestamp is too old or in the future", code="slack_stale")
    verifier = SignatureVerifier(secret, clock=_Clock(current))
    if not verifier.is_valid(body, timestamp, signature):
        raise Unauthenticated("The Slack request signature does not match", code="slack_bad_signature")


class _Clock(Clock):
    """slack_sdk's clock interface, pinned to the time the window was checked against."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now
