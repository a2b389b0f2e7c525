"""A Python process that dies without closing its store loses nothing it was told was
done: every call is committed to the store's log when it returns.

The children are real processes (``sys.executable``): one killed with SIGKILL right
after its last call returned, others leaving with ``os._exit`` (no close, no
finalizers)."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import numpack

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

# Writes, prints "done", then waits to be killed (it never closes the store).
WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from numpack import NumPack

    npk = NumPack(sys.argv[1], warn_no_context=False)
    npk.open()
    npk.save({"a": np.arange(1000 * 4, dtype=np.float32).reshape(1000, 4),
              "b": np.arange(50, dtype=np.int64)})
    for i in range(20):
        npk.append({"a": np.full((7, 4), 1000 + i, dtype=np.float32)})
        npk.append({"b": np.array([100 + i], dtype=np.int64)})
    npk.save({"c": np.ones((3, 2, 2), dtype=np.float64)})
    npk.replace({"a": np.full((2, 4), -1, dtype=np.float32)}, [5, 900])
    npk.drop("b", [0, 1])
    npk.append({"c": np.zeros((1, 2, 2), dtype=np.float64)})
    print("done", flush=True)
    sys.stdin.read()  # until killed
    """
)


def _expected():
    a = np.arange(1000 * 4, dtype=np.float32).reshape(1000, 4)
    a = np.concatenate([a] + [np.full((7, 4), 1000 + i, dtype=np.float32) for i in range(20)])
    a[[5, 900]] = -1
    b = np.concatenate([np.arange(50, dtype=np.int64), 100 + np.arange(20, dtype=np.int64)])[2:]
    c = np.concatenate([np.ones((3, 2, 2)), np.zeros((1, 2, 2))])
    return {"a": a, "b": b, "c": c}


def _child(code, *args, **kw):
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_sigkill_after_writes_loses_nothing(path):
    p = _child(WRITER, path)
    try:
        line = p.stdout.readline()
        assert line.strip() == "done", p.stderr.read()
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
        p.stdin.close()
        p.stdout.close()
        p.stderr.close()
    assert p.returncode == -signal.SIGKILL
    with numpack.NumPack(path, warn_no_context=False) as npk:
        assert npk.get_member_list() == ["a", "b", "c"]
        for name, want in _expected().items():
            assert npk.get_shape(name) == want.shape
            got = npk.load(name)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(np.asarray(npk.load(name, lazy=True)), want)


# Creates arrays <tag>_0 .. <tag>_<n-1>, then leaves without closing (os._exit skips
# finalizers, so not even NumPack.__del__ runs).
CREATOR = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from numpack import NumPack

    path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    npk = NumPack(path, warn_no_context=False)
    npk.open()
    sys.stdin.readline()  # start together
    for i in range(n):
        npk.save({f"{tag}_{i}": np.full((10 + i, 3), i, dtype=np.int32)})
    print("done", flush=True)
    os._exit(0)
    """
)


def test_two_processes_exit_without_close_both_kept(path):
    with numpack.NumPack(path, warn_no_context=False):  # create the store
        pass
    n = 25
    procs = [_child(CREATOR, path, tag, n) for tag in ("p", "q")]
    try:
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            assert out.strip() == "done", err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    with numpack.NumPack(path, warn_no_context=False) as npk:
        names = npk.get_member_list()
        assert names == sorted(f"{t}_{i}" for t in ("p", "q") for i in range(n))
        for t in ("p", "q"):
            for i in range(n):
                np.testing.assert_array_equal(npk.load(f"{t}_{i}"), np.full((10 + i, 3), i, dtype=np.int32))
