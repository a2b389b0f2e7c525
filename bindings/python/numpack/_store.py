"""The ``NumPack`` class: a store directory, over the C ABI."""

import gc
import os
import struct
import sys
import threading
import warnings
import weakref
from pathlib import Path

import numpy as np

from . import _index
from ._native import (CODE_TO_DTYPE, DTYPE_TO_CODE, ERRORS_BY_NAME, MACROS, c_string, check, error_for, ffi, lib,
                      raw_lib, take_names)

_NotFound = ERRORS_BY_NAME["NOT_FOUND"]
_BufferSize = ERRORS_BY_NAME["BUFFER_SIZE"]
_InvalidName = ERRORS_BY_NAME["INVALID_NAME"]
_MAX_NDIM = MACROS["NPK_MAX_NDIM"]


class ArrayNotFoundError(_NotFound, ValueError):
    """``append`` to an array that does not exist: a ``KeyError`` like every unknown
    name, and a ``ValueError`` as upstream NumPack raises there."""


def _name(name):
    if type(name) is str:
        return c_string(name.encode("utf-8"))
    if not isinstance(name, str):
        raise TypeError(f"array names must be str, not {type(name).__name__}")
    return c_string(name.encode("utf-8"))


# Dtypes the library takes as they are (native little-endian or byte-order free).
_FAST_CODES = {dt: code for dt, code in DTYPE_TO_CODE.items() if dt.isnative}
# Indexed by dtype code.
_DTYPES = [None] * (max(CODE_TO_DTYPE) + 1)
for _c, _d in CODE_TO_DTYPE.items():
    _DTYPES[_c] = _d
_I64 = np.dtype(np.int64)


def prepare(arr, what="array"):
    """The C-contiguous little-endian ndarray to hand to the library, and its dtype code.
    Copies only when the input is not already in that form (Fortran order, strides,
    byte order)."""
    if type(arr) is np.ndarray:  # fast path: nothing to convert
        code = _FAST_CODES.get(arr.dtype)
        if code is not None and arr.flags.c_contiguous:
            return arr, code
    if not isinstance(arr, np.ndarray):
        arr = np.asarray(arr)
    dt = arr.dtype
    if dt.fields is not None or dt.subdtype is not None:
        raise ValueError(f"Unsupported dtype: {dt}")
    target = dt.newbyteorder("<") if dt.byteorder not in ("|",) else dt
    code = DTYPE_TO_CODE.get(target)
    if code is None:
        raise ValueError(f"Unsupported dtype: {dt}")
    if dt != target or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=target)
    return arr, code


_I64_ARRAY = ffi.typeof("int64_t[]")
_CHARS = ffi.typeof("char[]")


def _idx(sel):
    return ffi.from_buffer(_I64_ARRAY, sel) if sel.shape[0] else ffi.NULL


def rbuf(arr):
    return ffi.from_buffer(_CHARS, arr) if arr.nbytes else ffi.NULL


def wbuf(arr):
    return ffi.from_buffer(_CHARS, arr, require_writable=True) if arr.nbytes else ffi.NULL


_U64_ARRAY = ffi.typeof("uint64_t[]")


def _shape_arg(shape):
    return ffi.new(_U64_ARRAY, shape or (0,))


def _save_options(compression):
    """``npk_save_options`` for ``compression``: 'zstd' or ('zstd', level)."""
    level = 0
    if isinstance(compression, tuple):
        if len(compression) != 2:
            raise ValueError("compression must be 'zstd' or ('zstd', level)")
        compression, level = compression
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
            raise TypeError(f"compression level must be an int, not {type(level).__name__}")
        level = int(level)
        if level == 0 or not -7 <= level <= 22:
            raise ValueError(f"zstd level {level} is out of range (1..22, or -7..-1 for the fast modes)")
    if compression != "zstd":
        raise ValueError(f"unknown compression {compression!r}: use None, 'zstd' or ('zstd', level)")
    opts = ffi.new("npk_save_options *")
    opts.compression = MACROS["NPK_COMPRESSION_ZSTD"]
    opts.level = level
    return opts


_open_lazy = None  # LazyArray._open, set on first lazy load (_lazy imports this module)


def _lazy_open(store, name):
    global _open_lazy
    if _open_lazy is None:
        from ._lazy import LazyArray

        _open_lazy = LazyArray._open
    return _open_lazy(store, name)


_INFO_P = ffi.typeof("npk_array_info *")
_INFO_BYTES = ffi.sizeof("npk_array_info")
_INFO_WORDS = _INFO_BYTES // 8
# getitem's guesses of array shapes kept per store (each a few hundred bytes)
_MAX_LAYOUTS = 1024
assert _INFO_WORDS == _MAX_NDIM + 3 and ffi.offsetof("npk_array_info", "shape") == 8
# Word 0 of npk_array_info holds dtype (first uint32) and ndim (second uint32).
_NDIM_SHIFT, _DTYPE_SHIFT = (32, 0) if sys.byteorder == "little" else (0, 32)
_LOW32 = 0xFFFFFFFF
_PHYS_WORD = 1 + _MAX_NDIM
_tls = threading.local()

_store_info = lib.npk_store_info
# getitem, the per-call cost of every small read, tests its key for NUL itself (with
# c_string, as the wrapped functions of _native.lib do) and calls the library directly;
# its one-call path passes only keys kept in _layouts, which passed that test before.
_store_info_unchecked = raw_lib.npk_store_info
_read_rows_unchecked = raw_lib.npk_store_read_rows
_read_range_unchecked = raw_lib.npk_store_read_range
_read_range_checked = raw_lib.npk_store_read_range_checked
_read_rows_checked = raw_lib.npk_store_read_rows_checked
_replace_rows = lib.npk_store_replace_rows
_replace_range = lib.npk_store_replace_range
_append = lib.npk_store_append
_delete_rows = lib.npk_store_delete_rows
# cffi's ffi.from_buffer / ffi.new are Python wrappers over these (same positional
# arguments when given a ctype): call the backend directly, one Python frame less.
_backend = getattr(ffi, "_backend", None)
_from_buffer = getattr(_backend, "from_buffer", None) or ffi.from_buffer
_newp = getattr(_backend, "newp", None) or ffi.new
_NULL = ffi.NULL


# The struct's 64-bit words in native order, decoded in one step (a cffi field access
# per value, or memoryview.tolist, cost several times more).
_UNPACK_WORDS = struct.Struct(f"={_INFO_WORDS}Q").unpack_from
# Only the words getitem needs (dtype and ndim, shape): no int made for the others.
_UNPACK_SHAPE = struct.Struct(f"={1 + _MAX_NDIM}Q").unpack_from


def _new_info():
    raw = ffi.new(_INFO_P)
    _tls.info = info = (raw, ffi.buffer(raw))
    return info


def _info_words(h, key):
    """``npk_store_info`` as a tuple of its 64-bit words, through a per-thread reused
    struct."""
    try:
        raw, buf = _tls.info
    except AttributeError:
        raw, buf = _new_info()
    status = _store_info(h, key, raw)
    if status:
        raise error_for(status)
    return _UNPACK_WORDS(buf)


class _Info:
    __slots__ = ("dtype", "shape", "physical_rows", "modified_us")

    def __init__(self, w):
        w0 = w[0]
        ndim = (w0 >> _NDIM_SHIFT) & _LOW32
        self.dtype = _DTYPES[(w0 >> _DTYPE_SHIFT) & _LOW32]
        self.shape = tuple(w[1:1 + ndim])
        self.physical_rows = w[_PHYS_WORD]
        self.modified_us = w[_PHYS_WORD + 1]


class NumPack:
    """A store of named N-dimensional arrays in directory ``filename``."""

    def __init__(self, filename, drop_if_exists=False, strict_context_mode=False,
                 warn_no_context=None, force_gc_on_close=False):
        self.filename = Path(filename)
        self._drop_if_exists = bool(drop_if_exists)
        self._dropped_once = False
        self._strict_context_mode = bool(strict_context_mode)
        self._force_gc_on_close = bool(force_gc_on_close)
        self._context_entered = False
        self._handle = None
        self._memory_cache = {}
        # batch mode: npk_store_info words of each array when it was loaded into the cache
        self._memory_stamps = {}
        # batch mode past memory_limit: name -> (weak reference to the array already
        # written, its npk_store_info words then)
        self._memory_spilled = {}
        # getitem: name -> (encoded name, npk_array_info of the last read, live rows,
        # trailing shape, dtype). Only a guess: the library checks it on every read.
        self._layouts = {}
        self._cache_enabled = False
        self._batch_context = None
        self._writable_batch = None
        if warn_no_context is None:
            warn_no_context = sys.platform.startswith("win")
        if warn_no_context and not self._strict_context_mode:
            warnings.warn(
                "NumPack is used without strict context mode: close it explicitly or use "
                "'with NumPack(...) as npk:'. Pass strict_context_mode=True, or "
                "warn_no_context=False to silence this warning.",
                UserWarning,
                stacklevel=2,
            )

    # ----- lifecycle -------------------------------------------------------------------

    @property
    def is_opened(self):
        return self._handle is not None

    @property
    def is_closed(self):
        return self._handle is None

    def open(self):
        if self._handle is not None:
            return
        flags = MACROS["NPK_OPEN_CREATE"]
        if self._drop_if_exists and not self._dropped_once:
            flags |= MACROS["NPK_OPEN_DROP_IF_EXISTS"]
        elif self.filename.exists() and not self.filename.is_dir():
            raise FileExistsError(f"{self.filename} exists and is not a directory")
        out = ffi.new("npk_store **")
        check(lib.npk_store_open(os.fsencode(self.filename), flags, out))
        self._handle = out[0]
        self._dropped_once = True

    def close(self, force_gc=None):
        if self._handle is None:
            return
        try:
            if self._cache_enabled:
                self._flush_cache()
        finally:
            if self._writable_batch is not None:
                self._writable_batch._release()
            handle, self._handle = self._handle, None
            check(lib.npk_store_close(handle))
            if force_gc if force_gc is not None else self._force_gc_on_close:
                gc.collect()

    def __enter__(self):
        self.open()
        self._context_entered = True
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        try:
            self.close()
        finally:
            self._context_entered = False
        return False

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle is not None:
            self._handle = None
            try:
                lib.npk_store_close(handle)
            except Exception:
                pass

    def __repr__(self):
        if self._handle is None:
            return f"NumPack({self.filename}, status=closed)"
        return f"NumPack({self.filename}, arrays={len(self.get_member_list())})"

    @property
    def _filename(self):
        """NumPack's attribute for the store path (its examples pass
        ``str(npk._filename)`` to the streaming engine)."""
        return self.filename

    def _h(self):
        h = self._handle
        if h is None:
            raise RuntimeError("NumPack instance is not opened or has been closed")
        if self._strict_context_mode and not self._context_entered:
            raise RuntimeError(
                "NumPack is in strict context mode: use it inside 'with NumPack(...) as npk:'"
            )
        return h

    def _info(self, name):
        return _Info(_info_words(self._h(), _name(name)))

    # ----- whole arrays ----------------------------------------------------------------

    def save(self, arrays, compression=None):
        if not isinstance(arrays, dict):
            raise ValueError("arrays must be a dictionary")
        if compression is not None:  # compressed arrays
            return self._save_compressed(arrays, compression)
        if self._cache_enabled:
            self._h()
            for name, arr in arrays.items():
                _name(name)
                self._memory_cache[name] = arr
                self._memory_spilled.pop(name, None)
                self._batch_context._dirty_arrays.add(name)
            self._batch_context._check_memory()
            return
        h = self._h()
        for name, arr in arrays.items():
            key = _name(name)
            arr, code = prepare(arr)
            if arr.ndim == 0:
                raise ValueError(f"cannot save 0-d array {name!r}: arrays need a row axis")
            check(lib.npk_store_save(h, key, code, arr.ndim, _shape_arg(arr.shape), rbuf(arr), arr.nbytes))

    # ----- compressed arrays -----------------------------------------------------------

    def _save_compressed(self, arrays, compression):
        """``save(..., compression='zstd' | ('zstd', level))``: each array goes to disk
        at once in compressed chunks (also in batch mode, whose cache would otherwise
        write it plain later)."""
        opts = _save_options(compression)
        h = self._h()
        for name, arr in arrays.items():
            key = _name(name)
            arr, code = prepare(arr)
            if arr.ndim == 0:
                raise ValueError(f"cannot save 0-d array {name!r}: arrays need a row axis")
            if self._cache_enabled:
                self._evict(name)
            check(lib.npk_store_save_with(h, key, code, arr.ndim, _shape_arg(arr.shape), rbuf(arr), arr.nbytes, opts))

    def get_compression(self, array_name):
        """How ``array_name`` is stored: ``None`` for a plain array, else a dict with
        ``codec`` ('zstd'), ``level``, ``chunks``, ``rows_per_chunk``, ``stored_bytes``
        (the file, superseded chunks included until compaction), ``raw_bytes`` and
        ``ratio`` (raw / stored)."""
        if self._cache_enabled and array_name in self._memory_cache:
            self._flush_one(array_name)
        info = ffi.new("npk_compression_info *")
        check(lib.npk_store_compression(self._h(), _name(array_name), info))
        if info.compression == MACROS["NPK_COMPRESSION_NONE"]:
            return None
        return {
            "codec": "zstd",
            "level": int(info.level),
            "chunks": int(info.chunks),
            "rows_per_chunk": int(info.rows_per_chunk),
            "stored_bytes": int(info.stored_bytes),
            "raw_bytes": int(info.raw_bytes),
            "ratio": (info.raw_bytes / info.stored_bytes) if info.stored_bytes else float("nan"),
        }

    def _flush_one(self, name):
        """Writes one cached array now (batch mode), so its stored form can be asked."""
        arr = self._memory_cache.get(name)
        stamp = self._memory_stamps.get(name)
        self._cache_enabled = False
        try:
            self._write_cached({name: arr}, {name: stamp})
        finally:
            self._cache_enabled = True
        self._memory_stamps[name] = _info_words(self._h(), _name(name))

    # ----- end compressed arrays -------------------------------------------------------

    def load(self, array_name, lazy=False):
        if lazy and not self._cache_enabled:
            return (_open_lazy or _lazy_open)(self, array_name)
        if self._cache_enabled:
            self._h()
            arr = self._memory_cache.get(array_name)
            if arr is None:
                spilled = self._memory_spilled.pop(array_name, None)
                arr = spilled[0]() if spilled else None
                if arr is not None:  # written when the cache was spilled, still in use
                    words = spilled[1]
                else:
                    arr, words = self._load_eager(array_name, True)
                self._memory_cache[array_name] = arr
                self._memory_stamps[array_name] = words
                self._batch_context._check_memory()  # may spill it again at once
            return arr
        return self._load_eager(array_name)

    def _load_eager(self, name, with_info=False):
        h = self._h()
        key = _name(name)
        for attempt in range(8):
            words = _info_words(h, key)
            info = _Info(words)
            out = np.empty(info.shape, dtype=info.dtype)
            try:
                check(lib.npk_store_load(h, key, wbuf(out), out.nbytes))
                return (out, words) if with_info else out
            except _BufferSize:  # changed by another handle in between: read again
                if attempt == 7:
                    raise

    def __getitem__(self, key):
        return self.load(key)

    def append(self, arrays):
        if not isinstance(arrays, dict):
            raise ValueError("arrays must be a dictionary")
        h = self._h()
        for name, arr in arrays.items():
            key = _name(name)
            arr, code = prepare(arr)
            ndim = arr.ndim
            if ndim == 0:
                raise ValueError(f"cannot append a 0-d array to {name!r}")
            nbytes = arr.nbytes
            status = _append(h, key, code, ndim, _newp(_U64_ARRAY, arr.shape),
                             _from_buffer(_CHARS, arr) if nbytes else _NULL, nbytes)
            if status:
                e = error_for(status)
                if isinstance(e, _NotFound):
                    raise ArrayNotFoundError(f"Array {name} does not exist ({e})", e.code) from None
                raise e
            self._layouts.pop(name, None)  # its row count changed: getitem asks again
            if self._memory_cache:
                self._evict(name)

    def replace(self, arrays, indexes):
        if not isinstance(arrays, dict):
            raise ValueError("arrays must be a dictionary")
        h = self._h()
        for name, arr in arrays.items():
            key = _name(name)
            w = _info_words(h, key)
            ndim = (w[0] >> _NDIM_SHIFT) & _LOW32
            if not ndim:
                raise ValueError(f"{name!r} is 0-d: it has no rows to replace")
            if type(indexes) is slice and indexes.step is None:  # fast path
                start, stop, _ = indexes.indices(w[1])
                sel = (start, stop if stop > start else start)
            elif (type(indexes) is np.ndarray and indexes.dtype is _I64 and indexes.ndim == 1
                    and indexes.flags.c_contiguous):
                sel = indexes
            else:
                sel = _index.rows(indexes, w[1])
            k = sel[1] - sel[0] if type(sel) is tuple else sel.shape[0]
            if type(arr) is np.ndarray and arr.flags.c_contiguous:  # prepare()'s fast path
                code = _FAST_CODES.get(arr.dtype)
                if code is None:
                    arr, code = prepare(arr)
            else:
                arr, code = prepare(arr)
            trailing = w[2:1 + ndim]
            if arr.shape == trailing and k == 1:
                arr = arr.reshape((1,) + trailing)
            if arr.shape != (k,) + trailing:
                raise ValueError(
                    f"replace {name!r}: data of shape {arr.shape} for {k} rows of shape {trailing}"
                )
            nbytes = arr.nbytes
            data = _from_buffer(_CHARS, arr) if nbytes else _NULL
            if type(sel) is tuple:
                status = _replace_range(h, key, code, sel[0], k, data, nbytes)
            else:
                status = _replace_rows(h, key, code, _from_buffer(_I64_ARRAY, sel) if k else _NULL,
                                       k, data, nbytes)
            if status:
                raise error_for(status)
            if self._memory_cache:
                self._evict(name)

    @staticmethod
    def _names_arg(array_name):
        if isinstance(array_name, str):
            return [array_name]
        if isinstance(array_name, list):
            return array_name
        raise TypeError("array_name must be a str or a list of str")

    def drop(self, array_name, indexes=None):
        """Deletes rows ``indexes`` of each named array or, with ``indexes=None``, all
        of them: as in NumPack 0.7, the array stays listed with zero rows (same dtype and
        row shape), and later appends start from empty. ``remove`` deletes arrays."""
        names = self._names_arg(array_name)
        h = self._h()
        for name in names:
            key = _name(name)
            if indexes is None:
                self._empty(h, name, key)
            else:
                w = _info_words(h, key)
                if not (w[0] >> _NDIM_SHIFT) & _LOW32:
                    raise ValueError(f"{name!r} is 0-d: it has no rows to drop")
                sel = _index.rows(indexes, w[1])
                if type(sel) is tuple:
                    sel = np.arange(sel[0], sel[1], dtype=np.int64)
                k = sel.shape[0]
                if k:
                    status = _delete_rows(h, key, _from_buffer(_I64_ARRAY, sel), k)
                    if status:
                        raise error_for(status)
            self._layouts.pop(name, None)  # its row count changed: getitem asks again
            if self._memory_cache:
                self._evict(name)

    def _empty(self, h, name, key):
        """Replaces ``name`` by zero rows of its dtype and row shape (a new file, so the
        old rows are gone from disk and cannot come back with an append); a 0-d array,
        which has no rows, is removed."""
        info = _Info(_info_words(h, key))
        if not info.shape:
            check(lib.npk_store_drop(h, key))
            return
        empty = np.empty((0,) + info.shape[1:], info.dtype)
        compression = self.get_compression(name)
        code = DTYPE_TO_CODE[info.dtype]
        if compression is None:
            check(lib.npk_store_save(h, key, code, empty.ndim, _shape_arg(empty.shape), _NULL, 0))
        else:
            opts = _save_options(("zstd", compression["level"]))
            check(lib.npk_store_save_with(h, key, code, empty.ndim, _shape_arg(empty.shape), _NULL, 0, opts))

    def remove(self, array_name):
        """Deletes each named array and its files (not in NumPack, where ``drop`` leaves
        the array listed with zero rows). ``KeyError`` for an unknown name."""
        h = self._h()
        for name in self._names_arg(array_name):
            check(lib.npk_store_drop(h, _name(name)))
            self._layouts.pop(name, None)
            if self._memory_cache:
                self._evict(name)

    def getitem(self, array_name, indexes):
        h = self._handle
        if h is None or self._strict_context_mode:
            h = self._h()
        fast = None  # the key is a run of rows (True) or int64 indexes as the library takes them (False)
        if type(indexes) is slice:
            fast = True if indexes.step is None else None
        elif (type(indexes) is np.ndarray and indexes.dtype is _I64 and indexes.ndim == 1
                and indexes.flags.c_contiguous):
            fast = False
        if fast is not None:
            known = self._layouts.get(array_name) if type(array_name) is str else None
            if known is not None:
                # One call: the rows, if the array still has the shape last seen here.
                key, expect, rows, trailing, dtype = known
                if fast:
                    start, stop, _ = indexes.indices(rows)
                    if stop < start:
                        stop = start
                    out = np.empty((stop - start,) + trailing, dtype)
                    nbytes = out.nbytes
                    status = _read_range_checked(h, key, expect, start, stop,
                                                 _from_buffer(_CHARS, out, True) if nbytes else _NULL, nbytes)
                else:
                    k = indexes.shape[0]
                    out = np.empty((k,) + trailing, dtype)
                    nbytes = out.nbytes
                    status = _read_rows_checked(h, key, expect, _from_buffer(_I64_ARRAY, indexes) if k else _NULL, k,
                                                _from_buffer(_CHARS, out, True) if nbytes else _NULL, nbytes)
                if not status:
                    return out
                # changed since (or failed): ask for the shape and report errors as below
        key = array_name.encode("utf-8") if type(array_name) is str else _name(array_name)
        if b"\x00" in key:
            c_string(key)
        # _info_words inlined: this is the per-call cost of every small read
        try:
            raw, buf = _tls.info
        except AttributeError:
            raw, buf = _new_info()
        status = _store_info_unchecked(h, key, raw)
        if status:
            raise error_for(status)
        w = _UNPACK_SHAPE(buf)
        w0 = w[0]
        ndim = (w0 >> _NDIM_SHIFT) & _LOW32
        if not ndim:
            raise ValueError(f"{array_name!r} is 0-d: it has no rows")
        dtype = _DTYPES[(w0 >> _DTYPE_SHIFT) & _LOW32]
        trailing = w[2:1 + ndim]
        if fast:
            start, stop, _ = indexes.indices(w[1])
            sel = (start, stop if stop > start else start)
        elif fast is False:
            sel = indexes
        else:
            sel = _index.rows(indexes, w[1])
        if type(sel) is tuple:
            out = np.empty((sel[1] - sel[0],) + trailing, dtype)
            nbytes = out.nbytes
            status = _read_range_unchecked(h, key, sel[0], sel[1],
                                 _from_buffer(_CHARS, out, True) if nbytes else _NULL, nbytes)
        else:
            k = sel.shape[0]
            out = np.empty((k,) + trailing, dtype)
            nbytes = out.nbytes
            status = _read_rows_unchecked(h, key, _from_buffer(_I64_ARRAY, sel) if k else _NULL, k,
                                _from_buffer(_CHARS, out, True) if nbytes else _NULL, nbytes)
        if status:
            raise error_for(status)
        if fast is not None:  # keep the shape for the next read of this form
            if len(self._layouts) >= _MAX_LAYOUTS:
                self._layouts.clear()
            expect = _newp(_INFO_P)
            ffi.memmove(expect, raw, _INFO_BYTES)
            self._layouts[array_name] = (key, expect, w[1], trailing, dtype)
        return out

    # ----- catalogue -------------------------------------------------------------------

    def get_shape(self, array_name):
        return self._info(array_name).shape

    def get_member_list(self):
        out = ffi.new("npk_names **")
        check(lib.npk_store_list(self._h(), out))
        return take_names(out[0])

    def has_array(self, array_name):
        if not isinstance(array_name, str):
            return False
        out = ffi.new("bool *")
        try:
            check(lib.npk_store_has(self._h(), _name(array_name), out))
        except _InvalidName:
            return False
        return bool(out[0])

    def get_modify_time(self, array_name):
        try:
            return self._info(array_name).modified_us
        except (_NotFound, _InvalidName):
            return None

    def _data_file(self, name):
        # NumPack 0.7 names a segmented array's manifest (data_<name>.npkseg) instead; the
        # C ABI's info does not say which, the files do (a save replaces one by the other).
        seg = f"data_{name}.npkseg"
        if (self.filename / seg).is_file() and not (self.filename / f"data_{name}.npkd").exists():
            return seg
        return f"data_{name}.npkd"

    def get_metadata(self):
        arrays = {}
        for name in self.get_member_list():
            try:
                info = self._info(name)
            except _NotFound:
                continue
            row_bytes = int(np.prod(info.shape[1:], dtype=np.int64)) * info.dtype.itemsize
            arrays[name] = {
                "shape": list(info.shape),
                "physical_rows": info.physical_rows,
                "data_file": self._data_file(name),
                "last_modified": info.modified_us,
                "size_bytes": info.physical_rows * row_bytes if info.shape else info.dtype.itemsize,
                "dtype": info.dtype.name.capitalize(),
            }
        return {"arrays": arrays, "base_dir": str(self.filename), "total_arrays": len(arrays)}

    def reset(self):
        check(lib.npk_store_reset(self._h()))
        self._memory_cache.clear()
        self._memory_stamps.clear()

    def update(self, array_name):
        check(lib.npk_store_compact(self._h(), _name(array_name)))

    def clone(self, source_name, target_name):
        check(lib.npk_store_clone(self._h(), _name(source_name), _name(target_name)))

    def sync(self):
        """Make every change durable and visible to NumPack (fsync + catalogue)."""
        check(lib.npk_store_sync(self._h()))

    def get_io_stats(self):
        return {"stats_available": False}

    def __iter__(self):
        return iter(self.get_member_list())

    # ----- streaming -------------------------------------------------------------------

    def stream_load(self, array_name, buffer_size=None):
        if buffer_size is None:
            buffer_size = 1
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, (int, np.integer)):
            raise TypeError("buffer_size must be an int or None")
        if buffer_size <= 0:
            raise ValueError("buffer_size must be positive")
        info = self._info(array_name)
        if not info.shape:
            raise ValueError(f"{array_name!r} is 0-d: it has no rows")
        out = ffi.new("npk_stream **")
        check(lib.npk_store_stream(self._h(), _name(array_name), int(buffer_size), out))
        stream = ffi.gc(out[0], lib.npk_stream_free)
        return _batches(stream, int(buffer_size), info.shape[1:], info.dtype)

    # ----- batch modes -----------------------------------------------------------------

    def batch_mode(self, memory_limit=None):
        from ._batch import BatchModeContext

        return BatchModeContext(self, memory_limit)

    def writable_batch_mode(self):
        from ._batch import WritableBatchMode

        return WritableBatchMode(self)

    def _evict(self, name):
        self._memory_spilled.pop(name, None)
        if self._memory_cache:
            self._memory_cache.pop(name, None)
            self._memory_stamps.pop(name, None)
            if self._batch_context is not None:
                self._batch_context._dirty_arrays.discard(name)

    def _flush_cache(self):
        ctx = self._batch_context
        pending = dict(self._memory_cache)
        stamps = dict(self._memory_stamps)
        # Arrays written when the cache was spilled but still held by the caller may have
        # been edited in place since: write their changed rows too.
        for name, (ref, stamp) in self._memory_spilled.items():
            arr = ref()
            if arr is not None and name not in pending:
                pending[name], stamps[name] = arr, stamp
        self._memory_cache.clear()
        self._memory_stamps.clear()
        self._memory_spilled.clear()
        self._cache_enabled = False
        if ctx is not None:
            ctx._dirty_arrays.clear()
        self._write_cached(pending, stamps)

    def _write_cached(self, pending, stamps):
        """Writes cached arrays: only their changed rows where that is exact, else whole."""
        whole = {}
        for name, arr in pending.items():
            stamp = stamps.get(name)
            if stamp is None or not self._write_changed_rows(name, arr, stamp):
                whole[name] = arr
        if whole:
            # compressed arrays stay compressed when a batch writes them whole
            plain = {}
            for name, arr in whole.items():
                try:
                    c = self.get_compression(name)
                except _NotFound:
                    c = None
                if c is None:
                    plain[name] = arr
                else:
                    self._save_compressed({name: arr}, ("zstd", c["level"]))
            if plain:
                self.save(plain)

    def _spill(self):
        """The batch cache passed its memory_limit: write every cached array now and keep
        only weak references to them, so the memory goes as soon as the caller lets go.
        An array the caller still holds stays the one ``load`` returns, and its later
        in-place edits are written at the end of the block (nothing is lost)."""
        pending, stamps = {}, {}
        for name, arr in self._memory_cache.items():
            try:
                weakref.ref(arr)
            except TypeError:  # cannot be tracked weakly: keep it cached
                continue
            pending[name], stamps[name] = arr, self._memory_stamps.get(name)
        if not pending:
            return
        self._cache_enabled = False
        try:
            self._write_cached(pending, stamps)
        finally:
            self._cache_enabled = True
        h = self._h()
        for name, arr in pending.items():
            del self._memory_cache[name]
            self._memory_stamps.pop(name, None)
            self._batch_context._dirty_arrays.discard(name)
            self._memory_spilled[name] = (weakref.ref(arr), _info_words(h, _name(name)))

    def _write_changed_rows(self, name, arr, stamp):
        """End of a batch: write only the rows of ``arr`` that differ from the stored
        array (one ``replace``), when the stored array is exactly the one ``arr`` was
        loaded from (same ``npk_store_info``: modify time, shape, dtype, no deleted row)
        and ``arr`` still has its shape and dtype. The result is the same as saving
        ``arr`` whole. Returns False when that does not hold (the caller saves whole)."""
        if type(arr) is not np.ndarray or not arr.flags.c_contiguous or arr.ndim == 0:
            return False
        code = _FAST_CODES.get(arr.dtype)
        w0 = stamp[0]
        ndim = (w0 >> _NDIM_SHIFT) & _LOW32
        if (code is None or code != (w0 >> _DTYPE_SHIFT) & _LOW32 or arr.shape != tuple(stamp[1:1 + ndim])
                or stamp[1] != stamp[_PHYS_WORD] or arr.nbytes == 0):
            return False
        h = self._h()
        key = _name(name)
        try:
            if _info_words(h, key) != stamp:
                return False
            from ._lazy import _View

            stored = _View(h, name).array()
            if _info_words(h, key) != stamp:  # changed while the view was made
                return False
        except _NotFound:
            return False
        if stored.shape != arr.shape or stored.dtype != arr.dtype:
            return False
        changed = _changed_rows(arr, stored)
        k = changed.shape[0]
        if k > arr.shape[0] // 4:  # most rows changed: a whole save writes less
            return False
        if k:
            rows = np.ascontiguousarray(arr[changed])
            check(_replace_rows(h, key, code, _from_buffer(_I64_ARRAY, changed), k,
                                _from_buffer(_CHARS, rows), rows.nbytes))
        return True


_CMP_CHUNK_BYTES = 1 << 20


def _changed_rows(new, old):
    """Indexes (int64, ascending) of the rows whose bytes differ between two C-contiguous
    arrays of one shape and dtype. Compares 1 MiB chunks, rows only in differing ones."""
    n = new.shape[0]
    row_bytes = new.nbytes // n
    word = np.uint64 if row_bytes % 8 == 0 else np.uint32 if row_bytes % 4 == 0 else np.uint8
    a = new.reshape(n, -1).view(np.uint8).view(word)
    b = old.reshape(n, -1).view(np.uint8).view(word)
    step = max(1, _CMP_CHUNK_BYTES // row_bytes)
    found = []
    for s in range(0, n, step):
        x = a[s:s + step]
        y = b[s:s + step]
        if not np.array_equal(x, y):
            found.append(s + np.flatnonzero((x != y).any(axis=1)))
    if not found:
        return np.empty(0, dtype=np.int64)
    return np.concatenate(found).astype(np.int64)


_stream_next = lib.npk_stream_next
_U64_P = ffi.typeof("uint64_t *")


def _batches(stream, batch, trailing, dtype):
    rows = _newp(_U64_P)
    shape = (batch,) + trailing
    empty = np.empty
    nbytes = empty(shape, dtype).nbytes
    try:
        while True:
            buf = empty(shape, dtype)
            status = _stream_next(stream, _from_buffer(_CHARS, buf, True) if nbytes else _NULL, nbytes, rows)
            if status:
                raise error_for(status)
            n = rows[0]
            if n == 0:
                return
            yield buf if n == batch else buf[:n].copy()
    finally:
        ffi.release(stream)
