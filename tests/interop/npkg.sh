#!/usr/bin/env bash
# .npkg packages against NumPack's own package code, both directions:
#   1. numpack packs a store it wrote (examples/interop_write.rs) with and without
#      compression (examples/npkg_tool.rs); NumPack's get_package_info agrees with ours
#      and NumPack's unpack(verify=True) gives a store NumPack 0.4.5 reads exactly as
#      expected;
#   2. NumPack packs a store NumPack wrote (upstream_writes.py) three ways (zstd, its zlib
#      fallback, raw); numpack unpacks each with verification and reads exactly the
#      expected arrays.
# NumPack's pack/unpack first appear in 0.5.0, whose wheel's native part needs glibc >=
# 2.38; its numpack/io/package_io.py is pure Python, so it is taken from the 0.5.0 wheel
# and run (npkg_upstream.py) in a venv of NumPack 0.4.5 (same store format) with
# `zstandard`. The venv is <repo>/.venv-oracle-npkg (override with NPKG_ORACLE_VENV=...).
# Needs python3.11, pip and cargo. Exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
package_io_version=0.5.0

venv="${NPKG_ORACLE_VENV:-$root/.venv-oracle-npkg}"
opy="$(ORACLE_VENV="$venv" ORACLE_VERSION=0.4.5 bash "$here/oracle-venv.sh")"
if ! "$opy" -c 'import zstandard' 2>/dev/null; then
    echo "== installing zstandard into $venv" >&2
    "$opy" -m pip install --quiet --disable-pip-version-check --only-binary=:all: zstandard >&2
fi
pio="$venv/npkg-upstream-$package_io_version/package_io.py"
if [ ! -f "$pio" ]; then
    echo "== fetching numpack/io/package_io.py of NumPack $package_io_version" >&2
    dl="$(mktemp -d)"
    "$opy" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        "numpack==$package_io_version" -d "$dl" >&2
    mkdir -p "$(dirname "$pio")"
    "$opy" - "$dl" "$pio" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/numpack-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    open(sys.argv[2], "wb").write(z.read("numpack/io/package_io.py"))
PY
    rm -rf "$dl"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/numpack-npkg.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== building examples/npkg_tool.rs and examples/interop_write.rs"
(cd "$root" && cargo build --quiet --example npkg_tool --example interop_write)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    "$opy" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
tool="$target_dir/debug/examples/npkg_tool"
writer="$target_dir/debug/examples/interop_write"

status=0
summary=()
run_step() {  # run_step <label> <command...>
    local label="$1" out rc last
    shift
    echo "== $label"
    set +e
    out="$("$@" 2>&1)"
    rc=$?
    set -e
    printf '%s\n' "$out"
    last="$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)"
    [ -n "$last" ] || last="(no result line)"
    if [ $rc -ne 0 ]; then
        status=1
        summary+=("FAIL  $label: $last (exit $rc)")
    else
        summary+=("ok    $label: $last")
    fi
}

# 1. Ours -> NumPack.
"$writer" "$work/ours" >/dev/null
"$tool" pack "$work/ours/ours.npk" "$work/ours-zstd.npkg" >/dev/null
"$tool" pack "$work/ours/ours.npk" "$work/ours-raw.npkg" --no-compress >/dev/null
for kind in zstd raw; do
    "$tool" info "$work/ours-$kind.npkg" >"$work/ours-$kind.json"
    run_step "numpack packs ($kind), NumPack unpacks" \
        "$opy" "$here/npkg_upstream.py" "$pio" check "$work/ours-$kind.npkg" "$work/ours/expected" "$work/ours-$kind.json"
done

# 2. NumPack -> ours.
"$opy" "$here/upstream_writes.py" "$work/theirs" >/dev/null
run_step "NumPack packs a NumPack store three ways" \
    "$opy" "$here/npkg_upstream.py" "$pio" pack "$work/theirs/theirs.npk" "$work/theirs"
for kind in zstd zlib raw; do
    run_step "NumPack packs ($kind), numpack unpacks" bash -c '
        "$1" unpack "$2" "$3" >/dev/null && "$4" --verify "$3" "$5"' _ \
        "$tool" "$work/theirs/theirs-$kind.npkg" "$work/theirs-$kind.npk" "$writer" "$work/theirs/expected"
done

echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
