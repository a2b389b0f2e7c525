"""NumPy ``.npy`` / ``.npz`` interop over the numpack C library.

- :func:`npy_info` reads a ``.npy`` header (dtype, shape, order, header size, whether
  rows can be appended in place).
- :func:`import_npy`, :func:`import_npz` stream files into a store; :func:`export_npy`
  streams an array out to a ``.npy`` (atomically: temporary file + rename).
- :func:`append_npy`, :class:`NpyAppendArray` append rows to a ``.npy`` file in place,
  safely from many threads and processes at once (the file is locked per append);
  :func:`make_appendable` rewrites a file whose header has no room to grow;
  :func:`recover_npy` repairs a file left by a crashed appender.

``NpyAppendArray``, :func:`ensure_appendable`, :func:`is_appendable` and :func:`recover`
follow the API of the ``npy-append-array`` package, so code written for it works
unchanged; files either writes can be grown by the other.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._native import CODE_TO_DTYPE, DTYPE_TO_CODE, MACROS, check, ffi, lib, take_names
from ._progress import Progress

__all__ = ["NpyInfo", "npy_info", "import_npy", "import_npz", "export_npy", "append_npy", "append_npy_file",
           "create_appendable", "make_appendable", "recover_npy", "NpyAppendArray",
           "ensure_appendable", "is_appendable", "recover"]

OVERWRITE = MACROS["NPK_NPY_OVERWRITE"]
SYNC = MACROS["NPK_NPY_SYNC"]
CREATE = MACROS["NPK_NPY_CREATE"]
ZERO_FILL = MACROS["NPK_NPY_ZERO_FILL"]


def _path(filename):
    return os.fsencode(os.fspath(filename))


def _handle(npk):
    h = getattr(npk, "_h", None)
    if h is None:
        raise TypeError(f"expected an open numpack.NumPack, not {type(npk).__name__}")
    return h()


def _native(dtype):
    """The native little-endian dtype numpack holds for ``dtype`` and its code."""
    dt = np.dtype(dtype)
    native = dt.newbyteorder("<") if dt.byteorder in ">=" and dt.itemsize > 1 else dt
    code = DTYPE_TO_CODE.get(native)
    if code is None:
        raise TypeError(f"numpack cannot hold dtype {dt}; it holds "
                        + ", ".join(str(d) for d in CODE_TO_DTYPE.values()))
    return native, code


@dataclass(frozen=True)
class NpyInfo:
    """What a ``.npy`` header says. ``dtype`` is the file's (big-endian if the file is)."""

    dtype: np.dtype
    shape: tuple
    fortran_order: bool
    big_endian: bool
    version: tuple
    header_len: int
    data_offset: int
    file_size: int
    appendable: bool

    @property
    def complete(self):
        """The file holds exactly the data its shape calls for (else: recover it)."""
        n = int(np.prod(self.shape, dtype=object)) if self.shape else 1
        return self.file_size == self.data_offset + n * self.dtype.itemsize


def npy_info(filename):
    """The header of the ``.npy`` file ``filename`` as an :class:`NpyInfo`."""
    out = ffi.new("npk_npy_file_info *")
    check(lib.npk_npy_info(_path(filename), out))
    dt = CODE_TO_DTYPE[out.dtype]
    if out.big_endian:
        dt = dt.newbyteorder(">")
    return NpyInfo(
        dtype=dt,
        shape=tuple(int(out.shape[i]) for i in range(out.ndim)),
        fortran_order=bool(out.fortran_order),
        big_endian=bool(out.big_endian),
        version=(int(out.version_major), int(out.version_minor)),
        header_len=int(out.header_len),
        data_offset=int(out.data_offset),
        file_size=int(out.file_size),
        appendable=bool(out.appendable),
    )


def import_npy(npk, filename, array_name=None, overwrite=False, *, progress=None):
    """Streams the ``.npy`` file into array ``array_name`` (default: the file's stem) of
    the open store ``npk``; big-endian and Fortran-order files are converted. The array
    appears complete or not at all. Returns the array name.

    ``progress`` (optional): ``callback(done_bytes, total_bytes)``, called at the start,
    after every block of a few MB and at the end; returning ``False`` cancels
    (``numpack.CancelledError``) and leaves no array. An exception it raises cancels too
    and is re-raised."""
    name = array_name if array_name is not None else Path(filename).stem
    cb = Progress(progress, check)
    cb.check(lib.npk_npy_import(_handle(npk), name.encode("utf-8"), _path(filename),
                                OVERWRITE if overwrite else 0, cb.cb, ffi.NULL))
    return name


def import_npz(npk, filename, overwrite=False, *, progress=None):
    """Streams every member of the ``.npz`` archive (``np.savez`` or
    ``np.savez_compressed``) into an array named by its key. Returns the names, in
    archive order. All or nothing: the store is unchanged if a member is bad or
    (without ``overwrite``) a name exists. ``progress``: as in :func:`import_npy`,
    counting the data of all members together; cancelling leaves the store unchanged."""
    out = ffi.new("npk_names **")
    cb = Progress(progress, check)
    cb.check(lib.npk_npz_import(_handle(npk), _path(filename), OVERWRITE if overwrite else 0, cb.cb, ffi.NULL, out))
    return take_names(out[0])


def export_npy(npk, array_name, filename, overwrite=False, *, progress=None):
    """Streams array ``array_name`` of the open store ``npk`` to the ``.npy`` file
    ``filename`` (deleted rows left out), through a temporary file renamed over the
    target. The file's header has room to grow, so it can be appended to in place.
    ``progress``: as in :func:`import_npy`; cancelling leaves an existing ``filename`` as
    it was and no temporary file."""
    cb = Progress(progress, check)
    cb.check(lib.npk_npy_export(_handle(npk), array_name.encode("utf-8"), _path(filename),
                                OVERWRITE if overwrite else 0, cb.cb, ffi.NULL))


def create_appendable(filename, dtype, row_shape=()):
    """Creates an empty appendable ``.npy`` of shape ``(0, *row_shape)``."""
    _, code = _native(dtype)
    row_shape = [int(d) for d in row_shape]
    check(lib.npk_npy_create_appendable(_path(filename), code, len(row_shape),
                                        ffi.new("uint64_t[]", row_shape) if row_shape else ffi.NULL))


def _append(filename, arr, dtype, sync, create):
    native, code = _native(dtype)
    data = np.ascontiguousarray(arr, dtype=native)
    if data.ndim == 0:
        raise ValueError("cannot append a 0-d array: append rows (an array with at least one dimension)")
    row_shape = [int(d) for d in data.shape[1:]]
    rows = ffi.new("uint64_t *")
    flags = (SYNC if sync else 0) | (CREATE if create else 0)
    buf = ffi.from_buffer(data) if data.nbytes else ffi.NULL
    check(lib.npk_npy_append(_path(filename), code, len(row_shape),
                             ffi.new("uint64_t[]", row_shape) if row_shape else ffi.NULL,
                             buf, data.nbytes, flags, rows))
    return int(rows[0])


def append_npy(filename, arr, sync=False, create=True):
    """Appends the rows of ``arr`` to the ``.npy`` file in place and returns its new row
    count. If the file exists, ``arr`` is cast to its dtype (as ``npy-append-array``
    does); otherwise (with ``create``) the file is made with ``arr``'s dtype. Safe with
    concurrent appenders in any thread or process. ``sync`` fsyncs before returning."""
    arr = np.asarray(arr)
    dtype = arr.dtype
    if os.path.exists(filename):
        dtype = npy_info(filename).dtype
    return _append(filename, arr, dtype, sync, create)


def append_npy_file(filename, src, sync=False, create=True, *, progress=None):
    """Appends every row of the ``.npy`` file ``src`` to ``filename`` in place, streamed
    (whatever its size) and under one lock of ``filename``; returns the new row count.
    With ``create``, a missing ``filename`` is made with ``src``'s dtype and row shape.
    ``progress``: as in :func:`import_npy`, counting ``src``'s data; cancelling cuts
    ``filename`` back to its old rows."""
    rows = ffi.new("uint64_t *")
    flags = (SYNC if sync else 0) | (CREATE if create else 0)
    cb = Progress(progress, check)
    cb.check(lib.npk_npy_append_file(_path(filename), _path(src), flags, cb.cb, ffi.NULL, rows))
    return int(rows[0])


def make_appendable(filename):
    """Rewrites the ``.npy`` file (streamed, atomically) if its header has no room to grow
    or it is in Fortran order. Returns whether it rewrote it."""
    out = ffi.new("bool *")
    check(lib.npk_npy_make_appendable(_path(filename), out))
    return bool(out[0])


def recover_npy(filename, zero_fill=False):
    """Repairs a ``.npy`` left by a crashed appender: sets the shape from the data present,
    dropping an incomplete last row (or completing it with zeros with ``zero_fill``).
    Returns a dict of what was done (``header_rows``, ``rows``, ``dropped_bytes``,
    ``zero_filled_bytes``, ``rewritten``)."""
    out = ffi.new("npk_npy_recovery *")
    check(lib.npk_npy_recover(_path(filename), ZERO_FILL if zero_fill else 0, out))
    return {
        "header_rows": int(out.header_rows),
        "rows": int(out.rows),
        "dropped_bytes": int(out.dropped_bytes),
        "zero_filled_bytes": int(out.zero_filled_bytes),
        "rewritten": bool(out.rewritten),
    }


# ----- npy-append-array compatible names ------------------------------------------------


def is_appendable(filename):
    """Whether rows can be appended to the file without rewriting it."""
    return npy_info(filename).appendable


def ensure_appendable(filename, inplace=False):
    """Makes the file appendable (rewriting it if needed); returns True. ``inplace`` is
    accepted for compatibility: the rewrite always goes through a temporary file renamed
    over the original, which is crash-safe."""
    make_appendable(filename)
    return True


def recover(filename, zerofill_incomplete=False):
    """``npy-append-array``'s ``recover``: :func:`recover_npy`, returning True."""
    recover_npy(filename, zero_fill=zerofill_incomplete)
    return True


class NpyAppendArray:
    """Appends arrays along the first axis to a ``.npy`` file, growing it in place.

    The API of the ``npy-append-array`` package. Each :meth:`append` writes the rows and
    updates the header's shape under an exclusive lock of the file, so many
    ``NpyAppendArray`` objects (threads, processes) can append to one file and no row is
    lost; ``shape`` is the file's shape after this object's last append (rows others
    appended included). ``rewrite_header_on_append`` is accepted for compatibility: the
    header is always brought up to date by each append (one small in-place write), so the
    file is valid after every call, never only after :meth:`close`.

    An existing file must be appendable (header with room to grow, C order) and complete;
    otherwise ``ValueError`` says to call :func:`ensure_appendable` or :func:`recover`.
    """

    def __init__(self, filename, delete_if_exists=False, rewrite_header_on_append=True):
        self.filename = filename
        self._rewrite_header_on_append = bool(rewrite_header_on_append)
        self._closed = False
        self.shape = None
        self.dtype = None
        self.fortran_order = False
        if os.path.exists(filename):
            if delete_if_exists:
                os.unlink(filename)
            else:
                self._init_from_file()

    def _init_from_file(self):
        info = npy_info(self.filename)
        if not info.appendable:
            raise ValueError(f"header of {self.filename} not appendable, please call "
                             "numpack.npy.ensure_appendable (or make_appendable)")
        if not info.complete:
            raise ValueError(f"cannot append to {self.filename}: file needs recovery, please "
                             "call numpack.npy.recover (or recover_npy)")
        self.shape, self.dtype, self.fortran_order = info.shape, info.dtype, info.fortran_order

    def append(self, arr):
        """Appends the rows of ``arr`` (cast to the file's dtype)."""
        if self._closed:
            raise ValueError(f"NpyAppendArray for {self.filename} is closed")
        arr = np.asarray(arr)
        if arr.ndim == 0:
            raise ValueError("cannot append a 0-d array")
        if self.shape is not None and tuple(arr.shape[1:]) != tuple(self.shape[1:]):
            raise ValueError("array shapes can only differ on append axis: 0 if C order or -1 "
                             f"if fortran order (file rows {self.shape[1:]}, got {arr.shape[1:]})")
        dtype = self.dtype if self.dtype is not None else arr.dtype
        rows = _append(self.filename, arr, dtype, sync=False, create=True)
        if self.dtype is None:
            self.dtype = npy_info(self.filename).dtype
        self.shape = (rows, *arr.shape[1:])

    def update_header(self):
        """Re-reads the file's shape (the header is always up to date on disk)."""
        if os.path.exists(self.filename):
            self.shape = npy_info(self.filename).shape

    def close(self):
        self._closed = True

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.close()
        return False
