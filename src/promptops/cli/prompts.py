"""``promptops prompts ...``: the registry through its REST API, plus push/pull of prompt files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from promptops.cli import output
from promptops.cli import search as search_cli
from promptops.cli.client import ApiClient, CliError
from promptops.cli.common import (
    AllPagesFlag,
    JsonFlag,
    LimitOpt,
    client,
    exit_failure,
    json_or_string,
    list_page,
    parse_variables,
    prompt_path,
)
from promptops.errors import ProblemError
from promptops.registry.files import dump_prompt_file, find_prompt_files, parse_prompt_file, path_for

app = typer.Typer(help="Create, version, label, render and sync prompts.", no_args_is_help=True)

LabelOpt = Annotated[str | None, typer.Option("--label", "-l", help="Select the version a label points at.")]
VersionOpt = Annotated[int | None, typer.Option("--version", "-v", min=1, help="Select a version number.")]
DirOpt = Annotated[Path, typer.Option("--dir", "-d", help="Folder to write prompt files into.")]

app.command("similar")(search_cli.similar)
app.command("duplicates")(search_cli.duplicates)


# --- helpers --------------------------------------------------------------------------------------------------


def read_prompt_file(path: Path) -> dict[str, Any]:
    """A create-prompt body from a prompt file; a malformed file is a CliError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError("Cannot read prompt file", f"{path}: {exc.strerror or exc}", "file_error")
    try:
        return parse_prompt_file(text, source=str(path))
    except ProblemError as exc:
        raise CliError(exc.title, exc.detail, exc.code)


def parse_variable(spec: str) -> dict[str, Any]:
    """``name[:type][=default]`` as a variable declaration; a default makes the variable optional."""
    head, has_default, default = spec.partition("=")
    name, has_type, var_type = head.partition(":")
    if not name.strip():
        raise typer.BadParameter(f"expected NAME[:TYPE][=DEFAULT], got {spec!r}", param_hint="--var")
    declaration: dict[str, Any] = {"name": name.strip()}
    if has_type:
        declaration["type"] = var_type.strip()
    if has_default:
        # A string default stays text even when it looks like JSON ("42" for a string variable is "42").
        is_string = declaration.get("type", "string") == "string"
        declaration["default"] = default if is_string else json_or_string(default)
        declaration["required"] = False
    return declaration


def _merge_unique(*lists: list[str] | None) -> list[str]:
    merged: list[str] = []
    for values in lists:
        for value in values or []:
            if value not in merged:
                merged.append(value)
    return merged


def _label_summary(labels: dict[str, int]) -> str:
    return ", ".join(f"{name}→{number}" for name, number in sorted(labels.items()))


def _warn_all(version: dict[str, Any]) -> None:
    for warning in version.get("warnings") or []:
        output.warn(f"{version['promptName']}@{version['version']}: {warning}")


# --- reading --------------------------------------------------------------------------------------------------


@app.command("list")
def list_prompts(
    prefix: Annotated[str | None, typer.Option(help="Folder prefix, e.g. 'support/'.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only prompts with this tag.")] = None,
    label: Annotated[str | None, typer.Option(help="Only prompts that have this label.")] = None,
    query: Annotated[str | None, typer.Option("--query", "-q", help="Text in name or description.")] = None,
    archived: Annotated[bool, typer.Option("--archived", help="List archived prompts instead.")] = False,
    limit: LimitOpt = 50,
    all_pages: AllPagesFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """List prompts (one page, or every page with --all)."""
    params = {"prefix": prefix, "tag": tag, "label": label, "q": query, "archived": archived, "limit": limit}
    output.listing(
        list_page("/api/v1/prompts", params, all_pages),
        as_json,
        ["Name", "Latest", "Labels", "Tags", "Description", "Updated"],
        lambda p: [
            p["name"],
            p["latestVersion"],
            _label_summary(p["labels"]),
            p["tags"],
            p["description"],
            output.short_time(p["updatedAt"]),
        ],
        more="More prompts follow; use --all to list them all (next cursor: {cursor}).",
    )


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="name, name@label or name@3")],
    as_json: JsonFlag = False,
) -> None:
    """Show one version of a prompt: metadata, labels, variables and its template or messages."""
    with client() as api:
        resolved = api.get(prompt_path(ref))
    if as_json:
        output.print_json(resolved)
        return
    prompt, version = resolved["prompt"], resolved["version"]
    output.fields(
        [
            ("Name", prompt["name"]),
            ("Version", f"{version['version']} of {prompt['latestVersion']} ({resolved['resolvedBy']})"),
            ("Kind", version["kind"]),
            ("Labels here", version["labels"]),
            ("All labels", _label_summary(prompt["labels"])),
            ("Tags", prompt["tags"]),
            ("Description", prompt["description"]),
            ("Commit message", version["commitMessage"]),
            ("Source", version["source"]),
            ("Model config", version["modelConfig"]),
            ("Content hash", version["contentHash"]),
            ("Created", f"{output.short_time(version['createdAt'])} by {version['createdBy'] or '-'}"),
            ("Archived", prompt["archived"]),
        ]
    )
    if version["variables"]:
        output.table(
            ["Variable", "Type", "Required", "Default", "Description"],
            [
                [v["name"], v["type"], v["required"], v.get("default"), v.get("description")]
                for v in version["variables"]
            ],
        )
    if version["kind"] == "chat":
        for message in version["messages"] or []:
            output.text_block(message["content"], title=message["role"])
    else:
        output.text_block(version["template"] or "", title="template")
    for warning in version["warnings"]:
        output.warn(warning)


@app.command()
def versions(name: str, as_json: JsonFlag = False) -> None:
    """List every version of a prompt, newest first."""
    with client() as api:
        items = api.paginate(prompt_path(name, "versions"), {"limit": 200})
    output.listing(
        items,
        as_json,
        ["Version", "Labels", "Kind", "Hash", "Source", "Commit message", "Created by", "Created"],
        lambda v: [
            v["version"],
            v["labels"],
            v["kind"],
            v["contentHash"][:12],
            v["source"],
            v["commitMessage"],
            v["createdBy"],
            output.short_time(v["createdAt"]),
        ],
        key=None,
    )


@app.command()
def history(
    name: str,
    label: Annotated[str | None, typer.Option(help="Only moves of this label.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show how the prompt's labels moved (newest first)."""
    with client() as api:
        events = api.get(prompt_path(name, "history"), label=label)
    if as_json:
        output.print_json(events)
        return
    output.table(
        ["When", "Label", "Action", "From", "To", "Reason", "Actor"],
        [
            [
                output.short_time(e["createdAt"]),
                e["label"],
                e["action"],
                e["fromVersion"],
                e["toVersion"],
                e["reason"],
                e["actorId"],
            ]
            for e in events
        ],
    )


@app.command()
def diff(
    name: str,
    from_ref: Annotated[str, typer.Argument(metavar="FROM", help="Version number, label or other@ref.")],
    to_ref: Annotated[str, typer.Argument(metavar="TO", help="Version number, label or other@ref.")],
    as_json: JsonFlag = False,
) -> None:
    """Diff two versions: the template as a unified diff, then the structured changes."""
    with client() as api:
        result = api.get(prompt_path(name, "diff"), **{"from": from_ref, "to": to_ref})
    if as_json:
        output.print_json(result)
        return
    if result["identical"]:
        output.echo(f"No differences between {result['from']} and {result['to']}.")
        return
    if result["kindChanged"]:
        output.echo(f"The kind changed between {result['from']} and {result['to']}.")
    if result["template"]:
        output.diff(result["template"])
    rows = []
    for part in ("variables", "modelConfig", "responseSchema", "metadata"):
        for change in result[part]:
            rows.append([part, change["path"], change["op"], change.get("from"), change.get("to")])
    if rows:
        output.table(["Part", "Path", "Change", "From", "To"], rows, title="Structured changes")


@app.command()
def render(
    ref: Annotated[str, typer.Argument(help="name, name@label or name@3")],
    var: Annotated[
        list[str] | None,
        typer.Option("--var", help="KEY=VALUE; VALUE is parsed as JSON when it parses, else taken as text."),
    ] = None,
    vars_file: Annotated[
        Path | None, typer.Option("--vars-file", help="A JSON object of variables (--var values win).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Render a version with variables and print the result."""
    variables = parse_variables(var, vars_file)
    with client() as api:
        result = api.post(prompt_path(ref, "render"), {"variables": variables})
    if as_json:
        output.print_json(result)
        return
    if result["kind"] == "chat":
        output.echo("\n\n".join(f"[{m['role']}]\n{m['content']}" for m in result["messages"] or []))
    else:
        # The rendered text verbatim: no trailing newline added, so it can be piped as it is.
        typer.echo(result["text"] or "", nl=not (result["text"] or "").endswith("\n"))


# --- writing --------------------------------------------------------------------------------------------------


@app.command()
def create(
    name: str,
    template: Annotated[str | None, typer.Option(help="The template text (a text prompt).")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="A prompt file (front matter + template body).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the prompt is for.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="A label for version 1 (repeatable).")
    ] = None,
    var: Annotated[
        list[str] | None,
        typer.Option(
            "--var", help="Declare a variable NAME:TYPE=DEFAULT (type and default optional; repeatable)."
        ),
    ] = None,
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Commit message of version 1.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a prompt with its first version, from --template or a prompt --file."""
    if (template is None) == (file is None):
        raise typer.BadParameter("give exactly one of --template or --file", param_hint="--template/--file")
    body: dict[str, Any] = (
        read_prompt_file(file) if file is not None else {"kind": "text", "template": template}
    )
    body["name"] = name
    if description is not None:
        body["description"] = description
    if tag:
        body["tags"] = _merge_unique(body.get("tags"), tag)
    if label:
        body["labels"] = _merge_unique(body.get("labels"), label)
    if var:
        declared = [parse_variable(v) for v in var]
        names = {d["name"] for d in declared}
        body["variables"] = [v for v in body.get("variables") or [] if v.get("name") not in names] + declared
    if message is not None:
        body["commitMessage"] = message
    with client() as api:
        created = api.post("/api/v1/prompts", body)
    if as_json:
        output.print_json(created)
        return
    version = created["version"]
    labels = [lbl for lbl in version["labels"] if lbl != "latest"]
    suffix = f" (labels: {', '.join(labels)})" if labels else ""
    output.echo(f"Created {created['prompt']['name']} version {version['version']}{suffix}")
    _warn_all(version)
    for near in created.get("nearDuplicates") or []:
        output.warn(
            f"{near['similarity']:.0%} similar to {near['name']}@{near['version']}: does this prompt already "
            f"exist? (promptops prompts similar {created['prompt']['name']})"
        )


@app.command()
def push(
    paths: Annotated[
        list[Path], typer.Argument(help="Prompt files (.prompt.md) and/or folders searched recursively.")
    ],
    label: Annotated[
        list[str] | None,
        typer.Option("--label", "-l", help="Also point this label at new versions (repeatable)."),
    ] = None,
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Commit message of new versions.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Push prompt files: create missing prompts, add a version where the content changed.

    Every file given or found under a folder is pushed once, in order; a file whose content hash equals the
    latest version's is reported unchanged and its labels are not moved. A path or file that fails is
    reported with its path and the others are still pushed; the exit status is then 1.
    """
    results: list[dict[str, Any]] = []
    api: ApiClient | None = None
    try:
        for file, error in _push_plan(paths):
            if error is None:
                api = api or client()
                try:
                    results.append(_push_one(api, file, label or [], message, dry_run))
                    continue
                except CliError as exc:
                    error = exc
            # One bad path or file should not hide what happened to the others; report it and go on.
            results.append(
                {"file": str(file), "name": None, "action": "error", "version": None, "error": str(error)}
            )
    finally:
        if api is not None:
            api.close()
    if as_json:
        output.print_json(results)
    else:
        output.table(
            ["File", "Name", "Action", "Version"],
            [[r["file"], r["name"], r["action"], r["version"]] for r in results],
        )
        output.echo(_push_summary(results, dry_run))
    failures = [r for r in results if r["action"] == "error"]
    for r in failures:
        output.error(r["error"] if r["file"] in r["error"] else f"{r['file']}: {r['error']}")
    if failures:
        raise exit_failure()


def _push_plan(paths: list[Path]) -> Iterator[tuple[Path, CliError | None]]:
    """Each prompt file to push, in argument order, or a path with the reason it has none to push.

    A folder stands for every *.prompt.md under it; a file named directly and again through its folder is
    pushed once.
    """
    seen: set[Path] = set()
    for path in paths:
        if not path.exists():
            yield path, CliError("No such file or folder", str(path), "file_error")
            continue
        files = find_prompt_files(path)
        if not files:
            yield (
                path,
                CliError("No prompt files found", f"no *.prompt.md files under {path}", "no_prompt_files"),
            )
        for file in files:
            if (key := file.resolve()) not in seen:
                seen.add(key)
                yield file, None


def _push_summary(results: list[dict[str, Any]], dry_run: bool) -> str:
    """One line counting the outcomes, e.g. ``Summary: 1 created, 2 new versions, 1 failed (4 in all).``"""
    counts = dict.fromkeys(("created", "new version", "updated", "unchanged", "failed"), 0)
    for result in results:
        counts[_outcome(str(result["action"]))] += 1
    parts = [
        f"{count} {kind}{'s' if kind == 'new version' and count != 1 else ''}"
        for kind, count in counts.items()
        if count
    ]
    suffix = "; dry run, nothing changed" if dry_run else ""
    return f"Summary: {', '.join(parts)} ({len(results)} in all{suffix})."


def _outcome(action: str) -> str:
    """The summary category of a push action ("would ..." actions count as what they would do)."""
    if action == "error":
        return "failed"
    if "version" in action:  # "new version 3", "would create version 3"
        return "new version"
    if "create" in action:  # "created", "would create"
        return "created"
    if "updated" in action:  # "updated description+tags", "would be updated tags"
        return "updated"
    return "unchanged"


def _push_one(
    api: ApiClient, file: Path, extra_labels: list[str], message: str | None, dry_run: bool
) -> dict[str, Any]:
    """Push one file with ``PUT /api/v1/prompts/{name}``: the server decides created / new version / unchanged."""
    body = read_prompt_file(file)
    name = str(body["name"])
    body["labels"] = _merge_unique(body.get("labels"), extra_labels)
    if message is not None:
        body["commitMessage"] = message
    pushed = api.put(prompt_path(name), body, params={"dryRun": "true"} if dry_run else None)
    if pushed["resolved"] is not None and pushed["action"] in ("created", "versionCreated"):
        _warn_all(pushed["resolved"]["version"])
    return {"file": str(file), "name": name, "action": _push_action(pushed), "version": pushed["version"]}


def _push_action(pushed: dict[str, Any]) -> str:
    """The words the push table shows for the server's answer."""
    action, dry_run = pushed["action"], pushed["dryRun"]
    if action == "created":
        return "would create" if dry_run else "created"
    if action == "versionCreated":
        return f"would create version {pushed['version']}" if dry_run else f"new version {pushed['version']}"
    if action == "updated":
        return ("would be updated " if dry_run else "updated ") + "+".join(pushed["changed"])
    return "unchanged"


@app.command()
def pull(
    names: Annotated[list[str] | None, typer.Argument(help="Prompt names (or use --all).")] = None,
    directory: DirOpt = Path("."),
    label: Annotated[
        str | None,
        typer.Option("--label", "-l", help="Pull the version this label points at; skip prompts without it."),
    ] = None,
    version: VersionOpt = None,
    all_prompts: Annotated[bool, typer.Option("--all", help="Pull every prompt of the project.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Write prompts as prompt files (DIR/<name>.prompt.md), ready to edit and push back."""
    if label is not None and version is not None:
        raise typer.BadParameter("give --label or --version, not both", param_hint="--label/--version")
    if all_prompts and names:
        raise typer.BadParameter("give prompt names or --all, not both", param_hint="--all")
    if not all_prompts and not names:
        raise typer.BadParameter("name at least one prompt, or use --all", param_hint="NAMES")
    if all_prompts and version is not None:
        raise typer.BadParameter(
            "--version selects one prompt's version; name the prompts", param_hint="--version"
        )
    results: list[dict[str, Any]] = []
    with client() as api:
        if all_prompts:
            # The listing filters by label on the server, so prompts without it are skipped there.
            targets = [p["name"] for p in api.paginate("/api/v1/prompts", {"label": label, "limit": 200})]
        else:
            targets = list(names or [])
        for name in targets:
            try:
                resolved = api.get(prompt_path(name), label=label, version=version)
            except CliError as exc:
                if label is not None and exc.code == "label_not_found":
                    results.append(
                        {"name": name, "version": None, "file": None, "action": f"skipped (no {label})"}
                    )
                    continue
                raise
            target = path_for(directory, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(dump_prompt_file(resolved["prompt"], resolved["version"]), encoding="utf-8")
            results.append(
                {
                    "name": name,
                    "version": resolved["version"]["version"],
                    "file": str(target),
                    "action": "written",
                }
            )
    if as_json:
        output.print_json(results)
        return
    output.table(
        ["Name", "Version", "File", "Action"],
        [[r["name"], r["version"], r["file"], r["action"]] for r in results],
    )


@app.command("label")
def set_label(
    name: str,
    label: str,
    version: Annotated[int, typer.Argument(min=1, help="The version number the label should point at.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the label history and audit log).")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Point LABEL of prompt NAME at VERSION."""
    with client() as api:
        move = api.put(prompt_path(name, "labels", label), {"version": version, "reason": reason})
    if as_json:
        output.print_json(move)
        return
    if _approval_requested(move):
        return
    was = f" (was {move['previousVersion']})" if move["previousVersion"] is not None else ""
    kind = " [deployment]" if move["deployed"] else ""
    output.echo(f"{move['name']}: {move['label']} → version {move['version']}{was}{kind}")


def _approval_requested(answer: dict[str, Any]) -> bool:
    """Say so when the label is gated and the move became an approval request (the server answered 202)."""
    if "status" not in answer or "required" not in answer:
        return False
    output.echo(
        f"{answer['promptName']}: moving {answer['label']} to version {answer['version']} needs "
        f"{answer['required']} approval(s) from {', '.join(answer['roles'])}: request {answer['id']} "
        f"({answer['status']}). See 'promptops approvals show {answer['id']}'."
    )
    return True


@app.command()
def unlabel(name: str, label: str) -> None:
    """Remove LABEL from prompt NAME."""
    with client() as api:
        api.delete(prompt_path(name, "labels", label))
    output.echo(f"{name}: removed label {label}")


@app.command()
def rollback(
    name: str,
    label: Annotated[str, typer.Option("--label", "-l", help="The label to move back.")] = "production",
    to: Annotated[
        int | None,
        typer.Option("--to", min=1, help="Target version (default: where the label pointed before)."),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log).")] = "",
    approver: Annotated[str | None, typer.Option(help="Who approved the rollback.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Roll a label back to its previous version (or to --to VERSION)."""
    with client() as api:
        move = api.post(
            prompt_path(name, "labels", label, "rollback"),
            {"version": to, "reason": reason, "approver": approver},
        )
    if as_json:
        output.print_json(move)
        return
    if _approval_requested(move):
        return
    output.echo(
        f"Rolled back {move['name']}: {move['label']} → version {move['version']} (was {move['previousVersion']})"
    )


@app.command()
def fork(
    name: str,
    new_name: str,
    label: LabelOpt = None,
    version: VersionOpt = None,
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Commit message of the fork.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Copy a version of NAME (latest, --label or --version) into a new prompt NEW_NAME."""
    body: dict[str, Any] = {"newName": new_name, "label": label, "version": version}
    if message is not None:
        body["commitMessage"] = message
    with client() as api:
        created = api.post(prompt_path(name, "fork"), body)
    if as_json:
        output.print_json(created)
        return
    output.echo(f"Forked {name} into {created['prompt']['name']} version {created['version']['version']}")
