"""``promptops gateway``: run the capture gateway alone (only the /v1 routes, health and metrics)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer


def gateway(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default PROMPTOPS_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (default PROMPTOPS_PORT or 8000).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="Database shared with `promptops serve` (default PROMPTOPS_DATABASE_URL)."),
    ] = None,
    outbox_dir: Annotated[
        Path | None,
        typer.Option(
            help="Journal directory (default PROMPTOPS_GATEWAY_OUTBOX_DIR or <data_dir>/gateway-outbox)."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes (each with its own journal).")] = 1,
) -> None:
    """Run the OpenAI/Anthropic-compatible capture gateway without the rest of the API (for scale-out).

    Point clients at http://HOST:PORT/v1 with a PromptOps API key. Migrates the database on start.
    """
    from promptops.cli.serving import run_server
    from promptops.config import get_settings

    # The app factory reads settings from the environment (also in worker processes).
    if database_url is not None:
        os.environ["PROMPTOPS_DATABASE_URL"] = database_url
    if outbox_dir is not None:
        os.environ["PROMPTOPS_GATEWAY_OUTBOX_DIR"] = str(outbox_dir)
    get_settings.cache_clear()
    run_server("promptops.gateway.standalone:build_gateway_app", host=host, port=port, workers=workers)
