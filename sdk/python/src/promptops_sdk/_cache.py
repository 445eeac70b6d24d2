"""Fetching a prompt with its includes (I/O-free steps shared by the sync and async clients), the in-memory
TTL cache with stale-while-revalidate bookkeeping, and the persisted fallback on disk."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from promptops_sdk._errors import ApiError, UnavailableError, api_error
from promptops_sdk._prompt import Prompt
from promptops_sdk._template import Included, references

# Includes fetched for one prompt at most (the server's depth limit applies when rendering).
MAX_INCLUDES = 64

# (name, label, version, unit): the unit only with a label (an experiment may serve it its own arm)
Key = tuple[str, str | None, int | None, str | None]
# A fetch plan yields the path to GET and receives the response.
Plan = Generator[str, httpx.Response, Prompt]


def prompt_path(ref: str, unit: str | None = None) -> str:
    path = "/api/v1/prompts/" + quote(ref, safe="/@")
    return path + "?unit=" + quote(unit, safe="") if unit is not None else path


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def check(response: httpx.Response) -> Any:
    """The decoded body of a 2xx answer; an :class:`UnavailableError` for 5xx, an :class:`ApiError` else."""
    if response.status_code >= 500:
        raise UnavailableError(f"PromptOps answered HTTP {response.status_code}")
    body = _decode(response)
    if response.status_code >= 300:
        raise api_error(response.status_code, body)
    return body


def _included(ref: str, response: httpx.Response) -> Included:
    try:
        version = check(response)["version"]
    except ApiError as error:
        extra = {
            k: v for k, v in error.problem.items() if k not in ("type", "title", "status", "detail", "code")
        }
        extra.pop("instance", None)
        extra.pop("requestId", None)
        return Included(ref=ref, error=(error.code, error.detail, extra))
    return Included(
        ref=ref,
        prompt_id=version["promptId"],
        name=version["promptName"],
        version_id=version["id"],
        version=version["version"],
        kind=version["kind"],
        template=version.get("template") or "",
        variables=tuple(version.get("variables") or ()),
    )


def fetch_plan(name: str, label: str | None, version: int | None, unit: str | None = None) -> Plan:
    """GET the version (the ``unit``'s arm when an experiment runs on the label), then every include it
    (transitively) references, breadth first; the :class:`Prompt`."""
    selector = f"@{version}" if version is not None else (f"@{label}" if label else "")
    resolved = check((yield prompt_path(name + selector, unit)))
    body = resolved["version"]
    tag = resolved.get("experiment") or None
    model_config = dict(body.get("modelConfig") or {})
    if tag and tag.get("model"):
        model_config["model"] = tag["model"]
    sources = (
        [body.get("template") or ""]
        if body["kind"] == "text"
        else [m["content"] for m in body.get("messages") or []]
    )
    includes: dict[str, Included] = {}
    pending = [ref for source in sources for ref in references(source)]
    while pending and len(includes) < MAX_INCLUDES:
        ref = pending.pop(0)
        if ref in includes:
            continue
        included = _included(ref, (yield prompt_path(ref)))
        includes[ref] = included
        if included.error is None and included.kind == "text":
            pending.extend(r for r in references(included.template) if r not in includes)
    return Prompt(
        name=resolved["prompt"]["name"],
        kind=body["kind"],
        template=body.get("template"),
        messages=tuple(body["messages"]) if body.get("messages") is not None else None,
        variables=tuple(body.get("variables") or ()),
        model_config=model_config,
        version=body["version"],
        version_id=body["id"],
        prompt_id=resolved["prompt"]["id"],
        label=label,
        includes=includes,
        experiment=tag["id"] if tag else None,
        arm=tag["arm"] if tag else None,
        unit=unit,
    )


@dataclass
class Entry:
    prompt: Prompt
    fetched_at: float  # time.monotonic()


class MemoryCache:
    """Prompts by key with their fetch time; which keys are being refreshed (single flight). With
    ``max_entries`` the least recently stored entries are dropped beyond it (the per-unit cache)."""

    def __init__(self, ttl: float, max_entries: int | None = None) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._refreshing: set[Key] = set()
        self._lock = threading.Lock()

    def get(self, key: Key) -> tuple[Prompt | None, bool]:
        """(prompt or None, whether it is stale)."""
        entry = self._entries.get(key)
        if entry is None:
            return None, False
        return entry.prompt, time.monotonic() - entry.fetched_at >= self.ttl

    def put(self, key: Key, prompt: Prompt, *, stale: bool = False) -> None:
        with self._lock:
            self._entries[key] = Entry(prompt, time.monotonic() - (self.ttl if stale else 0.0))
            self._entries.move_to_end(key)
            while self.max_entries is not None and len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def claim_refresh(self, key: Key) -> bool:
        """True for the one caller that should refresh ``key`` now; False while a refresh is running."""
        with self._lock:
            if key in self._refreshing:
                return False
            self._refreshing.add(key)
            return True

    def release_refresh(self, key: Key) -> None:
        with self._lock:
            self._refreshing.discard(key)

    def clear(self) -> None:
        self._entries.clear()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "promptops"


class DiskCache:
    """The last prompt fetched for each key, one JSON file per (server, project, key), written atomically."""

    def __init__(self, directory: Path | None, url: str, project: str | None) -> None:
        self.directory = directory
        self._scope = f"{url}|{project or ''}"

    def _path(self, key: Key) -> Path:
        assert self.directory is not None
        # (name, label, version) only: per-unit answers are never written (one file per user would pile up)
        digest = hashlib.sha256(json.dumps([self._scope, *key[:3]]).encode()).hexdigest()[:32]
        return self.directory / f"prompt-{digest}.json"

    def save(self, key: Key, prompt: Prompt) -> None:
        if self.directory is None or key[3] is not None:
            return
        with contextlib.suppress(OSError):
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            data = json.dumps({"key": list(key[:3]), "prompt": prompt.to_dict()}).encode()
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self._path(key))
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def load(self, key: Key) -> Prompt | None:
        if self.directory is None:
            return None
        try:
            data = json.loads(self._path(key).read_bytes())
            return Prompt.from_dict(data["prompt"], source="disk")
        except (OSError, ValueError, KeyError, TypeError):
            return None
