# Two commands on a fresh machine: `make up` runs the service, `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JARS := broker/lib/.resolved
COMPILED := detectors/_compiled/stamp.json

.PHONY: up test lint tools install broker-jars clean

up: install broker-jars
	$(VENV)/bin/shouwang up

test: install broker-jars
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest
	# the detectors once more as plain Python: what runs where they could not be compiled
	SHOUWANG_DETECTORS_PURE=1 $(VENV)/bin/pytest -q -p no:cacheprovider tests/detectors

lint: install
	$(VENV)/bin/ruff check .

tools:
	@scripts/ensure-tools.sh
	@scripts/ensure-postgres.sh
	@scripts/ensure-prometheus.sh
	@scripts/ensure-chromium.sh

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
	rm -rf $(VENV) broker/lib var .pytest_cache .ruff_cache detectors/_compiled
