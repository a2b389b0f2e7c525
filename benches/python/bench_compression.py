"""Compression benchmark: numpack's compressed arrays (zstd chunks, byte shuffle) against
np.savez_compressed, zarr (Blosc zstd + shuffle) and h5py (gzip + shuffle, lzf + shuffle)
on three real-looking datasets. For each: compression ratio (raw bytes / bytes on disk),
write and full-read throughput (MB/s of raw data), and the time to read 100 random rows
(file open excluded where the library allows it). Files are in the page cache; best of
N repeats. Prints a markdown table.

    python benches/python/bench_compression.py [--repeat 3] [--scale 1.0]

Peers that are not installed are left out; install them into the benchmark's own
environment (``pip install zarr h5py``), next to numpy, cffi and the numpack package.

Levels: numpack uses zstd level 3 (its default); zarr's Blosc clevel 2 is zstd level 3
inside Blosc; h5py's gzip uses level 4 (its default); np.savez_compressed uses zlib's
default. Chunks hold about 256 KiB of rows for every chunked format.
"""

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

import numpack

try:
    import h5py
except ImportError:  # pragma: no cover
    h5py = None
try:
    import zarr
except ImportError:  # pragma: no cover
    zarr = None

CHUNK_BYTES = 256 << 10


def datasets(scale, rng):
    """float32 embeddings (low rank + noise, rounded to 1e-4), int64 counters (monotone,
    small increments), float64 sensor series (smooth signals + noise, quantised to the
    sensor's 0.01 resolution)."""
    n = int(200_000 * scale)
    basis = rng.standard_normal((16, 128))
    emb = rng.standard_normal((n, 16)) @ basis / 4 + rng.standard_normal((n, 128)) * 0.05
    emb = np.round(emb, 4).astype(np.float32)

    m = int(1_000_000 * scale)
    counters = np.cumsum(rng.poisson([1, 3, 10, 40], size=(m, 4)), axis=0).astype(np.int64)

    t = np.arange(m)[:, None] / 1000.0
    freq = np.array([[0.05, 0.11, 0.31, 0.7]])
    sensor = 20 + 5 * np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(2 * np.pi * 7 * freq * t)
    sensor = np.round(sensor + rng.normal(0, 0.02, size=sensor.shape), 2)
    return [
        (f"float32 embeddings {n:,}x128", emb),
        (f"int64 counters {m:,}x4", counters),
        (f"float64 sensor series {m:,}x4", sensor),
    ]


def best(fn, repeat, setup=None):
    times = []
    result = None
    for _ in range(repeat):
        if setup:
            setup()
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def dir_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def rows_per_chunk(a):
    # never more rows than the array has: HDF5 refuses chunks larger than the data
    return max(1, min(a.shape[0], CHUNK_BYTES // (a.nbytes // a.shape[0])))


def run_numpack(d, a, idx, r):
    path = os.path.join(d, "store.npk")
    npk = numpack.NumPack(path, drop_if_exists=True, warn_no_context=False)
    npk.open()
    w, _ = best(lambda: npk.save({"a": a}, compression="zstd"), r)
    stored = npk.get_compression("a")["stored_bytes"]
    rd, back = best(lambda: npk.load("a"), r)
    assert np.array_equal(back, a)
    rr, rows = best(lambda: npk.getitem("a", idx), r)
    assert np.array_equal(rows, a[idx])
    npk.close()
    return stored, w, rd, rr


def run_savez(d, a, idx, r):
    f = os.path.join(d, "a.npz")
    w, _ = best(lambda: np.savez_compressed(f, a=a), r)

    def read():
        with np.load(f) as z:
            return z["a"]

    rd, back = best(read, r)
    assert np.array_equal(back, a)

    def rows():
        with np.load(f) as z:  # no partial reads: the whole member is inflated
            return z["a"][idx]

    rr, got = best(rows, r)
    assert np.array_equal(got, a[idx])
    return dir_bytes(f), w, rd, rr


def run_zarr(d, a, idx, r):
    p = os.path.join(d, "a.zarr")
    chunks = (rows_per_chunk(a),) + a.shape[1:]
    codec = zarr.codecs.BloscCodec(cname="zstd", clevel=2, shuffle=zarr.codecs.BloscShuffle.shuffle)

    def save():
        z = zarr.create_array(store=p, shape=a.shape, dtype=a.dtype, chunks=chunks, compressors=codec, overwrite=True)
        z[:] = a

    w, _ = best(save, r)
    z = zarr.open_array(p, mode="r")
    rd, back = best(lambda: z[:], r)
    assert np.array_equal(back, a)
    s = np.sort(idx)
    rr, got = best(lambda: z.oindex[s], r)
    assert np.array_equal(got, a[s])
    return dir_bytes(p), w, rd, rr


def run_h5py(kind):
    def run(d, a, idx, r):
        p = os.path.join(d, f"a-{kind}.h5")
        chunks = (rows_per_chunk(a),) + a.shape[1:]

        def save():
            with h5py.File(p, "w") as f:
                f.create_dataset("a", data=a, chunks=chunks, compression=kind, shuffle=True)

        w, _ = best(save, r)
        # A fresh handle before each timed read: HDF5 keeps decompressed chunks in a
        # per-handle cache, which would turn repeats into memory copies.
        h = {}

        def reopen():
            if "f" in h:
                h["f"].close()
            h["f"] = h5py.File(p, "r")
            h["ds"] = h["f"]["a"]

        rd, back = best(lambda: h["ds"][...], r, setup=reopen)
        assert np.array_equal(back, a)
        s = np.unique(idx)
        rr, got = best(lambda: h["ds"][s], r, setup=reopen)
        assert np.array_equal(got, a[s])
        h["f"].close()
        return dir_bytes(p), w, rd, rr

    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the row counts")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    libs = [("numpack (zstd 3, shuffle)", run_numpack), ("np.savez_compressed", run_savez)]
    if zarr is not None:
        libs.append((f"zarr {zarr.__version__} (Blosc zstd, shuffle)", run_zarr))
    if h5py is not None:
        libs.append((f"h5py {h5py.__version__} (gzip 4, shuffle)", run_h5py("gzip")))
        libs.append((f"h5py {h5py.__version__} (lzf, shuffle)", run_h5py("lzf")))
    print(f"best of {args.repeat}; numpy {np.version.version}; MB/s of raw data; files in the page cache\n")
    print("| dataset | library | ratio | write MB/s | read MB/s | 100 random rows, ms |")
    print("|---|---|---|---|---|---|")
    for title, a in datasets(args.scale, rng):
        idx = rng.integers(0, a.shape[0], 100)
        mb = a.nbytes / 1e6
        for name, fn in libs:
            d = tempfile.mkdtemp(prefix="npk-zbench-")
            try:
                stored, w, rd, rr = fn(d, a, idx, args.repeat)
            finally:
                shutil.rmtree(d, ignore_errors=True)
            print(f"| {title} ({mb:.0f} MB) | {name} | {a.nbytes / stored:.2f} | {mb / w:,.0f} | {mb / rd:,.0f} | {rr * 1e3:.3g} |",
                  flush=True)


if __name__ == "__main__":
    main()
