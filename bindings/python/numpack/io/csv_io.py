"""CSV and text files <-> store arrays (NumPack's ``numpack.io`` API), with NumPy only.

Streamed both ways, whatever the file size (NumPack streams only above 1 GB and
otherwise reads the whole file through pandas): ``from_csv`` parses blocks of lines
(about ``min(chunk_size, 16 MiB)`` of text) with ``numpy.loadtxt`` and appends them;
``to_csv`` reads the store in row blocks and writes their lines.

Values: ``dtype=None`` reads float64 (pass ``dtype=`` for others; every real dtype
parses). Rows always have a column axis: a file of one column gives ``(rows, 1)``, as
NumPack does through pandas. ``to_csv`` writes floating arrays with ``fmt`` (the default
``'%.18e'`` is exact for float16/32/64) and integer and bool arrays as exact integers
(NumPack formats them with ``fmt`` too, which rounds 64-bit integers); only 1-d and 2-d
arrays have a CSV layout, and complex arrays are refused. A ``header=True`` line starts
with ``#``, which ``from_csv`` skips as a comment. Atomicity and ``progress=`` (bytes of
text): see ``_stream``.
"""

from pathlib import Path

import numpy as np

from ._stream import (AtomicPath, ImportTx, Progress, array_layout, block_rows, finish_import,
                      open_existing_store, pick_array, read_blocks)
from .utils import DEFAULT_CHUNK_SIZE

__all__ = ["from_csv", "to_csv", "from_txt", "to_txt"]

_READ_OPTIONS = ("comments", "usecols", "encoding", "quotechar", "header")
_WRITE_OPTIONS = ("newline", "encoding", "comments")
_TEXT_BLOCK = 16 << 20


def _line_blocks(f, block_bytes, max_rows):
    """Lists of lines of about ``block_bytes`` characters, at most ``max_rows`` lines
    in all."""
    left = max_rows
    while left is None or left > 0:
        lines = f.readlines(block_bytes)
        if not lines:
            return
        if left is not None:
            lines = lines[:left]
            left -= len(lines)
        yield lines


def from_csv(input_path, output_path, array_name=None, drop_if_exists=False, dtype=None, delimiter=",",
             skiprows=0, max_rows=None, chunk_size=DEFAULT_CHUNK_SIZE, return_npk_obj=False, *,
             progress=None, **kwargs):
    """Imports the delimited text file ``input_path`` as array ``array_name`` (default:
    the file's stem): ``skiprows`` lines skipped, at most ``max_rows`` rows read.
    ``kwargs``: ``comments`` (default ``'#'``), ``usecols``, ``encoding``, ``quotechar``
    as for ``numpy.loadtxt``, and ``header`` (``None``: no header line, as in NumPack;
    ``0`` or ``'infer'``: the first line after ``skiprows`` is a header and skipped).
    Returns ``None``, or the opened store with ``return_npk_obj=True``."""
    unknown = sorted(set(kwargs) - set(_READ_OPTIONS))
    if unknown:
        raise TypeError(f"from_csv got unsupported options {unknown}; supported: {list(_READ_OPTIONS)}")
    src = Path(input_path)
    if not src.is_file():
        raise FileNotFoundError(f"File not found: {src}")
    if max_rows is not None and int(max_rows) < 0:
        raise ValueError(f"max_rows must be >= 0, not {max_rows}")
    name = src.stem if array_name is None else array_name
    dtype = np.dtype(np.float64 if dtype is None else dtype)
    header = kwargs.pop("header", None)
    skip = int(skiprows) + (0 if header is None else 1)
    encoding = kwargs.pop("encoding", None) or "utf-8"
    options = {"comments": kwargs.pop("comments", "#"), **kwargs}
    text_bytes = max(1, min(int(chunk_size), _TEXT_BLOCK))
    with open(src, "r", encoding=encoding, newline="") as f, \
            ImportTx(output_path, drop_if_exists, progress, src.stat().st_size) as tx:
        tx.begin(name)
        for _ in range(skip):
            if not f.readline():
                break
        ncols = None
        for lines in _line_blocks(f, text_bytes, None if max_rows is None else int(max_rows)):
            try:
                block = np.loadtxt(lines, dtype=dtype, delimiter=delimiter, ndmin=2, **options)
            except ValueError as e:
                raise ValueError(f"{src}: cannot parse as {dtype}: {e}") from None
            if block.shape[0]:
                if ncols is not None and block.shape[1] != ncols:
                    raise ValueError(f"{src}: rows have {block.shape[1]} columns after rows of {ncols}")
                ncols = block.shape[1]
                tx.write(name, block, count=False)
            tx.progress.add(sum(len(line) for line in lines))
        tx.write_empty(name, (0, 0 if ncols is None else ncols), dtype)
        tx.commit()
    return finish_import(output_path, return_npk_obj)


def _row_format(dtype, ncols, delimiter, fmt):
    if dtype.kind == "c":
        raise TypeError(f"CSV cannot hold {dtype} arrays; export them with to_npy, to_hdf5 or to_zarr")
    if dtype.kind in "biu":
        fmt = "%d"
    return delimiter.replace("%", "%%").join([fmt] * ncols)


def _write_text(input_path, output_path, array_name, delimiter, header, fmt, chunk_size, progress,
                kwargs, caller):
    unknown = sorted(set(kwargs) - set(_WRITE_OPTIONS))
    if unknown:
        raise TypeError(f"{caller} got unsupported options {unknown}; supported: {list(_WRITE_OPTIONS)}")
    newline = kwargs.get("newline", "\n")
    encoding = kwargs.get("encoding") or "utf-8"
    comments = kwargs.get("comments", "# ")
    with open_existing_store(input_path) as npk:
        name = pick_array(npk, array_name)
        shape, dtype, nbytes = array_layout(npk, name)
        if len(shape) > 2:
            raise ValueError(f"array {name!r} has shape {shape}: CSV holds only 1-d and 2-d arrays "
                             "(reshape it to 2-d, or use to_npy, to_hdf5 or to_zarr)")
        ncols = 1 if len(shape) == 1 else shape[1]
        row = _row_format(dtype, ncols, delimiter, fmt)
        with AtomicPath(output_path) as tmp:
            prog = Progress(progress, nbytes)
            with open(tmp.path, "w", encoding=encoding, newline="") as f:
                if header and len(shape) == 2:
                    f.write(comments + delimiter.join(f"col{i}" for i in range(ncols)) + newline)
                # Text takes about 3 times the bytes of the values: smaller blocks.
                rows = block_rows(shape, dtype, min(int(chunk_size), _TEXT_BLOCK // 4))
                for block in read_blocks(npk, name, rows):
                    flat = block.reshape(block.shape[0], -1)
                    if dtype.kind == "b":
                        flat = flat.astype(np.uint8)
                    # One %-format over the whole block: numpy.savetxt formats row by row.
                    if ncols and flat.shape[0]:
                        line = row + newline.replace("%", "%%")
                        f.write((line * flat.shape[0]) % tuple(flat.ravel().tolist()))
                    else:
                        f.write(newline * flat.shape[0])
                    prog.add(block.nbytes)
            prog.finish()
            tmp.commit()


def to_csv(input_path, output_path, array_name=None, delimiter=",", header=False, fmt="%.18e",
           chunk_size=DEFAULT_CHUNK_SIZE, *, progress=None, **kwargs):
    """Writes array ``array_name`` of the store at ``input_path`` (default: its only
    array) as delimited text to ``output_path``: one line per row; ``header=True`` adds a
    ``# col0,col1,...`` line for a 2-d array. ``kwargs``: ``newline``, ``encoding``,
    ``comments`` (the header's prefix, default ``'# '``)."""
    _write_text(input_path, output_path, array_name, delimiter, header, fmt, chunk_size, progress,
                kwargs, "to_csv")


def from_txt(input_path, output_path, array_name=None, drop_if_exists=False, dtype=None, delimiter=None,
             skiprows=0, chunk_size=DEFAULT_CHUNK_SIZE, return_npk_obj=False, *, progress=None, **kwargs):
    """``from_csv`` for whitespace-separated text: ``delimiter=None`` splits on any run
    of whitespace."""
    return from_csv(input_path, output_path, array_name, drop_if_exists, dtype, delimiter, skiprows,
                    None, chunk_size, return_npk_obj, progress=progress, **kwargs)


def to_txt(input_path, output_path, array_name=None, delimiter=" ", fmt="%.18e",
           chunk_size=DEFAULT_CHUNK_SIZE, *, progress=None, **kwargs):
    """``to_csv`` with a space delimiter and no header."""
    _write_text(input_path, output_path, array_name, delimiter, False, fmt, chunk_size, progress,
                kwargs, "to_txt")
