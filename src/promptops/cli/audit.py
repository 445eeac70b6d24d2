"""``promptops audit ...``: read the audit trail, export it, sign checkpoints and verify the hash chain (online, on
a database, or offline on an export file with the public keys)."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from promptops.cli import output
from promptops.cli.common import JsonFlag, client, exit_failure
from promptops.cli.offline import on_each_project
from promptops.governance import exportfile, signatures

app = typer.Typer(help="Read and verify the tamper-evident audit trail.", no_args_is_help=True)

# Shown elsewhere in the row (name) or too long to read in a table (ids, hashes); --json has them all.
SUMMARY_SKIP = {"name", "deployRef", "contentHash"}


def _summary(data: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v}"
        for k, v in data.items()
        if k not in SUMMARY_SKIP and not k.endswith("Id") and v not in (None, "", [], {})
    )


@app.command("list")
def list_events(
    prompt: Annotated[str | None, typer.Option(help="Prompt name or id.")] = None,
    user: Annotated[
        str | None, typer.Option(help="Actor id or name (e.g. an email or apikey:<name>).")
    ] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Event type, e.g. LabelMoved.")] = None,
    since: Annotated[str | None, typer.Option(help="From this ISO 8601 time (inclusive).")] = None,
    until: Annotated[str | None, typer.Option(help="Until this ISO 8601 time (exclusive).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many events (newest first).")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List audit events, newest first."""
    with client() as api:
        page = api.get(
            "/api/prompt/audit",
            promptId=prompt,
            user=user,
            eventType=event_type,
            limit=limit,
            **{"from": since, "to": until},
        )
    output.listing(
        page,
        as_json,
        ["Seq", "Time", "Event", "Actor", "Prompt", "Details"],
        lambda e: [
            e["seq"],
            output.short_time(e["timestamp"]),
            e["eventType"],
            e["user"],
            (e["data"] or {}).get("name") or e["promptId"],
            _summary(e["data"] or {}),
        ],
        key="events",
        more="Older events exist; narrow the filters or raise --limit.",
    )


class Chain(StrEnum):
    PROJECT = "project"
    ORG = "org"


ChainOpt = Annotated[
    Chain,
    typer.Option(
        "--chain",
        help="project: your project's chain; org: the organization's sign-in chain (needs audit:verify).",
    ),
]


@app.command("export")
def export(
    output_file: Annotated[Path, typer.Option("--output", "-o", help="Write the JSON Lines export here.")],
    chain: ChainOpt = Chain.PROJECT,
) -> None:
    """Download a chain as JSON Lines: every event with its hash, the signed checkpoints, the public keys
    and a signed trailer. Check it offline with 'promptops audit verify --file'."""
    partial = output_file.with_name(output_file.name + ".part")
    with client() as api, partial.open("wb") as handle:
        size = api.download("/api/v1/audit/export", handle, chain=chain.value)
    partial.replace(output_file)
    with output_file.open("rb") as handle:
        header = orjson.loads(handle.readline())
    output.echo(
        f"Exported {header['headSeq']} events of the {chain.value} chain {header['chainId']} to {output_file} "
        f"({size} bytes)"
    )


@app.command("public-keys")
def public_keys(
    output_file: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also save the key list (JSON) for --public-key.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the organization's signing keys (public parts) with their validity periods."""
    with client() as api:
        keys = api.get("/api/v1/audit/public-keys")
    if output_file is not None:
        output_file.write_bytes(orjson.dumps(keys, option=orjson.OPT_INDENT_2) + b"\n")
    if as_json:
        output.print_json(keys)
        return
    output.table(
        ["Key id", "Algorithm", "Valid from", "Valid until", "Public key"],
        [
            [k["keyId"], k["algorithm"], k["validFrom"], k["validUntil"] or "(current)", k["publicKey"]]
            for k in keys["keys"]
        ],
    )
    if output_file is not None:
        output.echo(f"Saved to {output_file}: pass it as --public-key to 'promptops audit verify --file'.")


@app.command("checkpoint")
def checkpoint(chain: ChainOpt = Chain.PROJECT, as_json: JsonFlag = False) -> None:
    """Sign a checkpoint of the chain head now (the server also signs one periodically)."""
    with client() as api:
        cp = api.post("/api/v1/audit/checkpoints", {"chain": chain.value})
    if as_json:
        output.print_json(cp)
        return
    output.echo(
        f"Signed checkpoint of {cp['chain']} chain {cp['chainId']} at seq {cp['seq']} with key {cp['keyId']}"
    )


@app.command("rotate-key")
def rotate_key(as_json: JsonFlag = False) -> None:
    """Replace the organization's signing key; the old public key stays listed for old checkpoints."""
    with client() as api:
        keys = api.post("/api/v1/audit/signing-keys/rotate")
    if as_json:
        output.print_json(keys)
        return
    current = next(k for k in keys["keys"] if k["current"])
    output.echo(f"New signing key {current['keyId']}; {len(keys['keys']) - 1} earlier key(s) stay listed.")


def _verify_file(path: Path, keys: list[str], as_json: bool) -> None:
    try:
        trusted = signatures.load_public_keys(keys)
    except signatures.KeyFormatError as exc:
        raise typer.BadParameter(str(exc), param_hint="--public-key") from None
    if not path.is_file():
        raise typer.BadParameter(f"no such file: {path}", param_hint="--file")
    with path.open("rb") as handle:
        report = exportfile.verify_lines(handle, trusted)
    result = report.to_dict()
    if as_json:
        output.print_json(result)
    elif report.ok:
        output.echo(
            f"OK: {result['chain']} chain {result['chainId']}: {result['eventsChecked']} events re-hashed and "
            f"linked, {result['signaturesVerified']} signature(s) verified (last seq {result['lastSeq']})"
        )
    else:
        first = result["firstProblem"]
        output.echo(
            f"FAILED: {result['chain']} chain {result['chainId']}: {len(result['problems'])} problem(s); the first "
            f"at seq {first['seq']}: {first['kind']}: {first['detail']}"
        )
        output.table(
            ["Seq", "Line", "Kind", "Detail"],
            [[p["seq"], p["line"], p["kind"], p["detail"]] for p in result["problems"]],
        )
    if not report.ok:
        first = result["firstProblem"]
        output.error(
            f"Audit export verification failed at seq {first['seq']} ({first['kind']}) [audit_export_invalid]"
        )
        raise exit_failure()


@app.command()
def verify(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="Verify an export (from 'promptops audit export') offline: no server, no database.",
        ),
    ] = None,
    public_key: Annotated[
        list[str] | None,
        typer.Option(
            "--public-key",
            help="With --file: a trusted key: base64, a PEM file, or the JSON of 'promptops audit public-keys -o'"
            " (with validity periods). Repeat for several keys.",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Verify directly on this database (offline compliance check) instead of asking the server.",
        ),
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="With --database-url: only this project (id or name); default all.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Recompute the audit hash chain; exit status 1 when any event was edited, deleted or inserted.

    With --file, check an export offline: every hash and link, every checkpoint signature against the
    trusted --public-key(s); the first bad event or signature is named by its sequence number."""
    if file is not None:
        if database_url is not None or project is not None:
            raise typer.BadParameter("--file verifies an export on its own", param_hint="--file")
        if not public_key:
            raise typer.BadParameter(
                "--file needs at least one trusted --public-key", param_hint="--public-key"
            )
        _verify_file(file, public_key, as_json)
        return
    if public_key:
        raise typer.BadParameter("--public-key goes with --file", param_hint="--public-key")
    if project is not None and database_url is None:
        raise typer.BadParameter(
            "--project needs --database-url (the server verifies the project of your credentials)",
            param_hint="--project",
        )
    if database_url is None:
        with client() as api:
            results = [api.get("/api/v1/audit/verify")]
        payload: Any = results[0]
    else:
        results = asyncio.run(verify_database(database_url, project))
        payload = {"ok": all(r["ok"] for r in results), "projects": results}
    if as_json:
        output.print_json(payload)
    else:
        for result in results:
            _print_result(result)
    broken = [r for r in results if not r["ok"]]
    if broken:
        count = sum(len(r["problems"]) for r in broken)
        output.error(f"Audit chain verification failed: {count} problem(s) found [audit_chain_broken]")
        raise exit_failure()


def _print_result(result: dict[str, Any]) -> None:
    label = result["projectId"] + (f" ({result['projectName']})" if result.get("projectName") else "")
    if result["ok"]:
        output.echo(
            f"OK: audit chain of project {label} is intact: {result['eventsChecked']} events verified "
            f"(last seq {result['lastSeq']})"
        )
        return
    output.echo(
        f"FAILED: audit chain of project {label}: {len(result['problems'])} problem(s) in "
        f"{result['eventsChecked']} events"
    )
    output.table(
        ["Seq", "Event id", "Kind", "Detail"],
        [[p["seq"], p["eventId"], p["kind"], p["detail"]] for p in result["problems"]],
    )


async def verify_database(url: str, project: str | None) -> list[dict[str, Any]]:
    """Verify the chains of every project in the database at ``url`` (or the one named) without the server."""
    from promptops.governance.audit import verify_project

    async def verify(session: Any, project_id: str) -> dict[str, Any]:
        return (await verify_project(session, project_id)).to_dict()

    return await on_each_project(url, project, verify)
