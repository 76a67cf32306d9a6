#!/usr/bin/env bash
# The API contract test's Python side: schemathesis from PyPI, in a virtual environment beside the
# package (.venv-api, ignored by git). `APISchemaLiveTests` (HUB_API_SCHEMA_TESTS=1) runs it
# against the demo hub with docs/openapi.yaml.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv-api/bin/python ]; then
  python3 -m venv .venv-api
fi
.venv-api/bin/schemathesis --version >/dev/null 2>&1 || \
  .venv-api/bin/pip install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
