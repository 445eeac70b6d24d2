"""``promptops slack``: the Slack bot alone, sharing the database with ``promptops serve`` (links, prompts, runs).

HTTP mode serves the Slack routes (and health/metrics): point the Slack app's request URLs at this process.
Socket Mode (``--socket-mode``) also connects out to Slack over a WebSocket (:mod:`promptops.slack.socket_mode`),
so no public URL is needed; health and metrics are still served on the port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from promptops import __version__
from promptops.config import Settings, get_settings
from promptops.context import current_request_id
from promptops.errors import ProblemError
from promptops.lifecycle import build_runtime, running
from promptops.logging import configure_logging
from promptops.middleware import Metrics, RequestContextMiddleware
from promptops.ops.api import router as ops_router
from promptops.slack.api import router as slack_router
from promptops.slack.socket_mode import SocketModeBot


def create_slack_app(
    settings: Settings | None = None, *, migrate: bool = True, socket_mode: bool = False
) -> FastAPI:
    settings = (settings or get_settings()).model_copy(update={"run_workers": False, "load_examples": False})
    runtime = build_runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(runtime, migrate=migrate):
            if not socket_mode:
                yield
                return
            bot = SocketModeBot(runtime)
            await bot.start()
            app.state.socket_mode = bot
            try:
                yield
            finally:
                await bot.stop()

    app = FastAPI(
        title="PromptOps Slack", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.runtime = runtime
    app.state.metrics = Metrics()

    @app.exception_handler(ProblemError)
    async def problem(request: Request, exc: ProblemError) -> JSONResponse:
        body = {**exc.to_problem(request.url.path), "requestId": current_request_id()}
        return JSONResponse(body, status_code=exc.status, media_type="application/problem+json")

    app.include_router(ops_router)
    app.include_router(slack_router)
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, metrics=app.state.metrics
    )
    return app


def build_slack_app() -> FastAPI:
    """Entry point for ``uvicorn --factory promptops.slack.standalone:build_slack_app``."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_slack_app(settings)


def build_socket_mode_app() -> FastAPI:
    """Entry point for ``promptops slack --socket-mode``."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_slack_app(settings, socket_mode=True)
