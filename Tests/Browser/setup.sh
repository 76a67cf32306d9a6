#!/usr/bin/env bash
# The browser tests' Python side: Selenium and axe-core (axe-selenium-python) from PyPI, in a
# virtual environment beside the package (.venv-browser, ignored by git). Chromium and its driver
# come from Debian (deploy/install-debian-packages.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv-browser/bin/python ]; then
  python3 -m venv .venv-browser
fi
.venv-browser/bin/python -c 'import selenium, axe_selenium_python' 2>/dev/null || \
  .venv-browser/bin/pip install --quiet --disable-pip-version-check selenium axe-selenium-python
