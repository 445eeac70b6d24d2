"""Socket Mode: the bot opens a WebSocket to Slack instead of Slack calling public request URLs.

``apps.connections.open`` (with the app-level token, ``xapp-...``) answers a ``wss://`` URL; Slack greets the
connection with ``hello`` and then sends envelopes ``{"type", "envelope_id", "payload"}``. Each must be
acknowledged with ``{"envelope_id"}`` within 3 seconds, or Slack retries it (and shows the user an error for a
slash command). A slash command's acknowledgement carries its answer (``{"envelope_id", "payload": message}``),
the same message HTTP mode answers; an ``interactive`` envelope (an approval notice's Approve / Reject button) is
acknowledged at once and answered through its response_url. Commands, events and interactions go through
:mod:`promptops.slack.handling`, the one code path both modes share. slack_sdk's aiohttp client does the connection work: reconnecting when Slack asks
(``disconnect``) or the link goes stale, ping/pong.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from promptops.errors import ProblemError
from promptops.runtime import Runtime
from promptops.slack import commands, handling

log = logging.getLogger(__name__)

APP_TOKEN_PREFIX = "xapp-"
STOP_GRACE_SECONDS = 5.0  # deferred work (a `run` in flight) gets this long to finish on shutdown


class SocketModeError(RuntimeError):
    """Socket Mode cannot start (no or a refused app token)."""


class SocketModeBot:
    """One Socket Mode connection for a running process (``promptops slack --socket-mode``)."""

    def __init__(self, runtime: Runtime, *, ping_interval: float = 5.0) -> None:
        self.runtime = runtime
        self.ping_interval = ping_interval
        self.client: SocketModeClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Open the connection; raises :class:`SocketModeError` when Slack refuses the app token."""
        token = self.runtime.settings.slack_app_token
        if not token or not token.startswith(APP_TOKEN_PREFIX):
            raise SocketModeError("PROMPTOPS_SLACK_APP_TOKEN must be the app-level token (xapp-...)")
        client = SocketModeClient(
            app_token=token,
            web_client=AsyncWebClient(base_url=self.runtime.settings.slack_api_url),
            logger=log,
            ping_interval=self.ping_interval,
        )
        client.socket_mode_request_listeners.append(self._on_request)
        self.client = client
        try:
            # Asked once here so a wrong token stops the start with a clear error; the client would retry forever.
            client.wss_uri = await client.issue_new_wss_url()
        except SlackApiError as exc:
            await client.close()
            raise SocketModeError(
                f"Slack refused apps.connections.open: {exc.response.get('error', 'error')}"
            ) from None
        await client.connect()

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task

    def _defer(self, func: Callable[..., Awaitable[None]], /, *args: Any) -> None:
        task = asyncio.create_task(self._guarded(func, *args))
        self._tasks.add(task)  # a strong reference until it is done
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(func: Callable[..., Awaitable[None]], *args: Any) -> None:
        try:
            await func(*args)
        except Exception as exc:  # deferred work is best-effort, like HTTP mode's background tasks
            log.warning("slack deferred %s failed: %s", getattr(func, "__name__", "work"), type(exc).__name__)

    async def _interaction(self, payload: dict[str, Any]) -> None:
        await handling.answer_interaction(self.runtime, payload, self._defer)

    async def _on_request(self, client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        """Answer one envelope; an envelope left unacknowledged (an exception here) is retried by Slack."""
        if request.type == "slash_commands":
            try:
                invocation = handling.invocation_of(request.payload)
            except ProblemError as exc:
                answer = commands.problem_reply(exc)
            else:
                answer = await handling.answer_command(self.runtime, invocation, self._defer)
            await client.send_socket_mode_response(SocketModeResponse(request.envelope_id, answer))
            return
        if request.type == "interactive":  # approval buttons: acknowledged at once, decided right after
            await client.send_socket_mode_response(SocketModeResponse(request.envelope_id))
            if isinstance(request.payload, dict):
                self._defer(self._interaction, request.payload)
            return
        if request.type == "events_api":
            outcome = await handling.handle_event(self.runtime, request.payload, self._defer)
            if outcome == "repeated":
                log.info("slack event retry %s acknowledged again", request.retry_attempt)
        # events_api and anything newer: acknowledged, no payload
        await client.send_socket_mode_response(SocketModeResponse(request.envelope_id))
