"""The cffi layer: declarations made from the header, errors and dtypes derived from it."""

import re

import numpy as np
import pytest
from cffi import FFI

import numpack
from numpack import _native


def test_plain_cdef_is_accepted_by_a_fresh_ffi():
    cdef, ints, strings = _native.plain_cdef(_native.HEADER_TEXT)
    assert "#include" not in cdef and "#if" not in cdef and "/*" not in cdef
    ffi = FFI()
    ffi.cdef(cdef)
    assert ffi.sizeof("npk_array_info") > 32 * 8
    assert ints["NPK_MAX_NDIM"] == 32 and strings["NPK_VERSION_STRING"] == numpack.__version__
    for name in re.findall(r"^\w[\w\s\*]*?\b(npk_\w+)\(", _native.HEADER_TEXT, re.M):
        assert hasattr(_native.lib, name), name


def test_every_status_has_an_exception_class():
    statuses = dict(re.findall(r"NPK_STATUS_(\w+) = (\d+)", _native.HEADER_TEXT))
    assert len(statuses) >= 17
    for name, code in statuses.items():
        if name == "OK":
            continue
        cls = _native.ERRORS[int(code)]
        assert issubclass(cls, numpack.NumpackError)
        assert cls.code == int(code) and cls.status == name
        assert getattr(numpack, cls.__name__) is cls
    assert issubclass(numpack.NotFoundError, KeyError)
    assert issubclass(numpack.IndexOutOfRangeError, IndexError)
    assert issubclass(numpack.DtypeMismatchError, TypeError)
    for n in ("ShapeMismatchError", "InvalidNameError", "InvalidArgumentError", "BufferSizeError"):
        assert issubclass(getattr(numpack, n), ValueError)
    assert issubclass(numpack.IoError, OSError)
    assert issubclass(numpack.CorruptError, RuntimeError)


def test_unknown_status_still_raises():
    with pytest.raises(numpack.NumpackError) as e:
        _native.check(12345)
    assert isinstance(e.value, RuntimeError) and e.value.code == 12345


def test_error_carries_library_message(npk):
    npk.save({"a": np.zeros(3)})
    with pytest.raises(IndexError) as e:
        npk.getitem("a", [7])
    assert e.value.code == _native.STATUS["NPK_STATUS_INDEX_OUT_OF_RANGE"]
    assert str(e.value) and "7" in str(e.value)


def test_dtype_table_from_header():
    codes = dict(re.findall(r"NPK_DTYPE_(\w+) = (\d+)", _native.HEADER_TEXT))
    assert len(codes) == 14
    for name, code in codes.items():
        assert _native.CODE_TO_DTYPE[int(code)] == np.dtype(name.lower())
