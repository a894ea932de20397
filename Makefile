# Two commands on a fresh machine: `make up` runs the service, `make test` runs every test.
# For contributors: `make check` is the fast inner loop (lint, format, types, tests needing no server).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JARS := broker/lib/.resolved
COMPILED := detectors/_compiled/stamp.json

.PHONY: up test check lint types tools test-tools install broker-jars clean

up: install broker-jars
	$(VENV)/bin/shouwang up

test: install test-tools broker-jars
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	# Two processes, a test file each at a time (its module fixtures and servers stay in one process): most
	# tests wait on a broker, a database or a subprocess, so two cores take 11 minutes instead of 17.
	$(VENV)/bin/pytest -n 2 --dist loadfile
	# the detectors once more as plain Python: what runs where they could not be compiled
	SHOUWANG_DETECTORS_PURE=1 $(VENV)/bin/pytest -q -p no:cacheprovider tests/detectors

# Lint, format check, type check and the tests that need no broker, database server, Prometheus or
# Chromium. Installs nothing beyond the virtualenv (and the compiled detectors when their sources changed).
check: $(STAMP) $(COMPILED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q --no-servers

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(STAMP)
	$(VENV)/bin/mypy

# What the service needs: Python, Java and Maven (and a C compiler when it can be had).
tools:
	@scripts/ensure-tools.sh

# What only the tests need: PostgreSQL, Prometheus's tools, Chromium and its driver.
test-tools:
	@scripts/ensure-test-tools.sh

install: tools $(STAMP) $(COMPILED)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The household detectors compiled with mypyc (scripts/compile_detectors.py); plain Python if that fails.
$(COMPILED): $(STAMP) $(wildcard detectors/*.py) scripts/compile_detectors.py
	$(PY) scripts/compile_detectors.py

broker-jars: tools $(JARS)

$(JARS): broker/pom.xml
	rm -rf broker/lib
	mvn -q -B -f broker/pom.xml dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime
	touch $@

clean:
	rm -rf $(VENV) broker/lib var .pytest_cache .ruff_cache .mypy_cache detectors/_compiled
