"""Template packs: export chosen prompt versions (and datasets with their scorer settings) as a signed pack, and
import one with a preview, a dry run and a conflict policy, keeping the provenance of every imported version.

Import decides per item:

- ``new``: no prompt (dataset) of that name: created (source ``imported``).
- ``unchanged``: the latest version already has exactly the item's content: nothing to do.
- ``changed``: the latest version was imported from this same pack and has not been edited since: a new version
  (an update of the pack), whatever the conflict policy.
- ``conflict``: the project's own latest version differs: ``skip`` leaves it, ``new-version`` adds the pack's
  content as a new version, ``fail`` refuses the whole import (409, nothing written).

Everything is checked before anything is written (signature, hashes, trust, every item's fields), and the
writes happen in the caller's one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.crypto import SecretBox
from promptops.datasets import formats as dataset_formats
from promptops.datasets import service as datasets
from promptops.db import utcnow
from promptops.errors import Conflict, NotFound, ProblemError, ValidationProblem
from promptops.evals.scoring.registry import known_types
from promptops.governance import audit, signatures, signing
from promptops.governance.audit import canonical_timestamp
from promptops.ids import new_id
from promptops.packs import format as pack_format
from promptops.packs.models import PackImport, PackProvenance
from promptops.packs.schemas import PackExportIn
from promptops.registry import service as registry
from promptops.registry.schemas import CreatePromptIn, CreateVersionIn, UpdatePromptIn
from promptops.templates import engine


class PackInvalid(ProblemError):
    status = 422
    code = "pack_invalid"
    title = "The pack is damaged or was changed after it was signed"


class PackUntrusted(ProblemError):
    status = 422
    code = "pack_untrusted_signer"
    title = "The pack is signed by a key this project does not trust"


# --- export ---------------------------------------------------------------------------------------------------


def _version_item(version: Any) -> dict[str, Any]:
    fields = registry.version_fields(version)
    return {
        "kind": fields["kind"],
        "template": fields["template"],
        "messages": fields["messages"],
        "variables": fields["variables"],
        "modelConfig": fields["modelConfig"],
        "responseSchema": fields["responseSchema"],
        "metadata": fields["metadata"],
        "commitMessage": version.commit_message,
    }


def _prompt_item(prompt: Any, tags: list[str], version: Any) -> dict[str, Any]:
    return {
        "name": prompt.name,
        "description": prompt.description,
        "tags": sorted(tags),
        "version": _version_item(version),
    }


def _case_objects(cases: Sequence[dataset_formats.Case]) -> list[dict[str, Any]]:
    objects = []
    for case in cases:
        obj = case.to_object()
        obj.pop("sourceRunId", None)  # a run of the exporting project means nothing elsewhere
        objects.append(obj)
    return objects


async def export_pack(
    session: AsyncSession, box: SecretBox, principal: Principal, body: PackExportIn
) -> dict[str, Any]:
    """The signed pack of the chosen prompt versions and datasets (audited ``PackExported``)."""
    prompts: dict[str, dict[str, Any]] = {}
    for ref in body.prompts:
        prompt = await registry.get_prompt(session, principal, ref.prompt)
        if prompt.name in prompts:
            raise ValidationProblem(f"Prompt {prompt.name!r} is chosen twice", code="pack_duplicate_item")
        version, _ = await registry.select_version(session, prompt, label=ref.label, version=ref.version)
        tags = (await registry.tags_of(session, [prompt.id]))[prompt.id]
        prompts[prompt.name] = _prompt_item(prompt, tags, version)
    dataset_items: dict[str, dict[str, Any]] = {}
    for dref in body.datasets:
        dataset = await datasets.get_dataset(session, principal, dref.dataset)
        if dataset.name in dataset_items:
            raise ValidationProblem(f"Dataset {dataset.name!r} is chosen twice", code="pack_duplicate_item")
        dversion = await datasets.get_version(session, dataset, dref.version)
        cases = await datasets.load_cases(session, principal, dversion.id)
        dataset_items[dataset.name] = {
            "name": dataset.name,
            "description": dataset.description,
            "cases": _case_objects(cases),
        }
    prompt_list = [prompts[n] for n in sorted(prompts)]
    dataset_list = [dataset_items[n] for n in sorted(dataset_items)]
    items = pack_format.manifest_items(prompt_list, dataset_list)
    key = await signing.current_key(session, box, principal.org_id, principal)
    manifest = {
        "name": body.name,
        "version": body.version,
        "description": body.description,
        "changelog": [e.model_dump(exclude_none=True) for e in body.changelog],
        "createdAt": canonical_timestamp(utcnow()),
        "createdBy": audit.actor_name(principal),
        "items": items,
        "contentHash": pack_format.content_hash(items),
        "scorerTypes": pack_format.scorer_types(dataset_list),
        "signer": {"keyId": key.row.id, "algorithm": key.row.algorithm, "publicKey": key.row.public_key},
    }
    pack = {
        "format": pack_format.FORMAT,
        "formatVersion": pack_format.FORMAT_VERSION,
        "manifest": manifest,
        "prompts": prompt_list,
        "datasets": dataset_list,
        "signature": signatures.sign(key.private, pack_format.signed_bytes(manifest)),
    }
    await audit.record(
        session,
        principal,
        "PackExported",
        data={
            "packName": body.name,
            "packVersion": body.version,
            "contentHash": manifest["contentHash"],
            "keyId": key.row.id,
            "prompts": sorted(prompts),
            "datasets": sorted(dataset_items),
        },
    )
    return pack


# --- import ---------------------------------------------------------------------------------------------------


@dataclass
class PlannedItem:
    kind: str
    name: str
    status: str
    action: str
    current_version: int | None
    result_version: int | None
    detail: str
    item_hash: str
    prompt_in: CreatePromptIn | None = None
    cases: list[dataset_formats.Case] | None = None
    description: str = ""


@dataclass
class ImportPlan:
    name: str
    version: str
    content_hash: str
    signer_key_id: str
    trusted: bool
    on_conflict: str
    items: list[PlannedItem]
    import_id: str | None = None

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.status] = counts.get(item.status, 0) + 1
            counts[f"action:{item.action}"] = counts.get(f"action:{item.action}", 0) + 1
        return counts


def _normalized_prompt_item(body: CreatePromptIn) -> dict[str, Any]:
    """The item as the registry would store it (so equal content compares equal)."""
    return {
        "name": body.name,
        "description": body.description,
        "tags": sorted(body.tags),
        "version": {
            "kind": body.kind,
            "template": body.template,
            "messages": [m.model_dump() for m in body.messages] if body.messages else None,
            "variables": [engine.VariableSpec.from_dict(v.model_dump()).to_dict() for v in body.variables],
            "modelConfig": body.model_config_.model_dump(exclude_none=True),
            "responseSchema": body.response_schema,
            "metadata": body.metadata,
            "commitMessage": body.commit_message,
        },
    }


def _prompt_body(raw: dict[str, Any]) -> CreatePromptIn:
    version = raw.get("version")
    if not isinstance(version, dict):
        raise ValidationProblem(
            f"Prompt item {raw.get('name')!r} has no 'version' object", code="pack_item_invalid"
        )
    unknown = set(version) - set(pack_format.VERSION_FIELDS)
    if unknown:
        raise ValidationProblem(
            f"Prompt item {raw.get('name')!r} has unknown version fields: {', '.join(sorted(unknown))}",
            code="pack_item_invalid",
        )
    try:
        return CreatePromptIn.model_validate(
            {
                "name": raw.get("name"),
                "description": raw.get("description", ""),
                "tags": raw.get("tags", []),
                **version,
                "source": "imported",
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationProblem(
            f"Prompt item {raw.get('name')!r} is not a valid prompt: {where}: {first['msg']}",
            code="pack_item_invalid",
        ) from None


async def _provenance(session: AsyncSession, principal: Principal, target_id: str) -> PackProvenance | None:
    return (
        await session.execute(
            select(PackProvenance).where(
                PackProvenance.project_id == principal.project_id, PackProvenance.target_id == target_id
            )
        )
    ).scalar_one_or_none()


def _decide(status: str, on_conflict: str) -> str:
    if status == "new":
        return "create"
    if status == "unchanged":
        return "none"
    if status == "changed":
        return "newVersion"
    return {"skip": "skip", "new-version": "newVersion", "fail": "fail"}[on_conflict]


async def _plan_prompt(
    session: AsyncSession, principal: Principal, pack_name: str, raw: dict[str, Any], on_conflict: str
) -> PlannedItem:
    body = _prompt_body(raw)
    item = _normalized_prompt_item(body)
    digest = pack_format.item_hash(raw)
    try:
        prompt = await registry.get_prompt(session, principal, body.name)
    except NotFound:
        return PlannedItem("prompt", body.name, "new", "create", None, 1, "not in the project", digest, body)
    latest, _ = await registry.select_version(session, prompt)
    tags = (await registry.tags_of(session, [prompt.id]))[prompt.id]
    if _prompt_item(prompt, tags, latest) == item:
        return PlannedItem(
            "prompt",
            body.name,
            "unchanged",
            "none",
            latest.version,
            latest.version,
            "same content",
            digest,
            body,
        )
    origin = await _provenance(session, principal, latest.id)
    if origin is not None and origin.pack_name == pack_name:
        status, detail = "changed", f"version {latest.version} came from {pack_name} {origin.pack_version}"
    else:
        status, detail = "conflict", f"version {latest.version} is the project's own and differs"
    action = _decide(status, on_conflict)
    result = latest.version + 1 if action == "newVersion" else latest.version
    return PlannedItem("prompt", body.name, status, action, latest.version, result, detail, digest, body)


async def _plan_dataset(
    session: AsyncSession, principal: Principal, pack_name: str, raw: dict[str, Any], on_conflict: str
) -> PlannedItem:
    name = str(raw.get("name"))
    datasets.validate_dataset_name(name)
    objects = raw.get("cases")
    if not isinstance(objects, list) or len(objects) > dataset_formats.MAX_CASES:
        raise ValidationProblem(f"Dataset item {name!r} needs a 'cases' array", code="pack_item_invalid")
    description = raw.get("description", "")
    if not isinstance(description, str) or len(description) > 2000:
        raise ValidationProblem(
            f"Dataset item {name!r}: description must be text of at most 2000 characters",
            code="pack_item_invalid",
        )
    try:
        cases = dataset_formats.normalize_cases(objects, source=f"dataset {name}")
    except ProblemError as exc:
        raise ValidationProblem(f"Dataset item {name!r}: {exc.detail}", code="pack_item_invalid") from None
    known = set(known_types())
    unknown = sorted({t for t in pack_format.scorer_types([raw]) if t not in known})
    if unknown:
        raise ValidationProblem(
            f"Dataset item {name!r} uses scorer types this server does not have: {', '.join(unknown)}",
            code="pack_unknown_scorer",
        )
    digest = pack_format.item_hash(raw)
    try:
        dataset = await datasets.get_dataset(session, principal, name)
    except NotFound:
        return PlannedItem(
            "dataset",
            name,
            "new",
            "create",
            None,
            1,
            "not in the project",
            digest,
            cases=cases,
            description=description,
        )
    latest = await datasets.get_version(session, dataset)
    current = _case_objects(await datasets.load_cases(session, principal, latest.id))
    if current == _case_objects(cases) and dataset.description == description:
        return PlannedItem(
            "dataset",
            name,
            "unchanged",
            "none",
            latest.version,
            latest.version,
            "same content",
            digest,
            cases=cases,
            description=description,
        )
    origin = await _provenance(session, principal, latest.id)
    if origin is not None and origin.pack_name == pack_name:
        status, detail = "changed", f"version {latest.version} came from {pack_name} {origin.pack_version}"
    else:
        status, detail = "conflict", f"version {latest.version} is the project's own and differs"
    action = _decide(status, on_conflict)
    result = latest.version + 1 if action == "newVersion" else latest.version
    return PlannedItem(
        "dataset",
        name,
        status,
        action,
        latest.version,
        result,
        detail,
        digest,
        cases=cases,
        description=description,
    )


async def plan_import(
    session: AsyncSession,
    principal: Principal,
    pack: Any,
    on_conflict: str,
    trust_keys: Sequence[str] = (),
) -> ImportPlan:
    """Check the pack (integrity, signer trust, every item) and decide each item: the preview."""
    try:
        extra = signatures.load_public_keys(list(trust_keys)) if trust_keys else []
    except signatures.KeyFormatError as exc:
        raise ValidationProblem(f"trustKey: {exc}", code="invalid_public_key") from None
    own = [
        signatures.TrustedKey(k.id, signatures.unb64(k.public_key))
        for k in await signing.list_keys(session, principal.org_id)
    ]
    checked = pack_format.check(pack, own + extra)
    if not checked.ok:
        raise PackInvalid("The pack was refused: " + "; ".join(checked.problems), problems=checked.problems)
    manifest = pack["manifest"]
    if not checked.trusted:
        raise PackUntrusted(
            f"The pack is signed by key {checked.key_id}, which is neither this organization's nor given as trustKey",
            keyId=checked.key_id,
        )
    items: list[PlannedItem] = []
    for raw in pack["datasets"]:
        items.append(await _plan_dataset(session, principal, str(manifest.get("name")), raw, on_conflict))
    for raw in pack["prompts"]:
        items.append(await _plan_prompt(session, principal, str(manifest.get("name")), raw, on_conflict))
    return ImportPlan(
        name=str(manifest.get("name"))[:100],
        version=str(manifest.get("version"))[:40],
        content_hash=str(manifest.get("contentHash")),
        signer_key_id=str(checked.key_id),
        trusted=checked.trusted,
        on_conflict=on_conflict,
        items=sorted(items, key=lambda i: (i.kind, i.name)),
    )


async def import_pack(session: AsyncSession, principal: Principal, plan: ImportPlan) -> ImportPlan:
    """Apply a plan made in this transaction (409 ``pack_conflict`` when the policy is fail and an item
    conflicts); records the import, the provenance of each new version and ``PackImported``."""
    conflicts = [i.name for i in plan.items if i.action == "fail"]
    if conflicts:
        raise Conflict(
            f"The pack conflicts with the project's own content: {', '.join(conflicts)}; "
            "import with onConflict=skip or onConflict=new-version",
            code="pack_conflict",
            items=conflicts,
        )
    row = PackImport(
        id=new_id("pack_import"),
        project_id=principal.project_id,
        pack_name=plan.name,
        pack_version=plan.version,
        signer_key_id=plan.signer_key_id,
        content_hash=plan.content_hash,
        on_conflict=plan.on_conflict,
        counts=plan.counts(),
        created_by=principal.id,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    for item in plan.items:
        target = await _apply(session, principal, plan, item)
        if target is not None:
            session.add(
                PackProvenance(
                    target_id=target,
                    project_id=principal.project_id,
                    import_id=row.id,
                    kind=item.kind,
                    item_name=item.name,
                    item_hash=item.item_hash,
                    pack_name=plan.name,
                    pack_version=plan.version,
                    signer_key_id=plan.signer_key_id,
                    created_at=row.created_at,
                )
            )
    await session.flush()
    await audit.record(
        session,
        principal,
        "PackImported",
        data={
            "importId": row.id,
            "packName": plan.name,
            "packVersion": plan.version,
            "signerKeyId": plan.signer_key_id,
            "contentHash": plan.content_hash,
            "onConflict": plan.on_conflict,
            "counts": row.counts,
        },
    )
    plan.import_id = row.id
    return plan


async def _apply(
    session: AsyncSession, principal: Principal, plan: ImportPlan, item: PlannedItem
) -> str | None:
    """Write one item; the id of the version it created (None when nothing was written)."""
    note = f"imported from pack {plan.name} {plan.version}"
    if item.kind == "dataset":
        assert item.cases is not None
        if item.action == "create":
            _, dversion = await datasets.create_dataset(
                session,
                principal,
                item.name,
                item.description,
                item.cases,
                commit_message=note,
                source="import",
            )
            return dversion.id
        if item.action == "newVersion":
            saved = await datasets.new_version(
                session, principal, item.name, item.cases, commit_message=note, source="import"
            )
            await datasets.update_dataset(session, principal, item.name, description=item.description)
            return saved.version.id if saved.created else None  # only the description differed
        return None
    body = item.prompt_in
    assert body is not None
    if item.action == "create":
        _, version = await registry.create_prompt(session, principal, body)
        return version.id
    if item.action == "newVersion":
        await registry.update_prompt(
            session, principal, item.name, UpdatePromptIn(description=body.description, tags=body.tags)
        )
        fields = CreateVersionIn.model_validate(
            body.model_dump(by_alias=True, exclude={"name", "description", "tags"})
        )
        _, version = await registry.create_version(session, principal, item.name, fields)
        return version.id
    return None


async def provenance_of(session: AsyncSession, principal: Principal, target_id: str) -> PackProvenance:
    """Where an imported prompt version or dataset version came from (404 when it was not imported)."""
    found = await _provenance(session, principal, target_id)
    if found is None:
        raise NotFound(f"{target_id} was not imported from a pack", code="provenance_not_found")
    return found


async def list_imports(session: AsyncSession, principal: Principal, limit: int = 50) -> list[PackImport]:
    rows = await session.execute(
        select(PackImport)
        .where(PackImport.project_id == principal.project_id)
        .order_by(PackImport.created_at.desc(), PackImport.id.desc())
        .limit(limit)
    )
    return list(rows.scalars())
