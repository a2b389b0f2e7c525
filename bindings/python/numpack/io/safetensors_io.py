"""Hugging Face ``.safetensors`` conversions with NumPack's ``numpack.io`` API.

File conversions go through the numpack C library (``npk_safetensors_*``), streamed in
blocks of a few MB whatever the file size, and need no other package:

* :func:`from_safetensors_file` imports tensors into a store, all or nothing;
* :func:`to_safetensors_file` exports arrays (their live rows) to a file, atomically;
* :func:`get_safetensors_metadata` reads a header (tensors, ``__metadata__``) without
  the data; :func:`iter_safetensors` yields tensors one at a time as read-only memory
  maps of the file, at offsets the library has checked.

:func:`from_tensor_dict` / :func:`to_tensor_dict` move a ``{name: array}`` dict (e.g.
what ``safetensors.numpy.load_file`` returns, or torch tensors) in and out of a store.

Dtypes: ``BOOL``, ``U8``..``U64``, ``I8``..``I64``, ``F16``, ``F32``, ``F64`` and ``C64``
are NumPy's bool, uint8..uint64, int8..int64, float16, float32, float64 and complex64.
complex128 has no safetensors dtype (exporting it raises ``numpack.UnsupportedError``);
tensors of the format's other dtypes (``BF16``, ``F8_*``, ``F6_*``, ``F4``) cannot be
imported (``UnsupportedError`` naming the tensor and dtype) and
:func:`get_safetensors_metadata` reports their dtype as the file writes it (``"BF16"``).
Tensor keys become array names unchanged; a key no array can be named (holding ``/``)
raises ``numpack.InvalidNameError``: pass ``keys=`` to import the others. 0-d tensors
cannot be imported (store arrays have at least one dimension).

``progress=`` (our extension, keyword only) takes ``callback(done_bytes, total_bytes)``,
called at the start, as data moves and at the end; returning ``False`` cancels
(``numpack.CancelledError``): a file import leaves the store as it was, a file export
leaves the old target and no temporary file. :func:`from_tensor_dict` stops before the
next array (arrays already saved stay). An exception raised by the callback cancels too
and is re-raised.
"""

import os
from pathlib import Path

import numpy as np

from .._native import CODE_TO_DTYPE, ERRORS_BY_NAME, MACROS, check, ffi, lib, take_names
from .._progress import Progress
from ._stream import hand_over
from .numpy_io import DEFAULT_CHUNK_SIZE, _nbytes

__all__ = ["from_safetensors_file", "to_safetensors_file", "from_tensor_dict", "to_tensor_dict",
           "get_safetensors_metadata", "iter_safetensors"]

OVERWRITE = MACROS["NPK_SAFETENSORS_OVERWRITE"]
NO_DTYPE = MACROS["NPK_SAFETENSORS_NO_DTYPE"]


def _open_store(path, drop_if_exists=False):
    from .._store import NumPack

    npk = NumPack(path, drop_if_exists=drop_if_exists, warn_no_context=False)
    npk.open()
    return npk


def _open_existing(path):
    if not Path(path).exists():
        raise FileNotFoundError(f"NumPack store not found: {path}")
    return _open_store(path)


def _c_strings(strings, what):
    """cffi ``char *[]`` of ``strings`` and the buffers keeping them alive."""
    bufs = []
    for s in strings:
        if not isinstance(s, str):
            raise TypeError(f"{what} must be strings, not {type(s).__name__}")
        bufs.append(ffi.new("char[]", s.encode("utf-8")))
    return (ffi.new("char *[]", bufs) if bufs else ffi.NULL), bufs


def _names(names):
    if names is None:
        return []
    if isinstance(names, str):
        return [names]
    return list(names)


def _read_header(path):
    """(tensors, metadata, data_offset): tensors as (name, dtype name, numpy dtype or None,
    shape, begin, end) in file order."""
    out = ffi.new("npk_safetensors_header **")
    check(lib.npk_safetensors_read_header(os.fsencode(os.fspath(path)), out))
    h = out[0]
    try:
        summary = ffi.new("npk_safetensors_summary *")
        check(lib.npk_safetensors_header_summary(h, summary))
        tensors = []
        t = ffi.new("npk_safetensors_tensor *")
        for i in range(summary.tensor_count):
            check(lib.npk_safetensors_header_get_tensor(h, i, t))
            dtype = None if t.npk_dtype == NO_DTYPE else CODE_TO_DTYPE[t.npk_dtype]
            tensors.append((ffi.string(t.name).decode("utf-8"), ffi.string(t.dtype_name).decode("utf-8"), dtype,
                            tuple(int(t.shape[k]) for k in range(t.ndim)), int(t.data_begin), int(t.data_end)))
        key = ffi.new("char **")
        value = ffi.new("char **")
        metadata = {}
        for i in range(summary.metadata_count):
            check(lib.npk_safetensors_header_get_metadata(h, i, key, value))
            metadata[ffi.string(key[0]).decode("utf-8")] = ffi.string(value[0]).decode("utf-8")
        return tensors, metadata, int(summary.data_offset)
    finally:
        lib.npk_safetensors_header_free(h)


def from_safetensors_file(input_path, output_path, keys=None, drop_if_exists=False,
                          chunk_size=DEFAULT_CHUNK_SIZE, return_npk_obj=False, *, progress=None):
    """Imports the tensors ``keys`` (default: all) of the ``.safetensors`` file
    ``input_path`` into the store at ``output_path`` (created if missing; emptied first
    with ``drop_if_exists``), replacing arrays of the same names. All or nothing.
    Returns ``None``, or the opened store with ``return_npk_obj=True``.

    Raises ``KeyError`` (``numpack.NotFoundError``) for a key not in the file,
    ``FileNotFoundError`` when the file does not exist. ``chunk_size`` is accepted for
    NumPack compatibility; the block size is the library's."""
    src = Path(input_path)
    if not src.exists():
        raise FileNotFoundError(f"File not found: {src}")
    names = _names(keys)
    npk = _open_store(output_path, drop_if_exists)
    try:
        arr, _keep = _c_strings(names, "keys")
        out = ffi.new("npk_names **")
        cb = Progress(progress, check)
        # An empty selection imports nothing (the library reads 0 names as "all").
        if keys is None or names:
            cb.check(lib.npk_safetensors_import(npk._h(), os.fsencode(os.fspath(src)), arr, len(names), OVERWRITE,
                                                cb.cb, ffi.NULL, out))
            take_names(out[0])
    except BaseException:
        npk.close()
        raise
    return hand_over(npk, return_npk_obj)


def to_safetensors_file(input_path, output_path, array_names=None, metadata=None, *, progress=None):
    """Exports the arrays ``array_names`` (default: all) of the store at ``input_path``
    to the ``.safetensors`` file ``output_path`` (replaced if it exists), with
    ``metadata`` (``{str: str}``) as its ``__metadata__``. Deleted rows are left out.
    The file is written next to the target and renamed into place."""
    if array_names is not None and not _names(array_names):
        raise ValueError("array_names is empty: nothing to export")
    names = _names(array_names)
    metadata = dict(metadata or {})
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"metadata keys and values must be strings, not {k!r}: {v!r}")
    npk = _open_existing(input_path)
    try:
        # The buffers stay referenced (the _keep names) until the call returns.
        arr, _keep = _c_strings(names, "array_names")
        karr, _keep_k = _c_strings(list(metadata.keys()), "metadata keys")
        varr, _keep_v = _c_strings(list(metadata.values()), "metadata values")
        cb = Progress(progress, check)
        cb.check(lib.npk_safetensors_export(npk._h(), os.fsencode(os.fspath(output_path)), arr, len(names),
                                            karr, varr, len(metadata), OVERWRITE, cb.cb, ffi.NULL))
    finally:
        npk.close()


def get_safetensors_metadata(path):
    """The header of the ``.safetensors`` file at ``path``, without reading tensors:
    ``{'tensors': {name: {'dtype': 'float32', 'shape': (2, 3)}}, 'metadata': {...}}``
    (dtype as NumPy names it, or as the file writes it for types NumPy lacks, e.g.
    ``'BF16'``)."""
    tensors, metadata, _ = _read_header(path)
    return {
        "tensors": {name: {"dtype": str(dt) if dt is not None else dname, "shape": shape}
                    for name, dname, dt, shape, _, _ in tensors},
        "metadata": metadata,
    }


def iter_safetensors(path, keys=None):
    """Yields ``(name, array)`` for the tensors ``keys`` (default: all, in file order) of
    the ``.safetensors`` file at ``path``, one at a time: each array is a read-only
    memory map of the file (an empty tensor, a new empty array).

    Raises ``KeyError`` (``numpack.NotFoundError``) for a key not in the file and
    ``numpack.UnsupportedError`` for a dtype NumPy does not hold (``BF16``, ...)."""
    tensors, _, data_offset = _read_header(path)
    by_name = {t[0]: t for t in tensors}
    wanted = list(by_name) if keys is None else _names(keys)
    for key in wanted:
        if key not in by_name:
            raise ERRORS_BY_NAME["NOT_FOUND"](f"{path} has no tensor {key!r}")
        name, dname, dt, shape, begin, end = by_name[key]
        if dt is None:
            raise ERRORS_BY_NAME["UNSUPPORTED"](f"tensor {name!r} has dtype {dname}, which NumPy does not hold")
        if end == begin:
            yield name, np.empty(shape, dtype=dt)
        else:
            flat = np.memmap(path, dtype=dt, mode="r", offset=data_offset + begin, shape=((end - begin) // dt.itemsize,))
            yield name, flat.reshape(shape)


def _as_numpy(name, tensor):
    if isinstance(tensor, np.ndarray):
        return tensor
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch.is_tensor(tensor):
        return tensor.detach().cpu().numpy()
    raise TypeError(f"Unsupported tensor type for {name!r}: {type(tensor)}")


def _report(cb, done, total):
    if cb is None:
        return
    if cb(done, total) is False:
        raise ERRORS_BY_NAME["CANCELLED"]("cancelled by the progress callback")


def from_tensor_dict(tensors, output_path, drop_if_exists=False, return_npk_obj=False, *, progress=None):
    """Saves a ``{name: array}`` dict (NumPy arrays, e.g. from
    ``safetensors.numpy.load_file``, or torch tensors) to the store at ``output_path``.
    Returns ``None``, or the opened store with ``return_npk_obj=True``."""
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable, not {type(progress).__name__}")
    arrays = {name: _as_numpy(name, t) for name, t in tensors.items()}
    total = sum(a.nbytes for a in arrays.values())
    npk = _open_store(output_path, drop_if_exists)
    try:
        done = 0
        _report(progress, 0, total)
        for name, a in arrays.items():
            npk.save({name: a})
            done += a.nbytes
            _report(progress, done, total)
    except BaseException:
        npk.close()
        raise
    return hand_over(npk, return_npk_obj)


def to_tensor_dict(input_path, array_names=None, *, progress=None):
    """The arrays ``array_names`` (default: all) of the store at ``input_path`` as a
    ``{name: C-contiguous ndarray}`` dict, ready for ``safetensors.numpy.save_file``."""
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable, not {type(progress).__name__}")
    npk = _open_existing(input_path)
    try:
        names = npk.get_member_list() if array_names is None else _names(array_names)
        sizes = [_nbytes(npk, n) for n in names] if progress is not None else []
        total, done = sum(sizes), 0
        _report(progress, 0, total)
        result = {}
        for i, name in enumerate(names):
            result[name] = np.ascontiguousarray(npk.load(name))
            if progress is not None:
                done += sizes[i]
                _report(progress, done, total)
        return result
    finally:
        npk.close()

