# One task runner: `make run`, `make test`, `make bench`, `make lint`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock | cut -c1-12)
CASE ?=

.PHONY: run test test-unit test-e2e lint bench system-deps services stop-services clean

# Installation talks on stderr, so `make bench` keeps stdout for its JSON lines.
$(STAMP): requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) >&2
	@echo "[make] installing pinned dependencies into $(VENV)" >&2
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip >&2
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock >&2
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

## Start Warroom (embedded PostgreSQL + Redis unless DATABASE_URL / REDIS_URL are set).
run: $(STAMP)
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} WARROOM_HTTPS=$${WARROOM_HTTPS:-0} WARROOM_DEMO=$${WARROOM_DEMO:-1} \
	WARROOM_EMAIL_BACKEND=$${WARROOM_EMAIL_BACKEND:-django.core.mail.backends.console.EmailBackend} \
	$(PY) -m warroom.launcher

system-deps:
	@bash scripts/system-deps.sh

## Lint (ruff, the import layers), migration check, then the suite: unit/integration first, browser tests in their own process.
test: $(STAMP) system-deps lint test-unit test-e2e

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports  # the layers contract in .importlinter
	DJANGO_DEBUG=0 WARROOM_HTTPS=0 $(PY) manage.py makemigrations --check --dry-run

test-unit: $(STAMP)
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

test-e2e: $(STAMP) system-deps
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

## Benchmarks: JSON lines on stdout. `make bench CASE=live_fanout` runs one case.
bench: $(STAMP)
	@$(PY) -m bench $(CASE)

services: $(STAMP)
	$(PY) -m warroom.embedded start

stop-services: $(STAMP)
	$(PY) -m warroom.embedded stop

clean: stop-services
	rm -rf .run
