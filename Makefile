# PromptOps: `make run` starts the server, `make test` runs every check. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test lint layers typecheck bench install clean web web-test chromium sdk-ts sdk-ts-test vscode vscode-test test-idp

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	@# Bytecode compiled once here: this machine sets PYTHONDONTWRITEBYTECODE, so without it every process (each
	@# `promptops serve` a test starts) compiles its dependencies again (12.6 s to ready vs 6 s measured).
	@$(UV) sync --frozen --extra local --compile-bytecode --quiet
	@$(MAKE) --no-print-directory web
	@$(MAKE) --no-print-directory sdk-ts
	@$(MAKE) --no-print-directory vscode
	@$(MAKE) --no-print-directory test-idp

# The OpenID Connect provider the SSO tests start (tests/support/oidc_idp: panva/oidc-provider from npm).
test-idp:
	@command -v npm >/dev/null || { echo "node 20 + npm are needed for the SSO tests' OIDC provider (tests/support/oidc_idp)"; exit 1; }
	@if [ ! -f tests/support/oidc_idp/node_modules/.package-lock.json ] || [ tests/support/oidc_idp/package-lock.json -nt tests/support/oidc_idp/node_modules/.package-lock.json ]; then \
		cd tests/support/oidc_idp && npm ci --no-audit --no-fund --loglevel=error; fi

# The web UI (web/): npm ci when the lock changed, the API client generated from the server's OpenAPI
# document, then type-check + build into web/dist (served at / by `promptops serve`) within the JS budget.
web:
	@command -v npm >/dev/null || { echo "node 20 + npm are needed to build the web UI (web/)"; exit 1; }
	@if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then \
		cd web && npm ci --no-audit --no-fund --loglevel=error; fi
	@$(VENV)/bin/promptops openapi -o build/openapi.next.json
	@cmp -s build/openapi.next.json build/openapi.json && rm build/openapi.next.json || mv build/openapi.next.json build/openapi.json
	@if [ ! -f web/dist/index.html ] || [ -n "$$(find web/src web/index.html web/public web/package-lock.json web/vite.config.ts web/tsconfig.json web/scripts build/openapi.json -newer web/dist/index.html -not -name schema.d.ts | head -1)" ]; then \
		cd web && npm run --silent gen:api >/dev/null && npm run --silent build >/dev/null; fi

# The TypeScript SDK (sdk/typescript, @promptops/sdk): npm ci when the lock changed, its API types generated from
# the server's OpenAPI document (build/openapi.json, written by the web step), then tsc into sdk/typescript/dist.
sdk-ts:
	@command -v npm >/dev/null || { echo "node 20 + npm are needed to build the TypeScript SDK (sdk/typescript)"; exit 1; }
	@if [ ! -f sdk/typescript/node_modules/.package-lock.json ] || [ sdk/typescript/package-lock.json -nt sdk/typescript/node_modules/.package-lock.json ]; then \
		cd sdk/typescript && npm ci --no-audit --no-fund --loglevel=error; fi
	@[ -f build/openapi.json ] || $(VENV)/bin/promptops openapi -o build/openapi.json
	@if [ ! -f sdk/typescript/dist/index.js ] || [ -n "$$(find sdk/typescript/src sdk/typescript/package.json sdk/typescript/package-lock.json sdk/typescript/tsconfig.json sdk/typescript/tsconfig.build.json build/openapi.json -newer sdk/typescript/dist/index.js -not -name schema.d.ts | head -1)" ]; then \
		cd sdk/typescript && npm run --silent gen:api >/dev/null && npm run --silent build; fi

# Its tests start real `promptops serve` processes, a fake OpenAI server and chromium (all on loopback).
sdk-ts-test: install chromium
	cd sdk/typescript && npx tsc --noEmit -p tsconfig.json && npx vitest run

# The VS Code extension (integrations/vscode): npm ci when the lock changed, the esbuild bundle, then
# `vsce package` into integrations/vscode/promptops-<version>.vsix (offline; rebuilt when a source changed).
vscode:
	@command -v npm >/dev/null || { echo "node 20 + npm are needed to build the VS Code extension (integrations/vscode)"; exit 1; }
	@if [ ! -f integrations/vscode/node_modules/.package-lock.json ] || [ integrations/vscode/package-lock.json -nt integrations/vscode/node_modules/.package-lock.json ]; then \
		cd integrations/vscode && npm ci --no-audit --no-fund --loglevel=error; fi
	@VSIX=integrations/vscode/promptops-$$(node -p "require('./integrations/vscode/package.json').version").vsix; \
	if [ ! -f $$VSIX ] || [ -n "$$(find integrations/vscode/src integrations/vscode/snippets integrations/vscode/syntaxes integrations/vscode/scripts integrations/vscode/package.json integrations/vscode/package-lock.json integrations/vscode/README.md integrations/vscode/language-configuration.json -newer $$VSIX | head -1)" ]; then \
		cd integrations/vscode && npm run --silent build && npm run --silent package >/dev/null; fi

# Its tests start real `promptops serve` processes (loopback only) and package the .vsix.
vscode-test: install
	cd integrations/vscode && npx tsc --noEmit -p tsconfig.json && npx vitest run

# Debian's chromium drives the browser tests (browser downloads from the internet do not work here).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

web-test: install chromium
	cd web && npx vitest run
	cd web && node --test e2e/

run: install
	$(VENV)/bin/promptops serve

lint: install
	$(VENV)/bin/ruff check src tests bench sdk
	$(VENV)/bin/ruff format --check src tests bench sdk
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The layer contracts (pyproject.toml, [tool.importlinter]) with every import they follow; fails on a violation.
layers: install
	$(VENV)/bin/lint-imports --verbose

typecheck: install
	$(VENV)/bin/mypy

test: install lint chromium
	$(VENV)/bin/pytest -q
	cd web && npx vitest run
	cd web && node --test e2e/
	cd sdk/typescript && npx tsc --noEmit -p tsconfig.json && npx vitest run
	cd integrations/vscode && npx tsc --noEmit -p tsconfig.json && npx vitest run

bench: install
	$(VENV)/bin/python bench/resolve.py
	$(VENV)/bin/python bench/providers.py
	$(VENV)/bin/python bench/eval.py
	$(VENV)/bin/python bench/optimize.py
	$(VENV)/bin/python bench/unseen.py
	$(VENV)/bin/python bench/sdk.py
	$(VENV)/bin/python bench/gateway.py
	$(VENV)/bin/python bench/search.py
	$(VENV)/bin/python bench/experiments.py --pg --json bench/results/experiments.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build web/dist web/node_modules web/src/api/schema.d.ts \
		sdk/typescript/dist sdk/typescript/node_modules sdk/typescript/src/schema.d.ts \
		integrations/vscode/dist integrations/vscode/node_modules integrations/vscode/*.vsix tests/support/oidc_idp/node_modules
