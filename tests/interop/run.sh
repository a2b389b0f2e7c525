#!/usr/bin/env bash
# Interoperability with the real NumPack 0.4.5 (PyPI wheel, CPython 3.11 on Linux), both
# directions:
#   1. numpack writes a store (examples/interop_write.rs); NumPack reads it and checks
#      every array against the expected .npy files (check_upstream_reads_ours.py);
#   2. NumPack then changes that store; numpack reads the result back;
#   3. NumPack writes a store (upstream_writes.py); numpack reads it and checks it;
#   4. .npkg packages both ways (npkg.sh, NumPack 0.5.0's package code);
#   5. a store with a plain and a compressed array: NumPack reads the plain one and
#      refuses the compressed one; numpack reads both back (interop_compressed.rs);
#   6. NumPack 0.7.0 (run07.sh), both directions.
# Needs python3 (3.11, or python3.11 on PATH; override with PYTHON=...), pip and cargo.
# The oracle venv is created at <repo>/.venv-oracle (override with ORACLE_VENV=...) and
# reused while it imports numpack 0.4.5. Exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
oracle_version=0.4.5

opy="$(bash "$here/oracle-venv.sh")"
echo "== oracle: $("$opy" -c 'import numpack, numpy, sys; print(f"numpack {numpack.__version__}, numpy {numpy.__version__}, python {sys.version.split()[0]}")')"

work="$(mktemp -d "${TMPDIR:-/tmp}/numpack-interop.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== building examples/interop_write.rs"
(cd "$root" && cargo build --quiet --example interop_write)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    "$opy" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
tool="$target_dir/debug/examples/interop_write"

status=0
summary=()
run_step() {  # run_step <label> <command...>: runs it, keeps its last line for the summary
    local label="$1" out rc
    shift
    echo "== $label"
    set +e
    out="$("$@" 2>&1)"
    rc=$?
    set -e
    printf '%s\n' "$out"
    local last
    last="$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)"
    [ -n "$last" ] || last="(no result line)"
    if [ $rc -ne 0 ]; then
        status=1
        summary+=("FAIL  $label: $last (exit $rc)")
    else
        summary+=("ok    $label: $last")
    fi
    return 0
}

run_step "numpack writes, NumPack $oracle_version reads" \
    bash -c '"$1" "$2" && "$3" "$4/check_upstream_reads_ours.py" "$2"' _ "$tool" "$work/ours" "$opy" "$here"
run_step "NumPack $oracle_version changes numpack's store, numpack reads" \
    "$tool" --verify "$work/ours/ours.npk" "$work/ours/expected_after"
run_step "NumPack $oracle_version writes, numpack reads" \
    bash -c '"$1" "$2/upstream_writes.py" "$3" && "$4" --verify "$3/theirs.npk" "$3/expected"' _ "$opy" "$here" "$work/theirs" "$tool"
# NumPack 0.5.0's package code (0.7.0 ships the same) against ours, both directions.
run_step "packages (.npkg): tests/interop/npkg.sh" bash "$here/npkg.sh"

# compressed arrays: NumPack reads the plain array of a mixed store and refuses the
# compressed one; numpack then reads both back.
(cd "$root" && cargo build --quiet --example interop_compressed)
ztool="$target_dir/debug/examples/interop_compressed"
run_step "numpack writes a compressed array, NumPack $oracle_version refuses it and reads the plain one" \
    bash -c '"$1" "$2" && "$3" "$4/check_upstream_compressed.py" "$2"' _ "$ztool" "$work/mixed" "$opy" "$here"
run_step "numpack reads the mixed store back after NumPack" "$ztool" --verify "$work/mixed"

# The current release, built from its sdist: every store it writes, ours read by it.
run_step "NumPack 0.7.0, both directions: tests/interop/run07.sh" bash "$here/run07.sh"

echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
