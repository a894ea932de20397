#!/usr/bin/env bash
# Makes sure headless Chromium and its WebDriver are installed: tests/api/test_console_browser.py drives the
# console in Debian's chromium through /usr/bin/chromedriver (and fails, never skips, without them). Silent
# when both are there; installs Debian's `chromium` and `chromium-driver` as root otherwise.
set -euo pipefail

have_chromium() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]
}

if have_chromium; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "shouwang: please install Chromium and its driver, e.g. 'apt-get install chromium chromium-driver'" >&2
  exit 1
fi

echo "installing chromium and chromium-driver from Debian's packages" >&2
# shellcheck source=lib/apt-install.sh
source "$(dirname "$0")/lib/apt-install.sh"
apt_install_quietly chromium chromium-driver

if ! have_chromium; then
  echo "shouwang: installed chromium but found no /usr/bin/chromium or /usr/bin/chromedriver" >&2
  exit 1
fi
