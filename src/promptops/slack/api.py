"""Slack's endpoints (``/slack/commands``, ``/slack/events``, ``/slack/interactions``) and the link API.

Slack authenticates with a request signature instead of a PromptOps credential, so the three Slack routes are
``PUBLIC`` to the route guard and verify the signature first (401 otherwise); each command then acts as the
linked PromptOps user (the handling is :mod:`promptops.slack.handling`, shared with Socket Mode).
``POST /api/v1/slack/links`` redeems a ``/prompt login`` code for the calling user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from pydantic import Field

from promptops.auth.deps import PUBLIC, require
from promptops.auth.principal import Principal
from promptops.errors import ValidationProblem
from promptops.governance.rbac import Permission as P
from promptops.runtime import runtime_of
from promptops.schemas import ApiModel, ApiOut
from promptops.slack import handling, notify, service
from promptops.slack.handling import post_message
from promptops.slack.verify import check_signature

# Slack's wire contract (like the gateway's /v1 routes), not part of PromptOps' OpenAPI document.
router = APIRouter(prefix="/slack", dependencies=[Depends(PUBLIC)], include_in_schema=False)
links_router = APIRouter(prefix="/api/v1/slack", tags=["slack"])
router.lifespan_context = notify.notices_lifespan(post_message)  # protected label moves, finished evaluations


async def signed_body(request: Request) -> bytes:
    body = await request.body()
    check_signature(
        runtime_of(request).settings.slack_signing_secret,
        body,
        request.headers.get("x-slack-request-timestamp"),
        request.headers.get("x-slack-signature"),
    )
    return body


def form_of(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def _deferrer(background: BackgroundTasks) -> handling.Defer:
    def defer(func: Callable[..., Awaitable[None]], /, *args: Any) -> None:
        background.add_task(func, *args)  # run by Starlette once the response has been sent

    return defer


@router.post("/commands", summary="The /prompt slash command (Slack-signed form post)")
async def slash_command(request: Request, background: BackgroundTasks) -> dict[str, Any]:
    invocation = handling.invocation_of(form_of(await signed_body(request)))
    return await handling.answer_command(runtime_of(request), invocation, _deferrer(background))


@router.post("/events", summary="Events API callbacks (Slack-signed JSON; retries handled once)")
async def events(request: Request, background: BackgroundTasks) -> Any:
    body = await signed_body(request)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValidationProblem("The event body is not JSON", code="slack_bad_request") from None
    if not isinstance(payload, dict):
        raise ValidationProblem("The event body is not an object", code="slack_bad_request")
    if payload.get("type") == "url_verification":
        return {"challenge": str(payload.get("challenge", ""))[:200]}
    outcome = await handling.handle_event(runtime_of(request), payload, _deferrer(background))
    if outcome == "repeated":
        return Response(status_code=204, headers={"X-Slack-No-Retry": "1"})
    return Response(status_code=204)


@router.post(
    "/interactions", summary="Interactivity payloads (Slack-signed): approval Approve / Reject buttons"
)
async def interactions(request: Request, background: BackgroundTasks) -> Response:
    """Link buttons need nothing; an approval button decides as the linked user, and the answer goes to the
    payload's response_url once the response has been sent."""
    raw = form_of(await signed_body(request)).get("payload")
    if raw is None:
        return Response(status_code=204)
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationProblem("The interaction payload is not JSON", code="slack_bad_request") from None
    if not isinstance(payload, dict):
        raise ValidationProblem("The interaction payload is not an object", code="slack_bad_request")
    answer = await handling.answer_interaction(runtime_of(request), payload, _deferrer(background))
    return Response(status_code=200 if answer is not None else 204)


class LinkIn(ApiModel):
    code: str = Field(min_length=4, max_length=32, description="The code /prompt login answered in Slack")


class LinkOut(ApiOut):
    team_id: str
    slack_user_id: str
    user_id: str
    project_id: str


@links_router.post(
    "/links", status_code=201, response_model=LinkOut, summary="Link a Slack user (one-time code)"
)
async def create_link(
    body: LinkIn, request: Request, principal: Annotated[Principal, Depends(require(P.PROMPT_READ))]
) -> Any:
    async with runtime_of(request).db.transaction(write=True) as session:
        link = await service.redeem_code(session, principal, body.code)
        return LinkOut.model_validate(link)


@links_router.get("/links", response_model=list[LinkOut], summary="Your Slack links in this project")
async def list_links(
    request: Request, principal: Annotated[Principal, Depends(require(P.PROMPT_READ))]
) -> Any:
    async with runtime_of(request).db.transaction() as session:
        return [LinkOut.model_validate(link) for link in await service.links_of_user(session, principal)]
