"""The OpenAPI document tells the truth: schemathesis against a live ``promptops serve`` finds no server error,
no undocumented status or content type and no response off its schema (bench/schemathesis_probe.py, which
also prints the other checks' figures). Runs on a fresh SQLite and a fresh PostgreSQL database."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from tests.support.app import ADMIN_KEY
from tests.support.server_process import ServerProcess

PROBE_PATH = Path(__file__).parents[2] / "bench" / "schemathesis_probe.py"


def _probe() -> ModuleType:
    spec = importlib.util.spec_from_file_location("schemathesis_probe", PROBE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_live_server_conforms_to_its_openapi_document(killable_server: ServerProcess, tmp_path: Path) -> None:
    probe = _probe()
    killable_server.start()
    report = probe.run_probe(killable_server.url, f"Bearer {ADMIN_KEY}", tmp_path, max_examples=10)
    assert report["operations"]["tested"] == report["operations"]["total"] - len(probe.MODEL_CALLING)
    failures = probe.contract_failures(report)
    assert failures == {}, (tmp_path / "output.txt").read_text()[-20000:]
