"""Compressed arrays: ``save(..., compression=...)``, ``get_compression``, and every
read and write path on a compressed array."""

import os

import numpy as np
import pytest

import numpack
from numpack._native import ERRORS_BY_NAME

from conftest import DTYPES, sample

Corrupt = ERRORS_BY_NAME["CORRUPT"]
Unsupported = ERRORS_BY_NAME["UNSUPPORTED"]


def smooth(rows, cols=8, dtype=np.float32):
    """Compressible rows: smooth signals quantised to a resolution."""
    t = np.arange(rows, dtype=np.float64)[:, None]
    k = np.arange(1, cols + 1, dtype=np.float64)[None, :]
    return (np.round(np.sin(t * k / 500.0) * 1000) / 1000).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips(npk, path, dtype):
    a = sample(dtype, (40_000, 3), seed=1)
    npk.save({"a": a}, compression="zstd")
    assert os.path.exists(path / "data_a.npkz") and not os.path.exists(path / "data_a.npkd")
    b = npk.load("a")
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(b, a)
    c = npk.get_compression("a")
    assert c["codec"] == "zstd" and c["level"] == 3 and c["raw_bytes"] == a.nbytes
    assert c["chunks"] == -(-a.shape[0] // c["rows_per_chunk"])


def test_levels_ratio_and_plain_arrays(npk):
    a = smooth(100_000)
    npk.save({"fast": a}, compression=("zstd", 1))
    npk.save({"small": a}, compression=("zstd", 19))
    npk.save({"plain": a})
    assert npk.get_compression("plain") is None
    fast, small = npk.get_compression("fast"), npk.get_compression("small")
    assert (fast["level"], small["level"]) == (1, 19)
    assert small["ratio"] > 1.5 and small["stored_bytes"] <= fast["stored_bytes"]
    np.testing.assert_array_equal(npk.load("small"), npk.load("plain"))
    with pytest.raises(KeyError):
        npk.get_compression("nope")


@pytest.mark.parametrize("bad", ["gzip", ("zstd", 0), ("zstd", 23), ("zstd",), ("zstd", "3"), 3])
def test_bad_compression_arguments(npk, bad):
    with pytest.raises((ValueError, TypeError)):
        npk.save({"a": smooth(10)}, compression=bad)
    assert not npk.has_array("a")


def test_getitem_random_rows_and_slices(npk):
    a = smooth(200_000, cols=4, dtype=np.float64)
    npk.save({"a": a}, compression="zstd")
    rng = np.random.default_rng(7)
    for _ in range(10):
        idx = rng.integers(-a.shape[0], a.shape[0], size=100)
        np.testing.assert_array_equal(npk.getitem("a", idx), a[idx])
    np.testing.assert_array_equal(npk.getitem("a", slice(12_345, 54_321)), a[12_345:54_321])
    np.testing.assert_array_equal(npk.getitem("a", [5]), a[[5]])
    with pytest.raises(IndexError):
        npk.getitem("a", [a.shape[0]])


def test_append_replace_drop_rows(npk):
    a = smooth(20_000, cols=4, dtype=np.int64)
    npk.save({"a": a}, compression="zstd")
    more = smooth(5_000, cols=4, dtype=np.int64) + 7
    npk.append({"a": more})
    model = np.concatenate([a, more])
    idx = np.array([0, 8_191, 8_192, 24_999])
    npk.replace({"a": np.full((4, 4), -1, dtype=np.int64)}, idx)
    model[idx] = -1
    npk.drop("a", [1, 2, 3])
    model = np.delete(model, [1, 2, 3], axis=0)
    np.testing.assert_array_equal(npk.load("a"), model)
    assert npk.get_shape("a") == model.shape
    assert npk.get_compression("a") is not None
    # Appending after deletions keeps the deleted rows hidden.
    npk.append({"a": more[:10]})
    model = np.concatenate([model, more[:10]])
    np.testing.assert_array_equal(npk.load("a"), model)
    with pytest.raises(TypeError):
        npk.append({"a": more.astype(np.int32)})


def test_lazy_load_is_a_read_only_copy(npk):
    a = smooth(30_000)
    npk.save({"a": a}, compression="zstd")
    npk.drop("a", [0])
    lazy = npk.load("a", lazy=True)
    assert lazy.shape == (29_999, 8)
    np.testing.assert_array_equal(np.asarray(lazy[0:3]), a[1:4])
    np.testing.assert_array_equal(np.asarray(lazy[[5, -1]]), a[[6, -1]])


def test_writable_batch_mode_refuses_compressed_arrays(npk):
    npk.save({"a": smooth(1_000)}, compression="zstd")
    with pytest.raises(Unsupported) as e:
        with npk.writable_batch_mode() as wb:
            wb.load("a")
    assert "compressed" in str(e.value)


def test_batch_mode_keeps_compression(npk):
    a = smooth(10_000)
    npk.save({"a": a}, compression=("zstd", 5))
    with npk.batch_mode():
        x = npk.load("a")
        x[:] = x * 2  # every row changed: written whole
        npk.save({"a": x})
    c = npk.get_compression("a")
    assert c is not None and c["level"] == 5
    np.testing.assert_array_equal(npk.load("a"), a * 2)
    with npk.batch_mode():
        npk.save({"b": a}, compression="zstd")
    assert npk.get_compression("b") is not None
    np.testing.assert_array_equal(npk.load("b"), a)


def test_stream_load(npk):
    a = smooth(50_000, cols=2, dtype=np.float64)
    npk.save({"a": a}, compression="zstd")
    npk.drop("a", [10, 20])
    want = np.delete(a, [10, 20], axis=0)
    got = np.concatenate(list(npk.stream_load("a", buffer_size=7_000)))
    np.testing.assert_array_equal(got, want)


def test_reopen(path):
    a = smooth(10_000)
    with numpack.NumPack(path, warn_no_context=False) as n:
        n.save({"a": a}, compression="zstd")
    with numpack.NumPack(path, warn_no_context=False) as n:
        np.testing.assert_array_equal(n.load("a"), a)
        assert n.get_compression("a")["raw_bytes"] == a.nbytes


def test_corruption_names_the_chunk(path):
    a = smooth(100_000)  # 32-byte rows: 8192 rows per chunk
    with numpack.NumPack(path, warn_no_context=False) as n:
        n.save({"a": a}, compression="zstd")
    f = path / "data_a.npkz"
    raw = bytearray(f.read_bytes())
    # Damage a byte inside the stored chunks, past the first chunk.
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    with numpack.NumPack(path, warn_no_context=False) as n:
        with pytest.raises(Corrupt) as e:
            n.load("a")
        msg = str(e.value)
        assert "chunk" in msg and "rows" in msg and "data_a.npkz" in msg
        # Rows in undamaged chunks still read.
        np.testing.assert_array_equal(n.getitem("a", [0, 1]), a[[0, 1]])


def test_packages_carry_compressed_arrays(tmp_path):
    a = smooth(20_000, cols=2, dtype=np.float64)
    src, pkg, dst = tmp_path / "src.npk", tmp_path / "p.npkg", tmp_path / "dst.npk"
    with numpack.NumPack(src, warn_no_context=False) as n:
        n.save({"z": a}, compression=("zstd", 4))
        n.drop("z", [3])
    numpack.pack(src, pkg)
    assert "data_z.npkz" in [f["name"] for f in numpack.get_package_info(pkg)["files"]]
    numpack.unpack(pkg, dst)
    with numpack.NumPack(dst, warn_no_context=False) as n:
        np.testing.assert_array_equal(n.load("z"), np.delete(a, 3, axis=0))
        assert n.get_compression("z")["level"] == 4
