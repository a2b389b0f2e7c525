"""NumPack 0.7.0 behaviour this package follows: LazyArray's buffer / DLPack / array
interface, numpack.writable_array, __version__, whole-array drop, flat multi-query
results, ValueError-compatible errors; and NUL bytes refused in every C string."""

import gc
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import numpack
from numpack import NumPack
from numpack._native import HEADER_TEXT, ffi, lib
from numpack.vector_engine import StreamingVectorEngine, VectorEngine
from numpack.writable_array import WritableArray, WritableBatchMode


def _lazy(npk, deleted=()):
    full = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    npk.save({"a": full})
    if deleted:
        npk.drop("a", list(deleted))
    return npk.load("a", lazy=True), np.delete(full, list(deleted), axis=0)


@pytest.mark.parametrize("deleted", [(), (0, 1), (9,), (0, 8, 9)])
def test_exports_are_zero_copy_when_live_rows_are_one_run(npk, deleted):
    lazy, ref = _lazy(npk, deleted)
    a = np.asarray(lazy)
    d = np.from_dlpack(lazy)
    b = np.asarray(lazy.__buffer__(0))
    np.testing.assert_array_equal(a, ref)
    np.testing.assert_array_equal(d, ref)
    np.testing.assert_array_equal(b, ref)
    # all three are over the one mapping, not copies
    assert np.shares_memory(a, d) and np.shares_memory(a, b)
    assert not a.flags.writeable and not d.flags.writeable
    assert lazy.__array_interface__["shape"] == ref.shape
    assert lazy.__array_interface__["typestr"] == "<f4"
    assert np.asarray(lazy, copy=False).shape == ref.shape
    assert lazy.__dlpack_device__() == (1, 0)


def test_exports_copy_scattered_live_rows_and_never_show_deleted_ones(npk):
    lazy, ref = _lazy(npk, (0, 4, 7))
    a = np.asarray(lazy)
    d = np.from_dlpack(lazy)
    np.testing.assert_array_equal(a, ref)
    np.testing.assert_array_equal(d, ref)
    np.testing.assert_array_equal(np.asarray(lazy.__buffer__(0)), ref)
    assert a.shape == lazy.shape == (7, 3)
    assert not np.shares_memory(a, np.asarray(lazy))  # each export is its own copy
    assert not a.flags.writeable
    with pytest.raises(BufferError, match="not contiguous"):
        lazy.__dlpack__(copy=False)
    assert np.sum(lazy) == ref.sum()


def test_dlpack_for_consumers_before_dlpack_1(npk):
    lazy, ref = _lazy(npk)
    # A pre-1.0 consumer cannot be told the tensor is read-only: it gets a private copy.
    capsule = lazy.__dlpack__()
    assert type(capsule).__name__ == "PyCapsule"
    copied = np.from_dlpack(lazy, copy=True)
    np.testing.assert_array_equal(copied, ref)
    assert not np.shares_memory(copied, np.asarray(lazy))


def test_exports_of_empty_and_after_whole_drop(npk):
    npk.save({"e": np.zeros((0, 4), np.int16)})
    lazy = npk.load("e", lazy=True)
    assert np.asarray(lazy).shape == (0, 4) and np.from_dlpack(lazy).shape == (0, 4)
    lazy, _ = _lazy(npk, range(10))
    assert np.asarray(lazy).shape == (0, 3)


@pytest.mark.parametrize("deleted", [(), (0, 1), (9,), (0, 4, 7), range(10)])
def test_memoryview_of_lazy(npk, deleted):
    # 3.12+ calls __buffer__ itself; 3.9-3.11 through the numpack._bufferbase C base.
    lazy, ref = _lazy(npk, deleted)
    m = memoryview(lazy)
    assert m.readonly and m.c_contiguous
    a = np.asarray(lazy)
    assert (m.shape, m.strides, m.format, m.itemsize) == (a.shape, a.strides, "f", 4)
    assert m.tolist() == ref.tolist() and bytes(m) == ref.tobytes()
    assert m[1:3].tolist() == ref[1:3].tolist()
    with pytest.raises(TypeError):
        m[0, 0] = 1.0
    # over the mapping exactly when the other exports are: never with deleted rows in it
    contiguous = lazy._run() is not None
    assert np.shares_memory(np.asarray(m), np.asarray(lazy)) == (contiguous and len(ref) > 0)
    with pytest.raises((TypeError, BufferError)):
        struct.pack_into("b", lazy, 0, 1)  # asks for a writable buffer
    m.release()
    with pytest.raises(ValueError):
        m.tolist()


@pytest.mark.parametrize("dtype", ["bool", "uint16", "int64", "float16", "float64", "complex64"])
def test_memoryview_formats_match_numpy(npk, dtype):
    full = np.arange(12).reshape(4, 3).astype(dtype)
    npk.save({"a": full})
    m = memoryview(npk.load("a", lazy=True))
    assert m.format == memoryview(full).format and m.shape == full.shape
    np.testing.assert_array_equal(np.asarray(m), full)


def test_memoryview_outlives_lazy_and_store(path):
    full = np.arange(50, dtype=np.int32).reshape(10, 5)
    with NumPack(path) as n:
        n.save({"a": full})
        n.drop("a", [3])
        scattered = memoryview(n.load("a", lazy=True))
        n.save({"b": full})
        lazy = n.load("b", lazy=True)
        views = [memoryview(lazy) for _ in range(50)]
        sliced = views[0][2:4]
    del lazy, views
    gc.collect()
    with NumPack(path) as n:  # replaced on disk: each view keeps its own mapping
        n.drop("b")
        n.save({"b": np.zeros(3, np.int32)})
    gc.collect()
    assert sliced.tolist() == full[2:4].tolist()
    assert scattered.tolist() == np.delete(full, [3], axis=0).tolist()


def test_memoryview_release_and_refcounts(npk):
    lazy, ref = _lazy(npk, (0,))
    memoryview(lazy).release()
    before = sys.getrefcount(lazy)
    for _ in range(200):
        with memoryview(lazy) as m:
            assert bytes(m[::2]) == ref[::2].tobytes()
        held = [memoryview(lazy) for _ in range(3)]
        np.asarray(held[1])
        del held
    gc.collect()
    assert sys.getrefcount(lazy) == before


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ needs no extension for the buffer protocol")
def test_memoryview_without_the_extension_is_a_type_error(tmp_path):
    # A build without numpack._bufferbase: LazyArray is a plain class, everything but
    # memoryview(lazy) works, and __buffer__ still gives the same view when called.
    code = """
import sys
sys.modules["numpack._bufferbase"] = None  # what a missing extension looks like to import
import numpy as np
from numpack import NumPack
with NumPack(sys.argv[1], warn_no_context=False) as n:
    n.save({"a": np.arange(6.0)})
    lazy = n.load("a", lazy=True)
    assert type(lazy).__mro__[1] is object
    try:
        memoryview(lazy)
    except TypeError:
        pass
    else:
        raise AssertionError("memoryview(lazy) worked without the extension")
    assert lazy.__buffer__(0).tolist() == list(range(6)) and np.asarray(lazy).sum() == 15
"""
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.npk")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_writable_array_edits_the_file(tmp_path):
    f = tmp_path / "data.bin"
    np.arange(12, dtype=np.float64).tofile(f)
    wa = WritableArray(str(f), (3, 4), "float64")
    assert (wa.file_path, wa.shape, wa.dtype, wa.mode) == (str(f), (3, 4), np.dtype("float64"), "r+")
    with wa as arr:
        assert type(arr) is np.ndarray and not arr.flags.owndata
        arr[1] = -1
    np.testing.assert_array_equal(np.fromfile(f).reshape(3, 4)[1], [-1] * 4)
    # still readable after the block (NumPack crashed here), but no longer writable
    assert arr[1, 0] == -1
    with pytest.raises(ValueError):
        arr[0, 0] = 5
    with WritableArray(f, [2, 2], np.float64, mode="r") as ro:
        assert not ro.flags.writeable and ro[0, 1] == 1.0
    with WritableArray(f, (0, 4), "float64") as empty:
        assert empty.shape == (0, 4)


def test_writable_array_refuses_bad_arguments(tmp_path):
    f = tmp_path / "data.bin"
    np.arange(4, dtype=np.int32).tofile(f)
    with pytest.raises(ValueError, match="mode"):
        WritableArray(f, (4,), "int32", mode="w")
    too_big = WritableArray(f, (5,), "int32")
    with pytest.raises(ValueError, match="16 bytes"):
        too_big.__enter__()
    with pytest.raises(TypeError):  # NumPy's (and so NumPack's) error for a short buffer
        too_big.__enter__()
    with pytest.raises(FileNotFoundError):
        WritableArray(tmp_path / "none", (1,), "int32").__enter__()
    wa = WritableArray(f, (4,), "int32")
    with wa:
        with pytest.raises(RuntimeError, match="already open"):
            wa.__enter__()


def test_writable_batch_mode_is_the_module_class(npk):
    npk.save({"a": np.zeros((4, 2))})
    with npk.writable_batch_mode() as wb:
        assert isinstance(wb, WritableBatchMode)
        arr = wb.load("a")
        arr[2] = 7
        assert wb.array_cache["a"] is arr and set(wb.writable_arrays) == {"a"}
        wb.save({"a": arr})
    assert wb.array_cache == {} and wb.writable_arrays == {}
    assert npk.load("a")[2].tolist() == [7, 7]


def test_filename_attribute_of_numpacks_examples(npk, path):
    # NumPack's docs pass str(npk._filename) to the streaming engine
    npk.save({"v": np.eye(3, dtype=np.float32)})
    assert Path(npk._filename) == Path(path)
    idx, _ = StreamingVectorEngine().streaming_top_k_from_file(
        np.array([0, 1, 0], np.float32), str(npk._filename), "v", "dot", 1)
    assert idx.tolist() == [1]


def test_version_is_the_librarys():
    assert numpack.__version__ == ffi.string(lib.npk_version()).decode()
    assert numpack.__version__ == re.search(r'#define NPK_VERSION_STRING "([^"]+)"', HEADER_TEXT).group(1)
    assert "__version__" in numpack.__all__


def test_whole_drop_leaves_zero_rows(path):
    with NumPack(path) as npk:
        npk.save({"a": np.arange(20, dtype=np.int32).reshape(10, 2), "b": np.ones(3)})
        npk.drop("a", [1, 2, 3, 4])
        npk.drop("a")
        assert npk.get_member_list() == ["a", "b"] and npk.has_array("a")
        assert npk.get_shape("a") == (0, 2)
        assert npk.load("a").shape == (0, 2) and npk.load("a").dtype == np.int32
        assert npk.load("a", lazy=True).shape == (0, 2)
        assert npk["a"].shape == (0, 2)
        assert npk.getitem("a", slice(None)).shape == (0, 2)
        with pytest.raises(IndexError):
            npk.getitem("a", [0])
        assert npk.get_metadata()["arrays"]["a"]["shape"] == [0, 2]
        assert [x.shape for x in npk.stream_load("a", 4)] == []
        # NumPack 0.7 brought the dropped rows back here; only the new rows exist
        npk.append({"a": np.full((2, 2), 9, np.int32)})
        np.testing.assert_array_equal(npk.load("a"), np.full((2, 2), 9))
        with pytest.raises(ValueError):  # the dtype is kept: another one is refused
            npk.append({"a": np.ones((1, 2))})
        npk.drop(["a", "b"])
        assert npk.get_shape("b") == (0,)
    with NumPack(path) as npk:  # persisted
        assert npk.get_member_list() == ["a", "b"] and npk.get_shape("a") == (0, 2)
        npk.save({"a": np.arange(3.0)})  # a save replaces the empty array
        assert npk.load("a").tolist() == [0, 1, 2]


def test_whole_drop_keeps_compression_and_frees_the_rows(npk):
    npk.save({"c": np.arange(10000, dtype=np.int64).reshape(-1, 10)}, compression="zstd")
    npk.drop("c")
    assert npk.get_compression("c") is not None
    assert npk.get_metadata()["arrays"]["c"]["physical_rows"] == 0
    npk.append({"c": np.ones((3, 10), np.int64)})
    assert npk.load("c").tolist() == [[1] * 10] * 3


def test_whole_drop_in_batch_mode_evicts_the_cached_copy(npk):
    npk.save({"a": np.arange(6.0).reshape(3, 2)})
    with npk.batch_mode():
        x = npk.load("a")
        x[0] = 100
        npk.drop("a")
        assert npk.load("a").shape == (0, 2)
    assert npk.load("a").shape == (0, 2)


def test_remove_deletes_arrays(npk):
    npk.save({"a": np.ones(2), "b": np.ones(2)})
    npk.remove(["a", "b"])
    assert npk.get_member_list() == []
    with pytest.raises(KeyError):
        npk.remove("a")


def test_multi_query_results_are_flat_and_never_padded(npk):
    engine = VectorEngine()
    cands = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    queries = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    idx, scores = engine.multi_query_top_k(queries, cands, "cosine", 2)
    assert idx.shape == scores.shape == (6,) and idx.dtype == np.uint64 and scores.dtype == np.float64
    for qi in range(3):
        one, s = engine.top_k_search(queries[qi], cands, "cosine", 2)
        np.testing.assert_array_equal(idx[2 * qi:2 * qi + 2], one)
        np.testing.assert_array_equal(scores[2 * qi:2 * qi + 2], s)
    idx, scores = engine.multi_query_top_k(queries, cands, "l2", 10)  # k > N
    assert idx.shape == (18,) and not np.isnan(scores).any()
    for qi in range(3):
        assert sorted(idx[6 * qi:6 * qi + 6].tolist()) == list(range(6))
    npk.save({"v": cands})
    sidx, sscores = StreamingVectorEngine().streaming_multi_query_top_k(queries, npk, "v", "l2", 10)
    np.testing.assert_array_equal(sidx, idx)
    np.testing.assert_allclose(sscores, scores, rtol=1e-6)


def test_errors_numpack_raises_as_value_error_stay_value_errors(npk, tmp_path):
    npk.save({"a": np.zeros((4, 2), np.float32), "i": np.arange(4)})
    with pytest.raises(ValueError):
        npk.append({"a": np.zeros((1, 2), np.float64)})  # other dtype
    with pytest.raises(TypeError):
        npk.append({"a": np.zeros((1, 2), np.float64)})
    with pytest.raises(ValueError):
        npk.replace({"a": np.zeros((1, 2), np.float32)}, [7])  # past the end
    with pytest.raises(ValueError):
        npk.append({"zz": np.zeros((1, 2))})
    lazy = npk.load("a", lazy=True)
    with pytest.raises(ValueError):
        lazy[np.ones(3, dtype=bool)]  # mask of the wrong length
    with pytest.raises(TypeError, match="Invalid index type"):
        lazy["x"]
    with pytest.raises(TypeError, match="Bitwise operations are only supported for integer arrays"):
        lazy & 1
    with pytest.raises(TypeError, match="Bitwise operations are only supported for integer arrays"):
        1 | lazy
    ints = npk.load("i", lazy=True)
    assert (ints & 1).tolist() == [0, 1, 0, 1] and (ints << 1).tolist() == [0, 2, 4, 6]
    engine, se = VectorEngine(), StreamingVectorEngine()
    with pytest.raises(ValueError, match="Unknown metric"):
        engine.top_k_search(np.zeros(2), np.zeros((3, 2)), "nope", 1)
    with pytest.raises(TypeError):  # NumPack: TypeError("Candidates must be a 2D array")
        engine.top_k_search(np.zeros(2), np.zeros(2), "dot", 1)
    with pytest.raises(ValueError):
        engine.top_k_search(np.zeros(2), np.zeros(2), "dot", 1)
    with pytest.raises(ValueError):  # array not in the store
        se.streaming_top_k_from_file(np.zeros(2, np.float32), npk, "missing", "dot", 1)
    with pytest.raises(KeyError):
        se.streaming_batch_compute(np.zeros(2, np.float32), npk, "missing", "dot")
    with pytest.raises(ValueError):  # no store there
        se.streaming_top_k_from_file(np.zeros(2, np.float32), tmp_path / "none", "a", "dot", 1)


NUL = "x\x00y"


def test_nul_in_names_is_refused_everywhere(npk):
    npk.save({"x": np.arange(3)})
    calls = [
        lambda: npk.save({NUL: np.zeros(2)}),
        lambda: npk.save({NUL: np.zeros(2)}, compression="zstd"),
        lambda: npk.load(NUL),
        lambda: npk.load(NUL, lazy=True),
        lambda: npk[NUL],
        lambda: npk.getitem(NUL, [0]),
        lambda: npk.getitem(NUL, slice(0, 1)),
        lambda: npk.append({NUL: np.zeros(2)}),
        lambda: npk.replace({NUL: np.zeros(1)}, [0]),
        lambda: npk.drop(NUL),
        lambda: npk.drop(NUL, [0]),
        lambda: npk.remove(NUL),
        lambda: npk.clone("x", NUL),
        lambda: npk.clone(NUL, "y"),
        lambda: npk.update(NUL),
        lambda: npk.get_shape(NUL),
        lambda: npk.stream_load(NUL, 1),
        lambda: npk.has_array(NUL),
        lambda: StreamingVectorEngine().streaming_top_k_from_file(np.zeros(1), npk, NUL, "l2", 1),
        lambda: VectorEngine().top_k_search(np.zeros(1), np.zeros((2, 1)), "l2\x00sq", 1),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"x\\x00y|l2\\x00sq"):
            call()
    # nothing was written under the truncated name
    assert npk.load("x").tolist() == [0, 1, 2] and npk.get_member_list() == ["x"]
    with pytest.raises(ValueError, match=r"x\\x00y"):
        with npk.batch_mode():
            npk.save({NUL: np.zeros(2)})
    assert npk.get_member_list() == ["x"]


def test_nul_in_rename_through_the_library(npk):
    npk.save({"x": np.arange(3)})
    with pytest.raises(ValueError, match=r"x\\x00y"):
        lib.npk_store_rename(npk._h(), b"x", NUL.encode())
    assert npk.get_member_list() == ["x"]


def test_nul_in_paths_is_refused(path, tmp_path):
    bad = str(path) + "\x00more"
    with pytest.raises(ValueError, match=r"\\x00more"):
        NumPack(bad).open()
    with pytest.raises(ValueError, match=r"\\x00more"):
        StreamingVectorEngine().streaming_top_k_from_file(np.zeros(1), bad, "a", "l2", 1)
    with pytest.raises(ValueError, match=r"\\x00more"):
        numpack.check(bad)
    assert not Path(str(path)).exists()
    with NumPack(path) as npk:
        npk.save({"a": np.arange(4)})
    with pytest.raises(ValueError):
        numpack.pack(bad)
    with pytest.raises(ValueError):
        numpack.pack(path, str(tmp_path / "out.npkg") + "\x00z")
    numpack.pack(path, tmp_path / "ok.npkg")
    with pytest.raises(ValueError):
        numpack.unpack(tmp_path / "ok.npkg", str(tmp_path / "t") + "\x00z")
    with pytest.raises(ValueError):
        numpack.unpack(str(tmp_path / "ok.npkg") + "\x00z", tmp_path / "t")
    with pytest.raises(ValueError):
        numpack.get_package_info(str(tmp_path / "ok.npkg") + "\x00z")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ok.npkg", Path(path).name])
