"""numpack.npy and numpack.io.{from_npy,to_npy}: compared with np.load / np.save, and
cross-checked with the npy-append-array package when it is installed."""

import multiprocessing
import os
import threading
import zipfile

import numpy as np
import pytest

import numpack
from numpack import npy as N
from numpack.io import from_npy, to_npy

from conftest import DTYPES, sample


@pytest.fixture
def store(tmp_path):
    with numpack.NumPack(tmp_path / "store", warn_no_context=False) as n:
        yield n


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (5, 3), (4, 2, 3), (3, 2, 2, 2), (0, 4)])
def test_import_of_np_save_files_matches_np_load(tmp_path, store, dtype, shape):
    a = sample(dtype, shape, seed=len(shape))
    f = tmp_path / "a.npy"
    np.save(f, a)
    assert N.import_npy(store, f) == "a"
    np.testing.assert_array_equal(store.load("a"), np.load(f))
    assert store.load("a").dtype == a.dtype


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_import_converts_byte_order_and_fortran_order(tmp_path, store, order, byteorder):
    a = sample("float64", (6, 4, 3), seed=3).astype(byteorder + "f8")
    a = np.asfortranarray(a) if order == "F" else a
    f = tmp_path / "x.npy"
    np.save(f, a)
    info = N.npy_info(f)
    assert info.fortran_order == (order == "F")
    assert info.big_endian == (byteorder == ">")
    assert info.dtype == a.dtype and info.shape == a.shape and info.complete
    N.import_npy(store, f, "x")
    np.testing.assert_array_equal(store.load("x"), a)


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_header_versions(tmp_path, store, version):
    a = sample("int16", (3, 5))
    f = tmp_path / "v.npy"
    with open(f, "wb") as fh:
        np.lib.format.write_array(fh, a, version=version)
    assert N.npy_info(f).version == version
    N.import_npy(store, f)
    np.testing.assert_array_equal(store.load("v"), a)


def test_export_is_loadable_by_numpy_and_excludes_deleted_rows(tmp_path, store):
    a = sample("float32", (10, 3))
    store.save({"a": a})
    store.drop("a", [2, 5])
    f = tmp_path / "out.npy"
    N.export_npy(store, "a", f)
    np.testing.assert_array_equal(np.load(f), np.delete(a, [2, 5], axis=0))
    assert N.npy_info(f).appendable
    with pytest.raises(ValueError):
        N.export_npy(store, "a", f)
    N.export_npy(store, "a", f, overwrite=True)
    with pytest.raises(KeyError):
        N.export_npy(store, "missing", tmp_path / "m.npy")


def test_unsupported_and_damaged_files_raise_clear_errors(tmp_path, store):
    f = tmp_path / "u.npy"
    np.save(f, np.array(["ab", "cd"]))
    with pytest.raises(NotImplementedError, match="<U2"):
        N.import_npy(store, f)
    np.save(f, np.float64(1.0))
    with pytest.raises(ValueError, match="0-d"):
        N.import_npy(store, f)
    f.write_bytes(b"not a npy file at all")
    with pytest.raises(RuntimeError, match="magic"):
        N.npy_info(f)
    with pytest.raises(KeyError):
        N.npy_info(tmp_path / "missing.npy")
    with pytest.raises(TypeError):
        N.import_npy("not a store", f)


@pytest.mark.parametrize("savez", [np.savez, np.savez_compressed])
def test_import_npz(tmp_path, store, savez):
    arrays = {"a": sample("int64", (5, 2)), "b": np.asfortranarray(sample("float32", (3, 4))),
              "c": sample("bool", (0, 3))}
    f = tmp_path / "x.npz"
    savez(f, **arrays)
    assert N.import_npz(store, f) == ["a", "b", "c"]
    for k, v in arrays.items():
        np.testing.assert_array_equal(store.load(k), v)
    with pytest.raises(ValueError):
        N.import_npz(store, f)
    assert N.import_npz(store, f, overwrite=True) == ["a", "b", "c"]


def test_append_npy_and_make_appendable(tmp_path):
    f = tmp_path / "a.npy"
    assert N.append_npy(f, np.arange(6, dtype=np.int32).reshape(2, 3)) == 2
    assert N.append_npy(f, np.arange(3, dtype=np.int64).reshape(1, 3)) == 3  # cast to int32
    np.testing.assert_array_equal(np.load(f), np.array([[0, 1, 2], [3, 4, 5], [0, 1, 2]], np.int32))
    with pytest.raises(ValueError):
        N.append_npy(f, np.zeros((1, 4), np.int32))
    # A Fortran-order file needs a rewrite first.
    g = tmp_path / "f.npy"
    a = np.asfortranarray(sample("float64", (4, 3)))
    np.save(g, a)
    with pytest.raises(NotImplementedError, match="appendable"):
        N.append_npy(g, a[:1])
    assert N.make_appendable(g) is True
    assert N.make_appendable(g) is False
    N.append_npy(g, a[:1])
    np.testing.assert_array_equal(np.load(g), np.concatenate([a, a[:1]]))
    # NumPy >= 1.23 leaves room in its headers: a big-endian file grows in place, in its
    # own byte order.
    b = tmp_path / "be.npy"
    big = sample("float64", (3, 2)).astype(">f8")
    np.save(b, big)
    assert N.is_appendable(b)
    assert N.append_npy(b, np.ones((1, 2))) == 4
    out = np.load(b)
    assert out.dtype == np.dtype(">f8")
    np.testing.assert_array_equal(out, np.concatenate([big, np.ones((1, 2))]))
    # One file appended to another (streamed, under one lock).
    c = tmp_path / "cat.npy"
    assert N.append_npy_file(c, g) == 5
    assert N.append_npy_file(c, g, sync=True) == 10
    np.testing.assert_array_equal(np.load(c), np.concatenate([np.load(g)] * 2))
    with pytest.raises(ValueError):
        N.append_npy_file(c, c)
    # An empty appendable file, created explicitly.
    h = tmp_path / "e.npy"
    N.create_appendable(h, np.complex64, (2,))
    assert np.load(h).shape == (0, 2)
    N.append_npy(h, np.ones((3, 2), np.complex64), sync=True)
    np.testing.assert_array_equal(np.load(h), np.ones((3, 2), np.complex64))


def test_recover(tmp_path):
    f = tmp_path / "r.npy"
    rows = sample("float64", (5, 2))
    N.append_npy(f, rows)
    with open(f, "ab") as fh:
        fh.write(b"\x01\x02\x03")  # a crashed appender's partial row
    with pytest.raises(RuntimeError, match="recover"):
        N.append_npy(f, rows[:1])
    assert not N.npy_info(f).complete
    rep = N.recover_npy(f)
    assert rep == {"header_rows": 5, "rows": 5, "dropped_bytes": 3, "zero_filled_bytes": 0, "rewritten": False}
    np.testing.assert_array_equal(np.load(f), rows)
    with open(f, "ab") as fh:
        fh.write(rows[:2].tobytes())  # data written, header not updated
    assert N.recover_npy(f)["rows"] == 7
    with open(f, "ab") as fh:
        fh.write(b"\x00" * 8)
    assert N.recover_npy(f, zero_fill=True)["zero_filled_bytes"] == 8
    out = np.load(f)
    assert out.shape == (8, 2) and out[7, 1] == 0


def test_npy_append_array_api(tmp_path):
    f = tmp_path / "n.npy"
    parts = [sample("float32", (n, 4), seed=n) for n in (3, 1, 5)]
    with N.NpyAppendArray(f) as w:
        for p in parts:
            w.append(p)
        assert w.shape == (9, 4)
        with pytest.raises(ValueError, match="append axis"):
            w.append(np.zeros((1, 5), np.float32))
    np.testing.assert_array_equal(np.load(f), np.concatenate(parts))
    with N.NpyAppendArray(f, rewrite_header_on_append=False) as w:
        w.append(parts[0])
        np.testing.assert_array_equal(np.load(f)[-3:], parts[0])  # header already up to date
    with N.NpyAppendArray(f, delete_if_exists=True) as w:
        w.append(parts[1])
    np.testing.assert_array_equal(np.load(f), parts[1])
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.append(parts[1])
    # A file that cannot grow in place is refused, as npy-append-array does.
    g = tmp_path / "fortran.npy"
    np.save(g, np.asfortranarray(parts[2]))
    with pytest.raises(ValueError, match="ensure_appendable"):
        N.NpyAppendArray(g)
    assert N.ensure_appendable(g) and N.is_appendable(g)
    with N.NpyAppendArray(g) as w:
        w.append(parts[0])
    np.testing.assert_array_equal(np.load(g), np.concatenate([parts[2], parts[0]]))


def test_concurrent_appenders_threads(tmp_path):
    f = tmp_path / "c.npy"
    per, nthreads = 30, 4

    def work(t):
        w = N.NpyAppendArray(f)
        for i in range(per):
            w.append(np.array([[t, i]], dtype=np.int64))
        w.close()

    ts = [threading.Thread(target=work, args=(t,)) for t in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out = np.load(f)
    assert out.shape == (per * nthreads, 2)
    assert sorted(map(tuple, out.tolist())) == [(t, i) for t in range(nthreads) for i in range(per)]


def _process_appender(path, t, per):
    for i in range(per):
        N.append_npy(path, np.array([[t, i]], dtype=np.int64))


def test_concurrent_appenders_processes(tmp_path):
    f = str(tmp_path / "p.npy")
    N.create_appendable(f, np.int64, (2,))
    ctx = multiprocessing.get_context("spawn")
    per, nprocs = 40, 3
    procs = [ctx.Process(target=_process_appender, args=(f, t, per)) for t in range(nprocs)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    out = np.load(f)
    assert sorted(map(tuple, out.tolist())) == [(t, i) for t in range(nprocs) for i in range(per)]


def test_from_npy_and_to_npy(tmp_path):
    a = sample("uint16", (6, 2))
    f = tmp_path / "data.npy"
    np.save(f, a)
    out = tmp_path / "s"
    assert from_npy(f, out) is None
    with numpack.NumPack(out, warn_no_context=False) as n:
        np.testing.assert_array_equal(n.load("data"), a)
    npk = from_npy(f, out, array_name="other", return_npk_obj=True)
    try:
        assert sorted(npk.get_member_list()) == ["data", "other"]
    finally:
        npk.close()
    with pytest.raises(FileNotFoundError):
        from_npy(tmp_path / "missing.npy", out)
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(ValueError):
        from_npy(tmp_path / "x.csv", out)

    # .npy needs exactly one array.
    with pytest.raises(ValueError, match="can only store one array"):
        to_npy(out, tmp_path / "o.npy")
    to_npy(out, tmp_path / "o.npy", array_names=["other"])
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), a)
    for compressed, method in [(True, zipfile.ZIP_DEFLATED), (False, zipfile.ZIP_STORED)]:
        z = tmp_path / f"o{compressed}.npz"
        to_npy(out, z, compressed=compressed)
        with zipfile.ZipFile(z) as zf:
            assert {i.compress_type for i in zf.infolist()} == {method}
        with np.load(z) as loaded:
            assert sorted(loaded.files) == ["data", "other"]
            np.testing.assert_array_equal(loaded["data"], a)
    # .npz round trip, drop_if_exists.
    from_npy(tmp_path / "oTrue.npz", tmp_path / "s2", drop_if_exists=True)
    with numpack.NumPack(tmp_path / "s2", warn_no_context=False) as n:
        assert sorted(n.get_member_list()) == ["data", "other"]
    with pytest.raises(FileNotFoundError):
        to_npy(tmp_path / "nostore", tmp_path / "z.npy")
    # Arrays with zero rows export too.
    with numpack.NumPack(tmp_path / "s3", warn_no_context=False) as n:
        n.save({"empty": np.zeros((0, 5), np.float16)})
    to_npy(tmp_path / "s3", tmp_path / "empty.npy")
    to_npy(tmp_path / "s3", tmp_path / "empty.npz", compressed=False)
    assert np.load(tmp_path / "empty.npy").shape == (0, 5)
    with np.load(tmp_path / "empty.npz") as z:
        assert z["empty"].shape == (0, 5) and z["empty"].dtype == np.float16
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")], "temporary files left"


def test_cross_check_with_npy_append_array(tmp_path):
    npa = pytest.importorskip("npy_append_array", reason="npy-append-array is not installed in this venv")
    a = sample("float64", (4, 3))
    # Files we write are appendable for npy-append-array, and the other way round.
    ours = tmp_path / "ours.npy"
    N.append_npy(ours, a)
    assert npa.is_appendable(str(ours))
    with npa.NpyAppendArray(str(ours)) as w:
        w.append(a[:2])
    np.testing.assert_array_equal(np.load(ours), np.concatenate([a, a[:2]]))
    N.append_npy(ours, a[:1])
    np.testing.assert_array_equal(np.load(ours), np.concatenate([a, a[:2], a[:1]]))
    theirs = tmp_path / "theirs.npy"
    with npa.NpyAppendArray(str(theirs)) as w:
        w.append(a)
    assert N.npy_info(theirs).appendable
    N.append_npy(theirs, a[:1])
    with npa.NpyAppendArray(str(theirs)) as w:
        w.append(a[:1])
    np.testing.assert_array_equal(np.load(theirs), np.concatenate([a, a[:1], a[:1]]))
    # Both recover a crashed append the same way.
    for fn in (lambda p: N.recover_npy(p), lambda p: npa.recover(str(p))):
        f = tmp_path / "crash.npy"
        if f.exists():
            f.unlink()
        N.append_npy(f, a)
        with open(f, "ab") as fh:
            fh.write(a[:1].tobytes() + b"\x07\x07")
        fn(f)
        np.testing.assert_array_equal(np.load(f), np.concatenate([a, a[:1]]))


def _endless_appender(path):
    i = 0
    while True:
        k = np.arange(i, i + 5000, dtype=np.int64)
        N.append_npy(path, np.stack([k, 2 * k], axis=1))
        i += 5000


@pytest.mark.parametrize("seed", range(3))
def test_killed_appender_is_recovered(tmp_path, seed):
    import random
    import signal
    import time

    f = str(tmp_path / "k.npy")
    N.create_appendable(f, np.int64, (2,))
    p = multiprocessing.get_context("spawn").Process(target=_endless_appender, args=(f,))
    p.start()
    try:
        while N.npy_info(f).shape[0] < 20000:
            assert p.is_alive()
            time.sleep(0.005)
        time.sleep(random.Random(seed).random() * 0.05)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.join()
    before = N.npy_info(f)
    rep = N.recover_npy(f)
    after = N.npy_info(f)
    assert after.complete and after.shape[0] == rep["rows"] >= before.shape[0]
    out = np.load(f)
    k = np.arange(out.shape[0], dtype=np.int64)
    np.testing.assert_array_equal(out, np.stack([k, 2 * k], axis=1))
    assert N.append_npy(f, np.array([[out.shape[0], 2 * out.shape[0]]])) == out.shape[0] + 1


# ---- progress and cancellation (an extension) ------------------------------------


class _Recorder:
    """Records progress calls; returns False at call ``cancel_at`` (0-based) or raises
    ``raise_at``'s exception there."""

    def __init__(self, cancel_at=None, raise_exc=None):
        self.calls, self.cancel_at, self.raise_exc = [], cancel_at, raise_exc

    def __call__(self, done, total):
        self.calls.append((done, total))
        if self.cancel_at is not None and len(self.calls) - 1 == self.cancel_at:
            if self.raise_exc is not None:
                raise self.raise_exc
            return False
        return None  # anything but False goes on

    def check(self, total):
        assert self.calls[0] == (0, total)
        assert self.calls[-1] == (total, total)
        assert all(t == total for _, t in self.calls)
        dones = [d for d, _ in self.calls]
        assert dones == sorted(dones)
        assert len(self.calls) >= 4, self.calls  # 10 MiB: three blocks and the start


@pytest.fixture
def big(tmp_path):
    a = np.arange(10 * (1 << 20) // 8, dtype=np.float64).reshape(-1, 8)
    f = tmp_path / "big.npy"
    np.save(f, a)
    return a, f


def test_import_progress_and_cancel(tmp_path, store, big):
    a, f = big
    rec = _Recorder()
    N.import_npy(store, f, "a", progress=rec)
    rec.check(a.nbytes)
    np.testing.assert_array_equal(store.load("a"), a)
    rec = _Recorder(cancel_at=2)
    with pytest.raises(numpack.CancelledError):
        N.import_npy(store, f, "b", progress=rec)
    assert len(rec.calls) == 3
    assert store.get_member_list() == ["a"]
    # An exception in the callback cancels and comes back unchanged.
    boom = KeyError("boom")
    with pytest.raises(KeyError) as info:
        N.import_npy(store, f, "b", progress=_Recorder(cancel_at=1, raise_exc=boom))
    assert info.value is boom
    assert store.get_member_list() == ["a"]
    with pytest.raises(TypeError):
        N.import_npy(store, f, "c", progress=42)


def test_npz_import_progress_and_cancel(tmp_path, store, big):
    a, _ = big
    f = tmp_path / "two.npz"
    np.savez(f, x=a, y=a[::2])
    with pytest.raises(numpack.CancelledError):
        N.import_npz(store, f, progress=_Recorder(cancel_at=3))
    assert store.get_member_list() == []
    rec = _Recorder()
    assert N.import_npz(store, f, progress=rec) == ["x", "y"]
    rec.check(a.nbytes + a[::2].nbytes)


def test_export_progress_and_cancel_leaves_old_file(tmp_path, store, big):
    a, f = big
    N.import_npy(store, f, "a")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "a.npy"
    out.write_bytes(b"old")
    with pytest.raises(numpack.CancelledError):
        N.export_npy(store, "a", out, overwrite=True, progress=_Recorder(cancel_at=2))
    assert out.read_bytes() == b"old"
    assert sorted(os.listdir(out_dir)) == ["a.npy"]
    rec = _Recorder()
    N.export_npy(store, "a", out, overwrite=True, progress=rec)
    rec.check(a.nbytes)
    np.testing.assert_array_equal(np.load(out), a)


def test_append_file_progress_and_cancel_keeps_old_rows(tmp_path, big):
    a, f = big
    dst = tmp_path / "dst.npy"
    N.append_npy(dst, a[:3])
    before = dst.read_bytes()
    with pytest.raises(numpack.CancelledError):
        N.append_npy_file(dst, f, progress=_Recorder(cancel_at=1))
    assert dst.read_bytes() == before
    rec = _Recorder()
    assert N.append_npy_file(dst, f, progress=rec) == 3 + len(a)
    rec.check(a.nbytes)
    np.testing.assert_array_equal(np.load(dst), np.concatenate([a[:3], a]))


def test_io_from_npy_and_to_npy_take_progress(tmp_path, big):
    a, f = big
    rec = _Recorder()
    from_npy(f, tmp_path / "s", progress=rec)
    rec.check(a.nbytes)
    rec = _Recorder()
    to_npy(tmp_path / "s", tmp_path / "o.npz", progress=rec)
    rec.check(a.nbytes)
    with pytest.raises(numpack.CancelledError):
        to_npy(tmp_path / "s", tmp_path / "o.npy", progress=_Recorder(cancel_at=1))
    assert not (tmp_path / "o.npy").exists()
