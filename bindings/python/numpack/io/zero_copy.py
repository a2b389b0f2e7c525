"""Handing arrays to other libraries without copying their data (NumPack's
``numpack.io.zero_copy`` API).

What shares memory and what cannot:

* DLPack (``to_dlpack``, ``from_dlpack``, ``DLPackBuffer``): always shared, CPU only.
* NumPy -> Arrow: 1-D numeric arrays become a primitive ``pyarrow.Array`` over the same
  buffer; N-d arrays a ``FixedShapeTensorArray`` (one tensor per row) over the same
  buffer. Booleans are copied: Arrow packs them into bits, NumPy keeps a byte each.
  Arrow has no complex type: complex arrays are refused.
* Arrow -> NumPy: shared when the array has no nulls and a fixed-width non-boolean
  type; otherwise a ``UserWarning`` and a copy. ``writable=True`` always copies, since
  Arrow buffers are immutable.
* NumPy <-> PyTorch: shared on the CPU, including strided views (both libraries keep
  strides); arrays with negative strides or a non-native byte order are copied with a
  ``UserWarning``. A tensor on another device is copied to the CPU (``UserWarning``).

Wherever a copy is unavoidable the functions say so with a ``UserWarning`` instead of
copying silently, so a caller that relies on sharing can turn warnings into errors.
pyarrow and torch are imported on first use; a missing one raises
``numpack.io.utils.DependencyError`` with the pip command.
"""

import warnings

import numpy as np

from .utils import _check_dependency

__all__ = ["DLPackBuffer", "to_dlpack", "from_dlpack", "numpy_to_arrow_zero_copy",
           "arrow_to_numpy_zero_copy", "table_to_numpy_zero_copy", "numpy_to_torch_zero_copy",
           "torch_to_numpy_zero_copy", "ZeroCopyArray", "wrap_for_zero_copy"]


def _pyarrow():
    return _check_dependency("pyarrow", extra="parquet")


def _torch():
    return _check_dependency("torch")


def _require_ndarray(array):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"Expected numpy.ndarray, got {type(array).__name__}")


def _c_contiguous(array, what):
    """``array`` itself when C-contiguous, else a C-contiguous copy (with a warning:
    the caller asked for sharing and gets a copy)."""
    if array.flags.c_contiguous:
        return array
    warnings.warn(f"{what}: the array is not C-contiguous, so a contiguous copy is made",
                  UserWarning, stacklevel=3)
    return np.ascontiguousarray(array)


class DLPackBuffer:
    """A NumPy array behind the DLPack protocol (``__dlpack__`` /
    ``__dlpack_device__``), for ``torch.from_dlpack``, ``jax.dlpack.from_dlpack``,
    ``np.from_dlpack`` and the like: the consumer shares the array's memory.

    A non-C-contiguous array is first copied to C order (``UserWarning``), so every
    consumer gets a plain dense tensor. ``stream`` and ``max_version`` are the defaults
    used when the consumer does not pass its own (``stream`` only matters for GPU
    memory; NumPy arrays live on the CPU)."""

    kDLCPU = 1
    kDLCUDA = 2
    kDLCUDAHost = 3
    kDLOpenCL = 4
    kDLVulkan = 7
    kDLMetal = 8
    kDLVPI = 9
    kDLROCM = 10
    kDLROCMHost = 11
    kDLExtDev = 12
    kDLCUDAManaged = 13
    kDLOneAPI = 14
    kDLWebGPU = 15
    kDLHexagon = 16

    kDLInt = 0
    kDLUInt = 1
    kDLFloat = 2
    kDLBfloat = 4
    kDLComplex = 5
    kDLBool = 6

    def __init__(self, array, stream=None, max_version=None):
        _require_ndarray(array)
        self._array = _c_contiguous(array, "DLPackBuffer")
        self._stream = stream
        self._max_version = tuple(max_version) if max_version is not None else None

    @property
    def array(self):
        """The NumPy array whose memory is exported."""
        return self._array

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        kwargs = {"stream": stream if stream is not None else self._stream}
        max_version = max_version if max_version is not None else self._max_version
        if max_version is not None:
            kwargs["max_version"] = max_version
        if dl_device is not None:
            kwargs["dl_device"] = dl_device
        if copy is not None:
            kwargs["copy"] = copy
        try:
            return self._array.__dlpack__(**kwargs)
        except TypeError:
            # NumPy before 2.1 knows only ``stream``.
            if set(kwargs) == {"stream"}:
                raise
            return self._array.__dlpack__(stream=kwargs["stream"])

    def __dlpack_device__(self):
        return (self.kDLCPU, 0)

    @classmethod
    def from_dlpack(cls, capsule):
        """The NumPy array over the memory of ``capsule`` (an object with
        ``__dlpack__``, or a raw DLPack capsule): see ``from_dlpack``."""
        return from_dlpack(capsule)


class _Capsule:
    """A raw ``"dltensor"`` PyCapsule behind the object protocol ``np.from_dlpack``
    takes (it accepts only objects with ``__dlpack__``). Such capsules can only come
    from CPU producers here: NumPy checks the device in the capsule itself."""

    def __init__(self, capsule):
        self._capsule = capsule

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        capsule, self._capsule = self._capsule, None
        if capsule is None:
            raise BufferError("a DLPack capsule can be consumed only once")
        return capsule

    def __dlpack_device__(self):
        return (DLPackBuffer.kDLCPU, 0)


def to_dlpack(array):
    """``DLPackBuffer(array)``: a NumPy array ready to be shared through DLPack."""
    return DLPackBuffer(array)


def from_dlpack(obj):
    """The NumPy array sharing the memory of ``obj`` (a torch tensor, JAX/CuPy array,
    ``DLPackBuffer``, anything with ``__dlpack__`` on the CPU, or a raw DLPack capsule).
    Memory on another device raises (``BufferError``/``RuntimeError`` from NumPy)."""
    if type(obj).__name__ == "PyCapsule":
        obj = _Capsule(obj)
    elif not hasattr(obj, "__dlpack__"):
        raise TypeError(f"{type(obj).__name__} does not support the DLPack protocol (__dlpack__)")
    return np.from_dlpack(obj)


def _arrow_type_of(pa, dtype, what):
    if dtype.kind == "c":
        raise TypeError(f"{what}: dtype {dtype} has no Arrow type (Arrow has no complex numbers)")
    try:
        return pa.from_numpy_dtype(dtype)
    except (pa.ArrowNotImplementedError, NotImplementedError, TypeError) as e:
        raise TypeError(f"{what}: dtype {dtype} has no Arrow type ({e})") from None


def numpy_to_arrow_zero_copy(array, name="data"):
    """A ``pyarrow.Array`` over the memory of NumPy ``array``.

    1-D numeric arrays give a primitive array sharing the buffer, N-d arrays a
    ``pyarrow.FixedShapeTensorArray`` (one tensor of ``array.shape[1:]`` per row)
    sharing it too. Booleans are copied (Arrow stores bits) and non-contiguous or
    big-endian inputs are copied with a ``UserWarning``; complex dtypes raise
    ``TypeError``. The Arrow array keeps ``array`` alive. ``name`` is accepted for
    NumPack compatibility; a ``pyarrow.Array`` carries no name."""
    pa = _pyarrow()
    _require_ndarray(array)
    what = "numpy_to_arrow_zero_copy"
    if array.ndim == 0:
        raise ValueError(f"{what}: a 0-d array has no rows; reshape it to 1-d first")
    dtype = array.dtype
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biufc":
        raise TypeError(f"{what}: dtype {dtype} is not a numeric dtype")
    if dtype.byteorder == ">":
        warnings.warn(f"{what}: big-endian data is converted to little-endian (a copy)",
                      UserWarning, stacklevel=2)
        array = array.astype(dtype.newbyteorder("<"))
        dtype = array.dtype
    arrow_type = _arrow_type_of(pa, dtype, what)
    if dtype == np.bool_:
        # Arrow's booleans are bit-packed: no layout in common with NumPy's bytes.
        warnings.warn(f"{what}: boolean arrays are copied (Arrow packs booleans into bits)",
                      UserWarning, stacklevel=2)
        flat = pa.array(array.reshape(-1))
    else:
        array = _c_contiguous(array, what)
        flat = pa.Array.from_buffers(arrow_type, array.size, [None, pa.py_buffer(array)])
    if array.ndim == 1:
        return flat
    tensor_type = pa.fixed_shape_tensor(arrow_type, list(array.shape[1:]))
    row_size = int(np.prod(array.shape[1:], dtype=np.int64))
    storage = pa.FixedSizeListArray.from_arrays(flat, row_size)
    return pa.ExtensionArray.from_storage(tensor_type, storage)


def _single_array(pa, arrow_array, what):
    """A ``pyarrow.Array`` for ``arrow_array``; a ChunkedArray of more than one chunk
    has to be concatenated (a copy, with a warning)."""
    if isinstance(arrow_array, pa.ChunkedArray):
        if arrow_array.num_chunks == 1:
            return arrow_array.chunk(0)
        if arrow_array.num_chunks > 1:
            warnings.warn(f"{what}: {arrow_array.num_chunks} chunks are concatenated (a copy)",
                          UserWarning, stacklevel=3)
        return arrow_array.combine_chunks()
    if not isinstance(arrow_array, pa.Array):
        raise TypeError(f"{what}: expected a pyarrow.Array or ChunkedArray, got "
                        f"{type(arrow_array).__name__}")
    return arrow_array


def arrow_to_numpy_zero_copy(arrow_array, writable=False):
    """A NumPy array over the memory of ``arrow_array`` (``pyarrow.Array``,
    single-chunk ``ChunkedArray``, or a ``FixedShapeTensorArray`` which comes back with
    its N-d shape). The result is read-only and keeps the Arrow buffer alive.

    Arrays with nulls, booleans, multi-chunk arrays and other types that cannot be
    viewed give a ``UserWarning`` and a copy. ``writable=True`` always returns a
    writable copy."""
    pa = _pyarrow()
    what = "arrow_to_numpy_zero_copy"
    arr = _single_array(pa, arrow_array, what)
    if isinstance(arr.type, pa.FixedShapeTensorType):
        if arr.null_count:
            raise ValueError(f"{what}: a tensor array with nulls has no NumPy equivalent")
        out = arr.to_numpy_ndarray()
        return out.copy() if writable else out
    if writable:
        return arr.to_numpy(zero_copy_only=False).copy()
    try:
        return arr.to_numpy(zero_copy_only=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        warnings.warn(f"{what}: no zero-copy view is possible ({e}); making a copy", UserWarning,
                      stacklevel=2)
        return arr.to_numpy(zero_copy_only=False)


def table_to_numpy_zero_copy(table, column=None):
    """The columns of ``pyarrow.Table`` ``table`` as NumPy arrays sharing its memory
    (each as ``arrow_to_numpy_zero_copy`` converts it): the array of ``column``, or a
    dict of every column by name when ``column`` is None. An unknown column raises
    ``KeyError``."""
    pa = _pyarrow()
    if not isinstance(table, pa.Table):
        raise TypeError(f"table_to_numpy_zero_copy: expected a pyarrow.Table, got "
                        f"{type(table).__name__}")
    if column is not None:
        if column not in table.column_names:
            raise KeyError(f"column {column!r} not found; the table has {table.column_names}")
        return arrow_to_numpy_zero_copy(table.column(column))
    return {name: arrow_to_numpy_zero_copy(table.column(name)) for name in table.column_names}


def _torch_dtype_supported(torch, dtype):
    """Whether this torch has a dtype for NumPy ``dtype`` (unsigned 16/32/64-bit
    integers arrived in torch 2.3)."""
    names = {"uint16": "uint16", "uint32": "uint32", "uint64": "uint64"}
    name = names.get(dtype.name)
    return name is None or getattr(torch, name, None) is not None


def numpy_to_torch_zero_copy(array, device=None):
    """A ``torch.Tensor`` sharing the memory of NumPy ``array`` (``torch.from_numpy``;
    strided views stay views). Negative strides or a non-native byte order force a copy
    (``UserWarning``); a dtype this torch lacks raises ``TypeError``. ``device`` other
    than the CPU copies the data there."""
    torch = _torch()
    _require_ndarray(array)
    what = "numpy_to_torch_zero_copy"
    if not _torch_dtype_supported(torch, array.dtype):
        raise TypeError(f"{what}: dtype {array.dtype} has no torch dtype in torch {torch.__version__}")
    if not array.dtype.isnative:
        warnings.warn(f"{what}: non-native byte order is converted (a copy)", UserWarning, stacklevel=2)
        array = array.astype(array.dtype.newbyteorder("="))
    if any(s < 0 for s in array.strides):
        warnings.warn(f"{what}: torch cannot view negative strides; a contiguous copy is made",
                      UserWarning, stacklevel=2)
        array = np.ascontiguousarray(array)
    try:
        tensor = torch.from_numpy(array)
    except TypeError as e:
        raise TypeError(f"{what}: dtype {array.dtype} cannot become a torch tensor ({e})") from None
    if device is not None and torch.device(device).type != "cpu":
        tensor = tensor.to(device)
    return tensor


def torch_to_numpy_zero_copy(tensor):
    """A NumPy array sharing the memory of ``tensor`` (detached from autograd; strided
    tensors stay views). A tensor on another device is copied to the CPU and a
    conjugated or negated view is resolved (both with a ``UserWarning``); a dtype NumPy
    lacks (e.g. ``bfloat16``) raises ``TypeError``."""
    torch = _torch()
    what = "torch_to_numpy_zero_copy"
    if not torch.is_tensor(tensor):
        raise TypeError(f"{what}: expected a torch.Tensor, got {type(tensor).__name__}")
    if tensor.layout != torch.strided:
        raise TypeError(f"{what}: a {tensor.layout} tensor has no dense memory to share; "
                        "call .to_dense() first")
    if tensor.device.type != "cpu":
        warnings.warn(f"{what}: the tensor is on {tensor.device}; it is copied to the CPU",
                      UserWarning, stacklevel=2)
        tensor = tensor.cpu()
    tensor = tensor.detach()
    if tensor.is_conj() or tensor.is_neg():
        warnings.warn(f"{what}: a lazily conjugated/negated tensor is materialised (a copy)",
                      UserWarning, stacklevel=2)
        tensor = tensor.resolve_conj().resolve_neg()
    try:
        return tensor.numpy()
    except TypeError as e:
        raise TypeError(f"{what}: torch dtype {tensor.dtype} has no NumPy dtype ({e})") from None


class ZeroCopyArray:
    """A NumPy array with conversions to torch, Arrow and DLPack that share its memory.
    A non-C-contiguous array is copied to C order first (``UserWarning``)."""

    def __init__(self, array):
        _require_ndarray(array)
        self._array = _c_contiguous(array, "ZeroCopyArray")

    @property
    def array(self):
        return self._array

    @property
    def shape(self):
        return self._array.shape

    @property
    def dtype(self):
        return self._array.dtype

    @property
    def nbytes(self):
        return self._array.nbytes

    def __repr__(self):
        return f"ZeroCopyArray(shape={self.shape}, dtype={self.dtype})"

    def __array__(self, dtype=None, copy=None):
        if dtype is None or np.dtype(dtype) == self._array.dtype:
            if copy:
                return self._array.copy()
            return self._array
        if copy is False:
            raise ValueError(f"converting {self._array.dtype} to {np.dtype(dtype)} needs a copy")
        return self._array.astype(dtype)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        return DLPackBuffer(self._array).__dlpack__(stream=stream, max_version=max_version,
                                                    dl_device=dl_device, copy=copy)

    def __dlpack_device__(self):
        return (DLPackBuffer.kDLCPU, 0)

    def to_torch(self, device=None):
        """``numpy_to_torch_zero_copy(self.array, device)``."""
        return numpy_to_torch_zero_copy(self._array, device)

    def to_arrow(self, name="data"):
        """The array raveled to 1-D as a ``pyarrow.Array`` sharing its memory."""
        return numpy_to_arrow_zero_copy(self._array.reshape(-1), name)

    def to_dlpack(self):
        return DLPackBuffer(self._array)

    @classmethod
    def from_torch(cls, tensor):
        return cls(torch_to_numpy_zero_copy(tensor))

    @classmethod
    def from_arrow(cls, arrow_array):
        return cls(arrow_to_numpy_zero_copy(arrow_array))

    @classmethod
    def from_dlpack(cls, capsule):
        return cls(from_dlpack(capsule))


def wrap_for_zero_copy(array):
    """``ZeroCopyArray(array)``."""
    return ZeroCopyArray(array)
