"""Vector search benchmark: numpack's exact top-k (in memory and over a stored array)
beside NumPy (BLAS matmul + argpartition) and faiss-cpu IndexFlat, in one run, on the
cases of ANCHORS.md: float32, 128 dimensions, top-10, metrics dot / l2sq / cosine,
1 query x 1,000,000 vectors and 100 queries x 200,000 vectors. Best of N, milliseconds.

    python benches/python/bench_vector.py [--n1 1000000] [--n100 200000] [--repeat 5]

faiss is left out when it is not installed (``pip install faiss-cpu``). Every method's
top-10 indices are checked against NumPy's (ties aside) before timing.
"""

import argparse
import os
import tempfile
import timeit

import numpy as np

import numpack
from numpack.vector_engine import StreamingVectorEngine, VectorEngine

try:
    import faiss
except ImportError:  # pragma: no cover
    faiss = None

K = 10
DIM = 128


def best(fn, repeat):
    fn()  # warm up (page cache, thread pools)
    return min(timeit.repeat(fn, number=1, repeat=repeat)) * 1e3


def numpy_top_k(q, x, metric, xnorm2=None, xnorm=None):
    """BLAS scores, then argpartition + sort of the k best per query."""
    s = q @ x.T
    if metric == "l2sq":
        s = (q * q).sum(1, keepdims=True) + xnorm2[None, :] - 2 * s
        part = np.argpartition(s, K, axis=1)[:, :K]
        order = np.take_along_axis(s, part, 1).argsort(1)
    else:
        if metric == "cosine":
            s = s / (np.linalg.norm(q, axis=1, keepdims=True) * xnorm[None, :])
        part = np.argpartition(-s, K, axis=1)[:, :K]
        order = (-np.take_along_axis(s, part, 1)).argsort(1)
    return np.take_along_axis(part, order, 1)


def faiss_index(x, metric):
    if metric == "l2sq":
        index = faiss.IndexFlatL2(DIM)
        index.add(x)
    else:
        index = faiss.IndexFlatIP(DIM)
        if metric == "cosine":
            x = x / np.linalg.norm(x, axis=1, keepdims=True)  # faiss's cosine: normalise first
        index.add(x)
    return index


def faiss_search(index, q, metric):
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return index.search(q, K)[1]


def agree(a, b):
    """Share of top-k entries two methods agree on (1.0 = identical sets)."""
    return np.mean([len(set(r1.tolist()) & set(r2.tolist())) / K for r1, r2 in zip(a, b)])


def run_case(label, nq, n, repeat, tmp):
    rng = np.random.default_rng(42)
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    q = rng.standard_normal((nq, DIM), dtype=np.float32)
    xnorm2 = (x * x).sum(1)
    xnorm = np.sqrt(xnorm2)
    path = os.path.join(tmp, f"{label}.npk")
    with numpack.NumPack(path, drop_if_exists=True) as npk:
        npk.save({"x": x})
    store = numpack.NumPack(path)
    store.open()
    eng, seng = VectorEngine(), StreamingVectorEngine()
    rows = []
    for metric in ("dot", "l2sq", "cosine"):
        ref = numpy_top_k(q, x, metric, xnorm2, xnorm)
        # flat results (NumPack 0.7's layout): one row per query
        ours = eng.multi_query_top_k(q, x, metric, K)[0].reshape(nq, -1)
        stored = seng.streaming_multi_query_top_k(q, store, "x", metric, K)[0].reshape(nq, -1)
        checks = {"numpack": agree(ours, ref), "numpack store": agree(stored, ref)}
        t = {
            "NumPy": best(lambda: numpy_top_k(q, x, metric, xnorm2, xnorm), repeat),
            "numpack": best(lambda: eng.multi_query_top_k(q, x, metric, K), repeat),
            "numpack store": best(lambda: seng.streaming_multi_query_top_k(q, store, "x", metric, K), repeat),
        }
        if faiss is not None:
            index = faiss_index(x, metric)
            checks["faiss"] = agree(faiss_search(index, q, metric), ref)
            t["faiss"] = best(lambda: faiss_search(index, q, metric), repeat)
        for name, share in checks.items():
            assert share > 0.99, f"{label} {metric}: {name} agrees with NumPy on only {share:.3f} of the top-{K}"
        rows.append((f"{label}, {metric}", t))
    store.close()
    seng.close()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n1", type=int, default=1_000_000, help="vectors for the single-query case")
    ap.add_argument("--n100", type=int, default=200_000, help="vectors for the 100-query case")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"numpack kernels: {VectorEngine().capabilities()}; faiss: {faiss.__version__ if faiss else 'not installed'}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = run_case(f"1 x {args.n1:,}", 1, args.n1, args.repeat, tmp)
        rows += run_case(f"100 x {args.n100:,}", 100, args.n100, args.repeat, tmp)
    peers = ["NumPy"] + (["faiss"] if faiss is not None else [])
    cols = peers + ["numpack", "numpack store"]
    print(f"\n| case (float32, {DIM} dims, top-{K}) | " + " | ".join(cols) + " | numpack / fastest peer |")
    print("|---" * (len(cols) + 2) + "|")
    for label, t in rows:
        fastest = min(t[p] for p in peers)
        cells = " | ".join(f"{t[c]:.2f}" for c in cols)
        print(f"| {label} | {cells} | {t['numpack'] / fastest:.2f}x |")


if __name__ == "__main__":
    main()
