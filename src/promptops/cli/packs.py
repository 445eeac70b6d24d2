"""``promptops packs ...``: export signed template packs, inspect and verify them offline, import with a preview."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from promptops.cli import output
from promptops.cli.common import JsonFlag, client, exit_failure
from promptops.governance import signatures
from promptops.packs import format as pack_format

app = typer.Typer(
    help="Template packs: signed bundles of prompts (and datasets) to share.", no_args_is_help=True
)


class OnConflict(StrEnum):
    SKIP = "skip"
    NEW_VERSION = "new-version"
    FAIL = "fail"


PackFile = Annotated[Path, typer.Argument(help="The pack file (from 'promptops packs export').")]


def _load(path: Path) -> Any:
    if not path.is_file():
        raise typer.BadParameter(f"no such file: {path}", param_hint="PACK")
    if path.stat().st_size > pack_format.MAX_PACK_BYTES:
        raise typer.BadParameter(f"larger than {pack_format.MAX_PACK_BYTES} bytes", param_hint="PACK")
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="PACK") from None


def _selector(raw: str, option: str) -> dict[str, Any]:
    """``name``, ``name@3`` (a version) or ``name@production`` (a label)."""
    name, sep, sel = raw.rpartition("@") if "@" in raw else (raw, "", "")
    if sep and not name:
        raise typer.BadParameter(f"expected NAME[@VERSION|@LABEL], got {raw!r}", param_hint=option)
    if not sel:
        return {"name": raw}
    return {"name": name, "version": int(sel)} if sel.isdigit() else {"name": name, "label": sel}


@app.command("export")
def export(
    name: Annotated[str, typer.Option(help="Pack name (lowercase letters, digits, . _ / -).")],
    version: Annotated[str, typer.Option(help="Pack version, e.g. 1.0.0.")],
    prompt: Annotated[
        list[str],
        typer.Option("--prompt", help="A prompt to include: NAME, NAME@VERSION or NAME@LABEL. Repeat."),
    ],
    output_file: Annotated[Path, typer.Option("--output", "-o", help="Write the pack here.")],
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", help="A dataset to include: NAME or NAME@VERSION. Repeat."),
    ] = None,
    description: Annotated[str, typer.Option(help="What the pack is for.")] = "",
    notes: Annotated[str | None, typer.Option(help="Changelog notes of this version.")] = None,
    changelog_from: Annotated[
        Path | None, typer.Option(help="A previous pack file: its changelog is carried over.")
    ] = None,
) -> None:
    """Export prompt versions (and datasets with their cases and scorer settings) as a pack signed by your
    organization's key."""
    changelog: list[dict[str, Any]] = []
    if changelog_from is not None:
        previous = _load(changelog_from)
        changelog = [
            e for e in (previous.get("manifest") or {}).get("changelog") or [] if e.get("version") != version
        ]
    if notes is not None:
        changelog.insert(0, {"version": version, "notes": notes})
    prompts = []
    for raw in prompt:
        sel = _selector(raw, "--prompt")
        prompts.append({"prompt": sel.pop("name"), **sel})
    datasets = []
    for raw in dataset or []:
        sel = _selector(raw, "--dataset")
        if "label" in sel:
            raise typer.BadParameter(
                f"a dataset is chosen by version number, not {raw!r}", param_hint="--dataset"
            )
        datasets.append({"dataset": sel.pop("name"), **sel})
    body = {
        "name": name,
        "version": version,
        "description": description,
        "changelog": changelog,
        "prompts": prompts,
        "datasets": datasets,
    }
    with client() as api:
        pack = api.post("/api/v1/packs/export", body)
    output_file.write_bytes(pack_format.dumps(pack))
    manifest = pack["manifest"]
    output.echo(
        f"Exported pack {manifest['name']} {manifest['version']} ({len(pack['prompts'])} prompt(s), "
        f"{len(pack['datasets'])} dataset(s)) signed by key {manifest['signer']['keyId']} to {output_file}"
    )


@app.command()
def inspect(pack_file: PackFile, as_json: JsonFlag = False) -> None:
    """Show a pack's manifest, items and changelog (offline; 'packs verify' checks it)."""
    pack = _load(pack_file)
    manifest = pack.get("manifest") or {}
    if as_json:
        output.print_json(manifest)
        return
    output.fields(
        [
            ("Name", manifest.get("name")),
            ("Version", manifest.get("version")),
            ("Description", manifest.get("description")),
            ("Created", f"{manifest.get('createdAt')} by {manifest.get('createdBy')}"),
            ("Signer key", (manifest.get("signer") or {}).get("keyId")),
            ("Content hash", manifest.get("contentHash")),
            ("Scorer types", ", ".join(manifest.get("scorerTypes") or []) or "-"),
        ],
        title="Pack",
    )
    output.table(
        ["Kind", "Name", "Hash"],
        [[i.get("kind"), i.get("name"), str(i.get("hash"))[:16]] for i in manifest.get("items") or []],
    )
    for entry in manifest.get("changelog") or []:
        output.echo(
            f"{entry.get('version')}{' (' + entry['date'] + ')' if entry.get('date') else ''}: {entry.get('notes')}"
        )


@app.command()
def verify(
    pack_file: PackFile,
    public_key: Annotated[
        list[str] | None,
        typer.Option(
            "--public-key",
            help="A trusted signer key: base64, a PEM file, or the JSON of 'promptops audit public-keys -o'. "
            "Without it only the pack's integrity and its own key's signature are checked.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a pack offline: every item hash, the content hash and the Ed25519 signature; exit 1 if any fails."""
    try:
        trusted = signatures.load_public_keys(public_key) if public_key else None
    except signatures.KeyFormatError as exc:
        raise typer.BadParameter(str(exc), param_hint="--public-key") from None
    result = pack_format.check(_load(pack_file), trusted)
    problems = list(result.problems)
    if trusted is not None and result.ok and not result.trusted:
        problems.append(f"signed by key {result.key_id}, which is not among the trusted keys")
    if as_json:
        output.print_json(
            {"ok": not problems, "keyId": result.key_id, "trusted": result.trusted, "problems": problems}
        )
    elif not problems:
        pinned = (
            "a trusted key" if trusted is not None else "its own key (give --public-key to pin the signer)"
        )
        output.echo(f"OK: pack {pack_file} is intact and signed by {pinned}: {result.key_id}")
    else:
        output.echo(f"FAILED: pack {pack_file}:")
        for problem in problems:
            output.echo(f"  - {problem}")
    if problems:
        output.error("Pack verification failed [pack_invalid]")
        raise exit_failure()


@app.command("import")
def import_pack(
    pack_file: PackFile,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would happen.")] = False,
    on_conflict: Annotated[
        OnConflict,
        typer.Option(
            help="For items the project changed itself: skip, add the pack's as a new version, or fail."
        ),
    ] = OnConflict.FAIL,
    trust_key: Annotated[
        list[str] | None, typer.Option("--trust-key", help="Also trust this signer public key (base64).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Import a pack into the current project: a preview of new / changed / conflicting items, then the import."""
    pack = _load(pack_file)
    params: dict[str, Any] = {"dryRun": str(dry_run).lower(), "onConflict": on_conflict.value}
    if trust_key:
        params["trustKey"] = trust_key
    with client() as api:
        result = api.request("POST", "/api/v1/packs/import", params=params, json=pack)
    if as_json:
        output.print_json(result)
        return
    info = result["pack"]
    output.echo(
        f"{'Dry run of' if dry_run else 'Imported'} pack {info['name']} {info['version']} (signer {info['signerKeyId']})"
    )
    output.table(
        ["Kind", "Name", "Status", "Action", "Current", "After", "Detail"],
        [
            [
                i["kind"],
                i["name"],
                i["status"],
                i["action"],
                i["currentVersion"],
                i["resultVersion"],
                i["detail"],
            ]
            for i in result["items"]
        ],
    )
