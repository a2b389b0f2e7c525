"""What every ``numpack.io`` converter shares: opening the store, the ``progress=``
callback, atomic results and bounded blocks.

* Imports write each array under a temporary name (``.io-import-<pid>-<n>``) and rename
  it into place only once every array of the call is complete; any failure,
  ``KeyboardInterrupt`` or cancellation drops the temporary arrays, so the store keeps
  its old arrays and gains no partial one. ``drop_if_exists=True`` empties the store
  only at that final step, so a failed import leaves the old store as it was.
* Exports write to a temporary file (or directory) next to the target and
  ``os.replace`` it over the target when complete; on failure it is removed.
* ``progress(done_bytes, total_bytes)`` is called once at the start, after every block
  and at the end; returning ``False`` cancels (``numpack.CancelledError``) and an
  exception it raises cancels too and propagates unchanged, as for the ``.npy`` calls.
* Data moves in blocks of at most ``min(chunk_size, BLOCK_BYTES)`` bytes, and store
  handles are reopened every ``WINDOW_BYTES`` (the library's memory maps would
  otherwise keep every page read or written resident), so memory does not grow with
  the array.
"""

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .._native import ERRORS_BY_NAME, check, ffi, lib
from .._store import _name
from .utils import DEFAULT_CHUNK_SIZE

BLOCK_BYTES = 16 << 20
# Bytes read or written through one store handle before it is reopened (see read_blocks).
WINDOW_BYTES = 64 << 20
TEMP_PREFIX = ".io-import-"
_SEQ = itertools.count()
CancelledError = ERRORS_BY_NAME["CANCELLED"]


def block_rows(shape, dtype, chunk_size=DEFAULT_CHUNK_SIZE, multiple=1):
    """Rows per block of an array of ``shape``: about ``min(chunk_size, BLOCK_BYTES)``
    bytes, at least one row (and at least ``multiple`` rows, rounded down to a multiple
    of it, so blocks line up with a format's chunks)."""
    budget = max(1, min(int(chunk_size), BLOCK_BYTES))
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
    rows = max(1, budget // row_bytes) if row_bytes else 1 << 16
    multiple = max(1, int(multiple))
    return max(multiple, rows // multiple * multiple)


class Progress:
    """Counts bytes and reports them to the user's ``progress`` callback."""

    def __init__(self, progress, total):
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be callable, not {type(progress).__name__}")
        self.user = progress
        self.total = int(total)
        self.done = 0
        self.last = None
        self._report()

    def _report(self):
        self.last = (self.done, self.total)
        if self.user is not None and self.user(self.done, self.total) is False:
            raise CancelledError("cancelled by the progress callback")

    def add(self, nbytes):
        self.done += int(nbytes)
        self.total = max(self.total, self.done)
        self._report()

    def finish(self):
        """The final report, ``done == total`` (unless the last one already was)."""
        self.total = self.done
        if self.last != (self.done, self.total):
            self._report()


def open_store(path, drop_if_exists=False):
    from .._store import NumPack

    npk = NumPack(path, drop_if_exists=drop_if_exists, warn_no_context=False)
    npk.open()
    return npk


def open_existing_store(path):
    """The store at ``path``, which must exist (exports never create one)."""
    if not Path(path).is_dir():
        raise FileNotFoundError(f"NumPack store not found: {path}")
    return open_store(path)


def pick_array(npk, array_name):
    """``array_name``, or the store's only array when it is ``None``."""
    members = npk.get_member_list()
    if array_name is None:
        if len(members) != 1:
            raise ValueError(
                f"the store holds {len(members)} arrays {sorted(members)}; pass array_name= to "
                "choose one")
        return members[0]
    if array_name not in members:
        raise KeyError(f"array {array_name!r} not found in {npk.filename}")
    return array_name


def pick_arrays(npk, array_names):
    members = npk.get_member_list()
    if array_names is None:
        return sorted(members)
    if isinstance(array_names, str):
        array_names = [array_names]
    missing = [n for n in array_names if n not in members]
    if missing:
        raise KeyError(f"arrays not found in {npk.filename}: {missing}")
    return list(array_names)


def array_layout(npk, name):
    """``(shape, dtype, nbytes)`` of array ``name``."""
    info = npk._info(name)
    shape = tuple(int(d) for d in info.shape)
    return shape, info.dtype, int(np.prod(shape, dtype=np.int64)) * info.dtype.itemsize


def read_blocks(npk, name, rows):
    """The rows of array ``name`` of store ``npk`` in blocks of ``rows`` rows (fewer for
    the last), one block in memory at a time.

    The library reads through a memory map that stays populated while a store handle is
    open, so the pages read would add up in the process's resident set to the whole
    array. The blocks are therefore read through fresh handles, each closed (and its map
    released) after ``WINDOW_BYTES``. The array must keep its shape meanwhile."""
    shape, dtype, _ = array_layout(npk, name)
    rows = max(1, int(rows))
    per_handle = max(1, WINDOW_BYTES // max(1, rows * _row_bytes(shape, dtype)))
    start = 0
    while start < shape[0]:
        with open_store(npk.filename) as h:
            if array_layout(h, name)[:2] != (shape, dtype):
                raise RuntimeError(f"array {name!r} changed while it was being exported")
            for _ in range(per_handle):
                if start >= shape[0]:
                    break
                block = h.getitem(name, slice(start, min(start + rows, shape[0])))
                start += block.shape[0]
                yield block


def _row_bytes(shape, dtype):
    return int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize


def _delete(npk, name):
    """Deletes array ``name`` itself (the library call: ``NumPack.drop`` keeps an empty
    array in NumPack 0.7's semantics)."""
    check(lib.npk_store_drop(npk._h(), name.encode("utf-8")))


def _drop_orphans(npk):
    """Drops temporary arrays of imports whose process died (best effort, Linux)."""
    if not os.path.isdir("/proc/self"):
        return
    for name in npk.get_member_list():
        if not name.startswith(TEMP_PREFIX):
            continue
        pid = name[len(TEMP_PREFIX):].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            try:
                _delete(npk, name)
            except Exception:  # noqa: BLE001 - someone else may be dropping it
                pass


def check_names(npk, names):
    """Raises the library's ``InvalidNameError`` for the first of ``names`` the store
    cannot take. A name refused only at the final rename would leave the arrays renamed
    before it (and, with ``drop_if_exists``, the store already emptied), so imports
    check every name before anything is written or renamed."""
    found = ffi.new("bool *")
    for name in names:
        check(lib.npk_store_has(npk._h(), _name(name), found))


class ImportTx:
    """The arrays one import call writes: each under a temporary name until ``commit``.

    Use as a context manager; leaving it with an exception drops every temporary array.
    """

    def __init__(self, output_path, drop_if_exists=False, progress=None, total=0):
        self.path = output_path
        self.npk = open_store(output_path)
        self.written = 0  # bytes through this handle, see write
        self.drop_if_exists = bool(drop_if_exists)
        self.pending = {}  # target name -> temporary name
        self.rows = {}
        self.committed = False
        try:
            _drop_orphans(self.npk)
            self.progress = Progress(progress, total)
        except BaseException:
            self.npk.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None or not self.committed:
                self._rollback()
        finally:
            self.npk.close()
        return False

    def begin(self, name):
        """Starts array ``name`` (replacing an earlier one of this call)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"invalid array name {name!r}")
        check_names(self.npk, [name])
        if name in self.pending:
            self._drop(self.pending.pop(name))
        self.pending[name] = f"{TEMP_PREFIX}{os.getpid()}-{next(_SEQ)}"
        self.rows[name] = None

    def write(self, name, block, count=True):
        """Appends the rows of ``block`` to array ``name`` (and counts its bytes as
        progress unless the caller counts something else, e.g. text read)."""
        block = np.asarray(block)
        if block.ndim == 0:
            raise ValueError(f"cannot store a 0-d value as array {name!r}: arrays need a row axis")
        if self.written >= WINDOW_BYTES:
            # Appends go through the library's memory map, which stays populated while the
            # handle is open: a fresh handle keeps the resident set bounded.
            self.npk.close()
            self.npk = open_store(self.path)
            self.written = 0
        self.written += block.nbytes
        tmp = self.pending[name]
        if self.rows[name] is None:
            self.npk.save({tmp: block})
            self.rows[name] = block.shape[0]
        else:
            self.npk.append({tmp: block})
            self.rows[name] += block.shape[0]
        if count:
            self.progress.add(block.nbytes)

    def write_empty(self, name, shape, dtype):
        """Makes sure array ``name`` exists, with ``shape`` when no block was written."""
        if self.rows[name] is None:
            self.npk.save({self.pending[name]: np.empty(shape, dtype=dtype)})
            self.rows[name] = shape[0]

    def commit(self):
        """Renames every temporary array into place (dropping the arrays it replaces and,
        with ``drop_if_exists``, every other array of the store)."""
        self.progress.finish()
        h = self.npk._h()
        temps = set(self.pending.values())
        if self.drop_if_exists:
            doomed = [n for n in self.npk.get_member_list() if n not in temps]
        else:
            doomed = [n for n in self.pending if self.npk.has_array(n)]
        for name in doomed:
            _delete(self.npk, name)
        for name, tmp in list(self.pending.items()):
            check(lib.npk_store_rename(h, tmp.encode(), name.encode()))
            del self.pending[name]
        self.committed = True

    def _drop(self, tmp):
        try:
            if self.npk.has_array(tmp):
                _delete(self.npk, tmp)
        except Exception:  # noqa: BLE001 - cleanup must not hide the original error
            pass

    def _rollback(self):
        for tmp in self.pending.values():
            self._drop(tmp)
        self.pending.clear()


def hand_over(npk, return_npk_obj):
    """What a ``from_*`` call that kept its store open returns: that store, or ``None``
    after closing it."""
    if return_npk_obj:
        return npk
    npk.close()
    return None


def finish_import(output_path, return_npk_obj):
    """What the ``from_*`` calls return: ``None`` or the opened store."""
    return open_store(output_path) if return_npk_obj else None


class AtomicPath:
    """A temporary file or directory next to ``target``, moved over it by ``commit``
    and removed when left without committing (failure, interrupt, cancellation)."""

    def __init__(self, target, directory=False):
        self.target = Path(target)
        parent = self.target.parent if str(self.target.parent) else Path(".")
        if not parent.is_dir():
            raise FileNotFoundError(f"directory not found: {parent}")
        prefix = f".{self.target.name}."
        if directory:
            self.path = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=parent))
        else:
            fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=parent)
            os.close(fd)
            self.path = Path(tmp)
        self.directory = directory
        self.committed = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.committed:
            self._remove(self.path)
        return False

    def _remove(self, path):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()

    def commit(self):
        if not self.directory:
            os.chmod(self.path, 0o666 & ~_umask())
            os.replace(self.path, self.target)
        elif self.target.exists():
            # A directory cannot be renamed over a non-empty one: move the old one aside
            # first, so the target is the old or the new store at every instant but one.
            aside = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.old-", dir=self.path.parent))
            os.rmdir(aside)
            os.rename(self.target, aside)
            try:
                os.rename(self.path, self.target)
            except BaseException:
                os.rename(aside, self.target)
                raise
            self._remove(aside)
        else:
            os.rename(self.path, self.target)
        self.committed = True


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
