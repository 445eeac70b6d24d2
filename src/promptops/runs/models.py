"""Runs: every model call the product makes, with tokens, cost, latency and outcome."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime, utcnow


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_project_created", "project_id", "created_at"),
        Index("ix_runs_project_prompt", "project_id", "prompt_id"),
        # a prompt's runs in a time range (monitoring's drift samples); added by migration 0014
        Index("ix_runs_project_prompt_created", "project_id", "prompt_id", "created_at"),
        Index("ix_runs_project_version", "project_id", "version_id"),
        Index("ix_runs_project_fingerprint", "project_id", "fingerprint"),
        Index("ix_runs_experiment", "experiment_id", "experiment_arm"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    prompt_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    version_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    provider: Mapped[str] = mapped_column(String(64))
    provider_type: Mapped[str] = mapped_column(String(20))
    model: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict] = mapped_column(JSONType, default=dict)
    input: Mapped[dict] = mapped_column(JSONType)  # {"prompt": str} or {"messages": [...]}
    output: Mapped[str | None] = mapped_column(Text, nullable=True)
    tool_calls: Mapped[list | None] = mapped_column(JSONType, nullable=True)
    finish_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    usage_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    ttft_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(10))  # ok | error
    error_class: Mapped[str | None] = mapped_column(String(60), nullable=True)
    error_message: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    source: Mapped[str] = mapped_column(String(20))  # playground | eval | gateway | sdk | experiment | search
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    attempt: Mapped[int] = mapped_column(
        Integer, default=1
    )  # position in the fallback chain, 1 = first choice
    trace_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actor_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Gateway calls without a registry prompt: hash of the normalised system/first message (gateway.fingerprint).
    fingerprint: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # A run served an experiment's arm (a gateway call or SDK trace with a unit): the experiment and arm.
    experiment_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    experiment_arm: Mapped[str | None] = mapped_column(String(63), nullable=True)


# Upper bounds (ms) of the latency histogram kept per rollup row: 10 ms doubling to ~164 s, the last bucket open.
LATENCY_BOUNDS_MS: tuple[float, ...] = tuple(10.0 * 2**i for i in range(15))
LATENCY_BUCKETS = len(LATENCY_BOUNDS_MS) + 1


class RunRollup(Base):
    """Additive sums of runs per (project, grain, bucket, prompt, version, provider, model, source).

    Written in the transaction that inserts the runs (``runs.rollup.add_runs``), so it equals a GROUP BY
    over ``runs`` (``promptops runs rebuild-rollup`` repairs runs written without it). ``grain`` is the
    bucket width in hours (1 or 24) and ``bucket`` the bucket's first hour as hours since the Unix epoch
    (UTC), so bucket arithmetic is integer arithmetic on every database. A run without a prompt or version
    is keyed by ``""`` (NULL would never match ON CONFLICT).
    """

    __tablename__ = "run_rollups"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    grain: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    source: Mapped[str] = mapped_column(String(20), primary_key=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    latency_ms_sum: Mapped[float] = mapped_column(Float, default=0.0)
    lat_0: Mapped[int] = mapped_column(Integer, default=0)
    lat_1: Mapped[int] = mapped_column(Integer, default=0)
    lat_2: Mapped[int] = mapped_column(Integer, default=0)
    lat_3: Mapped[int] = mapped_column(Integer, default=0)
    lat_4: Mapped[int] = mapped_column(Integer, default=0)
    lat_5: Mapped[int] = mapped_column(Integer, default=0)
    lat_6: Mapped[int] = mapped_column(Integer, default=0)
    lat_7: Mapped[int] = mapped_column(Integer, default=0)
    lat_8: Mapped[int] = mapped_column(Integer, default=0)
    lat_9: Mapped[int] = mapped_column(Integer, default=0)
    lat_10: Mapped[int] = mapped_column(Integer, default=0)
    lat_11: Mapped[int] = mapped_column(Integer, default=0)
    lat_12: Mapped[int] = mapped_column(Integer, default=0)
    lat_13: Mapped[int] = mapped_column(Integer, default=0)
    lat_14: Mapped[int] = mapped_column(Integer, default=0)
    lat_15: Mapped[int] = mapped_column(Integer, default=0)
