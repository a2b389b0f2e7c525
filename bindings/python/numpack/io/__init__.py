"""numpack.io: conversions between a store and other file formats (NumPack's API)."""

# --- .npy interop ---
from .npy_io import DEFAULT_CHUNK_SIZE, LARGE_FILE_THRESHOLD, from_npy, to_npy  # noqa: F401
# --- end ---
