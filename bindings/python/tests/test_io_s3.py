"""from_s3 / to_s3 against a real S3 endpoint: moto's server, started on 127.0.0.1 for
this module and stopped at its end. Objects are read and written with s3fs and checked
with NumPy, pyarrow and boto3, never through numpack alone."""

import io
import os
import socket
import sys
import uuid

import numpy as np
import pytest
from conftest import DTYPES, sample

import numpack
from numpack.io import DependencyError, from_s3, to_s3

s3fs = pytest.importorskip("s3fs", reason="s3fs is not installed (pip install numpack[s3])")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
boto3 = pytest.importorskip("boto3")

BUCKET = "numpack-tests"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint():
    # Credentials are given explicitly and instance metadata is off, so botocore never
    # looks for credentials outside this machine.
    saved = {k: os.environ.get(k) for k in ("AWS_EC2_METADATA_DISABLED", "AWS_CONFIG_FILE",
                                            "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE")}
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ.pop("AWS_PROFILE", None)
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name="us-east-1")


@pytest.fixture(scope="module")
def opts(endpoint):
    kw = dict(endpoint_url=endpoint, key="testing", secret="testing",
              client_kwargs={"region_name": "us-east-1"})
    _client(endpoint).create_bucket(Bucket=BUCKET)
    return kw


@pytest.fixture
def fs(opts):
    return s3fs.S3FileSystem(skip_instance_cache=True, **opts)


@pytest.fixture
def url():
    """A fresh object URL of the test bucket: ``url('x.npy')``."""
    prefix = uuid.uuid4().hex[:8]
    return lambda name: f"s3://{BUCKET}/{prefix}/{name}"


def _put_npy(fs, target, arr):
    with fs.open(target, "wb") as f:
        np.save(f, arr)


def _get_npy(fs, target):
    return np.load(io.BytesIO(fs.cat(target)))


def _store(path, **arrays):
    with numpack.NumPack(path, warn_no_context=False) as npk:
        npk.save(arrays)


def _arrays(path):
    with numpack.NumPack(path, warn_no_context=False) as npk:
        return {n: npk.load(n) for n in npk.get_member_list()}


@pytest.mark.parametrize("dtype", DTYPES)
def test_npy_round_trip_every_dtype(tmp_path, fs, opts, url, dtype):
    arr = sample(dtype, (37, 3, 2))
    _store(tmp_path / "src", a=arr)
    target = url("a.npy")
    to_s3(tmp_path / "src", target, **opts)
    back = _get_npy(fs, target)  # NumPy reads what was uploaded
    assert back.dtype == arr.dtype and np.array_equal(back, arr)
    from_s3(target, tmp_path / "dst", **opts)
    got = _arrays(tmp_path / "dst")
    assert list(got) == ["a"] and got["a"].dtype == arr.dtype
    assert np.array_equal(got["a"], arr)


def test_from_s3_names_the_array_after_the_object(tmp_path, fs, opts, url):
    arr = np.arange(10, dtype=np.int32)
    target = url("embeddings.v2.npy")
    _put_npy(fs, target, arr)
    npk = from_s3(target, tmp_path / "s", return_npk_obj=True, **opts)
    try:
        assert npk.get_member_list() == ["embeddings.v2"]
        assert np.array_equal(npk.load("embeddings.v2"), arr)
    finally:
        npk.close()
    from_s3(target, tmp_path / "s", array_name="other", **opts)
    assert sorted(_arrays(tmp_path / "s")) == ["embeddings.v2", "other"]


@pytest.mark.parametrize("layout", ["fortran", "big-endian", "empty", "1-d"])
def test_from_s3_npy_layouts_in_small_blocks(tmp_path, fs, opts, url, layout):
    base = np.arange(7 * 5 * 3, dtype=np.float64).reshape(7, 5, 3)
    arr = {"fortran": np.asfortranarray(base), "big-endian": base.astype(">i8"),
           "empty": np.empty((0, 4), np.uint16), "1-d": np.arange(1001, dtype=np.int8)}[layout]
    target = url("x.npy")
    _put_npy(fs, target, arr)
    # chunk_size of 64 bytes: many blocks of a few rows each.
    from_s3(target, tmp_path / "s", chunk_size=64, **opts)
    got = _arrays(tmp_path / "s")["x"]
    assert got.shape == arr.shape and got.dtype == arr.dtype.newbyteorder("=")
    assert np.array_equal(got, arr)


def test_npz_both_ways(tmp_path, fs, opts, url):
    a, b = sample("float32", (100, 4)), sample("complex128", (9,))
    target = url("pair.npz")
    with fs.open(target, "wb") as f:
        np.savez_compressed(f, a=a, b=b)
    from_s3(target, tmp_path / "s", chunk_size=128, **opts)
    got = _arrays(tmp_path / "s")
    assert sorted(got) == ["a", "b"]
    assert np.array_equal(got["a"], a) and np.array_equal(got["b"], b)

    out = url("out.npz")
    to_s3(tmp_path / "s", out, chunk_size=100, **opts)
    with np.load(io.BytesIO(fs.cat(out))) as z:
        assert sorted(z.files) == ["a", "b"]
        assert np.array_equal(z["a"], a) and np.array_equal(z["b"], b)
    one = url("one.npz")
    to_s3(tmp_path / "s", one, array_name="b", **opts)
    with np.load(io.BytesIO(fs.cat(one))) as z:
        assert z.files == ["b"]


def test_to_s3_npy_needs_one_array(tmp_path, opts, url, fs):
    _store(tmp_path / "s", a=np.zeros(3), b=np.ones(3))
    with pytest.raises(ValueError, match="array_name"):
        to_s3(tmp_path / "s", url("x.npy"), **opts)
    target = url("x.npy")
    to_s3(tmp_path / "s", target, array_name="b", **opts)
    assert np.array_equal(_get_npy(fs, target), np.ones(3))
    with pytest.raises(KeyError):
        to_s3(tmp_path / "s", url("y.npy"), array_name="nope", **opts)


def test_exported_rows_skip_deleted_ones(tmp_path, fs, opts, url):
    arr = np.arange(50, dtype=np.int64).reshape(25, 2)
    with numpack.NumPack(tmp_path / "s", warn_no_context=False) as npk:
        npk.save({"a": arr})
        npk.drop("a", [0, 3, 24])
    target = url("a.npy")
    to_s3(tmp_path / "s", target, chunk_size=32, **opts)
    assert np.array_equal(_get_npy(fs, target), np.delete(arr, [0, 3, 24], axis=0))


class _Recorder:
    def __init__(self, cancel_at=None):
        self.calls, self.cancel_at = [], cancel_at

    def __call__(self, done, total):
        self.calls.append((done, total))
        return not (self.cancel_at is not None and len(self.calls) - 1 == self.cancel_at)


def test_progress_reports_every_block(tmp_path, fs, opts, url):
    arr = sample("float32", (1000, 8))
    _store(tmp_path / "s", a=arr)
    target = url("a.npy")
    rec = _Recorder()
    to_s3(tmp_path / "s", target, chunk_size=4096, progress=rec, **opts)
    assert rec.calls[0][0] == 0 and rec.calls[-1] == (arr.nbytes, arr.nbytes)
    assert len(rec.calls) >= arr.nbytes // 4096
    assert [d for d, _ in rec.calls] == sorted(d for d, _ in rec.calls)
    rec = _Recorder()
    from_s3(target, tmp_path / "t", chunk_size=4096, progress=rec, **opts)
    assert rec.calls[0] == (0, arr.nbytes) and rec.calls[-1] == (arr.nbytes, arr.nbytes)
    assert len(rec.calls) >= arr.nbytes // 4096
    # .npz: one total for all members, known before the first is stored.
    npz = url("two.npz")
    with fs.open(npz, "wb") as f:
        np.savez_compressed(f, a=arr, b=arr[:10])
    rec = _Recorder()
    from_s3(npz, tmp_path / "u", chunk_size=4096, progress=rec, **opts)
    total = arr.nbytes + arr[:10].nbytes
    assert rec.calls[0] == (0, total) and rec.calls[-1] == (total, total)


def test_failed_or_cancelled_import_changes_nothing(tmp_path, fs, opts, url):
    old = np.full((4, 2), 7.0)
    _store(tmp_path / "s", x=old)
    target = url("x.npy")
    _put_npy(fs, target, sample("float64", (500, 2)))
    with pytest.raises(numpack.CancelledError):
        from_s3(target, tmp_path / "s", chunk_size=160, progress=_Recorder(cancel_at=3), **opts)
    with pytest.raises(numpack.CancelledError):
        from_s3(target, tmp_path / "s", chunk_size=160, drop_if_exists=True,
                progress=_Recorder(cancel_at=3), **opts)
    # A truncated object: the size check refuses it before any block is stored.
    data = fs.cat(target)
    fs.pipe(target, data[:-5])
    with pytest.raises(ValueError, match="truncated"):
        from_s3(target, tmp_path / "s", **opts)
    got = _arrays(tmp_path / "s")
    assert list(got) == ["x"] and np.array_equal(got["x"], old)


def test_damaged_npz_member_changes_nothing(tmp_path, fs, opts, url):
    target = url("z.npz")
    buf = io.BytesIO()
    np.savez(buf, a=np.arange(100, dtype=np.int64), b=np.arange(100, dtype=np.int64))
    raw = bytearray(buf.getvalue())
    raw[raw.rfind(np.arange(100, dtype=np.int64)[60:61].tobytes())] ^= 0xFF  # corrupt member b
    fs.pipe(target, bytes(raw))
    _store(tmp_path / "s", keep=np.zeros(2))
    with pytest.raises(Exception, match="CRC|Bad"):
        from_s3(target, tmp_path / "s", **opts)
    assert list(_arrays(tmp_path / "s")) == ["keep"]


def test_hostile_headers_are_refused(tmp_path, fs, opts, url):
    target = url("bad.npy")
    fs.pipe(target, b"not a numpy file at all")
    with pytest.raises(ValueError, match="not a readable .npy"):
        from_s3(target, tmp_path / "s", **opts)
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    fs.pipe(target, buf.getvalue())
    with pytest.raises(ValueError, match="Unsupported dtype"):
        from_s3(target, tmp_path / "s", **opts)
    buf = io.BytesIO()
    np.save(buf, np.float64(3.0))
    fs.pipe(target, buf.getvalue())
    with pytest.raises(ValueError, match="0-d"):
        from_s3(target, tmp_path / "s", **opts)
    assert not (tmp_path / "s").exists() or _arrays(tmp_path / "s") == {}


def _multipart_uploads(endpoint):
    return _client(endpoint).list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


def test_cancelled_export_leaves_no_object(tmp_path, fs, opts, url, endpoint):
    # 12 MiB: s3fs sends parts of 5 MiB, so parts are already uploaded when it stops.
    arr = np.arange(3 << 20, dtype=np.float32).reshape(-1, 64)
    _store(tmp_path / "s", a=arr)
    target = url("big.npy")
    with pytest.raises(numpack.CancelledError):
        to_s3(tmp_path / "s", target, chunk_size=1 << 20, progress=_Recorder(cancel_at=11), **opts)
    assert not fs.exists(target)
    assert _multipart_uploads(endpoint) == []
    # An existing object keeps its contents.
    old = np.arange(5)
    _put_npy(fs, target, old)
    with pytest.raises(numpack.CancelledError):
        to_s3(tmp_path / "s", target, chunk_size=1 << 20, progress=_Recorder(cancel_at=11), **opts)
    assert np.array_equal(_get_npy(fs, target), old)
    to_s3(tmp_path / "s", target, chunk_size=1 << 20, **opts)
    assert np.array_equal(_get_npy(fs, target), arr)


def test_parquet_and_feather_through_their_converters(tmp_path, fs, opts, url):
    pq = pytest.importorskip("pyarrow.parquet")
    feather = pytest.importorskip("pyarrow.feather")
    arr = sample("float32", (300, 3))
    _store(tmp_path / "s", t=arr)
    target = url("table.parquet")
    to_s3(tmp_path / "s", target, chunk_size=1024, **opts)
    with fs.open(target, "rb") as f:
        table = pq.read_table(f)
    assert np.array_equal(np.column_stack([c.to_numpy() for c in table.columns]), arr)
    # Named after the object, not after a temporary file.
    from_s3(target, tmp_path / "p", chunk_size=1024, **opts)
    assert list(_arrays(tmp_path / "p")) == ["table"]
    assert np.array_equal(_arrays(tmp_path / "p")["table"], arr)

    ftarget = url("frame.feather")
    rec = _Recorder()
    to_s3(tmp_path / "s", ftarget, chunk_size=1024, progress=rec, **opts)
    with fs.open(ftarget, "rb") as f:
        assert np.array_equal(np.column_stack([c.to_numpy() for c in feather.read_table(f).columns]), arr)
    assert rec.calls[-1][0] == rec.calls[-1][1]
    rec = _Recorder()
    from_s3(ftarget, tmp_path / "f", chunk_size=1024, progress=rec, **opts)
    assert np.array_equal(_arrays(tmp_path / "f")["frame"], arr)
    dones = [d for d, _ in rec.calls]
    assert dones == sorted(dones) and rec.calls[-1][0] == rec.calls[-1][1]


def test_bad_arguments(tmp_path, opts, url):
    _store(tmp_path / "s", a=np.zeros(3))
    for bad in ("bucket/key.npy", "/tmp/x.npy", "s3://bucket", "s3://bucket/dir/"):
        with pytest.raises(ValueError, match="S3 object URL"):
            from_s3(bad, tmp_path / "t", **opts)
        with pytest.raises(ValueError, match="S3 object URL"):
            to_s3(tmp_path / "s", bad, **opts)
    with pytest.raises(ValueError, match="Unsupported format"):
        from_s3(url("a.npy"), tmp_path / "t", format="xlsx", **opts)
    with pytest.raises(FileNotFoundError):
        from_s3(url("missing.npy"), tmp_path / "t", **opts)
    with pytest.raises(FileNotFoundError):
        to_s3(tmp_path / "nostore", url("a.npy"), **opts)
    with pytest.raises(FileNotFoundError):
        to_s3(tmp_path / "s", "s3://no-such-bucket-numpack/a.npy", **opts)


def test_missing_s3fs_names_the_install_command(tmp_path, monkeypatch, url):
    monkeypatch.setitem(sys.modules, "s3fs", None)  # what an absent package looks like
    with pytest.raises(DependencyError, match="pip install"):
        from_s3(url("a.npy"), tmp_path / "t")
    with pytest.raises(DependencyError, match="pip install"):
        to_s3(tmp_path / "s", url("a.npy"))


def test_csv_and_hdf5_through_their_converters(tmp_path, fs, opts, url):
    h5py = pytest.importorskip("h5py")
    arr = np.arange(60, dtype=np.float64).reshape(20, 3)
    _store(tmp_path / "s", m=arr)
    target = url("m.csv")
    to_s3(tmp_path / "s", target, **opts)
    assert np.array_equal(np.loadtxt(io.StringIO(fs.cat(target).decode()), delimiter=","), arr)
    from_s3(target, tmp_path / "c", array_name="fromcsv", **opts)
    assert np.array_equal(_arrays(tmp_path / "c")["fromcsv"], arr)

    h5 = url("data.h5")
    to_s3(tmp_path / "s", h5, **opts)
    with fs.open(h5, "rb") as f, h5py.File(f, "r") as h:
        assert list(h) == ["m"] and np.array_equal(h["m"][...], arr)
    # HDF5 arrays keep their dataset names.
    from_s3(h5, tmp_path / "h", **opts)
    assert list(_arrays(tmp_path / "h")) == ["m"]
    with pytest.raises(ValueError, match="array_name"):
        from_s3(h5, tmp_path / "h", array_name="x", **opts)


def test_a_name_the_store_refuses_changes_nothing(tmp_path, fs, opts, url):
    _store(tmp_path / "s", keep=np.arange(3))
    target = url("z.npz")
    buf = io.BytesIO()
    np.savez(buf, ok=np.ones(2), **{"a/b": np.zeros(2)})
    fs.pipe(target, buf.getvalue())
    with pytest.raises(numpack.InvalidNameError, match="a/b"):
        from_s3(target, tmp_path / "s", drop_if_exists=True, **opts)
    one = url("one.npy")
    _put_npy(fs, one, np.ones(2))
    with pytest.raises(numpack.InvalidNameError):
        from_s3(one, tmp_path / "s", array_name="x\\y", drop_if_exists=True, **opts)
    assert list(_arrays(tmp_path / "s")) == ["keep"]
