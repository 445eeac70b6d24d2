"""Secrets at rest: AES-256-GCM with a key id, so the master key can rotate.

The master secret comes from ``PROMPTOPS_SECRET_KEY`` (or a file generated once under the data dir). The
AES key is derived from it with HKDF-SHA256; its key id is the first 8 hex digits of a hash of the derived
key. A ciphertext is ``v1.<kid>.<base64url(nonce | ciphertext+tag)>`` and is bound to its row through the
associated data (e.g. the connection id), so a ciphertext copied to another row does not decrypt. Old
secrets listed in ``PROMPTOPS_PREVIOUS_SECRET_KEYS`` still decrypt; rows are re-encrypted with the current
key at start-up.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets as std_secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from promptops.errors import ProblemError

VERSION = "v1"
_INFO = b"promptops/secret-box/v1"


class SecretUnavailable(ProblemError):
    status = 500
    code = "secret_unavailable"
    title = "A stored secret cannot be decrypted"


@dataclass(frozen=True)
class _Key:
    kid: str
    aead: AESGCM


def _derive(master: str) -> _Key:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(master.encode())
    return _Key(kid=hashlib.sha256(raw).hexdigest()[:8], aead=AESGCM(raw))


class SecretBox:
    """Encrypts and decrypts small secrets (provider API keys) with the current master key."""

    def __init__(self, current: str, previous: list[str] | None = None) -> None:
        if len(current) < 16:
            raise ValueError("the secret key must be at least 16 characters")
        self._current = _derive(current)
        self._keys = {self._current.kid: self._current}
        for old in previous or []:
            key = _derive(old)
            self._keys.setdefault(key.kid, key)

    @property
    def current_kid(self) -> str:
        return self._current.kid

    def encrypt(self, plaintext: str, associated: str) -> str:
        nonce = os.urandom(12)
        sealed = self._current.aead.encrypt(nonce, plaintext.encode(), associated.encode())
        return f"{VERSION}.{self._current.kid}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, associated: str) -> str:
        try:
            version, kid, payload = token.split(".", 2)
        except ValueError:
            raise SecretUnavailable("Stored secret has an unknown format", code="secret_corrupt")
        key = self._keys.get(kid)
        if version != VERSION or key is None:
            raise SecretUnavailable(
                f"Stored secret was encrypted with key id {kid}, which is not configured; "
                "add the old secret to PROMPTOPS_PREVIOUS_SECRET_KEYS",
                code="secret_key_unknown",
            )
        blob = base64.urlsafe_b64decode(payload)
        try:
            return key.aead.decrypt(blob[:12], blob[12:], associated.encode()).decode()
        except InvalidTag:
            raise SecretUnavailable("Stored secret failed its integrity check", code="secret_corrupt")

    def needs_rotation(self, token: str) -> bool:
        return token.split(".", 2)[1] != self._current.kid if token.count(".") >= 2 else True


def load_master_secret(configured: str | None, data_dir: Path) -> str:
    """The configured secret, else one generated once and kept in ``<data_dir>/secret_key`` (mode 0600)."""
    if configured:
        return configured
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = std_secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
