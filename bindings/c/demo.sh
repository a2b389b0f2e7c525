#!/usr/bin/env bash
# `make demo`: builds the library, runs the C demo on data it generates (save, appends,
# scattered replaces, deletes, random reads, a zero-copy view, a streamed scan, compaction,
# sync), then works with the same store from Python through this repository's package
# (reads, search, a package round trip, edits, compression, .npy, check — on a copy), and
# finally opens it with NumPack 0.4.5, the upstream package, to show both read one format.
# Every result is checked; any mismatch fails the demo.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

echo "== building numpack (release)"
cargo build --release --quiet
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -Iinclude bindings/c/demo.c \
    -L"$target/release" -lnumpack -Wl,-rpath,"$target/release" -o "$target/release/numpack-demo"

work="$(mktemp -d "${TMPDIR:-/tmp}/numpack-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT
store="$work/embeddings.npk"

echo "== C"
"$target/release/numpack-demo" "$store"

echo "== Python (numpack)"
py="$(bash bindings/python/install.sh)"
mkdir "$work/scratch"
(cd "$work" && "$py" "$root/bindings/python/demo.py" "$store" "$work/scratch")

echo "== Python (NumPack 0.4.5)"
opy="$(bash tests/interop/oracle-venv.sh)"
"$opy" bindings/c/demo_numpack045.py "$store"
echo "== demo done: one store, written from C, used from Python by numpack and read back by NumPack 0.4.5"
