"""Shared pieces of the ``numpack.io`` converters: the size constants, the row-count
estimate used to stream arrays in bounded blocks, and the import of optional libraries
on first use (``DependencyError`` names the pip command that installs them)."""

import importlib
from pathlib import Path

import numpy as np

LARGE_FILE_THRESHOLD = 1 << 30
DEFAULT_CHUNK_SIZE = 100 * 1024 * 1024
DEFAULT_BATCH_ROWS = 100_000

# The pip extra that installs each optional module (pyproject.toml declares them).
EXTRAS = {
    "pyarrow": "parquet",
    "pandas": "pandas",
    "h5py": "hdf5",
    "zarr": "zarr",
    "torch": "torch",
    "safetensors": "safetensors",
    "s3fs": "s3",
    "boto3": "s3",
}

__all__ = ["DependencyError", "get_file_size", "is_large_file", "estimate_chunk_rows",
           "LARGE_FILE_THRESHOLD", "DEFAULT_CHUNK_SIZE", "DEFAULT_BATCH_ROWS"]


class DependencyError(ImportError):
    """An optional library a converter needs is not installed."""


def _check_dependency(module_name, package_name=None, extra=None):
    """Imports ``module_name``; raises ``DependencyError`` with the install command when
    it is missing (``pip install numpack[<extra>]`` when an extra provides it)."""
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        top = module_name.split(".")[0]
        extra = extra or EXTRAS.get(top)
        hint = f"pip install numpack[{extra}]" if extra else f"pip install {package_name or top}"
        raise DependencyError(
            f"this conversion needs the optional library {package_name or top!r}, which is not "
            f"installed ({e}); install it with: {hint}") from e


def _check_h5py():
    return _check_dependency("h5py")


def _check_zarr():
    return _check_dependency("zarr")


def _check_pyarrow(extra="parquet"):
    return _check_dependency("pyarrow", extra=extra)


def _check_pandas():
    return _check_dependency("pandas")


def _check_torch():
    return _check_dependency("torch")


def _check_s3fs():
    return _check_dependency("s3fs")


def _check_boto3():
    return _check_dependency("boto3")


def get_file_size(path):
    """Size in bytes of file ``path``; of a directory, the total of the files under it;
    0 when ``path`` does not exist."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def is_large_file(path, threshold=LARGE_FILE_THRESHOLD):
    """Whether ``get_file_size(path)`` exceeds ``threshold`` bytes."""
    return get_file_size(path) > threshold


def estimate_chunk_rows(shape, dtype, target_chunk_bytes=DEFAULT_CHUNK_SIZE):
    """Rows per block so that a block of an array of ``shape`` and ``dtype`` is about
    ``target_chunk_bytes``: at least 1, at most the row count and 10 x
    ``DEFAULT_BATCH_ROWS`` (1 for a 0-d shape, ``DEFAULT_BATCH_ROWS`` for empty rows)."""
    shape = tuple(int(d) for d in shape)
    if not shape:
        return 1
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
    if row_bytes == 0:
        return DEFAULT_BATCH_ROWS
    rows = max(1, int(target_chunk_bytes) // row_bytes)
    return min(rows, shape[0], DEFAULT_BATCH_ROWS * 10)
