"""The template pack file: one JSON document, its content hashes and its Ed25519 signature (no database).

::

    {"format": "promptops.pack", "formatVersion": 1,
     "manifest": {"name", "version", "description", "changelog": [{"version", "date", "notes"}],
                  "createdAt", "createdBy",
                  "items": [{"kind": "prompt" | "dataset", "name", "hash"}],   # sorted by kind, then name
                  "contentHash", "scorerTypes": [...],
                  "signer": {"keyId", "algorithm": "Ed25519", "publicKey"}},
     "prompts": [{"name", "description", "tags", "version": {"kind", "template", "messages", "variables",
                  "modelConfig", "responseSchema", "metadata", "commitMessage"}}],
     "datasets": [{"name", "description", "cases": [{"id", "input", "expected"?, "tags"?, "metadata"?}]}],
     "signature": "<base64>"}

An item's ``hash`` is SHA-256 over its canonical JSON (sorted keys); ``contentHash`` covers the item list, so it
is equal for two packs with equal content whatever their name, version, time or signer. The signature covers
the canonical manifest (with the signer's public key inside it), so changing any item, the manifest or the key
breaks it. Scorer settings travel with the dataset cases (``metadata.scorers``, where evaluations read them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from promptops.governance import signatures

FORMAT = "promptops.pack"
FORMAT_VERSION = 1
MAX_PACK_BYTES = 20_000_000
VERSION_FIELDS = (
    "kind",
    "template",
    "messages",
    "variables",
    "modelConfig",
    "responseSchema",
    "metadata",
    "commitMessage",
)


def item_hash(item: dict[str, Any]) -> str:
    return hashlib.sha256(signatures.canonical(item)).hexdigest()


def content_hash(items: list[dict[str, Any]]) -> str:
    """Over ``[{kind, name, hash}]`` in order."""
    listing = [{"kind": i["kind"], "name": i["name"], "hash": i["hash"]} for i in items]
    return hashlib.sha256(signatures.canonical({"items": listing})).hexdigest()


def manifest_items(prompts: list[dict[str, Any]], datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    items = [{"kind": "dataset", "name": d["name"], "hash": item_hash(d)} for d in datasets]
    items += [{"kind": "prompt", "name": p["name"], "hash": item_hash(p)} for p in prompts]
    return sorted(items, key=lambda i: (i["kind"], i["name"]))


def scorer_types(datasets: list[dict[str, Any]]) -> list[str]:
    found: set[str] = set()
    for dataset in datasets:
        for case in dataset.get("cases") or []:
            for spec in ((case.get("metadata") or {}).get("scorers") or []) if isinstance(case, dict) else []:
                if isinstance(spec, dict) and isinstance(spec.get("type"), str):
                    found.add(spec["type"])
    return sorted(found)


def signed_bytes(manifest: dict[str, Any]) -> bytes:
    return signatures.canonical({"type": signatures.PACK_MANIFEST_TYPE, "v": 1, "manifest": manifest})


def dumps(pack: dict[str, Any]) -> bytes:
    """The pack file's bytes (indented, sorted keys: stable and readable in a diff)."""
    return orjson.dumps(pack, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


@dataclass
class PackCheck:
    """What checking a pack found: the integrity problems (any one refuses the pack) and who signed it."""

    problems: list[str] = field(default_factory=list)
    key_id: str | None = None
    public_key: str | None = None
    trusted: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def check(pack: Any, trusted: list[signatures.TrustedKey] | None = None) -> PackCheck:
    """Structure, every item hash, the content hash and the signature (against the key in the manifest; with
    ``trusted``, that key must also be one of them). Offline: no server needed."""
    result = PackCheck()
    problems = result.problems
    if not isinstance(pack, dict) or pack.get("format") != FORMAT:
        problems.append(f"not a {FORMAT} file")
        return result
    if pack.get("formatVersion") != FORMAT_VERSION:
        problems.append(
            f"unsupported formatVersion {pack.get('formatVersion')!r} (this server reads {FORMAT_VERSION})"
        )
        return result
    manifest, prompts, datasets = pack.get("manifest"), pack.get("prompts"), pack.get("datasets")
    if not isinstance(manifest, dict) or not isinstance(prompts, list) or not isinstance(datasets, list):
        problems.append("a pack needs 'manifest' (object), 'prompts' and 'datasets' (arrays)")
        return result
    if not all(isinstance(p, dict) and isinstance(p.get("name"), str) for p in prompts + datasets):
        problems.append("every prompt and dataset item needs a 'name'")
        return result
    raw_items = manifest.get("items")
    if not isinstance(raw_items, list) or not all(
        isinstance(i, dict) and isinstance(i.get("kind"), str) and isinstance(i.get("name"), str)
        for i in raw_items
    ):
        problems.append("the manifest needs an 'items' array of {kind, name, hash}")
        return result
    listed = {(i["kind"], i["name"]): i.get("hash") for i in raw_items}
    actual = manifest_items(prompts, datasets)
    for item in actual:
        stated = listed.pop((item["kind"], item["name"]), None)
        if stated is None:
            problems.append(
                f"{item['kind']} {item['name']!r} is not listed in the manifest (added after signing)"
            )
        elif stated != item["hash"]:
            problems.append(
                f"{item['kind']} {item['name']!r} does not match its hash in the manifest (changed)"
            )
    for kind, name in listed:
        problems.append(f"{kind} {name!r} is listed in the manifest but missing from the pack (removed)")
    if manifest.get("contentHash") != content_hash(actual):
        problems.append("the manifest's contentHash does not match the items")
    signer = manifest.get("signer")
    if not isinstance(signer, dict) or not isinstance(signer.get("publicKey"), str):
        problems.append("the manifest names no signer public key")
        return result
    try:
        raw = signatures.unb64(signer["publicKey"])
    except ValueError:
        problems.append("the signer public key is not base64")
        return result
    result.key_id, result.public_key = signatures.key_id(raw), signer["publicKey"]
    if signer.get("keyId") != result.key_id:
        problems.append(f"the signer key id {signer.get('keyId')!r} does not match its public key")
    if not signatures.verify(raw, signed_bytes(manifest), str(pack.get("signature"))):
        problems.append("the signature does not verify: the manifest was changed or signed by another key")
    if trusted is not None:
        result.trusted = any(k.key_id == result.key_id for k in trusted)
    return result
