"""A small in-process TTL cache for hot read paths (auth lookups, label resolution).

Entries expire after ``ttl`` seconds so replicas converge; the process that makes a change drops the
affected entries at once, so a single-process deployment never serves a stale value.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(self, ttl: float, maxsize: int = 10_000) -> None:
        self.ttl = ttl
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()

    def get(self, key: Hashable) -> V | None:
        if self.ttl <= 0:
            return None
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < time.monotonic():
            self._data.pop(key, None)
            return None
        return value

    def put(self, key: Hashable, value: V) -> None:
        if self.ttl <= 0:
            return
        self._data[key] = (time.monotonic() + self.ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def invalidate(self, predicate: object = None) -> None:
        """Drop every entry, or those whose key satisfies ``predicate(key)``."""
        if predicate is None:
            self._data.clear()
            return
        for key in [k for k in self._data if predicate(k)]:  # type: ignore[operator]
            self._data.pop(key, None)
