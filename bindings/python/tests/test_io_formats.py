"""numpack.io converters against the real libraries (h5py, zarr, pyarrow, pandas):
round trips of every dtype each format holds, files written by one side read by the
other, multi-block streaming, and the refusals of dtypes and shapes a format lacks."""

import json

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
import zarr
from conftest import DTYPES, sample

import numpack
import numpack.io as nio

REAL = [d for d in DTYPES if not d.startswith("complex")]
COMPLEX = ["complex64", "complex128"]
# Blocks of a few hundred bytes: every round trip below crosses many blocks.
SMALL = 512


def store_with(path, **arrays):
    with numpack.NumPack(path, drop_if_exists=True, warn_no_context=False) as n:
        n.save(arrays)
    return path


def load(path, name):
    with numpack.NumPack(path, warn_no_context=False) as n:
        return n.load(name)


def members(path):
    with numpack.NumPack(path, warn_no_context=False) as n:
        return sorted(n.get_member_list())


def same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
    np.testing.assert_array_equal(a, b)


SHAPES = [(37,), (37, 3), (23, 2, 3), (0, 4)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_hdf5_round_trip_every_dtype_and_shape(tmp_path, dtype):
    arrays = {f"a{i}": sample(dtype, s, seed=i) for i, s in enumerate(SHAPES)}
    src = store_with(tmp_path / "s", **arrays)
    nio.to_hdf5(src, tmp_path / "o.h5", chunk_size=SMALL)
    with h5py.File(tmp_path / "o.h5", "r") as f:  # the file as h5py sees it
        for k, a in arrays.items():
            same(f[k][...], a)
    nio.from_hdf5(tmp_path / "o.h5", tmp_path / "back", chunk_size=SMALL)
    assert members(tmp_path / "back") == sorted(arrays)
    for k, a in arrays.items():
        same(load(tmp_path / "back", k), a)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_round_trip_every_dtype_and_shape(tmp_path, dtype, zarr_format):
    arrays = {f"a{i}": sample(dtype, s, seed=i) for i, s in enumerate(SHAPES)}
    src = store_with(tmp_path / "s", **arrays)
    nio.to_zarr(src, tmp_path / "o.zarr", chunk_size=SMALL, zarr_format=zarr_format)
    g = zarr.open_group(str(tmp_path / "o.zarr"), mode="r")
    assert g.metadata.zarr_format == zarr_format
    for k, a in arrays.items():
        same(g[k][...], a)
    nio.from_zarr(tmp_path / "o.zarr", tmp_path / "back", chunk_size=SMALL)
    for k, a in arrays.items():
        same(load(tmp_path / "back", k), a)


def test_zarr_reads_stores_written_by_zarr_v2_and_v3_with_groups(tmp_path):
    a = sample("float32", (100, 7))
    b = sample("int16", (50,))
    for fmt in (2, 3):
        root = zarr.open_group(str(tmp_path / f"z{fmt}"), mode="w", zarr_format=fmt)
        sub = root.require_group("inner")
        sub.create_array("a", shape=a.shape, dtype=a.dtype, chunks=(9, 7))[...] = a
        sub.create_array("b", shape=b.shape, dtype=b.dtype, chunks=(11,))[...] = b
        root.create_array("top", shape=(3,), dtype="u1")[...] = np.arange(3, dtype="u1")
        out = tmp_path / f"s{fmt}"
        nio.from_zarr(tmp_path / f"z{fmt}", out, group="inner", chunk_size=SMALL)
        assert members(out) == ["a", "b"]
        same(load(out, "a"), a)
        same(load(out, "b"), b)
        nio.from_zarr(tmp_path / f"z{fmt}", out, array_names=["top"], drop_if_exists=True)
        assert members(out) == ["top"]


def test_hdf5_reads_chunked_compressed_datasets_and_groups(tmp_path):
    a = sample("float64", (1000, 5))
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("g/x", data=a, chunks=(64, 5), compression="gzip")
        f.create_dataset("g/y", data=np.arange(10))
        f.create_dataset("top", data=np.ones(3))
        f.create_dataset("g/sub/z", data=np.ones(3))  # nested: not directly in g
    nio.from_hdf5(tmp_path / "f.h5", tmp_path / "s", group="g", chunk_size=SMALL)
    assert members(tmp_path / "s") == ["x", "y"]
    same(load(tmp_path / "s", "x"), a)
    nio.from_hdf5(tmp_path / "f.h5", tmp_path / "s", dataset_names=["top"])
    assert members(tmp_path / "s") == ["top", "x", "y"]
    with pytest.raises(KeyError, match="nope"):
        nio.from_hdf5(tmp_path / "f.h5", tmp_path / "s", dataset_names=["nope"])


def test_hdf5_export_into_group_with_compression_options(tmp_path):
    a = sample("int32", (500, 4))
    src = store_with(tmp_path / "s", a=a)
    nio.to_hdf5(src, tmp_path / "o.h5", group="/grp/sub", compression="lzf", compression_opts=None)
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert f["grp/sub/a"].compression == "lzf"
        same(f["grp/sub/a"][...], a)
    nio.to_hdf5(src, tmp_path / "p.h5", compression=None)
    with h5py.File(tmp_path / "p.h5", "r") as f:
        assert f["a"].compression is None


def test_hdf5_refuses_strings_and_scalars(tmp_path):
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("s", data=np.array([b"ab", b"cd"]))
        f.create_dataset("scalar", data=3.0)
    with pytest.raises(TypeError, match="'s'"):
        nio.from_hdf5(tmp_path / "f.h5", tmp_path / "st", dataset_names=["s"])
    with pytest.raises(ValueError, match="scalar"):
        nio.from_hdf5(tmp_path / "f.h5", tmp_path / "st", dataset_names=["scalar"])
    assert members(tmp_path / "st") == []


TABULAR_SHAPES = [(41,), (41, 3), (19, 2, 3)]


@pytest.mark.parametrize("dtype", REAL)
def test_parquet_round_trip_every_real_dtype_and_shape(tmp_path, dtype):
    for i, shape in enumerate(TABULAR_SHAPES):
        a = sample(dtype, shape, seed=i)
        src = store_with(tmp_path / f"s{i}", x=a)
        f = tmp_path / f"x{i}.parquet"
        nio.to_parquet(src, f, row_group_size=10, chunk_size=SMALL)
        meta = pq.ParquetFile(f).metadata
        assert meta.num_rows == shape[0] and meta.num_row_groups == -(-shape[0] // 10)
        nio.from_parquet(f, tmp_path / f"b{i}", array_name="x", chunk_size=SMALL)
        same(load(tmp_path / f"b{i}", "x"), a)


@pytest.mark.parametrize("dtype", REAL)
def test_feather_round_trip_every_real_dtype_and_shape(tmp_path, dtype):
    for i, shape in enumerate(TABULAR_SHAPES):
        a = sample(dtype, shape, seed=i)
        src = store_with(tmp_path / f"s{i}", x=a)
        f = tmp_path / f"x{i}.feather"
        nio.to_feather(src, f, chunk_size=SMALL)
        nio.from_feather(f, tmp_path / f"b{i}", array_name="x", chunk_size=SMALL)
        same(load(tmp_path / f"b{i}", "x"), a)


@pytest.mark.parametrize("dtype", REAL)
def test_arrow_table_round_trip(tmp_path, dtype):
    for i, shape in enumerate(TABULAR_SHAPES):
        a = sample(dtype, shape, seed=i)
        src = store_with(tmp_path / f"s{i}", x=a)
        for to, frm in ((nio.to_table, nio.from_table), (nio.to_parquet_table, nio.from_parquet_table)):
            t = to(src)
            assert isinstance(t, pa.Table) and t.num_rows == shape[0]
            out = tmp_path / f"t{i}{to.__name__}"
            assert frm(t, out) is None
            same(load(out, "data"), a)


def test_tabular_column_layout_is_numpacks(tmp_path):
    src = store_with(tmp_path / "s", one=np.arange(4.0), two=np.arange(6).reshape(3, 2))
    assert nio.to_table(src, "one").column_names == ["data"]
    assert nio.to_table(src, "two").column_names == ["col0", "col1"]
    assert nio.to_table(src, "two", column_names=["x", "y"]).column_names == ["x", "y"]
    nio.to_parquet(src, tmp_path / "two.parquet", array_name="two")
    t = pq.read_table(tmp_path / "two.parquet")
    assert t.column_names == ["col0", "col1"]
    np.testing.assert_array_equal(t["col1"].to_numpy(), [1, 3, 5])


def test_tabular_records_nd_shape_in_schema_metadata(tmp_path):
    a = sample("int16", (5, 2, 3))
    src = store_with(tmp_path / "s", a=a)
    nio.to_feather(src, tmp_path / "a.feather")
    t = feather.read_table(tmp_path / "a.feather")
    assert t.num_columns == 6
    assert json.loads(t.schema.metadata[b"numpack.shape"]) == [2, 3]
    np.testing.assert_array_equal(t["col4"].to_numpy(), a.reshape(5, 6)[:, 4])


def test_parquet_and_feather_from_foreign_files(tmp_path):
    n = 2500
    df = pd.DataFrame({"i": np.arange(n, dtype=np.int32), "f": np.linspace(0, 1, n), "s": ["x"] * n})
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "d.parquet", row_group_size=300)
    feather.write_feather(df, tmp_path / "d.feather", chunksize=700)
    for fn, f in ((nio.from_parquet, "d.parquet"), (nio.from_feather, "d.feather")):
        out = tmp_path / f"s_{f}"
        fn(tmp_path / f, out, columns=["i", "f"], chunk_size=SMALL)
        got = load(out, "d")
        same(got, np.column_stack([df["i"].to_numpy(), df["f"].to_numpy()]))  # promoted to float64
        with pytest.raises(TypeError, match="'s'"):
            fn(tmp_path / f, out, array_name="bad")  # the string column
        with pytest.raises(KeyError, match="nope"):
            fn(tmp_path / f, out, columns=["nope"])
        assert members(out) == ["d"]


def test_tabular_refuses_nulls(tmp_path):
    t = pa.table({"x": pa.array([1, None, 3], type=pa.int64())})
    pq.write_table(t, tmp_path / "n.parquet")
    with pytest.raises(ValueError, match="null"):
        nio.from_parquet(tmp_path / "n.parquet", tmp_path / "s")
    with pytest.raises(ValueError, match="null"):
        nio.from_table(t, tmp_path / "s")
    assert members(tmp_path / "s") == []


@pytest.mark.parametrize("dtype", COMPLEX)
def test_tabular_formats_refuse_complex_naming_dtype_and_format(tmp_path, dtype):
    src = store_with(tmp_path / "s", c=sample(dtype, (4, 2)))
    for fn, fmt in ((nio.to_parquet, "Parquet"), (nio.to_feather, "Feather"), (nio.to_csv, "CSV")):
        target = tmp_path / f"c.{fmt}"
        with pytest.raises(TypeError, match=f"{fmt}.*{dtype}|{dtype}.*{fmt}"):
            fn(src, target)
        assert not target.exists()
    with pytest.raises(TypeError, match=dtype):
        nio.to_table(src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temporary file left


@pytest.mark.parametrize("dtype", REAL)
def test_csv_round_trip_every_real_dtype(tmp_path, dtype):
    a = sample(dtype, (57, 4))
    src = store_with(tmp_path / "s", a=a, v=sample(dtype, (30,), seed=1))
    nio.to_csv(src, tmp_path / "a.csv", array_name="a", header=True, chunk_size=SMALL)
    nio.from_csv(tmp_path / "a.csv", tmp_path / "b", dtype=dtype, chunk_size=SMALL)
    same(load(tmp_path / "b", "a"), a)
    # a 1-d array comes back as one column, as NumPack (through pandas) reads it
    nio.to_txt(src, tmp_path / "v.txt", array_name="v", chunk_size=SMALL)
    nio.from_txt(tmp_path / "v.txt", tmp_path / "b", dtype=dtype, chunk_size=SMALL)
    same(load(tmp_path / "b", "v"), load(src, "v").reshape(-1, 1))


def test_csv_integers_are_exact_and_floats_use_fmt(tmp_path):
    big = np.array([[2**63 - 1, -(2**63)]], dtype=np.int64)
    src = store_with(tmp_path / "s", big=big, f=np.array([[0.5, 1.25]]))
    nio.to_csv(src, tmp_path / "big.csv", array_name="big")
    assert (tmp_path / "big.csv").read_text() == "9223372036854775807,-9223372036854775808\n"
    nio.to_csv(src, tmp_path / "f.csv", array_name="f", fmt="%.2f", delimiter=";")
    assert (tmp_path / "f.csv").read_text() == "0.50;1.25\n"
    nio.from_csv(tmp_path / "big.csv", tmp_path / "b", dtype=np.int64)
    same(load(tmp_path / "b", "big"), big)


def test_csv_reads_numpy_written_text_with_options(tmp_path):
    a = sample("float64", (1000, 3))
    np.savetxt(tmp_path / "x.csv", a, delimiter=",", header="h1,h2,h3", fmt="%.17g")
    nio.from_csv(tmp_path / "x.csv", tmp_path / "s", chunk_size=SMALL)
    same(load(tmp_path / "s", "x"), a)
    nio.from_csv(tmp_path / "x.csv", tmp_path / "s", array_name="part", skiprows=11, max_rows=100,
                 usecols=[0, 2], chunk_size=SMALL)
    same(load(tmp_path / "s", "part"), a[10:110][:, [0, 2]])
    (tmp_path / "h.csv").write_text("a,b\n1,2\n3,4\n")
    nio.from_csv(tmp_path / "h.csv", tmp_path / "s", header=0, dtype="int8")
    same(load(tmp_path / "s", "h"), np.array([[1, 2], [3, 4]], dtype=np.int8))
    with pytest.raises(TypeError, match="unsupported options"):
        nio.from_csv(tmp_path / "h.csv", tmp_path / "s", engine="c")


def test_csv_refuses_more_than_two_dimensions(tmp_path):
    src = store_with(tmp_path / "s", a=np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"\(2, 2, 2\)"):
        nio.to_csv(src, tmp_path / "a.csv")
    assert not (tmp_path / "a.csv").exists()


def test_csv_ragged_rows_fail_and_leave_nothing(tmp_path):
    lines = ["1,2,3"] * 200 + ["4,5"]
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError):
        nio.from_csv(tmp_path / "r.csv", tmp_path / "s", chunk_size=SMALL)
    assert members(tmp_path / "s") == []


@pytest.mark.parametrize("dtype", DTYPES)
def test_dataframe_round_trip(tmp_path, dtype):
    a = sample(dtype, (64, 3))
    df = pd.DataFrame(a, columns=["x", "y", "z"])
    nio.from_dataframe(df, tmp_path / "s", chunk_size=SMALL)
    same(load(tmp_path / "s", "data"), a)
    back = nio.to_dataframe(tmp_path / "s")
    assert list(back.columns) == ["col0", "col1", "col2"]
    same(back.to_numpy(), a)
    assert list(nio.to_dataframe(tmp_path / "s", columns=["p", "q", "r"]).columns) == ["p", "q", "r"]


def test_dataframe_mixed_columns_promote_and_strings_are_refused(tmp_path):
    df = pd.DataFrame({"i": np.arange(5, dtype=np.int16), "f": np.arange(5, dtype=np.float32)})
    nio.from_dataframe(df, tmp_path / "s", array_name="m")
    same(load(tmp_path / "s", "m"), df.to_numpy(dtype=np.float32))
    with pytest.raises(TypeError, match="'t'"):
        nio.from_dataframe(pd.DataFrame({"t": ["a", "b"]}), tmp_path / "s", array_name="t")
    with pytest.raises(ValueError, match="missing"):
        nio.from_dataframe(pd.DataFrame({"n": pd.array([1, None], dtype="Int64")}), tmp_path / "s",
                           array_name="n")
    src = store_with(tmp_path / "three", a=np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="DataFrame"):
        nio.to_dataframe(src)
    assert members(tmp_path / "s") == ["m"]


def test_return_npk_obj_and_default_names(tmp_path):
    src = store_with(tmp_path / "s", a=np.arange(6.0).reshape(3, 2))
    nio.to_parquet(src, tmp_path / "file.parquet")
    npk = nio.from_parquet(tmp_path / "file.parquet", tmp_path / "b", return_npk_obj=True)
    try:
        assert isinstance(npk, numpack.NumPack) and npk.get_member_list() == ["file"]
    finally:
        npk.close()
    with pytest.raises(ValueError, match="array_name"):
        nio.to_parquet(store_with(tmp_path / "two", a=np.ones(2), b=np.ones(2)), tmp_path / "x.parquet")
    with pytest.raises(FileNotFoundError):
        nio.to_hdf5(tmp_path / "missing", tmp_path / "x.h5")
    with pytest.raises(FileNotFoundError):
        nio.from_feather(tmp_path / "missing.feather", tmp_path / "b")
    assert not (tmp_path / "missing").exists()


def test_utils(tmp_path):
    assert nio.LARGE_FILE_THRESHOLD == 1 << 30
    assert nio.DEFAULT_CHUNK_SIZE == 100 * 1024 * 1024
    assert nio.DEFAULT_BATCH_ROWS == 100000
    assert issubclass(nio.DependencyError, ImportError)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"x" * 10)
    (tmp_path / "d" / "b").write_bytes(b"x" * 5)
    assert nio.get_file_size(tmp_path / "d" / "a") == 10
    assert nio.get_file_size(tmp_path / "d") == 15
    assert nio.get_file_size(tmp_path / "nothing") == 0
    assert nio.is_large_file(tmp_path / "d", threshold=14) and not nio.is_large_file(tmp_path / "d", 15)
    assert nio.estimate_chunk_rows((1000, 10), np.dtype("f8"), 800) == 10
    assert nio.estimate_chunk_rows((5, 10), np.dtype("f8"), 8000) == 5
    assert nio.estimate_chunk_rows((10**9,), np.dtype("u1"), 10**9) == 10**6
    assert nio.estimate_chunk_rows((), np.dtype("f8")) == 1
    assert nio.estimate_chunk_rows((7, 0), np.dtype("f8")) == nio.DEFAULT_BATCH_ROWS


def test_exports_see_live_rows_of_compressed_and_deleted_arrays(tmp_path):
    a = np.arange(3000, dtype=np.int64).reshape(1000, 3)
    with numpack.NumPack(tmp_path / "s", warn_no_context=False) as n:
        n.save({"z": a}, compression="zstd")
        n.save({"d": a})
        n.drop("d", [0, 5, 999])
    live = np.delete(a, [0, 5, 999], axis=0)
    nio.to_hdf5(tmp_path / "s", tmp_path / "o.h5", chunk_size=SMALL)
    with h5py.File(tmp_path / "o.h5", "r") as f:
        same(f["z"][...], a)
        same(f["d"][...], live)
    nio.to_parquet(tmp_path / "s", tmp_path / "d.parquet", array_name="d", chunk_size=SMALL)
    same(np.column_stack([c.to_numpy() for c in pq.read_table(tmp_path / "d.parquet").columns]), live)


def test_single_array_zarr_store_and_whitespace_text(tmp_path):
    a = sample("uint16", (40, 2))
    z = zarr.open_array(str(tmp_path / "lone.zarr"), mode="w", shape=a.shape, dtype=a.dtype, chunks=(7, 2))
    z[...] = a
    nio.from_zarr(tmp_path / "lone.zarr", tmp_path / "s")
    same(load(tmp_path / "s", "lone"), a)
    (tmp_path / "w.txt").write_text("1  2\t3\n 4 5   6\n")
    nio.from_txt(tmp_path / "w.txt", tmp_path / "s", dtype="int32")
    same(load(tmp_path / "s", "w"), np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32))
