# Two commands on a fresh machine: `make up` runs the service, `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JARS := broker/lib/.resolved

.PHONY: up test lint tools install broker-jars clean

up: install broker-jars
	$(VENV)/bin/shouwang up

test: install broker-jars
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .

tools:
	@scripts/ensure-tools.sh
	@scripts/ensure-postgres.sh
	@scripts/ensure-prometheus.sh
	@scripts/ensure-chromium.sh

install: tools $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

broker-jars: tools $(JARS)

$(JARS): broker/pom.xml
	rm -rf broker/lib
	mvn -q -B -f broker/pom.xml dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime
	touch $@

clean:
	rm -rf $(VENV) broker/lib var .pytest_cache .ruff_cache
