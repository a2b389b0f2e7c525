"""numpack.io: moving stores and arrays in and out of other files (NumPack's API)."""

__all__ = []

# --- packages (.npkg): numpack/io/package_io.py ---
from .package_io import get_package_info, pack, unpack  # noqa: E402,F401

__all__ += ["pack", "unpack", "get_package_info"]
# --- end packages ---

# --- .npy interop ---
from .npy_io import DEFAULT_CHUNK_SIZE, LARGE_FILE_THRESHOLD, from_npy, to_npy  # noqa: E402,F401

__all__ += ["from_npy", "to_npy", "DEFAULT_CHUNK_SIZE", "LARGE_FILE_THRESHOLD"]
# --- end ---

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
