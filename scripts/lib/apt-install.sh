# Sourced by the ensure-*.sh scripts: install Debian packages as root without starting their
# services. Their maintainer scripts would otherwise start a system PostgreSQL or Prometheus we
# never use, and a failed start (say, a port already taken) would fail the whole install. A
# policy-rc.d that is already there (as in Docker images) is left alone.
apt_install_quietly() {
  local policy=/usr/sbin/policy-rc.d
  if [ ! -e "${policy}" ]; then
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\nexit 101\n' >"${policy}"
    chmod 755 "${policy}"
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
