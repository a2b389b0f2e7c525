"""batch_mode and writable_batch_mode."""

import gc
import subprocess
import sys

import numpy as np
import pytest

from numpack import BatchModeContext, NumPack, WritableBatchMode


def test_batch_mode_cache_identity_and_flush(path):
    with NumPack(path) as npk:
        npk.save({"a": np.zeros((4, 2)), "b": np.ones(3)})
        with npk.batch_mode() as ctx:
            assert isinstance(ctx, BatchModeContext) and npk._cache_enabled
            a = npk.load("a")
            assert npk.load("a") is a and npk.load("a", lazy=True) is a
            a[0] = 5  # edited in place, never saved
            new = np.arange(6.0)
            npk.save({"c": new})
            assert npk.load("c") is new and "c" in ctx._dirty_arrays
            b = npk.load("b")
            b += 1
            npk.save({"b": b})
            with pytest.raises(KeyError):
                npk.load("zz")
        assert not npk._cache_enabled and npk._memory_cache == {}
        # every cached array is written: in-place edits persist even though "c" was saved
        np.testing.assert_array_equal(npk.load("a")[0], [5, 5])
        np.testing.assert_array_equal(npk.load("b"), np.full(3, 2.0))
        np.testing.assert_array_equal(npk.load("c"), np.arange(6.0))
    with NumPack(path) as npk:
        assert npk.get_member_list() == ["a", "b", "c"]


def test_batch_mode_discards_on_exception(npk):
    npk.save({"a": np.zeros(3)})
    with pytest.raises(RuntimeError, match="boom"):
        with npk.batch_mode():
            npk.load("a")[:] = 7
            npk.save({"n": np.ones(2)})
            raise RuntimeError("boom")
    np.testing.assert_array_equal(npk.load("a"), np.zeros(3))
    assert not npk.has_array("n") and not npk._cache_enabled


def test_batch_mode_append_drop_replace_evict(npk):
    npk.save({"a": np.arange(5.0)})
    with npk.batch_mode():
        x = npk.load("a")
        npk.append({"a": np.array([9.0])})
        assert npk.load("a") is not x and len(npk.load("a")) == 6
        npk.replace({"a": np.array([-1.0])}, 0)
        assert npk.load("a")[0] == -1.0  # replace evicts too: no stale copy
        npk.drop("a", [1])
        assert len(npk.load("a")) == 5
    np.testing.assert_array_equal(npk.load("a"), [-1, 2, 3, 4, 9])


def test_batch_mode_errors_raise(npk):
    with pytest.raises(ValueError, match="Unsupported dtype"):
        with npk.batch_mode():
            npk.save({"bad": np.array(["x"])})
    assert not npk._cache_enabled


def test_nested_batch_mode_outer_writes(npk):
    with npk.batch_mode():
        npk.save({"a": np.ones(2)})
        with npk.batch_mode():
            npk.save({"b": np.ones(2)})
        assert npk._cache_enabled  # the inner exit does not end the outer batch
        assert not npk.has_array("a")
    assert npk.get_member_list() == ["a", "b"]


def test_close_inside_batch_flushes(path):
    npk = NumPack(path)
    npk.open()
    ctx = npk.batch_mode()
    ctx.__enter__()
    npk.save({"a": np.arange(3)})
    npk.close()
    with NumPack(path) as n:
        np.testing.assert_array_equal(n.load("a"), np.arange(3))


def test_batch_mode_needs_open(path):
    with pytest.raises(RuntimeError):
        with NumPack(path).batch_mode():
            pass


def test_edit_loop(npk):
    npk.save({"a": np.zeros((100, 4), np.float32)})
    with npk.batch_mode():
        for i in range(20):
            a = npk.load("a")
            a[i * 5:(i + 1) * 5] = i
            npk.save({"a": a})
    ref = np.repeat(np.arange(20, dtype=np.float32), 5)[:, None] * np.ones((1, 4), np.float32)
    np.testing.assert_array_equal(npk.load("a"), ref)


# ----- writable batch mode ------------------------------------------------------------------


def test_writable_batch_mode_writes_through(path):
    with NumPack(path) as npk:
        npk.save({"a": np.zeros((10, 3), np.float64), "e": np.zeros((0, 3))})
        with npk.writable_batch_mode() as wb:
            assert isinstance(wb, WritableBatchMode)
            a = wb.load("a")
            assert wb.load("a") is a and a.flags.writeable and not a.flags.owndata
            a[2] = 7
            a[:, 0] += 1
            wb.save({"a": a})
            assert wb.load("e").shape == (0, 3)
        with pytest.raises(ValueError):  # after the block: raises, does not crash
            a[0] = 1
        assert a[2, 1] == 7  # reading stays safe
        ref = np.zeros((10, 3))
        ref[2] = 7
        ref[:, 0] += 1
        np.testing.assert_array_equal(npk.load("a"), ref)
    del npk
    gc.collect()
    assert a[2, 1] == 7
    with NumPack(path) as npk:
        np.testing.assert_array_equal(npk.load("a"), ref)


def test_writable_batch_mode_flush_and_sync(path):
    """The block's end does not wait for the disk; flush() and sync() do, and another
    process sees the writes as soon as they are made."""
    with NumPack(path) as npk:
        npk.save({"a": np.zeros((4, 2), np.int64)})
        with npk.writable_batch_mode() as wb:
            a = wb.load("a")
            a[1] = 5
            wb.flush()
            a[2] = 6
        npk.sync()
        code = (
            "import sys, numpy as np; from numpack import NumPack\n"
            "with NumPack(sys.argv[1]) as n: print(n.load('a').sum())"
        )
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == str(2 * 5 + 2 * 6)


def test_writable_batch_mode_respects_deletions(npk):
    full = np.arange(20, dtype=np.int32).reshape(10, 2)
    npk.save({"a": full})
    npk.drop("a", [0, 4])
    with npk.writable_batch_mode() as wb:
        a = wb.load("a")
        assert a.shape == (8, 2)
        np.testing.assert_array_equal(a, np.delete(full, [0, 4], axis=0))
        a[0] = -1
    ref = np.delete(full, [0, 4], axis=0)
    ref[0] = -1
    np.testing.assert_array_equal(npk.load("a"), ref)
    np.testing.assert_array_equal(npk.getitem("a", [0]), [[-1, -1]])


def test_writable_batch_mode_errors(path):
    with NumPack(path) as npk:
        npk.save({"a": np.zeros(3)})
        with npk.writable_batch_mode() as wb:
            with pytest.raises(KeyError):
                wb.load("zz")
        wb = npk.writable_batch_mode()
    with pytest.raises(RuntimeError):
        wb.load("a")


def test_close_releases_writable_arrays(path):
    npk = NumPack(path)
    npk.open()
    npk.save({"a": np.zeros(4)})
    wb = npk.writable_batch_mode().__enter__()
    a = wb.load("a")
    a[1] = 3
    npk.close()
    with pytest.raises(ValueError):
        a[0] = 1
    with NumPack(path) as n:
        np.testing.assert_array_equal(n.load("a"), [0, 3, 0, 0])


def test_batch_mode_writes_changed_rows_like_a_whole_save(path, monkeypatch):
    """Arrays loaded in the block are written as their changed rows when the stored
    array did not change meanwhile; the result must be what a whole save gives."""
    whole = []
    save = NumPack.save

    def spy(self, arrays):
        if not self._cache_enabled:
            whole.extend(arrays)
        return save(self, arrays)

    monkeypatch.setattr(NumPack, "save", spy)
    rng = np.random.default_rng(5)
    base = {"f": rng.standard_normal((3000, 3)).astype(np.float32),  # 12-byte rows
            "b": rng.integers(0, 2, (500, 5)).astype(bool),  # 5-byte rows
            "c": (rng.standard_normal((700, 2)) + 1j).astype(np.complex128),
            "i": np.arange(1000, dtype=np.int64)}
    with NumPack(path) as npk:
        npk.save(base)
        with npk.batch_mode():
            f = npk.load("f")
            f[[0, 1500, 2999]] = np.nan
            f[7, 2] = -0.0  # same value as 0.0 for ==, other bytes
            b = npk.load("b")
            b[499] = ~b[499]
            c = npk.load("c")
            c[10:20] += 1
            npk.save({"c": c})
            i = npk.load("i")  # loaded, not changed
        assert whole == list(base)  # the first save only: the rest went by rows
        want = {k: v.copy() for k, v in base.items()}
        want["f"][[0, 1500, 2999]] = np.nan
        want["f"][7, 2] = -0.0
        want["b"][499] = ~want["b"][499]
        want["c"][10:20] += 1
        assert i is not None
    with NumPack(path) as npk:
        for k, v in want.items():
            got = npk.load(k)
            assert got.dtype == v.dtype and got.shape == v.shape
            assert got.tobytes() == v.tobytes(), k


def test_batch_mode_saves_whole_when_shape_or_store_changed(path):
    with NumPack(path) as npk:
        npk.save({"a": np.zeros((10, 2)), "b": np.zeros((10, 2)), "c": np.zeros((10, 2))})
        with npk.batch_mode():
            a = npk.load("a")
            a[0] = 1
            with NumPack(path) as other:  # the stored array changes under the cache
                other.replace({"a": np.full((1, 2), 7.0)}, [5])
                other.drop("c", [0])
            npk.save({"b": np.ones((4, 3))})  # loaded? no: saved with another shape
            npk.load("c")[1] = 3  # rows deleted by the other handle meanwhile
        np.testing.assert_array_equal(npk.load("a"), np.vstack([np.ones((1, 2)), np.zeros((9, 2))]))
        np.testing.assert_array_equal(npk.load("b"), np.ones((4, 3)))
        c = np.zeros((9, 2))
        c[1] = 3
        np.testing.assert_array_equal(npk.load("c"), c)

        npk.save({"d": np.zeros((6, 2))})
        with npk.batch_mode():
            d = npk.load("d")
            npk.save({"d": np.arange(12.0).reshape(4, 3)})  # same name, other shape
        np.testing.assert_array_equal(npk.load("d"), np.arange(12.0).reshape(4, 3))


def test_batch_mode_most_rows_changed_saved_whole(path, monkeypatch):
    whole = []
    save = NumPack.save

    def spy(self, arrays):
        if not self._cache_enabled:
            whole.extend(arrays)
        return save(self, arrays)

    with NumPack(path) as npk:
        npk.save({"a": np.zeros((100, 3)), "b": np.zeros((100, 3))})
        monkeypatch.setattr(NumPack, "save", spy)
        with npk.batch_mode():
            npk.load("a")[:60] = 1  # most rows: saved whole
            npk.load("b")[:10] = 2  # a few: written as rows
        assert whole == ["a"]
        np.testing.assert_array_equal(npk.load("a"), np.vstack([np.ones((60, 3)), np.zeros((40, 3))]))
        np.testing.assert_array_equal(npk.load("b"), np.vstack([np.full((10, 3), 2.0), np.zeros((90, 3))]))


MB = 1 << 20


def test_batch_mode_memory_limit_spills_to_the_store(npk):
    """Past memory_limit the cache is written at once and keeps only weak references:
    memory goes as soon as the caller drops an array, nothing is lost."""
    import weakref

    with npk.batch_mode(memory_limit=1) as ctx:
        held = np.zeros((MB // 8 // 4, 4))  # 0.25 MB, kept by the caller
        npk.save({"held": held})
        dropped = np.ones((MB // 8, 2))  # 2 MB: passes the limit
        npk.save({"dropped": dropped})
        # Spilled: both are in the store already and no longer cached.
        assert npk._memory_cache == {} and ctx._dirty_arrays == set()
        assert npk.has_array("held") and npk.has_array("dropped")
        gone = weakref.ref(dropped)
        del dropped
        gc.collect()
        assert gone() is None, "the cache must not keep a spilled array alive"
        # The caller's array is still the one load returns; edits after the spill count.
        assert npk.load("held") is held
        held[3] = 7.0
        again = npk.load("dropped")  # reloaded from the store
        np.testing.assert_array_equal(again, np.ones((MB // 8, 2)))
        again[0, 0] = -1.0
    np.testing.assert_array_equal(npk.load("held")[3], [7.0] * 4)
    assert npk.load("dropped")[0, 0] == -1.0
    assert npk._memory_spilled == {}


def test_batch_mode_memory_limit_edit_of_a_spilled_array_is_written(npk):
    npk.save({"a": np.zeros((10, 3))})
    with npk.batch_mode(memory_limit=0.5):
        a = npk.load("a")
        npk.save({"big": np.zeros((MB // 8, 1))})  # 1 MB: spills "a" too
        assert "a" not in npk._memory_cache
        a[2] = 5.0  # never loaded or saved again in the block
    np.testing.assert_array_equal(npk.load("a")[2], [5.0] * 3)


def test_batch_mode_memory_limit_validation_and_raise(npk):
    for bad in (0, -1, "10"):
        with pytest.raises(ValueError, match="memory_limit"):
            npk.batch_mode(memory_limit=bad)
    npk.save({"a": np.zeros(4)})
    with pytest.raises(RuntimeError, match="boom"):
        with npk.batch_mode(memory_limit=0.001):
            a = npk.load("a")
            npk.save({"b": np.ones(4000)})  # spilled: written before the error
            a[0] = 9.0  # after the spill, and the block raises: not written
            raise RuntimeError("boom")
    assert npk.has_array("b") and npk.load("a")[0] == 0.0
