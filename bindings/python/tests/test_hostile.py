"""Hostile sizes seen from Python: the lazy view never builds an ndarray over more bytes
than the library maps, and a store whose shape wraps is refused with a clear error."""

import struct

import numpy as np
import pytest

import numpack
from numpack._lazy import _View


def _fake_view(buf, shape, nbytes, rows=None):
    # A view whose layout is given by the test: what a lying or damaged library would say.
    v = object.__new__(_View)
    v._ptr = None
    v.writable = False
    v.dtype = buf.dtype
    v.shape = shape
    v.rows = shape[0] if rows is None else rows
    v.nbytes = nbytes
    v._addr = buf.ctypes.data
    v._map_addr = 0
    return v


def test_lazy_view_refuses_a_shape_larger_than_its_bytes():
    buf = np.arange(10, dtype="<f8")
    ok = _fake_view(buf, (10,), buf.nbytes)
    assert np.array_equal(ok.array(), buf)
    with pytest.raises(numpack.CorruptError, match="needs 800 bytes but it maps 80"):
        _fake_view(buf, (100,), buf.nbytes).array()
    # A product that would wrap in 64 bits is still compared exactly.
    with pytest.raises(numpack.CorruptError):
        _fake_view(buf, (1 << 61, 8), 0).array()
    with pytest.raises(numpack.CorruptError, match="live rows"):
        _fake_view(buf, (10,), buf.nbytes, rows=11).row_map()


def _patch_shape(meta, rows):
    # Catalogue layout: magic, version, total size (u64), count, then per array: name,
    # ndim, dims (u64 each), data file name, modify time, size (u64), ...
    at = 20
    (n,) = struct.unpack_from("<I", meta, at)
    at += 4 + n
    (ndim,) = struct.unpack_from("<I", meta, at)
    at += 4
    dims = list(struct.unpack_from(f"<{ndim}Q", meta, at))
    dims[0] = rows
    struct.pack_into(f"<{ndim}Q", meta, at, *dims)
    at += 8 * ndim
    (n,) = struct.unpack_from("<I", meta, at)
    at += 4 + n + 8
    size = 1
    for d in dims:
        size = size * d % (1 << 64)
    struct.pack_into("<Q", meta, at, size)  # the wrapped size, as a careless writer computes it
    struct.pack_into("<Q", meta, 8, size)


def test_a_store_whose_shape_wraps_is_refused(tmp_path):
    path = tmp_path / "s.npk"
    with numpack.NumPack(path, warn_no_context=False) as n:
        n.save({"a": np.zeros((4, 8), dtype=np.uint8)})
    meta = bytearray((path / "metadata.npkm").read_bytes())
    _patch_shape(meta, 1 << 61)  # 2^61 rows of 8 bytes: 2^64 bytes, which wraps to 0
    (path / "metadata.npkm").write_bytes(bytes(meta))
    (path / "numpack.wal").unlink()
    with pytest.raises(numpack.CorruptError, match="overflows"):
        with numpack.NumPack(path, warn_no_context=False) as n:
            n.load("a", lazy=True)
