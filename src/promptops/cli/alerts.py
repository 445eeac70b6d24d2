"""``promptops alerts``: the alert inbox (list, show, ack, resolve, review), ``alerts rules …`` and
``alerts channels …``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from promptops.cli import output
from promptops.cli.client import path_segment
from promptops.cli.common import JsonFlag, LimitOpt, client

app = typer.Typer(help="Alerts: the inbox, alert rules and notification channels.", no_args_is_help=True)
rules_app = typer.Typer(
    help="Alert rules (threshold, drift, regression, experiment_guardrail).", no_args_is_help=True
)
channels_app = typer.Typer(help="Notification channels (webhook, slack, email).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(channels_app, name="channels")

NoteOpt = Annotated[str, typer.Option("--note", "-n", help="Kept in the alert's history and the audit log.")]


def _alert(alert_id: str, *rest: str) -> str:
    return "/".join([f"/api/v1/alerts/{path_segment(alert_id)}", *rest])


def _rule(ref: str, *rest: str) -> str:
    return "/".join([f"/api/v1/alert-rules/{path_segment(ref)}", *rest])


def _channel(ref: str, *rest: str) -> str:
    return "/".join([f"/api/v1/alert-channels/{path_segment(ref)}", *rest])


# --- the inbox ---------------------------------------------------------------------------------------------------


def _show_alert(item: dict[str, Any]) -> None:
    output.fields(
        [
            ("Id", item["id"]),
            ("Status", item["status"] + (f" ({item['resolution']})" if item.get("resolution") else "")),
            ("Severity", item["severity"]),
            ("Rule", f"{item['ruleName']} ({item['kind']})"),
            ("Subject", item["subject"]),
            ("Summary", item["summary"]),
            (
                "Seen",
                f"{item['count']} time(s), first {output.short_time(item['firstSeenAt'])}, "
                f"last {output.short_time(item['lastSeenAt'])}",
            ),
            ("Acknowledged", item["acknowledgedBy"]),
            ("Resolved", item["resolvedBy"]),
            ("Review queue", item["annotationQueue"]),
        ],
        title=item["title"],
    )
    if item.get("events"):
        output.table(
            ["time", "event", "by", "message"],
            [
                [output.short_time(e["createdAt"]), e["kind"], e["actor"], e["message"]]
                for e in item["events"]
            ],
        )


@app.command("list")
def list_alerts(
    status: Annotated[
        str | None, typer.Option(help="open | acknowledged | resolved | active (open or acknowledged)")
    ] = None,
    rule: Annotated[str | None, typer.Option(help="Rule name or id")] = None,
    severity: Annotated[str | None, typer.Option(help="info | warning | critical")] = None,
    kind: Annotated[
        str | None, typer.Option(help="threshold | drift | regression | experiment_guardrail")
    ] = None,
    limit: LimitOpt = 50,
    as_json: JsonFlag = False,
) -> None:
    """The alert inbox, newest first."""
    with client() as api:
        page = api.get("/api/v1/alerts", status=status, rule=rule, severity=severity, kind=kind, limit=limit)
    output.listing(
        page,
        as_json,
        ["id", "status", "severity", "rule", "title", "count", "last seen"],
        lambda a: [
            a["id"],
            a["status"],
            a["severity"],
            a["ruleName"],
            a["title"],
            a["count"],
            output.short_time(a["lastSeenAt"]),
        ],
    )


@app.command("show")
def show(alert_id: Annotated[str, typer.Argument(help="alt_ id")], as_json: JsonFlag = False) -> None:
    """One alert with its history."""
    with client() as api:
        item = api.get(_alert(alert_id))
    if as_json:
        output.print_json(item)
        return
    _show_alert(item)


def _change(alert_id: str, action: str, note: str, as_json: bool) -> None:
    with client() as api:
        item = api.post(_alert(alert_id, action), {"note": note})
    if as_json:
        output.print_json(item)
        return
    output.echo(f"Alert {item['id']} is {item['status']}.")


@app.command("ack")
def ack(
    alert_id: Annotated[str, typer.Argument(help="alt_ id")], note: NoteOpt = "", as_json: JsonFlag = False
) -> None:
    """Acknowledge an open alert (someone is on it)."""
    _change(alert_id, "ack", note, as_json)


@app.command("resolve")
def resolve(
    alert_id: Annotated[str, typer.Argument(help="alt_ id")], note: NoteOpt = "", as_json: JsonFlag = False
) -> None:
    """Resolve an alert by hand (channels are told)."""
    _change(alert_id, "resolve", note, as_json)


@app.command("review")
def review(alert_id: Annotated[str, typer.Argument(help="alt_ id")], as_json: JsonFlag = False) -> None:
    """Queue the alert's affected runs (or evaluation results) for QA review in an annotation queue."""
    with client() as api:
        found = api.post(_alert(alert_id, "annotation-queue"))
    if as_json:
        output.print_json(found)
        return
    output.echo(
        f"Queued {found['created']} item(s) in annotation queue {found['queue']!r} "
        f"({found['alreadyQueued']} already waiting). Work it with: promptops annotate next --queue {found['queue']}"
    )


# --- rules -------------------------------------------------------------------------------------------------------


def _show_rule(item: dict[str, Any]) -> None:
    output.fields(
        [
            ("Id", item["id"]),
            ("Kind", item["kind"]),
            ("Severity", item["severity"]),
            ("Enabled", item["enabled"]),
            ("Prompt", f"{item['prompt'] or '(any)'}@{item['label'] or '(any)'}"),
            ("Condition", ", ".join(f"{k}={v}" for k, v in item["condition"].items()) or "-"),
            ("Channels", ", ".join(c["name"] for c in item["channels"]) or "-"),
            ("Open alerts", item["openAlerts"]),
            ("Last evaluated", output.short_time(item["lastEvaluatedAt"])),
            ("Last error", item["lastError"]),
        ],
        title=item["name"],
    )


@rules_app.command("create")
def create_rule(
    name: Annotated[str, typer.Argument(help="Rule name")],
    kind: Annotated[
        str, typer.Option("--kind", "-k", help="threshold | drift | regression | experiment_guardrail")
    ],
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="Prompt name (threshold, drift: required)")
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", "-l", help="Label (default production for threshold/drift)")
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="threshold: volume, error_rate, latency_p50_ms, latency_p95_ms, tokens, cost_usd, feedback_mean, "
            "online_eval_pass_rate"
        ),
    ] = None,
    op: Annotated[str | None, typer.Option(help="threshold: gt | gte | lt | lte")] = None,
    value: Annotated[float | None, typer.Option(help="threshold: the limit")] = None,
    window: Annotated[int | None, typer.Option("--window", help="threshold/drift: window in minutes")] = None,
    baseline: Annotated[
        int | None, typer.Option("--baseline", help="drift: baseline minutes before the window")
    ] = None,
    min_samples: Annotated[
        int | None, typer.Option("--min-samples", help="threshold: samples needed to judge")
    ] = None,
    schedule: Annotated[str | None, typer.Option(help="regression: only this evs_ schedule")] = None,
    experiment: Annotated[
        str | None, typer.Option(help="experiment_guardrail: only this exp_ experiment")
    ] = None,
    severity: Annotated[str, typer.Option(help="info | warning | critical")] = "warning",
    channel: Annotated[
        list[str] | None, typer.Option("--channel", "-c", help="Channel to notify (repeatable)")
    ] = None,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create an alert rule, e.g. ``--kind threshold -p support/triage --metric error_rate --op gt --value 0.05``."""
    body: dict[str, Any] = {"name": name, "kind": kind, "severity": severity, "description": description}
    for key, given in (
        ("prompt", prompt),
        ("label", label),
        ("metric", metric),
        ("op", op),
        ("value", value),
        ("windowMinutes", window),
        ("baselineMinutes", baseline),
        ("minSamples", min_samples),
        ("scheduleId", schedule),
        ("experimentId", experiment),
    ):
        if given is not None:
            body[key] = given
    if channel:
        body["channels"] = channel
    with client() as api:
        item = api.post("/api/v1/alert-rules", body)
    if as_json:
        output.print_json(item)
        return
    output.echo(f"Created alert rule {item['name']} ({item['id']}).")
    _show_rule(item)


@rules_app.command("list")
def list_rules(
    kind: Annotated[str | None, typer.Option(help="Only rules of this kind")] = None,
    limit: LimitOpt = 50,
    as_json: JsonFlag = False,
) -> None:
    """The project's alert rules."""
    with client() as api:
        page = api.get("/api/v1/alert-rules", kind=kind, limit=limit)
    output.listing(
        page,
        as_json,
        ["name", "kind", "severity", "enabled", "prompt", "open", "channels"],
        lambda r: [
            r["name"],
            r["kind"],
            r["severity"],
            r["enabled"],
            f"{r['prompt']}@{r['label']}" if r["prompt"] else "(any)",
            r["openAlerts"],
            ", ".join(c["name"] for c in r["channels"]),
        ],
    )


@rules_app.command("show")
def show_rule(
    rule: Annotated[str, typer.Argument(help="Rule name or alr_ id")], as_json: JsonFlag = False
) -> None:
    """One alert rule."""
    with client() as api:
        item = api.get(_rule(rule))
    if as_json:
        output.print_json(item)
        return
    _show_rule(item)


@rules_app.command("update")
def update_rule(
    rule: Annotated[str, typer.Argument(help="Rule name or alr_ id")],
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Switch the rule on or off")
    ] = None,
    severity: Annotated[str | None, typer.Option(help="info | warning | critical")] = None,
    value: Annotated[float | None, typer.Option(help="threshold: the limit")] = None,
    window: Annotated[int | None, typer.Option("--window", help="threshold/drift: window in minutes")] = None,
    channel: Annotated[list[str] | None, typer.Option("--channel", "-c", help="Replace the channels")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change an alert rule."""
    body: dict[str, Any] = {}
    for key, given in (
        ("enabled", enable),
        ("severity", severity),
        ("value", value),
        ("windowMinutes", window),
    ):
        if given is not None:
            body[key] = given
    if channel is not None:
        body["channels"] = channel
    with client() as api:
        item = api.patch(_rule(rule), body)
    if as_json:
        output.print_json(item)
        return
    _show_rule(item)


@rules_app.command("delete")
def delete_rule(rule: Annotated[str, typer.Argument(help="Rule name or alr_ id")]) -> None:
    """Remove an alert rule with its alerts."""
    with client() as api:
        api.delete(_rule(rule))
    output.echo(f"Deleted alert rule {rule}.")


@rules_app.command("evaluate")
def evaluate_rule(
    rule: Annotated[str, typer.Argument(help="Rule name or alr_ id")], as_json: JsonFlag = False
) -> None:
    """Evaluate a rule now (fires, counts or resolves its alerts)."""
    with client() as api:
        found = api.post(_rule(rule, "evaluate"))
    if as_json:
        output.print_json(found)
        return
    output.echo(
        f"Evaluated {rule}: {found['fired']} fired, {found['refired']} still firing, {found['resolved']} resolved"
        + (f", {found['errors']} error(s)" if found["errors"] else "")
        + "."
    )


# --- channels ----------------------------------------------------------------------------------------------------


def _print_channel(item: dict[str, Any], as_json: bool, message: str) -> None:
    if as_json:
        output.print_json(item)
        return
    output.echo(message)
    output.fields(
        [
            ("Id", item["id"]),
            ("Type", item["type"]),
            ("Enabled", item["enabled"]),
            ("Config", ", ".join(f"{k}={v}" for k, v in item["config"].items() if v is not None)),
            ("Secret", item["secretHint"]),
        ],
        title=item["name"],
    )
    if item.get("signingSecret"):
        output.secret(
            "Signing secret",
            item["signingSecret"],
            "Verify X-PromptOps-Signature with it (HMAC-SHA256 of '<timestamp>.<body>'). It is not shown again.",
        )


@channels_app.command("create")
def create_channel(
    name: Annotated[str, typer.Argument(help="Channel name")],
    type_: Annotated[str, typer.Option("--type", "-t", help="webhook | slack | email")],
    url: Annotated[str | None, typer.Option(help="webhook / slack: the URL to POST to")] = None,
    smtp_host: Annotated[str | None, typer.Option("--smtp-host", help="email: SMTP server")] = None,
    smtp_port: Annotated[int, typer.Option("--smtp-port", help="email: SMTP port")] = 587,
    sender: Annotated[str | None, typer.Option("--from", help="email: sender address")] = None,
    to: Annotated[list[str] | None, typer.Option("--to", help="email: recipient (repeatable)")] = None,
    starttls: Annotated[
        bool, typer.Option("--starttls/--no-starttls", help="email: upgrade with STARTTLS")
    ] = True,
    username: Annotated[str | None, typer.Option("--username", help="email: SMTP login")] = None,
    password: Annotated[
        str | None, typer.Option("--password", envvar="PROMPTOPS_SMTP_PASSWORD", help="email: SMTP password")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add a notification channel (a webhook's signing secret is printed once)."""
    body: dict[str, Any] = {"name": name, "type": type_}
    if url is not None:
        body["url"] = url
    if type_ == "email":
        body["email"] = {
            "host": smtp_host,
            "port": smtp_port,
            "from": sender,
            "to": to or [],
            "starttls": starttls,
            **({"username": username, "password": password} if username or password else {}),
        }
    with client() as api:
        item = api.post("/api/v1/alert-channels", body)
    _print_channel(item, as_json, f"Created {item['type']} channel {item['name']} ({item['id']}).")


@channels_app.command("list")
def list_channels(limit: LimitOpt = 50, as_json: JsonFlag = False) -> None:
    """The project's notification channels."""
    with client() as api:
        page = api.get("/api/v1/alert-channels", limit=limit)
    output.listing(
        page,
        as_json,
        ["id", "name", "type", "enabled", "target"],
        lambda c: [
            c["id"],
            c["name"],
            c["type"],
            c["enabled"],
            c["config"].get("url") or c["config"].get("host") or "",
        ],
    )


@channels_app.command("test")
def test_channel(
    channel: Annotated[str, typer.Argument(help="Channel name or ach_ id")], as_json: JsonFlag = False
) -> None:
    """Send a test notification (delivered in the background; see ``channels deliveries``)."""
    with client() as api:
        found = api.post(_channel(channel, "test"))
    if as_json:
        output.print_json(found)
        return
    output.echo(
        f"Test notification {found['id']} queued; check it with: promptops alerts channels deliveries {channel}"
    )


@channels_app.command("deliveries")
def deliveries(
    channel: Annotated[str, typer.Argument(help="Channel name or ach_ id")],
    status: Annotated[str | None, typer.Option(help="pending | sent | failed")] = None,
    limit: LimitOpt = 50,
    as_json: JsonFlag = False,
) -> None:
    """The channel's delivery log, newest first."""
    with client() as api:
        page = api.get(_channel(channel, "deliveries"), status=status, limit=limit)
    output.listing(
        page,
        as_json,
        ["id", "event", "status", "attempts", "answer", "error", "created"],
        lambda d: [
            d["id"],
            d["event"],
            d["status"],
            d["attempts"],
            d["responseStatus"],
            d["lastError"],
            output.short_time(d["createdAt"]),
        ],
    )


@channels_app.command("update")
def update_channel(
    channel: Annotated[str, typer.Argument(help="Channel name or ach_ id")],
    url: Annotated[str | None, typer.Option(help="New URL (webhook / slack)")] = None,
    enable: Annotated[bool | None, typer.Option("--enable/--disable")] = None,
    rotate_secret: Annotated[
        bool, typer.Option("--rotate-secret", help="webhook: a new signing secret")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Change a channel or rotate a webhook's signing secret (printed once)."""
    body: dict[str, Any] = {"rotateSecret": rotate_secret}
    if url is not None:
        body["url"] = url
    if enable is not None:
        body["enabled"] = enable
    with client() as api:
        item = api.patch(_channel(channel), body)
    _print_channel(item, as_json, f"Updated channel {item['name']}.")


@channels_app.command("delete")
def delete_channel(channel: Annotated[str, typer.Argument(help="Channel name or ach_ id")]) -> None:
    """Remove a channel."""
    with client() as api:
        api.delete(_channel(channel))
    output.echo(f"Deleted channel {channel}.")
