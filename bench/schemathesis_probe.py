"""Probe the OpenAPI document against a live server with schemathesis and print the failures by check.

Starts ``promptops serve`` on a fresh SQLite database (or ``--database-url``, e.g. a fresh PostgreSQL database),
authenticates with the bootstrap admin key and runs every stateless check on every operation except the ones
that call a model. Prints the operations tested and the failures per check with their operations; exits 1 when
a contract check failed (server errors, undocumented statuses or content types, schema violations).
tests/contract/test_openapi_schemathesis.py runs the same probe and asserts the contract checks are clean.

    .venv/bin/python bench/schemathesis_probe.py [--max-examples 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

# Operations that call a model (their cost and latency do not belong in a contract probe), by method and path.
MODEL_CALLING = (
    ("POST", "/api/v1/playground/run"),
    ("POST", "/api/prompt/evaluate"),
    ("POST", "/api/prompt/generate"),
    ("POST", "/api/prompt/refine"),
    ("POST", "/api/v1/optimizations"),
    ("POST", "/api/v1/evals"),
)
# The failures the document promises there are none of: 5xx (ST101, ST102), a status (ST103) or content type
# (ST104, ST105) it does not declare, a body off its schema (ST108, ST109).
CONTRACT_CODES = frozenset({"ST101", "ST102", "ST103", "ST104", "ST105", "ST108", "ST109"})


def run_probe(
    base_url: str, authorization: str, report_dir: Path, max_examples: int = 10, seed: int = 1
) -> dict[str, Any]:
    """Run schemathesis against the server at ``base_url``; return its JSON report."""
    document = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    excluded = [document["paths"][path][method.lower()]["operationId"] for method, path in MODEL_CALLING]
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{base_url}/openapi.json",
        "--checks=all",
        "--phases=examples,coverage,fuzzing",
        f"--max-examples={max_examples}",
        f"--seed={seed}",
        "--generation-deterministic",
        "--continue-on-failure",
        "--no-shrink",
        "--suppress-health-check=filter_too_much",
        "--workers=2",
        "--request-timeout=30",
        "--no-color",
        f"--header=Authorization: {authorization}",
        *[f"--exclude-operation-id={operation_id}" for operation_id in excluded],
        "--report=json",
        f"--report-json-path={report_dir / 'report.json'}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    (report_dir / "output.txt").write_text(result.stdout + result.stderr)
    report: dict[str, Any] = json.loads((report_dir / "report.json").read_text())
    return report


def failures_by_code(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"ST103 Undocumented status code": {"code", "count", "operations"}}`` from a JSON report."""
    return {
        f"{f['code']} {f['title']}": {
            "code": f["code"],
            "count": f["count"],
            "operations": sorted(f["operations"]),
        }
        for f in report.get("failures", [])
    }


def contract_failures(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: f for name, f in failures_by_code(report).items() if f["code"] in CONTRACT_CODES}


def main() -> int:
    from server import HEADERS, serve

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-examples", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    report_dir = Path(tempfile.mkdtemp(prefix="promptops-schemathesis-report-"))
    with serve(args.database_url, prefix="promptops-schemathesis-") as (base_url, _tmp):
        report = run_probe(base_url, HEADERS["Authorization"], report_dir, args.max_examples, args.seed)
    print(f"operations tested: {report['operations']['tested']} of {report['operations']['total']}")
    for name, failure in sorted(failures_by_code(report).items()):
        print(f"{name}: {failure['count']}")
        for operation in failure["operations"]:
            print(f"    {operation}")
    for error in report.get("errors", []):
        print(f"error: {error['title']} x{error['count']}")
    print(f"full output: {report_dir / 'output.txt'}")
    return 1 if contract_failures(report) else 0


if __name__ == "__main__":
    raise SystemExit(main())
