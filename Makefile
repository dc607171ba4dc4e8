# The commands the README names. Each creates .venv and installs the project first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench lint typecheck schemas clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

demo: $(BIN)/.installed
	$(BIN)/ossbss up

test: $(BIN)/.installed
	$(BIN)/lint-imports
	$(BIN)/ossbss topology check
	$(BIN)/mypy
	$(BIN)/pytest

# Throughput and latency against a same-run baseline; not part of `make test`.
bench: $(BIN)/.installed
	$(BIN)/ossbss bench alarms --count 20000
	$(BIN)/ossbss bench alarms --count 10000 --rate 1000
	$(BIN)/ossbss bench usage --count 200000

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(BIN)/.installed
	$(BIN)/mypy

schemas: $(BIN)/.installed
	$(BIN)/ossbss events schema --out schemas

clean:
	rm -rf $(VENV) .state .pytest_cache .mypy_cache .ruff_cache *.egg-info
