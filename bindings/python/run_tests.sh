#!/usr/bin/env bash
# Builds and installs the Python package into a local venv (install.sh), then runs its
# tests. Needs python3 (with venv and pip) and cargo. Honours CARGO_TARGET_DIR and
# NUMPACK_PY_VENV (default: bindings/python/.venv). Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$(bash "$here/install.sh")"
# Run from a directory without the source package, so the installed one is tested.
cd "$here/tests"
exec "$py" -m pytest -q -p no:cacheprovider "$@"
