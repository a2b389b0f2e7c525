#!/usr/bin/env bash
# Creates the package's local venv if needed (default bindings/python/.venv, or
# NUMPACK_PY_VENV), installs the test and demo dependencies, builds the library with cargo
# and installs the package into it. Prints the venv's python on standard output; all
# else goes to standard error. Used by run_tests.sh and by `make demo`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
venv="${NUMPACK_PY_VENV:-$here/.venv}"
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    case "$CARGO_TARGET_DIR" in /*) ;; *) CARGO_TARGET_DIR="$root/$CARGO_TARGET_DIR" ;; esac
    export CARGO_TARGET_DIR
fi
{
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    # npy-append-array: test_npy.py cross-checks files with it. pyarrow, pandas, h5py,
    # zarr: the numpack.io converters are tested against the real libraries; s3fs with
    # moto[server] (a local S3 endpoint on 127.0.0.1) for from_s3/to_s3; safetensors: the
    # reference package, to cross-check .safetensors files both ways.
    "$venv/bin/python" -m pip install -q pytest numpy cffi setuptools wheel npy-append-array \
        pyarrow pandas h5py zarr s3fs 'moto[server]' safetensors
    # Build (cargo) and install the package itself; no build isolation: the venv has the tools.
    # setuptools' build/ keeps files a rename or removal left behind and would install
    # them again, so a module that no longer exists could still be imported here.
    rm -rf bindings/python/build
    "$venv/bin/python" -m pip install -q --no-build-isolation --force-reinstall --no-deps ./bindings/python
} >&2
echo "$venv/bin/python"
