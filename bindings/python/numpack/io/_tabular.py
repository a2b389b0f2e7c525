"""Arrays as Arrow tables, shared by the Parquet, Feather/Arrow and pandas converters.

An array of shape ``(n,)`` is one column (``data``), ``(n, k)`` is ``k`` columns
(``col0`` ... ``col{k-1}``), as in NumPack. An array of more dimensions is written as
one column per element of a row (its trailing dimensions flattened in C order), and
the schema's metadata key ``numpack.shape`` records the trailing shape, so reading it
back restores the array's exact shape (NumPack flattens such an array into a single
column and loses its shape). Tables without that key are read as ``(rows, columns)``.

Arrow holds bool, every integer width, float16/32/64; complex arrays are refused with
an error naming the dtype and the format.
"""

import json

import numpy as np

from .utils import _check_pyarrow

SHAPE_KEY = b"numpack.shape"


def check_dtype(dtype, fmt):
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise TypeError(
            f"{fmt} cannot hold {dtype} arrays (Arrow has no complex type); export them with "
            "to_npy, to_hdf5 or to_zarr, or store real and imaginary parts as two arrays")
    if dtype.kind not in "biuf":
        raise TypeError(f"{fmt} export does not support dtype {dtype}")


def column_names(shape, names=None):
    """The column names of an array of ``shape`` (``names`` overrides them)."""
    ncols = 1 if len(shape) == 1 else int(np.prod(shape[1:], dtype=np.int64))
    if names is not None:
        names = list(names)
        if len(names) != ncols:
            raise ValueError(f"{len(names)} column names given for {ncols} columns (array shape {shape})")
        return names
    return ["data"] if len(shape) == 1 else [f"col{i}" for i in range(ncols)]


def schema(shape, dtype, names=None):
    pa = _check_pyarrow()
    cols = column_names(shape, names)
    meta = {SHAPE_KEY: json.dumps(list(shape[1:])).encode()} if len(shape) != 2 else None
    typ = pa.from_numpy_dtype(np.dtype(dtype))
    return pa.schema([pa.field(c, typ, nullable=False) for c in cols], metadata=meta)


def _arrow_column(pa, col, typ):
    """An Arrow array over a 1-d column, built from its buffers (``pa.array`` would
    import pandas, ~50 MB, only to find out the input is not a Series)."""
    if col.dtype == np.bool_:
        data = np.packbits(col, bitorder="little")
    else:
        data = np.ascontiguousarray(col).view(np.uint8)
    return pa.Array.from_buffers(typ, len(col), [None, pa.py_buffer(data)])


def to_batch(block, sch):
    """A record batch of ``sch`` holding the rows of ``block``."""
    pa = _check_pyarrow()
    flat = block.reshape(block.shape[0], -1) if block.ndim != 1 else block.reshape(-1, 1)
    return pa.RecordBatch.from_arrays(
        [_arrow_column(pa, flat[:, i], sch.field(i).type) for i in range(flat.shape[1])], schema=sch)


def trailing_shape(sch):
    """The trailing shape recorded in ``sch`` by :func:`schema`, or ``None``."""
    meta = sch.metadata or {}
    raw = meta.get(SHAPE_KEY)
    if raw is None:
        return None
    try:
        tail = json.loads(raw)
        if not isinstance(tail, list) or not all(isinstance(d, int) and d >= 0 for d in tail):
            raise ValueError
    except ValueError:
        raise ValueError(f"malformed {SHAPE_KEY.decode()} metadata: {raw[:80]!r}") from None
    return tuple(tail)


_NAMES = {"halffloat": "float16", "float": "float32", "double": "float64", "bool": "bool"}


def _numpy_dtype(pa, t):
    """The NumPy dtype of numeric Arrow type ``t`` (``to_pandas_dtype`` imports pandas)."""
    return np.dtype(_NAMES.get(str(t), str(t)))


def result_dtype(sch, what):
    """The one NumPy dtype the numeric columns of ``sch`` convert to."""
    pa = _check_pyarrow()
    if len(sch) == 0:
        raise ValueError(f"{what} has no columns")
    dtypes = []
    for field in sch:
        t = field.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            raise TypeError(f"column {field.name!r} of {what} has type {field.type}, which is not "
                            "numeric: select numeric columns with columns=")
        dtypes.append(_numpy_dtype(pa, t))
    return np.result_type(*dtypes)


def row_shape(sch, what):
    """The trailing shape the rows of a table of ``sch`` get."""
    tail = trailing_shape(sch)
    if tail is None:
        return (len(sch),)
    if int(np.prod(tail, dtype=np.int64)) != len(sch):
        raise ValueError(f"{what}: {SHAPE_KEY.decode()} {list(tail)} does not match its {len(sch)} columns")
    return tail


def _to_numpy(pa, arr):
    """A NumPy view (bool: copy) of Arrow array ``arr`` without nulls, read from its
    buffers (``Array.to_numpy`` would import pandas)."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    n, off = len(arr), arr.offset
    data = arr.buffers()[1]
    if pa.types.is_boolean(arr.type):
        bits = np.frombuffer(data, dtype=np.uint8)
        return np.unpackbits(bits, count=off + n, bitorder="little")[off:].view(np.bool_)
    dtype = _numpy_dtype(pa, arr.type)
    return np.frombuffer(data, dtype=dtype, count=off + n)[off:]


def from_batch(batch, dtype, tail, what):
    """The rows of a record batch (or table) as an array of ``dtype`` shaped
    ``(rows,) + tail``; null values are refused (a NumPy array has no nulls)."""
    pa = _check_pyarrow()
    out = np.empty((batch.num_rows, batch.num_columns), dtype=dtype)
    for i in range(batch.num_columns):
        col = batch.column(i)
        if col.null_count:
            raise ValueError(f"column {batch.schema.field(i).name!r} of {what} has {col.null_count} "
                             "null values, which an array cannot hold")
        start = 0
        for chunk in getattr(col, "chunks", [col]):
            out[start:start + len(chunk), i] = _to_numpy(pa, chunk)
            start += len(chunk)
    return out.reshape((batch.num_rows,) + tail)


def pick_columns(sch, columns, what):
    if columns is None:
        return None
    columns = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in columns if c not in sch.names]
    if missing:
        raise KeyError(f"columns not found in {what}: {missing} (it has {sch.names})")
    return columns


def selected_schema(sch, columns):
    """``sch`` limited to ``columns``; a subset of columns no longer has the recorded
    shape, so the metadata is dropped then."""
    if columns is None:
        return sch
    pa = _check_pyarrow()
    return pa.schema([sch.field(c) for c in columns])
