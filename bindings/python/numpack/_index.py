"""Row-index normalisation shared by getitem, replace and drop."""

import numbers
import operator

import numpy as np

INDEX_FORMS = "int, list, tuple, numpy.ndarray (integer or boolean) or slice"


def rows(key, n):
    """Normalise a row key against ``n`` logical rows.

    Returns ``(start, stop)`` for a contiguous run, else an int64 array of logical
    indices (negative ones are left for the library, which counts them from the end
    and reports out-of-range ones). A boolean sequence is a mask of length ``n``."""
    if type(key) is np.ndarray and key.dtype == np.int64 and key.ndim == 1:  # fast path
        return key if key.flags.c_contiguous else np.ascontiguousarray(key)
    if type(key) is int:
        return np.array([key], dtype=np.int64)
    if isinstance(key, slice):
        start, stop, step = key.indices(n)
        if step == 1:
            return (start, max(start, stop))
        return np.arange(start, stop, step, dtype=np.int64)
    if isinstance(key, (bool, np.bool_)):
        raise TypeError(f"a boolean is not a row index; use {INDEX_FORMS}")
    if isinstance(key, numbers.Integral) or (isinstance(key, np.generic) and np.issubdtype(type(key), np.integer)):
        return np.array([operator.index(key)], dtype=np.int64)
    if isinstance(key, np.ndarray) and key.ndim == 0 and np.issubdtype(key.dtype, np.integer):
        return np.array([int(key)], dtype=np.int64)
    if isinstance(key, (list, tuple, np.ndarray, range)):
        arr = np.asarray(key)
        if arr.ndim != 1:
            raise ValueError(f"row indexes must be one-dimensional, got shape {arr.shape}")
        if arr.dtype == np.bool_:
            if arr.shape[0] != n:
                raise ValueError(f"boolean mask has {arr.shape[0]} entries, the array has {n} rows")
            return np.flatnonzero(arr).astype(np.int64)
        if arr.size == 0:
            return np.empty(0, dtype=np.int64)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"row indexes must be integers, got dtype {arr.dtype}")
        if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise IndexError("row index out of range")
        return np.ascontiguousarray(arr, dtype=np.int64)
    raise TypeError(f"indexes must be {INDEX_FORMS}, not {type(key).__name__}")


def count(sel):
    return sel[1] - sel[0] if isinstance(sel, tuple) else sel.shape[0]
