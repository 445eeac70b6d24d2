"""The client side of a promptfoo import: read a config and every file it names from disk into a bundle.

The CLI (``promptops eval run -c``) has the files, the server does not: :func:`collect` reads the config,
runs the same translation the server will run over the disk (:class:`DiskFiles`, which remembers each file
it reads), and returns the config text with those files (``relative path -> text``), the body of
``POST /api/v1/evals/import/promptfoo``. A file that is missing, too big, not UTF-8 or malformed is
reported here, naming the file, before anything is sent.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

from promptops.datasets.promptfoo_tests import MAX_FILE_BYTES, PromptfooConfigError, is_glob
from promptops.evals.promptfoo.parse import MAX_CONFIG_BYTES, ImportPlan, parse_config, translate


def read_text(path: Path, limit: int, what: str) -> str:
    """A UTF-8 text file, with errors that name it and say what is wrong."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise PromptfooConfigError(f"{path}: the {what} is {size} bytes; at most {limit} are read")
        data = path.read_bytes()
    except FileNotFoundError:
        raise PromptfooConfigError(f"{path}: no such {what}")
    except IsADirectoryError:
        raise PromptfooConfigError(f"{path}: is a directory, not a {what}")
    except OSError as exc:
        raise PromptfooConfigError(f"{path}: cannot read the {what}: {exc.strerror or exc}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PromptfooConfigError(f"{path}: the {what} is not UTF-8 text (byte {exc.start})")


class DiskFiles:
    """The files below a config's folder on disk; :attr:`read_files` keeps what was read, by relative path."""

    def __init__(self, base: Path) -> None:
        self.base = base.resolve()
        self.read_files: dict[str, str] = {}

    def read(self, path: str, what: str) -> str:
        if path in self.read_files:
            return self.read_files[path]
        file = self.base / path
        if file.exists() and not file.resolve().is_relative_to(self.base):
            raise PromptfooConfigError(f"{file}: a link to a file outside the config's folder ({self.base})")
        text = read_text(file, MAX_FILE_BYTES, what)
        self.read_files[path] = text
        return text

    def glob(self, pattern: str) -> list[str]:
        if not is_glob(pattern):
            return [pattern] if (self.base / pattern).is_file() else []
        found = glob.glob(f"{glob.escape(str(self.base))}/{pattern}", recursive=True)
        return sorted(Path(p).relative_to(self.base).as_posix() for p in found if Path(p).is_file())


@dataclass
class Bundle:
    """A config and its files, as sent to the server; ``plan`` is the local translation (for its findings)."""

    config: str
    config_name: str
    files: dict[str, str] = field(default_factory=dict)
    plan: ImportPlan | None = None


def collect(
    config_path: Path,
    *,
    prefix: str,
    provider_map: dict[str, str] | None = None,
    grader: str | None = None,
) -> Bundle:
    """Read ``config_path`` and the files it names (relative to its folder)."""
    text = read_text(config_path, MAX_CONFIG_BYTES, "config file")
    try:
        config = parse_config(text, config_path.name)
    except PromptfooConfigError as exc:  # name the file as the user gave it
        raise PromptfooConfigError(exc.detail.replace(config_path.name, str(config_path), 1))
    files = DiskFiles(config_path.parent)
    plan = translate(config, files=files, prefix=prefix, provider_map=provider_map, grader=grader)
    return Bundle(text, config_path.name, files.read_files, plan)
