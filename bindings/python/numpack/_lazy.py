"""``LazyArray``: NumPy views over a memory-mapped array, showing its logical rows."""

import operator
import sys
import threading

import numpy as np

from ._native import CODE_TO_DTYPE, ERRORS_BY_NAME, MACROS, check, error_for, ffi, lib
from ._store import _name


_VIEW_PP = ffi.typeof("npk_view **")
_LAYOUT_P = ffi.typeof("npk_view_layout *")
_UINTPTR = ffi.typeof("uintptr_t")
_WRITABLE = MACROS["NPK_VIEW_WRITABLE"]
_store_view = lib.npk_store_view
_view_free = lib.npk_view_free
_tls = threading.local()
_CORRUPT = ERRORS_BY_NAME["CORRUPT"]


class _View:
    """Owns one ``npk_view``. NumPy arrays over its memory hold it through ``.base``
    (``__array_interface__``), so the mapping lives as long as any of them.

    Only ``npk_store_view`` runs when it is made (the snapshot); the layout
    (``npk_view_info``: dtype, shape, addresses) is read on first use of an attribute."""

    __slots__ = ("_ptr", "writable", "dtype", "shape", "rows", "nbytes", "_addr", "_map_addr")

    def __init__(self, handle, name, writable=False):
        self._ptr = None
        try:
            out = _tls.out
        except AttributeError:
            out = _tls.out = ffi.new(_VIEW_PP)
        status = _store_view(handle, _name(name), _WRITABLE if writable else 0, out)
        if status:
            raise error_for(status)
        self._ptr = out[0]
        self.writable = writable

    def __getattr__(self, attr):
        # dtype, shape, rows, nbytes, _addr, _map_addr: read the layout once.
        if attr in ("dtype", "shape", "rows", "nbytes", "_addr", "_map_addr"):
            self._layout()
            return object.__getattribute__(self, attr)
        raise AttributeError(attr)

    def _layout(self):
        if self._ptr is None:
            raise ValueError("the view has been released")
        writable = self.writable
        layout = ffi.new(_LAYOUT_P)
        check(lib.npk_view_info(self._ptr, layout))
        self.dtype = CODE_TO_DTYPE[layout.dtype]
        self.shape = tuple(layout.shape[0:layout.ndim])
        self.rows = int(layout.rows)
        self.nbytes = int(layout.nbytes)
        ptr = layout.writable_data if writable else layout.data
        self._addr = int(ffi.cast(_UINTPTR, ptr))
        self._map_addr = int(ffi.cast(_UINTPTR, layout.row_map))

    def _check_bounds(self):
        # NumPy reads wherever shape and address say: the shape must fit the bytes the
        # library reports at that address (Python ints: the product cannot wrap).
        need = self.dtype.itemsize
        for d in self.shape:
            need *= int(d)
        if need > self.nbytes:
            raise _CORRUPT(f"the view's shape {self.shape} of {self.dtype} needs {need} bytes but it maps {self.nbytes}", _CORRUPT.code)
        if self.shape and self.rows > self.shape[0]:
            raise _CORRUPT(f"the view has {self.rows} live rows of {self.shape[0]}", _CORRUPT.code)

    def array(self):
        self._check_bounds()
        if self.nbytes == 0 or self._addr == 0:
            a = np.zeros(self.shape, dtype=self.dtype)
            a.flags.writeable = self.writable
            return a
        return np.asarray(_Memory(self, self.shape, self.dtype.str, self._addr, not self.writable))

    def row_map(self):
        self._check_bounds()
        if self._map_addr == 0:  # NULL: nothing deleted, or no live row at all
            if self.shape and self.rows != self.shape[0]:
                return np.empty(0, dtype=np.uint64)
            return None
        return np.asarray(_Memory(self, (self.rows,), "<u8", self._map_addr, True))

    def flush(self):
        if self._ptr is not None:
            check(lib.npk_view_flush(self._ptr))

    def __del__(self):
        try:
            ptr = self._ptr
        except AttributeError:  # made by _new and never given a pointer
            return
        if ptr is not None:
            self._ptr = None
            _view_free(ptr)


class _Memory:
    """What an ndarray over the view's memory has as ``.base``: it keeps the view."""

    __slots__ = ("view", "__array_interface__")

    def __init__(self, view, shape, typestr, addr, readonly):
        self.view = view
        self.__array_interface__ = {
            "version": 3, "shape": shape, "typestr": typestr, "data": (addr, readonly),
        }


_new = object.__new__

# CPython before 3.12 calls no Python-level __buffer__: there LazyArray gets the buffer
# protocol from a small C base type that calls it. Without that extension (not built),
# memoryview(lazy) raises TypeError on those versions.
_BufferBase = object
if sys.version_info < (3, 12):
    try:
        from ._bufferbase import BufferBase as _BufferBase
    except ImportError:
        pass


def _has_advanced(parts):
    for p in parts:
        if isinstance(p, (list, np.ndarray)) or (
            isinstance(p, tuple)
        ):
            return True
    return False


_BITWISE_KINDS = "biu"
_BITWISE_ONLY_INT = "Bitwise operations are only supported for integer arrays"


def _binop(op, bitwise=False):
    def f(self, other):
        if bitwise and self.dtype.kind not in _BITWISE_KINDS:
            raise TypeError(f"{_BITWISE_ONLY_INT} (this one is {self.dtype})")
        return op(self._logical(), other)

    return f


def _rbinop(op, bitwise=False):
    def f(self, other):
        if bitwise and self.dtype.kind not in _BITWISE_KINDS:
            raise TypeError(f"{_BITWISE_ONLY_INT} (this one is {self.dtype})")
        return op(other, self._logical())

    return f


class InvalidIndexError(IndexError, TypeError):
    """A key of a type that cannot index rows (str, float...): NumPy's ``IndexError``,
    and the ``TypeError`` NumPack raises ("Invalid index type")."""


class MaskLengthError(IndexError, ValueError):
    """A boolean mask whose length is not the row count: NumPy's ``IndexError``, and
    the ``ValueError`` NumPack raises."""


_INVALID_KEY_TYPES = (str, bytes, float, complex, dict, set)


def _check_mask(first, rows):
    if isinstance(first, (list, np.ndarray)):
        m = first if isinstance(first, np.ndarray) else np.asarray(first)
        if m.dtype == np.bool_ and m.ndim == 1 and m.shape[0] != rows:
            raise MaskLengthError(f"boolean index has {m.shape[0]} entries, the array has {rows} rows")


class LazyArray(_BufferBase):
    """Read-only, memory-mapped access to one array, in logical rows (rows deleted
    before it was opened are not seen). Indexing returns new ndarrays;
    ``np.asarray(lazy)`` is a zero-copy read-only view when no row is deleted."""

    __hash__ = None
    __array_priority__ = 20

    def __init__(self, physical, row_map=None, name=""):
        self._p = physical
        self._m = row_map
        self._view = None
        self._name = name
        if physical.ndim == 0:
            self._shape = ()
        else:
            rows = physical.shape[0] if row_map is None else row_map.shape[0]
            self._shape = (rows,) + physical.shape[1:]
        self._dtype = physical.dtype

    @classmethod
    def _open(cls, store, name):
        # Only the view (the snapshot) is made here: _shape, _dtype and the ndarrays
        # over the view (_p, _m) are set on first use, by __getattr__.
        h = store._handle
        if h is None or store._strict_context_mode:
            h = store._h()
        try:
            out = _tls.out
        except AttributeError:
            out = _tls.out = ffi.new(_VIEW_PP)
        status = _store_view(h, name.encode("utf-8") if type(name) is str else _name(name), 0, out)
        if status:
            raise error_for(status)
        view = _new(_View)  # what _View(h, name) makes, inlined
        view._ptr = out[0]
        view.writable = False
        self = _new(cls)
        self._view = view
        self._name = name
        return self

    def __getattr__(self, attr):
        if attr in ("_p", "_m", "_shape", "_dtype"):
            d = self.__dict__
            view = d.get("_view")
            if view is not None:
                self._describe(view)
                if attr in ("_p", "_m"):
                    self._attach(view)
                return d[attr]
        raise AttributeError(f"'LazyArray' object has no attribute {attr!r}")

    def _describe(self, view):
        d = self.__dict__
        if "_shape" not in d:
            self._dtype = view.dtype
            self._shape = (view.rows,) + view.shape[1:] if view.shape else ()

    def _attach(self, view):
        # Threads racing here make equal arrays over the same mapping: harmless.
        m = view.row_map()
        p = view.array()
        self._m = m
        self._p = p

    @property
    def _phys(self):
        return self._p

    @property
    def _map(self):
        return self._m

    # ----- attributes ------------------------------------------------------------------

    shape = property(lambda self: self._shape)
    dtype = property(lambda self: self._dtype)
    ndim = property(lambda self: len(self._shape))
    itemsize = property(lambda self: self._dtype.itemsize)
    size = property(lambda self: int(np.prod(self._shape, dtype=np.int64)))
    nbytes = property(lambda self: self.size * self.itemsize)
    T = property(lambda self: self._logical().T.copy())

    def __len__(self):
        if not self._shape:
            raise TypeError("len() of a 0-d LazyArray")
        return self._shape[0]

    def __repr__(self):
        return f"LazyArray({self._name!r}, shape={list(self._shape)}, dtype={self.dtype})"

    # ----- NumPy interop ---------------------------------------------------------------

    def _run(self):
        """The logical rows as a read-only ndarray over the mapping when they are one
        run of rows in the file (nothing deleted, or only rows before and after the run),
        else None."""
        m = self._map
        if m is None:
            return self._phys
        n = m.shape[0]
        if n == 0:
            return self._phys[:0]
        first = int(m[0])
        # the map is strictly ascending, so first..last spans n rows only without gaps
        if int(m[-1]) - first == n - 1:
            return self._phys[first:first + n]
        return None

    def _logical(self):
        run = self._run()
        return self._phys[self._map] if run is None else run

    def __array__(self, dtype=None, copy=None):
        a = self._logical()
        if dtype is not None and np.dtype(dtype) != a.dtype:
            if copy is False:
                raise ValueError("converting the dtype of a LazyArray needs a copy")
            return a.astype(dtype)
        if copy:
            return a.copy()
        if copy is False and self._run() is None:
            raise ValueError("the live rows of this LazyArray are not contiguous in its file: "
                             "viewing them needs a copy")
        return a

    @property
    def __array_interface__(self):
        # ``data`` is a buffer object, not an address: NumPy keeps it as the new array's
        # base, which keeps the mapping (or the copy of scattered live rows) alive.
        a = self._logical()
        a.flags.writeable = False  # a copy of scattered rows is read-only like the rest
        return {"version": 3, "shape": a.shape, "typestr": a.dtype.str, "data": memoryview(a)}

    def __buffer__(self, flags):
        """``memoryview(lazy)`` (and NumPy's buffer path) calls this: Python 3.12+
        itself, 3.9-3.11 through the ``_bufferbase`` C base type. Read-only, like the
        other exports: the mapping, or a copy of scattered live rows."""
        a = self._logical()
        if a.flags.writeable:  # a copy of scattered rows (or a LazyArray over an ndarray)
            a = a.view()
            a.flags.writeable = False
        return memoryview(a)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        run = self._run()
        if run is None:
            if copy is False:
                raise BufferError("the live rows of this LazyArray are not contiguous in its file: "
                                  "exporting them needs a copy")
            a = self._phys[self._map]
        else:
            a = run.copy() if copy else run
        kwargs = {k: v for k, v in (("max_version", max_version), ("dl_device", dl_device)) if v is not None}
        try:
            return a.__dlpack__(stream=stream, **kwargs)
        except BufferError:
            # DLPack before 1.0 cannot mark a tensor read-only, so NumPy refuses to export
            # the mapping to such a consumer: hand it a private copy unless told not to.
            if copy is False or a.flags.writeable:
                raise
            return a.copy().__dlpack__(stream=stream, **kwargs)

    def __dlpack_device__(self):
        return (1, 0)  # DLPack's kDLCPU, device 0: the mapping is host memory

    def copy(self):
        return np.array(self._logical(), copy=True)

    __copy__ = copy

    def __deepcopy__(self, memo):
        return self.copy()

    def tolist(self):
        return self._logical().tolist()

    # ----- indexing --------------------------------------------------------------------

    def __getitem__(self, key):
        first = key[0] if type(key) is tuple and key else key
        if isinstance(first, _INVALID_KEY_TYPES):
            raise InvalidIndexError(f"Invalid index type: {type(first).__name__} "
                                    "(use an int, slice, list, integer or boolean array)")
        if self._shape:
            _check_mask(first, self._shape[0])
        res = self._index(key)
        if isinstance(res, np.ndarray):
            if np.may_share_memory(res, self._phys):
                res = res.copy()
            return res
        return np.asarray(res)

    def _index(self, key):
        if self._map is None:
            return self._phys[key]
        parts = key if isinstance(key, tuple) else (key,)
        if not parts:
            return self._logical()
        first, rest = parts[0], parts[1:]
        if first is None or first is Ellipsis or (
            isinstance(first, np.ndarray) and first.dtype == np.bool_ and first.ndim != 1
        ):
            return self._logical()[key]
        if isinstance(first, (bool, np.bool_)):
            return self._logical()[key]
        if isinstance(first, slice):
            phys_rows = self._map[first]
            if _has_advanced(rest):
                return self._phys[phys_rows][(slice(None),) + rest]
            return self._phys[(phys_rows,) + rest]
        try:
            i = operator.index(first)
        except TypeError:
            pass
        else:
            n = self._shape[0]
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for axis 0 with size {n}")
            return self._phys[(int(self._map[i]),) + rest]
        if isinstance(first, (list, np.ndarray, range)):
            sel = np.asarray(first)
            if sel.dtype != np.bool_ and sel.size == 0:
                sel = sel.astype(np.intp)
            return self._phys[(self._map[sel],) + rest]
        return self._logical()[key]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __contains__(self, value):
        return value in self._logical()

    def reshape(self, new_shape, *more):
        """``reshape((a, b))`` as in NumPack, or ``reshape(a, b)`` as in NumPy."""
        shape = (new_shape,) + more if more else new_shape
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        shape = tuple(operator.index(s) for s in shape)
        if sum(1 for s in shape if s == -1) > 1 or any(s < -1 for s in shape):
            raise ValueError(f"invalid shape {shape}")
        return LazyArray(self._logical().reshape(shape), None, self._name)

    def close(self):
        """Kept for compatibility: the mapping is released when the last array over it
        is garbage-collected."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.close()
        return False

    # ----- helpers of upstream's LazyArray -----------------------------------------------

    def vectorized_gather(self, indices):
        return self[np.asarray(indices, dtype=np.intp).reshape(-1)]

    def mega_batch_get_rows(self, indices, batch_size):
        if operator.index(batch_size) < 0:
            raise OverflowError("batch_size must not be negative")
        return [self[operator.index(i)] for i in indices]

    def _mask(self, mask):
        m = np.asarray(mask, dtype=np.bool_).reshape(-1)
        if m.shape[0] != len(self):
            raise ValueError(f"mask has {m.shape[0]} entries, the array has {len(self)} rows")
        return self[m]

    parallel_boolean_index = _mask
    boolean_index_smart = _mask
    boolean_index_adaptive = _mask
    boolean_index_production = _mask
    boolean_index_adaptive_algorithm = _mask

    def choose_optimal_algorithm(self, mask):
        m = np.asarray(mask, dtype=np.bool_)
        frac = m.mean() if m.size else 0.0
        return "sparse" if frac < 0.1 else "dense" if frac > 0.9 else "adaptive"

    def intelligent_warmup(self, hint=None):
        return None

    # ----- operators: materialise the logical rows, then NumPy -----------------------------

    for _n, _op in {
        "add": operator.add, "sub": operator.sub, "mul": operator.mul,
        "truediv": operator.truediv, "floordiv": operator.floordiv, "mod": operator.mod,
        "pow": operator.pow, "matmul": operator.matmul, "divmod": divmod,
    }.items():
        locals()[f"__{_n}__"] = _binop(_op)
        locals()[f"__r{_n}__"] = _rbinop(_op)
    for _n, _op in {
        "and": operator.and_, "or": operator.or_, "xor": operator.xor,
        "lshift": operator.lshift, "rshift": operator.rshift,
    }.items():
        locals()[f"__{_n}__"] = _binop(_op, bitwise=True)
        locals()[f"__r{_n}__"] = _rbinop(_op, bitwise=True)
    for _n, _op in {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt,
                    "le": operator.le, "gt": operator.gt, "ge": operator.ge}.items():
        locals()[f"__{_n}__"] = _binop(_op)
    del _n, _op

    def __neg__(self):
        return -self._logical()

    def __pos__(self):
        return +self._logical()

    def __invert__(self):
        return ~self._logical()

    def __abs__(self):
        return abs(self._logical())
