#!/usr/bin/env bash
# Makes sure Prometheus and promtool are installed: tests/ops validates the alert rules, the scrape config
# and the metrics endpoints with promtool and runs a throwaway Prometheus server of its own on a free port,
# so the service that Debian's package sets up is never used. Installs Debian's `prometheus` as root.
set -euo pipefail

have_prometheus() {
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1
}

if have_prometheus; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "shouwang: please install Prometheus and promtool, e.g. 'apt-get install prometheus'" >&2
  exit 1
fi

echo "installing prometheus from Debian's packages" >&2
# Keep the package's maintainer scripts from starting its own service: we never use it, and on a machine
# whose port 9090 is taken a failed start would fail the install. A policy-rc.d that is already there
# (as in Docker images) is left alone.
policy=/usr/sbin/policy-rc.d
if [ ! -e "${policy}" ]; then
  trap 'rm -f "${policy}"' EXIT
  printf '#!/bin/sh\nexit 101\n' >"${policy}"
  chmod 755 "${policy}"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null

if ! have_prometheus; then
  echo "shouwang: installed prometheus but found no prometheus/promtool on PATH" >&2
  exit 1
fi
