"""Zarr stores <-> store arrays (NumPack's ``numpack.io`` API), with zarr 3.x
(``pip install numpack[zarr]``), imported on first use.

``from_zarr`` reads Zarr v3 and v2 stores; ``to_zarr`` writes v3 (``zarr_format=2`` on
request). Streamed both ways in row slabs of ``min(chunk_size, 16 MiB)`` bytes lined up
with the Zarr chunks, whatever the array size. Zarr holds every store dtype and any
number of dimensions. ``to_zarr`` writes chunks of about 4 MiB (at most ``chunk_size``;
NumPack: 100 MB) and builds the store in a temporary directory renamed over
``output_path`` when complete. Atomicity and ``progress=``: see ``_stream``.
"""

from pathlib import Path

import numpy as np

from ._stream import (AtomicPath, ImportTx, Progress, array_layout, block_rows, finish_import,
                      open_existing_store, pick_arrays, read_blocks)
from .utils import DEFAULT_CHUNK_SIZE, _check_zarr

__all__ = ["from_zarr", "to_zarr"]

_CHUNK_BYTES = 4 << 20


def _arrays(zarr, node, names, src):
    if isinstance(node, zarr.Array):
        if names is not None:
            raise ValueError(f"{src} is a single Zarr array, not a group: array_names does not apply")
        return [(Path(str(src)).stem, node)]
    if names is None:
        return sorted(node.arrays(), key=lambda kv: kv[0])
    if isinstance(names, str):
        names = [names]
    out = []
    for n in names:
        if n not in node:
            raise KeyError(f"array {n!r} not found in {src}")
        obj = node[n]
        if not isinstance(obj, zarr.Array):
            raise ValueError(f"{n!r} in {src} is a group, not an array")
        out.append((n, obj))
    return out


def _check_array(name, arr, src):
    dt = np.dtype(arr.dtype)
    if dt.kind not in "biufc" or dt.fields is not None:
        raise TypeError(f"array {name!r} of {src} has dtype {arr.dtype}, which a store array cannot hold")
    if len(arr.shape) == 0:
        raise ValueError(f"array {name!r} of {src} is 0-d; store arrays need a row axis")


def from_zarr(input_path, output_path, array_names=None, group="/", drop_if_exists=False,
              chunk_size=DEFAULT_CHUNK_SIZE, return_npk_obj=False, *, progress=None):
    """Imports arrays ``array_names`` (default: every array directly in ``group``) of the
    Zarr store ``input_path`` as arrays of the same names (a store holding a single array
    is imported under its directory's stem). Returns ``None``, or the opened store with
    ``return_npk_obj=True``."""
    zarr = _check_zarr()
    src = Path(input_path)
    if not src.exists():
        raise FileNotFoundError(f"Zarr store not found: {src}")
    node = zarr.open(str(src), mode="r")
    if group not in ("/", ""):
        if not isinstance(node, zarr.Group) or group.strip("/") not in node:
            raise KeyError(f"group {group!r} not found in {src}")
        node = node[group.strip("/")]
    arrays = _arrays(zarr, node, array_names, src)
    for name, arr in arrays:
        _check_array(name, arr, src)
    total = sum(int(np.prod(a.shape, dtype=np.int64)) * np.dtype(a.dtype).itemsize for _, a in arrays)
    with ImportTx(output_path, drop_if_exists, progress, total) as tx:
        for name, arr in arrays:
            tx.begin(name)
            dtype = np.dtype(arr.dtype)
            rows = block_rows(arr.shape, dtype, chunk_size, multiple=arr.chunks[0] if arr.chunks else 1)
            for start in range(0, arr.shape[0], rows):
                tx.write(name, arr[start:start + rows])
            tx.write_empty(name, arr.shape, dtype)
        tx.commit()
    return finish_import(output_path, return_npk_obj)


def _chunks(shape, dtype, target):
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    rows = max(1, min(max(shape[0], 1), target // max(row_bytes, 1)))
    return (rows,) + tuple(max(1, d) for d in shape[1:])


def _compressors(compressor):
    if compressor is None:
        return None
    if isinstance(compressor, str) and compressor == "default":
        from zarr.codecs import BloscCodec

        return BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")
    return compressor


def to_zarr(input_path, output_path, array_names=None, group="/", compressor="default",
            chunk_size=DEFAULT_CHUNK_SIZE, *, zarr_format=3, progress=None):
    """Writes arrays ``array_names`` (default: all) of the store at ``input_path`` into
    ``group`` of a new Zarr store ``output_path`` (replaced as a whole). ``compressor``:
    ``'default'`` (Blosc zstd level 3 with bit shuffle), ``None`` (none) or a zarr codec
    (or codecs) passed on as ``compressors``."""
    zarr = _check_zarr()
    if zarr_format not in (2, 3):
        raise ValueError(f"zarr_format must be 2 or 3, not {zarr_format!r}")
    with open_existing_store(input_path) as npk:
        names = pick_arrays(npk, array_names)
        layouts = {n: array_layout(npk, n) for n in names}
        codecs = _compressors(compressor)
        if zarr_format == 2 and compressor == "default":
            codecs = "auto"
        with AtomicPath(output_path, directory=True) as tmp:
            prog = Progress(progress, sum(nb for _, _, nb in layouts.values()))
            root = zarr.open_group(str(tmp.path), mode="w", zarr_format=zarr_format)
            grp = root.require_group(group.strip("/")) if group not in ("/", "") else root
            for name in names:
                shape, dtype, _ = layouts[name]
                chunks = _chunks(shape, dtype, min(int(chunk_size), _CHUNK_BYTES))
                arr = grp.create_array(name, shape=shape, dtype=dtype, chunks=chunks,
                                       compressors=codecs, overwrite=True)
                rows = block_rows(shape, dtype, chunk_size, multiple=chunks[0])
                start = 0
                for block in read_blocks(npk, name, rows):
                    arr[start:start + block.shape[0]] = block
                    start += block.shape[0]
                    prog.add(block.nbytes)
            prog.finish()
            tmp.commit()
