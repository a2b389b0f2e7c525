"""Exact (brute-force) top-k similarity search, NumPack's ``numpack.vector_engine`` API,
over the library's kernels (``npk_vector_*``, ``npk_store_top_k``, ``npk_store_scores``).

Metrics (case-insensitive, with NumPack's aliases): ``dot``/``inner``, ``cosine``
(similarities: higher ranks first) and ``l2``, ``l2sq``, ``hamming``, ``jaccard``,
``kl``, ``js`` (distances: lower ranks first). Equal scores rank by lower index, NaN
scores last. Results are NumPy arrays the library filled in place (no copies).

Element types: float32, float64, float16, int8 and uint8 are searched as they are;
other integer types are converted to float64. When the query's type differs from the
candidates', the query is converted to the candidates' float type (int8/uint8
candidates need a query of the same type). ``hamming`` and ``jaccard`` work on packed
bits in uint8 vectors.
"""

import os
from typing import Literal

import numpy as np

import contextlib

from ._native import DTYPE_TO_CODE, ERRORS_BY_NAME, MACROS, check, ffi, lib
from ._store import ArrayNotFoundError, _name

__all__ = ["VectorEngine", "StreamingVectorEngine", "VectorSearch", "StreamingVectorSearch", "MetricType"]

MetricType = Literal[
    "dot", "dot_product", "dotproduct", "inner", "inner_product", "cosine", "cos",
    "cosine_similarity", "l2", "euclidean", "l2_distance", "l2sq", "l2_squared",
    "squared_euclidean", "hamming", "jaccard", "kl", "kl_divergence", "js", "js_divergence",
]

# The element types the kernels take as they are.
_NATIVE = {np.dtype(t) for t in ("float32", "float64", "float16", "int8", "uint8")}


def _metric(metric):
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a str, not {type(metric).__name__}")
    out = ffi.new("uint32_t *")
    status = lib.npk_metric_parse(metric.encode("utf-8"), out)
    if status:
        raise ValueError(f"Unknown metric: {metric}")
    return out[0]


def _k(k):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, not {type(k).__name__}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return int(k)


def _array(x, what):
    """A C-contiguous, native-order ndarray of a type the kernels take."""
    a = np.asarray(x)
    kind = a.dtype.kind
    if kind not in "fiu" or a.dtype.fields is not None:
        raise TypeError(f"{what}: dtype {a.dtype} is not supported (use float or integer vectors)")
    if a.dtype not in _NATIVE:
        a = a.astype(np.float64) if kind in "iu" or a.dtype.itemsize > 8 else a.astype(a.dtype.newbyteorder("="))
    return np.ascontiguousarray(a)


class _Vectors:
    """An ``npk_vectors`` descriptor and the array it points into (kept alive)."""

    __slots__ = ("array", "rows", "dim", "c")

    def __init__(self, a):
        self.array = a
        self.rows, self.dim = (1, a.shape[0]) if a.ndim == 1 else a.shape
        self.c = ffi.new("npk_vectors *", {
            "data": ffi.cast("void *", a.ctypes.data) if a.size else ffi.NULL,
            "dtype": DTYPE_TO_CODE[a.dtype.newbyteorder("<")],
            "rows": self.rows,
            "dim": self.dim,
        })


def _query(q, what="query", allow_2d=True):
    a = _array(q, what)
    if a.ndim == 1 or (a.ndim == 2 and allow_2d):
        return _Vectors(a)
    raise TypeError(f"{what} must be a 1-D vector{' or a 2-D array of vectors' if allow_2d else ''}, got {a.ndim}-D")


class CandidatesShapeError(ValueError, TypeError):
    """Candidates that are not a 2-D array: a ``ValueError``, and the ``TypeError``
    NumPack raises."""


class StoreNotFoundError(ERRORS_BY_NAME["STORE_NOT_FOUND"], ValueError):
    """The streaming engine's store path holds no store: a ``FileNotFoundError``, and
    the ``ValueError`` NumPack raises."""


@contextlib.contextmanager
def _upstream_errors():
    """Streaming calls: a missing array or store is also a ``ValueError``, as NumPack
    reports both."""
    try:
        yield
    except ERRORS_BY_NAME["NOT_FOUND"] as e:
        if isinstance(e, ValueError):
            raise
        raise ArrayNotFoundError(str(e), e.code) from None
    except ERRORS_BY_NAME["STORE_NOT_FOUND"] as e:
        if isinstance(e, ValueError):
            raise
        raise StoreNotFoundError(str(e), e.code) from None


def _candidates(c):
    a = _array(c, "candidates")
    if a.ndim != 2:
        raise CandidatesShapeError(f"candidates must be a 2-D array (N, dim), got shape {a.shape}")
    return _Vectors(a)


def _top_k(call, q, k):
    """Runs a top-k call into fresh arrays and returns them shaped (Q, kk)."""
    cap = max(q.rows * k, 1)
    idx = np.empty(cap, dtype=np.uint64)
    scores = np.empty(cap, dtype=np.float64)
    kk = ffi.new("uint64_t *")
    check(call(ffi.cast("uint64_t *", idx.ctypes.data), ffi.cast("double *", scores.ctypes.data), cap, kk))
    n = q.rows * kk[0]
    return idx[:n].reshape(q.rows, kk[0]), scores[:n].reshape(q.rows, kk[0])


class VectorEngine:
    """In-memory search: every method takes the candidates as an array."""

    def __init__(self):
        pass

    def capabilities(self):
        return ffi.string(lib.npk_vector_capabilities()).decode()

    def compute_metric(self, a, b, metric):
        """The metric between two 1-D vectors of equal length, as a Python float."""
        va, vb = _query(a, "a", allow_2d=False), _query(b, "b", allow_2d=False)
        if va.dim != vb.dim:
            raise ValueError(f"vectors have different lengths: {va.dim} and {vb.dim}")
        out = ffi.new("double *")
        check(lib.npk_vector_distance(_metric(metric), va.c, vb.c, out))
        return float(out[0])

    def batch_compute(self, query, candidates, metric):
        """Scores of a 1-D query against every candidate, ``(N,)`` float64, or of each row
        of a 2-D query, ``(M, N)`` float64."""
        m = _metric(metric)
        q, c = _query(query), _candidates(candidates)
        out = np.empty((q.rows, c.rows), dtype=np.float64)
        check(lib.npk_vector_scores(m, q.c, c.c, ffi.cast("double *", out.ctypes.data), out.size))
        return out[0] if q.array.ndim == 1 else out

    def top_k_search(self, query, candidates, metric, k):
        """``(indices uint64, scores float64)`` of the ``min(k, N)`` best candidates, best
        first. A 2-D query gives ``(Q, min(k, N))`` arrays."""
        m, k = _metric(metric), _k(k)
        q, c = _query(query), _candidates(candidates)
        idx, scores = _top_k(lambda i, s, n, kk: lib.npk_vector_top_k(m, q.c, c.c, k, i, s, n, kk), q, k)
        return (idx[0], scores[0]) if q.array.ndim == 1 else (idx, scores)

    def multi_query_top_k(self, queries, candidates, metric, k):
        """``(indices uint64, scores float64)``, flat as in NumPack 0.7: query 0's
        ``min(k, N)`` best, then query 1's, ... (``Q * min(k, N)`` entries; reshape with
        ``(Q, -1)``). NumPack pads to ``Q * k`` with index 0 / NaN when ``k > N``; this
        returns real results only."""
        m, k = _metric(metric), _k(k)
        a = _array(queries, "queries")
        q = _Vectors(a.reshape(1, -1) if a.ndim == 1 else a) if a.ndim <= 2 else _query(a, "queries")
        c = _candidates(candidates)
        idx, scores = _top_k(lambda i, s, n, kk: lib.npk_vector_top_k(m, q.c, c.c, k, i, s, n, kk), q, k)
        return idx.reshape(-1), scores.reshape(-1)

    def segmented_top_k_search(self, query, candidates, metric, global_offset, current_indices,
                               current_scores, k, is_similarity):
        """Merges the top-k of one batch of candidates (indices offset by
        ``global_offset``) into a running top-k; returns at most ``k`` entries, best first."""
        k = _k(k)
        idx, scores = self.top_k_search(query, candidates, metric, k)
        idx = np.concatenate([np.asarray(current_indices, dtype=np.uint64), idx + np.uint64(global_offset)])
        scores = np.concatenate([np.asarray(current_scores, dtype=np.float64), scores])
        key = -scores if is_similarity else scores
        order = np.lexsort((idx, key, np.isnan(scores)))[:k]
        return idx[order], scores[order]

    def cdist(self, a, b, metric):
        """The ``(M, N)`` matrix of the metric between the rows of ``a`` and of ``b``."""
        a2 = _array(a, "a")
        return self.batch_compute(a2.reshape(1, -1) if a2.ndim == 1 else a2, b, metric)


class StreamingVectorEngine:
    """Search over an array in a store, read through its memory mapping in blocks (never
    loaded whole). Deleted rows are skipped; indices are logical rows. ``npk_dir`` is a
    store path or an open ``NumPack``; arrays saved by a handle that is still open are
    visible (the store's log is read too)."""

    def __init__(self):
        self._handles = {}

    def capabilities(self):
        return ffi.string(lib.npk_vector_capabilities()).decode()

    def _store(self, npk_dir):
        from ._store import NumPack

        if isinstance(npk_dir, NumPack):
            return npk_dir._h()
        path = os.path.abspath(os.fspath(npk_dir))
        h = self._handles.get(path)
        if h is None:
            out = ffi.new("npk_store **")
            check(lib.npk_store_open(os.fsencode(path), MACROS["NPK_OPEN_READ_ONLY"], out))
            h = self._handles[path] = ffi.gc(out[0], lib.npk_store_close)
        return h

    def close(self):
        """Closes the read-only handles this engine opened."""
        for h in self._handles.values():
            ffi.release(h)  # runs npk_store_close now
        self._handles.clear()

    @staticmethod
    def _batch(batch_size):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")

    @_upstream_errors()
    def streaming_top_k_from_file(self, query, npk_dir, array_name, metric, k, batch_size=10000):
        """``(indices, scores)`` of the best ``min(k, N)`` live rows; ``(Q, kk)`` arrays for
        a 2-D query. ``batch_size`` is accepted for compatibility: the library picks its
        own blocks."""
        self._batch(batch_size)
        m, k = _metric(metric), _k(k)
        q, h, name = _query(query), self._store(npk_dir), _name(array_name)
        idx, scores = _top_k(lambda i, s, n, kk: lib.npk_store_top_k(h, name, m, q.c, k, i, s, n, kk), q, k)
        return (idx[0], scores[0]) if q.array.ndim == 1 else (idx, scores)

    @_upstream_errors()
    def streaming_batch_compute(self, query, npk_dir, array_name, metric, batch_size=10000):
        """Scores against every live row: ``(N,)`` or ``(M, N)`` float64."""
        self._batch(batch_size)
        m = _metric(metric)
        q, h, name = _query(query), self._store(npk_dir), _name(array_name)
        n_out = ffi.new("uint64_t *")
        while True:
            info = ffi.new("npk_array_info *")
            check(lib.npk_store_info(h, name, info))
            rows = info.shape[0] if info.ndim else 1
            out = np.empty((q.rows, rows), dtype=np.float64)
            status = lib.npk_store_scores(h, name, m, q.c, ffi.cast("double *", out.ctypes.data), out.size, n_out)
            if status == _BUFFER_SIZE:
                continue  # rows were appended meanwhile: size again
            check(status)
            out = out[:, :n_out[0]]
            return out[0] if q.array.ndim == 1 else out

    def streaming_multi_query_top_k(self, queries, npk_dir, array_name, metric, k, batch_size=10000):
        """``(indices, scores)`` flat, ``Q * min(k, N)`` entries, as ``multi_query_top_k``."""
        a = _array(queries, "queries")
        idx, scores = self.streaming_top_k_from_file(a.reshape(1, -1) if a.ndim == 1 else a, npk_dir,
                                                     array_name, metric, k, batch_size)
        return idx.reshape(-1), scores.reshape(-1)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


_BUFFER_SIZE = dict(ffi.typeof("enum npk_status").relements)["NPK_STATUS_BUFFER_SIZE"]

# Names used by NumPack releases before 0.5.
VectorSearch = VectorEngine
StreamingVectorSearch = StreamingVectorEngine
