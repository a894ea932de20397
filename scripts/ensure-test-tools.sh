#!/usr/bin/env bash
# What only the tests need (make test runs this; make up never does): a PostgreSQL server for the
# store tests, Prometheus's tools for the rule and scrape tests, headless Chromium for the console test.
set -euo pipefail
here="$(dirname "$0")"
"${here}/ensure-postgres.sh"
"${here}/ensure-prometheus.sh"
"${here}/ensure-chromium.sh"
