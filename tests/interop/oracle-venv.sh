#!/usr/bin/env bash
# Creates (or reuses) a venv with the real NumPack 0.4.5 and prints its python's path.
# NumPack 0.4.5 is only published for CPython 3.11 on Linux. The venv lives at
# <repo>/.venv-oracle (override with ORACLE_VENV=...); PYTHON=... picks the interpreter.
# --- packages (.npkg): ORACLE_VERSION=0.5.0 makes a venv with that release instead (the
# first with pack/unpack), at <repo>/.venv-oracle-<version> unless ORACLE_VENV says. ---
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
oracle_version="${ORACLE_VERSION:-0.4.5}"
if [ "$oracle_version" = 0.4.5 ]; then
    venv="${ORACLE_VENV:-$root/.venv-oracle}"
else
    venv="${ORACLE_VENV:-$root/.venv-oracle-$oracle_version}"
fi
# --- end packages ---

pick_python() {
    local c
    for c in ${PYTHON:-} python3.11 python3; do
        if command -v "$c" >/dev/null 2>&1 &&
            "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

oracle_ok() {
    [ -x "$venv/bin/python" ] &&
        "$venv/bin/python" -c "import numpy, numpack, sys; sys.exit(numpack.__version__ != '$oracle_version')" 2>/dev/null
}

if ! oracle_ok; then
    py="$(pick_python)" || {
        echo "run.sh: NumPack $oracle_version is only published for CPython 3.11; none found (set PYTHON=...)" >&2
        exit 2
    }
    echo "== creating the oracle venv at $venv ($("$py" --version))" >&2
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "numpack==$oracle_version" >&2
    oracle_ok || { echo "run.sh: the oracle venv at $venv does not import numpack $oracle_version" >&2; exit 2; }
fi
echo "$venv/bin/python"
