#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, pg_ctl, postgres) are installed: the test session
# starts a throwaway cluster of its own with them (tests/pg.py) on a free port, so the cluster and
# service that Debian's package creates are never used. Installs Debian's `postgresql` as root.
set -euo pipefail

have_server() {
  local bin
  for bin in /usr/lib/postgresql/*/bin "$(pg_config --bindir 2>/dev/null || true)"; do
    if [ -n "${bin}" ] && [ -x "${bin}/initdb" ] && [ -x "${bin}/pg_ctl" ] && [ -x "${bin}/postgres" ]; then
      return 0
    fi
  done
  return 1
}

if have_server; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "shouwang: please install the PostgreSQL server (initdb, pg_ctl, postgres), e.g. 'apt-get install postgresql'" >&2
  exit 1
fi

echo "installing postgresql from Debian's packages" >&2
# shellcheck source=lib/apt-install.sh
source "$(dirname "$0")/lib/apt-install.sh"
apt_install_quietly postgresql

if ! have_server; then
  echo "shouwang: installed postgresql but found no initdb/pg_ctl/postgres under /usr/lib/postgresql/*/bin" >&2
  exit 1
fi
