"""Where the CLI keeps its credentials: a small JSON file, readable only by its owner.

The file holds ``{"url", "token", "project"}``. ``PROMPTOPS_URL`` and ``PROMPTOPS_API_KEY`` override it, so
CI jobs can run the CLI without logging in; ``PROMPTOPS_CONFIG`` moves the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from promptops.cli.client import CliError

CONFIG_ENV = "PROMPTOPS_CONFIG"
URL_ENV = "PROMPTOPS_URL"
KEY_ENV = "PROMPTOPS_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass
class CliConfig:
    """The stored connection: server URL, bearer token (API key or session token), optional project."""

    url: str | None = None
    token: str | None = None
    project: str | None = None

    @property
    def is_session(self) -> bool:
        """Whether the token is a login session (which the server can end) rather than an API key."""
        return bool(self.token) and not str(self.token).startswith("po_")


def config_path() -> Path:
    """The config file: ``$PROMPTOPS_CONFIG`` or ``~/.config/promptops/config.json``."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".config" / "promptops" / "config.json"


def load_stored() -> CliConfig:
    """What the config file holds (an empty config when there is no file)."""
    path = config_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return CliConfig()
    except (OSError, ValueError) as exc:
        raise CliError("Cannot read the config file", f"{path}: {exc}", "invalid_config")
    if not isinstance(raw, dict):
        raise CliError("Cannot read the config file", f"{path}: expected a JSON object", "invalid_config")
    return CliConfig(url=raw.get("url"), token=raw.get("token"), project=raw.get("project"))


def load_effective() -> CliConfig:
    """The stored config with the environment overrides applied."""
    config = load_stored()
    if os.environ.get(URL_ENV):
        config.url = os.environ[URL_ENV]
    if os.environ.get(KEY_ENV):
        config.token = os.environ[KEY_ENV]
    return config


def save(config: CliConfig) -> Path:
    """Write the config file with mode 0600 (it holds a secret), creating its folder."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({k: v for k, v in asdict(config).items() if v is not None}, indent=2) + "\n"
    # Open with 0600 from the start so the token is never readable by others, even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(data)
    # An existing file keeps its old mode through os.open; tighten it as well.
    path.chmod(0o600)
    return path


def clear() -> bool:
    """Forget the stored token (keeping URL and project for the next login); returns whether one was stored."""
    stored = load_stored()
    if stored.token is None:
        return False
    stored.token = None
    save(stored)
    return True
