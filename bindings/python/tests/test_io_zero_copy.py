"""numpack.io.zero_copy: sharing is checked by memory addresses (np.shares_memory, Arrow
buffer addresses, tensor data pointers), copies by their warnings. The torch cases
skip when torch is absent (bindings/python/run_torch_tests.sh runs them with torch)."""

import contextlib
import importlib.util
import inspect
import sys
import warnings

import numpy as np
import pytest
from conftest import DTYPES, sample

import numpack
from numpack.io import (DependencyError, DLPackBuffer, ZeroCopyArray, arrow_to_numpy_zero_copy,
                        from_dlpack, numpy_to_arrow_zero_copy, numpy_to_torch_zero_copy,
                        table_to_numpy_zero_copy, to_dlpack, torch_to_numpy_zero_copy,
                        wrap_for_zero_copy)

pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install numpack[parquet])")

HAVE_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(
    not HAVE_TORCH, reason="torch is not installed: bindings/python/run_torch_tests.sh runs these")

ARROW_DTYPES = [d for d in DTYPES if d not in ("bool", "complex64", "complex128")]


@contextlib.contextmanager
def _no_warnings():
    """Any warning (a copy announced) fails the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("dtype", DTYPES)
def test_dlpack_round_trip_shares_memory(dtype):
    arr = sample(dtype, (6, 4))
    buf = to_dlpack(arr)
    assert isinstance(buf, DLPackBuffer) and buf.array is arr
    assert buf.__dlpack_device__() == (DLPackBuffer.kDLCPU, 0)
    back = from_dlpack(buf)
    assert np.shares_memory(back, arr) and np.array_equal(back, arr)
    assert np.shares_memory(DLPackBuffer.from_dlpack(arr), arr)
    # A raw capsule works too, once.
    assert np.shares_memory(from_dlpack(arr.__dlpack__()), arr)


def test_dlpack_copies_non_contiguous_with_a_warning():
    arr = np.arange(20.0).reshape(4, 5)[:, ::2]
    with pytest.warns(UserWarning, match="not C-contiguous"):
        buf = DLPackBuffer(arr)
    assert buf.array.flags.c_contiguous and np.array_equal(buf.array, arr)
    assert not np.shares_memory(buf.array, arr)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        DLPackBuffer([1, 2, 3])
    with pytest.raises(TypeError, match="DLPack"):
        from_dlpack([1, 2, 3])


def test_lazy_array_memory_reaches_dlpack_consumers(tmp_path):
    arr = np.arange(40, dtype=np.int32).reshape(10, 4)
    with numpack.NumPack(tmp_path / "s", warn_no_context=False) as npk:
        npk.save({"a": arr})
        lazy = npk.load("a", lazy=True)
        view = np.asarray(lazy)
        assert np.array_equal(from_dlpack(view), arr)
        assert np.shares_memory(from_dlpack(to_dlpack(view)), view)
        del view, lazy


@pytest.mark.parametrize("dtype", ARROW_DTYPES)
def test_arrow_round_trip_shares_the_buffer(dtype):
    arr = sample(dtype, (50,))
    with _no_warnings():
        arrow = numpy_to_arrow_zero_copy(arr)
        assert arrow.buffers()[1].address == arr.ctypes.data
        back = arrow_to_numpy_zero_copy(arrow)
    assert back.ctypes.data == arr.ctypes.data and np.array_equal(back, arr)
    assert not back.flags.writeable
    copy = arrow_to_numpy_zero_copy(arrow, writable=True)
    assert copy.flags.writeable and not np.shares_memory(copy, arr) and np.array_equal(copy, arr)


def test_nd_arrays_become_tensor_arrays_over_the_same_buffer():
    arr = sample("float32", (8, 3, 2))
    with _no_warnings():
        arrow = numpy_to_arrow_zero_copy(arr)
        assert isinstance(arrow.type, pa.FixedShapeTensorType) and len(arrow) == 8
        assert arrow.storage.values.buffers()[1].address == arr.ctypes.data
        back = arrow_to_numpy_zero_copy(arrow)
    assert back.shape == arr.shape and np.shares_memory(back, arr)
    zc = wrap_for_zero_copy(arr)
    flat = zc.to_arrow()
    assert len(flat) == arr.size and flat.buffers()[1].address == arr.ctypes.data


def test_arrow_copies_are_announced():
    with pytest.warns(UserWarning, match="bits"):
        arrow = numpy_to_arrow_zero_copy(np.array([True, False, True]))
    assert arrow.to_pylist() == [True, False, True]
    with pytest.warns(UserWarning, match="copy"):
        assert arrow_to_numpy_zero_copy(arrow).tolist() == [True, False, True]
    with pytest.warns(UserWarning, match="copy"):
        got = arrow_to_numpy_zero_copy(pa.array([1.0, None, 3.0]))
    assert np.isnan(got[1])
    strided = np.arange(10, dtype=np.int64)[::2]
    with pytest.warns(UserWarning, match="not C-contiguous"):
        assert numpy_to_arrow_zero_copy(strided).to_pylist() == [0, 2, 4, 6, 8]
    with pytest.warns(UserWarning, match="big-endian"):
        assert numpy_to_arrow_zero_copy(np.arange(3, dtype=">i4")).to_pylist() == [0, 1, 2]
    chunked = pa.chunked_array([pa.array([1, 2]), pa.array([3])])
    with pytest.warns(UserWarning, match="2 chunks"):
        assert arrow_to_numpy_zero_copy(chunked).tolist() == [1, 2, 3]


def test_arrow_refuses_what_it_cannot_hold():
    for dtype in ("complex64", "complex128"):
        with pytest.raises(TypeError, match=f"{dtype}.*Arrow"):
            numpy_to_arrow_zero_copy(np.zeros(3, dtype))
    with pytest.raises(TypeError, match="numeric"):
        numpy_to_arrow_zero_copy(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="0-d"):
        numpy_to_arrow_zero_copy(np.array(1.0))
    with pytest.raises(TypeError):
        arrow_to_numpy_zero_copy([1, 2])


def test_table_columns_share_memory():
    x, y = np.arange(100, dtype=np.int32), np.linspace(0, 1, 100)
    table = pa.table({"x": numpy_to_arrow_zero_copy(x), "y": numpy_to_arrow_zero_copy(y)})
    with _no_warnings():
        cols = table_to_numpy_zero_copy(table)
        only = table_to_numpy_zero_copy(table, column="y")
    assert sorted(cols) == ["x", "y"]
    assert np.shares_memory(cols["x"], x) and np.shares_memory(cols["y"], y)
    assert np.shares_memory(only, y)
    with pytest.raises(KeyError, match="nope"):
        table_to_numpy_zero_copy(table, column="nope")


def test_zero_copy_array_wrapper():
    arr = sample("int16", (5, 3))
    zc = ZeroCopyArray(arr)
    assert zc.array is arr and zc.shape == (5, 3) and zc.dtype == np.int16 and zc.nbytes == arr.nbytes
    assert np.asarray(zc) is arr
    assert np.asarray(zc, dtype=np.float64).dtype == np.float64
    assert np.shares_memory(np.from_dlpack(zc), arr)
    assert np.shares_memory(from_dlpack(zc.to_dlpack()), arr)
    assert np.shares_memory(ZeroCopyArray.from_dlpack(arr).array, arr)
    arrow = pa.array(np.arange(4, dtype=np.float64))
    assert ZeroCopyArray.from_arrow(arrow).array.ctypes.data == arrow.buffers()[1].address
    with pytest.warns(UserWarning):
        ZeroCopyArray(arr.T)
    with pytest.raises(TypeError):
        ZeroCopyArray([1, 2])


_ = object()  # "no default"
CHUNK = 100 * 1024 * 1024
# NumPack 0.7.0's parameters: (name, default) in order, for this file's and its
# siblings' functions (PyTorch and S3 tests skip without their libraries; this does not).
UPSTREAM = {
    "from_tensor": [("tensor", _), ("output_path", _), ("array_name", None), ("drop_if_exists", False),
                    ("return_npk_obj", False)],
    "to_tensor": [("input_path", _), ("array_name", None), ("device", None), ("dtype", None)],
    "from_pt": [("input_path", _), ("output_path", _), ("key", None), ("drop_if_exists", False),
                ("chunk_size", CHUNK), ("return_npk_obj", False)],
    "to_pt": [("input_path", _), ("output_path", _), ("array_names", None), ("as_dict", True),
              ("chunk_size", CHUNK)],
    "from_s3": [("s3_path", _), ("output_path", _), ("format", "auto"), ("drop_if_exists", False),
                ("chunk_size", CHUNK), ("return_npk_obj", False)],
    "to_s3": [("input_path", _), ("s3_path", _), ("format", "auto"), ("array_name", None),
              ("chunk_size", CHUNK)],
    "DLPackBuffer": [("array", _), ("stream", None), ("max_version", None)],
    "to_dlpack": [("array", _)],
    "from_dlpack": [("obj", _)],
    "numpy_to_arrow_zero_copy": [("array", _), ("name", "data")],
    "arrow_to_numpy_zero_copy": [("arrow_array", _), ("writable", False)],
    "table_to_numpy_zero_copy": [("table", _), ("column", None)],
    "numpy_to_torch_zero_copy": [("array", _), ("device", None)],
    "torch_to_numpy_zero_copy": [("tensor", _)],
    "ZeroCopyArray": [("array", _)],
    "wrap_for_zero_copy": [("array", _)],
}
CONVERTERS = {"from_tensor", "to_tensor", "from_pt", "to_pt", "from_s3", "to_s3"}


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_signature_matches_numpack_07(name):
    """NumPack's positional parameters, names, order and defaults; our additions
    (progress= on every converter, ...) are keyword-only; **s3_kwargs stays."""
    import numpack.io as nio

    assert name in nio.__all__
    params = list(inspect.signature(getattr(nio, name)).parameters.values())
    positional = [p for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert [(p.name, _ if p.default is p.empty else p.default) for p in positional] == UPSTREAM[name]
    extra = [p for p in params if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.VAR_KEYWORD)]
    assert all(p.kind == p.KEYWORD_ONLY for p in extra)
    if name in CONVERTERS:
        assert "progress" in [p.name for p in extra]
    if name in ("from_s3", "to_s3"):
        assert params[-1].kind == params[-1].VAR_KEYWORD and params[-1].name == "s3_kwargs"


def test_missing_library_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # what an absent package looks like
    with pytest.raises(DependencyError, match="pip install"):
        numpy_to_torch_zero_copy(np.zeros(3))
    with pytest.raises(DependencyError, match="pip install"):
        torch_to_numpy_zero_copy(np.zeros(3))
    from numpack.io import from_pt, from_tensor, to_pt, to_tensor

    for call in (lambda: from_tensor(np.zeros(3), tmp_path / "s"), lambda: to_tensor(tmp_path / "s"),
                 lambda: from_pt(tmp_path / "x.pt", tmp_path / "s"),
                 lambda: to_pt(tmp_path / "s", tmp_path / "x.pt")):
        with pytest.raises(DependencyError, match=r"pip install numpack\[torch\]"):
            call()
    assert not (tmp_path / "s").exists() and not (tmp_path / "x.pt").exists()
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(DependencyError, match="pip install"):
        numpy_to_arrow_zero_copy(np.zeros(3))


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_torch_share_memory_both_ways(dtype):
    import torch

    arr = sample(dtype, (7, 5))
    with _no_warnings():
        t = numpy_to_torch_zero_copy(arr)
        assert t.data_ptr() == arr.ctypes.data and tuple(t.shape) == arr.shape
        back = torch_to_numpy_zero_copy(t)
    assert np.shares_memory(back, arr) and np.array_equal(back, arr)
    # DLPack towards torch and back.
    t2 = torch.from_dlpack(to_dlpack(arr))
    assert t2.data_ptr() == arr.ctypes.data
    assert np.shares_memory(from_dlpack(t2), arr)


@needs_torch
def test_torch_views_stay_views():
    import torch

    arr = np.arange(60, dtype=np.float32).reshape(6, 10)
    view = arr[1:, ::3]
    with _no_warnings():
        t = numpy_to_torch_zero_copy(view)
    assert t.data_ptr() == view.ctypes.data and torch.equal(t, torch.tensor(view))
    src = torch.arange(12.0, requires_grad=True)
    tt = src.detach().reshape(3, 4).t()
    with _no_warnings():
        n = torch_to_numpy_zero_copy(tt)
        assert n.ctypes.data == tt.data_ptr() and np.array_equal(n, tt.numpy())
        assert torch_to_numpy_zero_copy(src).ctypes.data == src.data_ptr()
    zc = ZeroCopyArray.from_torch(torch.arange(6).reshape(2, 3))
    assert zc.to_torch().data_ptr() == zc.array.ctypes.data


@needs_torch
def test_torch_copies_and_refusals_are_explicit():
    import torch

    with pytest.warns(UserWarning, match="negative strides"):
        t = numpy_to_torch_zero_copy(np.arange(5)[::-1])
    assert t.tolist() == [4, 3, 2, 1, 0]
    with pytest.warns(UserWarning, match="byte order"):
        assert numpy_to_torch_zero_copy(np.arange(3, dtype=">i4")).tolist() == [0, 1, 2]
    with pytest.warns(UserWarning, match="conjugated"):
        n = torch_to_numpy_zero_copy(torch.tensor([1 + 2j]).conj())
    assert n.tolist() == [1 - 2j]
    with pytest.raises(TypeError, match="bfloat16"):
        torch_to_numpy_zero_copy(torch.zeros(2, dtype=torch.bfloat16))
    with pytest.raises(TypeError, match="Tensor"):
        torch_to_numpy_zero_copy(np.zeros(2))
    with pytest.raises(TypeError, match="to_dense"):
        torch_to_numpy_zero_copy(torch.eye(3).to_sparse())
