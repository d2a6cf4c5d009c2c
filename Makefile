# Laundry platform services: SMS (127.0.0.1:8001) and payment (127.0.0.1:8002).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test lint fmt openapi bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[sms,payment,dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install both services with the dev tools

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
