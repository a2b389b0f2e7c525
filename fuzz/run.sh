#!/usr/bin/env bash
# Coverage-guided fuzzing of numpack with libFuzzer (libfuzzer-sys).
#
#   bash fuzz/run.sh [TARGET|all] [SECONDS]   fuzz each target for SECONDS (default 60)
#   bash fuzz/run.sh build                    build every target only
#   bash fuzz/run.sh cmin TARGET              minimise the working corpus into
#                                             tests/fuzz/corpus/TARGET
#   bash fuzz/run.sh list                     list the targets
#
# Uses a nightly toolchain with AddressSanitizer when one is installed
# (`rustup toolchain install nightly --profile minimal`); otherwise the default stable
# toolchain with coverage instrumentation only (no sanitizer: safe Rust still panics
# on overflow and bounds, and libFuzzer still catches aborts, OOMs and hangs).
# Overflow checks and debug assertions are on (fuzz/Cargo.toml's release profile).
# The working corpus grows in fuzz/corpus/TARGET (seeded from tests/fuzz/corpus/TARGET);
# crashes, OOMs and hangs land in fuzz/artifacts/TARGET/. Copy each one into
# tests/fuzz/regressions/TARGET/ so `cargo test --test fuzz_replay` replays it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz="$root/fuzz"
triple=$(rustc -vV | sed -n 's/^host: //p')
targets=$(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' "$fuzz/Cargo.toml" | grep -v '^numpack-fuzz$')

if [ -z "${FUZZ_TOOLCHAIN:-}" ]; then
    if rustup run nightly rustc -V >/dev/null 2>&1; then FUZZ_TOOLCHAIN=nightly; else FUZZ_TOOLCHAIN=stable; fi
fi
flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
flags+=" -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
if [ "$FUZZ_TOOLCHAIN" = nightly ] && [ "${FUZZ_SANITIZER:-address}" = address ]; then
    flags+=" -Zsanitizer=address"
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=0}"
fi

build() {
    echo "building with $FUZZ_TOOLCHAIN ($flags)" >&2
    # --target keeps build scripts and proc macros uninstrumented.
    RUSTFLAGS="$flags" cargo "+$FUZZ_TOOLCHAIN" build --release --manifest-path "$fuzz/Cargo.toml" \
        --target "$triple" --target-dir "$fuzz/target" "$@"
}
bin() { echo "$fuzz/target/$triple/release/$1"; }

run() {
    local t=$1 secs=$2
    mkdir -p "$fuzz/corpus/$t" "$fuzz/artifacts/$t"
    echo "== $t for ${secs}s" >&2
    # Fork mode with ignore_*: keep going past known findings and collect them all.
    "$(bin "$t")" "$fuzz/corpus/$t" "$root/tests/fuzz/corpus/$t" \
        -artifact_prefix="$fuzz/artifacts/$t/" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=65536 -print_final_stats=1 \
        -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 ${FUZZ_ARGS:-}
}

case "${1:-all}" in
    list) echo "$targets" ;;
    build) build --bins ;;
    cmin)
        t=${2:?cmin TARGET}
        build --bin "$t"
        tmp=$(mktemp -d)
        "$(bin "$t")" -merge=1 -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 "$tmp" \
            "$root/tests/fuzz/corpus/$t" "$fuzz/corpus/$t" >&2
        rm -rf "$root/tests/fuzz/corpus/$t"
        mkdir -p "$root/tests/fuzz/corpus/$t"
        cp "$tmp"/* "$root/tests/fuzz/corpus/$t/"
        rm -rf "$tmp"
        ls "$root/tests/fuzz/corpus/$t" | wc -l
        ;;
    all)
        build --bins
        for t in $targets; do run "$t" "${2:-60}"; done
        ;;
    *)
        echo "$targets" | grep -qx "$1" || { echo "unknown target $1 (targets: $(echo $targets))" >&2; exit 2; }
        build --bin "$1"
        run "$1" "${2:-60}"
        ;;
esac
