"""numpack.io's contract beyond the data: NumPack 0.7's signatures, DependencyError
when an optional library is missing, atomic results on failure, interrupt and
cancellation, and the progress= callback."""

import inspect
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import sample

import numpack
import numpack.io as nio

_ = object()  # "no default"
CHUNK = 100 * 1024 * 1024
# NumPack 0.7.0's parameters of each converter: (name, default) in order.
UPSTREAM = {
    "from_npy": [("input_path", _), ("output_path", _), ("array_name", None), ("drop_if_exists", False),
                 ("chunk_size", CHUNK), ("return_npk_obj", False)],
    "to_npy": [("input_path", _), ("output_path", _), ("array_names", None), ("compressed", True),
               ("chunk_size", CHUNK)],
    "from_csv": [("input_path", _), ("output_path", _), ("array_name", None), ("drop_if_exists", False),
                 ("dtype", None), ("delimiter", ","), ("skiprows", 0), ("max_rows", None),
                 ("chunk_size", CHUNK), ("return_npk_obj", False)],
    "to_csv": [("input_path", _), ("output_path", _), ("array_name", None), ("delimiter", ","),
               ("header", False), ("fmt", "%.18e"), ("chunk_size", CHUNK)],
    "from_txt": [("input_path", _), ("output_path", _), ("array_name", None), ("drop_if_exists", False),
                 ("dtype", None), ("delimiter", None), ("skiprows", 0), ("chunk_size", CHUNK),
                 ("return_npk_obj", False)],
    "to_txt": [("input_path", _), ("output_path", _), ("array_name", None), ("delimiter", " "),
               ("fmt", "%.18e"), ("chunk_size", CHUNK)],
    "from_hdf5": [("input_path", _), ("output_path", _), ("dataset_names", None), ("group", "/"),
                  ("drop_if_exists", False), ("chunk_size", CHUNK), ("return_npk_obj", False)],
    "to_hdf5": [("input_path", _), ("output_path", _), ("array_names", None), ("group", "/"),
                ("compression", "gzip"), ("compression_opts", 4), ("chunk_size", CHUNK)],
    "from_zarr": [("input_path", _), ("output_path", _), ("array_names", None), ("group", "/"),
                  ("drop_if_exists", False), ("chunk_size", CHUNK), ("return_npk_obj", False)],
    "to_zarr": [("input_path", _), ("output_path", _), ("array_names", None), ("group", "/"),
                ("compressor", "default"), ("chunk_size", CHUNK)],
    "from_parquet_file": [("input_path", _), ("output_path", _), ("array_name", None), ("columns", None),
                          ("drop_if_exists", False), ("chunk_size", CHUNK), ("return_npk_obj", False)],
    "to_parquet_file": [("input_path", _), ("output_path", _), ("array_name", None),
                        ("compression", "snappy"), ("row_group_size", 100000), ("chunk_size", CHUNK)],
    "from_parquet_table": [("table", _), ("output_path", _), ("array_name", None), ("columns", None),
                           ("drop_if_exists", False), ("return_npk_obj", False)],
    "to_parquet_table": [("input_path", _), ("array_name", None), ("column_names", None)],
    "from_feather_file": [("input_path", _), ("output_path", _), ("array_name", None), ("columns", None),
                          ("drop_if_exists", False), ("return_npk_obj", False)],
    "to_feather_file": [("input_path", _), ("output_path", _), ("array_name", None),
                        ("compression", "zstd")],
    "from_table": [("table", _), ("output_path", _), ("array_name", None), ("columns", None),
                   ("drop_if_exists", False), ("return_npk_obj", False)],
    "to_table": [("input_path", _), ("array_name", None), ("column_names", None)],
    "from_dataframe": [("df", _), ("output_path", _), ("array_name", "data"), ("drop_if_exists", False),
                       ("chunk_size", CHUNK), ("return_npk_obj", False)],
    "to_dataframe": [("input_path", _), ("array_name", None), ("columns", None)],
}
ALIASES = {"from_parquet": "from_parquet_file", "to_parquet": "to_parquet_file",
           "from_feather": "from_feather_file", "to_feather": "to_feather_file"}
NUMPACK_07_IO_NAMES = set(UPSTREAM) | set(ALIASES) | {
    "DependencyError", "get_file_size", "is_large_file", "estimate_chunk_rows", "LARGE_FILE_THRESHOLD",
    "DEFAULT_CHUNK_SIZE", "DEFAULT_BATCH_ROWS"}


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_signature_matches_numpack_07(name):
    """The positional parameters are NumPack's, with its names, order and defaults; our
    additions (progress=, ...) are keyword-only, and **kwargs stays where NumPack has it."""
    params = list(inspect.signature(getattr(nio, name)).parameters.values())
    positional = [p for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    got = [(p.name, _ if p.default is p.empty else p.default) for p in positional]
    assert got == UPSTREAM[name]
    extra = [p for p in params if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.VAR_KEYWORD)]
    assert all(p.kind == p.KEYWORD_ONLY for p in extra)
    assert "progress" in [p.name for p in extra]
    if name in ("from_csv", "to_csv", "from_txt", "to_txt"):
        assert params[-1].kind == params[-1].VAR_KEYWORD


def test_module_layout_and_aliases_match_numpack_07():
    assert NUMPACK_07_IO_NAMES <= set(nio.__all__)
    for alias, target in ALIASES.items():
        assert getattr(nio, alias) is getattr(nio, target)
    modules = {"utils": ["DependencyError", "get_file_size", "is_large_file", "estimate_chunk_rows"],
               "numpy_io": ["from_npy", "to_npy"], "csv_io": ["from_csv", "to_csv", "from_txt", "to_txt"],
               "hdf5_io": ["from_hdf5", "to_hdf5"], "zarr_io": ["from_zarr", "to_zarr"],
               "parquet_io": ["from_parquet", "to_parquet", "from_parquet_table", "to_parquet_table"],
               "feather_io": ["from_feather", "to_feather", "from_table", "to_table"],
               "pandas_io": ["from_dataframe", "to_dataframe"]}
    import importlib

    for mod, names in modules.items():
        m = importlib.import_module(f"numpack.io.{mod}")
        for n in names:
            assert getattr(m, n) is getattr(nio, n), (mod, n)


MISSING = [
    ("pyarrow", "to_parquet", "parquet"), ("pyarrow", "from_feather", "feather"),
    ("pyarrow", "to_table", "feather"), ("h5py", "to_hdf5", "hdf5"), ("h5py", "from_hdf5", "hdf5"),
    ("zarr", "to_zarr", "zarr"), ("pandas", "to_dataframe", "pandas"),
]


@pytest.mark.parametrize("module,func,extra", MISSING)
def test_missing_library_raises_dependency_error_naming_the_extra(tmp_path, module, func, extra):
    """In a fresh interpreter where the library cannot be imported: numpack.io imports
    fine and the converter raises DependencyError with the pip command."""
    store = tmp_path / "s"
    with numpack.NumPack(store, warn_no_context=False) as n:
        n.save({"a": np.arange(4.0)})
    (tmp_path / "in.x").write_bytes(b"")
    code = textwrap.dedent(f"""
        import sys
        sys.modules[{module!r}] = None
        import numpack.io as nio
        assert {module!r} not in [m for m in sys.modules if sys.modules[m] is not None]
        fn = nio.{func}
        args = ({str(tmp_path / "in.x")!r}, {str(tmp_path / "out")!r}) if fn.__name__.startswith("from_") \\
            else ({str(store)!r},) + (() if fn.__name__ in ("to_table", "to_dataframe") else ({str(tmp_path / "o")!r},))
        try:
            fn(*args)
        except nio.DependencyError as e:
            assert isinstance(e, ImportError)
            print(e)
        else:
            raise SystemExit("no DependencyError")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"pip install numpack[{extra}]" in proc.stdout
    assert not (tmp_path / "out").exists() and not (tmp_path / "o").exists()


def test_importing_numpack_io_loads_no_optional_library():
    code = ("import sys, numpack.io\n"
            "print([m for m in ('pyarrow', 'pandas', 'h5py', 'zarr') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


class Recorder:
    """Records progress calls; returns False (or raises ``exc``) at call ``stop_at``."""

    def __init__(self, stop_at=None, exc=None):
        self.calls, self.stop_at, self.exc = [], stop_at, exc

    def __call__(self, done, total):
        self.calls.append((done, total))
        if self.stop_at is not None and len(self.calls) - 1 == self.stop_at:
            if self.exc is not None:
                raise self.exc
            return False
        return None

    def check_complete(self):
        assert len(self.calls) >= 3  # start, blocks, end
        assert self.calls[0][0] == 0
        dones = [d for d, _ in self.calls]
        assert dones == sorted(dones)
        last_done, last_total = self.calls[-1]
        assert last_done == last_total > 0
        assert all(d <= t for d, t in self.calls)


SMALL = 1024
DATA = sample("float32", (2000, 6))


def _make_inputs(tmp_path):
    """One source file per format, all holding DATA, and the store it came from."""
    src = tmp_path / "src"
    with numpack.NumPack(src, warn_no_context=False) as n:
        n.save({"DATA": DATA})
    nio.to_csv(src, tmp_path / "DATA.csv")
    # Written by the libraries in small chunks, so that imports (which read whole chunks)
    # take many blocks.
    import h5py
    import zarr

    with h5py.File(tmp_path / "DATA.h5", "w") as f:
        f.create_dataset("DATA", data=DATA, chunks=(100, 6))
    zarr.open_group(str(tmp_path / "DATA.zarr"), mode="w").create_array(
        "DATA", shape=DATA.shape, dtype=DATA.dtype, chunks=(100, 6))[...] = DATA
    nio.to_parquet(src, tmp_path / "DATA.parquet", row_group_size=100)
    nio.to_feather(src, tmp_path / "DATA.feather")
    return src


IMPORTS = {
    "csv": lambda t, out, **kw: nio.from_csv(t / "DATA.csv", out, dtype="float32", **kw),
    "hdf5": lambda t, out, **kw: nio.from_hdf5(t / "DATA.h5", out, **kw),
    "zarr": lambda t, out, **kw: nio.from_zarr(t / "DATA.zarr", out, **kw),
    "parquet": lambda t, out, **kw: nio.from_parquet(t / "DATA.parquet", out, **kw),
    "feather": lambda t, out, **kw: nio.from_feather(t / "DATA.feather", out, **kw),
    "table": lambda t, out, **kw: nio.from_table(pa.Table.from_pandas(pd.DataFrame(DATA)), out,
                                                 array_name="DATA", **kw),
    "dataframe": lambda t, out, **kw: nio.from_dataframe(pd.DataFrame(DATA), out, array_name="DATA", **kw),
}


def _store_state(path):
    with numpack.NumPack(path, warn_no_context=False) as n:
        return {k: n.load(k).tobytes() for k in sorted(n.get_member_list())}


@pytest.fixture
def inputs(tmp_path):
    _make_inputs(tmp_path)
    return tmp_path


@pytest.mark.parametrize("fmt", sorted(IMPORTS))
def test_import_streams_with_progress(inputs, fmt):
    rec = Recorder()
    out = inputs / f"out_{fmt}"
    IMPORTS[fmt](inputs, out, chunk_size=SMALL, progress=rec)
    rec.check_complete()
    assert len(rec.calls) > 10  # many blocks
    with numpack.NumPack(out, warn_no_context=False) as n:
        np.testing.assert_array_equal(n.load("DATA"), DATA)


@pytest.mark.parametrize("fmt", sorted(IMPORTS))
@pytest.mark.parametrize("how", ["cancel", "interrupt", "error"])
@pytest.mark.parametrize("drop_if_exists", [False, True])
def test_interrupted_import_leaves_the_store_as_it_was(inputs, fmt, how, drop_if_exists):
    out = inputs / "out"
    with numpack.NumPack(out, warn_no_context=False) as n:
        n.save({"DATA": np.zeros((3, 6), dtype=np.float32), "other": np.arange(5)})
    before = _store_state(out)
    exc = {"cancel": None, "interrupt": KeyboardInterrupt(), "error": RuntimeError("boom")}[how]
    expected = {"cancel": numpack.CancelledError, "interrupt": KeyboardInterrupt, "error": RuntimeError}[how]
    with pytest.raises(expected):
        IMPORTS[fmt](inputs, out, chunk_size=SMALL, drop_if_exists=drop_if_exists,
                     progress=Recorder(stop_at=4, exc=exc))
    assert _store_state(out) == before  # no partial array, no temporary one, nothing dropped


def test_failed_import_of_several_arrays_keeps_none(tmp_path):
    import h5py

    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["a"] = np.arange(10)
        f["b"] = np.array([b"text"])  # not importable: fails after "a" was written
    with pytest.raises(TypeError):
        nio.from_hdf5(tmp_path / "f.h5", tmp_path / "s")
    assert _store_state(tmp_path / "s") == {}


@pytest.mark.parametrize("drop_if_exists", [False, True])
def test_import_with_a_name_the_store_refuses_changes_nothing(tmp_path, drop_if_exists):
    import h5py

    with numpack.NumPack(tmp_path / "s", warn_no_context=False) as n:
        n.save({"old": np.arange(4)})
    before = _store_state(tmp_path / "s")
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["a"] = np.arange(10)
        f["b\\c"] = np.arange(3)  # a fine HDF5 name, a forbidden array name
    with pytest.raises(numpack.InvalidNameError, match="forbidden"):
        nio.from_hdf5(tmp_path / "f.h5", tmp_path / "s", drop_if_exists=drop_if_exists)
    # Refused before anything was renamed: "a" is not imported, "old" not dropped.
    assert _store_state(tmp_path / "s") == before


def test_failed_csv_import_late_in_the_file_leaves_nothing(tmp_path):
    lines = ["1,2"] * 5000 + ["1,oops"]
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    rec = Recorder()
    with pytest.raises(ValueError, match="oops|could not convert"):
        nio.from_csv(tmp_path / "bad.csv", tmp_path / "s", chunk_size=SMALL, progress=rec)
    assert len(rec.calls) > 5  # it failed after writing blocks
    assert _store_state(tmp_path / "s") == {}


EXPORTS = {
    "csv": (lambda s, t, **kw: nio.to_csv(s, t, **kw), "o.csv"),
    "txt": (lambda s, t, **kw: nio.to_txt(s, t, **kw), "o.txt"),
    "hdf5": (lambda s, t, **kw: nio.to_hdf5(s, t, **kw), "o.h5"),
    "zarr": (lambda s, t, **kw: nio.to_zarr(s, t, **kw), "o.zarr"),
    "parquet": (lambda s, t, **kw: nio.to_parquet(s, t, **kw), "o.parquet"),
    "feather": (lambda s, t, **kw: nio.to_feather(s, t, **kw), "o.feather"),
}


def _tree(path):
    if path.is_file():
        return path.read_bytes()
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt", sorted(EXPORTS))
def test_export_streams_with_progress(inputs, fmt):
    fn, target = EXPORTS[fmt]
    rec = Recorder()
    fn(inputs / "src", inputs / target, chunk_size=SMALL, progress=rec)
    rec.check_complete()
    assert rec.calls[-1][0] == DATA.nbytes and len(rec.calls) > 10


@pytest.mark.parametrize("fmt", sorted(EXPORTS))
@pytest.mark.parametrize("how", ["cancel", "interrupt"])
@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_export_leaves_no_file_and_the_old_target(inputs, fmt, how, existing):
    fn, target = EXPORTS[fmt]
    path = inputs / target
    if existing:
        fn(inputs / "src", path)
        old = _tree(path)
    listing = sorted(os.listdir(inputs))
    exc = KeyboardInterrupt() if how == "interrupt" else None
    with pytest.raises(KeyboardInterrupt if exc else numpack.CancelledError):
        fn(inputs / "src", path, chunk_size=SMALL, progress=Recorder(stop_at=3, exc=exc))
    assert sorted(os.listdir(inputs)) == listing  # no temporary file or directory left
    if existing:
        assert _tree(path) == old
    else:
        assert not path.exists()


def test_export_over_an_existing_zarr_store_replaces_it_whole(inputs):
    path = inputs / "o.zarr"
    nio.to_zarr(inputs / "src", path)
    with numpack.NumPack(inputs / "other", warn_no_context=False) as n:
        n.save({"x": np.arange(3)})
    nio.to_zarr(inputs / "other", path)
    import zarr

    assert sorted(zarr.open_group(str(path), mode="r").array_keys()) == ["x"]


def test_progress_must_be_callable(inputs):
    with pytest.raises(TypeError, match="callable"):
        nio.to_parquet(inputs / "src", inputs / "x.parquet", progress=5)
    assert not (inputs / "x.parquet").exists()


def test_import_does_not_touch_other_arrays_and_replaces_its_own(inputs):
    out = inputs / "out"
    with numpack.NumPack(out, warn_no_context=False) as n:
        n.save({"DATA": np.zeros(2), "keep": np.arange(3)})
    nio.from_parquet(inputs / "DATA.parquet", out)
    with numpack.NumPack(out, warn_no_context=False) as n:
        assert sorted(n.get_member_list()) == ["DATA", "keep"]
        np.testing.assert_array_equal(n.load("DATA"), DATA)
    nio.from_parquet(inputs / "DATA.parquet", out, drop_if_exists=True)
    with numpack.NumPack(out, warn_no_context=False) as n:
        assert n.get_member_list() == ["DATA"]


def test_arrow_converters_do_not_load_pandas(tmp_path):
    """pyarrow's pa.array / Array.to_numpy import pandas (~50 MB resident); the Parquet
    and Feather converters build and read columns from buffers instead."""
    store = tmp_path / "s"
    with numpack.NumPack(store, warn_no_context=False) as n:
        n.save({"a": sample("float32", (100, 3)), "b": sample("bool", (50,))})
    code = textwrap.dedent(f"""
        import sys
        import numpack.io as nio
        for name in ("a", "b"):
            nio.to_parquet({str(store)!r}, {str(tmp_path)!r} + f"/{{name}}.parquet", array_name=name)
            nio.to_feather({str(store)!r}, {str(tmp_path)!r} + f"/{{name}}.feather", array_name=name)
            nio.from_parquet({str(tmp_path)!r} + f"/{{name}}.parquet", {str(tmp_path / "o")!r})
            nio.from_feather({str(tmp_path)!r} + f"/{{name}}.feather", {str(tmp_path / "o")!r})
            nio.from_table(nio.to_table({str(store)!r}, name), {str(tmp_path / "o")!r}, array_name=name)
        print("pandas" in sys.modules)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
    with numpack.NumPack(tmp_path / "o", warn_no_context=False) as n:
        np.testing.assert_array_equal(n.load("b"), sample("bool", (50,)))


@pytest.mark.parametrize("fmt", sorted(EXPORTS))
def test_store_handles_are_reopened_along_the_way(inputs, fmt, monkeypatch):
    """Converters reopen the store every WINDOW_BYTES (the library's maps keep pages
    resident while a handle is open): with a small window, exports and imports go
    through many handles and the data still round-trips."""
    from numpack.io import _stream

    monkeypatch.setattr(_stream, "WINDOW_BYTES", 4096)
    opened = []
    real = _stream.open_store
    monkeypatch.setattr(_stream, "open_store", lambda *a, **k: opened.append(a[0]) or real(*a, **k))
    fn, target = EXPORTS[fmt]
    fn(inputs / "src", inputs / target, chunk_size=SMALL)
    assert len(opened) >= 5
    opened.clear()
    out = inputs / "back"
    back = {"csv": lambda: nio.from_csv(inputs / target, out, dtype="float32", chunk_size=SMALL),
            "txt": lambda: nio.from_txt(inputs / target, out, dtype="float32", chunk_size=SMALL),
            "hdf5": lambda: nio.from_hdf5(inputs / target, out, chunk_size=SMALL),
            "zarr": lambda: nio.from_zarr(inputs / target, out, chunk_size=SMALL),
            "parquet": lambda: nio.from_parquet(inputs / target, out, array_name="DATA", chunk_size=SMALL),
            "feather": lambda: nio.from_feather(inputs / target, out, array_name="DATA", chunk_size=SMALL)}
    back[fmt]()
    assert len(opened) >= 5
    with numpack.NumPack(out, warn_no_context=False) as n:
        got = n.load("o" if fmt in ("csv", "txt") else "DATA")
    np.testing.assert_array_equal(got, DATA)
