"""``promptops slack``: run the Slack bot alone (HTTP mode: /slack/commands, /slack/events, /slack/interactions)."""

from __future__ import annotations

import os
from typing import Annotated

import typer


def slack(
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
) -> None:
    """Run the Slack bot without the rest of the API. Needs PROMPTOPS_SLACK_SIGNING_SECRET (and
    PROMPTOPS_SLACK_BOT_TOKEN for share and notices); users link with /prompt login on the main server."""
    from promptops.cli.serving import run_server
    from promptops.config import get_settings

    if database_url is not None:
        os.environ["PROMPTOPS_DATABASE_URL"] = database_url
    get_settings.cache_clear()
    if not get_settings().slack_signing_secret:
        raise typer.BadParameter("set PROMPTOPS_SLACK_SIGNING_SECRET (the Slack app's signing secret)")
    run_server("promptops.slack.standalone:build_slack_app", host=host, port=port, workers=1)
