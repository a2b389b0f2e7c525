"""``from_npy`` / ``to_npy``: NumPack's ``numpack.io`` conversions for ``.npy`` and
``.npz`` files, streamed through the numpack C library.

Whatever the file size, data moves in blocks of a few MB: ``.npy`` files are imported
and exported by the library itself (``npk_npy_import`` / ``npk_npy_export``), ``.npz``
members are read by the library from the archive and written to it one exported
``.npy`` at a time. ``chunk_size`` is accepted for compatibility with NumPack; the block
size is the library's.

``progress=`` (our extension) takes ``callback(done_bytes, total_bytes)``, called at the
start, after every block and at the end; returning ``False`` cancels
(``numpack.CancelledError``): an import leaves no array, an export leaves the old target
and no temporary file. An exception raised by the callback cancels too and is re-raised.
"""

import os
import tempfile
import zipfile
from pathlib import Path

from .. import npy as _npy
from ._stream import hand_over
from .utils import DEFAULT_CHUNK_SIZE

__all__ = ["from_npy", "to_npy"]


def _open_store(path, drop_if_exists=False):
    from .._store import NumPack

    npk = NumPack(path, drop_if_exists=drop_if_exists, warn_no_context=False)
    npk.open()
    return npk


def from_npy(input_path, output_path, array_name=None, drop_if_exists=False,
             chunk_size=DEFAULT_CHUNK_SIZE, return_npk_obj=False, *, progress=None):
    """Imports a ``.npy`` file (as array ``array_name``, default the file's stem) or every
    array of a ``.npz`` archive (named by their keys) into the store at ``output_path``,
    replacing arrays of the same names. Returns ``None``, or the opened store with
    ``return_npk_obj=True``.

    Raises ``FileNotFoundError`` if ``input_path`` does not exist and ``ValueError`` for a
    suffix other than ``.npy`` / ``.npz``. ``progress``: see the module docs."""
    src = Path(input_path)
    if not src.exists():
        raise FileNotFoundError(f"File not found: {src}")
    suffix = src.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise ValueError(f"Unsupported file format: {suffix!r}; expected .npy or .npz")
    npk = _open_store(output_path, drop_if_exists)
    try:
        if suffix == ".npy":
            _npy.import_npy(npk, src, array_name if array_name is not None else src.stem, overwrite=True,
                            progress=progress)
        else:
            _npy.import_npz(npk, src, overwrite=True, progress=progress)
    except BaseException:
        npk.close()
        raise
    return hand_over(npk, return_npk_obj)


def to_npy(input_path, output_path, array_names=None, compressed=True, chunk_size=DEFAULT_CHUNK_SIZE,
           *, progress=None):
    """Exports arrays of the store at ``input_path``: to a ``.npy`` file (exactly one array:
    ``array_names`` names it, or the store holds only one) or to a ``.npz`` archive
    (``array_names``, default all arrays; deflated when ``compressed``, else stored).
    The target is written to a temporary file and renamed into place. ``progress``: see
    the module docs (for a ``.npz``, ``done`` and ``total`` count all its arrays)."""
    src = Path(input_path)
    if not src.exists():
        raise FileNotFoundError(f"NumPack store not found: {src}")
    dst = Path(output_path)
    suffix = dst.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise ValueError(f"Unsupported file format: {suffix!r}; expected .npy or .npz")
    if isinstance(array_names, str):
        array_names = [array_names]
    npk = _open_store(src)
    try:
        members = npk.get_member_list()
        names = list(array_names) if array_names is not None else sorted(members)
        missing = [n for n in names if n not in members]
        if missing:
            raise KeyError(f"arrays not found in {src}: {missing}")
        if suffix == ".npy":
            if len(names) != 1:
                raise ValueError(
                    f"The .npy format can only store one array, but {len(names)} were selected "
                    f"({names}); pass array_names=[name] or write a .npz")
            _npy.export_npy(npk, names[0], dst, overwrite=True, progress=progress)
            return
        _write_npz(npk, names, dst, compressed, progress)
    finally:
        npk.close()


def _member_progress(progress, sizes, index):
    """``progress`` for member ``index`` of a ``.npz``: shifted by the members before it,
    out of the total of all members."""
    if progress is None:
        return None
    before, total = sum(sizes[:index]), sum(sizes)
    return lambda done, _total: progress(before + done, total)


def _write_npz(npk, names, dst, compressed, progress=None):
    directory = dst.parent if str(dst.parent) else Path(".")
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    fd, tmp_zip = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp_zip, "w", compression=method, allowZip64=True) as zf:
            sizes = [_nbytes(npk, name) for name in names] if progress is not None else []
            for index, name in enumerate(names):
                fd, tmp_npy = tempfile.mkstemp(prefix=".npz-member-", suffix=".npy", dir=directory)
                os.close(fd)
                try:
                    _npy.export_npy(npk, name, tmp_npy, overwrite=True,
                                    progress=_member_progress(progress, sizes, index))
                    zf.write(tmp_npy, arcname=name + ".npy")
                finally:
                    os.unlink(tmp_npy)
        os.replace(tmp_zip, dst)
    except BaseException:
        if os.path.exists(tmp_zip):
            os.unlink(tmp_zip)
        raise


def _nbytes(npk, name):
    """Bytes of data of array ``name`` (its live rows), as its export counts them."""
    info = npk._info(name)
    count = 1
    for d in info.shape:
        count *= int(d)
    return count * info.dtype.itemsize
