#!/usr/bin/env bash
# Debian packages Warroom's test suite needs: Chromium (browser tests), pango and
# fonts (WeasyPrint PDFs), poppler-utils (pdftotext/pdftoppm to check PDFs), and the real
# Prometheus and nginx that the rollout tests start.
# As root on Debian/Ubuntu it installs what is missing; elsewhere it prints the
# command and fails, so nobody runs a half-equipped suite by accident.
set -euo pipefail

PACKAGES=(chromium fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 poppler-utils prometheus nginx-light)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[system-deps] installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi

echo "[system-deps] missing system packages: ${missing[*]}" >&2
echo "[system-deps] install them with:  sudo apt-get install -y ${missing[*]}" >&2
exit 1
