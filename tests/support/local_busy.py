"""Keep the embedded model busy from a test, the way another job's long generation would."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from promptops.providers.base import ConnectionConfig
from promptops.providers.local_adapter import LocalProvider


@contextmanager
def local_model_busy(config: ConnectionConfig, seconds: float = 60.0) -> Iterator[threading.Event]:
    """Hold the model's only worker thread for ``seconds`` (at most until the block ends).

    Yields the event that frees the model early. Usable from sync and async tests: the model is loaded on a
    helper thread with its own event loop.
    """
    with ThreadPoolExecutor(1) as pool:
        model = pool.submit(asyncio.run, LocalProvider(config)._model()).result()
    holding, free = threading.Event(), threading.Event()

    def hold() -> None:
        holding.set()
        free.wait(seconds)

    model.executor.submit(hold)
    assert holding.wait(60), "the model's worker never became free for the test"
    try:
        yield free
    finally:
        free.set()
