"""The ``promptops`` command: run the server, log in, and drive the registry through its REST API.

Every command but ``serve`` and ``audit verify --database-url`` is a thin client of the API: the server
holds all behaviour, the CLI parses arguments, calls one or a few endpoints and prints the answer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from promptops.cli import admin, audit, datasets, evals, feedback, models, output, promptopt, prompts
from promptops.cli import alerts as alerts_cli
from promptops.cli import approvals as approvals_cli
from promptops.cli import config as cfg
from promptops.cli import eval_schedules as eval_schedules_cli
from promptops.cli import experiments as experiments_cli
from promptops.cli import gateway as gateway_cli
from promptops.cli import monitor as monitor_cli
from promptops.cli import optimize as optimize_cli
from promptops.cli import packs as packs_cli
from promptops.cli import privacy as privacy_cli
from promptops.cli import search as search_cli
from promptops.cli import slack as slack_cli
from promptops.cli import sso as sso_cli
from promptops.cli.client import ApiClient, CliError
from promptops.cli.common import JsonFlag, client
from promptops.cli.lint import lint as lint_command
from promptops.errors import ProblemError

if TYPE_CHECKING:
    # Typer vendors click and does not re-export the base Context that TyperGroup.invoke takes.
    from typer._click import Context as ClickContext


class _Root(TyperGroup):
    """Turns every CliError (and a local ProblemError) into ``Error: ...`` on stderr and exit status 1."""

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            output.error(str(exc))
            raise typer.Exit(code=1)
        except ProblemError as exc:
            output.error(str(CliError(exc.title, exc.detail, exc.code)))
            raise typer.Exit(code=1)


app = typer.Typer(
    cls=_Root,
    name="promptops",
    help="PromptOps: a self-hostable prompt registry. Run the server, or manage prompts on one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(prompts.app, name="prompts")
app.add_typer(audit.app, name="audit")
app.add_typer(admin.keys_app, name="keys")
app.add_typer(admin.members_app, name="members")
app.add_typer(admin.projects_app, name="projects")
app.add_typer(models.providers_app, name="providers")
app.add_typer(models.models_app, name="models")
app.add_typer(models.runs_app, name="runs")
app.add_typer(datasets.app, name="datasets")
evals.app.add_typer(eval_schedules_cli.app, name="schedule")
app.add_typer(evals.app, name="eval")
app.command("run")(models.run)
app.command("lint")(lint_command)
app.add_typer(feedback.app, name="feedback")
app.add_typer(feedback.annotate_app, name="annotate")
app.command("generate")(promptopt.generate)
app.command("refine")(promptopt.refine)
app.add_typer(optimize_cli.app, name="optimize")
app.add_typer(experiments_cli.app, name="experiments")
app.add_typer(alerts_cli.app, name="alerts")
app.add_typer(monitor_cli.app, name="monitor")
app.add_typer(approvals_cli.app, name="approvals")
app.add_typer(packs_cli.app, name="packs")
app.add_typer(privacy_cli.app, name="privacy")
app.command("gateway")(gateway_cli.gateway)
app.command("slack")(slack_cli.slack)
app.command("search")(search_cli.search)
app.add_typer(search_cli.embeddings_app, name="search-embeddings")
app.add_typer(sso_cli.app, name="sso")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default PROMPTOPS_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (default PROMPTOPS_PORT or 8000).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes sharing the port, to use more than one CPU core (PostgreSQL only; "
            "about one per core).",
        ),
    ] = 1,
    reload: Annotated[bool, typer.Option("--reload", help="Restart on code changes (development).")] = False,
) -> None:
    """Run the PromptOps server (migrates the database and bootstraps a fresh installation on start)."""
    from promptops.cli.serving import run_server

    if workers > 1:
        import asyncio

        from promptops.config import get_settings
        from promptops.lifecycle import prepare

        settings = get_settings()
        if not settings.effective_database_url.startswith("postgresql"):
            raise typer.BadParameter(
                "several workers need PostgreSQL (set PROMPTOPS_DATABASE_URL): the embedded SQLite database "
                "is served by one process",
                param_hint="--workers",
            )
        if reload:
            raise typer.BadParameter("--reload runs one process; leave out --workers", param_hint="--workers")
        asyncio.run(prepare(settings))  # once, before the workers start together
    run_server("promptops.app:build_default_app", host=host, port=port, workers=workers, reload=reload)


@app.command()
def openapi(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the document here instead of standard output."),
    ] = None,
) -> None:
    """Print the server's OpenAPI 3.1 document (what the web UI's and SDKs' clients are generated from)."""
    import json

    from promptops.app import create_app
    from promptops.config import Settings

    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", bootstrap=False, web_dir=None)
    text = json.dumps(create_app(settings, migrate=False).openapi(), indent=1, sort_keys=True) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Jobs run at once (default PROMPTOPS_JOB_CONCURRENCY or 2)."),
    ] = None,
) -> None:
    """Run background job workers (evaluations, optimizations) on PostgreSQL until SIGTERM or Ctrl-C.

    Needs a migrated database (start `promptops serve` once). Run as many as you like, on any machine.
    """
    import asyncio

    from promptops.config import get_settings
    from promptops.logging import configure_logging
    from promptops.worker import WorkerError, run_worker

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        status = asyncio.run(run_worker(settings, concurrency))
    except WorkerError as exc:
        raise CliError("cannot start the worker", str(exc), "worker_unavailable")
    raise typer.Exit(code=status)


@app.command()
def login(
    url: Annotated[
        str | None,
        typer.Option(help="Server URL (default: PROMPTOPS_URL, the stored URL, or http://127.0.0.1:8000)."),
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="An API key (po_...). Prompted for when --email is not given.")
    ] = None,
    email: Annotated[str | None, typer.Option(help="Log in as a user instead of with an API key.")] = None,
    password: Annotated[
        str | None, typer.Option(help="The user's password (prompted for when omitted).")
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="Project (name or id) for user sessions; sent as X-Project.")
    ] = None,
    totp_code: Annotated[
        str | None,
        typer.Option(
            "--totp-code", help="Two-factor code, for accounts that have one (prompted for when needed)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check credentials against the server and store them in the config file (mode 0600)."""
    if key is not None and email is not None:
        raise typer.BadParameter("give --key or --email, not both", param_hint="--key/--email")
    stored = cfg.load_stored()
    base = (url or os.environ.get(cfg.URL_ENV) or stored.url or cfg.DEFAULT_URL).rstrip("/")
    if email is not None:
        if password is None:
            password = typer.prompt("Password", hide_input=True)
        body = {"email": email, "password": password, "project": project, "totpCode": totp_code}
        with ApiClient(base) as anonymous:
            try:
                session = anonymous.post("/api/v1/auth/login", body)
            except CliError as exc:
                if exc.code != "totp_required" or totp_code is not None:
                    raise
                body["totpCode"] = typer.prompt("Two-factor code")
                session = anonymous.post("/api/v1/auth/login", body)
        token = str(session["token"])
    else:
        token = key or typer.prompt("API key", hide_input=True)
    with ApiClient(base, token, project) as api:
        me = api.get("/api/v1/auth/me")
    config = cfg.CliConfig(url=base, token=token, project=project)
    path = cfg.save(config)
    if as_json:
        output.print_json({"url": base, "project": project, "configFile": str(path), "me": me})
        return
    output.echo(
        f"Logged in to {base} as {me['name']} ({me['kind']}, role {me['role']}, project {me['projectId']})."
    )
    output.echo(f"Credentials saved to {path}")
    if project is not None and not config.is_session:
        output.warn("an API key is bound to its own project; --project only applies to user sessions")


@app.command()
def logout() -> None:
    """Forget the stored credentials (and end the login session on the server)."""
    stored = cfg.load_stored()
    if stored.token and stored.is_session:
        try:
            with ApiClient(stored.url or cfg.DEFAULT_URL, stored.token, stored.project) as api:
                api.post("/api/v1/auth/logout")
        except CliError as exc:
            # The local token is forgotten either way; the session then simply expires on the server.
            output.warn(f"could not end the session on the server: {exc}")
    if cfg.clear():
        output.echo("Logged out.")
    else:
        output.echo("Not logged in.")
    if os.environ.get(cfg.KEY_ENV):
        output.warn(f"{cfg.KEY_ENV} is set in the environment and still supplies a key")


@app.command()
def whoami(as_json: JsonFlag = False) -> None:
    """Show who the stored credentials act as, in which project, with which permissions."""
    with client() as api:
        me = api.get("/api/v1/auth/me")
        url = api.url
    if as_json:
        output.print_json(me)
        return
    output.fields(
        [
            ("Server", url),
            ("Name", me["name"]),
            ("Kind", me["kind"]),
            ("Id", me["id"]),
            ("Role", me["role"]),
            ("Project", me["projectId"]),
            ("Organization", me["orgId"]),
            ("Permissions", me["permissions"]),
        ]
    )


def main() -> None:
    """Run the CLI (same as the ``promptops`` entry point)."""
    app()


if __name__ == "__main__":
    main()
