"""NumPack packages (``.npkg``): a whole store in one file, to move or archive it.

``pack``, ``unpack`` and ``get_package_info`` take NumPack's arguments and return what
NumPack's return; the files are NumPack's layout (version 2), read and written by the
library (``npk_package_*``), streamed through fixed-size buffers. Differences from
NumPack (see the package README):

* ``unpack(..., overwrite=True)`` removes the old store only once the package has been
  read and checked in full; a failed or cancelled unpack leaves the target as it was.
* Every compressed file is checked by its codec's checksum, and the catalogue against
  the files, even with ``verify=False``; entries that are not plain file names of a
  store are refused.
* ``progress=`` (our extension) takes ``callback(done_bytes, total_bytes)``; returning
  ``False`` cancels (``numpack.CancelledError``), leaving no target behind.
* Errors are the library's exception classes, each also an instance of the class
  NumPack raises there (``ValueError``, ``FileExistsError``, ``RuntimeError``).
"""

import os
from pathlib import Path

from .._native import ERRORS_BY_NAME, MACROS, error_for, ffi, lib
from .._progress import Progress

__all__ = ["pack", "unpack", "get_package_info"]


def _subclass(status, extra):
    base = ERRORS_BY_NAME[status]
    return type(base.__name__, (base, extra), {"__module__": "numpack.io.package_io"})


# Raised where NumPack raises the second base, and still the library's error class.
_AS_UPSTREAM = {
    "ALREADY_EXISTS": _subclass("ALREADY_EXISTS", FileExistsError),
    "CORRUPT": _subclass("CORRUPT", ValueError),
    "UNSUPPORTED": _subclass("UNSUPPORTED", ValueError),
    "STORE_NOT_FOUND": _subclass("STORE_NOT_FOUND", ValueError),
}


def _raise(status):
    err = error_for(status)
    cls = _AS_UPSTREAM.get(err.status)
    if cls is not None:
        err = cls(str(err), status)
    raise err


def _info_dict(handle):
    summary = ffi.new("npk_package_summary *")
    entry = ffi.new("npk_package_entry *")
    status = lib.npk_package_get_summary(handle, summary)
    if status != 0:
        _raise(status)
    files = []
    for i in range(summary.entry_count):
        status = lib.npk_package_get_entry(handle, i, entry)
        if status != 0:
            _raise(status)
        stored = int(entry.stored_size)
        files.append({
            "name": ffi.string(entry.name).decode("utf-8"),
            "original_size": int(entry.original_size),
            "compressed_size": stored,
            "actual_size": stored if stored > 0 else int(entry.original_size),
        })
    original = int(summary.total_original_size)
    stored = int(summary.total_stored_size)
    compression = int(summary.compression)
    return {
        "version": int(summary.version),
        "compression": compression,
        "compression_name": "zstd" if compression == 1 else "none",
        "file_count": int(summary.entry_count),
        "files": files,
        "total_original_size": original,
        "total_compressed_size": stored,
        "compression_ratio": stored / original if original > 0 else 1.0,
    }


def _open_store(source):
    """A handle on the store at ``source`` (writable when possible, so changes still in
    its log are folded into ``metadata.npkm``; else read-only)."""
    out = ffi.new("npk_store **")
    path = os.fsencode(source)
    status = lib.npk_store_open(path, 0, out)
    if status in (ERRORS_BY_NAME["IO"].code, ERRORS_BY_NAME["READ_ONLY"].code):
        status = lib.npk_store_open(path, MACROS["NPK_OPEN_READ_ONLY"], out)
    if status != 0:
        _raise(status)
    return out[0]


def pack(source, target=None, compression=True, overwrite=False, *, progress=None):
    """Packs the store directory ``source`` into one ``.npkg`` file and returns its path.

    ``target`` defaults to ``<source>.npkg`` beside the store (``x.npk`` ->
    ``x.npk.npkg``); a target without a suffix gets ``.npkg``. Parent directories are
    created. ``compression`` compresses each file with zstd (level 3). An existing
    target raises ``FileExistsError`` unless ``overwrite``. The package is written
    beside the target and renamed into place once complete, so the target is never a
    partial package.

    ``progress`` (an extension): ``callback(done_bytes, total_bytes)``, called at the
    start, after each file, at least every 4 MiB and at the end; returning ``False``
    cancels (``numpack.CancelledError``) and leaves no target.
    """
    source = Path(source)
    if not source.is_dir():
        raise ValueError(f"{source} is not a NumPack store directory (no such directory)")
    if not (source / "metadata.npkm").is_file():
        # As NumPack; checked here so that opening never turns a plain directory into a store.
        raise ValueError(f"{source} is not a NumPack store: it has no metadata.npkm")
    if target is None:
        target = source.with_name(source.name + ".npkg")
    else:
        target = Path(target)
        if target.suffix == "":
            target = target.with_name(target.name + ".npkg")
    cb = Progress(progress, _raise)
    flags = (MACROS["NPK_PACK_COMPRESS"] if compression else 0) | (MACROS["NPK_PACK_OVERWRITE"] if overwrite else 0)
    store = _open_store(source)
    try:
        status = lib.npk_package_pack(store, os.fsencode(target), flags, cb.cb, ffi.NULL, ffi.NULL)
        cb.check(status)  # before the close, which resets the last-error message
    finally:
        closed = lib.npk_store_close(store)
    if closed != 0:
        _raise(closed)
    return target


def _default_unpack_target(source):
    stem = source.stem
    return source.with_name(stem if stem.endswith(".npk") else stem + ".npk")


def unpack(source, target=None, overwrite=False, verify=True, *, progress=None):
    """Unpacks the ``.npkg`` file ``source`` into a store directory and returns its path.

    ``target`` defaults to the package's stem beside it (``x.npk.npkg`` -> ``x.npk``,
    ``x.npkg`` -> ``x.npk``). An existing target raises ``FileExistsError`` unless
    ``overwrite``; it is replaced only after the package has been read and checked in
    full (a failure leaves it as it was). ``verify`` compares the package's checksum
    of every file's CRC32 (a mismatch raises ``RuntimeError``, as in NumPack; the
    exception is also a ``ValueError``). Damaged packages and entries that would
    escape the target raise ``ValueError``. ``progress``: as in :func:`pack`.
    """
    source = Path(source)
    if not source.is_file():
        raise ValueError(f"{source} is not a .npkg package file (no such file)")
    target = _default_unpack_target(source) if target is None else Path(target)
    cb = Progress(progress, _raise)
    flags = (MACROS["NPK_UNPACK_OVERWRITE"] if overwrite else 0) | (MACROS["NPK_UNPACK_VERIFY"] if verify else 0)
    status = lib.npk_package_unpack(os.fsencode(source), os.fsencode(target), flags, cb.cb, ffi.NULL, ffi.NULL)
    cb.check(status)
    return target


def get_package_info(source):
    """What the ``.npkg`` file ``source`` holds, from its headers alone (nothing is
    decompressed): a dict with ``version``, ``compression`` (0 or 1),
    ``compression_name`` (``'zstd'``/``'none'``), ``file_count``, ``files`` (each
    ``name``, ``original_size``, ``compressed_size`` (0 when stored raw),
    ``actual_size`` (bytes in the package)), ``total_original_size``,
    ``total_compressed_size`` and ``compression_ratio``. A missing file or one that is
    not a package raises ``ValueError``.
    """
    source = Path(source)
    if not source.is_file():
        raise ValueError(f"{source} is not a .npkg package file (no such file)")
    out = ffi.new("npk_package_info **")
    status = lib.npk_package_read_info(os.fsencode(source), out)
    if status != 0:
        _raise(status)
    try:
        return _info_dict(out[0])
    finally:
        lib.npk_package_info_free(out[0])
