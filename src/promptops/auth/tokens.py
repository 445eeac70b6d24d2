"""API key and session token formats. Only SHA-256 digests are stored; the secrets are shown once."""

from __future__ import annotations

import hashlib
import re
import secrets

API_KEY_PREFIX = "po_"
SESSION_PREFIX = "pos_"
API_KEY_RE = re.compile(r"^po_[a-z0-9]{8}_[A-Za-z0-9_-]{32,64}$")


def digest(secret: str) -> str:
    # These secrets carry >= 190 bits of entropy, so a fast hash is enough (no password stretching needed).
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> tuple[str, str]:
    """A fresh API key and its visible prefix (``po_ab12cd34``)."""
    prefix = API_KEY_PREFIX + secrets.token_hex(4)
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


def api_key_prefix(key: str) -> str:
    return key[: len(API_KEY_PREFIX) + 8]


def is_api_key(token: str) -> bool:
    return API_KEY_RE.match(token) is not None


def new_session_token() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(32)
