#!/usr/bin/env bash
# Installs what the service itself needs when it is missing (make up and make test both run this):
# Python >= 3.11 with venv, Java >= 17 and Maven (for the embedded Apache Kafka broker). Also a C
# compiler and Python's headers, which only make the household detectors faster (mypyc): without root
# they are left out with a note, and the detectors run as plain Python. Uses Debian's packages as root.
# Test-only tools (PostgreSQL, Prometheus, Chromium) are make test's: scripts/ensure-test-tools.sh.
set -euo pipefail

required=()
python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || required+=(python3 python3-venv)
java_major=$(java -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -1 || true)
if [ -z "${java_major}" ] || [ "${java_major}" -lt 17 ]; then required+=(openjdk-17-jre-headless); fi
command -v mvn >/dev/null 2>&1 || required+=(maven)

optional=()
command -v gcc >/dev/null 2>&1 || optional+=(gcc)
python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  2>/dev/null || optional+=(python3-dev)

if [ ${#required[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  if [ ${#required[@]} -gt 0 ]; then
    echo "shouwang: please install: ${required[*]} (Python >= 3.11 with venv, Java >= 17, Maven)" >&2
    exit 1
  fi
  echo "shouwang: note: without ${optional[*]} the household detectors run as plain Python (slower, same findings)" >&2
  exit 0
fi
missing=("${required[@]}" "${optional[@]}")
echo "installing ${missing[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
