# The two commands of the README: `make dev` (the whole stack locally) and `make test`.
# Each creates or updates its own virtualenv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHECKOV_VENV ?= .venv-checkov

.PHONY: dev test lint fmt bundle checkov bench smoke mutate chaos clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/python -m local.stack

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive infra; \
	else echo "terraform is not installed: skipping terraform fmt -check"; fi
	$(BIN)/python -m pytest -q -rs $(PYTEST_ARGS)

# After `terraform apply`: one real 3-row batch job through the deployed gateway. It spends
# money, so it runs only with YES=1; STACK=1 points it at `make dev` instead.
smoke: $(STAMP)
	$(BIN)/python -m local.smoke $(if $(YES),--yes) $(if $(STACK),--stack) $(SMOKE_ARGS)

# Mutation testing of the rules that guard money and access (tests/mutation/; minutes, not
# part of `make test`). MUTATE_ARGS: e.g. --keep, or mutmut function globs.
mutate: $(STAMP)
	$(BIN)/python -m tests.mutation.run $(MUTATE_ARGS)

# SIGKILL the functions at random moments on a local stack and print what held (tests/chaos/;
# minutes, not part of `make test`). CHAOS_ARGS: e.g. --rounds 10 --creates 20 --jobs 60.
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos.run $(CHAOS_ARGS)

bundle: $(STAMP)
	$(BIN)/python -m local.bundle

checkov:
	test -x $(CHECKOV_VENV)/bin/checkov || ($(PYTHON) -m venv $(CHECKOV_VENV) && $(CHECKOV_VENV)/bin/pip install -q checkov)
	$(CHECKOV_VENV)/bin/checkov -d infra --framework terraform --quiet --compact --skip-download

bench: $(STAMP)
	$(BIN)/python bench/bench_usage.py
	$(BIN)/python bench/bench_passthrough.py
	$(BIN)/python bench/bench_ranged_reads.py
	$(BIN)/python bench/bench_contention.py
	$(BIN)/python bench/bench_load.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .local build dist *.egg-info mutants
