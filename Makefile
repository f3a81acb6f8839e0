# doctriage: the everyday commands. `make` alone lists them.
# Each target sets up what it needs first (scripts/bootstrap: a no-op when already up to date).

BIN := .venv/bin
# Plain pytest: -n 2 measured no faster on 2 cores (the slow tests are a few long waits in one
# module) and xdist can fail on collection-order differences. Override: make test PYTEST_ARGS=…
PYTEST_ARGS ?= -q

.DEFAULT_GOAL := help
.PHONY: help bootstrap demo test unit lint format check-template build bench load ci clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

bootstrap: ## create or update .venv (the project + dev tools from pyproject.toml)
	@scripts/bootstrap

demo: bootstrap ## run a document through the whole pipeline locally (no AWS account)
	$(BIN)/doctriage demo

test: bootstrap ## run the test suite
	@-scripts/install-browser || echo "make test: no Chromium; the review page's browser test will be skipped"
	$(BIN)/pytest $(PYTEST_ARGS)

unit: bootstrap ## the sub-minute loop: unit tests and the static template/ASL checks (no stack)
	$(BIN)/pytest $(PYTEST_ARGS) tests/unit tests/statemachine

# All three run even when one fails, so one run shows every finding.
lint: bootstrap ## ruff (lint + format check) and mypy; fails on any finding
	@status=0; \
	echo "ruff check ."; $(BIN)/ruff check . || status=1; \
	echo "ruff format --check ."; $(BIN)/ruff format --check . || status=1; \
	echo "mypy"; $(BIN)/mypy || status=1; \
	exit $$status

format: bootstrap ## apply ruff's safe fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check-template: bootstrap ## cfn-lint, sam validate --lint, asl-validator, sam build + artifact checks
	@scripts/bootstrap --sam
	scripts/check-template

build: bootstrap ## sam build into .aws-sam/build (arm64, no container) and check the artifacts
	@scripts/bootstrap --sam
	scripts/check-template --build

bench: build ## run the benchmarks (lambda_bench measures the fresh sam build; docs/benchmarks.md)
	$(BIN)/python -m benchmarks.poll_bench
	$(BIN)/python -m benchmarks.lambda_bench

load: bootstrap ## 500 documents through the local stack against a Datalab limited to 400/min
	$(BIN)/python -m benchmarks.load_bench --documents 500 --rate-limit 400 --max-concurrent 400

ci: ## everything CI runs (.ci/run): lint, template checks, tests
	.ci/run

clean: ## remove build output and caches (keeps .venv and .venv-sam)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis build test-artifacts
	find . -path ./.venv -prune -o -path ./.venv-sam -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -path ./.venv -prune -o -path ./.venv-sam -prune -o -name '*.egg-info' -type d -prune -exec rm -rf {} +

distclean: clean ## also remove the venvs (.venv, .venv-sam): the next target rebuilds them
	rm -rf .venv .venv-sam
