#!/usr/bin/env bash
# Checks the Julia bindings (bindings/julia/NumPack.jl):
#   1. check.py: every ccall against include/numpack.h (names, argument counts and C
#      types, return types, struct mirrors, constants, dtype table), no Julia needed;
#   2. check.py --selftest: deliberately broken copies (an argument removed, a wrong
#      type, a wrong status value, ...) must each be caught;
#   3. when `julia` is on PATH: builds the library and runs test/runtests.jl with
#      NUMPACK_LIB pointing at it (skipped with a message otherwise).
# Prints "N passed, 0 failed" last; exits non-zero on failure.
# Usage: bash tests/julia_static/run.sh   (honours CARGO_TARGET_DIR; default target/)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
here="$root/tests/julia_static"
pkg="$root/bindings/julia/NumPack.jl"
total_passed=0
total_failed=0

# Runs a command whose last line is "N passed, M failed" and adds its counts.
tally() {
    local out
    out="$("$@")"
    local rc=$?
    printf '%s\n' "$out" | grep -v ' passed, .* failed$'
    local last p f
    last="$(printf '%s\n' "$out" | tail -n 1)"
    if [[ "$last" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        p="${BASH_REMATCH[1]}"
        f="${BASH_REMATCH[2]}"
    else
        p=0
        f=1
        echo "no summary line from: $*"
    fi
    ((rc != 0 && f == 0)) && f=1
    echo "-> $p passed, $f failed: $*"
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
}

echo "== static check of the ccalls against include/numpack.h"
tally python3 "$here/check.py"
echo
echo "== the checker catches broken bindings"
tally python3 "$here/check.py" --selftest
echo
if command -v julia >/dev/null; then
    echo "== julia test/runtests.jl"
    target="${CARGO_TARGET_DIR:-$root/target}"
    if cargo build --lib --quiet; then
        log="$(mktemp)"
        if NUMPACK_LIB="$target/debug/libnumpack.so" julia --project="$pkg" \
            -e 'using Pkg; Pkg.instantiate(); Pkg.test()' >"$log" 2>&1; then
            total_passed=$((total_passed + 1))
            echo "-> julia tests passed"
        else
            tail -n 60 "$log"
            total_failed=$((total_failed + 1))
            echo "-> julia tests FAILED"
        fi
        rm -f "$log"
    else
        total_failed=$((total_failed + 1))
        echo "-> cargo build failed"
    fi
else
    echo "== julia is not on PATH: skipping test/runtests.jl (the static checks above still ran)"
fi
echo
echo "$total_passed passed, $total_failed failed"
((total_failed == 0))
