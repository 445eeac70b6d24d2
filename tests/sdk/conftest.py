"""Fixtures of the SDK tests: a real ``promptops serve`` subprocess on the test's database (SQLite and
PostgreSQL) and SDK clients pointed at it, with their disk cache under the test's tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from promptops_sdk import PromptOps

from tests.sdk.support import client
from tests.support.server_process import ServerProcess


@pytest.fixture
def served(killable_server: ServerProcess) -> ServerProcess:
    """``promptops serve`` running (tests may kill it and start it again on the same port)."""
    killable_server.start()
    return killable_server


@pytest.fixture
def po(served: ServerProcess, tmp_path: Path) -> Iterator[PromptOps]:
    with client(served, tmp_path) as sdk:
        yield sdk
