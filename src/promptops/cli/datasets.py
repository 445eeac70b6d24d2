"""``promptops datasets ...``: test-case datasets through the REST API (import and export files, build from runs).

The server parses every file, so the CLI and the API report the same errors (``row 3 (line 4): ...``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from promptops.cli import output
from promptops.cli.client import ApiClient, CliError, path_segment
from promptops.cli.common import AllPagesFlag, JsonFlag, LimitOpt, client, list_page
from promptops.datasets import formats
from promptops.errors import ProblemError

app = typer.Typer(
    help="Versioned test-case datasets: import, export, list, build from runs.", no_args_is_help=True
)

FormatOpt = Annotated[
    str | None, typer.Option("--format", "-f", help="csv, jsonl or json (default: from the file name).")
]
MessageOpt = Annotated[str, typer.Option("--message", "-m", help="Commit message of the new version.")]
DescriptionOpt = Annotated[str | None, typer.Option("--description", "-d", help="Dataset description.")]
VersionOpt = Annotated[
    int | None, typer.Option("--version", "-v", min=1, help="Version number (default: latest).")
]


def dataset_path(name: str, *rest: str) -> str:
    """``/api/v1/datasets/<name>[/rest...]`` with the name escaped for the path."""
    path = f"/api/v1/datasets/{path_segment(name)}"
    for part in rest:
        path += "/" + path_segment(part)
    return path


def _read_file(path: Path, fmt: str | None) -> tuple[bytes, formats.Format]:
    try:
        chosen = formats.detect_format(fmt, None, path.name)
    except ProblemError as exc:
        raise CliError(exc.title, f"{exc.detail} (or name the file *.csv, *.jsonl or *.json)", exc.code)
    try:
        size = path.stat().st_size
        if size > formats.MAX_FILE_BYTES:
            raise CliError(
                "Dataset file too large",
                f"{path} has {size} bytes; at most {formats.MAX_FILE_BYTES} are accepted",
                "dataset_too_large",
            )
        return path.read_bytes(), chosen
    except OSError as exc:
        raise CliError("Cannot read dataset file", f"{path}: {exc.strerror or exc}", "file_error")


def _upload(api: ApiClient, name: str, path: Path, fmt: str | None, params: dict[str, Any]) -> Any:
    data, chosen = _read_file(path, fmt)
    response = api.send(
        "POST",
        dataset_path(name, "import"),
        params={"format": chosen, **params},
        content=data,
        headers={"Content-Type": formats.MEDIA_TYPES[chosen]},
    )
    return response.json()


def _print_saved(saved: dict[str, Any], verb: str) -> None:
    version, dataset = saved["version"], saved["dataset"]
    if not saved["created"]:
        output.echo(
            f"{dataset['name']} is unchanged: version {version['version']} already has this content "
            f"({version['caseCount']} cases)."
        )
        return
    output.echo(
        f"{verb} {dataset['name']} version {version['version']}: {version['caseCount']} cases "
        f"(hash {version['contentHash'][:12]})."
    )


@app.command("list")
def list_datasets(
    prefix: Annotated[str | None, typer.Option(help="Folder prefix, e.g. 'sentiment/'.")] = None,
    query: Annotated[str | None, typer.Option("--query", "-q", help="Text in name or description.")] = None,
    archived: Annotated[bool, typer.Option("--archived", help="List archived datasets instead.")] = False,
    limit: LimitOpt = 50,
    all_pages: AllPagesFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """List datasets with their latest version."""
    params = {"prefix": prefix, "q": query, "archived": archived, "limit": limit}
    output.listing(
        list_page("/api/v1/datasets", params, all_pages),
        as_json,
        ["Name", "Latest", "Cases", "Hash", "Description", "Updated"],
        lambda d: [
            d["name"],
            d["latestVersion"],
            (d["latest"] or {}).get("caseCount"),
            (d["latest"] or {}).get("contentHash", "")[:12],
            d["description"],
            output.short_time(d["updatedAt"]),
        ],
        more="More datasets follow; use --all to list them all (next cursor: {cursor}).",
    )


@app.command()
def show(
    name: str,
    version: VersionOpt = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Only cases with this tag (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Cases to show.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Show a dataset version and its first cases."""
    with client() as api:
        dataset = api.get(dataset_path(name))
        number = version or dataset["latestVersion"]
        found = api.get(dataset_path(name, "versions", str(number)))
        page = api.get(dataset_path(name, "versions", str(number), "cases"), tag=tag, limit=limit)
    if as_json:
        output.print_json(
            {"dataset": dataset, "version": found, "cases": page["items"], "nextCursor": page["nextCursor"]}
        )
        return
    output.fields(
        [
            ("Name", dataset["name"]),
            ("Version", f"{found['version']} of {dataset['latestVersion']}"),
            ("Cases", found["caseCount"]),
            ("Description", dataset["description"]),
            ("Commit message", found["commitMessage"]),
            ("Source", found["source"]),
            ("Content hash", found["contentHash"]),
            ("Id", found["id"]),
            ("Created", f"{output.short_time(found['createdAt'])} by {found['createdBy'] or '-'}"),
            ("Archived", dataset["archived"]),
        ]
    )
    output.table(
        ["Id", "Input", "Expected", "Tags"],
        [[c["key"], c["input"], c["expected"], c["tags"]] for c in page["items"]],
    )
    shown = len(page["items"])
    if page["nextCursor"]:
        output.echo(f"Showing {shown} cases; use --limit or 'promptops datasets export' for the rest.")


@app.command()
def create(
    name: str,
    file: Annotated[
        Path | None, typer.Option("--file", help="Cases to start with (CSV, JSONL or JSON).")
    ] = None,
    fmt: FormatOpt = None,
    description: DescriptionOpt = None,
    message: MessageOpt = "",
    as_json: JsonFlag = False,
) -> None:
    """Create a dataset (empty, or with the cases of a file); fails if the name is taken."""
    with client() as api:
        if file is None:
            saved = api.post(
                "/api/v1/datasets",
                {"name": name, "description": description or "", "cases": [], "commitMessage": message},
            )
        else:
            saved = _upload(
                api, name, file, fmt, {"mode": "create", "message": message, "description": description}
            )
    if as_json:
        output.print_json(saved)
        return
    _print_saved(saved, "Created")


@app.command("import")
def import_file(
    name: str,
    file: Path,
    fmt: FormatOpt = None,
    message: MessageOpt = "",
    description: DescriptionOpt = None,
    input_col: Annotated[
        list[str] | None,
        typer.Option(
            "--input-col",
            help="CSV: the input column (repeatable). One makes text inputs, several make variables; "
            "the other columns go into metadata.",
        ),
    ] = None,
    expected_col: Annotated[
        str | None, typer.Option("--expected-col", help="CSV: the column holding the expected output.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Import a file as a new version (creating the dataset if needed); an unchanged file writes nothing.

    Lines may be our cases, promptfoo tests, OpenAI evals samples or Langfuse items (see docs/api.md §9.1).
    """
    params = {
        "message": message,
        "description": description,
        "inputCol": input_col,
        "expectedCol": expected_col,
    }
    with client() as api:
        saved = _upload(api, name, file, fmt, params)
    if as_json:
        output.print_json(saved)
        return
    _print_saved(saved, "Imported")


@app.command()
def export(
    name: str,
    version: VersionOpt = None,
    fmt: Annotated[
        str | None, typer.Option("--format", "-f", help="csv, jsonl or json (default: from -o, else jsonl).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Download a version as CSV, JSONL or JSON."""
    chosen = fmt
    if chosen is None and out is not None and out.suffix.lower() in (".csv", ".jsonl", ".json", ".ndjson"):
        chosen = formats.detect_format(None, None, out.name)
    try:
        chosen = formats.detect_format(chosen or "jsonl", None)
    except ProblemError as exc:
        raise typer.BadParameter(exc.detail, param_hint="--format")
    with client() as api:
        response = api.send(
            "GET", dataset_path(name, "export"), params={"format": chosen, "version": version}
        )
    if out is None:
        sys.stdout.write(response.text)
        sys.stdout.flush()
        return
    try:
        out.write_bytes(response.content)
    except OSError as exc:
        raise CliError("Cannot write the export", f"{out}: {exc.strerror or exc}", "file_error")
    output.echo(
        f"Wrote {name} version {response.headers.get('x-dataset-version')} as {chosen} to {out} "
        f"(hash {response.headers.get('x-content-hash', '')[:12]})."
    )


@app.command()
def versions(name: str, as_json: JsonFlag = False) -> None:
    """List every version of a dataset, newest first."""
    with client() as api:
        items = api.paginate(dataset_path(name, "versions"), {"limit": 200})
    output.listing(
        items,
        as_json,
        ["Version", "Cases", "Hash", "Source", "Commit message", "Created by", "Created"],
        lambda v: [
            v["version"],
            v["caseCount"],
            v["contentHash"][:12],
            v["source"],
            v["commitMessage"],
            v["createdBy"],
            output.short_time(v["createdAt"]),
        ],
        key=None,
    )


@app.command("from-runs")
def from_runs(
    name: str,
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="Runs of this prompt (name or id).")
    ] = None,
    version_id: Annotated[
        str | None, typer.Option("--version-id", help="Runs of this prompt version id.")
    ] = None,
    run: Annotated[list[str] | None, typer.Option("--run", "-r", help="A run id (repeatable).")] = None,
    source: Annotated[
        str | None, typer.Option(help="Runs from this source (playground, sdk, eval ...).")
    ] = None,
    status: Annotated[str, typer.Option(help="ok, error or any.")] = "ok",
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Newest runs to read.")] = 100,
    no_expected: Annotated[
        bool, typer.Option("--no-expected", help="Leave expected empty instead of using each run's output.")
    ] = False,
    description: DescriptionOpt = None,
    message: MessageOpt = "",
    as_json: JsonFlag = False,
) -> None:
    """Turn recorded runs into test cases (a new dataset, or new cases appended to an existing one)."""
    body: dict[str, Any] = {
        "name": name,
        "expectedFrom": "none" if no_expected else "output",
        "description": description or "",
        "commitMessage": message,
    }
    if run:
        if prompt or version_id or source:
            raise typer.BadParameter("give --run ids or filters (--prompt, --version-id, --source), not both")
        body["runIds"] = run
    else:
        body["filter"] = {
            "promptId": prompt,
            "versionId": version_id,
            "source": source,
            "status": status,
            "limit": limit,
        }
    with client() as api:
        result = api.post("/api/v1/datasets/from-runs", body)
    if as_json:
        output.print_json(result)
        return
    _print_saved(result, "Saved")
    output.echo(
        f"Read {result['runs']} runs: {result['added']} new cases, {result['duplicates']} repeated inputs, "
        f"{result['existing']} already in the dataset; variables recovered for {result['recovered']}."
    )


def _set_archived(name: str, archived: bool, as_json: bool) -> None:
    with client() as api:
        if archived:
            dataset = api.delete(dataset_path(name))
        else:
            dataset = api.patch(dataset_path(name), {"archived": False})
    if as_json:
        output.print_json(dataset)
        return
    output.echo(f"{'Archived' if archived else 'Unarchived'} {dataset['name']}.")


@app.command()
def archive(name: str, as_json: JsonFlag = False) -> None:
    """Archive a dataset: hidden from lists, no new versions; pinned versions stay readable."""
    _set_archived(name, True, as_json)


@app.command()
def unarchive(name: str, as_json: JsonFlag = False) -> None:
    """Bring an archived dataset back."""
    _set_archived(name, False, as_json)
