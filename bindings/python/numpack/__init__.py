"""numpack: NumPack-compatible array store over the numpack C library (cffi)."""

import gc

from ._native import (  # noqa: F401
    ERRORS_BY_NAME,
    NumpackError,
    __version__,
    ffi as _ffi,
    lib as _lib,
)
from ._store import ArrayNotFoundError, NumPack  # noqa: F401
from ._lazy import LazyArray  # noqa: F401
from ._batch import BatchModeContext, WritableBatchMode  # noqa: F401
from . import npy  # noqa: F401
from ._check import Finding, check  # noqa: F401

globals().update({cls.__name__: cls for cls in ERRORS_BY_NAME.values()})


def force_cleanup_windows_handles():
    gc.collect()
    return True


__all__ = ["NumPack", "LazyArray", "BatchModeContext", "WritableBatchMode", "NumpackError",
           "ArrayNotFoundError", "force_cleanup_windows_handles", "__version__",
           "check", "Finding"] + [
    cls.__name__ for cls in ERRORS_BY_NAME.values()]

# numpack.io uses numpack.npy, imported above.
from .io.package_io import get_package_info, pack, unpack  # noqa: E402

__all__ += ["pack", "unpack", "get_package_info"]
