# PromptOps: `make run` starts the server, `make test` runs every check. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test lint layers typecheck bench install clean

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	@$(UV) sync --frozen --extra local --quiet

run: install
	$(VENV)/bin/promptops serve

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The layer contracts (pyproject.toml, [tool.importlinter]) with every import they follow; fails on a violation.
layers: install
	$(VENV)/bin/lint-imports --verbose

typecheck: install
	$(VENV)/bin/mypy

test: install lint
	$(VENV)/bin/pytest -q

bench: install
	$(VENV)/bin/python bench/resolve.py
	$(VENV)/bin/python bench/providers.py
	$(VENV)/bin/python bench/eval.py
	$(VENV)/bin/python bench/optimize.py
	$(VENV)/bin/python bench/unseen.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
