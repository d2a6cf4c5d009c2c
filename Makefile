# Laundry platform services: SMS (127.0.0.1:8001) and payment (127.0.0.1:8002).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV := $(BIN)/uv
# The uv that uv.lock pins (it is in the dev extra), so the installer is as locked as what it installs.
UV_VERSION = $(shell sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' uv.lock)

.DEFAULT_GOAL := help
.PHONY: help install lock run test lint fmt openapi bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Bootstraps .venv with the locked uv (through ensurepip's pip); uv installs the rest. ensurepip's setuptools
# goes: it is not in the lock, and uv sync leaves a venv's seed packages alone.
$(UV): uv.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'
	if $(BIN)/pip show --quiet setuptools 2>/dev/null; then $(BIN)/pip uninstall --quiet --yes setuptools; fi
	@touch $@

# Exactly uv.lock, hashes checked, the project editable; fails if uv.lock is stale against pyproject.toml.
# The dependencies' bytecode is compiled here, once, as in the images: where PYTHONDONTWRITEBYTECODE is set
# (many CI runners and containers) every process would otherwise compile them again as it starts, about
# half of what starting a service, a worker or a CLI command costs.
$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --all-extras --no-python-downloads --compile-bytecode
	@touch $@

install: $(STAMP) ## Create .venv and install exactly uv.lock: both services with the dev tools

lock: $(UV) ## Re-resolve uv.lock after editing pyproject.toml (LOCK_ARGS=--upgrade: newest in range)
	$(UV) lock $(LOCK_ARGS)

run: $(STAMP) ## Migrate and start both APIs, their workers and beat (embedded defaults; Ctrl-C stops all)
	@bash deploy/run-local.sh

test: $(STAMP) ## Run the test suite (PostgreSQL/RabbitMQ/Redis on 127.0.0.1 when they answer)
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff lint + format check + import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

fmt: $(STAMP) ## Format and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

openapi: $(STAMP) ## Export both OpenAPI documents to openapi/ (the tests fail when they drift)
	SMS_ENV=testing $(BIN)/flask --app sms_service openapi write openapi/sms.json
	PAYMENT_ENV=testing $(BIN)/flask --app payment_service openapi write openapi/payment.json

bench: $(STAMP) ## Run the benchmarks against PostgreSQL and a real broker; writes bench/results.md
	$(BIN)/python -m bench

clean: ## Remove the virtualenv and local data under var/
	rm -rf $(VENV) var
