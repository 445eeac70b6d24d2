"""Starting uvicorn the same way for every server command (``promptops serve``, ``promptops gateway``)."""

from __future__ import annotations

import importlib.util


def run_server(
    factory: str, *, host: str | None, port: int | None, workers: int = 1, reload: bool = False
) -> None:
    """Run the app that ``factory`` (``module:function``) builds, with the configured logging and the fastest
    event loop and HTTP parser that are installed."""
    import uvicorn

    from promptops.config import get_settings
    from promptops.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        factory,
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        reload=reload,
        access_log=False,
        # Logging is already configured (structured JSON); uvicorn's own dictConfig would replace it.
        log_config=None,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
    )
