"""HDF5 files <-> store arrays (NumPack's ``numpack.io`` API), with h5py
(``pip install numpack[hdf5]``), imported on first use.

Streamed both ways in row slabs of ``min(chunk_size, 16 MiB)`` bytes, lined up with the
dataset's chunks when it has any, whatever the dataset size. HDF5 holds every store
dtype (bool, integers, float16/32/64, complex64/128) and any number of dimensions.
``to_hdf5`` writes chunks of about 1 MiB (at most ``chunk_size``; NumPack: 100 MB),
which HDF5's chunk cache and compressors handle well. Atomicity and ``progress=``: see
``_stream``.
"""

from pathlib import Path

import numpy as np

from ._stream import (AtomicPath, ImportTx, Progress, array_layout, block_rows, finish_import,
                      open_existing_store, pick_arrays, read_blocks)
from .utils import DEFAULT_CHUNK_SIZE, _check_h5py

__all__ = ["from_hdf5", "to_hdf5"]

_CHUNK_BYTES = 1 << 20


def _datasets(h5py, grp, names, src):
    if names is None:
        return [(n, grp[n]) for n in grp.keys() if isinstance(grp.get(n, getlink=False), h5py.Dataset)]
    if isinstance(names, str):
        names = [names]
    out = []
    for n in names:
        if n not in grp:
            raise KeyError(f"dataset {n!r} not found in group {grp.name!r} of {src}")
        obj = grp[n]
        if not isinstance(obj, h5py.Dataset):
            raise ValueError(f"{n!r} in group {grp.name!r} of {src} is a group, not a dataset")
        out.append((n, obj))
    return out


def _check_dataset(name, ds, src):
    if ds.dtype.kind not in "biufc" or ds.dtype.fields is not None or ds.dtype.subdtype is not None:
        raise TypeError(f"dataset {name!r} of {src} has dtype {ds.dtype}, which a store array cannot "
                        "hold (numeric and bool only)")
    if ds.shape is None or len(ds.shape) == 0:
        raise ValueError(f"dataset {name!r} of {src} is a scalar; store arrays need a row axis")


def from_hdf5(input_path, output_path, dataset_names=None, group="/", drop_if_exists=False,
              chunk_size=DEFAULT_CHUNK_SIZE, return_npk_obj=False, *, progress=None):
    """Imports the datasets ``dataset_names`` (default: every dataset directly in
    ``group``) of HDF5 file ``input_path`` as arrays of the same names. Returns ``None``,
    or the opened store with ``return_npk_obj=True``."""
    h5py = _check_h5py()
    src = Path(input_path)
    if not src.is_file():
        raise FileNotFoundError(f"File not found: {src}")
    with h5py.File(str(src), "r") as f:
        if group not in f:
            raise KeyError(f"group {group!r} not found in {src}")
        grp = f[group]
        if not isinstance(grp, h5py.Group):
            raise ValueError(f"{group!r} in {src} is not a group")
        datasets = _datasets(h5py, grp, dataset_names, src)
        for name, ds in datasets:
            _check_dataset(name, ds, src)
        total = sum(int(np.prod(ds.shape, dtype=np.int64)) * ds.dtype.itemsize for _, ds in datasets)
        with ImportTx(output_path, drop_if_exists, progress, total) as tx:
            for name, ds in datasets:
                tx.begin(name)
                chunk_rows = ds.chunks[0] if ds.chunks else 1
                rows = block_rows(ds.shape, ds.dtype, chunk_size, multiple=chunk_rows)
                for start in range(0, ds.shape[0], rows):
                    tx.write(name, ds[start:start + rows])
                tx.write_empty(name, ds.shape, ds.dtype)
            tx.commit()
    return finish_import(output_path, return_npk_obj)


def _chunks(shape, dtype, target):
    """A chunk shape of about ``_CHUNK_BYTES`` (whole rows), or ``None`` (contiguous)
    for arrays with an empty dimension, which HDF5 cannot chunk."""
    if 0 in shape:
        return None
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    return (max(1, min(shape[0], target // max(row_bytes, 1))),) + tuple(shape[1:])


def to_hdf5(input_path, output_path, array_names=None, group="/", compression="gzip",
            compression_opts=4, chunk_size=DEFAULT_CHUNK_SIZE, *, progress=None):
    """Writes arrays ``array_names`` (default: all) of the store at ``input_path`` as
    datasets of ``group`` in a new HDF5 file ``output_path`` (replaced as a whole),
    compressed with ``compression`` / ``compression_opts`` (``None``: uncompressed)."""
    h5py = _check_h5py()
    with open_existing_store(input_path) as npk:
        names = pick_arrays(npk, array_names)
        layouts = {n: array_layout(npk, n) for n in names}
        with AtomicPath(output_path) as tmp:
            prog = Progress(progress, sum(nb for _, _, nb in layouts.values()))
            with h5py.File(str(tmp.path), "w") as f:
                grp = f.require_group(group) if group not in ("/", "") else f
                for name in names:
                    shape, dtype, _ = layouts[name]
                    chunks = _chunks(shape, dtype, min(int(chunk_size), _CHUNK_BYTES))
                    ds = grp.create_dataset(
                        name, shape=shape, dtype=dtype, chunks=chunks,
                        compression=compression if chunks else None,
                        compression_opts=compression_opts if (compression and chunks) else None)
                    rows = block_rows(shape, dtype, chunk_size, multiple=chunks[0] if chunks else 1)
                    start = 0
                    for block in read_blocks(npk, name, rows):
                        ds[start:start + block.shape[0]] = block
                        start += block.shape[0]
                        prog.add(block.nbytes)
            prog.finish()
            tmp.commit()
