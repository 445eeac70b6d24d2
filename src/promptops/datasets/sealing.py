"""Dataset cases copied from sealed runs stay sealed under the run's subject.

A run whose payload is sealed (``settings.privacy.sealRunPayloads``, promptops.runs.payloads) holds what an end
user typed and what the model answered them. A case made from it (``POST /api/v1/datasets/from-runs``) copies
that text, so it is stored sealed under the same subject (``dataset_cases.subject_id``): erasing the end user
(or the project's run-payload subject) shreds the copies with the runs, in the database and its backups. The
case's ``input`` is stored as ``{"$sealed": token}`` (the token seals the JSON text) and ``expected`` as the token
itself; the key, tags and metadata (run id, model, provider) stay plain. Every writer of cases seals here
(:func:`seal_rows`) and every reader reveals here (:func:`reveal_cases`, :func:`reveal_values`), so no feature
sees a sealed value; a case of an erased subject reads ``{"input": "[erased]"}`` and ``"[erased]"``. A case
edited later keeps its subject (and stays sealed); cases typed or imported by hand have none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from promptops.datasets.models import DatasetCase
from promptops.personal import vault
from promptops.runs import payloads as run_payloads

SEALED = run_payloads.SEALED
ERASED_INPUT: dict[str, Any] = {"input": vault.ERASED}


async def seal_rows(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Seal, in place, the ``input`` and ``expected`` of the case rows about to be inserted that have a subject
    (one key read per subject)."""
    sealers = run_payloads.Sealers(session)
    for row in rows:
        subject = row.get("subject_id")
        if not subject:
            continue
        seal = await sealers.of_subject(row["project_id"], subject)
        row["input"] = {SEALED: seal(orjson.dumps(row["input"]).decode())}
        if row.get("expected"):
            row["expected"] = seal(row["expected"])


async def reveal_values(
    session: AsyncSession, values: Sequence[tuple[Any, str | None]]
) -> list[tuple[Any, str | None]]:
    """The plaintext (input, expected) of stored case values (plain ones unchanged); one key query."""
    tokens = [
        t
        for inputs, expected in values
        for t in (run_payloads.sealed_token(inputs), expected)
        if vault.is_sealed(t)
    ]
    if not tokens:
        return list(values)
    plain = await vault.reveal_many(session, tokens)
    out: list[tuple[Any, str | None]] = []
    for inputs, expected in values:
        token = run_payloads.sealed_token(inputs)
        if token is not None:
            text = plain.get(token, vault.ERASED)
            inputs = ERASED_INPUT if text == vault.ERASED else orjson.loads(text)
        if expected is not None and vault.is_sealed(expected):
            expected = plain.get(expected, vault.ERASED)
        out.append((inputs, expected))
    return out


async def reveal_cases(session: AsyncSession, cases: Iterable[DatasetCase]) -> None:
    """Replace the sealed values of loaded cases with their plaintext, in memory only (nothing is written back)."""
    sealed = [c for c in cases if c.subject_id]
    if not sealed:
        return
    revealed = await reveal_values(session, [(c.input, c.expected) for c in sealed])
    for case, (inputs, expected) in zip(sealed, revealed, strict=True):
        set_committed_value(case, "input", inputs)
        set_committed_value(case, "expected", expected)
