"""Run payloads sealed under per-subject keys where a project asks for it (``settings.privacy.sealRunPayloads``).

The free-text columns of a run (``input``, ``output``, ``tool_calls``, ``error_message``) are what end users
typed and what the model answered them. With the setting on, every writer of runs seals them here at insert
time (:func:`insert_runs` for ORM runs: the recorder, SDK ingest, evaluations, playground, optimize;
:func:`seal_rows` for the gateway outbox's core inserts) and every reader reveals them here
(:func:`reveal_runs`, called by each read function of :mod:`promptops.runs.service`), so no feature sees a
sealed value. With the setting off nothing is sealed and reading costs one check per run in memory.

The key (:mod:`promptops.personal.vault`): a gateway call that names its end user (``X-PromptOps-Unit``, the
OpenAI ``user`` field, Anthropic ``metadata.user_id``) is sealed under that end user's subject (``eus_...``, the
same pseudonym as feedback's ``user``), so erasing the end user shreds their runs too; every other run (SDK
traces, playground, evaluations, optimize) under the project's run-payload subject ``rpl_...``, whose erasure
shreds all of them at once. A sealed ``input`` is ``{"$sealed": token}`` (the token seals the JSON text),
``tool_calls`` ``[{"$sealed": token}]``, ``output`` and ``error_message`` the token itself; the token names
its subject (``pd1.<subject>.<generation>....``), which is how a subject's runs are found for an access export.
An erased subject's payloads read ``{"prompt": "[erased]"}``, ``"[erased]"`` and ``[{"content": "[erased]"}]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from promptops.personal import vault
from promptops.runs.models import Run
from promptops.tenancy.service import project_settings

SEALED = "$sealed"
PAYLOAD_SUBJECT_PREFIX = "rpl_"
PAYLOAD_KIND = "runs"
END_USER_KIND = "end_user"
COLUMNS = ("input", "output", "tool_calls", "error_message")
# error_message is a String(2000): the plaintext is cut so that its token (base64 plus the subject) fits.
MAX_SEALED_ERROR_BYTES = 1400
ERASED_INPUT: dict[str, Any] = {"prompt": vault.ERASED}
ERASED_TOOL_CALLS: list[dict[str, Any]] = [{"content": vault.ERASED}]


def payload_subject(project_id: str) -> str:
    """The subject whose key seals a project's run payloads that name no end user."""
    return PAYLOAD_SUBJECT_PREFIX + project_id.split("_", 1)[-1]


def sealed_token(value: Any) -> str | None:
    """The token of a sealed JSON value (``{"$sealed": token}``), else None."""
    token = value.get(SEALED) if isinstance(value, dict) else None
    return token if isinstance(token, str) else None


def subject_kind(subject_id: str) -> str:
    """The kind of a subject that seals run payloads: the project's (``rpl_...``) or an end user's."""
    return PAYLOAD_KIND if subject_id.startswith(PAYLOAD_SUBJECT_PREFIX) else END_USER_KIND


async def sealed_subjects(session: AsyncSession, run_ids: Sequence[str]) -> dict[str, str]:
    """{run id: the subject its payload is sealed under} for those of ``run_ids`` that are sealed (read from the
    stored columns, which loaded runs no longer show once revealed)."""
    out: dict[str, str] = {}
    for start in range(0, len(run_ids), 500):
        rows = await session.execute(
            select(Run.id, Run.input, Run.output).where(Run.id.in_(run_ids[start : start + 500]))
        )
        for run_id, inputs, output in rows:
            token = sealed_token(inputs) or (output if vault.is_sealed(output) else None)
            subject = vault.subject_of(token) if token else None
            if subject:
                out[run_id] = subject
    return out


def seals_run_payloads(settings: dict[str, Any]) -> bool:
    privacy = settings.get("privacy")
    return isinstance(privacy, dict) and privacy.get("sealRunPayloads") is True


async def sealing_projects(session: AsyncSession, project_ids: Iterable[str]) -> set[str]:
    """The projects among ``project_ids`` that seal their run payloads."""
    return {pid for pid in set(project_ids) if seals_run_payloads(await project_settings(session, pid))}


def _clip(text: str) -> str:
    raw = text.encode()
    return raw[:MAX_SEALED_ERROR_BYTES].decode(errors="ignore") if len(raw) > MAX_SEALED_ERROR_BYTES else text


def _sealed_values(values: dict[str, Any], seal: Callable[[str], str]) -> dict[str, Any]:
    """The sealed form of a run's payload columns (only those with content; empty ones stay as they are)."""
    out: dict[str, Any] = {}
    if values.get("input"):
        out["input"] = {SEALED: seal(orjson.dumps(values["input"]).decode())}
    if values.get("output"):
        out["output"] = seal(values["output"])
    if values.get("tool_calls"):
        out["tool_calls"] = [{SEALED: seal(orjson.dumps(values["tool_calls"]).decode())}]
    if values.get("error_message"):
        out["error_message"] = seal(_clip(values["error_message"]))
    return out


class Sealers:
    """One sealing function per subject of a batch (each subject's key is read once)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._made: dict[str, Callable[[str], str]] = {}

    async def of(self, project_id: str, end_user: str | None) -> Callable[[str], str]:
        """The sealer of a run of ``project_id`` that names ``end_user`` (None: the project's key)."""
        if end_user:
            subject = await vault.end_user_subject(self.session, project_id, end_user)
        else:
            subject = payload_subject(project_id)
        return await self.of_subject(project_id, subject)

    async def of_subject(self, project_id: str, subject: str) -> Callable[[str], str]:
        if subject not in self._made:
            self._made[subject] = await vault.sealer(
                self.session, subject, kind=subject_kind(subject), project_id=project_id
            )
        return self._made[subject]


async def insert_runs(session: AsyncSession, runs: Sequence[Run]) -> None:
    """Add ``runs`` to the session, sealed where their project asks for it, and flush them. The objects keep
    their plaintext in memory (callers still read what they recorded); only the stored row is sealed."""
    session.add_all(runs)
    sealing = await sealing_projects(session, (run.project_id for run in runs))
    if not sealing:
        return
    sealers = Sealers(session)
    plain: list[tuple[Run, dict[str, Any]]] = []
    for run in runs:
        if run.project_id not in sealing:
            continue
        values = {column: getattr(run, column) for column in COLUMNS}
        sealed = _sealed_values(values, await sealers.of(run.project_id, None))
        for column, value in sealed.items():
            setattr(run, column, value)
        plain.append((run, values))
    await session.flush()
    for run, values in plain:
        for column, value in values.items():
            set_committed_value(run, column, value)


async def seal_rows(
    session: AsyncSession, rows: Sequence[dict[str, Any]], end_users: Sequence[str | None]
) -> None:
    """Seal, in place, the payload columns of ``runs`` rows about to be inserted (the gateway outbox's core
    inserts); ``end_users``: per row, the end user the call named (None: the project's key)."""
    sealing = await sealing_projects(session, (row["project_id"] for row in rows))
    if not sealing:
        return
    sealers = Sealers(session)
    for row, end_user in zip(rows, end_users, strict=True):
        if row["project_id"] in sealing:
            row.update(_sealed_values(row, await sealers.of(row["project_id"], end_user)))


def _tokens(run: Run) -> list[str]:
    found: list[str] = []
    if (token := sealed_token(run.input)) is not None:
        found.append(token)
    if vault.is_sealed(run.output):
        found.append(str(run.output))
    if isinstance(run.tool_calls, list) and run.tool_calls and isinstance(run.tool_calls[0], dict):
        token = run.tool_calls[0].get(SEALED)
        if isinstance(token, str):
            found.append(token)
    if vault.is_sealed(run.error_message):
        found.append(str(run.error_message))
    return found


def _json(plain: str, erased: Any) -> Any:
    return erased if plain == vault.ERASED else orjson.loads(plain)


async def reveal_runs(session: AsyncSession, runs: Iterable[Run]) -> None:
    """Replace the sealed payloads of ``runs`` with their plaintext (``[erased]`` forms for an erased
    subject), in memory only: the values are set as loaded, so nothing is written back. One key query for
    the whole batch; runs without sealed values cost nothing."""
    sealed = [(run, tokens) for run in runs if (tokens := _tokens(run))]
    if not sealed:
        return
    plain = await vault.reveal_many(session, (t for _, tokens in sealed for t in tokens))
    for run, _ in sealed:
        if (token := sealed_token(run.input)) is not None:
            set_committed_value(run, "input", _json(plain[token], ERASED_INPUT))
        if vault.is_sealed(run.output):
            set_committed_value(run, "output", plain[str(run.output)])
        if isinstance(run.tool_calls, list) and run.tool_calls and isinstance(run.tool_calls[0], dict):
            token = run.tool_calls[0].get(SEALED)
            if isinstance(token, str):
                set_committed_value(run, "tool_calls", _json(plain[token], ERASED_TOOL_CALLS))
        if vault.is_sealed(run.error_message):
            set_committed_value(run, "error_message", plain[str(run.error_message)])


def sealed_for(subject_id: str) -> ColumnElement[bool]:
    """A filter on runs whose payloads are sealed under ``subject_id`` (its tokens name it)."""
    prefix = f"{vault.TOKEN_VERSION}.{subject_id}."
    return or_(
        Run.output.startswith(prefix, autoescape=True),
        Run.input[SEALED].as_string().startswith(prefix, autoescape=True),
    )
