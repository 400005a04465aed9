# callhome: `make run` for a first look, `make test` for every test.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean

# The Debian packages (one list, shared with .ci/run): what the build needs, and for the tests
# the real peers they talk to. Installs only what is missing (sudo when not root).
DEBIAN := .ci/debian-packages.sh

$(STAMP): pyproject.toml
	$(DEBIAN) build
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/callhome demo

test: setup
	$(DEBIAN) test
	$(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

bench: setup
	$(PY) bench/bench_callhome.py

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
