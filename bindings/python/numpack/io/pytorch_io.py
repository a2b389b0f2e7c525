"""PyTorch tensors and ``.pt``/``.pth`` files <-> store arrays (NumPack's ``numpack.io``
API), with torch (``pip install numpack[torch]``), imported on first use.

* ``from_tensor`` / ``to_tensor``: one tensor in memory <-> one array. Both share the
  tensor's memory with NumPy (CPU tensors), so ``from_tensor`` writes the tensor's own
  memory in row blocks and ``to_tensor`` reads the array once into the buffer the tensor
  then uses: no second copy.
* ``from_pt``: the file is opened with ``torch.load(mmap=True)`` (files in torch's zip
  format, the default since torch 1.6), so tensors stay in the page cache and reach the
  store in row blocks of ``min(chunk_size, 16 MiB)``. Older files are loaded whole.
  ``weights_only=True`` (our default; NumPack passes ``False``) refuses pickled code, as
  a file from elsewhere may carry it; pass ``weights_only=False`` for files you trust
  that hold other Python objects.
* ``to_pt``: ``torch.save`` needs every tensor in memory at once, so memory holds the
  selected arrays once (each read straight into its tensor's buffer), never twice.

dtypes: all 14 store dtypes where torch has them (``uint16``/``uint32``/``uint64``
need torch >= 2.3). Tensors without a store dtype (``bfloat16``, ``float8``, quantized,
sparse) raise ``ValueError`` naming the tensor and dtype before anything is written. A
0-d tensor (e.g. ``num_batches_tracked`` in a state dict) is stored as a 1-element
array, with a ``UserWarning`` since store arrays need a row axis.

Atomic results and ``progress=``: see ``_stream`` (imports rename their arrays into
place only when all are complete; exports write a temporary file renamed over the
target).
"""

import ctypes
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ._stream import (AtomicPath, ImportTx, Progress, array_layout, block_rows, check_names, finish_import,
                      open_existing_store, pick_array, pick_arrays, read_blocks)
from .utils import DEFAULT_CHUNK_SIZE, _check_torch

__all__ = ["from_tensor", "to_tensor", "from_pt", "to_pt"]


def _tensor_array(torch, tensor, label):
    """The NumPy array over the memory of CPU tensor ``tensor`` (detached); tensors
    without a store dtype or dense memory raise ``ValueError`` naming ``label``."""
    if tensor.layout != torch.strided:
        raise ValueError(f"{label}: a {tensor.layout} tensor has no dense data; call .to_dense() first")
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    tensor = tensor.detach()
    if tensor.is_conj() or tensor.is_neg():
        tensor = tensor.resolve_conj().resolve_neg()
    try:
        arr = tensor.numpy()
    except (TypeError, RuntimeError) as e:
        raise ValueError(
            f"Unsupported dtype: {tensor.dtype} ({label}); numpack stores bool, (u)int8-64, "
            f"float16/32/64 and complex64/128 — convert the tensor first, e.g. .float() ({e})"
        ) from None
    if arr.ndim == 0:
        warnings.warn(f"{label} is a 0-d tensor; it is stored as an array of shape (1,)",
                      UserWarning, stacklevel=3)
        arr = arr.reshape(1)
    return arr


def _check_torch_dtype(torch, dtype, name):
    if dtype.kind == "u" and dtype.itemsize > 1 and getattr(torch, dtype.name, None) is None:
        raise ValueError(
            f"Unsupported dtype: array {name!r} is {dtype}, which torch {torch.__version__} has "
            "no dtype for (torch >= 2.3 has uint16/uint32/uint64)")


class _FilePages:
    """Releases the pages of a file that ``torch.load(mmap=True)`` mapped once their rows
    are stored, so that importing a large file does not keep all of it in the resident
    set. Only ranges inside this process's mappings of that very file (device and inode,
    from ``/proc/self/maps``) are touched: ``MADV_DONTNEED`` there only drops pages that
    the file backs (nothing writes to them, so a later access reads the same bytes from
    the file again), while on anonymous memory it would discard data; anything else,
    e.g. a file torch loaded whole, is left alone."""

    _PAGE = os.sysconf("SC_PAGE_SIZE")
    _MADV_DONTNEED = 4

    def __init__(self, path):
        st = os.stat(path)
        dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
        self.ranges = []
        try:
            with open("/proc/self/maps") as f:
                for line in f:
                    parts = line.split(None, 5)
                    if len(parts) >= 5 and parts[3] == dev and parts[4] == str(st.st_ino):
                        lo, hi = (int(x, 16) for x in parts[0].split("-"))
                        self.ranges.append((lo, hi))
        except OSError:  # no /proc: nothing is released, nothing else changes
            self.ranges = []
        self._madvise = ctypes.CDLL(None, use_errno=True).madvise if self.ranges else None
        if self._madvise is not None:
            self._madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)

    def release(self, block):
        if self._madvise is None or not block.flags.c_contiguous or block.nbytes == 0:
            return
        lo = block.__array_interface__["data"][0]
        hi = lo + block.nbytes
        # Whole pages inside the block only: neighbouring rows may still be needed.
        lo = -(-lo // self._PAGE) * self._PAGE
        hi = hi // self._PAGE * self._PAGE
        if hi > lo and any(a <= lo and hi <= b for a, b in self.ranges):
            self._madvise(lo, hi - lo, self._MADV_DONTNEED)


def _write_arrays(tx, arrays, chunk_size, pages=None):
    """Writes each ``(name, ndarray)`` of ``arrays`` to ``tx`` in row blocks (releasing
    each block's file pages afterwards when ``pages`` is a ``_FilePages``)."""
    for name, arr in arrays:
        tx.begin(name)
        rows = block_rows(arr.shape, arr.dtype, chunk_size)
        for start in range(0, arr.shape[0], rows):
            block = arr[start:start + rows]
            tx.write(name, block)
            if pages is not None:
                pages.release(block)
        tx.write_empty(name, arr.shape, arr.dtype)


def _import(output_path, arrays, drop_if_exists, chunk_size, progress, pages=None):
    total = sum(arr.nbytes for _, arr in arrays)
    with ImportTx(output_path, drop_if_exists, progress, total) as tx:
        check_names(tx.npk, [name for name, _ in arrays])
        _write_arrays(tx, arrays, chunk_size, pages)
        tx.commit()


def _read_array(npk, name, chunk_size, prog):
    """Array ``name`` read block by block into one new ndarray."""
    shape, dtype, _ = array_layout(npk, name)
    out = np.empty(shape, dtype=dtype)
    start = 0
    for block in read_blocks(npk, name, block_rows(shape, dtype, chunk_size)):
        out[start:start + block.shape[0]] = block
        start += block.shape[0]
        prog.add(block.nbytes)
    if start != shape[0]:
        raise RuntimeError(f"array {name!r} changed while it was read ({start} of {shape[0]} rows)")
    return out


def from_tensor(tensor, output_path, array_name=None, drop_if_exists=False, return_npk_obj=False, *,
                chunk_size=DEFAULT_CHUNK_SIZE, progress=None):
    """Stores torch tensor ``tensor`` as array ``array_name`` (default ``'data'``) of
    the store at ``output_path``, replacing an array of that name (``drop_if_exists``:
    every other array is dropped too). A tensor on another device is copied to the CPU
    first. Returns ``None``, or the opened store with ``return_npk_obj=True``.

    Raises ``TypeError`` when ``tensor`` is not a tensor, ``ValueError`` for a dtype the
    store has no equivalent of."""
    torch = _check_torch()
    if not torch.is_tensor(tensor):
        raise TypeError(f"Expected torch.Tensor, got {type(tensor).__name__}")
    name = "data" if array_name is None else array_name
    arr = _tensor_array(torch, tensor, f"tensor for array {name!r}")
    _import(output_path, [(name, arr)], drop_if_exists, chunk_size, progress)
    return finish_import(output_path, return_npk_obj)


def to_tensor(input_path, array_name=None, device=None, dtype=None, *, progress=None):
    """Array ``array_name`` of the store at ``input_path`` (default: its only array) as
    a torch tensor on the CPU, over the buffer the array was read into; then converted
    to ``dtype`` (a ``torch.dtype``) and moved to ``device`` when given (each a copy)."""
    torch = _check_torch()
    with open_existing_store(input_path) as npk:
        name = pick_array(npk, array_name)
        shape, np_dtype, nbytes = array_layout(npk, name)
        _check_torch_dtype(torch, np_dtype, name)
        prog = Progress(progress, nbytes)
        arr = _read_array(npk, name, DEFAULT_CHUNK_SIZE, prog)
    tensor = torch.from_numpy(arr)
    if dtype is not None:
        tensor = tensor.to(dtype=dtype)
    if device is not None and torch.device(device).type != "cpu":
        tensor = tensor.to(device=device)
    prog.finish()
    return tensor


def _load_pt(torch, src, weights_only):
    # mmap keeps the tensors in the page cache instead of reading the file into memory;
    # torch can map only its zip format (the default since torch 1.6).
    mmap = zipfile.is_zipfile(src)
    return torch.load(str(src), map_location="cpu", weights_only=weights_only, mmap=mmap)


def from_pt(input_path, output_path, key=None, drop_if_exists=False, chunk_size=DEFAULT_CHUNK_SIZE,
            return_npk_obj=False, *, weights_only=True, progress=None):
    """Imports the tensors of PyTorch file ``input_path`` into the store at
    ``output_path``: every tensor value of a saved dict (named by its key; other values
    are skipped with a ``UserWarning``), only ``key`` when given, or a bare saved tensor
    (named by the file's stem). Arrays of the same names are replaced, all at once.
    Returns ``None``, or the opened store with ``return_npk_obj=True``.

    Raises ``FileNotFoundError``; ``KeyError`` when ``key`` is not in the dict;
    ``TypeError`` when the file holds neither a tensor nor a dict, or ``key``'s value is
    not a tensor; ``ValueError`` for a tensor dtype the store lacks or a dict without
    tensors. ``weights_only``: see the module docs."""
    torch = _check_torch()
    src = Path(input_path)
    if not src.is_file():
        raise FileNotFoundError(f"File not found: {src}")
    data = _load_pt(torch, src, weights_only)
    if isinstance(data, dict):
        if key is not None:
            if key not in data:
                raise KeyError(f"Key {key!r} not found in {src}. Available: {list(data.keys())}")
            if not torch.is_tensor(data[key]):
                raise TypeError(f"Value for key {key!r} in {src} is not a tensor "
                                f"({type(data[key]).__name__})")
            items = [(key, data[key])]
        else:
            items = [(k, v) for k, v in data.items() if torch.is_tensor(v)]
            skipped = [k for k, v in data.items() if not torch.is_tensor(v)]
            if not items:
                raise ValueError(f"{src} holds a dict without tensors (keys {list(data.keys())}); "
                                 "nothing to import")
            if skipped:
                warnings.warn(f"{src}: values that are not tensors are skipped: {skipped}",
                              UserWarning, stacklevel=2)
        for k, _ in items:
            if not isinstance(k, str):
                raise TypeError(f"{src}: dict key {k!r} is not a str, so it cannot name an array")
    elif torch.is_tensor(data):
        items = [(src.stem, data)]
    else:
        raise TypeError(f"Unsupported PyTorch data type in {src}: {type(data).__name__} "
                        "(expected a tensor or a dict of tensors)")
    # Every tensor is checked before the first is written.
    arrays = [(name, _tensor_array(torch, t, f"tensor {name!r} in {src}")) for name, t in items]
    _import(output_path, arrays, drop_if_exists, chunk_size, progress, _FilePages(src))
    return finish_import(output_path, return_npk_obj)


def to_pt(input_path, output_path, array_names=None, as_dict=True, chunk_size=DEFAULT_CHUNK_SIZE, *,
          progress=None):
    """Saves arrays of the store at ``input_path`` (``array_names``, default all) with
    ``torch.save`` to ``output_path``: as a dict of tensors by array name, or, with
    ``as_dict=False`` and exactly one array, as that bare tensor. The file is written to
    a temporary file renamed over the target. ``progress`` counts the bytes read; the
    final call comes after the file is saved."""
    torch = _check_torch()
    with open_existing_store(input_path) as npk:
        names = pick_arrays(npk, array_names)
        layouts = {name: array_layout(npk, name) for name in names}
        for name in names:
            _check_torch_dtype(torch, layouts[name][1], name)
        prog = Progress(progress, sum(nbytes for _, _, nbytes in layouts.values()))
        tensors = {name: torch.from_numpy(_read_array(npk, name, chunk_size, prog)) for name in names}
    obj = next(iter(tensors.values())) if not as_dict and len(tensors) == 1 else tensors
    with AtomicPath(output_path) as tmp:
        torch.save(obj, str(tmp.path))
        prog.finish()
        tmp.commit()
