"""``promptops approvals``: review the label moves that wait for approval (list, show, approve, reject,
override, cancel). A request is made by moving a gated label (``promptops prompts label ...``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from promptops.cli import output
from promptops.cli.client import path_segment
from promptops.cli.common import JsonFlag, client

app = typer.Typer(help="Approval requests for moves of gated labels.", no_args_is_help=True)

RequestArg = Annotated[str, typer.Argument(help="Approval request id (apr_...)")]
CommentOpt = Annotated[str, typer.Option("--comment", "-m", help="Why (kept with the decision and audited).")]


def _path(request_id: str, *rest: str) -> str:
    return "/".join([f"/api/v1/approvals/{path_segment(request_id)}", *rest])


def _summary(item: dict[str, Any]) -> str:
    base = f"v{item['baseVersion']}" if item.get("baseVersion") else "none"
    return (
        f"{item['id']} {item['promptName']}@{item['label']}: {base} → v{item['version']} "
        f"{item['status']} ({item['approvals']}/{item['required']} approvals)"
    )


def _decided(item: dict[str, Any], as_json: bool) -> None:
    if as_json:
        output.print_json(item)
        return
    output.echo(_summary(item))
    move = item.get("move")
    if move:
        before = f"v{move['previousVersion']}" if move.get("previousVersion") else "none"
        output.echo(f"Moved {move['name']}@{move['label']}: {before} → v{move['version']}")


@app.command("list")
def list_approvals(
    status: Annotated[
        str | None, typer.Option(help="open | applied | rejected | superseded | cancelled | overridden")
    ] = "open",
    prompt: Annotated[str | None, typer.Option(help="Prompt name or id.")] = None,
    label: Annotated[str | None, typer.Option()] = None,
    all_statuses: Annotated[bool, typer.Option("--all", help="Every status (not only open).")] = False,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Approval requests, newest first (open ones unless --status or --all)."""
    with client() as api:
        page = api.get(
            "/api/v1/approvals",
            status=None if all_statuses else status,
            prompt=prompt,
            label=label,
            limit=limit,
        )
    output.listing(
        page,
        as_json,
        ["id", "prompt", "move", "status", "approvals", "requested by", "created"],
        lambda r: [
            r["id"],
            f"{r['promptName']}@{r['label']}",
            f"{'v' + str(r['baseVersion']) if r['baseVersion'] else 'none'} → v{r['version']}"
            + (" (rollback)" if r["action"] == "rollback" else ""),
            r["status"],
            f"{r['approvals']}/{r['required']}",
            r["requestedByName"],
            output.short_time(r["createdAt"]),
        ],
    )


@app.command("show")
def show(request_id: RequestArg, as_json: JsonFlag = False) -> None:
    """The review: the request, its diff against the label's version, lint findings, evaluation comparison."""
    with client() as api:
        review = api.get(_path(request_id))
    if as_json:
        output.print_json(review)
        return
    r = review["request"]
    output.fields(
        [
            ("Request", r["id"]),
            ("Move", f"{r['promptName']}@{r['label']} → v{r['version']} ({r['action']})"),
            ("On the label now", f"v{review['currentVersion']}" if review["currentVersion"] else "none"),
            ("Status", r["status"]),
            ("Approvals", f"{r['approvals']}/{r['required']} from {', '.join(r['roles'])}"),
            ("Requested by", r["requestedByName"]),
            ("Reason", r["reason"] or None),
            ("You may decide", "yes" if review["canDecide"] else f"no: {review['whyNot']}"),
        ]
    )
    for d in r["decisions"]:
        output.echo(f"  {d['decision']} by {d['reviewerName']} ({d['reviewerRole']}): {d['comment']}")
    if review["diff"] and review["diff"]["template"]:
        output.diff(review["diff"]["template"])
    findings = review["lint"]["findings"]
    output.echo(f"Lint: {len(findings)} finding(s), {review['lint']['blocking']} blocking")
    for f in findings[:20]:
        output.echo(f"  {f['severity']} {f['rule']} {f['name']}: {f['message']}")
    evaluation = review["evaluation"]
    comparison = evaluation.get("comparison")
    if comparison:
        output.echo(
            f"Evaluation: current {comparison['aPassRate']:.0%} → requested {comparison['bPassRate']:.0%} pass "
            f"on {comparison['cases']} shared cases; {comparison['verdict']}"
        )
    else:
        output.echo(f"Evaluation: {evaluation['note']}")


@app.command("approve")
def approve(request_id: RequestArg, comment: CommentOpt = "", as_json: JsonFlag = False) -> None:
    """Approve: the label moves when this approval meets the rule."""
    with client() as api:
        item = api.post(_path(request_id, "approve"), {"comment": comment})
    _decided(item, as_json)


@app.command("reject")
def reject(
    request_id: RequestArg,
    comment: Annotated[str, typer.Option("--comment", "-m", help="Why (required).")],
    as_json: JsonFlag = False,
) -> None:
    """Reject with a comment; the label stays where it is."""
    with client() as api:
        item = api.post(_path(request_id, "reject"), {"comment": comment})
    _decided(item, as_json)


@app.command("override")
def override(
    request_id: RequestArg,
    note: Annotated[
        str, typer.Option("--note", "-n", help="Why the approvals are skipped (required, audited).")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Admin: move the label without the approvals (audited as ApprovalOverridden with the note)."""
    with client() as api:
        item = api.post(_path(request_id, "override"), {"note": note})
    _decided(item, as_json)


@app.command("cancel")
def cancel(
    request_id: RequestArg,
    note: Annotated[str, typer.Option("--note", "-n", help="Why (optional).")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Withdraw your open request."""
    with client() as api:
        item = api.post(_path(request_id, "cancel"), {"note": note})
    _decided(item, as_json)
