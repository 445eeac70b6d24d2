"""What the bot does with a slash command or an Events API event, whichever way Slack delivered it.

HTTP mode (:mod:`promptops.slack.api`, signed requests) and Socket Mode (:mod:`promptops.slack.socket_mode`,
envelopes over a WebSocket) both turn what they received into an :class:`~promptops.slack.commands.Invocation`
or an event payload and call :func:`answer_command` / :func:`handle_event`: one code path, so both modes check
the same permissions and answer the same way. Work that outlives Slack's 3-second window (``run``, replies to
mentions) is handed to ``defer``, which each mode implements with what it has (background tasks after the HTTP
response, tasks beside the socket).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from promptops.auth.principal import Principal
from promptops.errors import ProblemError, ValidationProblem
from promptops.governance.rbac import Permission as P
from promptops.registry.approvals import service as approvals
from promptops.runtime import Runtime
from promptops.slack import blocks as bk
from promptops.slack import commands, notify, service

log = logging.getLogger(__name__)

MAX_TEXT = 4000
MAX_ID = 32
UNLINKED = (
    "Your Slack user is not linked to a PromptOps account yet. Run `/prompt login` and enter the code in "
    "PromptOps. Until then you can only `/prompt search` the prompts shared with this workspace."
)


class Defer(Protocol):
    """Run ``func(*args)`` after the answer has gone to Slack."""

    def __call__(self, func: Callable[..., Awaitable[None]], /, *args: Any) -> None: ...


def invocation_of(fields: Mapping[str, Any]) -> commands.Invocation:
    """A slash command from Slack's fields (the HTTP form or the Socket Mode payload); 4xx when malformed."""
    values = {
        name: fields.get(name, "") for name in ("team_id", "user_id", "channel_id", "text", "response_url")
    }
    if not all(isinstance(v, str) for v in values.values()):
        raise ValidationProblem("Slash command fields must be strings", code="slack_bad_request")
    for name in ("team_id", "user_id", "channel_id"):
        if len(values[name]) > MAX_ID:
            raise ValidationProblem(f"{name} is too long", code="slack_bad_request")
    if len(values["text"]) > MAX_TEXT:
        raise ValidationProblem(f"text is longer than {MAX_TEXT} characters", code="slack_bad_request")
    if len(values["response_url"]) > MAX_TEXT:
        raise ValidationProblem("response_url is too long", code="slack_bad_request")
    if not values["team_id"] or not values["user_id"]:
        raise ValidationProblem("team_id and user_id are required", code="slack_bad_request")
    return commands.Invocation(**values)


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


async def _dispatch(runtime: Runtime, invocation: commands.Invocation, defer: Defer) -> dict[str, Any]:
    words = commands.words_of(invocation.text)
    verb, rest = (words[0].lower(), words[1:]) if words else ("help", [])
    if verb == "help":
        return bk.reply(commands.HELP)
    if verb == "login":
        return await commands.login(runtime, invocation)
    principal = await service.principal_of(runtime.db, invocation.team_id, invocation.user_id)
    if principal is None:
        # Unlinked: what the workspace may see (projects that post their notices there, as a Viewer would).
        if verb == "search":
            return await commands.search_shared(runtime, invocation.team_id, invocation.user_id, rest)
        return bk.reply(UNLINKED)
    if verb == "search":
        return await commands.search(runtime, principal, rest)
    if verb == "show":
        return await commands.show(runtime, principal, rest)
    if verb == "run":
        if refused := commands.denied(principal, P.PLAYGROUND_RUN):
            return refused
        # Slack wants an answer within 3 s: acknowledge now, post the result to response_url when it is ready.
        defer(_run_later, runtime, principal, rest, invocation.response_url)
        return bk.reply(f":hourglass_flowing_sand: Running {' '.join(rest[:1])}…")
    if verb == "notify":
        if refused := commands.denied(principal, P.PROJECT_MANAGE):
            return refused
        target = None if rest == ["off"] else commands.channel_of(rest[0]) if len(rest) == 1 else ""
        if target == "":
            return bk.reply("Usage: `/prompt notify #channel` or `/prompt notify off`")
        await notify.set_channel(runtime, principal, target, team_id=invocation.team_id)
        if target is None:
            return bk.reply(
                "Project notices are off (and its prompts are no longer shared with this workspace)."
            )
        return bk.reply(
            f"Project notices go to {rest[0]}. Its prompts are now searchable by everyone in this workspace "
            "(what a Viewer may read); `/prompt notify off` stops both."
        )
    if verb == "share":
        channel, payload = await commands.share(runtime, principal, rest)
        try:
            await post_message(runtime, channel, payload)
        except SlackApiError as exc:
            return bk.reply(f":x: Slack refused the message: {exc.response.get('error', 'error')}")
        return bk.reply(f"Shared {rest[0]} to {rest[1]}.")
    return bk.reply(f"Unknown command {verb!r}.\n{commands.HELP}")


async def answer_command(runtime: Runtime, invocation: commands.Invocation, defer: Defer) -> dict[str, Any]:
    """The slash command's immediate answer (a Slack message); errors the user can fix are answered too."""
    try:
        return await _dispatch(runtime, invocation, defer)
    except ProblemError as exc:  # answered to the Slack user, who cannot see HTTP errors
        return commands.problem_reply(exc)


async def handle_interaction(runtime: Runtime, payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """A ``block_actions`` payload from an approval notice's Approve / Reject button: the decision is made as
    the clicking Slack user's linked PromptOps account, under the same rules as the API (role, four eyes, once).
    The answer (for the payload's response_url) says what happened; None for actions this bot does not own."""
    if payload.get("type") != "block_actions":
        return None
    actions = payload.get("actions")
    user = payload.get("user")
    team = payload.get("team")
    if (
        not isinstance(actions, list)
        or not actions
        or not isinstance(actions[0], dict)
        or not isinstance(user, dict)
    ):
        return None  # nothing this bot acts on (link buttons send no action of ours)
    action_id, request_id = str(actions[0].get("action_id", "")), str(actions[0].get("value", ""))[:40]
    if action_id not in (notify.APPROVE_ACTION, notify.REJECT_ACTION):
        return None
    team_id = str((team.get("id") if isinstance(team, dict) else None) or user.get("team_id") or "")[:MAX_ID]
    principal = await service.principal_of(runtime.db, team_id, str(user.get("id", ""))[:MAX_ID])
    if principal is None:
        return bk.reply(UNLINKED)
    approve = action_id == notify.APPROVE_ACTION
    try:
        async with runtime.db.transaction(write=True) as session:
            if approve:
                view = await approvals.approve(session, principal, request_id, "approved in Slack")
            else:
                view = await approvals.reject(session, principal, request_id, "rejected in Slack")
    except ProblemError as exc:
        return commands.problem_reply(exc)
    r = view.request
    state = f"{r.status} ({view.approvals}/{r.required} approvals)"
    if view.move is not None:
        state += f"; {r.prompt_name}@{r.label} now serves v{view.move.version.version}"
    verb = "approved" if approve else "rejected"
    return bk.reply(f":white_check_mark: You {verb} request `{r.id}`: {state}.")


async def answer_interaction(
    runtime: Runtime, payload: Mapping[str, Any], defer: Defer
) -> dict[str, Any] | None:
    """Handle an interactivity payload (HTTP mode's POST or a Socket Mode ``interactive`` envelope) and send its
    answer to the payload's response_url once Slack has been acknowledged; None when the action is not ours."""
    answer = await handle_interaction(runtime, payload)
    response_url = payload.get("response_url")
    if answer is not None and isinstance(response_url, str) and len(response_url) <= MAX_TEXT:
        defer(respond, runtime, response_url, answer)
    return answer


EventOutcome = Literal["handled", "repeated", "ignored"]


async def handle_event(runtime: Runtime, payload: Mapping[str, Any], defer: Defer) -> EventOutcome:
    """An Events API ``event_callback``, handled once per ``event_id`` (Slack's retries are ``repeated``)."""
    event_id = str(payload.get("event_id", ""))[:64]
    if payload.get("type") != "event_callback" or not event_id:
        return "ignored"
    if not await service.first_time(runtime.db, event_id):
        return "repeated"
    event = payload.get("event")
    channel = event.get("channel") if isinstance(event, dict) and event.get("type") == "app_mention" else None
    if channel and runtime.settings.slack_bot_token:  # a mention is answered with the usage
        defer(post_message, runtime, str(channel)[:MAX_ID], bk.reply(commands.HELP))
    return "handled"
