"""LazyArray: views over the mapping, logical rows everywhere, NumPy interop."""

import copy
import gc
import operator

import numpy as np
import pytest

from numpack import LazyArray, NumPack

DELETED = [0, 3, 4, 11]


@pytest.fixture(params=["dense", "with-deletions"])
def case(request, npk):
    full = np.arange(14 * 3 * 2, dtype=np.int64).reshape(14, 3, 2)
    npk.save({"a": full})
    if request.param == "dense":
        return npk, full
    npk.drop("a", DELETED)
    return npk, np.delete(full, DELETED, axis=0)


def test_attributes(case):
    npk, ref = case
    lazy = npk.load("a", lazy=True)
    assert isinstance(lazy, LazyArray)
    assert lazy.shape == ref.shape and len(lazy) == len(ref)
    assert lazy.dtype == ref.dtype and lazy.ndim == 3
    assert lazy.size == ref.size and lazy.nbytes == ref.nbytes and lazy.itemsize == 8
    t = lazy.T
    assert isinstance(t, np.ndarray)
    np.testing.assert_array_equal(t, ref.T)
    assert "LazyArray('a', shape=[" in repr(lazy)
    with pytest.raises(TypeError):
        hash(lazy)


KEYS = [
    0, -1, 5, np.int32(2), [0, 2, 2, 9], [-1, 0], [], np.array([1, 5]), np.array([], dtype=np.int64),
    slice(None), slice(1, 4), slice(None, None, 2), slice(None, None, -1), slice(8, 1, -3), slice(-2, None),
    slice(20, 30), np.arange(10) % 2 == 0, (1, 2), (1, 2, 0), (slice(1, 5), 1), (slice(None), [0, 2], 1),
    ([0, 1], [1, 2]), ([0, 1], slice(None), 0), (Ellipsis, 0), (None, 1), (slice(2, 6), None, 1),
    (np.array([True] * 5 + [False] * 5), 2), (slice(None, None, 3), [2, 0]), (-3, Ellipsis),
    np.ones((10, 3), dtype=bool), (..., [1, 0], 1),
]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k)[:40] for k in KEYS])
def test_indexing_is_logical_and_numpy_like(case, key):
    npk, ref = case
    lazy = npk.load("a", lazy=True)
    if isinstance(key, np.ndarray) and key.dtype == bool and key.shape[0] != len(ref):
        key = key[: len(ref)] if key.shape[0] > len(ref) else np.resize(key, (len(ref),) + key.shape[1:])
    if isinstance(key, tuple) and isinstance(key[0], np.ndarray) and key[0].dtype == bool:
        key = (np.resize(key[0], len(ref)),) + key[1:]
    expect = ref[key]
    out = lazy[key]
    assert isinstance(out, np.ndarray)
    assert out.shape == np.shape(expect)
    np.testing.assert_array_equal(out, expect)
    if out.size:  # always a fresh array, never a window into the mapping
        assert not np.shares_memory(out, np.asarray(lazy))


@pytest.mark.parametrize("make,exc", [
    (lambda n: n, IndexError), (lambda n: -n - 1, IndexError), (lambda n: [0, n], IndexError),
    (lambda n: "x", IndexError), (lambda n: (0, 0, 0, 0), IndexError),
    (lambda n: np.ones(3, dtype=bool), IndexError), (lambda n: 1.5, IndexError),
])
def test_index_errors(case, make, exc):
    npk, ref = case
    key = make(len(ref))
    lazy = npk.load("a", lazy=True)
    with pytest.raises(exc):
        lazy[key]


def test_asarray_zero_copy_when_dense(npk):
    a = np.arange(30, dtype=np.float32).reshape(10, 3)
    npk.save({"a": a})
    lazy = npk.load("a", lazy=True)
    v1, v2 = np.asarray(lazy), np.asarray(lazy)
    assert np.shares_memory(v1, v2)  # both over the mapping
    assert not v1.flags.writeable
    with pytest.raises(ValueError):
        v1[0, 0] = 1
    np.testing.assert_array_equal(v1, a)
    assert np.asarray(lazy, dtype=np.float64).dtype == np.float64
    c = np.array(lazy)  # np.array copies
    assert not np.shares_memory(c, v1)


def test_asarray_logical_after_deletions(npk):
    a = np.arange(20).reshape(10, 2)
    npk.save({"a": a})
    npk.drop("a", [1, 2, 8])
    lazy = npk.load("a", lazy=True)
    ref = np.delete(a, [1, 2, 8], axis=0)
    for got in (np.asarray(lazy), np.array(lazy), lazy.copy(), copy.copy(lazy), copy.deepcopy(lazy)):
        np.testing.assert_array_equal(got, ref)
    assert np.sum(lazy) == ref.sum()
    np.testing.assert_array_equal(np.sqrt(lazy), np.sqrt(ref))
    np.testing.assert_array_equal(lazy @ np.ones(2, dtype=np.int64), ref @ np.ones(2, dtype=np.int64))
    assert memoryview(np.asarray(lazy)).shape == ref.shape
    # The live rows are scattered: the buffer (or __array_interface__) hands NumPy a copy
    # (NumPy does not pass its copy flag on), while __array__ itself still refuses copy=False.
    scattered = np.asarray(lazy, copy=False)
    np.testing.assert_array_equal(scattered, ref)
    assert not scattered.flags.writeable
    with pytest.raises(ValueError, match="not contiguous"):
        lazy.__array__(copy=False)
    assert lazy.tolist() == ref.tolist()


def test_view_outlives_store_and_lazy(path):
    a = np.arange(1000, dtype=np.float64)
    with NumPack(path) as n:
        n.save({"a": a})
        lazy = n.load("a", lazy=True)
    view = np.asarray(lazy)
    del lazy
    gc.collect()
    with NumPack(path) as n:  # dropped and replaced: the view keeps its own mapping
        n.drop("a")
        n.save({"a": np.zeros(5)})
    gc.collect()
    np.testing.assert_array_equal(view, a)
    assert view.base is not None


def test_lazy_after_close_and_snapshot(path):
    with NumPack(path) as n:
        n.save({"a": np.arange(10)})
        lazy = n.load("a", lazy=True)
        n.append({"a": np.arange(3)})
        n.drop("a", [0])
        assert lazy.shape == (10,)  # a snapshot of what was there at load time
    np.testing.assert_array_equal(lazy[:], np.arange(10))
    with NumPack(path) as n:
        assert n.load("a", lazy=True).shape == (12,)


def test_missing_lazy_is_keyerror(npk):
    with pytest.raises(KeyError):
        npk.load("zz", lazy=True)


OPS = [operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.mod,
       operator.pow, operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge,
       operator.and_, operator.or_, operator.xor, operator.lshift, operator.rshift, divmod]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("op", OPS, ids=lambda o: o.__name__)
def test_operators(case, op):
    npk, ref = case
    lazy = npk.load("a", lazy=True)
    for other in (3, np.arange(2, dtype=np.int64) + 1):
        np.testing.assert_array_equal(op(lazy, other), op(ref, other))
        if op not in (operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge):
            np.testing.assert_array_equal(op(other, lazy) if not isinstance(other, np.ndarray) else op(other, ref),
                                          op(other, ref))
    np.testing.assert_array_equal(op(lazy, lazy), op(ref, ref))


def test_reflected_and_unary(case):
    npk, ref = case
    lazy = npk.load("a", lazy=True)
    np.testing.assert_array_equal(10 - lazy, 10 - ref)
    np.testing.assert_array_equal(2 ** (lazy % 5), 2 ** (ref % 5))
    np.testing.assert_array_equal(-lazy, -ref)
    np.testing.assert_array_equal(+lazy, ref)
    np.testing.assert_array_equal(~lazy, ~ref)
    np.testing.assert_array_equal(abs(-lazy), ref)
    np.testing.assert_array_equal(np.ones(2, np.int64) + lazy, ref + 1)
    x = lazy
    x += 1  # no in-place operator: rebinds to a new ndarray
    assert isinstance(x, np.ndarray)
    np.testing.assert_array_equal(npk.load("a"), ref)


def test_float_bitwise_raises(npk):
    npk.save({"f": np.ones(3), "b": np.array([True, False, True])})
    with pytest.raises(TypeError):
        npk.load("f", lazy=True) & 1
    np.testing.assert_array_equal(npk.load("b", lazy=True) & True, [True, False, True])
    np.testing.assert_array_equal(npk.load("b", lazy=True) + True, [True, True, True])


def test_iteration(case):
    npk, ref = case
    rows = list(npk.load("a", lazy=True))
    assert len(rows) == len(ref)
    for r, e in zip(rows, ref):
        np.testing.assert_array_equal(r, e)
    assert 5 in npk.load("a", lazy=True) or 5 not in ref


def test_reshape(case):
    npk, ref = case
    lazy = npk.load("a", lazy=True)
    for shape in [(-1,), (len(ref), 6), [len(ref) * 2, 3], len(ref) * 6]:
        r = lazy.reshape(shape)
        assert isinstance(r, LazyArray)
        np.testing.assert_array_equal(np.asarray(r), ref.reshape(shape))
    np.testing.assert_array_equal(np.asarray(lazy.reshape(len(ref), -1))[1], ref.reshape(len(ref), -1)[1])
    for bad in [(7, 7), (-1, -1), (-2, 3), (0, 6)]:
        with pytest.raises(ValueError):
            lazy.reshape(bad)


def test_helpers(case):
    npk, ref = case
    lazy = npk.load("a", lazy=True)
    idx = list(range(0, len(ref), 1)) * 2  # >= 10 indices work
    np.testing.assert_array_equal(lazy.vectorized_gather(idx), ref[idx])
    assert lazy.vectorized_gather([]).shape == (0,) + ref.shape[1:]
    rows = lazy.mega_batch_get_rows([1, 0, -1], 10)
    assert isinstance(rows, list) and len(rows) == 3
    np.testing.assert_array_equal(rows[2], ref[-1])
    with pytest.raises(OverflowError):
        lazy.mega_batch_get_rows([0], -1)
    mask = np.arange(len(ref)) % 3 == 0
    for m in (lazy.parallel_boolean_index, lazy.boolean_index_smart, lazy.boolean_index_adaptive,
              lazy.boolean_index_production, lazy.boolean_index_adaptive_algorithm):
        np.testing.assert_array_equal(m(mask), ref[mask])
        np.testing.assert_array_equal(m(mask.tolist()), ref[mask])
        with pytest.raises(ValueError):
            m(mask[:-1])
    assert lazy.choose_optimal_algorithm(np.zeros(100, bool)) == "sparse"
    assert lazy.choose_optimal_algorithm(np.ones(100, bool)) == "dense"
    assert lazy.choose_optimal_algorithm(np.arange(100) % 2 == 0) == "adaptive"
    assert lazy.intelligent_warmup("anything") is None
    with lazy as same:
        assert same is lazy
    lazy.close()
    np.testing.assert_array_equal(lazy[0], ref[0])


def test_one_d_and_float16(npk):
    npk.save({"h": np.arange(6, dtype=np.float16)})
    npk.drop("h", [1])
    lazy = npk.load("h", lazy=True)
    assert lazy.dtype == np.float16
    assert lazy[0].shape == () and float(lazy[1]) == 2.0
    np.testing.assert_array_equal(lazy[::2], np.array([0, 3, 5], np.float16))
