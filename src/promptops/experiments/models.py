"""Experiments (a label's traffic split between arms), their arms, exposures and per-unit outcome sums."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime, utcnow


class Experiment(Base):
    """draft -> running <-> paused -> stopped | shipped. ``active_key`` is ``prompt_id:label`` while the
    experiment is running or paused and NULL otherwise: its unique index allows one active experiment per
    (prompt, label) on both databases (NULLs never collide)."""

    __tablename__ = "experiments"
    __table_args__ = (
        Index("ix_experiments_project_created", "project_id", "created_at"),
        Index("ix_experiments_project_status", "project_id", "status"),
        Index("ix_experiments_active_key", "active_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    prompt_id: Mapped[str] = mapped_column(String(40))
    prompt_name: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="draft")
    active_key: Mapped[str | None] = mapped_column(String(110), nullable=True)
    salt: Mapped[str] = mapped_column(String(64))
    # [{name, kind: conversion|continuous, direction: increase|decrease, guardrail}], the primary one first
    metrics: Mapped[list] = mapped_column(JSONType, default=list)
    alpha: Mapped[float] = mapped_column(Float, default=0.05)
    shipped_arm: Mapped[str | None] = mapped_column(String(63), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # "ab": fixed weights; "bandit": the arms' weights are the current allocation (Thompson sampling)
    mode: Mapped[str] = mapped_column(String(10), default="ab", server_default="ab")
    # bandit settings {metric, intervalSeconds, floor}; None for "ab"
    bandit: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    next_allocation_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ExperimentArm(Base):
    """One arm: a version of the experiment's prompt, optionally on another model, with a traffic weight.
    Position 0 is the control."""

    __tablename__ = "experiment_arms"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    version_id: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    weight: Mapped[float] = mapped_column(Float)  # a bandit's current share
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_reason: Mapped[str] = mapped_column(String(500), default="")


class ExperimentExposure(Base):
    """The first time a unit was served an arm. ``unit_hash`` is the salted hash the assignment uses, so no
    user or session id is stored."""

    __tablename__ = "experiment_exposures"
    __table_args__ = (Index("ix_experiment_exposures_arm", "experiment_id", "arm"),)

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    unit_hash: Mapped[str] = mapped_column(String(32), primary_key=True)
    arm: Mapped[str] = mapped_column(String(63))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExperimentOutcome(Base):
    """The sums of one unit's outcome events of one metric (events are added in, never stored one by one):
    results need per-unit values only, so a unit's thousand events cost one row."""

    __tablename__ = "experiment_outcomes"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit_hash: Mapped[str] = mapped_column(String(32), primary_key=True)
    events: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[float] = mapped_column(Float, default=0.0)
    maximum: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExperimentAllocation(Base):
    """One allocation of a bandit experiment: what each arm's share was set to, when and from what.
    ``arms``: [{name, share, exposures, n, mean, probabilityBest}] in arm order; ``regret``: the estimated
    cumulative regret (outcome lost against always serving the best arm) at that time."""

    __tablename__ = "experiment_allocations"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reason: Mapped[str] = mapped_column(String(20))  # start | scheduled | manual
    exposures: Mapped[int] = mapped_column(Integer, default=0)
    regret: Mapped[float | None] = mapped_column(Float, nullable=True)
    arms: Mapped[list] = mapped_column(JSONType, default=list)


class ExperimentSnapshot(Base):
    """The primary metric of a running experiment as the periodic task saw it: ``arms`` [{arm, n, mean, ciLow,
    ciHigh}] in arm order, so the results can show each arm's interval over time."""

    __tablename__ = "experiment_snapshots"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64))
    exposures: Mapped[int] = mapped_column(Integer, default=0)
    arms: Mapped[list] = mapped_column(JSONType, default=list)
