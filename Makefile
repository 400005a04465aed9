# callhome: `make run` for a first look, `make test` for every test.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean

# PyPI's libyang (YANG validation on the device) is built against the system's libyang 2.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): pyproject.toml
	@if command -v apt-get >/dev/null && ! dpkg -s libyang2-dev >/dev/null 2>&1; then \
	  echo "installing Debian's libyang2-dev, which the YANG bindings are built against"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    libyang2-dev gcc libc6-dev >/dev/null; \
	fi
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/callhome demo

test: setup
	$(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

bench: setup
	$(PY) bench/bench_callhome.py

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
