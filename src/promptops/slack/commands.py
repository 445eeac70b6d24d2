"""``/prompt`` sub-commands: search, show, run, share, login, help. Each answers a Slack message body.

Every command except ``login`` and ``help`` acts as the linked PromptOps user, with that user's role in the
linked project: the permission checks are the ones the REST routes make. An unlinked user may only ``search``,
and only what a Viewer may read in the projects shared with their workspace (:func:`search_shared`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from promptops.auth.principal import Principal
from promptops.errors import NotFound, ProblemError, ValidationProblem
from promptops.evals import service as evals
from promptops.governance.rbac import Permission as P
from promptops.playground import service as playground
from promptops.providers.schemas import PlaygroundIn
from promptops.registry import service as registry
from promptops.runtime import Runtime
from promptops.slack import blocks as bk
from promptops.slack import service

SEARCH_LIMIT = 10
EXCERPT_CHARS = 1200
MAX_VARIABLES = 50
CHANNEL_RE = re.compile(r"^<#([A-Z0-9]+)(?:\|[^>]*)?>$|^#?([a-z0-9][a-z0-9._-]{0,79})$")
HELP = (
    "*/prompt* commands:\n"
    "• `search <words>`: prompts whose name or description match\n"
    "• `show name@label`: the version behind a label\n"
    "• `run name@label key=value …`: run it on its model (default: the local model)\n"
    "• `share name@label #channel`: post the prompt card to a channel\n"
    "• `notify #channel` / `notify off`: post protected label moves and finished evaluations there, and let "
    "this workspace search the project's prompts (admins)\n"
    "• `login`: link your Slack user to your PromptOps account"
)


@dataclass(frozen=True)
class Invocation:
    """One slash command as Slack sent it (form fields)."""

    team_id: str
    user_id: str
    channel_id: str
    text: str
    response_url: str


def words_of(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: plain words
        return text.split()


def parse_variables(pairs: list[str]) -> dict[str, str]:
    if len(pairs) > MAX_VARIABLES:
        raise ValidationProblem(f"At most {MAX_VARIABLES} variables", code="slack_too_many_variables")
    variables: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationProblem(f"Expected key=value, got {pair!r}", code="slack_bad_variable")
        variables[key] = value
    return variables


def channel_of(token: str) -> str:
    """A channel id from ``<#C123|name>`` (Slack's escaped mention) or a channel name from ``#name``."""
    match = CHANNEL_RE.match(token)
    if not match:
        raise ValidationProblem(f"Not a channel: {token!r}; use #channel", code="slack_bad_channel")
    return match.group(1) or "#" + match.group(2)


def denied(principal: Principal, permission: P) -> dict[str, Any] | None:
    if principal.can(permission):
        return None
    return bk.reply(
        f":no_entry: Your role *{principal.role.value}* in this project lacks `{permission.value}`."
    )


async def search(runtime: Runtime, principal: Principal, words: list[str]) -> dict[str, Any]:
    if refused := denied(principal, P.PROMPT_READ):
        return refused
    query = " ".join(words)[:200] or None
    async with runtime.db.transaction() as session:
        prompts, _ = await registry.list_prompts(
            session, principal, registry.PromptFilter(query=query), limit=SEARCH_LIMIT
        )
    if not prompts:
        return bk.reply(
            f"No prompt matches {bk.escape(repr(query))}." if query else "This project has no prompts yet."
        )
    lines = [
        f"• *{p.name}* (v{p.latest_version}) {bk.escape(bk.clip(p.description, 120))}".rstrip()
        for p in prompts
    ]
    title = f"Prompts matching {bk.escape(repr(query))}" if query else "Prompts"
    return bk.message(title, [bk.section(f"*{title}*\n" + "\n".join(lines))])


async def search_shared(
    runtime: Runtime, team_id: str, slack_user_id: str, words: list[str]
) -> dict[str, Any]:
    """``search`` for an unlinked user: the prompts a Viewer may read in each project whose notices go to this
    workspace, marked with the project's name, and how to link for the rest."""
    query = " ".join(words)[:200] or None
    readers = await service.workspace_readers(runtime.db, team_id, slack_user_id)
    found: list[str] = []
    async with runtime.db.transaction() as session:
        for project, reader in readers:
            if len(found) >= SEARCH_LIMIT:
                break
            prompts, _ = await registry.list_prompts(
                session, reader, registry.PromptFilter(query=query), limit=SEARCH_LIMIT - len(found)
            )
            found.extend(
                f"• *{p.name}* ({bk.escape(project)}, v{p.latest_version}) {bk.escape(bk.clip(p.description, 120))}".rstrip()
                for p in prompts
            )
    link_hint = (
        "Your Slack user is not linked to PromptOps, so you only see prompts shared with this workspace. Run "
        "`/prompt login` to link your account for `show`, `run` and the rest."
    )
    if not readers:
        return bk.reply(f"No PromptOps project shares its prompts with this workspace. {link_hint}")
    if not found:
        return bk.reply(
            f"No shared prompt matches {bk.escape(repr(query))}. {link_hint}"
            if query
            else f"No shared prompts yet. {link_hint}"
        )
    title = f"Shared prompts matching {bk.escape(repr(query))}" if query else "Shared prompts"
    return bk.message(title, [bk.section(f"*{title}*\n" + "\n".join(found)), bk.context(link_hint)])


async def card(runtime: Runtime, principal: Principal, ref: str) -> dict[str, Any]:
    """The Block Kit card of the version ``ref`` names (template excerpt, version, labels, last eval)."""
    async with runtime.db.transaction() as session:
        resolved = await registry.resolve_full(session, principal, ref)
        score = None
        if principal.can(P.EVAL_READ):
            try:
                latest = await evals.latest_for_version(session, principal, resolved.version.id)
            except NotFound:
                latest = None
            if latest and latest["groups"]:
                group = latest["groups"][0]
                score = (
                    f"pass rate {group.get('passRate', 0):.0%}, mean score {group.get('meanScore', 0):.2f}"
                )
    prompt, version = resolved.prompt, resolved.version
    if version.template is not None:
        body = version.template
    else:
        body = "\n\n".join(f"[{m.get('role')}] {m.get('content', '')}" for m in version.messages or [])
    labels = ", ".join(f"{k}→v{v}" for k, v in sorted(resolved.labels.items())) or "none"
    model = (version.model_config_ or {}).get("model") or "default (local)"
    url = f"{runtime.settings.slack_web_url.rstrip('/')}/prompts/{prompt.name}"
    blocks = [
        bk.header(f"{prompt.name} v{version.version}"),
        bk.section(bk.escape(bk.clip(prompt.description, 500)) or "_no description_"),
        bk.code(bk.clip(body, EXCERPT_CHARS)),
        bk.context(
            f"*Labels:* {labels}",
            f"*Model:* {model}",
            f"*Last evaluation:* {score or 'none'}",
            f"*Tags:* {', '.join(resolved.tags) or 'none'}",
        ),
        bk.link_button("Open in PromptOps", url),
    ]
    return bk.message(f"{prompt.name} v{version.version}", blocks)


async def show(runtime: Runtime, principal: Principal, words: list[str]) -> dict[str, Any]:
    if refused := denied(principal, P.PROMPT_READ):
        return refused
    if len(words) != 1:
        return bk.reply("Usage: `/prompt show name@label`")
    return await card(runtime, principal, words[0])


async def run(runtime: Runtime, principal: Principal, words: list[str]) -> dict[str, Any]:
    """Run the prompt on its model config (playground service; the call is recorded as a run)."""
    if refused := denied(principal, P.PLAYGROUND_RUN):
        return refused
    if not words:
        return bk.reply("Usage: `/prompt run name@label key=value …`")
    body = PlaygroundIn(prompt=words[0], variables=parse_variables(words[1:]))
    played = await playground.run(runtime, principal, body)
    outcome = played.outcomes[0]
    if outcome.error is not None:
        return bk.reply(f":x: {bk.escape(outcome.error.title)}: {bk.escape(outcome.error.detail)}")
    facts = (
        f"*Model:* {outcome.target.provider}/{outcome.target.model}",
        f"*Cost:* ${outcome.cost_usd:.6f}",
        f"*Latency:* {outcome.latency_ms:.0f} ms",
        f"*Run:* `{outcome.run.id}`",
    )
    return bk.message(
        f"{words[0]}: {bk.clip(outcome.text or '', 200)}",
        [bk.section(f"*{words[0]}*"), bk.code(outcome.text or "(empty answer)"), bk.context(*facts)],
    )


async def share(runtime: Runtime, principal: Principal, words: list[str]) -> tuple[str, dict[str, Any]]:
    """The channel and the card to post there (the caller posts it with chat.postMessage)."""
    principal.require(P.PROMPT_READ)
    if len(words) != 2:
        raise ValidationProblem("Usage: /prompt share name@label #channel", code="slack_usage")
    channel = channel_of(words[1])
    return channel, await card(runtime, principal, words[0])


def problem_reply(exc: ProblemError) -> dict[str, Any]:
    return bk.reply(f":warning: {bk.escape(exc.title)}: {bk.escape(exc.detail)}")


async def login(runtime: Runtime, invocation: Invocation) -> dict[str, Any]:
    code = await service.new_link_code(runtime.db, invocation.team_id, invocation.user_id)
    return bk.reply(
        f"Your one-time code is *{code}* (valid {service.CODE_TTL.seconds // 60} minutes). Enter it in "
        f"PromptOps while logged in to the project to use from Slack:\n"
        f'`POST /api/v1/slack/links` with `{{"code": "{code}"}}`.'
    )
