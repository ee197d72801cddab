# The two commands: `make up` runs the local stack, `make test` runs the whole suite.
VENV := .venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= 3

.PHONY: setup up down test lint typecheck unit bench

setup:
	@scripts/setup

up: setup
	$(BIN)/aami stack up

down:
	$(BIN)/aami stack down

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: setup
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=30

bench: setup
	$(BIN)/python bench/sd.py
	$(BIN)/python bench/rules.py
	$(BIN)/python bench/checks.py
	$(BIN)/python bench/checks_open.py
	$(BIN)/python bench/rule_sets.py
	$(BIN)/python bench/agent.py
