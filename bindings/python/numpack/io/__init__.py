"""numpack.io: moving stores and arrays in and out of other files."""

__all__ = []

# --- packages (.npkg): numpack/io/package_io.py ---
from .package_io import get_package_info, pack, unpack  # noqa: E402,F401

__all__ += ["pack", "unpack", "get_package_info"]
# --- end packages ---
