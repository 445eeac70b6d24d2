"""The built-in ``echo`` provider: answers with the prompt it was sent, as promptfoo's ``echo`` provider does.

It makes no network call and costs nothing. Useful to check prompts and assertions without a model (an
imported promptfoo config that uses ``echo`` runs unchanged). A text prompt comes back as it is; a chat
prompt comes back as the JSON of its messages (promptfoo's chat prompts are JSON text too).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from promptops.providers.base import ConnectionConfig, ModelRequest, ModelResponse, StreamEvent, Usage

ECHO_MODEL = "echo"


def echoed(request: ModelRequest) -> str:
    if request.messages is not None:
        return json.dumps(request.messages, ensure_ascii=False)
    return request.prompt or ""


class EchoProvider:
    """The :class:`~promptops.providers.base.Provider` that returns the rendered prompt."""

    def __init__(self, config: ConnectionConfig) -> None:
        self.config = config

    async def complete(self, request: ModelRequest) -> ModelResponse:
        text = echoed(request)
        tokens = len(text.split())
        return ModelResponse(
            text=text, usage=Usage(tokens, tokens, reported=False), model=request.model, finish_reason="stop"
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        response = await self.complete(request)
        yield StreamEvent(delta=response.text)
        yield StreamEvent(done=True, usage=response.usage, model=response.model, finish_reason="stop")

    async def aclose(self) -> None:
        return None
