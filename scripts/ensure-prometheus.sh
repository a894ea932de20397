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
# shellcheck source=lib/apt-install.sh
source "$(dirname "$0")/lib/apt-install.sh"
apt_install_quietly prometheus

if ! have_prometheus; then
  echo "shouwang: installed prometheus but found no prometheus/promtool on PATH" >&2
  exit 1
fi
