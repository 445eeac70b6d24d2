"""Structured logs (structlog); every line carries the request id of the request that wrote it.

JSON lines when stderr is a file or a pipe (log collectors), human-readable ``key=value`` lines (coloured) when
it is a terminal; ``PROMPTOPS_LOG_FORMAT=json|console`` decides instead.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Literal

import structlog

from promptops.context import request_id_var


def _add_request_id(_logger: object, _name: str, event: dict[str, object]) -> dict[str, object]:
    rid = request_id_var.get()
    if rid is not None and "request_id" not in event:
        event["request_id"] = rid
    return event


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (it may be redirected after configuration)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


LOG_FORMAT_ENV = "PROMPTOPS_LOG_FORMAT"
LogFormat = Literal["json", "console"]


def log_format(json: bool = True) -> LogFormat:
    """The format of the log lines: ``PROMPTOPS_LOG_FORMAT`` when it says ``json`` or ``console``; otherwise
    ``console`` when stderr is a terminal or ``json`` is false (``PROMPTOPS_LOG_JSON=false``), else ``json``."""
    chosen = _format_override()
    if chosen == "json":
        return "json"
    if chosen == "console" or not json or _stderr_is_terminal():
        return "console"
    return "json"


def _format_override() -> str:
    return os.environ.get(LOG_FORMAT_ENV, "").strip().lower()


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # no stderr, or a closed one
        return False


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Send structlog and stdlib logging (uvicorn, alembic) to stderr in the :func:`log_format` format."""
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
    ]
    renderer: Any
    if log_format(json) == "json":
        renderer = structlog.processors.JSONRenderer()
        own_chain = [*processors, structlog.processors.format_exc_info, renderer]
    else:
        # The console renderer formats exceptions itself; colours only where a terminal shows them.
        colors = _stderr_is_terminal() and not os.environ.get("NO_COLOR")
        renderer = structlog.dev.ConsoleRenderer(colors=colors)
        own_chain = [*processors, renderer]
    structlog.configure(
        processors=own_chain,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        # Look sys.stderr up per logger so redirected streams (tests, daemons) are honoured.
        logger_factory=lambda *_args: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Route stdlib loggers (uvicorn, alembic, sqlalchemy) through the same renderer.
    handler = _CurrentStderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*processors, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
    if _format_override() not in ("", "auto", "json", "console"):
        log.warning(
            "log_format_unknown",
            variable=LOG_FORMAT_ENV,
            value=_format_override(),
            expected="json|console|auto",
        )


log = structlog.get_logger("promptops")
