"""``promptops gateway``: a small app with only the gateway routes and the health/metrics endpoints, for
running more gateway processes than API servers (scale-out). It shares the database (and so keys,
connections, prompts and runs) with ``promptops serve``; each process journals to its own outbox segment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from promptops import __version__
from promptops.config import Settings, get_settings
from promptops.gateway.api import GatewayBodyLimit, install_gateway, serving
from promptops.lifecycle import build_runtime
from promptops.logging import configure_logging
from promptops.middleware import Metrics, RequestContextMiddleware
from promptops.ops.api import router as ops_router


def create_gateway_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    settings = (settings or get_settings()).model_copy(update={"run_workers": False, "load_examples": False})
    runtime = build_runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with serving(runtime, gateway, migrate=migrate):
            yield

    app = FastAPI(
        title="PromptOps gateway", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.runtime = runtime
    app.state.metrics = Metrics()
    gateway = install_gateway(app, runtime)
    app.include_router(ops_router)
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, metrics=app.state.metrics
    )
    app.add_middleware(GatewayBodyLimit, limit=settings.gateway_max_body_bytes)
    return app


def build_gateway_app() -> FastAPI:
    """Entry point for ``uvicorn --factory promptops.gateway.standalone:build_gateway_app``."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_gateway_app(settings)
