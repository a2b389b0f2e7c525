#!/usr/bin/env bash
# Interoperability with the real NumPack 0.7.0 (built from its sdist by oracle07-venv.sh),
# both directions:
#   1. numpack writes a store (examples/interop_write.rs); NumPack 0.7.0 reads every array
#      through load, lazy load, stream_load and getitem (check07_reads_ours.py);
#   2. NumPack 0.7.0 then changes that store (append, replace, row and whole-array drops,
#      update, clone, overwrites, new arrays incl. 0-d); numpack reads the result back;
#   3. NumPack 0.7.0 writes a store from scratch (upstream07_writes.py); numpack reads it;
#   4. numpack reads the store of NumPack 0.7.0 segmented arrays that step 3 also wrote;
#   5. segmented arrays changed by each side and read by the other (segments.sh).
# .npkg packages are covered by npkg.sh: NumPack 0.7.0's package code is the same as the
# 0.5.0 code it runs. Needs python3.11, pip and cargo; the first run builds NumPack 0.7.0
# (minutes). Prints "N passed, M failed" last; exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
oracle_version=0.7.0

opy="$(bash "$here/oracle07-venv.sh")"
echo "== oracle: $("$opy" -c 'import numpack, numpy, sys; print(f"numpack {numpack.__version__}, numpy {numpy.__version__}, python {sys.version.split()[0]}")')"

work="$(mktemp -d "${TMPDIR:-/tmp}/numpack-interop07.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== building examples/interop_write.rs"
(cd "$root" && cargo build --quiet --example interop_write)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    "$opy" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
tool="$target_dir/debug/examples/interop_write"

status=0
total_passed=0
total_failed=0
summary=()
run_step() {  # run_step <label> <command...>: runs it, adds up its "N passed, M failed" lines
    local label="$1" out rc counts p f
    shift
    echo "== $label"
    set +e
    out="$("$@" 2>&1)"
    rc=$?
    set -e
    printf '%s\n' "$out"
    counts="$(printf '%s\n' "$out" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' |
        awk '{p += $1; f += $2} END {print p + 0, f + 0}')"
    read -r p f <<<"$counts"
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1  # failed before reporting any check
    fi
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    if [ $rc -ne 0 ]; then
        status=1
        summary+=("FAIL  $label: $p passed, $f failed (exit $rc)")
    else
        summary+=("ok    $label: $p passed, $f failed")
    fi
    return 0
}

run_step "numpack writes, NumPack $oracle_version reads" \
    bash -c '"$1" "$2" && "$3" "$4/check07_reads_ours.py" "$2"' _ "$tool" "$work/ours" "$opy" "$here"
run_step "NumPack $oracle_version changes numpack's store, numpack reads" \
    "$tool" --verify "$work/ours/ours.npk" "$work/ours/expected_after"
run_step "NumPack $oracle_version writes, numpack reads" \
    bash -c '"$1" "$2/upstream07_writes.py" "$3" && "$4" --verify "$3/theirs.npk" "$3/expected"' \
    _ "$opy" "$here" "$work/theirs" "$tool"
run_step "NumPack $oracle_version writes segmented arrays, numpack reads" \
    "$tool" --verify "$work/theirs/theirs_seg.npk" "$work/theirs/expected_seg"
run_step "segmented arrays changed both ways: tests/interop/segments.sh" \
    env ORACLE07_VENV="$(dirname "$(dirname "$opy")")" bash "$here/segments.sh"

echo "== summary (NumPack $oracle_version)"
printf '%s\n' "${summary[@]}"
echo "$total_passed passed, $total_failed failed"
exit $status
