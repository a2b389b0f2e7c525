#!/usr/bin/env bash
# Checks the native consumers' side of numpack:
#   1. cmake (from .venv-tools, installed there with pip when missing) builds the crate
#      through cmake/ and installs it into a temporary prefix;
#   2. bindings/c (the C and C++ examples) builds against the INSTALLED package with
#      find_package(numpack), -Wall -Wextra -Wpedantic -Werror, shared and static; runs;
#   3. the examples build with pkg-config's link lines (numpack, numpack --static,
#      numpack-static) and run;
#   4. numpack.hpp compiles on its own and from two translation units;
#   5. tests/cpp/test_wrapper.cpp runs plainly, under ASan/UBSan (static library) and
#      under valgrind --leak-check=full.
# Prints "N passed, 0 failed" last and exits non-zero on failure.
# Usage: bash tests/cpp/run.sh   (honours CARGO_TARGET_DIR; default target/)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$target"
target="$(cd "$target" && pwd)"

CC="${CC:-gcc}"
CXX="${CXX:-g++}"
WARN=(-Wall -Wextra -Wpedantic -Werror)
SAN=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

passed=0
failed=0
# step NAME CMD...: runs CMD, logging to $work/log.N; counts it; shows the log on failure.
n=0
step() {
    local name="$1"
    shift
    n=$((n + 1))
    local log="$work/log.$n"
    local t0=$SECONDS
    if "$@" >"$log" 2>&1; then
        passed=$((passed + 1))
        printf 'ok   %-64s (%ss)\n' "$name" $((SECONDS - t0))
    else
        failed=$((failed + 1))
        printf 'FAIL %-64s (%ss)\n' "$name" $((SECONDS - t0))
        sed 's/^/     | /' "$log" | tail -n 60
    fi
}
finish() {
    echo "$passed passed, $failed failed"
    ((failed == 0))
    exit $?
}
# Stops early when a step everything else depends on failed.
require() { ((failed == 0)) || finish; }

# Runs a program with a fresh scratch directory; it must print "N passed, 0 failed" or
# "...: ok" last.
run_prog() {
    local dir
    dir="$(mktemp -d "$work/run.XXXXXX")"
    "$@" "$dir/store" | tee "$dir.out" || return 1
    tail -n 1 "$dir.out" | grep -qE '(^[1-9][0-9]* passed, 0 failed$|: ok$)'
}

# -- 1. cmake, crate, install -----------------------------------------------------------
get_cmake() {
    if [[ -x "$root/.venv-tools/bin/cmake" ]]; then return 0; fi
    if [[ ! -x "$root/.venv-tools/bin/pip" ]]; then python3 -m venv "$root/.venv-tools" || return 1; fi
    "$root/.venv-tools/bin/pip" install --quiet cmake
}
step "cmake in .venv-tools" get_cmake
require
CMAKE="$root/.venv-tools/bin/cmake"
"$CMAKE" --version | head -n 1

step "cmake/: configure (cargo target $target)" \
    "$CMAKE" -S "$root/cmake" -B "$work/build-pkg" -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DNUMPACK_CARGO_TARGET_DIR="$target"
step "cmake/: build (cargo build --lib --release)" "$CMAKE" --build "$work/build-pkg"
step "cmake --install into a temporary prefix" "$CMAKE" --install "$work/build-pkg"
require
installed_ok() {
    local f
    for f in lib/libnumpack.so lib/libnumpack.a include/numpack.h include/numpack.hpp \
        lib/cmake/numpack/numpackConfig.cmake lib/cmake/numpack/numpackConfigVersion.cmake \
        lib/pkgconfig/numpack.pc lib/pkgconfig/numpack-static.pc; do
        [[ -f "$prefix/$f" ]] || { echo "missing $prefix/$f"; return 1; }
    done
    cmp "$prefix/include/numpack.h" "$root/include/numpack.h"
}
step "installed files present" installed_ok
require

native_libs_cover_rustc() {
    # What rustc says a staticlib using std needs on this system, against the list the
    # package carries (cmake/CMakeLists.txt NUMPACK_STATIC_SYSTEM_LIBS, in the .pc file).
    echo 'pub fn f() -> usize { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) }' \
        >"$work/probe.rs" || return 1
    local need have l
    need="$(rustc --crate-type staticlib --print native-static-libs -o "$work/probe.a" "$work/probe.rs" 2>&1 |
        sed -n 's/.*native-static-libs: //p')"
    [[ -n "$need" ]] || { echo "rustc printed no native-static-libs"; return 1; }
    have="$(sed -n 's/^Libs.private: //p' "$prefix/lib/pkgconfig/numpack.pc")"
    echo "rustc: $need"
    echo "numpack.pc: $have"
    for l in $need; do
        [[ "$l" == "-lc" || " $have " == *" $l "* ]] || { echo "missing $l"; return 1; }
    done
}
step "static system libraries cover rustc --print native-static-libs" native_libs_cover_rustc

# -- 2. examples against the installed package ------------------------------------------
# Only the installed prefix is visible: a copy of bindings/c outside the repository.
cp -r "$root/bindings/c" "$work/examples-src"
step "examples: configure with find_package(numpack) (-Werror)" \
    "$CMAKE" -S "$work/examples-src" -B "$work/build-ex" -DCMAKE_PREFIX_PATH="$prefix" \
    -DNUMPACK_EXAMPLES_WERROR=ON -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX"
step "examples: build" "$CMAKE" --build "$work/build-ex" -j 4
for e in example_c example_cpp example_c_static example_cpp_static; do
    step "examples: run $e" run_prog "$work/build-ex/$e"
done
not_in_build_tree() {
    ! grep -rqs -- "$target" "$work/build-ex/CMakeCache.txt" "$work/build-ex/CMakeFiles" &&
        readelf -d "$work/build-ex/example_c" | grep -q "RUNPATH.*$prefix/lib"
}
step "examples link the installed libraries, not the cargo tree" not_in_build_tree
wrong_version() {
    # find_package(numpack 99) must refuse the installed 0.x package.
    mkdir -p "$work/wv" &&
        printf 'cmake_minimum_required(VERSION 3.16)\nproject(wv NONE)\nfind_package(numpack 99 REQUIRED)\n' \
            >"$work/wv/CMakeLists.txt" &&
        ! "$CMAKE" -S "$work/wv" -B "$work/wv/build" -DCMAKE_PREFIX_PATH="$prefix"
}
step "find_package(numpack 99) is refused by the version file" wrong_version

# -- 3. pkg-config -----------------------------------------------------------------------
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
PKGCONF=/usr/bin/pkg-config
pc_build() { # name, flags-for-pkg-config..., then runs
    local out="$work/$1"
    shift
    local cflags libs
    cflags="$("$PKGCONF" --cflags "$@")" && libs="$("$PKGCONF" --libs "$@")" || return 1
    echo "cflags: $cflags"
    echo "libs: $libs"
    # shellcheck disable=SC2086
    "$CC" -std=c99 "${WARN[@]}" $cflags "$root/bindings/c/examples/example.c" $libs \
        -Wl,-rpath,"$prefix/lib" -o "$out.c" &&
        # shellcheck disable=SC2086
        "$CXX" -std=c++17 "${WARN[@]}" $cflags "$root/bindings/c/examples/example.cpp" $libs \
            -Wl,-rpath,"$prefix/lib" -o "$out.cpp" &&
        run_prog "$out.c" && run_prog "$out.cpp"
}
step "pkg-config numpack: modversion matches the header" \
    bash -c "[[ \"\$($PKGCONF --modversion numpack)\" == \"$(sed -nE 's/^#define NPK_VERSION_STRING "(.*)"/\1/p' include/numpack.h)\" ]]"
step "pkg-config numpack (shared): build and run examples" pc_build pc_shared numpack
step "pkg-config numpack-static: build and run examples" pc_build pc_static numpack-static
static_has_no_dep() { ! readelf -d "$work/pc_static.c" | grep -q 'libnumpack.so'; }
step "numpack-static executables do not need libnumpack.so" static_has_no_dep

# -- 4. the C++ header on its own and from two translation units -------------------------
inc=(-I"$prefix/include")
step "numpack.hpp compiles on its own (-std=c++17 -Werror)" \
    "$CXX" -std=c++17 "${WARN[@]}" "${inc[@]}" -x c++ -fsyntax-only "$prefix/include/numpack.hpp"
two_tu() {
    "$CXX" -std=c++17 "${WARN[@]}" "${inc[@]}" -c "$root/tests/cpp/hpp_tu1.cpp" -o "$work/tu1.o" &&
        "$CXX" -std=c++17 "${WARN[@]}" "${inc[@]}" -c "$root/tests/cpp/hpp_tu2.cpp" -o "$work/tu2.o" &&
        "$CXX" "$work/tu1.o" "$work/tu2.o" -L"$prefix/lib" -lnumpack -Wl,-rpath,"$prefix/lib" \
            -o "$work/two_tu" && "$work/two_tu"
}
step "numpack.hpp from two translation units, linked and run" two_tu
if command -v clang++ >/dev/null; then
    step "numpack.hpp with clang++ -std=c++17 -Werror" \
        clang++ -std=c++17 "${WARN[@]}" "${inc[@]}" -x c++ -fsyntax-only "$prefix/include/numpack.hpp"
fi

# -- 5. the wrapper tests ----------------------------------------------------------------
step "test_wrapper: build (shared)" \
    "$CXX" -std=c++17 "${WARN[@]}" -g "${inc[@]}" "$root/tests/cpp/test_wrapper.cpp" \
    -L"$prefix/lib" -lnumpack -Wl,-rpath,"$prefix/lib" -o "$work/test_wrapper"
step "test_wrapper: run" run_prog "$work/test_wrapper"
step "test_wrapper: build with -fsanitize=address,undefined (static)" \
    "$CXX" -std=c++17 "${WARN[@]}" -g "${SAN[@]}" "${inc[@]}" "$root/tests/cpp/test_wrapper.cpp" \
    $("$PKGCONF" --libs numpack-static) -o "$work/test_wrapper_asan"
step "test_wrapper: run under ASan/UBSan" run_prog env ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$work/test_wrapper_asan"
if command -v valgrind >/dev/null; then
    # valgrind.supp: the TLS of threads alive at exit (rayon's pool, the file closer).
    VG=(valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible
        --suppressions="$root/tests/valgrind.supp")
    step "test_wrapper: run under valgrind --leak-check=full" run_prog "${VG[@]}" "$work/test_wrapper"
    step "example_cpp: run under valgrind --leak-check=full" run_prog "${VG[@]}" "$work/build-ex/example_cpp"
else
    step "valgrind is installed" false
fi

finish
