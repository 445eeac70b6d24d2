"""promptfoo compatibility: run promptfoo's own example configs through ``promptops eval run -c`` unchanged.

    .venv/bin/python bench/promptfoo-compat/run.py [NAME ...] [--json]

Starts a local fake model server speaking the OpenAI and Anthropic wire formats
(``tests/support/fake_llm_server.py``) and a ``promptops serve`` (``bench/server.py``), both on 127.0.0.1
(no traffic leaves the machine), adds the connections ``fake-openai`` and ``fake-anthropic`` to them, and runs
each config under ``configs/`` as a migrating user would: provider ids unchanged, mapped with
``--provider-map openai=fake-openai --provider-map anthropic=fake-anthropic``, and ``--grader
openai:gpt-4.1-mini`` (promptfoo's own ``--grader`` flag; promptfoo grades with an OpenAI model by default).
Per config it prints ``ran`` (imported and evaluated, nothing skipped), ``ran-with-warnings`` (evaluated;
the features it skipped or warned about are listed), ``rejected`` (the import refused the config, with the
reason) or ``failed`` (imported, but the evaluation did not complete), then the totals.

The configs are copies of promptfoo's examples (MIT, see LICENSE and SOURCES.md); only data files were copied.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONFIGS = HERE / "configs"
PROVIDER_MAP = ("openai=fake-openai", "anthropic=fake-anthropic")
GRADER = "openai:gpt-4.1-mini"
RAN_STATES = ("ran", "ran-with-warnings")


@dataclass
class Outcome:
    name: str
    result: str  # ran | ran-with-warnings | rejected | failed
    cells: int = 0
    errors: int = 0
    skipped: list[str] = field(default_factory=list)
    reason: str = ""


def add_connections(url: str, key: str, fake_url: str, fake_key: str) -> None:
    """The connections the provider map names: OpenAI and Anthropic wire formats, both to the local fake."""
    headers = {"Authorization": f"Bearer {key}"}
    for name, kind, base in (
        ("fake-openai", "openai", fake_url + "/v1"),
        ("fake-anthropic", "anthropic", fake_url),
    ):
        r = httpx.post(
            f"{url}/api/v1/providers",
            headers=headers,
            json={"name": name, "type": kind, "baseUrl": base, "apiKey": fake_key, "maxRetries": 0},
        )
        if r.status_code not in (201, 409):
            raise SystemExit(f"cannot create the connection {name}: {r.status_code} {r.text}")


def _warnings(stderr: str) -> list[str]:
    return [line.removeprefix("Warning: ") for line in stderr.splitlines() if line.startswith("Warning: ")]


def run_config(url: str, key: str, folder: Path, home: Path) -> Outcome:
    """``promptops eval run -c folder/promptfooconfig.yaml`` (in-process Typer app, real HTTP to ``url``)."""
    from typer.testing import CliRunner

    from promptops.cli.main import app

    args = ["eval", "run", "-c", str(folder / "promptfooconfig.yaml"), "--grader", GRADER, "--json"]
    for mapping in PROVIDER_MAP:
        args += ["--provider-map", mapping]
    env = {
        "PROMPTOPS_CONFIG": str(home / "promptops.json"),
        "PROMPTOPS_URL": url,
        "PROMPTOPS_API_KEY": key,
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(app, args, env=env)
    warned = _warnings(result.stderr)
    if result.exit_code != 0 and not result.stdout.strip():
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        reason = errors[-1].removeprefix("Error: ") if errors else repr(result.exception)
        return Outcome(folder.name, "rejected", skipped=warned, reason=reason)
    run = json.loads(result.stdout)
    outcome = Outcome(
        folder.name,
        "ran-with-warnings" if warned else "ran",
        cells=run["totalCells"],
        errors=run["errorCells"],
        skipped=warned,
    )
    if run["status"] != "completed":
        outcome.result, outcome.reason = "failed", f"evaluation {run['status']}: {run.get('error') or ''}"
    return outcome


def run_all(url: str, key: str, names: Iterable[str] | None = None) -> list[Outcome]:
    folders = sorted(p for p in CONFIGS.iterdir() if (p / "promptfooconfig.yaml").is_file())
    if names:
        wanted = set(names)
        folders = [f for f in folders if f.name in wanted]
    with tempfile.TemporaryDirectory(prefix="promptfoo-compat-") as home:
        return [run_config(url, key, folder, Path(home)) for folder in folders]


def _feature(line: str) -> str:
    """A finding shortened to where it was and the gist."""
    line = re.sub(r"^unsupported, skipped: ", "", line)
    return line if len(line) <= 110 else line[:109] + "…"


def report(outcomes: Sequence[Outcome]) -> str:
    lines = []
    for o in outcomes:
        extra = f" ({o.cells} cells, {o.errors} errors)" if o.result in (*RAN_STATES, "failed") else ""
        lines.append(f"{o.name:<30} {o.result}{extra}")
        if o.reason:
            lines.append(f"    reason: {o.reason}")
        lines.extend(f"    - {_feature(line)}" for line in o.skipped)
    counts = {
        state: sum(o.result == state for o in outcomes) for state in (*RAN_STATES, "rejected", "failed")
    }
    ran = counts["ran"] + counts["ran-with-warnings"]
    lines.append("")
    lines.append(
        f"total {len(outcomes)}: {ran} ran ({counts['ran']} clean, {counts['ran-with-warnings']} with warnings), "
        f"{counts['rejected']} rejected, {counts['failed']} failed"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    as_json = "--json" in argv
    names = [a for a in argv if not a.startswith("--")]
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    from fake_llm_server import DEFAULT_KEY, FakeLLMServer
    from server import HEADERS, serve

    key = HEADERS["Authorization"].removeprefix("Bearer ")
    os.environ["PROMPTOPS_PROVIDER_ALLOWED_HOSTS"] = "127.0.0.1"  # the fake model server is on loopback
    with FakeLLMServer() as fake, serve(prefix="promptops-compat-") as (url, _):
        add_connections(url, key, fake.url, DEFAULT_KEY)
        outcomes = run_all(url, key, names)
    print(json.dumps([asdict(o) for o in outcomes], indent=2) if as_json else report(outcomes))
    ran = sum(o.result in RAN_STATES for o in outcomes)
    return 0 if outcomes and ran >= 0.85 * len(outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
