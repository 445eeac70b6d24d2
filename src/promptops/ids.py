"""Prefixed, time-sortable identifiers (``prm_01J...``) so an id says what it names."""

from __future__ import annotations

from ulid import ULID

PREFIXES = {
    "org": "org",
    "project": "prj",
    "user": "usr",
    "membership": "mem",
    "api_key": "key",
    "session": "ses",
    "prompt": "prm",
    "version": "ver",
    "label_event": "lbe",
    "audit": "aud",
    "idempotency": "idm",
    "connection": "pcn",
    "run": "run",
    "dataset": "dst",
    "dataset_version": "dsv",
    "case": "cas",
    "eval_run": "evr",
    "eval_result": "evc",
    "feedback": "fbk",
    "annotation": "ann",
    "optimization": "opt",
    "candidate": "cnd",
    "experiment": "exp",
}


def new_id(kind: str) -> str:
    """A new id for an entity of ``kind`` (a key of :data:`PREFIXES`)."""
    return f"{PREFIXES[kind]}_{str(ULID()).lower()}"


def has_prefix(value: str, kind: str) -> bool:
    return value.startswith(PREFIXES[kind] + "_")
