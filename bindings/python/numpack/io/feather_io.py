"""Feather (Arrow IPC) files and Arrow tables <-> store arrays (NumPack's
``numpack.io`` API), with pyarrow (``pip install numpack[feather]``), imported on first use.

Streamed both ways (NumPack reads and writes the whole table at once):
``from_feather`` reads and appends one record batch at a time,
``to_feather`` reads the store in row blocks written as record batches of a Feather V2
(Arrow IPC file) stream. Memory holds one block of ``min(chunk_size, 16 MiB)`` bytes (or
one record batch of the file being read). Column layout, N-d shapes and dtypes: see
``_tabular`` (float16 is kept; complex is refused). Atomicity and ``progress=``: see
``_stream``.
"""

from pathlib import Path

import numpy as np

from . import _tabular as tab
from ._stream import (AtomicPath, ImportTx, Progress, array_layout, block_rows, finish_import,
                      open_existing_store, pick_array, read_blocks)
from .parquet_io import export_table, import_table
from .utils import DEFAULT_CHUNK_SIZE, _check_pyarrow

__all__ = ["from_feather", "to_feather", "from_table", "to_table", "from_feather_file",
           "to_feather_file"]

_FORMAT = "Feather"


def from_table(table, output_path, array_name=None, columns=None, drop_if_exists=False,
               return_npk_obj=False, *, chunk_size=DEFAULT_CHUNK_SIZE, progress=None):
    """Stores the numeric columns of Arrow ``table`` (optionally only ``columns``) as
    array ``array_name`` (default ``'data'``). Returns ``None``, or the opened store with
    ``return_npk_obj=True``."""
    _check_pyarrow("feather")
    import_table(table, output_path, "data" if array_name is None else array_name, columns,
                 drop_if_exists, chunk_size, progress, "the table")
    return finish_import(output_path, return_npk_obj)


def to_table(input_path, array_name=None, column_names=None, *, progress=None):
    """Array ``array_name`` of the store at ``input_path`` (default: its only array) as
    an Arrow table; ``column_names`` renames the columns."""
    _check_pyarrow("feather")
    return export_table(input_path, array_name, column_names, "an Arrow table", progress=progress)


def _open_ipc(pa, src):
    """A reader of Feather V2 / Arrow IPC file ``src`` that reads (and decompresses) one
    record batch at a time; a plain file, as a memory map would keep every page read
    resident."""
    source = pa.OSFile(str(src), "rb")
    try:
        return source, pa.ipc.open_file(source)
    except pa.ArrowInvalid as e:
        source.close()
        raise ValueError(f"{src} is not a Feather V2 (Arrow IPC) file: {e}") from None


def from_feather_file(input_path, output_path, array_name=None, columns=None, drop_if_exists=False,
                      return_npk_obj=False, *, chunk_size=DEFAULT_CHUNK_SIZE, progress=None):
    """Imports the numeric columns of Feather file ``input_path`` (optionally only
    ``columns``) as array ``array_name`` (default: the file's stem). Returns ``None``, or
    the opened store with ``return_npk_obj=True``."""
    pa = _check_pyarrow("feather")
    src = Path(input_path)
    if not src.is_file():
        raise FileNotFoundError(f"File not found: {src}")
    name = src.stem if array_name is None else array_name
    what = str(src)
    source, reader = _open_ipc(pa, src)
    try:
        sch = reader.schema
        cols = tab.pick_columns(sch, columns, what)
        sch = tab.selected_schema(sch, cols)
        dtype = tab.result_dtype(sch, what)
        tail = tab.row_shape(sch, what)
        row_bytes = int(np.prod(tail, dtype=np.int64)) * dtype.itemsize
        total = reader.count_rows() * row_bytes if progress is not None else 0
        rows = block_rows((1,) + tail, dtype, chunk_size)
        with ImportTx(output_path, drop_if_exists, progress, total) as tx:
            tx.begin(name)
            for i in range(reader.num_record_batches):
                batch = reader.get_record_batch(i)
                if cols is not None:
                    batch = batch.select(cols)
                for start in range(0, batch.num_rows, rows):
                    tx.write(name, tab.from_batch(batch.slice(start, rows), dtype, tail, what))
                del batch
            tx.write_empty(name, (0,) + tail, dtype)
            tx.commit()
    finally:
        source.close()
    return finish_import(output_path, return_npk_obj)


def to_feather_file(input_path, output_path, array_name=None, compression="zstd", *,
                    chunk_size=DEFAULT_CHUNK_SIZE, progress=None):
    """Writes array ``array_name`` of the store at ``input_path`` (default: its only
    array) to Feather V2 file ``output_path``, compressed with ``compression``
    (``'zstd'``, ``'lz4'``, ``'uncompressed'`` or ``None``), one record batch per block."""
    pa = _check_pyarrow("feather")
    if compression == "uncompressed":
        compression = None
    if compression not in (None, "zstd", "lz4"):
        raise ValueError(f"compression must be 'zstd', 'lz4', 'uncompressed' or None, not {compression!r}")
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with open_existing_store(input_path) as npk:
        name = pick_array(npk, array_name)
        shape, dtype, nbytes = array_layout(npk, name)
        tab.check_dtype(dtype, _FORMAT)
        sch = tab.schema(shape, dtype)
        with AtomicPath(output_path) as tmp:
            prog = Progress(progress, nbytes)
            with pa.OSFile(str(tmp.path), "wb") as sink, pa.ipc.new_file(sink, sch, options=options) as writer:
                for block in read_blocks(npk, name, block_rows(shape, dtype, chunk_size)):
                    writer.write_batch(tab.to_batch(block, sch))
                    prog.add(block.nbytes)
            prog.finish()
            tmp.commit()


from_feather = from_feather_file
to_feather = to_feather_file
