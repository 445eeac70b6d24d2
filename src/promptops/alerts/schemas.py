"""Bodies and answers of the alert, alert-rule and alert-channel API (camelCase on the wire)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from promptops.registry.schemas import label_name_problem
from promptops.schemas import ApiModel, ApiOut

RuleKind = Literal["threshold", "drift", "regression", "experiment_guardrail"]
Severity = Literal["info", "warning", "critical"]
AlertStatus = Literal["open", "acknowledged", "resolved"]
Metric = Literal[
    "volume",
    "error_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "tokens",
    "cost_usd",
    "feedback_mean",
    "online_eval_pass_rate",
]
Operator = Literal["gt", "gte", "lt", "lte"]
ChannelType = Literal["webhook", "slack", "email"]
MAX_CHANNELS_PER_RULE = 10
MAX_RECIPIENTS = 20
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,99}$"
EMAIL_RE = re.compile(
    r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$|^[^@\s<>\"',;]{1,64}@localhost$"
)
HOST_RE = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[?[0-9A-Fa-f:.]{2,45}\]?$")


def _label(value: str | None) -> str | None:
    if value is not None:
        problem = label_name_problem(value)
        if problem:
            raise ValueError(problem)
    return value


class RuleCondition(ApiModel):
    """The condition fields of a rule; which ones apply depends on its ``kind``.

    * ``threshold``: ``metric`` (a monitoring metric of ``prompt@label``) over the last ``windowMinutes``
      compared with ``value`` by ``op``; fires only with at least ``minSamples`` samples in the window.
    * ``drift``: the monitoring drift check of the last ``windowMinutes`` against the ``baselineMinutes`` before.
    * ``regression``: a scheduled regression evaluation of the prompt (or ``scheduleId``) regressed.
    * ``experiment_guardrail``: a guardrail paused an arm of a live experiment (or of ``experimentId``).
    """

    metric: Metric | None = None
    op: Operator | None = None
    value: float | None = Field(default=None, ge=-1e12, le=1e12)
    window_minutes: int | None = Field(default=None, ge=1, le=43_200)
    baseline_minutes: int | None = Field(default=None, ge=1, le=129_600)
    min_samples: int | None = Field(default=None, ge=1, le=1_000_000)
    schedule_id: str | None = Field(default=None, max_length=40, pattern=r"^evs_[a-z0-9]+$")
    experiment_id: str | None = Field(default=None, max_length=40, pattern=r"^exp_[a-z0-9]+$")


class AlertRuleIn(RuleCondition):
    """``POST /api/v1/alert-rules``."""

    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=2000)
    kind: RuleKind
    severity: Severity = "warning"
    enabled: bool = True
    prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Prompt name (required for threshold and drift)",
    )
    label: str | None = Field(
        default=None, max_length=63, description="Default 'production' for threshold/drift"
    )
    channels: list[str] = Field(
        default_factory=list,
        max_length=MAX_CHANNELS_PER_RULE,
        description="Channel names or ach_ ids to notify",
    )

    @field_validator("label")
    @classmethod
    def _check_label(cls, value: str | None) -> str | None:
        return _label(value)

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, value: list[str]) -> list[str]:
        if any(not c or len(c) > 100 for c in value):
            raise ValueError("channel names must be 1-100 characters")
        if len(set(value)) != len(value):
            raise ValueError("a channel is listed twice")
        return value


class AlertRuleUpdate(RuleCondition):
    """``PATCH /api/v1/alert-rules/{id}``: any field; the condition is checked again as a whole."""

    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=NAME_PATTERN)
    description: str | None = Field(default=None, max_length=2000)
    severity: Severity | None = None
    enabled: bool | None = None
    channels: list[str] | None = Field(default=None, max_length=MAX_CHANNELS_PER_RULE)

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if any(not c or len(c) > 100 for c in value):
                raise ValueError("channel names must be 1-100 characters")
            if len(set(value)) != len(value):
                raise ValueError("a channel is listed twice")
        return value


class AlertRuleOut(ApiOut):
    id: str
    name: str
    description: str
    kind: RuleKind
    severity: Severity
    enabled: bool
    prompt: str | None
    label: str | None
    condition: dict[str, Any]
    channels: list[dict[str, str]] = Field(description="[{id, name, type}]")
    open_alerts: int = 0
    last_evaluated_at: datetime | None
    last_error: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class AlertRulePage(ApiOut):
    items: list[AlertRuleOut]
    next_cursor: str | None


class AlertOut(ApiOut):
    id: str
    rule_id: str
    rule_name: str
    kind: RuleKind
    severity: Severity
    subject: str
    status: AlertStatus
    title: str
    summary: str
    prompt_id: str | None
    details: dict[str, Any]
    count: int = Field(description="How many evaluations found the condition while this alert was open")
    first_seen_at: datetime
    last_seen_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    resolution: Literal["auto", "manual"] | None
    annotation_queue: str | None


class AlertEventOut(ApiOut):
    id: str
    kind: str
    actor: str
    message: str
    data: dict[str, Any]
    created_at: datetime


class AlertDetailOut(AlertOut):
    events: list[AlertEventOut]


class AlertPage(ApiOut):
    items: list[AlertOut]
    next_cursor: str | None


class AlertNoteIn(ApiModel):
    """Ack or resolve: an optional note kept in the alert's history and the audit log."""

    note: str = Field(default="", max_length=2000)


class AlertQueueOut(ApiOut):
    queue: str = Field(description="The annotation queue holding the affected runs")
    created: int = Field(description="Items added now")
    already_queued: int
    items: int = Field(description="Items of this alert waiting in the queue")


class AlertEvaluationOut(ApiOut):
    rules: int
    fired: int
    refired: int
    resolved: int
    errors: int


# --- channels ----------------------------------------------------------------------------------------------------


class EmailConfigIn(ApiModel):
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    sender: str = Field(max_length=320, alias="from")
    to: list[str] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    starttls: bool = True
    username: str | None = Field(default=None, min_length=1, max_length=200)
    password: str | None = Field(default=None, min_length=1, max_length=500, description="Stored encrypted")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not HOST_RE.match(value):
            raise ValueError(f"invalid SMTP host {value!r}")
        return value

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if not EMAIL_RE.match(value):
            raise ValueError(f"invalid sender address {value!r}")
        return value

    @field_validator("to")
    @classmethod
    def _to(cls, value: list[str]) -> list[str]:
        for address in value:
            if not EMAIL_RE.match(address):
                raise ValueError(f"invalid recipient address {address!r}")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> EmailConfigIn:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both 'username' and 'password', or neither")
        return self


class AlertChannelIn(ApiModel):
    """``POST /api/v1/alert-channels``: ``url`` for webhook and slack, ``email`` for email."""

    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    type: ChannelType
    enabled: bool = True
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    email: EmailConfigIn | None = None

    @model_validator(mode="after")
    def _fits_type(self) -> AlertChannelIn:
        if self.type in ("webhook", "slack"):
            if not self.url:
                raise ValueError(f"a {self.type} channel needs 'url'")
            if self.email is not None:
                raise ValueError(f"'email' does not apply to a {self.type} channel")
        else:
            if self.email is None:
                raise ValueError("an email channel needs 'email' {host, port, from, to}")
            if self.url is not None:
                raise ValueError("'url' does not apply to an email channel")
        return self


class AlertChannelUpdate(ApiModel):
    """``PATCH /api/v1/alert-channels/{id}``; ``rotateSecret`` gives a webhook a new signing secret (shown once)."""

    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=NAME_PATTERN)
    enabled: bool | None = None
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    email: EmailConfigIn | None = None
    rotate_secret: bool = False


class AlertChannelOut(ApiOut):
    id: str
    name: str
    type: ChannelType
    enabled: bool
    config: dict[str, Any] = Field(
        description="What may be shown: URL (webhook), host (slack), SMTP settings"
    )
    secret_hint: str | None
    signing_secret: str | None = Field(
        default=None, description="The webhook signing secret: returned once, at creation or rotation"
    )
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class AlertChannelPage(ApiOut):
    items: list[AlertChannelOut]
    next_cursor: str | None


class AlertDeliveryOut(ApiOut):
    id: str
    channel_id: str
    alert_id: str | None
    event: str
    status: Literal["pending", "sent", "failed"]
    attempts: int
    next_attempt_at: datetime
    response_status: int | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class AlertDeliveryPage(ApiOut):
    items: list[AlertDeliveryOut]
    next_cursor: str | None
