#!/usr/bin/env bash
# Creates (or reuses) a venv with the real NumPack 0.7.0 and prints its python's path on
# stdout (everything else goes to stderr).
#
# NumPack 0.7.0 is installed from its PyPI source distribution, built with maturin: its
# Linux wheels are not usable here and its sdist links OpenBLAS through ndarray's `blas`
# feature and the `blas-src` crate, which would need a system BLAS. Only the vector
# engine's dot product uses that path, never the storage code we test against, so the
# build drops the feature, the `blas-src` dependencies and the `extern crate blas_src`
# line (patch_sources below; it fails loudly when the sdist does not look as expected).
#
# The venv lives at <repo>/.venv-oracle07 (override with ORACLE07_VENV=...) and is reused
# while it imports numpack 0.7.0; PYTHON=... picks the interpreter (CPython 3.11). The
# patched sources, Cargo's build directory and the built wheel live under
# <repo>/target/oracle07, so a lost venv is remade in seconds from the kept wheel.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
oracle_version=0.7.0
venv="${ORACLE07_VENV:-$root/.venv-oracle07}"
work="$root/target/oracle07"

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

# patch_sources <python> <source dir>: removes the BLAS link from NumPack's sources.
patch_sources() {
    "$1" - "$2" <<'EOF'
import re, sys
from pathlib import Path

src = Path(sys.argv[1])

def edit(path, subs):
    text = path.read_text()
    for pattern, repl, count in subs:
        text, n = re.subn(pattern, repl, text, flags=re.M)
        if n != count:
            sys.exit(f"oracle07-venv.sh: patching {path}: expected {count} match(es) of "
                     f"{pattern!r}, found {n}: the sdist is not the one this script knows")
    path.write_text(text)

edit(src / "Cargo.toml", [
    (r'^(ndarray\s*=\s*\{[^}\n]*?),\s*features\s*=\s*\["blas"\]\s*\}', r"\1 }", 1),
    (r'^blas-src\s*=.*\n', "", 2),
])
edit(src / "src/vector_engine/simd_backend.rs", [
    # The line and the cfg attribute in front of it, which would otherwise apply to the
    # next item.
    (r'^(#\[cfg\([^\n]*\)\]\s*\n)?\s*extern crate blas_src;\s*\n', "", 1),
])
EOF
}

if ! oracle_ok; then
    py="$(pick_python)" || {
        echo "oracle07-venv.sh: needs CPython 3.11 (set PYTHON=...)" >&2
        exit 2
    }
    echo "== creating the NumPack $oracle_version oracle venv at $venv ($("$py" --version))" >&2
    rm -rf "$venv"
    "$py" -m venv "$venv"
    vpy="$venv/bin/python"
    pipq=("$vpy" -m pip install --quiet --disable-pip-version-check)
    "${pipq[@]}" "numpy>=1.26" >&2

    # The wheel is kept: a lost venv is remade without rebuilding (CPython 3.11 only).
    wheel="$(ls "$work"/wheels/numpack-"$oracle_version"-cp311-*.whl 2>/dev/null | head -n 1 || true)"
    if [ -z "$wheel" ]; then
        log="$work/build.log"
        echo "== building NumPack $oracle_version with maturin (about 4 minutes on 2 cores; log: $log)" >&2
        rm -rf "$work/wheels"
        src="$work/numpack-$oracle_version"
        if [ ! -f "$src/.patched" ]; then
            rm -rf "$src" "$work/sdist"
            mkdir -p "$work/sdist"
            "$vpy" -m pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
                -d "$work/sdist" "numpack==$oracle_version" >&2
            tar -xzf "$work/sdist/numpack-$oracle_version.tar.gz" -C "$work"
            patch_sources "$vpy" "$src"
            touch "$src/.patched"
        fi
        "${pipq[@]}" "maturin>=1.0,<2.0" >&2
        # No LTO and parallel codegen units instead of the sdist's fat LTO and single
        # units: the same code at opt-level 3, built several times faster.
        (cd "$src" && CARGO_TARGET_DIR="$work/cargo" "$venv/bin/maturin" build --release \
            --config 'profile.release.lto=false' \
            --config 'profile.release.codegen-units=16' \
            --config 'profile.release.package."*".codegen-units=16' \
            --config 'profile.release.package.numpack.codegen-units=16' \
            --interpreter "$vpy" --out "$work/wheels") >"$log" 2>&1 || {
            tail -n 40 "$log" >&2
            echo "oracle07-venv.sh: building NumPack $oracle_version failed (log: $log)" >&2
            exit 2
        }
        wheel="$(ls "$work"/wheels/numpack-"$oracle_version"-cp311-*.whl | head -n 1)"
    fi
    "${pipq[@]}" --no-deps "$wheel" >&2
    oracle_ok || { echo "oracle07-venv.sh: the venv at $venv does not import numpack $oracle_version" >&2; exit 2; }
fi
echo "$venv/bin/python"
