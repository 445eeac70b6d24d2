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
    "audit_checkpoint": "ckp",
    "pack_import": "pki",
    "eval_schedule": "evs",
    "eval_schedule_run": "esr",
    "alert_rule": "alr",
    "alert": "alt",
    "alert_event": "ale",
    "alert_channel": "ach",
    "alert_delivery": "ald",
    "online_eval_config": "oec",
    "online_eval": "oev",
    "approval": "apr",
    "approval_decision": "apd",
    "sso_provider": "ssp",
    "sso_mapping": "ssm",
    "sso_identity": "ssi",
}


def new_id(kind: str) -> str:
    """A new id for an entity of ``kind`` (a key of :data:`PREFIXES`)."""
    return f"{PREFIXES[kind]}_{str(ULID()).lower()}"


def has_prefix(value: str, kind: str) -> bool:
    return value.startswith(PREFIXES[kind] + "_")
