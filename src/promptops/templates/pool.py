"""Worker processes for CPU-bound template work, so that no template can starve or kill the server.

Renders (see :func:`promptops.templates.engine.render`) and the parsing, linting and diffing of big templates
run in a small pool of ``python -m promptops.templates.worker`` processes, never on the server's event loop:

- **Memory**: each worker limits its address space (``RLIMIT_AS``) to its start-up size plus
  ``PROMPTOPS_TEMPLATE_MEMORY_MB``; a job that needs more gets a ``MemoryError`` there (422
  ``render_memory_exceeded``), and a worker that dies anyway only fails its own job (422 ``render_aborted``).
- **CPU**: a worker stops a job after ``PROMPTOPS_TEMPLATE_CPU_SECONDS`` of CPU time (``ITIMER_PROF``); if it
  is stuck inside one long C call the server kills it a second later, measuring its CPU time in ``/proc``
  (422 ``render_cpu_exceeded``).
- **Isolation**: a worker that hit a limit, died or was killed is replaced; other jobs, on other workers, are
  not affected (unlike :class:`concurrent.futures.ProcessPoolExecutor`, where one dead worker breaks the pool).
- **Queueing**: jobs wait for a free worker at most ``PROMPTOPS_TEMPLATE_QUEUE_SECONDS`` (then 503
  ``template_workers_busy``).

The server talks to a worker over its stdin/stdout: length-prefixed pickles. Answers are unpickled with an
allow-list of the few classes they contain, so even a compromised worker cannot make the server run code.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io
import os
import pickle
import queue
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from promptops.errors import ProblemError, TemplateProblem
from promptops.templates import limits as _limits
from promptops.templates.limits import TemplateLimits

__all__ = ["diff_versions", "run", "shutdown", "worker_pids"]

_HEADER = struct.Struct("!Q")
# Largest answer accepted from a worker: rendered text is at most a few MB; anything far larger is an attack.
_MAX_ANSWER_BYTES = 256 * 1024 * 1024
# A worker whose job exceeded its CPU limit gets this long to stop itself before it is killed.
_KILL_GRACE_SECONDS = 1.0
_POLL_SECONDS = 0.05


class _Worker:
    """One worker process; used by one thread at a time."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter running our own module
            [sys.executable, "-m", "promptops.templates.worker", str(memory_mb * 1024 * 1024)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            close_fds=True,
            env=env,
        )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        """Let the worker exit on end of input (it finishes a job it is running first)."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the worker has used, from ``/proc``; None where that is not available."""
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def run(self, request: bytes, cpu_limit: float) -> tuple[str, bytes]:
        """Send one job and wait for its answer: ``("ok", answer)``, ``("cpu", b"")`` when the worker had to be
        killed for exceeding ``cpu_limit``, or ``("died", b"")`` when it ended without answering."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        # The CPU time at the start is read when the first poll times out (a fast job never reads /proc);
        # that misses at most one poll interval of the job's CPU time.
        started: float | None = None
        try:
            self.proc.stdin.write(_HEADER.pack(len(request)))
            view = memoryview(request)
            while view:
                written = self.proc.stdin.write(view)
                view = view[written or 0 :]
        except OSError:
            return "died", b""
        fd = self.proc.stdout.fileno()
        buffer = bytearray()
        needed: int | None = None
        # Without /proc, wall-clock time stands in for CPU time, generously.
        wall_deadline = time.monotonic() + 4 * cpu_limit + 10
        while True:
            readable, _, _ = select.select([fd], [], [], _POLL_SECONDS)
            if readable:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return "died", b""
                buffer += chunk
                if needed is None and len(buffer) >= _HEADER.size:
                    (length,) = _HEADER.unpack_from(buffer)
                    if length > _MAX_ANSWER_BYTES:
                        return "died", b""
                    needed = _HEADER.size + length
                if needed is not None and len(buffer) >= needed:
                    return "ok", bytes(buffer[_HEADER.size : needed])
                continue
            used = self.cpu_seconds()
            if started is None:
                started = used if used is not None else -1.0
            if used is not None and started >= 0:
                if used - started > cpu_limit + _KILL_GRACE_SECONDS - _POLL_SECONDS:
                    return "cpu", b""
            elif time.monotonic() > wall_deadline:
                return "cpu", b""


class _Answers(pickle.Unpickler):
    """Unpickles a worker's answer, allowing only the classes answers are made of."""

    _CLASSES = frozenset(
        {
            ("promptops.templates.engine", "_Parsed"),
            ("promptops.templates.engine", "TemplateAnalysis"),
            ("promptops.templates.lint", "LintFinding"),
            ("builtins", "frozenset"),
            ("builtins", "set"),
            ("builtins", "slice"),
            ("collections", "OrderedDict"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._CLASSES:
            return super().find_class(module, name)
        if module == "promptops.errors":
            found = super().find_class(module, name)
            if isinstance(found, type) and issubclass(found, ProblemError):
                return found
        raise pickle.UnpicklingError(f"a template worker answered with a forbidden object: {module}.{name}")


def _decode(raw: bytes) -> tuple[Any, ...]:
    return tuple(_Answers(io.BytesIO(raw)).load())


class _Pool:
    def __init__(self, size: int) -> None:
        self.size = size
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="template-pool")
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers: set[_Worker] = set()
        self._closed = False

    def _spawn(self, memory_mb: int) -> _Worker:
        worker = _Worker(memory_mb)
        with self._lock:
            self._workers.add(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._workers.discard(worker)

    def warm(self, memory_mb: int) -> None:
        """Start the workers now (they boot in parallel), so the first jobs do not wait for a start-up."""
        for _ in range(self.size):
            self._idle.put(self._spawn(memory_mb))

    def _acquire(self, memory_mb: int) -> _Worker:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return self._spawn(memory_mb)
            if worker.alive() and worker.memory_mb == memory_mb:
                return worker
            self._retire(worker)

    def job(self, request: bytes, limits: TemplateLimits, submitted: float) -> tuple[str, tuple[Any, ...]]:
        """Run in one of the pool's threads: a job on an idle worker; a worker that failed is replaced.

        Returns ``("ok", answer)`` with the worker's decoded answer, or ``(status, ())`` for ``busy`` (no
        worker in time), ``cpu`` (killed for its CPU time) and ``died``.
        """
        if time.monotonic() - submitted > limits.queue_seconds:
            return "busy", ()
        worker = self._acquire(limits.memory_mb)
        status, raw = worker.run(request, limits.cpu_seconds)
        recycle = status != "ok" or not worker.alive()
        answer: tuple[Any, ...] = ()
        if status == "ok":
            try:
                answer = _decode(raw)
            except Exception as exc:  # a worker that answers garbage is not trusted again
                answer = ("error", f"undecodable answer: {type(exc).__name__}: {exc}")
                recycle = True
            recycle = recycle or answer[0] == "limit"
        if recycle:
            self._retire(worker)
            if not self._closed:
                self._idle.put(self._spawn(limits.memory_mb))  # its replacement boots while we answer
        else:
            self._idle.put(worker)
        return status, answer

    def submit(self, request: bytes, limits: TemplateLimits) -> asyncio.Future[tuple[str, tuple[Any, ...]]]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, self.job, request, limits, time.monotonic())

    def pids(self) -> list[int]:
        with self._lock:
            return sorted(worker.pid for worker in self._workers if worker.alive())

    def shutdown(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.close()


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def _get_pool(limits: TemplateLimits) -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.size != limits.worker_count:
            if _pool is not None:
                _pool.shutdown()
            _pool = _Pool(limits.worker_count)
            _pool.warm(limits.memory_mb)
        return _pool


def shutdown() -> None:
    """Stop the workers (they finish a running job first); the next job starts a new pool."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown()
            _pool = None


atexit.register(shutdown)


def worker_pids() -> list[int]:
    """Process ids of the running workers (for tests and diagnostics)."""
    with _pool_lock:
        return _pool.pids() if _pool is not None else []


_JOB_NAMES = {"render": "Rendering", "scan": "Analysing", "lint": "Linting", "diff": "Diffing"}


def _limit_problem(job: str, which: str, limits: TemplateLimits, analysis: bool) -> TemplateProblem:
    what = _JOB_NAMES.get(job, "Processing")
    if which == "cpu":
        detail = f"{what} this template used more than {limits.cpu_seconds:g} s of CPU time and was stopped"
        code, limit, resource = "render_cpu_exceeded", limits.cpu_seconds, "cpu"
    elif which == "memory":
        detail = f"{what} this template needed more than {limits.memory_mb} MB of memory and was stopped"
        code, limit, resource = "render_memory_exceeded", limits.memory_mb, "memory"
    else:
        detail = (
            f"The worker process {what.lower()} this template stopped without an answer; the template "
            f"most likely exceeded the {limits.memory_mb} MB memory limit"
        )
        code, limit, resource = "render_aborted", limits.memory_mb, "memory"
    if analysis:
        # Saving or linting: the template itself is too big or too intricate to analyse.
        code = "template_too_complex"
        detail += "; split it into smaller prompts (includes) or simplify it"
    else:
        detail += "; simplify the template's loops, recursion or generated text"
    return TemplateProblem(detail, code=code, limit=limit, resource=resource)


async def run(
    job: str,
    payload: Any,
    *,
    limits: TemplateLimits | None = None,
    analysis: bool = False,
) -> Any:
    """Run a job (``render``, ``scan``, ``lint`` or ``diff``; see :mod:`promptops.templates.worker`) in a
    worker and return its result, or raise its :class:`~promptops.errors.ProblemError`.

    A job that exceeds the CPU or memory limit raises a 422 (``render_cpu_exceeded``,
    ``render_memory_exceeded``, ``render_aborted``; ``template_too_complex`` when ``analysis``), one that
    waits too long for a worker a 503 ``template_workers_busy``.
    """
    limits = limits or _limits.current()
    request = pickle.dumps((job, payload, limits.cpu_seconds), protocol=pickle.HIGHEST_PROTOCOL)
    status, answer = await _get_pool(limits).submit(request, limits)
    if status == "busy":
        raise ProblemError(
            f"All {limits.worker_count} template workers stayed busy for {limits.queue_seconds:g} seconds; "
            "try again later",
            code="template_workers_busy",
            status=503,
            title="Service busy",
        )
    if status != "ok":
        raise _limit_problem(job, status, limits, analysis)
    kind = answer[0]
    if kind == "ok":
        return answer[1]
    if kind == "problem":
        raise answer[1]
    if kind == "limit":
        raise _limit_problem(job, answer[1], limits, analysis)
    raise RuntimeError(f"template worker failed: {answer[1]}")


# difflib costs grow faster than the text: about 2 ms for 4,000 characters, 40 ms for 20,000.
_DIFF_PLAIN_MICROS = 5.0


async def diff_versions(
    a: Mapping[str, Any], b: Mapping[str, Any], from_name: str, to_name: str
) -> dict[str, Any]:
    """:func:`promptops.templates.diff.diff_versions` for async code: big templates are diffed in a worker."""
    from promptops.templates import diff
    from promptops.templates.engine import is_costly

    texts = [
        diff.messages_as_text(v.get("messages")) if v.get("kind") == "chat" else v.get("template") or ""
        for v in (a, b)
    ]
    if not is_costly(texts, plain=_DIFF_PLAIN_MICROS, tag=0.0):
        return diff.diff_versions(a, b, from_name, to_name)
    result: dict[str, Any] = await run("diff", ((dict(a), dict(b), from_name, to_name), {}), analysis=True)
    return result
