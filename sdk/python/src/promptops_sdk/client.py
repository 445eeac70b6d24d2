"""The clients: :class:`PromptOps` (sync) and :class:`AsyncPromptOps` share everything but how they wait.

``get_prompt`` semantics (both clients):

- **fresh hit** (fetched less than ``cache_ttl`` seconds ago): returned from memory, no network.
- **stale hit**: returned from memory at once, and one background refresh starts (single flight: N concurrent
  stale hits of a key cause one request). A failed refresh keeps the stale copy (``stats.refresh_errors``).
- **miss**: fetched now (concurrent misses of a key share one fetch), kept in memory and written to disk.
  If the server is unreachable or answers 5xx: the copy on disk from an earlier run (``prompt.source ==
  "disk"``, kept stale so the next call tries the server again in the background), else the ``fallback=``
  (``prompt.source == "fallback"``, not cached), else :class:`~promptops_sdk.UnavailableError`. API errors
  (401, 403, 404 ...) are raised as :class:`~promptops_sdk.ApiError`.

``unit=`` (a user or session id, with ``label=``): when an experiment runs on the label the server answers the
unit's sticky arm (``prompt.experiment``, ``prompt.arm``). Answers for a unit are cached per unit (at most
``unit_cache_size`` units, in memory only), so one unit's arm is never served to another. When the server says
no experiment runs on the label, the label's own entry serves every unit until ``cache_ttl`` passes; after that
the next call with a unit asks the server again, so an experiment started meanwhile is seen within a TTL.
If the server is unreachable, a unit gets the label's cached (or disk) copy, without an experiment.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import inspect
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from promptops_sdk._cache import DiskCache, Key, MemoryCache, Plan, default_cache_dir, fetch_plan
from promptops_sdk._errors import PromptOpsError, UnavailableError
from promptops_sdk._prompt import Prompt
from promptops_sdk._tracing import Sender, Stats, Trace
from promptops_sdk._wrappers import wrap_anthropic, wrap_openai

__version__ = "0.1.0"
F = TypeVar("F", bound=Callable[..., Any])
Fallback = str | Sequence[Mapping[str, str]] | None

_UNREACHABLE = (httpx.TransportError, UnavailableError)


class _Base:
    """Configuration, caches, the run sender, tracing and the wrappers: everything that does not wait."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        project: str | None = None,
        *,
        cache_ttl: float = 60.0,
        cache_dir: str | Path | bool | None = None,
        timeout: float = 10.0,
        max_queue: int = 10_000,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_retries: int = 8,
        retry_backoff: float = 0.5,
        tracing: bool = True,
        unit_cache_size: int = 10_000,
    ) -> None:
        self.url = (url or os.environ.get("PROMPTOPS_URL") or "http://127.0.0.1:8000").rstrip("/")
        api_key = api_key or os.environ.get("PROMPTOPS_API_KEY")
        if not api_key:
            raise PromptOpsError("No API key: pass api_key= or set PROMPTOPS_API_KEY")
        self.project = project or os.environ.get("PROMPTOPS_PROJECT") or None
        self._headers = {"Authorization": f"Bearer {api_key}", "User-Agent": f"promptops-sdk/{__version__}"}
        if self.project:
            self._headers["X-Project"] = self.project
        self.timeout = timeout
        self.stats = Stats()
        self._memory = MemoryCache(cache_ttl)
        self._units = MemoryCache(cache_ttl, max_entries=max(1, unit_cache_size))
        # (name, label) -> when a fetch with a unit last said no experiment runs there (time.monotonic())
        self._no_experiment: dict[tuple[str, str | None], float] = {}
        directory: Path | None = None
        if cache_dir is None or cache_dir is True:
            directory = default_cache_dir()
        elif cache_dir is not False:
            directory = Path(cache_dir)
        self._disk = DiskCache(directory, self.url, self.project)
        self.tracing = tracing
        self._sender = Sender(
            self._sync_http,
            self.stats,
            max_queue=max_queue,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_retries=max_retries,
            backoff=retry_backoff,
        )
        # flush at exit without keeping the client alive
        atexit.register(_flush_at_exit, weakref.ref(self._sender))

    def _sync_http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers=self._headers,
            timeout=self.timeout,
            event_hooks={"request": [self._count_request]},
        )

    def _count_request(self, request: httpx.Request) -> None:
        self.stats.http_requests += 1

    # --- cache decisions shared by both clients -------------------------------------------------------------

    @staticmethod
    def _key(name: str, label: str | None, version: int | None, unit: str | None = None) -> Key:
        if label is not None and version is not None:
            raise PromptOpsError("Give label= or version=, not both")
        if unit is not None and (not isinstance(unit, str) or not unit or len(unit) > 200):
            raise PromptOpsError("unit= must be a string of 1-200 characters")
        # a unit matters only on a label: a pinned version or the latest is the same for everyone
        return (name, label, version, unit if label is not None else None)

    def _cache(self, key: Key) -> MemoryCache:
        return self._units if key[3] is not None else self._memory

    def _label_answer(self, key: Key) -> Prompt | None:
        """For a unit on a label where, within a TTL, the server said no experiment runs: the label's entry."""
        if key[3] is None:
            return None
        said = self._no_experiment.get((key[0], key[1]))
        if said is None or time.monotonic() - said >= self._memory.ttl:
            return None
        prompt, stale = self._memory.get((key[0], key[1], None, None))
        if prompt is None or stale:
            return None
        self.stats.cache_hits += 1
        return prompt

    def _cached(self, key: Key) -> tuple[Prompt | None, bool]:
        """(cached prompt, whether to refresh it in the background); counts hits and misses."""
        label_answer = self._label_answer(key)
        if label_answer is not None:
            return label_answer, False
        prompt, stale = self._cache(key).get(key)
        if prompt is None:
            self.stats.cache_misses += 1
            return None, False
        self.stats.cache_hits += 1
        if stale:
            self.stats.stale_served += 1
            return prompt, self._cache(key).claim_refresh(key)
        return prompt, False

    def _learn(self, key: Key, prompt: Prompt) -> None:
        """Keep a fetched prompt. A unit's answer without an experiment is kept as the label's (serving every
        unit for a TTL, after which a unit asks again), not as the unit's."""
        if key[3] is None:
            self._memory.put(key, prompt)
            return
        if prompt.experiment is None:
            self._no_experiment[(key[0], key[1])] = time.monotonic()
            self._memory.put((key[0], key[1], None, None), prompt)
        else:
            self._no_experiment.pop((key[0], key[1]), None)
            self._units.put(key, prompt)

    def _store(self, key: Key, prompt: Prompt) -> Prompt:
        self._learn(key, prompt)
        if key[3] is None or prompt.experiment is None:
            self._disk.save((key[0], key[1], key[2], None), prompt)
        return prompt

    def _release(self, key: Key) -> None:
        self._cache(key).release_refresh(key)

    def _unreachable(self, key: Key, fallback: Fallback, error: Exception) -> Prompt:
        """What a miss answers when the server cannot be reached (see the module docstring)."""
        if key[3] is not None:  # a unit: the label's own copy, without an experiment
            held, _ = self._memory.get((key[0], key[1], None, None))
            if held is not None:
                self.stats.disk_fallbacks += 1
                return held
            key = (key[0], key[1], key[2], None)
        saved = self._disk.load(key)
        if saved is not None:
            self.stats.disk_fallbacks += 1
            self._memory.put(key, saved, stale=True)
            return saved
        if fallback is not None:
            self.stats.fallbacks += 1
            return Prompt.from_fallback(key[0], fallback, key[1])
        raise UnavailableError(f"PromptOps at {self.url} is unreachable and no cached copy exists: {error}")

    def invalidate(self) -> None:
        """Forget the prompts held in memory (the disk copies stay)."""
        self._memory.clear()
        self._units.clear()
        self._no_experiment.clear()

    # --- tracing --------------------------------------------------------------------------------------------

    def _submit(self, run: dict[str, Any]) -> None:
        if self.tracing:
            self._sender.record(run)

    def trace(
        self,
        *,
        prompt: Prompt | None = None,
        input: Any = None,
        model: str | None = None,
        provider: str | None = None,
        trace_id: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Trace:
        """A context manager (``with`` or ``async with``) that records one run when the block ends."""
        return Trace(
            self._submit,
            prompt=prompt,
            input=input,
            model=model,
            provider=provider,
            trace_id=trace_id,
            params=params,
        )

    def traced(
        self,
        *,
        prompt: Prompt | None = None,
        model: str | None = None,
        provider: str | None = None,
        capture_input: bool = True,
        capture_output: bool = True,
    ) -> Callable[[F], F]:
        """Decorator: every call of the function (sync or async) is a run; its arguments are the input and its
        return value the output (both optional), an exception an error run."""

        def decorate(func: F) -> F:
            def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Trace:
                given = {"args": list(args), "kwargs": kwargs} if capture_input else None
                return self.trace(prompt=prompt, input=given, model=model, provider=provider).__enter__()

            def done(trace: Trace, result: Any) -> Any:
                if capture_output:
                    trace.record(output=result)
                trace.finish()
                return result

            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def run_async(*args: Any, **kwargs: Any) -> Any:
                    trace = start(args, kwargs)
                    try:
                        result = await func(*args, **kwargs)
                    except BaseException as exc:
                        trace.finish(exc)
                        raise
                    return done(trace, result)

                return run_async  # type: ignore[return-value]

            @functools.wraps(func)
            def run(*args: Any, **kwargs: Any) -> Any:
                trace = start(args, kwargs)
                try:
                    result = func(*args, **kwargs)
                except BaseException as exc:
                    trace.finish(exc)
                    raise
                return done(trace, result)

            return run  # type: ignore[return-value]

        return decorate

    def wrap_openai(self, client: Any) -> Any:
        """Record ``client.chat.completions.create`` calls (sync or async client, streams included); pass
        ``promptops_prompt=p`` to attribute a call to a registry prompt (removed before the call)."""
        return wrap_openai(client, self._submit)

    def wrap_anthropic(self, client: Any) -> Any:
        """Record ``client.messages.create`` calls, like :meth:`wrap_openai`."""
        return wrap_anthropic(client, self._submit)


def _flush_at_exit(ref: weakref.ReferenceType[Sender]) -> None:
    sender = ref()
    if sender is not None:
        sender.close(timeout=5.0)


class PromptOps(_Base):
    """The synchronous client. ``PromptOps()`` reads ``PROMPTOPS_URL`` and ``PROMPTOPS_API_KEY``."""

    def __init__(
        self, url: str | None = None, api_key: str | None = None, project: str | None = None, **options: Any
    ):
        super().__init__(url, api_key, project, **options)
        self._http = self._sync_http()
        self._locks: dict[Key, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _run(self, plan: Plan) -> Prompt:
        path = next(plan)
        while True:
            response = self._http.get(path)
            try:
                path = plan.send(response)
            except StopIteration as done:
                return done.value

    def get_prompt(
        self,
        name: str,
        *,
        label: str | None = None,
        version: int | None = None,
        unit: str | None = None,
        fallback: Fallback = None,
    ) -> Prompt:
        """The prompt version ``name`` (``label=`` or ``version=``, default latest; ``unit=`` for experiments on
        the label); see the module docstring."""
        key = self._key(name, label, version, unit)
        prompt, refresh = self._cached(key)
        if prompt is not None:
            if refresh:
                threading.Thread(
                    target=self._refresh, args=(key,), name="promptops-sdk-refresh", daemon=True
                ).start()
            return prompt
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            prompt, _ = self._cache(key).get(key)  # another thread's fetch may have filled it
            if prompt is not None:
                return prompt
            try:
                return self._store(key, self._run(fetch_plan(*key)))
            except _UNREACHABLE as error:
                return self._unreachable(key, fallback, error)

    def _refresh(self, key: Key) -> None:
        try:
            self._store(key, self._run(fetch_plan(*key)))
            self.stats.refreshes += 1
        except Exception:
            self.stats.refresh_errors += 1
        finally:
            self._release(key)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Send every queued run now; True when all were handled within ``timeout`` seconds."""
        return self._sender.flush(timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Flush the runs and release the HTTP connections."""
        self._sender.close(timeout)
        self._http.close()

    def __enter__(self) -> PromptOps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncPromptOps(_Base):
    """The asyncio client: the same surface with ``await`` for ``get_prompt``, ``flush`` and ``close``."""

    def __init__(
        self, url: str | None = None, api_key: str | None = None, project: str | None = None, **options: Any
    ):
        super().__init__(url, api_key, project, **options)
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=self._headers,
            timeout=self.timeout,
            event_hooks={"request": [self._count_async_request]},
        )
        self._inflight: dict[Key, asyncio.Future[Prompt]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def _count_async_request(self, request: httpx.Request) -> None:
        self._count_request(request)

    async def _run(self, plan: Plan) -> Prompt:
        path = next(plan)
        while True:
            response = await self._http.get(path)
            try:
                path = plan.send(response)
            except StopIteration as done:
                return done.value

    async def get_prompt(
        self,
        name: str,
        *,
        label: str | None = None,
        version: int | None = None,
        unit: str | None = None,
        fallback: Fallback = None,
    ) -> Prompt:
        """See :meth:`PromptOps.get_prompt`."""
        key = self._key(name, label, version, unit)
        prompt, refresh = self._cached(key)
        if prompt is not None:
            if refresh:
                task = asyncio.get_running_loop().create_task(self._refresh(key))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return prompt
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(key))
            self._inflight[key] = pending
            pending.add_done_callback(lambda _: self._inflight.pop(key, None))
        try:
            return await asyncio.shield(pending)
        except _UNREACHABLE as error:
            return self._unreachable(key, fallback, error)

    async def _fetch(self, key: Key) -> Prompt:
        prompt = await self._run(fetch_plan(*key))
        self._learn(key, prompt)
        if key[3] is None or prompt.experiment is None:
            await asyncio.to_thread(self._disk.save, (key[0], key[1], key[2], None), prompt)
        return prompt

    async def _refresh(self, key: Key) -> None:
        try:
            await self._fetch(key)
            self.stats.refreshes += 1
        except Exception:
            self.stats.refresh_errors += 1
        finally:
            self._release(key)

    async def flush(self, timeout: float | None = 10.0) -> bool:  # noqa: ASYNC109 (the sync client's surface)
        """Send every queued run now (waits in a thread); True when all were handled within ``timeout``."""
        return await asyncio.to_thread(self._sender.flush, timeout)

    async def close(self, timeout: float | None = 10.0) -> None:  # noqa: ASYNC109
        await asyncio.to_thread(self._sender.close, timeout)
        await self._http.aclose()

    async def __aenter__(self) -> AsyncPromptOps:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
