# Every target sets up what it needs first (idempotent): apt packages, venv, deps.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup test chaos demo bench lint golden clean

setup:
	@scripts/setup.sh

# Every test, the chaos run included (tests marked slow: about 2.5 min of the total;
# docs/cluster.md, "Chaos run"). `make chaos` runs only those.
test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

chaos: setup
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

demo: setup
	@scripts/demo.sh

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: setup
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m mypy -p omc

# Rewrite tests/golden/ and docs/compat.md from the current compiler output.
golden: setup
	OMC_UPDATE_GOLDEN=1 $(PY) -m pytest -q tests/compiler/test_golden.py tests/compiler/test_corpus.py

clean:
	rm -rf $(VENV) .dev .mypy_cache .ruff_cache .pytest_cache
