"""The FastAPI application factory: routers, error handling, middleware, start-up (migrate + bootstrap)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from promptops import __version__
from promptops.alerts.api import channels_router as alert_channels_router
from promptops.alerts.api import router as alerts_router
from promptops.alerts.api import rules_router as alert_rules_router
from promptops.allow_header import allowed_methods
from promptops.analytics.api import router as analytics_router
from promptops.auth.api import auth_router, keys_router, members_router
from promptops.auth.sso.api import admin_router as sso_admin_router
from promptops.auth.sso.api import login_router as sso_login_router
from promptops.config import Settings, get_settings
from promptops.context import current_request_id
from promptops.contract_api import router as promptopt_router
from promptops.datasets.api import router as datasets_router
from promptops.errors import ProblemError
from promptops.evals.api import router as evals_router
from promptops.evals.import_api import router as promptfoo_import_router
from promptops.evals.schedules.api import router as eval_schedules_router
from promptops.experiments.api import router as experiments_router
from promptops.feedback.api import annotations_router
from promptops.feedback.api import router as feedback_router
from promptops.gateway.api import GatewayBodyLimit, install_gateway, serving
from promptops.governance.api import router as audit_router
from promptops.lifecycle import build_runtime
from promptops.logging import configure_logging
from promptops.middleware import Metrics, RequestContextMiddleware
from promptops.monitoring.api import router as monitoring_router
from promptops.openapi import install_openapi
from promptops.ops.api import router as ops_router
from promptops.ops.docs import install_docs
from promptops.ops.web import install_web
from promptops.optimize.api import router as optimizations_router
from promptops.packs.api import router as packs_router
from promptops.playground.api import router as playground_router
from promptops.privacy.api import router as privacy_router
from promptops.providers.api import models_router
from promptops.providers.api import router as providers_router
from promptops.registry.api import lint_router, preview_router
from promptops.registry.api import router as prompts_router
from promptops.registry.approvals.api import router as approvals_router
from promptops.runs.api import router as runs_router
from promptops.search.api import router as search_router
from promptops.security_headers import SecurityHeaders
from promptops.slack.api import links_router as slack_links_router
from promptops.slack.api import router as slack_router
from promptops.tenancy.api import router as projects_router
from promptops.validation import body_problem

PROBLEM_JSON = "application/problem+json"
HTTP_CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


def _problem_response(
    body: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    body.setdefault("requestId", current_request_id())
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def problem(request: Request, exc: ProblemError) -> JSONResponse:
        wait = exc.extra.get("retryAfterSeconds") if exc.status == 429 else None
        headers = {"Retry-After": str(int(wait))} if isinstance(wait, int | float) else None
        return _problem_response(exc.to_problem(request.url.path), exc.status, headers)

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        first_loc: list[str] = errors[0]["loc"] if errors else []  # type: ignore[assignment]
        first_msg = str(errors[0]["msg"]) if errors else "invalid request"
        where = ".".join(first_loc[1:] if len(first_loc) > 1 else first_loc)
        detail = f"{where}: {first_msg}" if where else first_msg
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more error(s))"
        body = {
            "type": "https://promptops.dev/problems/validation_error",
            "title": "Request validation failed",
            "status": 422,
            "detail": detail,
            "code": "validation_error",
            "instance": request.url.path,
            "errors": errors,
        }
        return _problem_response(body, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if unparsable := body_problem(exc.__cause__):  # malformed UTF-8 or over-deep JSON body: 422
            return _problem_response(unparsable.to_problem(request.url.path), unparsable.status)
        code = HTTP_CODES.get(exc.status_code, "http_error")
        body = {
            "type": f"https://promptops.dev/problems/{code}",
            "title": str(exc.detail),
            "status": exc.status_code,
            "detail": str(exc.detail) if exc.status_code != 404 else f"No route for {request.url.path}",
            "code": code,
            "instance": request.url.path,
        }
        if exc.status_code != 405:
            return _problem_response(body, exc.status_code)
        allow = allowed_methods(request, exc.headers)
        body["detail"] = f"{request.method} is not allowed on {request.url.path}; allowed: {allow}"
        return _problem_response(body, 405, {"Allow": allow})


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    """Build the application. Start-up migrates the database and bootstraps a fresh installation."""
    settings = settings or get_settings()
    runtime = build_runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with serving(runtime, gateway, migrate=migrate):  # running(runtime) and the gateway's outbox
            yield

    app = FastAPI(
        title="PromptOps",
        version=__version__,
        summary="Create, version, test, optimize, ship and govern LLM prompts",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.metrics = Metrics()
    _install_error_handlers(app)
    install_docs(app)
    for router in (
        ops_router,
        auth_router,
        sso_login_router,
        sso_admin_router,
        projects_router,
        members_router,
        keys_router,
        search_router,
        prompts_router,
        approvals_router,
        lint_router,
        preview_router,
        audit_router,
        privacy_router,
        promptopt_router,
        providers_router,
        models_router,
        runs_router,
        playground_router,
        evals_router,
        promptfoo_import_router,
        eval_schedules_router,
        datasets_router,
        feedback_router,
        annotations_router,
        optimizations_router,
        experiments_router,
        packs_router,
        analytics_router,
        monitoring_router,
        alerts_router,
        alert_rules_router,
        alert_channels_router,
        slack_router,  # /slack/commands, /slack/events, /slack/interactions (Slack-signed)
        slack_links_router,
    ):
        app.include_router(router)
    gateway = install_gateway(app, runtime)  # /v1 (OpenAI/Anthropic wire formats), /api/v1/gateway
    install_web(app, settings)  # last: its page route answers GETs no API route took
    install_openapi(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        metrics=app.state.metrics,
    )
    app.add_middleware(SecurityHeaders, hsts=settings.cookie_secure)  # CSP, nosniff, no framing (+HSTS)
    app.add_middleware(GatewayBodyLimit, limit=settings.gateway_max_body_bytes)  # outermost: wire-shaped 413
    return app


def build_default_app() -> FastAPI:
    """Entry point for ``uvicorn --factory promptops.app:build_default_app``."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)
