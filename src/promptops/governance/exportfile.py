"""The audit export file (JSON Lines) and its offline verification.

One JSON object per line, in this order:

1. ``{"type": "header", "format": "promptops.audit-export", "formatVersion": 1, "chain": "project" | "org",
   "chainId", "orgId", "exportedAt", "headSeq", "headHash"}``
2. ``{"type": "publicKey", "keyId", "algorithm": "Ed25519", "publicKey", "validFrom", "validUntil"}`` for every
   signing key of the organization (informational: a verifier trusts only the keys it is given)
3. ``{"type": "event", "hash", "event": {...}}`` for seq 1..headSeq, in order; ``event`` is the canonical record
   the hash covers (``governance.audit.canonical_record``: every field, with ``seq`` and ``prevHash``)
4. ``{"type": "checkpoint", "chain", "chainId", "orgId", "seq", "headHash", "signedAt", "keyId", "signature",
   "trigger"}`` for every stored checkpoint up to headSeq
5. ``{"type": "trailer", ...the same fields as a checkpoint}``: the head signed when the export was made, so a
   file cut short or with its newest events removed does not verify.

:func:`verify_lines` needs no server and no database: it re-hashes every event, follows the links, checks
every signature with the trusted keys and names the first problem by sequence number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from promptops.governance import signatures
from promptops.governance.audit import GENESIS_HASH, hash_record

FORMAT = "promptops.audit-export"
FORMAT_VERSION = 1
SIGNED_KINDS = ("checkpoint", "trailer")


@dataclass(frozen=True)
class FileProblem:
    seq: int | None
    line: int
    kind: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "line": self.line, "kind": self.kind, "detail": self.detail}


@dataclass
class FileReport:
    chain: str | None = None
    chain_id: str | None = None
    events: int = 0
    checkpoints: int = 0
    signatures_ok: int = 0
    last_seq: int = 0
    problems: list[FileProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def sorted_problems(self) -> list[FileProblem]:
        return sorted(self.problems, key=lambda p: (p.seq if p.seq is not None else 0, p.line))

    def to_dict(self) -> dict[str, Any]:
        problems = self.sorted_problems()
        return {
            "ok": self.ok,
            "chain": self.chain,
            "chainId": self.chain_id,
            "eventsChecked": self.events,
            "checkpointsChecked": self.checkpoints,
            "signaturesVerified": self.signatures_ok,
            "lastSeq": self.last_seq,
            "firstProblem": problems[0].to_dict() if problems else None,
            "problems": [p.to_dict() for p in problems],
        }


@dataclass(frozen=True)
class _Event:
    line: int
    seq: int
    stated: str
    recomputed: str
    prev_hash: str
    event_id: str
    event_type: str


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


def _event(line: int, obj: dict[str, Any]) -> _Event:
    record = obj["event"]
    if not isinstance(record, dict) or not isinstance(record.get("seq"), int):
        raise TypeError("an event line needs an 'event' object with an integer 'seq'")
    return _Event(
        line=line,
        seq=record["seq"],
        stated=str(obj["hash"]),
        recomputed=hash_record(record),
        prev_hash=str(record.get("prevHash")),
        event_id=str(record.get("id")),
        event_type=str(record.get("eventType")),
    )


def verify_lines(lines: Iterable[bytes | str], trusted: list[signatures.TrustedKey]) -> FileReport:
    """Verify an export offline against the ``trusted`` public keys; every problem found, first by seq."""
    report = FileReport()
    problems = report.problems
    keys = {k.key_id: k for k in trusted}
    header: dict[str, Any] | None = None
    events: list[_Event] = []
    signed: list[tuple[int, dict[str, Any]]] = []
    trailer_line = 0
    last_line = 0
    for number, raw in enumerate(lines, 1):
        text = raw.strip() if isinstance(raw, str) else raw.strip().decode("utf-8", "replace")
        if not text:
            continue
        last_line = number
        try:
            obj = orjson.loads(text)
            if not isinstance(obj, dict):
                raise TypeError("not a JSON object")
            kind = obj.get("type")
            if kind == "header":
                if header is not None or events:
                    raise TypeError("a second header, or a header after events")
                header = obj
            elif kind == "event":
                events.append(_event(number, obj))
            elif kind in SIGNED_KINDS:
                signed.append((number, obj))
                if kind == "trailer":
                    trailer_line = number
            elif kind != "publicKey":
                raise TypeError(f"unknown line type {kind!r}")
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
            problems.append(
                FileProblem(None, number, "malformed", f"line {number} is not a valid record: {exc}")
            )
    if header is None or header.get("format") != FORMAT:
        problems.append(FileProblem(None, 1, "header", f"not a {FORMAT} file: the header line is missing"))
        header = header or {}
    report.chain, report.chain_id = header.get("chain"), header.get("chainId")
    report.events = len(events)
    by_seq = _check_events(events, problems)
    report.last_seq = max(by_seq, default=0)
    for number, obj in signed:
        _check_signed(number, obj, header, by_seq, keys, report)
    if not trailer_line:
        problems.append(
            FileProblem(
                report.last_seq + 1,
                last_line + 1,
                "no_trailer",
                "the file has no signed trailer: it was cut short, or its end was removed",
            )
        )
    elif trailer_line != last_line:
        problems.append(FileProblem(None, trailer_line, "malformed", "lines follow the trailer"))
    return report


def _check_events(events: list[_Event], problems: list[FileProblem]) -> dict[int, _Event]:
    """Hashes, order, gaps and links of the event lines; the events by seq (first occurrence)."""
    by_seq: dict[int, _Event] = {}
    for e in events:
        if e.seq in by_seq:
            problems.append(
                FileProblem(
                    e.seq,
                    e.line,
                    "duplicate",
                    f"event seq {e.seq} appears twice (lines {by_seq[e.seq].line} and {e.line})",
                )
            )
        else:
            by_seq[e.seq] = e
    position = {e.line: i for i, e in enumerate(events)}
    expected = 1
    for e in events:
        if e.seq > expected and by_seq[e.seq] is e:
            later = by_seq.get(expected)
            if later is not None and position[later.line] > position[e.line]:
                problems.append(
                    FileProblem(
                        expected,
                        e.line,
                        "reordered",
                        f"events are out of order: seq {e.seq} (line {e.line}) comes before seq {expected} "
                        f"(line {later.line})",
                    )
                )
        if e.recomputed != e.stated:
            problems.append(
                FileProblem(
                    e.seq,
                    e.line,
                    "edited",
                    f"event seq {e.seq} ({e.event_type}, id {e.event_id}) does not match its hash: its content "
                    "was changed after it was written",
                )
            )
        expected = max(expected, e.seq + 1)
    last = max(by_seq, default=0)
    missing = [s for s in range(1, last + 1) if s not in by_seq]
    if missing:
        first = missing[0]
        run_end = first
        while run_end + 1 in missing:
            run_end += 1
        span = f"{first}" if run_end == first else f"{first}..{run_end}"
        problems.append(
            FileProblem(
                first, 0, "missing", f"event(s) seq {span} are missing (deleted); {len(missing)} in all"
            )
        )
    for seq, e in by_seq.items():
        before = by_seq.get(seq - 1)
        link = GENESIS_HASH if seq == 1 else (before.stated if before else None)
        if link is not None and e.prev_hash != link and e.recomputed == e.stated:
            problems.append(
                FileProblem(
                    seq - 1,
                    before.line if before else e.line,
                    "relinked",
                    f"event seq {seq} does not link to event seq {seq - 1}: event seq {seq - 1} was changed and "
                    "re-hashed, or replaced",
                )
            )
    return by_seq


def _check_signed(
    number: int,
    obj: dict[str, Any],
    header: dict[str, Any],
    by_seq: dict[int, _Event],
    keys: dict[str, signatures.TrustedKey],
    report: FileReport,
) -> None:
    problems = report.problems
    kind = obj.get("type")
    what = "the trailer" if kind == "trailer" else "checkpoint"
    report.checkpoints += 1
    try:
        payload = signatures.checkpoint_payload_of(obj)
        seq = int(obj["seq"])
    except (KeyError, TypeError, ValueError) as exc:
        problems.append(
            FileProblem(None, number, "malformed", f"{what} on line {number} lacks a field: {exc}")
        )
        return
    label = f"{what} at seq {seq} (line {number}, key {obj.get('keyId')})"
    key = keys.get(str(obj.get("keyId")))
    if key is None:
        problems.append(
            FileProblem(
                seq,
                number,
                "unknown_key",
                f"{label} is signed by a key you did not give as trusted (--public-key)",
            )
        )
        return
    if not signatures.verify(key.raw, payload, str(obj.get("signature"))):
        problems.append(
            FileProblem(
                seq, number, "bad_signature", f"{label}: the signature does not verify (forged or altered)"
            )
        )
        return
    signed_at = _parse_time(str(obj.get("signedAt")))
    if signed_at is None or not key.covers(signed_at):
        problems.append(
            FileProblem(
                seq,
                number,
                "key_out_of_period",
                f"{label} was signed at {obj.get('signedAt')}, outside the key's validity period",
            )
        )
        return
    report.signatures_ok += 1
    if header and (obj.get("chain"), obj.get("chainId")) != (header.get("chain"), header.get("chainId")):
        problems.append(
            FileProblem(
                seq, number, "wrong_chain", f"{label} belongs to chain {obj.get('chainId')}, not this file's"
            )
        )
        return
    last = max(by_seq, default=0)
    if seq > last:
        problems.append(
            FileProblem(
                last + 1,
                number,
                "truncated",
                f"{label} covers {seq} events but the file ends at seq {last}: the newest events were deleted",
            )
        )
        return
    event = by_seq.get(seq)
    if seq > 0 and (event is None or event.stated != obj.get("headHash")):
        problems.append(
            FileProblem(
                seq,
                number,
                "checkpoint_mismatch",
                f"{label} does not match event seq {seq}: events up to seq {seq} were rewritten after it was signed",
            )
        )
    if kind == "trailer" and seq < last:
        problems.append(
            FileProblem(
                seq + 1, number, "inserted", f"events after seq {seq} were added after the export was signed"
            )
        )
