#!/usr/bin/env bash
# Installs the system tools Shouwang needs when they are missing: Python >= 3.11 with venv,
# Java >= 17 and Maven (for the embedded Apache Kafka broker), gcc and Python's headers (to compile the
# detectors). Uses Debian's packages as root.
set -euo pipefail

missing=()
python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || missing+=(python3 python3-venv)
java_major=$(java -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -1 || true)
if [ -z "${java_major}" ] || [ "${java_major}" -lt 17 ]; then missing+=(openjdk-17-jre-headless); fi
command -v mvn >/dev/null 2>&1 || missing+=(maven)
# A C compiler and Python's headers: mypyc compiles the household detectors (scripts/compile_detectors.py).
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  2>/dev/null || missing+=(python3-dev)

if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "shouwang: please install: ${missing[*]} (Python >= 3.11 with its headers, Java >= 17, Maven, a C compiler)" >&2
  exit 1
fi
echo "installing ${missing[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
