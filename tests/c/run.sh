#!/usr/bin/env bash
# Builds the library and runs the C checks:
#   1. include/numpack.h compiles on its own and from two linked translation units,
#      as C99 and as C++17, with -Wall -Wextra -Wpedantic -Werror;
#   2. every function the header declares is called by the C tests (tests/c/test_*.c:
#      test_numpack.c owns main() and the harness, one file per further area of the API);
#   3. the C tests pass against the shared library,
#   4. ... built with -fsanitize=address,undefined against the static library,
#   5. ... and under valgrind (leak check on).
# Usage: bash tests/c/run.sh   (honours CARGO_TARGET_DIR; default target/)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"
target="$(cd "$target" && pwd)"
libdir="$target/debug"
src="$root/tests/c"
header="$root/include/numpack.h"
tests=("$src"/test_*.c)

CC="${CC:-gcc}"
CXX="${CXX:-g++}"
WARN=(-Wall -Wextra -Wpedantic -Werror)
# What a Rust static library needs from the system on Linux (rustc
# --print native-static-libs); glibc >= 2.34 has most of it in libc itself.
NATIVE_LIBS=(-lpthread -ldl -lm -lrt -lutil)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }

step "cargo build --lib (target dir $target)"
cargo build --lib
for f in libnumpack.so libnumpack.a; do
    [[ -f "$libdir/$f" ]] || { echo "missing $libdir/$f" >&2; exit 1; }
done
LINK_SHARED=(-L"$libdir" -lnumpack -Wl,-rpath,"$libdir")

step "header: C99 and C++17, two translation units"
"$CC" -std=c99 "${WARN[@]}" -I"$root/include" -c "$src/header_tu1.c" -o "$work/h1.o"
"$CC" -std=c99 "${WARN[@]}" -I"$root/include" -c "$src/header_tu2.c" -o "$work/h2.o"
"$CC" "$work/h1.o" "$work/h2.o" "${LINK_SHARED[@]}" -o "$work/header_c"
"$work/header_c"
"$CXX" -std=c++17 "${WARN[@]}" -I"$root/include" -x c++ -c "$src/header_tu1.c" -o "$work/h1pp.o"
"$CXX" -std=c++17 "${WARN[@]}" -I"$root/include" -x c++ -c "$src/header_tu2.c" -o "$work/h2pp.o"
"$CXX" "$work/h1pp.o" "$work/h2pp.o" "${LINK_SHARED[@]}" -o "$work/header_cpp"
"$work/header_cpp"

step "every declared function is exercised by the C tests"
# Declarations are the lines of the header that start with a type at column 0.
mapfile -t functions < <(grep -E '^[a-z].*\bnpk_[a-z_0-9]+\(' "$header" | grep -v '^typedef' |
    sed -E 's/.*\b(npk_[a-z_0-9]+)\(.*/\1/' | sort -u)
((${#functions[@]} > 0)) || { echo "found no declarations in $header" >&2; exit 1; }
missing=0
for f in "${functions[@]}"; do
    if ! grep -qE "\\b$f\\(" "${tests[@]}"; then
        echo "not exercised by tests/c/test_*.c: $f" >&2
        missing=1
    fi
done
((missing == 0))
echo "${#functions[@]} functions, all exercised"

# Runs the test program with a fresh store directory and checks its summary line.
run_tests() {
    local label="$1"
    shift
    local dir out
    dir="$(mktemp -d "$work/stores.XXXXXX")"
    out="$work/$label.out"
    if ! "$@" "$dir" | tee "$out"; then
        echo "C tests failed ($label)" >&2
        exit 1
    fi
    if ! tail -n 1 "$out" | grep -qE '^[1-9][0-9]* passed, 0 failed$'; then
        echo "C tests ($label) did not end with 'N passed, 0 failed'" >&2
        exit 1
    fi
}

step "C tests against the shared library"
"$CC" -std=c99 "${WARN[@]}" -g -pthread -I"$root/include" "${tests[@]}" \
    "${LINK_SHARED[@]}" -o "$work/test_shared"
run_tests shared "$work/test_shared"

step "the README's C quickstart compiles and prints what its comments say"
python3 - "$root/README.md" "$work/quickstart.c" <<'PY'
import sys
text = open(sys.argv[1]).read()
start = text.index("```c\n") + len("```c\n")
open(sys.argv[2], "w").write(text[start:text.index("```", start)])
PY
"$CC" -std=c99 "${WARN[@]}" -I"$root/include" "$work/quickstart.c" "${LINK_SHARED[@]}" -o "$work/quickstart"
qs_dir="$(mktemp -d "$work/quickstart.XXXXXX")"
qs_out="$(cd "$qs_dir" && "$work/quickstart")"
[[ "$qs_out" == "0 9" ]] || { echo "quickstart printed '$qs_out', its comment says '0 9'" >&2; exit 1; }
echo "quickstart: $qs_out"

step "C tests with AddressSanitizer and UBSan, against the static library"
SAN=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
if ! echo 'int main(void) { return 0; }' |
    "$CC" "${SAN[@]}" -x c - -o "$work/probe" 2>"$work/probe.err" || ! "$work/probe"; then
    cat "$work/probe.err" >&2
    echo "error: $CC cannot build with -fsanitize=address,undefined here (libasan/libubsan" \
        "missing?). Install the compiler's sanitizer runtimes (Debian: libasan8 libubsan1," \
        "normally pulled in by gcc) and rerun." >&2
    exit 1
fi
"$CC" -std=c99 "${WARN[@]}" -g "${SAN[@]}" -pthread -I"$root/include" "${tests[@]}" \
    "$libdir/libnumpack.a" "${NATIVE_LIBS[@]}" -o "$work/test_asan"
run_tests asan env ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$work/test_asan"

step "C tests under valgrind"
command -v valgrind >/dev/null || { echo "error: valgrind is not installed" >&2; exit 1; }
# valgrind.supp: the TLS of threads alive at exit (rayon's pool, the file closer) and of
# the exited threads whose stacks glibc caches for reuse.
run_tests valgrind valgrind --quiet --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite,possible --suppressions="$root/tests/valgrind.supp" \
    "$work/test_shared"

step "all C checks passed"
