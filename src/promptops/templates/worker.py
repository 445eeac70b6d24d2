"""A template worker process: ``python -m promptops.templates.worker <memory-limit-bytes>``.

Started by :mod:`promptops.templates.pool`. Reads jobs from stdin and writes answers to stdout, each a
length-prefixed pickle: a job is ``(name, payload, cpu_seconds)``, an answer ``("ok", result)``,
``("problem", ProblemError)``, ``("limit", "cpu" | "memory")`` or ``("error", text)``. After a limit was hit
the worker answers and exits, so the pool replaces it with a fresh process. It exits at end of input, i.e.
when the server closes the pipe or exits.
"""

from __future__ import annotations

import os
import pickle
import resource
import signal
import struct
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

_HEADER = struct.Struct("!Q")


class _CpuLimit(BaseException):
    """Raised by the SIGPROF handler: the job used up its CPU time."""


def _on_cpu_limit(_signum: int, _frame: Any) -> None:
    raise _CpuLimit


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _address_space() -> int:
    """The process's current virtual memory size in bytes (0 when unknown)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _jobs() -> dict[str, Callable[..., Any]]:
    from promptops.templates import diff, engine, lint

    def call(func: Callable[..., Any]) -> Callable[..., Any]:
        return lambda payload: func(*payload[0], **payload[1])

    return {
        "render": lambda payload: engine.render_in_worker(*payload),
        "scan": engine.scan_in_worker,
        "lint": call(lint.lint_prompt),
        "diff": call(diff.diff_versions),
    }


def _answer(
    jobs: dict[str, Callable[..., Any]], name: str, payload: Any, cpu_seconds: float
) -> tuple[Any, ...]:
    from promptops.errors import ProblemError

    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    try:
        return ("ok", jobs[name](payload))
    except _CpuLimit:
        return ("limit", "cpu")
    except MemoryError:
        return ("limit", "memory")
    except ProblemError as problem:
        return ("problem", problem)
    except Exception as exc:
        return ("error", f"{type(exc).__name__}: {exc}")
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)


def main(argv: list[str]) -> int:
    memory_limit = int(argv[1]) if len(argv) > 1 else 0
    # stdout carries the answers: anything printed by mistake goes to stderr instead.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = os.fdopen(os.dup(0), "rb")
    # Ctrl-C in the server's terminal reaches the whole process group; the server decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGPROF, _on_cpu_limit)
    jobs = _jobs()  # import everything before measuring the start-up size
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_limit > 0:
        limit = _address_space() + memory_limit
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        header = _read_exactly(requests, _HEADER.size)
        if header is None:
            return 0
        (length,) = _HEADER.unpack(header)
        body = _read_exactly(requests, length)
        if body is None:
            return 0
        name, payload, cpu_seconds = pickle.loads(body)  # noqa: S301 - written by our own server
        del body
        answer = _answer(jobs, name, payload, cpu_seconds)
        del payload
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            answer = ("limit", "memory")
            data = pickle.dumps(answer)
        except Exception as exc:
            answer = ("error", f"answer could not be encoded: {type(exc).__name__}: {exc}")
            data = pickle.dumps(answer)
        answers.write(_HEADER.pack(len(data)))
        answers.write(data)
        answers.flush()
        if answer[0] == "limit":
            return 0  # a fresh process replaces this one


if __name__ == "__main__":
    sys.exit(main(sys.argv))
