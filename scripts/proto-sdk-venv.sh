#!/usr/bin/env bash
# Creates (or reuses) a Python virtualenv outside the git tree with upstream's
# published Python SDK, for scripts/proto-dump-sdk.py and scripts/proto-smoke-sdk.ts.
#
#   bash scripts/proto-sdk-venv.sh            # prints the venv's python path
#
# OPENSHELL_SDK_VENV overrides the location; OPENSHELL_SDK_VERSION the SDK version.
set -euo pipefail

venv="${OPENSHELL_SDK_VENV:-/var/cache/openshell-testbed/sdk-venv}"
version="${OPENSHELL_SDK_VERSION:-0.1.5}"
python="${PYTHON:-python3.11}"

if [[ ! -x "$venv/bin/python" ]]; then
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
if [[ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("openshell"))' 2>/dev/null)" != "$version" ]]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "openshell==$version"
fi
echo "$venv/bin/python"
