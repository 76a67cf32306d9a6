#!/usr/bin/env bash
# Installs the Debian packages the hub needs to build, run and be tested (Debian 12).
# Swift itself (6.x) is expected at /opt/swift or on PATH.
set -euo pipefail
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
packages=(
  libmosquitto-dev mosquitto mosquitto-clients   # the MQTT library the hub links, the broker, test clients
  libsqlite3-dev sqlite3                         # SQLite through GRDB
  postgresql-15                                  # the server database (database.url), and its tests
  tzdata                                         # Europe/Paris days and months
  openssl                                        # TLS certificates in the MQTT TLS test
  hledger                                        # replays the car-share ledger in tests
  chromium fonts-dejavu-core                     # prints pages to PDF (the car's logbook), headless
  chromium-driver python3-venv                   # the pages' browser tests (Selenium from PyPI, Tests/Browser/setup.sh)
  poppler-utils                                  # reads printed PDFs back in tests (pdftotext, pdftoppm)
  libreoffice-calc-nogui unzip                   # opens the statements' CSV as a spreadsheet in tests
  nginx-light curl systemd                       # TLS in front of the pages (deploy/nginx), its test; systemd-analyze
  ca-certificates procps
)
missing=()
for package in "${packages[@]}"; do
  case "$package" in \#*) continue ;; esac
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi
# Debian's postgresql-15 starts a cluster on port 5432 where systemd runs; the tests start their own
# server on a free port (Tests/Postgres/start-server.sh). The Debian package starts a broker on port 1883; the hub's tests and demo start their own on free ports.
if command -v swift >/dev/null 2>&1; then :; elif [ -x /opt/swift/usr/bin/swift ]; then
  echo "note: add /opt/swift/usr/bin to PATH" >&2
fi
