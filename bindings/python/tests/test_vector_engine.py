"""numpack.vector_engine against a brute-force NumPy reference (float64, ties by index,
NaN last), in memory and over stored arrays with deleted rows."""

import numpy as np
import pytest

import numpack
from numpack.vector_engine import (MetricType, StreamingVectorEngine, StreamingVectorSearch,
                                   VectorEngine, VectorSearch)

SIMILARITIES = {"dot", "inner", "cosine"}
FLOAT_METRICS = ["dot", "inner", "cosine", "l2", "l2sq", "kl", "js"]
DTYPES = ["float32", "float64", "float16", "int8", "uint8"]


def ref_metric(metric, a, b):
    """The metric between two vectors, in float64, as the documentation defines it."""
    if metric in ("hamming", "jaccard"):
        x, y = a.astype(np.uint8), b.astype(np.uint8)
        if metric == "hamming":
            return float(np.unpackbits(x ^ y).sum())
        union = np.unpackbits(x | y).sum()
        return 0.0 if union == 0 else 1.0 - np.unpackbits(x & y).sum() / union
    a, b = a.astype(np.float64), b.astype(np.float64)
    if metric in ("dot", "inner"):
        return float(a @ b)
    if metric == "cosine":
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        return 0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb))
    if metric == "l2sq":
        return float(((a - b) ** 2).sum())
    if metric == "l2":
        return float(np.sqrt(((a - b) ** 2).sum()))

    def kl(p, q):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(p > 0, p * np.log(p / q), 0.0)
        return float(t.sum())

    if metric == "kl":
        return kl(a, b)
    m = (a + b) / 2
    return 0.5 * kl(a, m) + 0.5 * kl(b, m)


def ref_top_k(metric, q, cands, k):
    scores = np.array([ref_metric(metric, q, c) for c in cands], dtype=np.float64)
    idx = np.arange(len(cands), dtype=np.uint64)
    key = -scores if metric in SIMILARITIES else scores
    order = np.lexsort((idx, np.nan_to_num(key), np.isnan(scores)))[:k]
    return idx[order], scores[order], scores


def data(dtype, shape, seed, metric="dot"):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        lo, hi = (0, 255) if dt.kind == "u" else (-128, 127)
        if metric in ("kl", "js"):
            lo = 1
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dt)
    x = rng.uniform(0.05, 1.0, size=shape) if metric in ("kl", "js") else rng.standard_normal(shape)
    return x.astype(dt)


def assert_top_k(got_idx, got_scores, ref_idx, ref_scores, all_scores, rtol):
    assert got_idx.dtype == np.uint64 and got_scores.dtype == np.float64
    assert got_idx.shape == ref_idx.shape
    np.testing.assert_allclose(got_scores, ref_scores, rtol=rtol, atol=rtol)
    # Indices must match wherever the reference score is not within tolerance of another.
    for i, (gi, ri) in enumerate(zip(got_idx, ref_idx)):
        if gi != ri:
            assert abs(all_scores[gi] - all_scores[ri]) <= rtol * max(1.0, abs(all_scores[ri])), (i, gi, ri)


@pytest.fixture(scope="module")
def engine():
    return VectorEngine()


def tolerance(dtype):
    return {"float16": 2e-2, "float32": 1e-4}.get(dtype, 1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("metric", FLOAT_METRICS)
def test_every_metric_and_dtype_matches_the_reference(engine, metric, dtype):
    cands = data(dtype, (300, 24), 1, metric)
    queries = data(dtype, (5, 24), 2, metric)
    rtol = tolerance(dtype) if dtype != "float16" or metric not in ("kl", "js") else 5e-2
    for k in (0, 1, 7, 300, 305):
        for qi, q in enumerate(queries):
            idx, scores = engine.top_k_search(q, cands, metric, k)
            ri, rs, alls = ref_top_k(metric, q, cands, k)
            assert_top_k(idx, scores, ri, rs, alls, rtol)
        midx, mscores = engine.multi_query_top_k(queries, cands, metric, k)
        # flat, NumPack 0.7's layout; never padded past the 300 candidates
        assert midx.shape == (5 * min(k, 300),) and mscores.shape == midx.shape
        assert midx.dtype == np.uint64 and mscores.dtype == np.float64
        midx, mscores = midx.reshape(5, -1), mscores.reshape(5, -1)
        for qi, q in enumerate(queries):
            ri, rs, alls = ref_top_k(metric, q, cands, k)
            assert_top_k(midx[qi], mscores[qi], ri, rs, alls, rtol)
    m = engine.batch_compute(queries, cands, metric)
    assert m.shape == (5, 300) and m.dtype == np.float64
    ref = np.array([[ref_metric(metric, q, c) for c in cands] for q in queries])
    np.testing.assert_allclose(m, ref, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(engine.batch_compute(queries[0], cands, metric), ref[0], rtol=rtol, atol=rtol)
    assert engine.compute_metric(queries[0], cands[3], metric) == pytest.approx(ref[0, 3], rel=rtol, abs=rtol)


def test_many_queries_use_the_blocked_path_and_agree_with_single_queries(engine):
    cands = data("float32", (2000, 64), 3)
    queries = data("float32", (48, 64), 4)
    for metric in ("dot", "cosine", "l2sq", "l2"):
        midx, mscores = engine.multi_query_top_k(queries, cands, metric, 10)
        midx, mscores = midx.reshape(48, 10), mscores.reshape(48, 10)
        for qi, q in enumerate(queries):
            idx, scores = engine.top_k_search(q, cands, metric, 10)
            np.testing.assert_array_equal(midx[qi], idx)
            np.testing.assert_array_equal(mscores[qi], scores)


@pytest.mark.parametrize("metric", ["hamming", "jaccard"])
def test_bit_metrics_on_packed_uint8(engine, metric):
    cands = data("uint8", (200, 16), 5)
    q = data("uint8", (16,), 6)
    idx, scores = engine.top_k_search(q, cands, metric, 12)
    ri, rs, alls = ref_top_k(metric, q, cands, 12)
    assert_top_k(idx, scores, ri, rs, alls, 1e-9)
    with pytest.raises(TypeError, match="uint8"):
        engine.top_k_search(q.astype(np.float32), cands.astype(np.float32), metric, 3)


def test_ties_rank_by_index_and_nan_last(engine):
    cands = np.array([[1, 0], [0, 1], [1, 0], [np.nan, 0], [1, 0]], dtype=np.float32)
    idx, scores = engine.top_k_search(np.array([1, 0], np.float32), cands, "dot", 5)
    np.testing.assert_array_equal(idx, [0, 2, 4, 1, 3])
    assert np.isnan(scores[-1])
    idx, _ = engine.top_k_search(np.array([1, 0], np.float32), cands, "l2sq", 5)
    np.testing.assert_array_equal(idx, [0, 2, 4, 1, 3])


def test_edge_cases(engine):
    cands = data("float32", (10, 4), 7)
    q = data("float32", (4,), 8)
    idx, scores = engine.top_k_search(q, cands, "dot", 0)
    assert idx.shape == (0,) and scores.shape == (0,)
    idx, _ = engine.top_k_search(q, cands, "dot", 50)
    assert sorted(idx.tolist()) == list(range(10))
    empty = np.zeros((0, 4), np.float32)
    idx, scores = engine.top_k_search(q, empty, "cosine", 5)
    assert idx.shape == (0,)
    assert engine.batch_compute(q, empty, "l2").shape == (0,)
    assert engine.compute_metric(np.zeros(4, np.float32), q, "cosine") == 0.0
    midx, mscores = engine.multi_query_top_k(np.stack([q, q]), cands, "l2", 50)
    # k > N: each query gives its N real results, no index-0 / NaN padding (NumPack pads)
    assert midx.shape == (20,) and not np.isnan(mscores).any()
    assert sorted(midx[:10].tolist()) == list(range(10)) and sorted(midx[10:].tolist()) == list(range(10))


def test_bad_input_raises_clearly(engine):
    cands = data("float32", (10, 4), 7)
    with pytest.raises(ValueError, match="Unknown metric: manhattan"):
        engine.top_k_search(cands[0], cands, "manhattan", 3)
    with pytest.raises(ValueError):
        engine.top_k_search(np.ones(5, np.float32), cands, "dot", 3)  # dimension mismatch
    with pytest.raises(ValueError):
        engine.compute_metric(np.ones(5), np.ones(4), "dot")
    with pytest.raises(TypeError):
        engine.top_k_search(np.ones(4, bool), cands, "dot", 3)
    with pytest.raises(TypeError):
        engine.batch_compute(np.ones((2, 2, 4), np.float32), cands, "dot")
    with pytest.raises(ValueError):
        engine.top_k_search(cands[0], cands, "dot", -1)
    with pytest.raises(TypeError):
        engine.top_k_search(cands[0], cands, "dot", 2.5)
    with pytest.raises(ValueError):
        engine.top_k_search(cands[0], cands[0], "dot", 2)  # candidates must be 2-D


def test_mixed_types_and_metric_names(engine):
    cands = data("float32", (50, 8), 9)
    q64 = data("float64", (8,), 10)
    idx, scores = engine.top_k_search(q64, cands, "COSINE_similarity", 5)
    ri, rs, alls = ref_top_k("cosine", q64.astype(np.float32), cands, 5)
    assert_top_k(idx, scores, ri, rs, alls, 1e-4)
    ints = data("int32", (50, 8), 11)  # converted to float64
    idx, _ = engine.top_k_search(ints[0], ints, "Euclidean", 3)
    assert idx[0] == 0
    with pytest.raises(TypeError):  # int8 candidates need an int8 query
        engine.top_k_search(np.ones(8, np.float32), data("int8", (5, 8), 1), "dot", 2)
    assert "kernels" in engine.capabilities()
    assert VectorSearch is VectorEngine and StreamingVectorSearch is StreamingVectorEngine
    assert "l2sq" in MetricType.__args__


def test_segmented_merge(engine):
    cands = data("float32", (100, 6), 12)
    q = data("float32", (6,), 13)
    run_i, run_s = np.empty(0, np.uint64), np.empty(0, np.float64)
    for start in range(0, 100, 30):
        run_i, run_s = engine.segmented_top_k_search(q, cands[start:start + 30], "l2", start, run_i, run_s, 7, False)
    idx, scores = engine.top_k_search(q, cands, "l2", 7)
    np.testing.assert_array_equal(run_i, idx)
    np.testing.assert_allclose(run_s, scores)


def test_store_backed_search_uses_logical_rows(tmp_path, engine):
    path = tmp_path / "emb.npk"
    full = data("float32", (400, 16), 14)
    with numpack.NumPack(path, drop_if_exists=True) as npk:
        npk.save({"emb": full, "flat": full[:, 0].copy(), "half": full.astype(np.float16)})
        npk.drop("emb", [3, 50, 399])
        npk.append({"emb": full[:20] * 2})
        live = npk.load("emb")
        queries = data("float32", (3, 16), 15)
        se = StreamingVectorEngine()
        for metric in ("dot", "cosine", "l2sq", "l2"):
            # The store is still open: its unsynced changes are visible.
            idx, scores = se.streaming_top_k_from_file(queries[0], str(path), "emb", metric, 10)
            ridx, rscores = engine.top_k_search(queries[0], live, metric, 10)
            np.testing.assert_array_equal(idx, ridx)
            np.testing.assert_allclose(scores, rscores, rtol=1e-6)
            midx, mscores = se.streaming_multi_query_top_k(queries, npk, "emb", metric, 10)
            assert midx.shape == (30,) and mscores.shape == (30,)
            eidx, escores = engine.multi_query_top_k(queries, live, metric, 10)
            np.testing.assert_array_equal(midx, eidx)
            s = se.streaming_batch_compute(queries, path, "emb", metric)
            np.testing.assert_allclose(s, engine.batch_compute(queries, live, metric), rtol=1e-6)
        idx, _ = se.streaming_top_k_from_file(np.array([0.5], np.float32), path, "flat", "l2", 4)
        ridx, _ = engine.top_k_search(np.array([0.5], np.float32), full[:, :1], "l2", 4)
        np.testing.assert_array_equal(idx, ridx)
        # A float32 query against float16 rows is converted to float16.
        idx, _ = se.streaming_top_k_from_file(queries[0], path, "half", "dot", 5)
        ridx, _ = engine.top_k_search(queries[0].astype(np.float16), full.astype(np.float16), "dot", 5)
        np.testing.assert_array_equal(idx, ridx)
        idx, _ = se.streaming_top_k_from_file(queries[0], path, "emb", "dot", 0)
        assert idx.shape == (0,)
        with pytest.raises(KeyError):
            se.streaming_top_k_from_file(queries[0], path, "missing", "dot", 3)
        with pytest.raises(ValueError):
            se.streaming_top_k_from_file(np.ones(5, np.float32), path, "emb", "dot", 3)
        with pytest.raises(ValueError):
            se.streaming_top_k_from_file(queries[0], path, "emb", "dot", 3, batch_size=0)
        se.close()
    with pytest.raises(FileNotFoundError):
        StreamingVectorEngine().streaming_top_k_from_file(queries[0], tmp_path / "nowhere", "emb", "dot", 3)
