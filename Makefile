# Inference Model Manager: the two commands a newcomer needs are `make dev` and `make test`.
# Both install what they need (Debian packages, the Python virtualenv, the devstack's Go
# binaries, cached outside the checkout) and show progress while they work.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS := $(wildcard requirements/*.txt)
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help system-deps venv devstack devstack-down devstack-clean devstack-status test test-postgres test-unit lint dev docker_build helm-check helm-e2e helm-e2e-kwok bench soak

IMAGE ?= imm
TAG ?= latest
# `make helm-e2e HELM_E2E_FLAGS=--no-inference` skips the endpoint's inference (see docs/deployment.md).
HELM_E2E_FLAGS ?=

help: ## List the targets
	@grep -E '^[a-z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

system-deps: ## Install the Debian packages the project needs (only missing ones)
	@scripts/install-system-deps.sh

$(STAMP): $(REQUIREMENTS)
	@echo "[venv] installing Python dependencies into $(VENV)" >&2
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -r requirements/dev.txt
	@touch $@

venv: $(STAMP) ## Create or update the virtualenv .venv

devstack: system-deps venv ## Start the local platform (idempotent); writes .devstack/env; IMM_DEVSTACK_REAL_NODE=1 adds a real node
	@$(PY) -m devstack up

devstack-down: ## Stop the local platform's processes
	@test -x $(PY) && $(PY) -m devstack down || true

devstack-clean: ## Stop the local platform and wipe its data
	@test -x $(PY) && $(PY) -m devstack clean || rm -rf .devstack

devstack-status: ## Show which parts of the local platform run
	@$(PY) -m devstack status

lint: system-deps venv ## ruff (lint + format check), mypy, shellcheck and the migration check
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@shellcheck $$(git ls-files '*.sh') .ci/run
	@DJANGO_DEBUG=true $(PY) manage.py makemigrations --check --dry-run >/dev/null || (echo "models changed without a migration: run manage.py makemigrations" >&2; exit 1)

test: devstack ## Every test (unit and integration against the devstack), on SQLite
	@$(PY) -m pytest $(PYTEST_ARGS)

# The database tests again on PostgreSQL, the production database: the unit tier (the ORM code of every
# app against a real database) and the integration tests marked `postgres`, where the database does
# real work (Operation rows and their locks, keyset pages, upload records, usage sums). The other
# integration tests use the database only for the audit record of each request, which these cover:
# repeating them would add ten minutes of namespace deletions to CI and prove nothing new.
test-postgres: devstack ## The database tests again (unit tier + `postgres` marker), on the devstack's PostgreSQL
	@set -a; . .devstack/env; set +a; DATABASE_URL="$$IMM_DEVSTACK_DATABASE_URL" $(PY) -m pytest -m "django_db and not real_node and (unit or postgres)" $(PYTEST_ARGS)

test-unit: venv ## Unit tests only (no services)
	@$(PY) -m pytest -m unit $(PYTEST_ARGS)

dev: devstack ## Run the platform, then the API and console (:8000), a worker and the controller
	@scripts/dev.sh

# With a Docker engine: `docker build` (proxy variables passed through). Without one (this project's
# CI machine: no engine, no registry), the same image from the devstack's local Debian base with
# umoci, as an OCI archive in the image cache (README: "The container image").
docker_build: ## Build the container image $(IMAGE):$(TAG): docker build, or the local umoci build without an engine
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
		docker build --build-arg HTTP_PROXY --build-arg HTTPS_PROXY --build-arg NO_PROXY -f Dockerfile -t $(IMAGE):$(TAG) . ; \
	else \
		echo "[docker_build] no Docker engine: building with umoci from the local Debian base" >&2; \
		{ test -x $(PY) || $(MAKE) --no-print-directory venv; } && $(PY) -m devstack.images product --name $(IMAGE) --tag $(TAG); \
	fi

helm-check: devstack ## Helm chart: lint, render, validate against the devstack cluster's schemas and the chart's rules
	@$(PY) -m devstack.chart check

# The real node is needed (IMM_DEVSTACK_REAL_NODE=1; `make devstack` with it set adds the node to a running devstack).
helm-e2e: devstack ## Helm chart with the product image on the real node: install, a flow up to an inference, upgrade, uninstall
	@$(PY) -m devstack.chart_node $(HELM_E2E_FLAGS)

helm-e2e-kwok: devstack ## Helm chart on kwok nodes (no image runs): install, verify RBAC and CRD, upgrade, uninstall
	@$(PY) -m devstack.chart_e2e

bench: devstack ## API load: 50 clients for 60 s of list/view/scale/upload, shipped gunicorn config; memory per process
	@set -a; . .devstack/env; set +a; $(PY) benchmarks/api_load.py --clients 50 --seconds 60

soak: devstack ## 10-minute memory soak (10 clients); fails on any error or a process growing > 16 MiB
	@set -a; . .devstack/env; set +a; $(PY) benchmarks/api_load.py --soak --clients 10 --seconds 600
