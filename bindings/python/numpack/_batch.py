"""``batch_mode`` (an in-memory cache written at the end of the block) and
``writable_batch_mode`` (ndarrays over writable mappings of the data files)."""

from ._native import check, lib


class BatchModeContext:
    """Inside the block, ``load`` returns one cached ndarray per name (the same object
    every time) and ``save`` only updates the cache. When the block ends normally every
    cached array, saved or only loaded and edited in place, is written, and a failure
    raises. When the block raises, the cache is discarded and nothing more is written.

    ``memory_limit`` (MB, optional): when the cached arrays pass it, they are written to
    the store at once and the cache keeps only weak references, so memory is freed as
    soon as the caller drops them; arrays the caller still holds stay the objects
    ``load`` returns and their later edits are written at the end (nothing is lost)."""

    def __init__(self, numpack_instance, memory_limit=None):
        if memory_limit is not None and not (isinstance(memory_limit, (int, float)) and memory_limit > 0):
            raise ValueError(f"memory_limit must be a positive number of MB or None, not {memory_limit!r}")
        self.npk = numpack_instance
        self.memory_limit = memory_limit
        self._dirty_arrays = set()
        self._outer = None

    def __enter__(self):
        npk = self.npk
        npk._h()
        self._outer = npk._batch_context if npk._cache_enabled else None
        if self._outer is None:
            npk._memory_cache.clear()
            npk._memory_stamps.clear()
            npk._memory_spilled.clear()
        npk._cache_enabled = True
        npk._batch_context = self._outer or self
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        npk = self.npk
        if self._outer is not None:  # nested: the outermost block writes
            return False
        npk._batch_context = self
        if exc_type is not None:
            npk._memory_cache.clear()
            npk._memory_stamps.clear()
            npk._memory_spilled.clear()
            npk._cache_enabled = False
            self._dirty_arrays.clear()
            npk._batch_context = None
            return False
        try:
            npk._flush_cache()
            if npk.is_opened:
                npk.sync()
        finally:
            npk._batch_context = None
        return False


    def _check_memory(self):
        """Spills the cache to the store when it holds more than ``memory_limit`` MB."""
        if self.memory_limit is None:
            return
        total = sum(getattr(a, "nbytes", 0) for a in self.npk._memory_cache.values())
        if total > self.memory_limit * (1 << 20):
            self.npk._spill()


class WritableBatchMode:
    """``load(name)`` returns an ndarray over a writable mapping of the array's data
    file: assignments go straight to the file. Arrays with deleted rows are compacted
    first (``update``), so the ndarray is exactly the logical rows. At the end of the
    block the ndarrays are made read-only: writing to one afterwards raises
    ``ValueError``; reading stays safe (it keeps its mapping).

    Like every other change, the writes are visible to readers at once and survive the
    process being killed (they are in the operating system's page cache); they are
    durable against power loss after ``sync()`` (or ``flush()`` on this object), which
    the end of the block does not wait for."""

    def __init__(self, numpack_instance):
        self.npk = numpack_instance
        self._arrays = {}
        self._views = {}

    def __enter__(self):
        self.npk._h()
        self.npk._writable_batch = self
        return self

    def load(self, array_name):
        if array_name in self._arrays:
            return self._arrays[array_name]
        from ._lazy import _View

        npk = self.npk
        h = npk._h()
        info = npk._info(array_name)
        if info.shape and info.physical_rows != info.shape[0]:
            npk.update(array_name)
        view = _View(h, array_name, writable=True)
        arr = view.array()
        self._views[array_name] = view
        self._arrays[array_name] = arr
        return arr

    @property
    def array_cache(self):
        """Name -> the ndarray ``load`` returned in this block (NumPack's attribute)."""
        return self._arrays

    @property
    def writable_arrays(self):
        """Name -> the object owning that ndarray's mapping (NumPack's attribute)."""
        return self._views

    def save(self, arrays_dict=None):
        """Nothing to do: changes are already in the mapped files."""

    def flush(self):
        """Writes the changes made so far to disk and waits (``msync``)."""
        for view in self._views.values():
            view.flush()

    def _release(self):
        for arr in self._arrays.values():
            arr.flags.writeable = False
        self._arrays.clear()
        self._views.clear()
        if self.npk._writable_batch is self:
            self.npk._writable_batch = None

    def __exit__(self, exc_type, exc_val, exc_tb):
        self._release()
        return False
