#!/usr/bin/env bash
# What only the tests need (make test runs this; make up never does): a PostgreSQL server for the
# store tests, Prometheus's tools for the rule and scrape tests, headless Chromium for the console test,
# systemd-analyze and amtool for the deployment files' tests.
set -euo pipefail
here="$(dirname "$0")"
"${here}/ensure-postgres.sh"
"${here}/ensure-prometheus.sh"
"${here}/ensure-chromium.sh"
"${here}/ensure-deploy-tools.sh"

# A Chinese font for headless Chromium: without one the console's and the report's screenshots (docs/*.png) and
# the report's PDF show boxes for every Chinese character. Debian's WenQuanYi Micro Hei is small (1.6 MB); a
# machine that already has a CJK font (fc-list :lang=zh) is left alone, and one we cannot install on only warns.
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing a Chinese font for headless Chromium (fonts-wqy-microhei)" >&2
    # shellcheck source=lib/apt-install.sh
    source "${here}/lib/apt-install.sh"
    apt_install_quietly fontconfig fonts-wqy-microhei
  else
    echo "shouwang: no Chinese font found: screenshots and PDFs will show boxes (apt-get install fonts-wqy-microhei)" >&2
  fi
fi
