"""safetensors benchmark: numpack's import (file → store) and export (store → file),
streamed by the library, against the reference ``safetensors`` package's load_file
(file → in-memory dict) and save_file (dict → file), and against the path NumPack
0.7.0 takes (load_file, then save each array into a store). Float32 tensors of a
transformer-like model of about ``--size-mb`` MB; files in the page cache; best of
``--repeat``. Prints a markdown table of MB/s (tensor bytes per second).

numpack's export syncs the file before renaming it into place (a crash never leaves a
half-written target); save_file does not sync, so on a disk that writes about as fast
as the page cache fills, numpack's export runs at the disk's synced write speed.

    python benches/python/bench_safetensors.py [--size-mb 200] [--repeat 3]
"""

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

import numpack
from numpack.io import from_safetensors_file, to_safetensors_file

try:
    import safetensors.numpy as st
except ImportError:  # pragma: no cover
    st = None


def model(size_mb, rng):
    """Layers of 1024 x 1024 float32 weights (4 MiB) plus small biases."""
    tensors, total, i = {}, 0, 0
    while total < size_mb * 1e6:
        tensors[f"model.layers.{i}.weight"] = rng.standard_normal((1024, 1024), dtype=np.float32)
        tensors[f"model.layers.{i}.bias"] = rng.standard_normal(1024, dtype=np.float32)
        total += (1024 + 1) * 1024 * 4
        i += 1
    return tensors, total


def best(repeat, setup, fn):
    times = []
    for _ in range(repeat):
        setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=float, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tensors, nbytes = model(args.size_mb, np.random.default_rng(0))
    work = tempfile.mkdtemp(prefix="bench-st-")
    try:
        src = os.path.join(work, "model.safetensors")
        store = os.path.join(work, "store.npk")
        out = os.path.join(work, "out.safetensors")
        if st is not None:
            st.save_file(tensors, src)
        else:
            with numpack.NumPack(store, drop_if_exists=True, warn_no_context=False) as n:
                n.save(tensors)
            to_safetensors_file(store, src)

        def fresh_store():
            shutil.rmtree(store, ignore_errors=True)

        rows = []
        ours_in = best(args.repeat, fresh_store, lambda: from_safetensors_file(src, store))
        ref_in = ref_npk = None
        if st is not None:
            ref_in = best(args.repeat, lambda: None, lambda: st.load_file(src))

            def via_dict():
                with numpack.NumPack(store, drop_if_exists=True, warn_no_context=False) as n:
                    for k, v in st.load_file(src).items():
                        n.save({k: v})
            ref_npk = best(args.repeat, fresh_store, via_dict)
        rows.append(("import: file → store", ours_in, ref_npk, ref_in))
        from_safetensors_file(src, store, drop_if_exists=True)

        def rm_out():
            if os.path.exists(out):
                os.unlink(out)
        ours_out = best(args.repeat, rm_out, lambda: to_safetensors_file(store, out))
        ref_out = best(args.repeat, rm_out, lambda: st.save_file(tensors, out)) if st is not None else None
        rows.append(("export: store → file", ours_out, None, ref_out))

        mb = nbytes / 1e6
        fmt = lambda t: "—" if t is None else f"{mb / t:,.0f}"  # noqa: E731
        print(f"{len(tensors)} float32 tensors, {mb:,.0f} MB; MB/s, best of {args.repeat}\n")
        print("| operation | numpack | load_file + NumPack save (0.7.0's path) | safetensors (memory ↔ file) |")
        print("|---|---|---|---|")
        for name, ours, via, ref in rows:
            print(f"| {name} | {fmt(ours)} | {fmt(via)} | {fmt(ref)} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
