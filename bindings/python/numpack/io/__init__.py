"""numpack.io: moving stores and arrays in and out of other files (NumPack's API)."""

__all__ = []

# --- packages (.npkg): numpack/io/package_io.py ---
from .package_io import get_package_info, pack, unpack  # noqa: E402,F401

__all__ += ["pack", "unpack", "get_package_info"]
# --- end packages ---

# --- format converters (NumPy, CSV/text, HDF5, Zarr, Parquet, Feather/Arrow, pandas) ---
# Each imports its optional library on first use, so these imports need only NumPy.
from .utils import (  # noqa: E402,F401
    DEFAULT_BATCH_ROWS, DEFAULT_CHUNK_SIZE, LARGE_FILE_THRESHOLD, DependencyError, estimate_chunk_rows,
    get_file_size, is_large_file)
from .numpy_io import from_npy, to_npy  # noqa: E402,F401
from .csv_io import from_csv, from_txt, to_csv, to_txt  # noqa: E402,F401
from .hdf5_io import from_hdf5, to_hdf5  # noqa: E402,F401
from .zarr_io import from_zarr, to_zarr  # noqa: E402,F401
from .parquet_io import (  # noqa: E402,F401
    from_parquet, from_parquet_file, from_parquet_table, to_parquet, to_parquet_file, to_parquet_table)
from .feather_io import (  # noqa: E402,F401
    from_feather, from_feather_file, from_table, to_feather, to_feather_file, to_table)
from .pandas_io import from_dataframe, to_dataframe  # noqa: E402,F401

__all__ += [
    "DependencyError", "get_file_size", "is_large_file", "estimate_chunk_rows",
    "LARGE_FILE_THRESHOLD", "DEFAULT_CHUNK_SIZE", "DEFAULT_BATCH_ROWS",
    "from_npy", "to_npy", "from_csv", "to_csv", "from_txt", "to_txt", "from_hdf5", "to_hdf5",
    "from_zarr", "to_zarr", "from_parquet", "to_parquet", "from_parquet_file", "to_parquet_file",
    "from_parquet_table", "to_parquet_table", "from_feather", "to_feather", "from_feather_file",
    "to_feather_file", "from_table", "to_table", "from_dataframe", "to_dataframe"]
# --- end ---

# PyTorch, S3 and zero-copy helpers: torch, s3fs and pyarrow are imported on first use.
from .pytorch_io import from_pt, from_tensor, to_pt, to_tensor  # noqa: E402,F401
from .s3_io import from_s3, to_s3  # noqa: E402,F401
from .zero_copy import (  # noqa: E402,F401
    DLPackBuffer, ZeroCopyArray, arrow_to_numpy_zero_copy, from_dlpack, numpy_to_arrow_zero_copy,
    numpy_to_torch_zero_copy, table_to_numpy_zero_copy, to_dlpack, torch_to_numpy_zero_copy,
    wrap_for_zero_copy)

__all__ += [
    "from_pt", "to_pt", "from_tensor", "to_tensor", "from_s3", "to_s3", "DLPackBuffer", "to_dlpack",
    "from_dlpack", "numpy_to_arrow_zero_copy", "arrow_to_numpy_zero_copy", "table_to_numpy_zero_copy",
    "numpy_to_torch_zero_copy", "torch_to_numpy_zero_copy", "ZeroCopyArray", "wrap_for_zero_copy"]

from .safetensors_io import (  # noqa: E402,F401
    from_safetensors_file,
    from_tensor_dict,
    get_safetensors_metadata,
    iter_safetensors,
    to_safetensors_file,
    to_tensor_dict,
)

__all__ += ["from_safetensors_file", "to_safetensors_file", "from_tensor_dict", "to_tensor_dict",
            "get_safetensors_metadata", "iter_safetensors"]
