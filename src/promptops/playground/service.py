"""Playground: render a prompt version (or a raw template) and call one or several models side by side.

A flow that calls models (docs/architecture.md, "Service functions: two kinds"): :func:`prepare` renders in one
short read transaction, then the models are called with no transaction open (each call is recorded as a run
by the :class:`~promptops.providers.calls.ModelCaller`). It returns domain objects; ``playground/api.py`` maps
them to ``PlaygroundOut`` or to Server-Sent Events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from promptops.auth.principal import Principal
from promptops.providers.calls import CallContext, CallInput, CallOutcome, Target
from promptops.providers.schemas import PlaygroundIn
from promptops.providers.service import LOCAL_MODEL, LOCAL_NAME
from promptops.registry import service as registry
from promptops.runtime import Runtime
from promptops.templates import engine

DEFAULT_TARGET = Target(LOCAL_NAME, LOCAL_MODEL)


@dataclass(frozen=True)
class Prepared:
    kind: str
    rendered: dict[str, Any]
    call: CallInput
    prompt_id: str | None
    version_id: str | None
    targets: list[Target]
    fallbacks: list[Target]


def _target(spec: Any) -> Target:
    return Target(spec.provider, spec.model, dict(spec.params))


async def prepare(runtime: Runtime, principal: Principal, body: PlaygroundIn) -> Prepared:
    """Render the input and decide which models to call (default: the version's modelConfig, else local)."""
    prompt_id = version_id = None
    default = DEFAULT_TARGET
    response_schema = None
    async with runtime.db.transaction() as session:
        if body.prompt is not None:
            prompt, version, _ = await registry.resolve(session, principal, body.prompt)
            result = await registry.render_version(
                session, principal, version, body.variables, max_depth=runtime.settings.include_max_depth
            )
            prompt_id, version_id, kind = prompt.id, version.id, version.kind
            config = version.model_config_ or {}
            if config.get("model"):
                default = Target(
                    config.get("provider") or LOCAL_NAME, config["model"], dict(config.get("params") or {})
                )
            response_schema = version.response_schema
        else:
            kind = "text" if body.template is not None else "chat"
            messages = [m.model_dump() for m in body.messages] if body.messages is not None else None

            result = await engine.render(
                kind,
                body.template,
                messages,
                [],
                body.variables,
                registry.include_resolver(session, principal),
                max_depth=runtime.settings.include_max_depth,
            )
    rendered: dict[str, Any] = {"text": result.text} if kind == "text" else {"messages": result.messages}
    call = CallInput(prompt=result.text, messages=result.messages, response_schema=response_schema)
    targets = [_target(m) for m in body.models] or [default]
    fallbacks = [_target(f) for f in body.fallbacks]
    if body.params:
        targets = [replace(t, params={**t.params, **body.params}) for t in targets]
        fallbacks = [replace(t, params={**t.params, **body.params}) for t in fallbacks]
    # Check every target before calling any: a bad one must fail the request before others spend money.
    for target in [*targets, *fallbacks]:
        runtime.caller.request_for(await runtime.caller.connection(principal, target.provider), target, call)
    return Prepared(kind, rendered, call, prompt_id, version_id, targets, fallbacks)


@dataclass(frozen=True)
class Played:
    """A finished playground call: what was rendered and one outcome per model (each a recorded run)."""

    prepared: Prepared
    outcomes: tuple[CallOutcome, ...]


def _context(principal: Principal, prepared: Prepared, body: PlaygroundIn) -> CallContext:
    return CallContext(
        principal=principal,
        source=body.source,
        prompt_id=prepared.prompt_id,
        version_id=prepared.version_id,
        trace_id=body.trace_id,
    )


async def run(runtime: Runtime, principal: Principal, body: PlaygroundIn) -> Played:
    """Render, then call every target concurrently; each result (or failure) is its own recorded run."""
    prepared = await prepare(runtime, principal, body)
    ctx = _context(principal, prepared, body)
    cache_ttl = body.cache.ttl_seconds if body.cache else None
    outcomes = await asyncio.gather(
        *(
            runtime.caller.call(ctx, t, prepared.call, fallbacks=prepared.fallbacks, cache_ttl=cache_ttl)
            for t in prepared.targets
        )
    )
    return Played(prepared, tuple(outcomes))


async def stream(
    runtime: Runtime, principal: Principal, prepared: Prepared, body: PlaygroundIn
) -> AsyncIterator[tuple[int, str | CallOutcome]]:
    """Interleave the token streams of every target of a prepared call as ``(index, delta | outcome)``."""
    caller, ctx = runtime.caller, _context(principal, prepared, body)
    queue: asyncio.Queue[tuple[int, str | CallOutcome | BaseException]] = asyncio.Queue()

    async def pump(index: int, target: Target) -> None:
        try:
            async for item in caller.stream(ctx, target, prepared.call, fallbacks=prepared.fallbacks):
                await queue.put((index, item))
        except BaseException as exc:  # surface to the consumer instead of dying silently
            await queue.put((index, exc))

    tasks = [asyncio.create_task(pump(i, t)) for i, t in enumerate(prepared.targets)]
    remaining = len(tasks)
    try:
        while remaining:
            index, item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, CallOutcome):
                remaining -= 1
            yield index, item
    finally:
        for task in tasks:
            task.cancel()
