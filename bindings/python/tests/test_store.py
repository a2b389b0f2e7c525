"""NumPack: lifecycle, every method, dtypes, shapes, layouts and error paths."""

import os
import sys
import warnings

import numpy as np
import pytest

import numpack
from numpack import NumPack

from conftest import DTYPES, sample


# ----- lifecycle -------------------------------------------------------------------------


def test_starts_closed_and_methods_need_open(path):
    n = NumPack(path, warn_no_context=False)
    assert n.is_closed and not n.is_opened
    assert not path.exists()  # construction does no I/O
    with pytest.raises(RuntimeError, match="not opened or has been closed"):
        n.save({"a": np.zeros(3)})
    assert "status=closed" in repr(n)
    n.open()
    n.open()  # idempotent
    assert n.is_opened
    n.save({"a": np.zeros(3)})
    assert repr(n) == f"NumPack({path}, arrays=1)"
    n.close()
    n.close()  # idempotent
    with pytest.raises(RuntimeError):
        n.load("a")
    n.open()  # reopen
    assert n.has_array("a")
    n.close()


def test_with_reopens_and_does_not_swallow(path):
    n = NumPack(path, warn_no_context=False)
    with pytest.raises(ZeroDivisionError):
        with n:
            n.save({"a": np.ones((2, 2))})
            1 / 0
    assert n.is_closed
    with n as same:
        assert same is n
        np.testing.assert_array_equal(n.load("a"), np.ones((2, 2)))
    assert n.is_closed


def test_strict_context_mode(path):
    n = NumPack(path, strict_context_mode=True)
    n.open()
    with pytest.raises(RuntimeError, match="strict context mode"):
        n.get_member_list()
    n.close()
    with n:
        n.save({"a": np.arange(3)})
        assert n.get_member_list() == ["a"]
    with pytest.raises(RuntimeError):
        n.get_member_list()


@pytest.mark.parametrize("key", [slice(0, 2), [0], np.array([1], np.int64)])
def test_getitem_checks_closed_strict_and_name(path, key):
    """getitem's own fast entry keeps every check of the other methods."""
    n = NumPack(path, strict_context_mode=True)
    with n:
        n.save({"a": np.arange(6).reshape(3, 2)})
        assert n.getitem("a", key).shape[1:] == (2,)
        with pytest.raises(TypeError, match="names must be str"):
            n.getitem(b"a", key)
        with pytest.raises(KeyError):
            n.getitem("b", key)
    n.open()
    with pytest.raises(RuntimeError, match="strict context mode"):
        n.getitem("a", key)
    n.close()
    with pytest.raises(RuntimeError, match="not opened or has been closed"):
        n.getitem("a", key)

def test_warn_no_context(path):
    with pytest.warns(UserWarning, match="strict context mode"):
        NumPack(path, warn_no_context=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NumPack(path, warn_no_context=True, strict_context_mode=True)
        NumPack(path, warn_no_context=False)
        if not sys.platform.startswith("win"):
            NumPack(path)


def test_drop_if_exists_only_first_open(path):
    with NumPack(path) as n:
        n.save({"a": np.arange(3)})
    n = NumPack(path, drop_if_exists=True)
    with n:
        assert n.get_member_list() == []
        n.save({"b": np.arange(3)})
    with n:  # a later re-open never wipes
        assert n.get_member_list() == ["b"]


def test_path_is_a_file(tmp_path):
    f = tmp_path / "plain"
    f.write_text("x")
    with pytest.raises(FileExistsError):
        NumPack(f).open()
    with NumPack(f, drop_if_exists=True) as n:  # a plain file is replaced by a store
        n.save({"a": np.arange(2)})
        assert n.has_array("a")


def test_force_gc_on_close(path, monkeypatch):
    calls = []
    monkeypatch.setattr("gc.collect", lambda *a: calls.append(1) or 0)
    n = NumPack(path, force_gc_on_close=True)
    n.open()
    n.close()
    assert calls == [1]
    n.open()
    n.close(force_gc=False)
    assert calls == [1]
    assert numpack.force_cleanup_windows_handles() is True


def test_del_closes(path):
    n = NumPack(path)
    n.open()
    n.save({"a": np.arange(5)})
    del n
    with NumPack(path) as m:
        np.testing.assert_array_equal(m.load("a"), np.arange(5))


# ----- dtypes and shapes -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (7, 3), (4, 3, 2), (3, 2, 2, 2), (2, 3, 1, 2, 2)])
def test_every_dtype_every_ndim(npk, dtype, shape):
    a = sample(dtype, shape)
    npk.save({"x": a})
    b = npk.load("x")
    assert b.dtype == a.dtype and b.shape == a.shape and b.flags.c_contiguous
    assert b.base is None and b.flags.owndata and b.flags.writeable  # the array the library filled
    np.testing.assert_array_equal(b, a)
    lazy = npk.load("x", lazy=True)
    assert lazy.dtype == a.dtype and lazy.shape == a.shape
    np.testing.assert_array_equal(np.asarray(lazy), a)
    extra = sample(dtype, (2,) + shape[1:], seed=1)
    npk.append({"x": extra})
    np.testing.assert_array_equal(npk.load("x"), np.concatenate([a, extra]))
    np.testing.assert_array_equal(npk.getitem("x", [-1, 0]), np.concatenate([a, extra])[[-1, 0]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_preserved_names(npk, dtype):
    npk.save({"x": np.zeros((2, 2), dtype=dtype)})
    assert npk.load("x").dtype == np.dtype(dtype)
    assert npk.get_metadata()["arrays"]["x"]["dtype"] == np.dtype(dtype).name.capitalize()


@pytest.mark.parametrize("shape", [(0,), (0, 3), (0, 2, 2)])
def test_zero_rows(npk, shape):
    a = np.zeros(shape, dtype=np.float32)
    npk.save({"z": a})
    assert npk.get_shape("z") == shape
    assert npk.load("z").shape == shape
    lazy = npk.load("z", lazy=True)
    assert lazy.shape == shape and len(lazy) == 0 and np.asarray(lazy).shape == shape
    assert npk.getitem("z", []).shape == shape
    assert list(npk.stream_load("z", 4)) == []
    npk.append({"z": np.ones((0,) + shape[1:], np.float32)})
    assert npk.get_shape("z") == shape
    npk.append({"z": np.ones((2,) + shape[1:], np.float32)})
    np.testing.assert_array_equal(npk.load("z"), np.ones((2,) + shape[1:]))


def test_fortran_and_strided_inputs(npk):
    base = np.arange(60, dtype=np.int32).reshape(6, 10)
    f = np.asfortranarray(base)
    npk.save({"f": f, "t": base.T, "s": base[:, ::3], "r": base[::-2]})
    np.testing.assert_array_equal(npk.load("f"), base)
    np.testing.assert_array_equal(npk.load("t"), base.T)
    np.testing.assert_array_equal(npk.load("s"), base[:, ::3])
    np.testing.assert_array_equal(npk.load("r"), base[::-2])
    npk.append({"f": np.asfortranarray(base[:2])})
    np.testing.assert_array_equal(npk.load("f")[-2:], base[:2])
    npk.replace({"f": np.asfortranarray(base[2:4] * 10)}, [0, 5])
    np.testing.assert_array_equal(npk.load("f")[[0, 5]], base[2:4] * 10)


@pytest.mark.parametrize("dtype", [">f4", ">i8", ">c16", ">u2"])
def test_non_native_byte_order_converted(npk, dtype):
    a = np.arange(12).reshape(4, 3).astype(dtype)
    npk.save({"b": a})
    out = npk.load("b")
    assert out.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(out, a)
    npk.append({"b": a[:1]})
    npk.replace({"b": a[3:4]}, 0)
    np.testing.assert_array_equal(npk.load("b")[0], a[3])


@pytest.mark.parametrize("bad", [
    np.array(["a", "b"]), np.array([1, None], dtype=object), np.array(["2020-01-01"], dtype="M8[D]"),
    np.zeros(2, dtype=[("x", "i4"), ("y", "f4")]), np.zeros(3, dtype="V4"), np.zeros(3, dtype=np.longdouble),
])
def test_unsupported_dtypes_name_the_dtype(npk, bad):
    with pytest.raises((ValueError, TypeError), match="Unsupported dtype") as e:
        npk.save({"u": bad})
    assert str(bad.dtype) in str(e.value)
    assert not npk.has_array("u")


def test_zero_d_rejected(npk):
    with pytest.raises(ValueError):
        npk.save({"s": np.float32(3.0)})


def test_save_argument_errors(npk):
    with pytest.raises(ValueError, match="arrays must be a dictionary"):
        npk.save([np.zeros(2)])
    with pytest.raises(TypeError):
        npk.save({1: np.zeros(2)})
    with pytest.raises(ValueError, match="arrays must be a dictionary"):
        npk.append(np.zeros(2))
    with pytest.raises(ValueError, match="arrays must be a dictionary"):
        npk.replace(np.zeros(2), 0)
    npk.save({})


@pytest.mark.parametrize("name", ["", "a/b", "..", "x" * 300])
def test_invalid_names(npk, name):
    with pytest.raises(ValueError) as e:
        npk.save({name: np.zeros(2)})
    assert isinstance(e.value, numpack.NumpackError)
    assert e.value.status == "INVALID_NAME"
    assert npk.has_array(name) is False


def test_unicode_name(npk):
    npk.save({"données €": np.arange(3)})
    assert npk.get_member_list() == ["données €"]
    np.testing.assert_array_equal(npk["données €"], np.arange(3))


def test_save_overwrites_with_new_shape_and_dtype(npk):
    npk.save({"a": np.zeros((3, 2))})
    npk.save({"a": np.ones((5,), dtype=np.int8)})
    out = npk.load("a")
    assert out.dtype == np.int8 and out.shape == (5,)


# ----- append -----------------------------------------------------------------------------


def test_append_errors(npk):
    npk.save({"a": np.zeros((3, 2), np.float32)})
    with pytest.raises(KeyError):
        npk.append({"nope": np.zeros((1, 2), np.float32)})
    with pytest.raises(ValueError, match="does not exist"):
        npk.append({"nope": np.zeros((1, 2), np.float32)})
    with pytest.raises(TypeError):
        npk.append({"a": np.zeros((1, 2), np.float64)})
    with pytest.raises(ValueError):
        npk.append({"a": np.zeros((1, 3), np.float32)})
    with pytest.raises(ValueError):
        npk.append({"a": np.zeros((1, 2, 1), np.float32)})
    with pytest.raises(ValueError):
        npk.append({"a": np.float32(1)})
    assert npk.get_shape("a") == (3, 2)


# ----- the index forms, identical for getitem / replace / drop -------------------------------

N = 12
KEYS = [
    3, -1, -N, np.int64(5), np.uint8(2), [0, 5, 2], [-1, 0], (1, 4), [], np.array([7, 1, 7]),
    np.array([], dtype=np.int64), np.arange(N) % 3 == 0, [True] * 2 + [False] * (N - 2),
    slice(None), slice(2, 9), slice(None, None, 3), slice(None, None, -1), slice(10, 2, -3),
    slice(-4, None), slice(-100, 100), slice(5, 2), range(1, 6, 2), np.array([2, 4], dtype=np.uint32),
    np.array(-2),
]
IDS = [repr(k) if not isinstance(k, np.ndarray) else f"ndarray{k.dtype}{k.tolist()}" for k in KEYS]


def _logical_ref(npk, deleted):
    base = np.arange(N + len(deleted)) * 10.0
    data = np.stack([base, base + 1], axis=1)
    npk.save({"a": data})
    if deleted:
        npk.drop("a", deleted)
    return np.delete(data, deleted, axis=0)


def _np_key(key):
    if isinstance(key, (tuple, range)):
        return list(key)
    if isinstance(key, (int, np.integer)) or (isinstance(key, np.ndarray) and key.ndim == 0):
        return [int(key)]
    return key


@pytest.mark.parametrize("deleted", [[], [0, 4, 13]], ids=["dense", "with-deletions"])
@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_getitem_forms(npk, key, deleted):
    ref = _logical_ref(npk, deleted)
    out = npk.getitem("a", key)
    expect = ref[_np_key(key)]
    assert out.shape == expect.shape
    np.testing.assert_array_equal(out, expect)


@pytest.mark.parametrize("deleted", [[], [0, 4, 13]], ids=["dense", "with-deletions"])
@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_replace_forms(npk, key, deleted):
    ref = _logical_ref(npk, deleted)
    k = len(ref[_np_key(key)])
    new = -np.arange(1, 2 * k + 1, dtype=np.float64).reshape(k, 2)
    npk.replace({"a": new}, key)
    ref[_np_key(key)] = new
    np.testing.assert_array_equal(npk.load("a"), ref)
    assert npk.get_shape("a") == ref.shape


@pytest.mark.parametrize("deleted", [[], [0, 4, 13]], ids=["dense", "with-deletions"])
@pytest.mark.parametrize("key", KEYS, ids=IDS)
def test_drop_forms(npk, key, deleted):
    ref = _logical_ref(npk, deleted)
    npk.drop("a", key)
    gone = np.arange(N)[_np_key(key)]
    expect = np.delete(ref, gone, axis=0)
    np.testing.assert_array_equal(npk.load("a"), expect)
    assert npk.get_shape("a") == expect.shape
    np.testing.assert_array_equal(np.asarray(npk.load("a", lazy=True)), expect)


@pytest.mark.parametrize("method", ["getitem", "replace", "drop"])
@pytest.mark.parametrize("key,exc", [
    (N, IndexError), (-N - 1, IndexError), ([0, N], IndexError), ("x", TypeError), (1.5, TypeError),
    ([1.0, 2.0], TypeError), (np.zeros((2, 2), int), ValueError), ([True, False], ValueError),
    (None, TypeError), (True, TypeError),
])
def test_index_errors(npk, method, key, exc):
    ref = _logical_ref(npk, [])
    with pytest.raises(exc):
        if method == "getitem":
            npk.getitem("a", key)
        elif method == "replace":
            rows = len(key) if isinstance(key, list) else 1
            npk.replace({"a": np.zeros((rows, 2))}, key)
        else:
            if key is None:
                raise TypeError  # None means "the whole array" for drop
            npk.drop("a", key)
    np.testing.assert_array_equal(npk.load("a"), ref)


def test_negative_drop_after_deletion(npk):
    npk.save({"a": np.arange(10)})
    npk.drop("a", [0])
    npk.drop("a", -1)
    np.testing.assert_array_equal(npk.load("a"), np.arange(1, 9))
    npk.drop("a", -2)
    np.testing.assert_array_equal(npk.load("a"), [1, 2, 3, 4, 5, 6, 8])


def test_replace_shape_and_dtype_errors(npk):
    npk.save({"a": np.zeros((4, 3), np.float32)})
    with pytest.raises(ValueError):
        npk.replace({"a": np.zeros((3, 3), np.float32)}, [0, 1])  # extra rows
    with pytest.raises(ValueError):
        npk.replace({"a": np.zeros((1, 3), np.float32)}, [0, 1])  # too few rows
    with pytest.raises(ValueError):
        npk.replace({"a": np.zeros((2, 6), np.float32)}, [0])
    with pytest.raises(TypeError):
        npk.replace({"a": np.zeros((1, 3), np.int32)}, [0])
    with pytest.raises(KeyError):
        npk.replace({"b": np.zeros((1, 3), np.float32)}, [0])
    npk.replace({"a": np.ones(3, np.float32)}, 2)  # one row for an int index
    np.testing.assert_array_equal(npk.load("a")[2], np.ones(3))
    np.testing.assert_array_equal(npk.load("a")[[0, 1, 3]], np.zeros((3, 3)))


def test_replace_repeated_index_last_wins(npk):
    npk.save({"a": np.zeros(4)})
    npk.replace({"a": np.array([1.0, 2.0])}, [1, 1])
    np.testing.assert_array_equal(npk.load("a"), [0, 2, 0, 0])


def test_replace_scattered_rows_exact(npk):
    # upstream wrote garbage for non-contiguous replace indexes
    npk.save({"a": np.zeros((20, 2), np.float32)})
    npk.replace({"a": -np.ones((2, 2), np.float32)}, [1, 3])
    ref = np.zeros((20, 2), np.float32)
    ref[[1, 3]] = -1
    np.testing.assert_array_equal(npk.load("a"), ref)


# ----- drop whole arrays, catalogue ---------------------------------------------------------


def test_drop_arrays(npk):
    npk.save({"a": np.zeros(2), "b": np.zeros(2), "c": np.zeros(2)})
    npk.remove("a")
    assert npk.get_member_list() == ["b", "c"]
    npk.remove(["b", "c"])
    assert npk.get_member_list() == []
    with pytest.raises(KeyError):
        npk.drop("a")
    with pytest.raises(KeyError):
        npk.remove("a")
    with pytest.raises(TypeError):
        npk.drop(("a",))
    with pytest.raises(TypeError):
        npk.remove(("a",))
    npk.save({"d": np.arange(3)})
    with pytest.raises(KeyError):
        npk.drop(["d", "zz"], [0])
    with pytest.raises(KeyError):
        npk.drop("zz", [0])


def test_catalogue(npk):
    assert npk.get_member_list() == [] and list(npk) == []
    npk.save({"b": np.arange(4), "a": np.ones((2, 3), np.int16)})
    assert npk.get_member_list() == ["a", "b"]
    assert list(npk) == ["a", "b"] and "a" in npk and "z" not in npk
    assert npk.has_array("a") and not npk.has_array("z") and not npk.has_array(3)
    assert npk.get_shape("a") == (2, 3)
    with pytest.raises(KeyError):
        npk.get_shape("z")
    np.testing.assert_array_equal(npk["b"], np.arange(4))
    with pytest.raises(KeyError):
        npk["z"]
    assert npk.get_io_stats() == {"stats_available": False}


def test_modify_time(npk):
    import time

    assert npk.get_modify_time("a") is None
    before = int(time.time() * 1e6)
    npk.save({"a": np.zeros((3, 2))})
    t0 = npk.get_modify_time("a")
    assert isinstance(t0, int) and before - 2_000_000 <= t0 <= int(time.time() * 1e6) + 2_000_000
    for change in (lambda: npk.replace({"a": np.ones((1, 2))}, 0),
                   lambda: npk.append({"a": np.ones((1, 2))}),
                   lambda: npk.drop("a", 0)):
        time.sleep(0.002)
        change()
        t1 = npk.get_modify_time("a")
        assert t1 > t0
        t0 = t1


def test_metadata(npk, path):
    npk.save({"a": np.zeros((10, 4), np.float32), "b": np.arange(3, dtype=np.int64)})
    npk.drop("a", [1, 2])
    md = npk.get_metadata()
    assert md["base_dir"] == str(path) and md["total_arrays"] == 2
    a = md["arrays"]["a"]
    assert a["shape"] == [8, 4] and a["physical_rows"] == 10
    assert a["size_bytes"] == 10 * 4 * 4 and a["dtype"] == "Float32"
    assert a["data_file"] == "data_a.npkd" and (path / a["data_file"]).is_file()
    assert a["last_modified"] == npk.get_modify_time("a")
    assert md["arrays"]["b"]["dtype"] == "Int64"


def test_reset(npk, path):
    npk.save({"a": np.zeros(3), "b": np.zeros(3)})
    npk.drop("a", [0])
    npk.reset()
    assert npk.get_member_list() == []
    assert not any(p.suffix in (".npkd", ".npkb") for p in path.iterdir())
    npk.save({"a": np.ones(2)})
    np.testing.assert_array_equal(npk.load("a"), np.ones(2))


def test_update_compacts(npk, path):
    a = np.arange(40, dtype=np.int32).reshape(10, 4)
    npk.save({"a": a})
    npk.update("a")  # nothing deleted: no-op
    npk.drop("a", [0, 5, 9])
    size = (path / "data_a.npkd").stat().st_size
    npk.update("a")
    assert (path / "data_a.npkd").stat().st_size < size
    assert npk.get_metadata()["arrays"]["a"]["physical_rows"] == 7
    np.testing.assert_array_equal(npk.load("a"), np.delete(a, [0, 5, 9], axis=0))
    with pytest.raises(KeyError):
        npk.update("zz")


def test_clone(npk):
    npk.save({"a": np.arange(10.0)})
    npk.drop("a", [2, 3])
    npk.clone("a", "b")
    np.testing.assert_array_equal(npk.load("b"), npk.load("a"))
    assert npk.get_metadata()["arrays"]["b"]["physical_rows"] == 8
    npk.replace({"b": np.array([-1.0])}, 0)
    assert npk.load("a")[0] == 0.0  # independent copy
    with pytest.raises(KeyError):
        npk.clone("zz", "c")
    with pytest.raises(ValueError):
        npk.clone("a", "b")


@pytest.mark.parametrize("size", [None, 1, 3, 4, 100])
def test_stream_load(npk, size):
    a = np.arange(24, dtype=np.int16).reshape(12, 2)
    npk.save({"a": a})
    npk.drop("a", [0, 7])
    npk.append({"a": np.full((2, 2), 99, np.int16)})  # same session, not yet closed
    ref = np.concatenate([np.delete(a, [0, 7], axis=0), np.full((2, 2), 99)])
    batches = list(npk.stream_load("a", size))
    step = size or 1
    assert [len(b) for b in batches] == [min(step, len(ref) - i) for i in range(0, len(ref), step)]
    assert all(b.shape[1:] == (2,) and b.dtype == np.int16 for b in batches)
    np.testing.assert_array_equal(np.concatenate(batches), ref)


def test_stream_load_errors(npk):
    npk.save({"a": np.arange(4)})
    with pytest.raises(ValueError):
        npk.stream_load("a", 0)
    with pytest.raises(ValueError):
        npk.stream_load("a", -3)
    with pytest.raises(KeyError):
        npk.stream_load("zz", 2)
    it = npk.stream_load("a", 3)
    assert next(it).tolist() == [0, 1, 2]
    npk.remove("a")
    with pytest.raises(KeyError):
        next(it)


def test_persisted_across_instances(path):
    a = np.random.default_rng(1).standard_normal((50, 3))
    with NumPack(path) as n:
        n.save({"a": a})
        n.drop("a", [1])
    with NumPack(path) as n:
        np.testing.assert_array_equal(n.load("a"), np.delete(a, 1, axis=0))


def test_other_handle_sees_changes_without_close(path):
    w = NumPack(path)
    r = NumPack(path)
    w.open()
    r.open()
    w.save({"a": np.arange(3)})
    assert r.has_array("a")
    w.append({"a": np.arange(2)})
    np.testing.assert_array_equal(r.load("a"), [0, 1, 2, 0, 1])
    w.close()
    r.close()


def test_read_only_data_arrays_saved(npk):
    a = np.arange(6.0)
    a.flags.writeable = False
    npk.save({"a": a})
    npk.append({"a": a})
    assert npk.get_shape("a") == (12,)


def test_getitem_slices_follow_changes_through_the_same_store(npk, monkeypatch):
    """Slices read twice (the second time through the shape getitem kept) stay right
    after every change made through this instance, compressed arrays included."""
    from numpack import _store

    calls = {"ok": 0, "changed": 0}
    checked = _store._read_range_checked

    def counting(*args):
        status = checked(*args)
        calls["changed" if status else "ok"] += 1
        return status

    monkeypatch.setattr(_store, "_read_range_checked", counting)
    ref = np.arange(20, dtype=np.int32).reshape(10, 2)
    npk.save({"a": ref})

    def check(expect):
        for key in (slice(0, None), slice(2, 5), slice(-3, None), slice(8, 100), slice(5, 2)):
            for _ in range(2):
                out = npk.getitem("a", key)
                assert out.dtype == expect.dtype and out.shape == expect[key].shape
                np.testing.assert_array_equal(out, expect[key])

    check(ref)
    npk.drop("a", [0, 3])
    ref = np.delete(ref, [0, 3], axis=0)
    check(ref)
    npk.append({"a": np.full((3, 2), 7, np.int32)})
    ref = np.concatenate([ref, np.full((3, 2), 7, np.int32)])
    check(ref)
    npk.replace({"a": np.full((2, 2), -1, np.int32)}, slice(0, 2))
    ref[:2] = -1
    check(ref)
    ref = np.arange(20, dtype=np.float32).reshape(10, 2)  # same row bytes, another dtype
    npk.save({"a": ref})
    check(ref)
    ref = np.arange(20, dtype=np.float32).reshape(10, 1, 2)  # same bytes, another row shape
    npk.save({"a": ref})
    check(ref)
    ref = np.arange(30, dtype=np.int16).reshape(10, 3)
    npk.save({"a": ref}, compression="zstd")
    check(ref)
    npk.drop("a", [9])
    ref = ref[:9]
    check(ref)
    # both ways were taken: one call with the kept shape, and asking again after a change
    assert calls["ok"] > 0 and calls["changed"] > 0, calls
    npk.drop("a")  # zero rows left: the kept shape is stale
    assert npk.getitem("a", slice(0, 2)).shape == (0, 3)
    npk.remove("a")
    with pytest.raises(KeyError):
        npk.getitem("a", slice(0, 2))
    npk.close()
    with pytest.raises(RuntimeError, match="not opened or has been closed"):
        npk.getitem("a", slice(0, 2))
