"""Threads on one instance, the GIL released during library calls, two processes."""

import multiprocessing as mp
import threading

import numpy as np
import pytest

from numpack import NumPack


def test_threads_save_and_read_one_instance(npk):
    errors = []

    def work(t):
        try:
            for i in range(20):
                a = np.full((50, 4), t * 100 + i, dtype=np.int32)
                npk.save({f"t{t}_{i}": a})
                npk.append({f"t{t}_{i}": a[:5]})
                np.testing.assert_array_equal(npk.getitem(f"t{t}_{i}", [0, -1]), a[:2])
                assert npk.get_shape(f"t{t}_{i}") == (55, 4)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(npk.get_member_list()) == 80


def test_threads_append_to_one_array(npk):
    npk.save({"a": np.zeros((0, 2), np.int64)})

    def work(t):
        for i in range(50):
            npk.append({"a": np.array([[t, i]], np.int64)})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    rows = npk.load("a")
    assert rows.shape == (200, 2)
    assert sorted(map(tuple, rows.tolist())) == sorted((t, i) for t in range(4) for i in range(50))


# Run in a child process so that a held GIL shows up as a timeout, not a hung test run.
_GIL_CHILD = r"""
import fcntl, os, sys, threading, time
import numpy as np
import pytest
from numpack import NumPack

npk = NumPack(sys.argv[1])
npk.open()
npk.save({"a": np.zeros((1, 2))})
# Writers serialise on an flock of the store's log; holding it here blocks the next
# append inside the library until it is released.
lock = open(os.path.join(sys.argv[1], "numpack.wal"), "rb")
fcntl.flock(lock, fcntl.LOCK_EX)
done = threading.Event()

def write():
    npk.append({"a": np.ones((1, 2))})
    done.set()

writer = threading.Thread(target=write)
writer.start()
spins, deadline = 0, time.monotonic() + 0.3
while time.monotonic() < deadline:  # needs the GIL while the writer waits in the library
    spins += 1
blocked = not done.is_set()
fcntl.flock(lock, fcntl.LOCK_UN)
writer.join()
print(blocked, spins, npk.get_shape("a"))
npk.close()
"""


def test_gil_released_while_a_call_waits_in_the_library(tmp_path):
    """A thread blocked inside a library call (here: waiting for the store's writer lock)
    lets other threads run Python code. With the GIL held during calls the child process
    would deadlock and time out."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _GIL_CHILD, str(tmp_path / "s")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    blocked, spins, shape = out.stdout.split(maxsplit=2)
    assert blocked == "True"  # the append really waited for the lock
    assert int(spins) > 1000
    assert shape.strip() == "(2, 2)"


def _writer(path, tag, n, barrier):
    barrier.wait()
    with NumPack(path) as npk:
        for i in range(n):
            npk.append({"shared": np.array([[tag, i]], np.int64)})
            npk.save({f"p{tag}_{i}": np.full(3, i)})


def test_two_processes_one_store(path):
    with NumPack(path) as npk:
        npk.save({"shared": np.zeros((0, 2), np.int64)})
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(str(path), t, 30, barrier)) for t in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with NumPack(path) as npk:
        rows = npk.load("shared")
        assert sorted(map(tuple, rows.tolist())) == sorted((t, i) for t in (1, 2) for i in range(30))
        names = npk.get_member_list()
        assert len(names) == 61  # neither process lost the other's arrays
        np.testing.assert_array_equal(npk.load("p2_29"), np.full(3, 29))


def _reader(path, q):
    with NumPack(path) as npk:
        q.put(npk.load("x").tolist())


def test_other_process_sees_unclosed_changes(path):
    npk = NumPack(path)
    npk.open()
    npk.save({"x": np.arange(4)})
    npk.drop("x", [0])
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_reader, args=(str(path), q))
    p.start()
    assert q.get(timeout=120) == [1, 2, 3]
    p.join(60)
    npk.close()


def test_threads_share_one_lazy_array(npk):
    a = np.arange(40_000, dtype=np.int64).reshape(10_000, 4)
    npk.save({"a": a})
    npk.drop("a", list(range(0, 10_000, 7)))
    ref = np.delete(a, list(range(0, 10_000, 7)), axis=0)
    for _ in range(5):
        lazy = npk.load("a", lazy=True)  # first use happens in the threads
        errors = []

        def work(seed):
            try:
                rng = np.random.default_rng(seed)
                for _ in range(50):
                    idx = rng.integers(0, len(ref), 20)
                    np.testing.assert_array_equal(lazy[idx], ref[idx])
                    s = int(rng.integers(0, len(ref)))
                    np.testing.assert_array_equal(lazy[s:s + 30:3], ref[s:s + 30:3])
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []


# ----- small reads: no cached shapes ---------------------------------------------------


def _appender(path, rows):
    with NumPack(path) as npk:
        npk.append({"x": np.arange(rows, dtype=np.int64).reshape(-1, 2)})


def test_getitem_sees_another_process_append_at_once(path):
    """getitem asks the library for the shape on every call: rows another process
    appended are in the next slice, open-ended or not, without a refresh."""
    with NumPack(path) as npk:
        npk.save({"x": np.zeros((3, 2), np.int64)})
        assert npk.getitem("x", slice(0, None)).shape == (3, 2)
        ctx = mp.get_context("spawn")
        p = ctx.Process(target=_appender, args=(str(path), 4))
        p.start()
        p.join(120)
        assert p.exitcode == 0
        np.testing.assert_array_equal(npk.getitem("x", slice(3, None)), [[0, 1], [2, 3]])
        assert npk.getitem("x", slice(1, 100)).shape == (4, 2)
        np.testing.assert_array_equal(npk.getitem("x", slice(-1, None)), [[2, 3]])
        assert npk.getitem("x", slice(10, 20)).shape == (0, 2)


def _rewriter(path, what):
    with NumPack(path) as npk:
        if what == "dtype":  # same row bytes, another dtype
            npk.save({"x": np.arange(8, dtype=np.float64).reshape(4, 2)})
        elif what == "trailing":  # same dtype and row bytes, another row shape
            npk.save({"x": np.arange(8, dtype=np.int64).reshape(4, 1, 2)})
        elif what == "delete":
            npk.drop("x", [0])
        elif what == "same-shape":  # new contents, identical shape
            npk.save({"x": np.arange(8, dtype=np.int64).reshape(4, 2) + 100})


@pytest.mark.parametrize("what", ["dtype", "trailing", "delete", "same-shape"])
def test_getitem_slices_follow_another_process_changes(path, what):
    """getitem keeps the last shape it saw to read a slice in one library call; the
    library checks it against the array at the read, so every change by another
    process (same byte size included) shows in the next slice."""
    with NumPack(path) as npk:
        npk.save({"x": np.arange(8, dtype=np.int64).reshape(4, 2)})
        for _ in range(2):  # the second read goes through the kept shape
            np.testing.assert_array_equal(npk.getitem("x", slice(0, 4)), np.arange(8).reshape(4, 2))
            np.testing.assert_array_equal(npk.getitem("x", np.array([1], np.int64)), [[2, 3]])
        ctx = mp.get_context("spawn")
        p = ctx.Process(target=_rewriter, args=(str(path), what))
        p.start()
        p.join(120)
        assert p.exitcode == 0
        out = npk.getitem("x", slice(0, None))
        expect = {
            "dtype": np.arange(8, dtype=np.float64).reshape(4, 2),
            "trailing": np.arange(8, dtype=np.int64).reshape(4, 1, 2),
            "delete": np.arange(2, 8, dtype=np.int64).reshape(3, 2),
            "same-shape": np.arange(8, dtype=np.int64).reshape(4, 2) + 100,
        }[what]
        assert out.dtype == expect.dtype and out.shape == expect.shape
        np.testing.assert_array_equal(out, expect)
        np.testing.assert_array_equal(npk.getitem("x", slice(-1, None)), expect[-1:])
        rows = npk.getitem("x", np.array([1], np.int64))
        assert rows.dtype == expect.dtype and rows.shape == expect[[1]].shape
        np.testing.assert_array_equal(rows, expect[[1]])
