"""pandas DataFrames <-> store arrays (NumPack's ``numpack.io`` API), with pandas
(``pip install numpack[pandas]``), imported on first use.

``from_dataframe`` converts the frame in row slices of ``min(chunk_size, 16 MiB)``
bytes (NumPack converts it whole, doubling its memory); every column must be numeric or
bool, and they share one dtype (NumPy's promotion). ``to_dataframe`` builds the frame
from row blocks of the store; a frame is 2-d, so arrays of more dimensions are refused.
Atomicity and ``progress=``: see ``_stream``.
"""

import numpy as np

from ._stream import (ImportTx, Progress, array_layout, block_rows, finish_import, open_existing_store,
                      pick_array, read_blocks)
from .utils import DEFAULT_CHUNK_SIZE, _check_pandas

__all__ = ["from_dataframe", "to_dataframe"]


def _frame_dtype(pd, df):
    dtypes = []
    for col, dt in df.dtypes.items():
        if isinstance(dt, np.dtype) and dt.kind in "biufc":
            dtypes.append(dt)
        elif pd.api.types.is_bool_dtype(dt) or pd.api.types.is_numeric_dtype(dt):
            # Nullable extension dtypes: their NumPy counterpart (a null fails below).
            dtypes.append(np.dtype(getattr(dt, "numpy_dtype", dt)))
        else:
            raise TypeError(f"column {col!r} has dtype {dt}, which is not numeric")
    if not dtypes:
        raise ValueError("the DataFrame has no columns")
    return np.result_type(*dtypes)


def from_dataframe(df, output_path, array_name="data", drop_if_exists=False, chunk_size=DEFAULT_CHUNK_SIZE,
                   return_npk_obj=False, *, progress=None):
    """Stores the values of DataFrame ``df`` as a ``(rows, columns)`` array
    ``array_name``. Returns ``None``, or the opened store with ``return_npk_obj=True``."""
    pd = _check_pandas()
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, not {type(df).__name__}")
    dtype = _frame_dtype(pd, df)
    shape = df.shape
    rows = block_rows(shape, dtype, chunk_size)
    with ImportTx(output_path, drop_if_exists, progress, shape[0] * shape[1] * dtype.itemsize) as tx:
        tx.begin(array_name)
        for start in range(0, shape[0], rows):
            part = df.iloc[start:start + rows]
            if part.isna().to_numpy().any() and dtype.kind not in "fc":
                raise ValueError(f"the DataFrame has missing values in rows {start}..{start + len(part)}, "
                                 f"which a {dtype} array cannot hold")
            tx.write(array_name, part.to_numpy(dtype=dtype))
        tx.write_empty(array_name, shape, dtype)
        tx.commit()
    return finish_import(output_path, return_npk_obj)


def to_dataframe(input_path, array_name=None, columns=None, *, progress=None):
    """Array ``array_name`` of the store at ``input_path`` (default: its only array) as a
    DataFrame: columns ``col0``... for a 2-d array (or ``columns``), one column for a
    1-d array."""
    pd = _check_pandas()
    with open_existing_store(input_path) as npk:
        name = pick_array(npk, array_name)
        shape, dtype, nbytes = array_layout(npk, name)
        if len(shape) > 2:
            raise ValueError(f"array {name!r} has shape {shape}: a DataFrame holds 1-d and 2-d arrays only")
        out = np.empty(shape, dtype=dtype)
        prog = Progress(progress, nbytes)
        start = 0
        for block in read_blocks(npk, name, block_rows(shape, dtype)):
            out[start:start + block.shape[0]] = block
            start += block.shape[0]
            prog.add(block.nbytes)
        prog.finish()
    if columns is None and out.ndim == 2:
        columns = [f"col{i}" for i in range(out.shape[1])]
    return pd.DataFrame(out, columns=columns, copy=False)
