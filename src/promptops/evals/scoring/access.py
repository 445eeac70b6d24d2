"""The :class:`ModelAccess` that scorers use in the product: judge and embedding calls through ModelCaller."""

from __future__ import annotations

from promptops.errors import ValidationProblem
from promptops.providers.calls import CallContext, CallInput, ModelCaller, Target
from promptops.providers.local_adapter import PUBLIC_MODEL_NAME
from promptops.providers.schemas import ModelTarget

DEFAULT_JUDGE = Target("local", PUBLIC_MODEL_NAME)


class CallerModelAccess:
    """Judge completions and embeddings through :class:`ModelCaller`, so each is a Run (``ctx.source``).

    ``default_judge`` answers when a scorer names no judge (the local model unless the deployment says
    otherwise); ``default_embedding`` likewise for ``similar``, and without one such a scorer fails with
    ``no_embedding_model``. Judges run greedy (temperature 0) unless the target's params say otherwise.
    ``calls`` and ``cost_usd`` add up what the scorers spent.
    """

    def __init__(
        self,
        caller: ModelCaller,
        ctx: CallContext,
        default_judge: Target = DEFAULT_JUDGE,
        default_embedding: Target | None = None,
        *,
        cache_ttl: int | None = None,
    ) -> None:
        self.caller = caller
        self.ctx = ctx
        self.default_judge = default_judge
        self.default_embedding = default_embedding
        self.cache_ttl = cache_ttl
        self.calls = 0
        self.cost_usd = 0.0

    @staticmethod
    def target_of(target: ModelTarget | Target) -> Target:
        return Target(target.provider, target.model, dict(target.params))

    async def complete(
        self, target: ModelTarget | None, prompt: str, *, max_tokens: int = 256, stop: list[str] | None = None
    ) -> str:
        chosen = self.target_of(target) if target is not None else self.default_judge
        params = {"temperature": 0, **chosen.params, "max_tokens": max_tokens}
        if stop:
            params["stop"] = list(stop)
        outcome = await self.caller.call(
            self.ctx,
            Target(chosen.provider, chosen.model, params),
            CallInput(prompt=prompt),
            cache_ttl=self.cache_ttl,
        )
        self.calls += 1
        self.cost_usd += outcome.cost_usd
        if outcome.error is not None:
            raise outcome.error
        return outcome.text or ""

    async def embed(self, target: ModelTarget | None, texts: list[str]) -> list[list[float]]:
        if target is not None:
            chosen = self.target_of(target)
        elif self.default_embedding is not None:
            chosen = self.default_embedding
        else:
            raise ValidationProblem(
                "no embedding model configured: give the scorer options.model {provider, model}",
                code="no_embedding_model",
            )
        outcome = await self.caller.embed(self.ctx, chosen, texts)
        self.calls += 1
        self.cost_usd += outcome.cost_usd
        if outcome.error is not None:
            raise outcome.error
        return outcome.vectors
