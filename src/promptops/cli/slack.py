"""``promptops slack``: run the Slack bot alone, in HTTP mode (/slack/commands, /slack/events,
/slack/interactions) or in Socket Mode (a WebSocket to Slack; no public URL)."""

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
    socket_mode: Annotated[
        bool,
        typer.Option(
            "--socket-mode",
            help="Connect to Slack over a WebSocket (PROMPTOPS_SLACK_APP_TOKEN, xapp-...) instead of serving "
            "request URLs; health and metrics stay on the port.",
        ),
    ] = False,
) -> None:
    """Run the Slack bot without the rest of the API. HTTP mode needs PROMPTOPS_SLACK_SIGNING_SECRET, Socket
    Mode PROMPTOPS_SLACK_APP_TOKEN (both want PROMPTOPS_SLACK_BOT_TOKEN for share and notices); users link
    with /prompt login on the main server."""
    from promptops.cli.serving import run_server
    from promptops.config import get_settings

    if database_url is not None:
        os.environ["PROMPTOPS_DATABASE_URL"] = database_url
    get_settings.cache_clear()
    settings = get_settings()
    if socket_mode:
        if not (settings.slack_app_token or "").startswith("xapp-"):
            raise typer.BadParameter(
                "set PROMPTOPS_SLACK_APP_TOKEN to the Slack app's app-level token (xapp-..., scope "
                "connections:write)"
            )
        run_server("promptops.slack.standalone:build_socket_mode_app", host=host, port=port, workers=1)
        return
    if not settings.slack_signing_secret:
        raise typer.BadParameter("set PROMPTOPS_SLACK_SIGNING_SECRET (the Slack app's signing secret)")
    run_server("promptops.slack.standalone:build_slack_app", host=host, port=port, workers=1)
