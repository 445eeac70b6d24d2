"""Adapter instances per connection (one client per connection version) and per-connection concurrency."""

from __future__ import annotations

import asyncio

from promptops.providers.base import Provider
from promptops.providers.service import ResolvedConnection


def build_provider(connection: ResolvedConnection) -> Provider:
    """The adapter that speaks this connection's wire protocol."""
    kind = connection.type
    if kind in ("openai", "azure_openai"):
        from promptops.providers.openai_adapter import OpenAIProvider

        return OpenAIProvider(connection.config)
    if kind == "anthropic":
        from promptops.providers.anthropic_adapter import AnthropicProvider

        return AnthropicProvider(connection.config)
    if kind == "huggingface":
        from promptops.providers.huggingface_adapter import HuggingFaceProvider

        return HuggingFaceProvider(connection.config)
    if kind == "local":
        from promptops.providers.local_adapter import LocalProvider

        return LocalProvider(connection.config)
    if kind == "echo":
        from promptops.providers.echo_adapter import EchoProvider

        return EchoProvider(connection.config)
    raise ValueError(f"unknown connection type {kind!r}")


def preload_adapters() -> None:
    """Import the remote adapters (and their SDKs) now: a server calls this at start-up so its first model
    call does not pay a second of imports. The CLI keeps importing them lazily, only when it calls a model."""
    import promptops.providers.anthropic_adapter
    import promptops.providers.huggingface_adapter
    import promptops.providers.openai_adapter  # noqa: F401


class ProviderPool:
    """Keeps one adapter per connection version and one semaphore per connection, for the process."""

    def __init__(self) -> None:
        self._adapters: dict[str, tuple[str, Provider]] = {}
        self._retired: list[Provider] = []
        self._semaphores: dict[str, tuple[int, asyncio.Semaphore]] = {}

    def adapter(self, connection: ResolvedConnection) -> Provider:
        key = connection.id or connection.name
        found = self._adapters.get(key)
        if found is not None and found[0] == connection.version:
            return found[1]
        if found is not None:
            # The connection changed (new key, URL, limits): calls in flight finish on the old client.
            self._retired.append(found[1])
        adapter = build_provider(connection)
        self._adapters[key] = (connection.version, adapter)
        return adapter

    def semaphore(self, connection: ResolvedConnection) -> asyncio.Semaphore:
        key = connection.id or connection.name
        entry = self._semaphores.get(key)
        if entry is None or entry[0] != connection.max_concurrency:
            entry = (connection.max_concurrency, asyncio.Semaphore(connection.max_concurrency))
            self._semaphores[key] = entry
        return entry[1]

    async def aclose(self) -> None:
        adapters = [a for _, a in self._adapters.values()] + self._retired
        self._adapters, self._retired = {}, []
        for adapter in adapters:
            await adapter.aclose()
