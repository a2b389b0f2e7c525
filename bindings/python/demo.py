"""The demo's Python half, with this repository's package: open the store the C demo
wrote, read it every way, search it, then work on a copy (package round trip, appends,
deletes, replaces, a compressed array, .npy export, check). The C demo's store itself is
left as it was, for NumPack 0.4.5 to read next. Every result is checked.

Usage: python demo.py <store-dir> <scratch-dir>"""
import os
import sys
import time

import numpy as np

import numpack
from numpack import NumPack
from numpack.npy import NpyAppendArray
from numpack.vector_engine import StreamingVectorEngine

ROWS, DIM, APPEND = 200_000, 32, 20_000
store, scratch = sys.argv[1], sys.argv[2]
live = ROWS + APPEND - ROWS // 20


def timed(label, fn):
    t = time.perf_counter()
    out = fn()
    print(f"  {label:<44}{(time.perf_counter() - t) * 1e3:9.2f} ms")
    return out


print(f"numpack {numpack.__version__} (Python, cffi over the C ABI)")
with NumPack(store) as npk:
    assert sorted(npk.get_member_list()) == ["embeddings", "labels"]
    emb = timed("load embeddings (eager)", lambda: npk.load("embeddings"))
    lazy = timed("load embeddings (lazy, a mapped view)", lambda: npk.load("embeddings", lazy=True))
    assert emb.shape == (live, DIM) and lazy.shape == emb.shape
    idx = np.random.default_rng(1).integers(0, live, 1000)
    rows = timed("getitem 1,000 random rows", lambda: npk.getitem("embeddings", idx))
    assert np.array_equal(rows, emb[idx]) and np.array_equal(np.asarray(lazy[idx]), rows)
    total = sum(b.shape[0] for b in npk.stream_load("embeddings", 10_000))
    assert total == live

    # Exact search over the stored array: each of a few stored rows finds itself first.
    engine = StreamingVectorEngine()
    for r in (0, 12_345, live - 1):
        got, scores = engine.streaming_top_k_from_file(emb[r], store, "embeddings", "l2sq", 3)
        assert got[0] == r and scores[0] == 0, (r, got, scores)
    engine.close()
    print("  top-3 search over the store (l2sq): each query row finds itself first")

# A package of the store, unpacked into a copy to change.
pkg = os.path.join(scratch, "embeddings.npkg")
timed("pack the store into one .npkg file", lambda: numpack.pack(store, pkg))
copy = os.path.join(scratch, "copy.npk")
timed("unpack it (CRC-checked)", lambda: numpack.unpack(pkg, copy))

with NumPack(copy) as npk:
    more = np.arange(100 * DIM, dtype=np.float32).reshape(100, DIM)
    timed("append 100 rows", lambda: npk.append({"embeddings": more}))
    timed("replace 100 scattered rows", lambda: npk.replace({"embeddings": more}, idx[:100] % live))
    timed("drop 100 rows", lambda: npk.drop("embeddings", list(range(0, 1000, 10))))
    assert npk.get_shape("embeddings") == (live, DIM)
    assert np.array_equal(npk.getitem("embeddings", [-1]), more[-1:])
    timed("save a compressed copy (zstd)", lambda: npk.save({"zemb": emb}, compression="zstd"))
    info = npk.get_compression("zemb")
    assert np.array_equal(npk.getitem("zemb", idx), rows)
    print(f"  compressed: {info['chunks']} chunks, ratio {info['ratio']:.2f}, random rows read back equal")
out_npy = os.path.join(scratch, "labels.npy")
with NumPack(copy) as npk:
    labels = npk.load("labels")
np.save(out_npy, labels)
with NpyAppendArray(out_npy) as f:  # grows NumPy's own file in place
    f.append(labels[:10])
assert np.array_equal(np.load(out_npy), np.concatenate([labels, labels[:10]]))
problems = numpack.check(copy)
assert problems == [], problems
print(f"Python: all results checked; the copy has {live} live rows, a compressed array, and no problems")
