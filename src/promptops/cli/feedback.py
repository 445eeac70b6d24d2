"""``promptops feedback`` (give, list, summary) and ``promptops annotate`` (the QA annotation queue)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from promptops.cli import output
from promptops.cli.client import path_segment
from promptops.cli.common import JsonFlag, client, parse_assignment

app = typer.Typer(help="Ratings and comments on prompt versions and runs.", no_args_is_help=True)
annotate_app = typer.Typer(help="The QA annotation queue: claim, rate or skip runs.", no_args_is_help=True)

ScoreOpt = Annotated[float | None, typer.Option("--score", "-s", min=1, max=5, help="1-5 (QA rubric scale).")]
ThumbsOpt = Annotated[str | None, typer.Option("--thumbs", help="up | down")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", "-t", help="A tag (repeatable).")]
RubricOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--rubric", "-r", help="CRITERION=1-5 (correctness, relevance, clarity, safety, format); repeatable."
    ),
]
NotesOpt = Annotated[str, typer.Option("--notes", "-n", help="A comment.")]
UserOpt = Annotated[str | None, typer.Option("--user", help="Who the feedback is from (default: you).")]
QueueOpt = Annotated[str, typer.Option("--queue", "-q", help="Queue name.")]


def rating_body(
    score: float | None,
    thumbs: str | None,
    tags: list[str] | None,
    rubric: list[str] | None,
    notes: str,
    user: str | None,
) -> dict[str, Any]:
    """The rating fields of a feedback body from command-line options."""
    body: dict[str, Any] = {"notes": notes, "tags": list(tags or [])}
    if score is not None:
        body["score"] = score
    if thumbs is not None:
        value = {"up": 1, "down": -1, "+1": 1, "-1": -1, "1": 1}.get(thumbs.lower())
        if value is None:
            raise typer.BadParameter(f"expected up or down, got {thumbs!r}", param_hint="--thumbs")
        body["thumbs"] = value
    if rubric:
        scores: dict[str, float] = {}
        for raw in rubric:
            key, value_text = parse_assignment(raw, "--rubric")
            try:
                scores[key] = float(value_text)
            except ValueError:
                raise typer.BadParameter(f"expected CRITERION=NUMBER, got {raw!r}", param_hint="--rubric")
        body["rubric"] = scores
    if user:
        body["user"] = user
    if "score" not in body and "thumbs" not in body and "rubric" not in body:
        raise typer.BadParameter("give --score, --thumbs or --rubric", param_hint="--score")
    return body


def _show_feedback(item: dict[str, Any]) -> None:
    output.fields(
        [
            ("Id", item["id"]),
            ("Prompt", item["promptId"]),
            ("Version", item["versionId"]),
            ("Run", item["runId"]),
            ("User", item["user"]),
            ("Score", item["score"]),
            ("Thumbs", {1: "up", -1: "down"}.get(item["thumbs"]) if item["thumbs"] else None),
            ("Rubric", item["rubric"]),
            ("Tags", item["tags"]),
            ("Notes", item["notes"]),
            ("Source", item["source"]),
        ]
    )


@app.command("give")
def give(
    ref: Annotated[
        str | None, typer.Argument(help="name, name@label, name@3, prm_ or ver_ id (omit with --run)")
    ] = None,
    run: Annotated[str | None, typer.Option("--run", help="Rate one run instead of a version.")] = None,
    eval_result: Annotated[
        str | None, typer.Option("--eval-result", help="Rate one evaluation result.")
    ] = None,
    score: ScoreOpt = None,
    thumbs: ThumbsOpt = None,
    tag: TagOpt = None,
    rubric: RubricOpt = None,
    notes: NotesOpt = "",
    user: UserOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Rate a prompt version (a bare name rates the production version), a run or an evaluation result."""
    subjects = [x for x in (ref, run, eval_result) if x]
    if len(subjects) != 1:
        raise typer.BadParameter("give exactly one of REF, --run or --eval-result", param_hint="REF")
    body = rating_body(score, thumbs, tag, rubric, notes, user)
    if run:
        body["runId"] = run
    elif eval_result:
        body["evalResultId"] = eval_result
    else:
        body["prompt"] = ref
    with client() as api:
        item = api.post("/api/v1/feedback", body)
    if as_json:
        output.print_json(item)
        return
    output.echo(f"Recorded feedback {item['id']}.")
    _show_feedback(item)


@app.command("list")
def list_feedback(
    prompt: Annotated[str | None, typer.Option(help="Prompt name or id.")] = None,
    version_id: Annotated[str | None, typer.Option("--version-id")] = None,
    run: Annotated[str | None, typer.Option("--run")] = None,
    user: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[str | None, typer.Option()] = None,
    source: Annotated[str | None, typer.Option(help="human | automated | annotation")] = None,
    min_score: Annotated[float | None, typer.Option("--min-score")] = None,
    max_score: Annotated[float | None, typer.Option("--max-score")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Recent feedback, newest first."""
    with client() as api:
        page = api.get(
            "/api/v1/feedback",
            prompt=prompt,
            versionId=version_id,
            runId=run,
            user=user,
            tag=tag,
            source=source,
            minScore=min_score,
            maxScore=max_score,
            limit=limit,
        )
    output.listing(
        page,
        as_json,
        ["id", "when", "version", "run", "user", "score", "thumbs", "tags", "notes"],
        lambda f: [
            f["id"],
            output.short_time(f["createdAt"]),
            f["versionId"],
            f["runId"],
            f["user"],
            f["score"],
            {1: "up", -1: "down"}.get(f["thumbs"]) if f["thumbs"] else None,
            f["tags"],
            f["notes"][:60],
        ],
    )


def _fmt(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}"


@app.command("summary")
def summary(
    ref: Annotated[str, typer.Argument(help="name or id (every version), name@label, name@3 or ver_ id")],
    as_json: JsonFlag = False,
) -> None:
    """Feedback aggregates per version of a prompt."""
    with client() as api:
        result = api.get("/api/v1/feedback/summary", prompt=ref)
    if as_json:
        output.print_json(result)
        return
    rows = [("all", result["overall"]), *((f"v{v['version']}", v) for v in result["versions"])]
    output.table(
        ["version", "count", "mean score", "up", "down", "rubric means", "top tags"],
        [
            [
                label,
                agg["count"],
                _fmt(agg["meanScore"]),
                agg["thumbsUp"],
                agg["thumbsDown"],
                ", ".join(f"{c} {_fmt(s['mean'])}" for c, s in agg["rubric"].items()),
                ", ".join(f"{t} ({n})" for t, n in list(agg["tags"].items())[:5]),
            ]
            for label, agg in rows
        ],
        title=result.get("name") or ref,
    )


# --- annotate ---------------------------------------------------------------------------------------------------


def _show_item(item: dict[str, Any]) -> None:
    output.fields(
        [
            ("Item", item["id"]),
            ("Queue", item["queue"]),
            ("Status", item["status"]),
            ("Run", item["runId"]),
            ("Evaluation result", item["evalResultId"]),
            ("Version", item["versionId"]),
            ("Claimed by", item["claimedBy"]),
            ("Claim expires", output.short_time(item["claimExpiresAt"])),
        ]
    )
    subject = item.get("subject")
    if subject:
        output.text_block(json.dumps(subject.get("input"), indent=2, ensure_ascii=False), title="input")
        if subject.get("expected") is not None:
            output.text_block(subject["expected"], title="expected")
        output.text_block(subject.get("output") or "", title="output")


@annotate_app.command("queue")
def queue_items(
    run: Annotated[list[str] | None, typer.Option("--run", help="A run id (repeatable).")] = None,
    eval_result: Annotated[
        list[str] | None, typer.Option("--eval-result", help="An evaluation result id (repeatable).")
    ] = None,
    sample: Annotated[
        str | None, typer.Option("--sample", help="Queue recent runs of this prompt (name, name@label ...).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many runs --sample takes.")] = 20,
    queue: QueueOpt = "default",
    as_json: JsonFlag = False,
) -> None:
    """Put runs or evaluation results in the queue for rating."""
    body: dict[str, Any] = {"queue": queue, "runIds": run or [], "evalResultIds": eval_result or []}
    if sample:
        body["sample"] = {"prompt": sample, "limit": limit}
    with client() as api:
        result = api.post("/api/v1/annotations", body)
    if as_json:
        output.print_json(result)
        return
    output.echo(f"Queued {len(result['created'])} item(s) in {result['queue']!r}.")
    if result["alreadyQueued"]:
        output.echo(f"Already waiting: {', '.join(result['alreadyQueued'])}")


@annotate_app.command("list")
def list_items(
    queue: Annotated[str | None, typer.Option("--queue", "-q")] = None,
    status: Annotated[str | None, typer.Option(help="pending | claimed | done | skipped")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Queue items, oldest first."""
    with client() as api:
        page = api.get("/api/v1/annotations", queue=queue, status=status, limit=limit)
    output.listing(
        page,
        as_json,
        ["item", "queue", "status", "run", "claimed by", "output"],
        lambda i: [
            i["id"],
            i["queue"],
            i["status"],
            i["runId"],
            i["claimedBy"],
            ((i.get("subject") or {}).get("output") or "")[:60],
        ],
    )


@annotate_app.command("next")
def next_item(
    queue: QueueOpt = "default",
    prompt: Annotated[str | None, typer.Option(help="Only items of this prompt.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Claim the next waiting item and show what to rate."""
    with client() as api:
        item = api.post("/api/v1/annotations/next", {"queue": queue, "prompt": prompt})
    if as_json:
        output.print_json(item)
        return
    if item is None:
        output.echo(f"Nothing is waiting in queue {queue!r}.")
        return
    _show_item(item)
    output.echo(f"Rate it with: promptops annotate rate {item['id']} --score N")


@annotate_app.command("show")
def show_item(item_id: str, as_json: JsonFlag = False) -> None:
    """One queue item with its input and output."""
    with client() as api:
        item = api.get(f"/api/v1/annotations/{path_segment(item_id)}")
    if as_json:
        output.print_json(item)
        return
    _show_item(item)


@annotate_app.command("rate")
def rate_item(
    item_id: str,
    score: ScoreOpt = None,
    thumbs: ThumbsOpt = None,
    tag: TagOpt = None,
    rubric: RubricOpt = None,
    notes: NotesOpt = "",
    as_json: JsonFlag = False,
) -> None:
    """Rate a claimed (or waiting) item: records the feedback and closes the item."""
    body = rating_body(score, thumbs, tag, rubric, notes, None)
    with client() as api:
        result = api.post(f"/api/v1/annotations/{path_segment(item_id)}/rate", body)
    if as_json:
        output.print_json(result)
        return
    output.echo(f"Rated {item_id}: feedback {result['feedback']['id']}.")


@annotate_app.command("skip")
def skip_item(
    item_id: str,
    reason: Annotated[str, typer.Option("--reason", help="Why it is skipped.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Close an item without rating it."""
    with client() as api:
        item = api.post(f"/api/v1/annotations/{path_segment(item_id)}/skip", {"reason": reason})
    if as_json:
        output.print_json(item)
        return
    output.echo(f"Skipped {item_id}.")


@annotate_app.command("release")
def release_item(item_id: str, as_json: JsonFlag = False) -> None:
    """Give a claimed item back to the queue."""
    with client() as api:
        item = api.post(f"/api/v1/annotations/{path_segment(item_id)}/release")
    if as_json:
        output.print_json(item)
        return
    output.echo(f"Released {item_id}.")
