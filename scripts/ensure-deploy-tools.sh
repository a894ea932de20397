#!/usr/bin/env bash
# Makes sure the tools that check the deployment files are installed: systemd-analyze (tests/ops/test_systemd.py
# verifies deploy/systemd/ with it, offline, against a throwaway root folder: no running systemd is needed) and
# amtool (tests/ops/test_compose.py checks and routes deploy/alertmanager/alertmanager.yml). Installs Debian's
# `systemd` and `prometheus-alertmanager` as root, without starting any of their services.
set -euo pipefail

missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
if [ "${#missing[@]}" -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "shouwang: please install ${missing[*]} (systemd-analyze, amtool), e.g. 'apt-get install ${missing[*]}'" >&2
  exit 1
fi

echo "installing ${missing[*]} from Debian's packages" >&2
# shellcheck source=lib/apt-install.sh
source "$(dirname "$0")/lib/apt-install.sh"
apt_install_quietly "${missing[@]}"

for tool in systemd-analyze amtool; do
  if ! command -v "${tool}" >/dev/null 2>&1; then
    echo "shouwang: installed ${missing[*]} but found no ${tool} on PATH" >&2
    exit 1
  fi
done
