"""``numpack.writable_array``: ndarrays over a memory-mapped file, for in-place edits.

``WritableArray`` maps any raw data file (for instance a store's ``data_<name>.npkd``)
as an ndarray of a given shape and dtype; ``WritableBatchMode`` is the store-level form
that ``NumPack.writable_batch_mode()`` returns.

Unlike NumPack, the ndarray stays valid after the block: it keeps its own mapping
(NumPack unmapped it, so touching it afterwards crashed the process). It is made
read-only at the end of the block, so a late write raises ``ValueError`` instead of
reaching the file unnoticed.
"""

import os

import numpy as np

from ._batch import WritableBatchMode

__all__ = ["WritableArray", "WritableBatchMode"]

_MODES = ("r+", "r")


class WritableArray:
    """``with WritableArray(path, shape, dtype) as arr:`` gives ``arr``, an ndarray over
    the first ``prod(shape) * itemsize`` bytes of the file at ``path`` (C order, the
    dtype's own byte order). With ``mode='r+'`` assignments go to the file; the block's
    end flushes them to disk (``msync``). ``mode='r'`` gives a read-only array."""

    def __init__(self, file_path, shape, dtype, mode="r+"):
        if mode not in _MODES:
            raise ValueError(f"mode must be 'r+' or 'r', not {mode!r}")
        self.file_path = file_path
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.mode = mode
        self._map = None
        self._array = None

    def __enter__(self):
        if self._array is not None:
            raise RuntimeError(f"WritableArray over {self.file_path!r} is already open")
        count = 1
        for n in self.shape:
            if n < 0:
                raise ValueError(f"negative dimension in shape {self.shape}")
            count *= n
        need = count * self.dtype.itemsize
        size = os.stat(self.file_path).st_size
        if size < need:
            raise _TooSmall(f"{self.file_path!r} has {size} bytes; shape {self.shape} of "
                            f"{self.dtype} needs {need}")
        if need == 0:  # nothing to map (mmap refuses empty ranges)
            arr = np.empty(self.shape, self.dtype)
        else:
            self._map = np.memmap(self.file_path, dtype=self.dtype, mode=self.mode, shape=self.shape)
            arr = self._map.view(np.ndarray)  # its base keeps the mapping alive
        arr.flags.writeable = self.mode == "r+"
        self._array = arr
        return arr

    def flush(self):
        """Writes the changes made so far to disk and waits for it."""
        if self._map is not None and self.mode == "r+":
            self._map.flush()

    def __exit__(self, exc_type, exc_val, exc_tb):
        try:
            self.flush()
        finally:
            if self._array is not None:
                self._array.flags.writeable = False
            self._map = None
            self._array = None
        return False


class _TooSmall(ValueError, TypeError):
    """The file is shorter than the shape asks for: a ``ValueError`` (bad argument),
    and a ``TypeError`` as NumPy, and so NumPack, reports it."""
