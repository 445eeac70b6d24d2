"""A small in-process TTL cache for hot read paths (auth lookups, label resolution).

Entries are fresh for ``ttl`` seconds. After that, :meth:`TTLCache.get_or_load` serves the stale value once
more while a single background task reloads it (stale-while-revalidate), so an expiry never makes a crowd
of requests wait on the database at once; a key that is absent is loaded once, however many requests want
it (single flight). The process that makes a change drops the affected entries at once, so a single
process never serves a stale value; other replicas converge within about one TTL.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(self, ttl: float, maxsize: int = 10_000) -> None:
        self.ttl = ttl
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._loading: dict[Hashable, asyncio.Future[V]] = {}
        self._generation = 0

    def get(self, key: Hashable) -> V | None:
        """The value if present and fresh, else None."""
        if self.ttl <= 0:
            return None
        item = self._data.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, key: Hashable, value: V) -> None:
        if self.ttl <= 0:
            return
        self._data[key] = (time.monotonic() + self.ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    async def get_or_load(self, key: Hashable, loader: Callable[[], Awaitable[V]]) -> V:
        """The cached value, loading it at most once at a time; expired values are refreshed in the background."""
        if self.ttl <= 0:
            return await loader()
        item = self._data.get(key)
        if item is not None:
            expires, value = item
            if expires >= time.monotonic():
                return value
            if key not in self._loading:
                self._start_load(key, loader, background=True)
            return value
        pending = self._loading.get(key)
        if pending is None:
            pending = self._start_load(key, loader, background=False)
        return await asyncio.shield(pending)

    def _start_load(
        self, key: Hashable, loader: Callable[[], Awaitable[V]], *, background: bool
    ) -> asyncio.Future[V]:
        generation = self._generation
        task = asyncio.ensure_future(loader())
        self._loading[key] = task

        def done(fut: asyncio.Future[V]) -> None:
            self._loading.pop(key, None)
            if fut.cancelled():
                return
            error = fut.exception()
            if error is not None:
                # A failed refresh (e.g. the prompt was deleted elsewhere) must not keep serving the old value.
                self._data.pop(key, None)
                return
            if generation == self._generation:  # not invalidated while loading
                self.put(key, fut.result())

        task.add_done_callback(done)
        if background:
            task.add_done_callback(_consume_exception)
        return task

    def invalidate(self, predicate: Callable[[Any], bool] | None = None) -> None:
        """Drop every entry, or those whose key satisfies ``predicate(key)``; loads in flight are not stored."""
        self._generation += 1
        if predicate is None:
            self._data.clear()
            return
        for key in [k for k in self._data if predicate(k)]:
            self._data.pop(key, None)


def _consume_exception(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
