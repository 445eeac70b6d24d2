"""Process-wide limits on untrusted template work, from the ``PROMPTOPS_TEMPLATE_*`` settings.

The engine checks the size and work limits itself; the worker pool (:mod:`promptops.templates.pool`)
enforces CPU time and memory. The limits are read from the environment on first use
(:func:`promptops.config.get_settings`); :func:`configure` replaces them: ``create_app`` does so with the
:class:`~promptops.config.Settings` it is given, and tests with their own values.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["TemplateLimits", "configure", "current"]


@dataclass(frozen=True)
class TemplateLimits:
    """Limits on one render (output, items, work) and on the worker processes (CPU, memory, count)."""

    max_output_chars: int = 1_000_000
    max_items: int = 100_000
    work_budget: int = 10_000_000
    cpu_seconds: float = 5.0
    memory_mb: int = 512
    workers: int = 0
    queue_seconds: float = 30.0
    inline_ms: float = 20.0

    @property
    def worker_count(self) -> int:
        """Worker processes to run: ``workers``, or one per CPU (at least 2, at most 8) when 0."""
        if self.workers > 0:
            return self.workers
        return max(2, min(8, os.cpu_count() or 2))

    @classmethod
    def from_settings(cls, settings: Any) -> TemplateLimits:
        return cls(
            max_output_chars=settings.template_max_output_chars,
            max_items=settings.template_max_items,
            work_budget=settings.template_work_budget,
            cpu_seconds=settings.template_cpu_seconds,
            memory_mb=settings.template_memory_mb,
            workers=settings.template_workers,
            queue_seconds=settings.template_queue_seconds,
            inline_ms=settings.template_inline_ms,
        )


_lock = threading.Lock()
_current: TemplateLimits | None = None


def current() -> TemplateLimits:
    """The limits in force: those given to :func:`configure`, else the ``PROMPTOPS_TEMPLATE_*`` settings."""
    global _current
    found = _current
    if found is None:
        from promptops.config import get_settings

        with _lock:
            if _current is None:
                _current = TemplateLimits.from_settings(get_settings())
            found = _current
    return found


def configure(limits: TemplateLimits | Any | None = None, **overrides: Any) -> TemplateLimits:
    """Set the limits (a :class:`TemplateLimits`, a ``Settings`` object, or ``None`` for the environment's),
    with keyword overrides; returns the previous limits. Worker processes started under other CPU or memory
    limits are replaced on their next job.
    """
    global _current
    previous = current()
    if limits is None:
        from promptops.config import Settings

        base = TemplateLimits.from_settings(Settings())
    elif isinstance(limits, TemplateLimits):
        base = limits
    else:
        base = TemplateLimits.from_settings(limits)
    known = {f.name for f in fields(TemplateLimits)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown template limit(s): {', '.join(unknown)}")
    with _lock:
        _current = replace(base, **overrides)
    return previous
