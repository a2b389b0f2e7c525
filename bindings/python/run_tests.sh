#!/usr/bin/env bash
# Builds and installs the Python package into a local venv, then runs its tests
# (npy-append-array is installed too: test_npy.py cross-checks files with it).
# Needs python3 (with venv and pip) and cargo. Honours CARGO_TARGET_DIR and
# NUMPACK_PY_VENV (default: bindings/python/.venv). Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
venv="${NUMPACK_PY_VENV:-$here/.venv}"
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    case "$CARGO_TARGET_DIR" in /*) ;; *) CARGO_TARGET_DIR="$root/$CARGO_TARGET_DIR" ;; esac
    export CARGO_TARGET_DIR
fi
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q pytest numpy cffi setuptools wheel npy-append-array
# Build (cargo) and install the package itself; no build isolation: the venv has the tools.
"$venv/bin/python" -m pip install -q --no-build-isolation --force-reinstall --no-deps ./bindings/python
# Run from a directory without the source package, so the installed one is tested.
cd "$here/tests"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
