"""Objects on S3 (or any S3-compatible endpoint) <-> store arrays (NumPack's
``numpack.io`` API), through s3fs (``pip install numpack[s3]``), imported on first use.
``**s3_kwargs`` go to ``s3fs.S3FileSystem`` (``endpoint_url=``, ``key=``/``secret=``,
``anon=True``, ...).

The format comes from the object's suffix (``format='auto'``): ``.npy``/``.npz``
(``'numpy'``, also the default for other suffixes), ``.csv``, ``.txt``, ``.parquet``,
``.feather``, ``.h5``/``.hdf5``.

* NumPy objects are streamed straight through s3fs file objects in row blocks of
  ``min(chunk_size, 16 MiB)``: no local copy, memory bounded by one block plus s3fs's
  read-ahead or part buffer (5-16 MiB). ``.npy`` data in Fortran order is the exception
  on import: it is spooled to a temporary local file first, since its rows are not
  contiguous in the object.
* Other formats are converted by their ``numpack.io`` module through a local temporary
  file, which is streamed to or from S3 block by block.

Arrays are named after the object (``s3://b/dir/emb.npy`` -> ``'emb'``; ``.npz`` and
HDF5 by their keys), or ``array_name=``. Imports are atomic as every ``numpack.io``
import (see ``_stream``). Uploads go through one s3fs file object that is committed
only when complete: a failed or cancelled export aborts the upload, so no partial
object appears and an existing object keeps its old contents.

``progress=`` takes ``callback(done_bytes, total_bytes)`` as elsewhere in
``numpack.io``; for formats converted through a temporary file it reports the
transfer, then the conversion, ``total`` growing by the second step's bytes when that
step starts.
"""

import importlib
import inspect
import math
import os
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from ._stream import (ImportTx, Progress, array_layout, block_rows, check_names, finish_import,
                      open_existing_store, pick_array, pick_arrays, read_blocks)
from .utils import DEFAULT_CHUNK_SIZE, _check_s3fs

__all__ = ["from_s3", "to_s3"]

_SUFFIX_FORMATS = {
    ".npy": "numpy",
    ".npz": "numpy",
    ".csv": "csv",
    ".txt": "txt",
    ".parquet": "parquet",
    ".feather": "feather",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
}

# format -> (module, import function, export function)
_CONVERTERS = {
    "csv": ("csv_io", "from_csv", "to_csv"),
    "txt": ("csv_io", "from_txt", "to_txt"),
    "parquet": ("parquet_io", "from_parquet", "to_parquet"),
    "feather": ("feather_io", "from_feather", "to_feather"),
    "hdf5": ("hdf5_io", "from_hdf5", "to_hdf5"),
}

_MIN_PART = 5 << 20  # S3's smallest multipart part
_MAX_BLOCK = 16 << 20
_NPY_MAX_HEADER = 10_000


def _key_of(s3_path):
    """The object key of ``s3://bucket/key``; anything else raises ``ValueError`` (a
    bare path would be taken by s3fs as ``bucket/key``, or mistaken for a local file)."""
    if not isinstance(s3_path, str):
        raise TypeError(f"s3_path must be a str like 's3://bucket/key', not {type(s3_path).__name__}")
    for scheme in ("s3://", "s3a://"):
        if s3_path.startswith(scheme):
            bucket, _, key = s3_path[len(scheme):].partition("/")
            if bucket and key and not key.endswith("/"):
                return key
    raise ValueError(f"not an S3 object URL: {s3_path!r} (expected 's3://bucket/path/to/object')")


def _format_of(s3_path, key, format):
    if format == "auto":
        return _SUFFIX_FORMATS.get(PurePosixPath(key).suffix.lower(), "numpy")
    if format not in ("numpy",) + tuple(_CONVERTERS):
        raise ValueError(f"Unsupported format: {format!r} (one of 'auto', 'numpy', "
                         f"{', '.join(repr(f) for f in _CONVERTERS)}) for {s3_path}")
    return format


def _block_size(chunk_size):
    return max(_MIN_PART, min(int(chunk_size), _MAX_BLOCK))


def _converter(fmt, which):
    module, importer, exporter = _CONVERTERS[fmt]
    try:
        mod = importlib.import_module(f".{module}", __package__)
    except ModuleNotFoundError as e:
        if e.name != f"{__package__}.{module}":
            raise
        raise ValueError(f"Unsupported format: {fmt!r} has no converter in this numpack") from None
    return getattr(mod, importer if which == "import" else exporter)


def _call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` without the keywords ``fn`` does not take (the format
    converters differ: feather has no ``chunk_size``, HDF5 no ``array_name``...)."""
    params = inspect.signature(fn).parameters
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params})


def _then(progress, before):
    """``progress`` for a second step, shifted past the ``before`` bytes of the first."""
    if progress is None:
        return None
    return lambda done, total: progress(before + done, before + total)


def _read_exact(f, n, what):
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"{what}: the data ends early ({len(data)} of {n} bytes in the last block)")
    return data


def _npy_header(f, what):
    """``(shape, fortran_order, dtype)`` from the ``.npy`` header at ``f``'s position."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=_NPY_MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=_NPY_MAX_HEADER)
        else:
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
    except ValueError as e:
        raise ValueError(f"{what} is not a readable .npy file: {e}") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"Unsupported dtype: {dtype} in {what} (numpack stores plain numeric dtypes)")
    if not shape:
        raise ValueError(f"{what} holds a 0-d array (a scalar); store arrays need a row axis")
    return shape, fortran, dtype


class _NpyPart:
    """The ``.npy`` file at ``f``'s position: its header, read and checked against
    ``file_bytes`` (the size of the whole file) before any data is read."""

    def __init__(self, f, file_bytes, what):
        start = f.tell()
        self.f, self.what = f, what
        self.shape, self.fortran, self.dtype = _npy_header(f, what)
        self.nbytes = math.prod(self.shape) * self.dtype.itemsize
        header = f.tell() - start
        if file_bytes != header + self.nbytes:
            raise ValueError(f"{what}: truncated or corrupt .npy: the header describes {self.nbytes} "
                             f"bytes of data, the file holds {file_bytes - header}")

    def store(self, tx, name, chunk_size, spool_dir):
        """Writes the data to ``tx`` as array ``name``, in row blocks."""
        f, shape, dtype, what = self.f, self.shape, self.dtype, self.what
        tx.begin(name)
        if self.fortran and len(shape) > 1 and self.nbytes:
            _store_fortran(f, shape, dtype, self.nbytes, tx, name, chunk_size, what, spool_dir)
        else:
            tail = shape[1:]
            row_bytes = math.prod(tail) * dtype.itemsize
            rows = block_rows(shape, dtype, chunk_size)
            for first in range(0, shape[0], rows):
                k = min(rows, shape[0] - first)
                data = _read_exact(f, k * row_bytes, what)
                tx.write(name, np.frombuffer(data, dtype=dtype).reshape((k,) + tail))
        tx.write_empty(name, (0,) + tuple(shape[1:]), dtype)


def _store_fortran(f, shape, dtype, nbytes, tx, name, chunk_size, what, spool_dir):
    """Fortran-order data: spooled to a local file, then stored in C-order row blocks
    read through a memory map (memory holds one block)."""
    step = _block_size(chunk_size)
    with tempfile.TemporaryFile(dir=spool_dir, prefix=".numpack-s3-") as spool:
        left = nbytes
        while left:
            n = min(step, left)
            spool.write(_read_exact(f, n, what))
            left -= n
        spool.flush()
        mm = np.memmap(spool, dtype=dtype, mode="r", shape=tuple(shape), order="F")
        try:
            rows = block_rows(shape, dtype, chunk_size)
            for first in range(0, shape[0], rows):
                tx.write(name, np.ascontiguousarray(mm[first:first + rows]))
        finally:
            del mm


def _spool_dir(output_path):
    """A directory for temporary files near the store (same disk), else the default."""
    parent = Path(output_path).resolve().parent
    return str(parent) if parent.is_dir() else None


def _import_numpy(fs, s3_path, size, output_path, name, drop_if_exists, chunk_size, progress):
    spool = _spool_dir(output_path)
    with fs.open(s3_path, "rb", block_size=_block_size(chunk_size)) as f:
        is_zip = f.read(4) == b"PK\x03\x04"
        f.seek(0)
        if not is_zip:
            part = _NpyPart(f, size, s3_path)
            with ImportTx(output_path, drop_if_exists, progress, part.nbytes) as tx:
                check_names(tx.npk, [name])
                part.store(tx, name, chunk_size, spool)
                tx.commit()
            return
        try:
            zf = zipfile.ZipFile(f)
        except zipfile.BadZipFile as e:
            raise ValueError(f"{s3_path} is not a readable .npz archive: {e}") from None
        with zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            names = [m.filename[:-4] if m.filename.endswith(".npy") else m.filename for m in members]
            if len(set(names)) != len(names):
                raise ValueError(f"{s3_path}: the archive names an array twice")
            # Every member's header is checked (and its data counted) before any is stored.
            total = 0
            for member in members:
                with zf.open(member) as m:
                    total += _NpyPart(m, member.file_size, f"{s3_path}:{member.filename}").nbytes
            with ImportTx(output_path, drop_if_exists, progress, total) as tx:
                check_names(tx.npk, names)
                for member, key in zip(members, names):
                    what = f"{s3_path}:{member.filename}"
                    with zf.open(member) as m:
                        _NpyPart(m, member.file_size, what).store(tx, key, chunk_size, spool)
                        if m.read(1):  # also makes zipfile check the member's CRC-32
                            raise ValueError(f"{what}: data after the array")
                tx.commit()


def from_s3(s3_path, output_path, format="auto", drop_if_exists=False, chunk_size=DEFAULT_CHUNK_SIZE,
            return_npk_obj=False, *, array_name=None, progress=None, **s3_kwargs):
    """Imports S3 object ``s3_path`` (``s3://bucket/key``) into the store at
    ``output_path``, as array ``array_name`` (default: the object's stem; ``.npz`` and
    HDF5 objects give one array per key). Returns ``None``, or the opened store with
    ``return_npk_obj=True``.

    Raises ``FileNotFoundError`` for a missing object, ``ValueError`` for an unsupported
    ``format``, a malformed URL or a damaged file, ``DependencyError`` without s3fs."""
    s3fs = _check_s3fs()
    key = _key_of(s3_path)
    fmt = _format_of(s3_path, key, format)
    fs = s3fs.S3FileSystem(**s3_kwargs)
    fs.invalidate_cache(s3_path)
    size = fs.size(s3_path)
    name = PurePosixPath(key).stem if array_name is None else array_name
    if fmt == "numpy":
        _import_numpy(fs, s3_path, size, output_path, name, drop_if_exists, chunk_size, progress)
        return finish_import(output_path, return_npk_obj)
    convert = _converter(fmt, "import")
    if array_name is not None and "array_name" not in inspect.signature(convert).parameters:
        raise ValueError(f"array_name does not apply to {fmt} objects: their arrays keep their own names")
    with tempfile.TemporaryDirectory(prefix=".numpack-s3-", dir=_spool_dir(output_path)) as tmp:
        local = os.path.join(tmp, PurePosixPath(key).name)
        prog = Progress(progress, size)
        block = _block_size(chunk_size)
        with fs.open(s3_path, "rb", block_size=block) as src, open(local, "wb") as dst:
            while True:
                data = src.read(block)
                if not data:
                    break
                dst.write(data)
                prog.add(len(data))
        _call(convert, local, output_path, array_name=name, drop_if_exists=drop_if_exists,
              chunk_size=chunk_size, return_npk_obj=False, progress=_then(progress, prog.done))
        if progress is None or "progress" not in inspect.signature(convert).parameters:
            prog.finish()
    return finish_import(output_path, return_npk_obj)


class _Upload:
    """An s3fs file object written in parts: ``commit`` completes the upload; leaving
    without it (error, cancellation) aborts it, so no object is created or changed."""

    def __init__(self, fs, s3_path, chunk_size):
        self.f = fs.open(s3_path, "wb", block_size=_block_size(chunk_size))
        self.committed = False

    def __enter__(self):
        return self

    def write(self, data):
        return self.f.write(data)

    def tell(self):
        return self.f.tell()

    def flush(self):
        pass  # parts go out when s3fs's buffer is full; an early flush would only add parts

    def commit(self):
        self.f.close()
        self.committed = True

    def __exit__(self, exc_type, exc, tb):
        if not self.committed:
            try:
                self.f.discard()
            finally:
                self.f.closed = True  # so s3fs never completes it on garbage collection
        return False


def _write_npy(out, npk, name, chunk_size, prog):
    """Writes array ``name`` to ``out`` as a ``.npy`` file, row block by row block."""
    shape, dtype, _ = array_layout(npk, name)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(out, header)
    for block in read_blocks(npk, name, block_rows(shape, dtype, chunk_size)):
        out.write(np.ascontiguousarray(block).data.cast("B"))
        prog.add(block.nbytes)


def _export_numpy(fs, s3_path, key, input_path, array_name, chunk_size, progress):
    with open_existing_store(input_path) as npk:
        npz = PurePosixPath(key).suffix.lower() == ".npz"
        names = pick_arrays(npk, None if array_name is None else [array_name]) if npz \
            else [pick_array(npk, array_name)]
        prog = Progress(progress, sum(array_layout(npk, n)[2] for n in names))
        with _Upload(fs, s3_path, chunk_size) as up:
            if npz:
                # zipfile sees an unseekable stream (no seek()) and writes data descriptors.
                with zipfile.ZipFile(up, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                    for name in names:
                        with zf.open(name + ".npy", "w", force_zip64=True) as member:
                            _write_npy(member, npk, name, chunk_size, prog)
            else:
                _write_npy(up, npk, names[0], chunk_size, prog)
            prog.finish()
            up.commit()


def to_s3(input_path, s3_path, format="auto", array_name=None, chunk_size=DEFAULT_CHUNK_SIZE, *,
          progress=None, **s3_kwargs):
    """Exports array ``array_name`` of the store at ``input_path`` (default: its only
    array; for a ``.npz`` object, default all arrays) to S3 object ``s3_path``
    (``s3://bucket/key``) in ``format``. The object appears only when complete.

    Raises ``ValueError`` for an unsupported ``format`` or a malformed URL,
    ``FileNotFoundError`` when the store does not exist, ``DependencyError`` without
    s3fs; upload errors come from s3fs (e.g. ``FileNotFoundError`` for a missing
    bucket, ``PermissionError``)."""
    s3fs = _check_s3fs()
    key = _key_of(s3_path)
    fmt = _format_of(s3_path, key, format)
    fs = s3fs.S3FileSystem(**s3_kwargs)
    if fmt == "numpy":
        _export_numpy(fs, s3_path, key, input_path, array_name, chunk_size, progress)
        return
    convert = _converter(fmt, "export")
    with tempfile.TemporaryDirectory(prefix=".numpack-s3-") as tmp:
        local = os.path.join(tmp, PurePosixPath(key).name)
        names = None if array_name is None else [array_name]
        before = [0]

        def first(done, total):
            before[0] = total
            return progress(done, total)

        _call(convert, input_path, local, array_name=array_name, array_names=names,
              chunk_size=chunk_size, progress=first if progress is not None else None)
        size = os.path.getsize(local)
        prog = Progress(_then(progress, before[0]), size)
        block = _block_size(chunk_size)
        with _Upload(fs, s3_path, chunk_size) as up, open(local, "rb") as src:
            while True:
                data = src.read(block)
                if not data:
                    break
                up.write(data)
                prog.add(len(data))
            prog.finish()
            up.commit()
