"""Slack's endpoints (``/slack/commands``, ``/slack/events``, ``/slack/interactions``) and the link API.

Slack authenticates with a request signature instead of a PromptOps credential, so the three Slack routes are
``PUBLIC`` to the route guard and verify the signature first (401 otherwise); each command then acts as the
linked PromptOps user. ``POST /api/v1/slack/links`` redeems a ``/prompt login`` code for the calling user.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from pydantic import Field
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from promptops.auth.deps import PUBLIC, require
from promptops.auth.principal import Principal
from promptops.errors import ProblemError, ValidationProblem
from promptops.governance.rbac import Permission as P
from promptops.runtime import Runtime, runtime_of
from promptops.schemas import ApiModel, ApiOut
from promptops.slack import blocks as bk
from promptops.slack import commands, notify, service
from promptops.slack.verify import check_signature

log = logging.getLogger(__name__)

# Slack's wire contract (like the gateway's /v1 routes), not part of PromptOps' OpenAPI document.
router = APIRouter(prefix="/slack", dependencies=[Depends(PUBLIC)], include_in_schema=False)
links_router = APIRouter(prefix="/api/v1/slack", tags=["slack"])

MAX_TEXT = 4000
MAX_ID = 32
UNLINKED = (
    "Your Slack user is not linked to a PromptOps account yet. Run `/prompt login` and enter the code in "
    "PromptOps."
)


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
    fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    for name in ("team_id", "user_id", "channel_id"):
        if len(fields.get(name, "")) > MAX_ID:
            raise ValidationProblem(f"{name} is too long", code="slack_bad_request")
    if len(fields.get("text", "")) > MAX_TEXT:
        raise ValidationProblem(f"text is longer than {MAX_TEXT} characters", code="slack_bad_request")
    return fields


def web_client(runtime: Runtime) -> AsyncWebClient:
    token = runtime.settings.slack_bot_token
    if not token:
        raise ProblemError(
            "PROMPTOPS_SLACK_BOT_TOKEN is not set", code="slack_not_configured", status=503, title="Slack"
        )
    return AsyncWebClient(token=token, base_url=runtime.settings.slack_api_url)


async def post_message(runtime: Runtime, channel: str, payload: dict[str, Any]) -> None:
    """chat.postMessage with a message built by :mod:`promptops.slack.blocks`."""
    await web_client(runtime).chat_postMessage(
        channel=channel, text=payload["text"], blocks=payload["blocks"]
    )


router.lifespan_context = notify.notices_lifespan(post_message)  # label moves, finished evaluations


async def respond(runtime: Runtime, response_url: str, payload: dict[str, Any]) -> None:
    """Answer a command later through its response_url (only URLs under the configured Slack prefix)."""
    if not response_url.startswith(runtime.settings.slack_response_url_prefix):
        log.warning("slack response_url outside PROMPTOPS_SLACK_RESPONSE_URL_PREFIX ignored")
        return
    answer = await AsyncWebhookClient(response_url).send_dict(payload)
    if answer.status_code >= 300:
        log.warning("slack response_url answered %s", answer.status_code)


async def _run_later(runtime: Runtime, principal: Principal, words: list[str], response_url: str) -> None:
    try:
        payload = await commands.run(runtime, principal, words)
    except ProblemError as exc:
        payload = commands.problem_reply(exc)
    await respond(runtime, response_url, payload)


async def _dispatch(
    runtime: Runtime, invocation: commands.Invocation, background: BackgroundTasks
) -> dict[str, Any]:
    words = commands.words_of(invocation.text)
    verb, rest = (words[0].lower(), words[1:]) if words else ("help", [])
    if verb == "help":
        return bk.reply(commands.HELP)
    if verb == "login":
        return await commands.login(runtime, invocation)
    principal = await service.principal_of(runtime.db, invocation.team_id, invocation.user_id)
    if principal is None:
        return bk.reply(UNLINKED)
    if verb == "search":
        return await commands.search(runtime, principal, rest)
    if verb == "show":
        return await commands.show(runtime, principal, rest)
    if verb == "run":
        if refused := commands.denied(principal, P.PLAYGROUND_RUN):
            return refused
        # Slack wants an answer within 3 s: acknowledge now, post the result to response_url when it is ready.
        background.add_task(_run_later, runtime, principal, rest, invocation.response_url)
        return bk.reply(f":hourglass_flowing_sand: Running {' '.join(rest[:1])}…")
    if verb == "notify":
        if refused := commands.denied(principal, P.PROJECT_MANAGE):
            return refused
        target = None if rest == ["off"] else commands.channel_of(rest[0]) if len(rest) == 1 else ""
        if target == "":
            return bk.reply("Usage: `/prompt notify #channel` or `/prompt notify off`")
        await notify.set_channel(runtime, principal, target)
        return bk.reply(f"Project notices go to {rest[0]}." if target else "Project notices are off.")
    if verb == "share":
        channel, payload = await commands.share(runtime, principal, rest)
        try:
            await post_message(runtime, channel, payload)
        except SlackApiError as exc:
            return bk.reply(f":x: Slack refused the message: {exc.response.get('error', 'error')}")
        return bk.reply(f"Shared {rest[0]} to {rest[1]}.")
    return bk.reply(f"Unknown command {verb!r}.\n{commands.HELP}")


@router.post("/commands", summary="The /prompt slash command (Slack-signed form post)")
async def slash_command(request: Request, background: BackgroundTasks) -> dict[str, Any]:
    fields = form_of(await signed_body(request))
    invocation = commands.Invocation(
        team_id=fields.get("team_id", ""),
        user_id=fields.get("user_id", ""),
        channel_id=fields.get("channel_id", ""),
        text=fields.get("text", ""),
        response_url=fields.get("response_url", ""),
    )
    if not invocation.team_id or not invocation.user_id:
        raise ValidationProblem("team_id and user_id are required", code="slack_bad_request")
    try:
        return await _dispatch(runtime_of(request), invocation, background)
    except ProblemError as exc:  # answered to the Slack user, who cannot see HTTP errors
        return commands.problem_reply(exc)


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
    event_id = str(payload.get("event_id", ""))[:64]
    if payload.get("type") != "event_callback" or not event_id:
        return Response(status_code=204)
    runtime = runtime_of(request)
    if not await service.first_time(runtime.db, event_id):
        return Response(status_code=204, headers={"X-Slack-No-Retry": "1"})
    event = payload.get("event") or {}
    mention = isinstance(event, dict) and event.get("type") == "app_mention" and event.get("channel")
    if mention and runtime.settings.slack_bot_token:
        background.add_task(post_message, runtime, str(event["channel"])[:MAX_ID], bk.reply(commands.HELP))
    return Response(status_code=204)


@router.post("/interactions", summary="Interactivity payloads (Slack-signed; buttons are links for now)")
async def interactions(request: Request) -> Response:
    form_of(await signed_body(request))
    return Response(status_code=204)


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
