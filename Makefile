# cwshub: `make run` and `make test` work on a fresh machine; they install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
export CWSHUB_TEST_POSTGRES_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
# Nothing defaults to dev (a deployment must say prod): the dev targets say dev, for the gateway
# and every service of the registry (services/common/registry.py). `=`, not `:=`: expanded when
# a recipe runs, after `install` has made the virtualenv that reads the registry.
DEV_ENV = $(shell $(PY) -m services.common.registry dev-env)

.DEFAULT_GOAL := help
.PHONY: help install run test test-sqlite test-postgres lint format migrate seed bench contract clean

help:  ## show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cwshub needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	rm -f $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)  ## create .venv and install cwshub with its pinned dependencies

migrate: install  ## bring every service's database to the latest schema
	@$(DEV_ENV) $(PY) -m services.common.migrations all upgrade

seed: migrate  ## load the demo logins (dev only)
	$(DEV_ENV) $(PY) -m services.directory.seed

run: seed  ## migrate, seed and start the gateway (8000) and services; Ctrl-C stops them
	@$(DEV_ENV) $(PY) tools/run.py

# pytest exits 5 when it collects nothing: say so instead of failing obscurely.
PYTEST = $(PY) -m pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

test: install  ## the whole suite on SQLite, then on PostgreSQL
	$(MAKE) --no-print-directory test-sqlite test-postgres

test-sqlite: install  ## the suite on SQLite only
	CWSHUB_TEST_DB=sqlite $(PYTEST)

test-postgres: install  ## the suite on PostgreSQL only (CWSHUB_TEST_POSTGRES_URL)
	CWSHUB_TEST_DB=postgresql $(PYTEST)

lint: install  ## ruff format --check, ruff check, mypy
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy services gateway

format: install  ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

contract: install  ## schemathesis on the merged OpenAPI (throwaway stack), then the TypeScript client
	$(PY) tools/contract.py

bench: seed  ## gateway vs direct ratio; filing and listing requests, SQLite and PostgreSQL
	$(DEV_ENV) $(PY) -m tools.bench

clean:  ## remove .venv and .data (databases, keys, logs)
	rm -rf $(VENV) .data
