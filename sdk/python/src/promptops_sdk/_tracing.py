"""Tracing: runs built in the app's threads, sent by one background thread in batches.

``record`` only puts the run on a bounded queue (``put_nowait``): a full queue drops the run and counts it,
the app never waits. The sender thread takes up to ``batch_size`` runs (and at most ``MAX_BATCH_BYTES`` of
JSON), posts them to ``POST /api/v1/runs/batch`` and retries 5xx answers, 409/429 and connection errors with
exponential backoff. Every run carries an id made here, so a retried batch is idempotent: the server counts
the runs it already stored as duplicates. A 4xx answer naming a bad item drops that item and resends the rest.
"""

from __future__ import annotations

import json
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
MAX_BATCH = 500
MAX_BATCH_BYTES = 900_000  # the server takes request bodies of up to 1 MiB by default
MAX_ERROR_MESSAGE = 2000
MAX_OUTPUT = 500_000


def new_run_id() -> str:
    """``run_`` + a ULID (48-bit millisecond time, 80 random bits) in lower-case Crockford base32."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "run_" + "".join(reversed(chars))


@dataclass
class Stats:
    """Counters of the client: cache behaviour and the sender's outcome."""

    cache_hits: int = 0
    cache_misses: int = 0
    stale_served: int = 0
    refreshes: int = 0
    refresh_errors: int = 0
    disk_fallbacks: int = 0
    fallbacks: int = 0
    http_requests: int = 0
    enqueued: int = 0
    dropped: int = 0  # the queue was full
    sent: int = 0  # accepted or duplicate on the server
    failed: int = 0  # given up after the retries
    rejected: int = 0  # the server refused the run (4xx)
    retries: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (SDK objects with ``model_dump``, anything else as text)."""
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    return str(value)


def input_of(value: Any) -> dict[str, Any]:
    """A run's ``input``: ``{"messages": [...]}`` for a message list, ``{"prompt": text}`` otherwise."""
    if value is None:
        return {}
    if isinstance(value, Mapping) and (set(value) == {"messages"} or set(value) == {"prompt"}):
        return _jsonable(dict(value))
    if isinstance(value, Sequence) and not isinstance(value, str):
        return {"messages": [m if isinstance(m, dict) else {"content": m} for m in _jsonable(list(value))]}
    return {"prompt": value if isinstance(value, str) else json.dumps(_jsonable(value))}


def build_run(
    *,
    prompt: Any = None,
    model: str | None = None,
    provider: str | None = None,
    input: Any = None,
    output: Any = None,
    params: Mapping[str, Any] | None = None,
    tool_calls: Any = None,
    finish_reason: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cost_usd: float | None = None,
    latency_ms: float = 0.0,
    ttft_ms: float | None = None,
    error: BaseException | None = None,
    trace_id: str | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The JSON body of one run for ``POST /api/v1/runs/batch`` (camelCase, bounded like the server)."""
    model_config = getattr(prompt, "model_config", None) or {}
    run: dict[str, Any] = {
        "id": new_run_id(),
        "provider": (provider or model_config.get("provider") or "sdk")[:64],
        "model": (model or model_config.get("model") or "unknown")[:200],
        "params": _jsonable(dict(params or {})),
        "input": input_of(input),
        "inputTokens": int(input_tokens or 0),
        "outputTokens": int(output_tokens or 0),
        "latencyMs": max(0.0, float(latency_ms)),
        "status": "error" if error is not None else "ok",
        "createdAt": (created_at or datetime.now(UTC)).isoformat(),
    }
    if getattr(prompt, "version_id", None):
        run["versionId"] = prompt.version_id
    if getattr(prompt, "experiment", None) and getattr(prompt, "arm", None):
        run["experimentId"] = prompt.experiment
        run["arm"] = prompt.arm
    if output is not None:
        run["output"] = (output if isinstance(output, str) else json.dumps(_jsonable(output)))[:MAX_OUTPUT]
    optional = {
        "toolCalls": _jsonable(list(tool_calls)) if tool_calls else None,
        "finishReason": finish_reason[:40] if finish_reason else None,
        "costUsd": cost_usd,
        "ttftMs": ttft_ms,
        "traceId": trace_id[:64] if trace_id else None,
    }
    run.update({k: v for k, v in optional.items() if v is not None})
    if error is not None:
        run["errorClass"] = type(error).__name__[:60]
        run["errorMessage"] = str(error)[:MAX_ERROR_MESSAGE]
    return run


class Sender:
    """The bounded queue and the background thread that posts runs in batches (see the module docstring)."""

    def __init__(
        self,
        make_client: Callable[[], httpx.Client],
        stats: Stats,
        *,
        max_queue: int = 10_000,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_retries: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self._make_client = make_client
        self.stats = stats
        self.batch_size = min(batch_size, MAX_BATCH)
        self.flush_interval = flush_interval
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=max_queue)
        self._unfinished = 0
        self._idle = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._carry: dict[str, Any] | None = None

    def record(self, run: dict[str, Any]) -> bool:
        """Queue ``run`` without waiting; False (and ``stats.dropped`` + 1) when the queue is full or closed."""
        if self._stop.is_set():
            self.stats.dropped += 1
            return False
        with self._idle:
            self._unfinished += 1
        try:
            self._queue.put_nowait(run)
        except queue.Full:
            self._done(1)
            self.stats.dropped += 1
            return False
        self.stats.enqueued += 1
        self._ensure_thread()
        if self._queue.qsize() >= self.batch_size:
            self._wake.set()
        return True

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="promptops-sdk-sender", daemon=True)
                self._thread.start()

    def _done(self, count: int) -> None:
        with self._idle:
            self._unfinished -= count
            if self._unfinished <= 0:
                self._idle.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued so far; True when done within ``timeout`` seconds."""
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._unfinished > 0:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left if left is None else min(left, 0.05))
                self._wake.set()
        return True

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush, then stop the thread; later runs are dropped."""
        done = self.flush(timeout)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        return done

    def _take(self) -> list[dict[str, Any]]:
        """Up to ``batch_size`` runs and ``MAX_BATCH_BYTES`` of JSON (a run that does not fit waits)."""
        batch: list[dict[str, Any]] = []
        size = 0
        while len(batch) < self.batch_size:
            if self._carry is not None:
                run, self._carry = self._carry, None
            else:
                try:
                    run = self._queue.get_nowait()
                except queue.Empty:
                    break
            run_size = len(json.dumps(run))
            if batch and size + run_size > MAX_BATCH_BYTES:
                self._carry = run
                break
            batch.append(run)
            size += run_size
        return batch

    def _loop(self) -> None:
        with self._make_client() as client:
            while not (self._stop.is_set() and self._queue.empty() and self._carry is None):
                if self._carry is None and self._queue.qsize() < self.batch_size:
                    self._wake.wait(self.flush_interval)
                self._wake.clear()
                batch = self._take()
                if batch:
                    try:
                        self._send(client, batch)
                    finally:
                        self._done(len(batch))

    def _send(self, client: httpx.Client, batch: list[dict[str, Any]]) -> None:
        attempt = 0
        while batch:
            retry = False
            try:
                response = client.post("/api/v1/runs/batch", json={"runs": batch})
                if response.status_code < 300:
                    self.stats.sent += len(batch)
                    self.stats.batches += 1
                    return
                if response.status_code >= 500 or response.status_code in (408, 409, 429):
                    retry = True
                else:
                    index = _bad_index(response)
                    if index is None or not 0 <= index < len(batch):
                        self.stats.rejected += len(batch)
                        return
                    batch = batch[:index] + batch[index + 1 :]
                    self.stats.rejected += 1
                    continue
            except httpx.TransportError:
                retry = True
            if retry:
                attempt += 1
                if attempt > self.max_retries:
                    self.stats.failed += len(batch)
                    return
                self.stats.retries += 1
                jitter = 0.5 + random.random() / 2  # noqa: S311 (not a secret)
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * jitter
                if self._stop.is_set():
                    time.sleep(min(delay, 0.2))  # closing: still retry, only faster
                else:
                    self._stop.wait(delay)


def _bad_index(response: httpx.Response) -> int | None:
    """The item a 4xx problem blames: ``index``, or the position in a validation error's ``loc``."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("index"), int):
        return int(body["index"])
    for error in body.get("errors") or []:
        loc = error.get("loc") if isinstance(error, dict) else None
        if isinstance(loc, list) and "runs" in loc:
            position = loc.index("runs") + 1
            if position < len(loc) and str(loc[position]).isdigit():
                return int(loc[position])
    return None


@dataclass
class Trace:
    """One traced call: ``with po.trace(prompt=p, input=...) as t: ...; t.record(output=..., model=...)``.

    The run is queued when the block ends, with the latency of the block and, if it raised, the error (the
    exception still propagates). ``record`` may be called once with what the call produced."""

    _submit: Callable[[dict[str, Any]], Any]
    prompt: Any = None
    input: Any = None
    model: str | None = None
    provider: str | None = None
    trace_id: str | None = None
    params: Mapping[str, Any] | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    _started: float = 0.0
    _created_at: datetime | None = None

    def record(self, **fields: Any) -> None:
        """Set ``output``, ``model``, ``provider``, ``input``, ``params``, ``tool_calls``, ``finish_reason``,
        ``input_tokens``, ``output_tokens``, ``cost_usd``, ``ttft_ms``, ``latency_ms``."""
        self.fields.update(fields)

    def __enter__(self) -> Trace:
        self._started = time.perf_counter()
        self._created_at = datetime.now(UTC)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.finish(exc)

    async def __aenter__(self) -> Trace:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.finish(exc)

    def finish(self, error: BaseException | None = None) -> None:
        fields = dict(self.fields)
        latency = fields.pop("latency_ms", None)
        run = build_run(
            prompt=fields.pop("prompt", self.prompt),
            model=fields.pop("model", self.model),
            provider=fields.pop("provider", self.provider),
            input=fields.pop("input", self.input),
            params=fields.pop("params", self.params),
            trace_id=fields.pop("trace_id", self.trace_id),
            latency_ms=latency if latency is not None else (time.perf_counter() - self._started) * 1000,
            error=error,
            created_at=self._created_at,
            **fields,
        )
        self.run_id = run["id"]
        self._submit(run)
