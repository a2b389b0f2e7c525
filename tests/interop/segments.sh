#!/usr/bin/env bash
# Interoperability with NumPack 0.7.0's segmented arrays, both directions:
#   1. NumPack 0.7.0 writes a store with segmented arrays (a small segment target via
#      NUMPACK_SEGMENT_TARGET_BYTES) and a plain one (segments07.py write); numpack reads
#      and checks it (examples/interop_segments.rs check), then appends (top-ups and new
#      segments), replaces, deletes and compacts (mutate) and reads again; NumPack 0.7.0
#      opens the result and finds equal data (segments07.py verify).
#   2. numpack writes plain arrays with deleted rows (write); NumPack 0.7.0 compacts them
#      into segments (update) and reads them; numpack reads, checks and changes them; NumPack
#      0.7.0 reads the result.
# Between them NumPack 0.7.0 appends to the segments numpack wrote, and numpack reads that.
# The oracle venv is $ORACLE07_VENV (default <repo>/.venv-oracle07, made by
# oracle07-venv.sh); it must import numpack 0.7.0. Prints "N passed, M failed" last;
# exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${ORACLE07_VENV:-$root/.venv-oracle07}"
opy="$venv/bin/python"
if ! "$opy" -c 'import numpack, sys; sys.exit(numpack.__version__ != "0.7.0")' 2>/dev/null; then
    echo "error: $opy does not import numpack 0.7.0 (make it with tests/interop/oracle07-venv.sh, or set ORACLE07_VENV)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
echo "== oracle: $("$opy" -c 'import numpack, numpy, sys; print(f"numpack {numpack.__version__}, numpy {numpy.__version__}, python {sys.version.split()[0]}")')"

work="$(mktemp -d "${TMPDIR:-/tmp}/numpack-segments07.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== building examples/interop_segments.rs"
(cd "$root" && cargo build --quiet --example interop_segments)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    "$opy" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
tool="$target_dir/debug/examples/interop_segments"

# Both sides size segments from this, as NumPack 0.7 does.
export NUMPACK_SEGMENT_TARGET_BYTES=4096
unset NPK_SEGMENT_TARGET_BYTES

total_passed=0
total_failed=0
run_step() {  # run_step <label> <command...>: runs it and adds up its "N passed, M failed"
    local label="$1" out rc p f
    shift
    echo "== $label"
    set +e
    out="$("$@" 2>&1)"
    rc=$?
    set -e
    # Indented, so that only the total below reads as this script's result line.
    printf '%s\n' "$out" | sed 's/^/  /'
    read -r p f < <(printf '%s\n' "$out" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' | tail -n 1)
    p="${p:-0}"
    f="${f:-0}"
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1  # failed before reporting its checks
    fi
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
}

s1="$work/theirs.npk" e1="$work/theirs-expected"
run_step "NumPack 0.7.0 writes segmented arrays" "$opy" "$here/segments07.py" write "$s1" "$e1"
run_step "numpack reads and checks them" "$tool" check "$s1" "$e1"
run_step "numpack appends, replaces, deletes, compacts" "$tool" mutate "$s1" "$e1"
run_step "numpack reads its changes back" "$tool" check "$s1" "$e1"
run_step "NumPack 0.7.0 reads numpack's changes" "$opy" "$here/segments07.py" verify "$s1" "$e1"
run_step "NumPack 0.7.0 appends to numpack's segments" "$opy" "$here/segments07.py" append "$s1" "$e1"
run_step "numpack reads 0.7's appends" "$tool" check "$s1" "$e1"

s2="$work/ours.npk" e2="$work/ours-expected"
run_step "numpack writes plain arrays with deleted rows" "$tool" write "$s2" "$e2"
run_step "NumPack 0.7.0 compacts them into segments" "$opy" "$here/segments07.py" update "$s2" "$e2"
run_step "numpack reads and checks 0.7's segments" "$tool" check "$s2" "$e2"
run_step "numpack changes them" "$tool" mutate "$s2" "$e2"
run_step "NumPack 0.7.0 reads the result" "$opy" "$here/segments07.py" verify "$s2" "$e2"

echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
