# Developer shortcuts; .ci/run uses the same commands.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install lint typecheck test bench faults ci

install:
	python3 -m venv $(VENV) && $(PY) -m pip install -q -U pip && $(VENV)/bin/pip install -q -e . --group dev

lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy

test:
	$(PY) -m pytest

bench:
	$(PY) -m bench.throughput

faults:
	$(PY) -m bench.faults --all

ci:
	bash .ci/run
