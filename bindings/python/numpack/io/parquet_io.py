"""Parquet files and Arrow tables <-> store arrays (NumPack's ``numpack.io`` API),
with pyarrow (``pip install numpack[parquet]``), imported on first use.

Streamed both ways: ``from_parquet`` reads the file one row group at a time, in record
batches appended to the store, ``to_parquet`` reads the store in
row blocks written as row groups by a ``ParquetWriter``; memory holds one block of
``min(chunk_size, 16 MiB)`` bytes and one row group (of the file read: as its writer
chose). Column layout, N-d shapes and dtypes:
see ``_tabular`` (float16 columns need pyarrow >= 15; complex arrays are refused). Atomicity and ``progress=``: see ``_stream``.
"""

from pathlib import Path

import numpy as np

from . import _tabular as tab
from ._stream import (AtomicPath, ImportTx, Progress, array_layout, block_rows, finish_import,
                      open_existing_store, pick_array, read_blocks)
from .utils import DEFAULT_CHUNK_SIZE, _check_dependency, _check_pyarrow

__all__ = ["from_parquet", "to_parquet", "from_parquet_table", "to_parquet_table",
           "from_parquet_file", "to_parquet_file"]

_FORMAT = "Parquet"


def import_table(table, output_path, array_name, columns, drop_if_exists, chunk_size, progress, what):
    """Imports an in-memory Arrow table (or record batch) in row slices."""
    sch = table.schema
    cols = tab.pick_columns(sch, columns, what)
    if cols is not None:
        table = table.select(cols)
        sch = tab.selected_schema(sch, cols)
    dtype = tab.result_dtype(sch, what)
    tail = tab.row_shape(sch, what)
    rows = block_rows((table.num_rows,) + tail, dtype, chunk_size)
    nbytes = table.num_rows * int(np.prod(tail, dtype=np.int64)) * dtype.itemsize
    with ImportTx(output_path, drop_if_exists, progress, nbytes) as tx:
        tx.begin(array_name)
        for start in range(0, table.num_rows, rows):
            tx.write(array_name, tab.from_batch(table.slice(start, rows), dtype, tail, what))
        tx.write_empty(array_name, (0,) + tail, dtype)
        tx.commit()


def from_parquet_table(table, output_path, array_name=None, columns=None, drop_if_exists=False,
                       return_npk_obj=False, *, chunk_size=DEFAULT_CHUNK_SIZE, progress=None):
    """Stores the numeric columns of Arrow ``table`` (optionally only ``columns``) as
    array ``array_name`` (default ``'data'``) of the store at ``output_path``. Returns
    ``None``, or the opened store with ``return_npk_obj=True``."""
    _check_pyarrow()
    import_table(table, output_path, "data" if array_name is None else array_name, columns,
                 drop_if_exists, chunk_size, progress, "the table")
    return finish_import(output_path, return_npk_obj)


def export_table(input_path, array_name, column_names, fmt, chunk_size=DEFAULT_CHUNK_SIZE, progress=None):
    """An Arrow table of one store array, built from row blocks."""
    pa = _check_pyarrow()
    with open_existing_store(input_path) as npk:
        name = pick_array(npk, array_name)
        shape, dtype, nbytes = array_layout(npk, name)
        tab.check_dtype(dtype, fmt)
        sch = tab.schema(shape, dtype, column_names)
        prog = Progress(progress, nbytes)
        batches = []
        for block in read_blocks(npk, name, block_rows(shape, dtype, chunk_size)):
            batches.append(tab.to_batch(block, sch))
            prog.add(block.nbytes)
        prog.finish()
        return pa.Table.from_batches(batches, schema=sch)


def to_parquet_table(input_path, array_name=None, column_names=None, *, progress=None):
    """Array ``array_name`` of the store at ``input_path`` (default: its only array) as
    an Arrow table; ``column_names`` renames the columns."""
    return export_table(input_path, array_name, column_names, "an Arrow table", progress=progress)


def from_parquet_file(input_path, output_path, array_name=None, columns=None, drop_if_exists=False,
                      chunk_size=DEFAULT_CHUNK_SIZE, return_npk_obj=False, *, progress=None):
    """Imports the numeric columns of Parquet file ``input_path`` (optionally only
    ``columns``) as array ``array_name`` (default: the file's stem). Returns ``None``, or
    the opened store with ``return_npk_obj=True``."""
    _check_pyarrow()
    pq = _check_dependency("pyarrow.parquet", "pyarrow")
    src = Path(input_path)
    if not src.is_file():
        raise FileNotFoundError(f"File not found: {src}")
    name = src.stem if array_name is None else array_name
    what = str(src)
    with pq.ParquetFile(str(src)) as pf:
        sch = pf.schema_arrow
        cols = tab.pick_columns(sch, columns, what)
        sch = tab.selected_schema(sch, cols)
        dtype = tab.result_dtype(sch, what)
        tail = tab.row_shape(sch, what)
        nrows = pf.metadata.num_rows
        nbytes = nrows * int(np.prod(tail, dtype=np.int64)) * dtype.itemsize
        rows = block_rows((nrows,) + tail, dtype, chunk_size)
        with ImportTx(output_path, drop_if_exists, progress, nbytes) as tx:
            tx.begin(name)
            # One row group at a time: over the whole file, iter_batches keeps memory
            # growing with the file (a reader is bounded by the largest row group).
            for group in range(pf.num_row_groups):
                for batch in pf.iter_batches(batch_size=rows, row_groups=[group], columns=cols,
                                             use_threads=False):
                    tx.write(name, tab.from_batch(batch, dtype, tail, what))
            tx.write_empty(name, (0,) + tail, dtype)
            tx.commit()
    return finish_import(output_path, return_npk_obj)


def to_parquet_file(input_path, output_path, array_name=None, compression="snappy", row_group_size=100000,
                    chunk_size=DEFAULT_CHUNK_SIZE, *, progress=None):
    """Writes array ``array_name`` of the store at ``input_path`` (default: its only
    array) to Parquet file ``output_path`` with ``compression``, in row groups of at most
    ``row_group_size`` rows."""
    _check_pyarrow()
    pq = _check_dependency("pyarrow.parquet", "pyarrow")
    if int(row_group_size) < 1:
        raise ValueError(f"row_group_size must be positive, not {row_group_size}")
    with open_existing_store(input_path) as npk:
        name = pick_array(npk, array_name)
        shape, dtype, nbytes = array_layout(npk, name)
        tab.check_dtype(dtype, _FORMAT)
        sch = tab.schema(shape, dtype)
        # Blocks of whole row groups when a group fits the block budget, so groups keep
        # the size asked for.
        rows = block_rows(shape, dtype, chunk_size)
        if rows >= row_group_size:
            rows = rows // row_group_size * row_group_size
        with AtomicPath(output_path) as tmp:
            prog = Progress(progress, nbytes)
            with pq.ParquetWriter(str(tmp.path), sch, compression=compression) as writer:
                for block in read_blocks(npk, name, rows):
                    writer.write_batch(tab.to_batch(block, sch), row_group_size=row_group_size)
                    prog.add(block.nbytes)
            prog.finish()
            tmp.commit()


from_parquet = from_parquet_file
to_parquet = to_parquet_file
