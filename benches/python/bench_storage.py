"""Storage benchmark: numpack (Python package) against its peers, on the operations of
the storage table in ANCHORS.md: 1,000,000 x 10 float32, files in the page cache, best
of N repeats with timeit, file open excluded. Prints a markdown table in milliseconds.

    python benches/python/bench_storage.py [--rows 1000000] [--repeat 5] [--rounds 3] [--png chart.png]

The libraries take turns: each round runs every library's operations once (best of
--repeat), starting one library further on each time, and a library's figure is its
best over the rounds, so a noisy moment of the machine, or the state another library
leaves behind, does not land on one library only.

Peers that are not installed (h5py, zarr, npy-append-array) are left out. ``--png``
also draws the table as a chart (needs matplotlib, which is not a dependency of the
package: install it into the benchmark's environment).

Saving an array has two rows: over an array of the same name (after one untimed save;
NPY truncates the old file, numpack writes a new file and replaces the old one) and
under a new name each time (nothing to replace; the previous one is removed untimed).

"delete 100 scattered rows" is measured as in the Rust benchmark (benches/storage.rs):
repeated deletes from an array that already has deleted rows. The first delete after
a save also creates the array's deletion bitmap file; that case has its own row.
"""

import argparse
import os
import shutil
import tempfile
import timeit

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
try:
    from npy_append_array import NpyAppendArray
except ImportError:  # pragma: no cover
    NpyAppendArray = None

OPS = [
    "save (whole array), replacing it", "save (whole array) as a new array", "full load (new ndarray)", "lazy load (open a view)",
    "random rows, 100", "random rows, 1,000", "random rows, 10,000",
    "slice of 10,000 rows (copy)", "stream all rows in batches of 10,000",
    "replace 100 contiguous rows", "replace 100 scattered rows", "append 100 rows",
    "delete 100 scattered rows", "delete 100 scattered rows, first after a save",
    "100 x (load, edit 10 rows, save)", "same, in batch mode",
    "same, in writable batch mode",
]


def best(fn, repeat, number=1, setup=None):
    times = []
    for _ in range(repeat):
        if setup:
            setup()
        times.append(timeit.timeit(fn, number=number) / number)
    return min(times) * 1e3


class Fresh:
    """Saves under a new name each time; ``clear`` (untimed) removes the previous one,
    so that every timed save writes a new array and none replaces an existing one."""

    def __init__(self, save, remove):
        self._save, self._remove, self._n, self._last = save, remove, 0, None

    def save(self):
        self._n += 1
        self._last = f"new{self._n}"
        self._save(self._last)

    def clear(self):
        if self._last is not None:
            self._remove(self._last)
            self._last = None


def bench_numpack(d, a, idx, r):
    out = {}
    path = os.path.join(d, "np.npk")
    npk = numpack.NumPack(path, drop_if_exists=True)
    npk.open()
    npk.save({"a": a})
    out[OPS[0]] = best(lambda: npk.save({"a": a}), r)
    fresh = Fresh(lambda name: npk.save({name: a}), npk.drop)
    out[OPS[1]] = best(fresh.save, r, setup=fresh.clear)
    out[OPS[2]] = best(lambda: npk.load("a"), r)
    out[OPS[3]] = best(lambda: npk.load("a", lazy=True), r, number=1000)
    for k, op in zip((100, 1000, 10000), OPS[4:7]):
        out[op] = best(lambda: npk.getitem("a", idx[k]), r, number=20)
    out[OPS[7]] = best(lambda: npk.getitem("a", slice(5000, 15000)), r, number=20)

    def stream():
        for _ in npk.stream_load("a", 10000):
            pass

    out[OPS[8]] = best(stream, r)
    rows = a[:100].copy()
    out[OPS[9]] = best(lambda: npk.replace({"a": rows}, slice(1000, 1100)), r, number=20)
    out[OPS[10]] = best(lambda: npk.replace({"a": rows}, idx[100]), r, number=20)
    out[OPS[11]] = best(lambda: npk.append({"a": rows}), r, number=20)

    def fresh_with_bitmap():
        npk.save({"a": a})
        npk.drop("a", [0])

    out[OPS[12]] = best(lambda: npk.drop("a", idx[100]), r, number=20, setup=fresh_with_bitmap)
    out[OPS[13]] = best(lambda: npk.drop("a", idx[100]), r, setup=lambda: npk.save({"a": a}))
    npk.save({"a": a})

    run = [0]  # new values on every run: batch mode writes only rows that changed

    def edit_loop():
        run[0] += 1
        for i in range(100):
            x = npk.load("a")
            x[i * 10:(i + 1) * 10] = i + 1000 * run[0]
            npk.save({"a": x})

    out[OPS[14]] = best(edit_loop, min(r, 2))

    def batch_loop():
        with npk.batch_mode():
            edit_loop()

    out[OPS[15]] = best(batch_loop, r)

    def writable_loop():
        run[0] += 1
        with npk.writable_batch_mode() as wb:
            for i in range(100):
                x = wb.load("a")
                x[i * 10:(i + 1) * 10] = i + 1000 * run[0]

    out[OPS[16]] = best(writable_loop, r)
    npk.close()
    return out


def bench_npy(d, a, idx, r):
    out = {}
    f = os.path.join(d, "a.npy")
    np.save(f, a)
    out[OPS[0]] = best(lambda: np.save(f, a), r)
    fresh = Fresh(lambda name: np.save(os.path.join(d, name + ".npy"), a), lambda name: os.remove(os.path.join(d, name + ".npy")))
    out[OPS[1]] = best(fresh.save, r, setup=fresh.clear)
    out[OPS[2]] = best(lambda: np.load(f), r)
    out[OPS[3]] = best(lambda: np.load(f, mmap_mode="r"), r, number=100)
    mm = np.load(f, mmap_mode="r")
    for k, op in zip((100, 1000, 10000), OPS[4:7]):
        out[op] = best(lambda: mm[idx[k]], r, number=20)
    out[OPS[7]] = best(lambda: np.array(mm[5000:15000]), r, number=20)

    def stream():
        for i in range(0, len(mm), 10000):
            np.array(mm[i:i + 10000])

    out[OPS[8]] = best(stream, r)
    rows = a[:100].copy()

    def rewrite(change):
        x = np.load(f)
        x = change(x)
        np.save(f, x)

    def rep_contig(x):
        x[1000:1100] = rows
        return x

    def rep_scat(x):
        x[idx[100]] = rows
        return x

    out[OPS[9]] = best(lambda: rewrite(rep_contig), r)
    out[OPS[10]] = best(lambda: rewrite(rep_scat), r)
    out[OPS[11]] = best(lambda: rewrite(lambda x: np.concatenate([x, rows])), r, setup=lambda: np.save(f, a))
    out[OPS[12]] = best(lambda: rewrite(lambda x: np.delete(x, idx[100], axis=0)), r, setup=lambda: np.save(f, a))
    out[OPS[13]] = out[OPS[12]]  # the same whole-file rewrite
    return out


def bench_memmap(d, a, idx, r):
    out = {}
    f = os.path.join(d, "m.npy")
    np.save(f, a)
    out[OPS[0]] = best(lambda: np.save(f, a), r)
    out[OPS[2]] = best(lambda: np.array(np.load(f, mmap_mode="r")), r)
    out[OPS[3]] = best(lambda: np.load(f, mmap_mode="r"), r, number=100)
    mm = np.load(f, mmap_mode="r+")
    for k, op in zip((100, 1000, 10000), OPS[4:7]):
        out[op] = best(lambda: mm[idx[k]], r, number=20)
    out[OPS[7]] = best(lambda: np.array(mm[5000:15000]), r, number=20)

    def stream():
        for i in range(0, len(mm), 10000):
            np.array(mm[i:i + 10000])

    out[OPS[8]] = best(stream, r)
    rows = a[:100].copy()

    def rep(sel):
        m = np.load(f, mmap_mode="r+")
        m[sel] = rows
        m.flush()

    out[OPS[9]] = best(lambda: rep(slice(1000, 1100)), r, number=5)
    out[OPS[10]] = best(lambda: rep(idx[100]), r, number=5)
    del mm
    if NpyAppendArray is not None:
        def app():
            with NpyAppendArray(f) as w:
                w.append(rows)

        out[OPS[11]] = best(app, r, number=5)
    return out


def bench_h5py(d, a, idx, r):
    out = {}
    f = h5py.File(os.path.join(d, "a.h5"), "w")

    def save():
        if "a" in f:
            del f["a"]
        f.create_dataset("a", data=a, maxshape=(None, a.shape[1]), chunks=(10000, a.shape[1]))

    save()
    out[OPS[0]] = best(save, r)
    fresh = Fresh(lambda name: f.create_dataset(name, data=a, maxshape=(None, a.shape[1]), chunks=(10000, a.shape[1])),
                  f.__delitem__)
    out[OPS[1]] = best(fresh.save, r, setup=fresh.clear)
    fresh.clear()
    ds = f["a"]
    out[OPS[2]] = best(lambda: ds[...], r)
    out[OPS[3]] = best(lambda: f["a"], r, number=100)
    for k, op in zip((100, 1000, 10000), OPS[4:7]):
        s = np.unique(idx[k])
        out[op] = best(lambda: ds[s], r)
    out[OPS[7]] = best(lambda: ds[5000:15000], r, number=5)

    def stream():
        for i in range(0, ds.shape[0], 10000):
            ds[i:i + 10000]

    out[OPS[8]] = best(stream, r)
    rows = a[:100].copy()
    out[OPS[9]] = best(lambda: ds.__setitem__(slice(1000, 1100), rows), r, number=5)
    s = np.unique(idx[100])
    out[OPS[10]] = best(lambda: ds.__setitem__(s, rows[: len(s)]), r)

    def app():
        n = ds.shape[0]
        ds.resize(n + 100, axis=0)
        ds[n:] = rows

    out[OPS[11]] = best(app, r, number=5)
    f.close()
    return out


def bench_zarr(d, a, idx, r):
    out = {}
    p = os.path.join(d, "a.zarr")

    def save():
        z = zarr.create_array(store=p, shape=a.shape, dtype=a.dtype, chunks=(10000, a.shape[1]), overwrite=True)
        z[:] = a

    save()
    out[OPS[0]] = best(save, r)

    def save_new(name):
        zarr.create_array(store=p + name, shape=a.shape, dtype=a.dtype, chunks=(10000, a.shape[1]))[:] = a

    fresh = Fresh(save_new, lambda name: shutil.rmtree(p + name))
    out[OPS[1]] = best(fresh.save, r, setup=fresh.clear)
    z = zarr.open_array(p, mode="r+")
    out[OPS[2]] = best(lambda: z[:], r)
    out[OPS[3]] = best(lambda: zarr.open_array(p, mode="r"), r, number=10)
    for k, op in zip((100, 1000, 10000), OPS[4:7]):
        out[op] = best(lambda: z.oindex[idx[k]], r)
    out[OPS[7]] = best(lambda: z[5000:15000], r)

    def stream():
        for i in range(0, z.shape[0], 10000):
            z[i:i + 10000]

    out[OPS[8]] = best(stream, r)
    rows = a[:100].copy()
    out[OPS[9]] = best(lambda: z.__setitem__(slice(1000, 1100), rows), r)
    s = np.unique(idx[100])
    out[OPS[10]] = best(lambda: z.oindex.__setitem__(s, rows[: len(s)]), r)
    out[OPS[11]] = best(lambda: z.append(rows), r)
    return out


def chart(results, path, title):
    """Horizontal bars per operation: each library's time over the fastest peer's
    (numpack excluded from "peer"), log scale. Operations without a peer are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    peers = [n for n in names if n != "numpack"]
    ops = [op for op in OPS if any(results[p].get(op) is not None for p in peers)]
    fig, ax = plt.subplots(figsize=(10, 0.13 * len(ops) * len(names) + 1.5))
    height = 0.8 / len(names)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, name in enumerate(names):
        ys, xs = [], []
        for i, op in enumerate(ops):
            best_peer = min(results[p][op] for p in peers if results[p].get(op) is not None)
            v = results[name].get(op)
            if v is not None:
                ys.append(i + (j - (len(names) - 1) / 2) * height)
                xs.append(v / best_peer)
        ax.barh(ys, xs, height=height, label=name, color=colors[j % len(colors)],
                edgecolor="black" if name == "numpack" else "none", linewidth=0.6)
        if name == "numpack":
            for y, x in zip(ys, xs):
                ax.annotate(f"{x:.2g}x", (x, y), xytext=(3, 0), textcoords="offset points",
                            va="center", fontsize=7)
    ax.set_xscale("log")
    ax.axvline(1.0, color="gray", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(ops)))
    ax.set_yticklabels(ops, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("time / fastest peer's time (log scale; < 1: faster than every peer)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", which="both", alpha=0.3)
    alone = [f"{op}: {results['numpack'][op]:.3g} ms" for op in OPS
             if op not in ops and results.get("numpack", {}).get(op) is not None]
    if alone:
        fig.text(0.01, 0.005, "numpack only (no peer): " + "; ".join(alone), fontsize=7, va="bottom")
    fig.tight_layout(rect=(0, 0.025 if alone else 0, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="turns each library takes (interleaved)")
    ap.add_argument("--png", help="also write a chart of the results (needs matplotlib)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((args.rows, 10)).astype(np.float32)
    idx = {k: rng.integers(0, args.rows - 20000, k) for k in (100, 1000, 10000)}
    benches = [("numpack", bench_numpack), ("NPY", bench_npy), ("NPY memmap / npy-append-array", bench_memmap)]
    if h5py is not None:
        benches.append(("h5py", bench_h5py))
    if zarr is not None:
        benches.append(("zarr " + zarr.__version__.split(".")[0], bench_zarr))
    results = {name: {} for name, _ in benches}
    for k in range(args.rounds):
        # Each round starts with the next library, so none always follows the same one.
        for name, fn in benches[k % len(benches):] + benches[:k % len(benches)]:
            d = tempfile.mkdtemp(prefix="npk-bench-")
            try:
                for op, t in fn(d, a, idx, args.repeat).items():
                    results[name][op] = min(t, results[name].get(op, t))
            finally:
                shutil.rmtree(d, ignore_errors=True)
    mb = a.nbytes / 1e6
    header = f"{args.rows:,} x 10 float32 ({mb:.1f} MB), best of {args.rounds} rounds x {args.repeat}, ms; numpy {np.version.version}"
    print(header + "\n")
    print("| operation | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))

    def fmt(v):
        if v is None:
            return "—"
        return f"{v:.3g}" if v < 100 else f"{v:.0f}"

    for op in OPS:
        print(f"| {op} | " + " | ".join(fmt(results[n].get(op)) for n in results) + " |")
    if args.png:
        chart(results, args.png, "numpack (Python) vs peers: " + header)


if __name__ == "__main__":
    main()
