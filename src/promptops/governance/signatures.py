"""Ed25519 signatures of audit checkpoints and template packs: the signed bytes, key ids and trusted keys.

Pure functions (no database), shared by the server, which signs, and by the offline verifiers of the CLI
(``promptops audit verify --file``, ``promptops packs verify``), which only hold public keys.

- A key id is the first 16 hex digits of SHA-256 over the 32 raw public-key bytes, so a verifier derives it
  from the key it trusts and a file cannot claim another key's id.
- Signed bytes are sorted-key compact JSON of a small record whose ``type`` names what is signed
  (``promptops.audit-checkpoint``, ``promptops.pack-manifest``), so a signature over one kind of record is
  never valid as another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "Ed25519"
CHECKPOINT_TYPE = "promptops.audit-checkpoint"
PACK_MANIFEST_TYPE = "promptops.pack-manifest"
MAX_KEY_FILE_BYTES = 1_000_000


class KeyFormatError(ValueError):
    """A public key (or key file) that cannot be read."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    return base64.b64decode(cleaned, validate=True)


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem(public_b64: str) -> str:
    key = Ed25519PublicKey.from_public_bytes(unb64(public_b64))
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def new_private_key() -> tuple[Ed25519PrivateKey, bytes, bytes]:
    """A fresh key: (key, raw private bytes, raw public bytes)."""
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return key, raw, public_raw(key.public_key())


def private_from_raw(raw: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(raw)


def canonical(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def checkpoint_payload(
    *, chain: str, chain_id: str, org_id: str, seq: int, head_hash: str, signed_at: str, key_id: str
) -> bytes:
    """The bytes an audit checkpoint's signature covers."""
    return canonical(
        {
            "type": CHECKPOINT_TYPE,
            "v": 1,
            "chain": chain,
            "chainId": chain_id,
            "orgId": org_id,
            "seq": seq,
            "headHash": head_hash,
            "signedAt": signed_at,
            "keyId": key_id,
        }
    )


def checkpoint_payload_of(line: dict[str, Any]) -> bytes:
    """:func:`checkpoint_payload` from an exported checkpoint line (KeyError/TypeError when fields are missing)."""
    return checkpoint_payload(
        chain=str(line["chain"]),
        chain_id=str(line["chainId"]),
        org_id=str(line["orgId"]),
        seq=int(line["seq"]),
        head_hash=str(line["headHash"]),
        signed_at=str(line["signedAt"]),
        key_id=str(line["keyId"]),
    )


def sign(key: Ed25519PrivateKey, payload: bytes) -> str:
    return b64(key.sign(payload))


def verify(public_raw_bytes: bytes, payload: bytes, signature_b64: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_raw_bytes).verify(unb64(signature_b64), payload)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


@dataclass(frozen=True)
class TrustedKey:
    """A public key a verifier trusts, with the period it may sign in when known (from the server's key list)."""

    key_id: str
    raw: bytes
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def covers(self, at: datetime) -> bool:
        if self.valid_from is not None and at < self.valid_from:
            return False
        return not (self.valid_until is not None and at > self.valid_until)


def _trusted(raw: bytes, valid_from: Any = None, valid_until: Any = None) -> TrustedKey:
    if len(raw) != 32:
        raise KeyFormatError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return TrustedKey(key_id(raw), raw, _time(valid_from), _time(valid_until))


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise KeyFormatError(f"not an ISO 8601 time: {value!r}") from None


def parse_public_keys(text: str) -> list[TrustedKey]:
    """Keys from text: a PEM public key, the JSON of ``GET /api/v1/audit/public-keys`` (``{"keys": [...]}``,
    with validity periods), or base64 raw keys (one per line; ``ed25519:`` prefix allowed)."""
    stripped = text.strip()
    if not stripped:
        raise KeyFormatError("no public key given")
    keys: list[TrustedKey] = []
    if stripped.startswith(("{", "[")):
        try:
            doc = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise KeyFormatError(f"unreadable JSON key list: {exc}") from None
        items = doc.get("keys") if isinstance(doc, dict) else doc
        if not isinstance(items, list) or not items:
            raise KeyFormatError('a JSON key list needs a non-empty "keys" array')
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("publicKey"), str):
                raise KeyFormatError('each key needs a "publicKey" (base64)')
            key = _trusted(_raw(item["publicKey"]), item.get("validFrom"), item.get("validUntil"))
            if item.get("keyId") not in (None, key.key_id):
                raise KeyFormatError(f"key id {item['keyId']!r} does not match its public key ({key.key_id})")
            keys.append(key)
        return keys
    if "-----BEGIN" in stripped:
        for block in stripped.split("-----END PUBLIC KEY-----"):
            if "-----BEGIN" not in block:
                continue
            try:
                loaded = serialization.load_pem_public_key((block + "-----END PUBLIC KEY-----").encode())
            except ValueError as exc:
                raise KeyFormatError(f"unreadable PEM public key: {exc}") from None
            if not isinstance(loaded, Ed25519PublicKey):
                raise KeyFormatError("the PEM key is not an Ed25519 public key")
            keys.append(_trusted(public_raw(loaded)))
        return keys
    return [_trusted(_raw(line)) for line in stripped.splitlines() if line.strip()]


def _raw(text: str) -> bytes:
    value = text.strip().removeprefix("ed25519:")
    try:
        return unb64(value)
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"not a base64 public key: {value[:20]!r}") from None


def load_public_keys(values: list[str]) -> list[TrustedKey]:
    """Each value is a file (PEM, JSON key list, base64 lines) or a base64 key given inline."""
    keys: list[TrustedKey] = []
    for value in values:
        path = Path(value)
        is_file = len(value) < 4096 and path.is_file()
        if is_file:
            if path.stat().st_size > MAX_KEY_FILE_BYTES:
                raise KeyFormatError(f"{value}: key file larger than {MAX_KEY_FILE_BYTES} bytes")
            text = path.read_text()
        else:
            text = value
        try:
            keys.extend(parse_public_keys(text))
        except KeyFormatError as exc:
            raise KeyFormatError(f"{value if is_file else 'public key'}: {exc}") from None
    return keys
