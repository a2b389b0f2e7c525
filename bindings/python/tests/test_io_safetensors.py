"""numpack.io safetensors conversions, cross-checked both ways with the reference
``safetensors`` package (safetensors.numpy.save_file / load_file)."""

import os

import numpy as np
import pytest

import numpack
from numpack.io import (from_safetensors_file, from_tensor_dict, get_safetensors_metadata, iter_safetensors,
                        to_safetensors_file, to_tensor_dict)

from conftest import DTYPES, sample

st = pytest.importorskip("safetensors.numpy")

MAPPED = [d for d in DTYPES if d != "complex128"]


def _tensors():
    shapes = [(7,), (5, 3), (4, 2, 3), (0, 4), (3, 2, 2, 2)]
    return {f"layer.{i}.{dt}": sample(dt, shapes[i % len(shapes)], seed=i) for i, dt in enumerate(MAPPED)}


def _load(path):
    with numpack.NumPack(path, warn_no_context=False) as n:
        return {k: n.load(k) for k in n.get_member_list()}


def test_files_written_by_safetensors_import_exactly(tmp_path):
    tensors = _tensors()
    f = tmp_path / "ref.safetensors"
    st.save_file(tensors, str(f), metadata={"format": "np"})
    assert from_safetensors_file(f, tmp_path / "s.npk") is None
    got = _load(tmp_path / "s.npk")
    assert sorted(got) == sorted(tensors)
    for k, a in tensors.items():
        assert got[k].dtype == a.dtype and got[k].shape == a.shape, k
        np.testing.assert_array_equal(got[k], a)


def test_files_we_write_load_in_safetensors(tmp_path):
    tensors = _tensors()
    with numpack.NumPack(tmp_path / "s.npk", warn_no_context=False) as n:
        for k, a in tensors.items():
            n.save({k: a})
        n.save({"rows": np.arange(10, dtype=np.int32)})
        n.drop("rows", [0, 5])
    f = tmp_path / "out.safetensors"
    to_safetensors_file(tmp_path / "s.npk", f, metadata={"who": "numpack", "k": "v"})
    back = st.load_file(str(f))
    for k, a in tensors.items():
        assert back[k].dtype == a.dtype and back[k].shape == a.shape, k
        np.testing.assert_array_equal(back[k], a)
    np.testing.assert_array_equal(back["rows"], [1, 2, 3, 4, 6, 7, 8, 9])  # deleted rows left out
    from safetensors import safe_open
    with safe_open(str(f), framework="np") as sf:
        assert sf.metadata() == {"who": "numpack", "k": "v"}
    # Replaced when it exists (as save_file does), and selectable.
    to_safetensors_file(tmp_path / "s.npk", f, array_names=["rows"])
    assert list(st.load_file(str(f))) == ["rows"]


def test_metadata_and_iteration_without_loading(tmp_path):
    tensors = _tensors()
    f = tmp_path / "ref.safetensors"
    st.save_file(tensors, str(f), metadata={"format": "pt"})
    info = get_safetensors_metadata(f)
    assert info["metadata"] == {"format": "pt"}
    assert info["tensors"]["layer.3.uint32"] == {"dtype": "uint32", "shape": (0, 4)}
    assert info["tensors"]["layer.1.uint8"] == {"dtype": "uint8", "shape": (5, 3)}
    seen = dict(iter_safetensors(f))
    assert sorted(seen) == sorted(tensors)
    for k, a in tensors.items():
        np.testing.assert_array_equal(seen[k], a)
        assert seen[k].dtype == a.dtype
    assert [k for k, _ in iter_safetensors(f, keys=["layer.2.uint16"])] == ["layer.2.uint16"]
    with pytest.raises(KeyError):
        list(iter_safetensors(f, keys=["nope"]))


def test_selection_drop_and_return_npk_obj(tmp_path):
    f = tmp_path / "ref.safetensors"
    st.save_file({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.int64)}, str(f))
    out = tmp_path / "s.npk"
    from_tensor_dict({"old": np.zeros(2)}, out)
    npk = from_safetensors_file(f, out, keys=["b"], return_npk_obj=True)
    try:
        assert sorted(npk.get_member_list()) == ["b", "old"]
    finally:
        npk.close()
    from_safetensors_file(f, out, drop_if_exists=True)
    assert sorted(_load(out)) == ["a", "b"]
    with pytest.raises(KeyError):
        from_safetensors_file(f, out, keys=["missing"])
    with pytest.raises(FileNotFoundError):
        from_safetensors_file(tmp_path / "none.safetensors", out)


def test_tensor_dicts_round_trip_through_the_reference_package(tmp_path):
    tensors = _tensors()
    out = tmp_path / "s.npk"
    npk = from_tensor_dict(st.load(st.save(tensors)), out, return_npk_obj=True)
    npk.close()
    d = to_tensor_dict(out)
    assert sorted(d) == sorted(tensors)
    assert all(a.flags["C_CONTIGUOUS"] for a in d.values())
    back = st.load(st.save(d))
    for k, a in tensors.items():
        np.testing.assert_array_equal(back[k], a)
    assert list(to_tensor_dict(out, array_names=["layer.0.bool"])) == ["layer.0.bool"]


def test_unsupported_dtypes_names_and_hostile_files(tmp_path):
    out = tmp_path / "s.npk"
    with numpack.NumPack(out, warn_no_context=False) as n:
        n.save({"z": np.ones(2, np.complex128)})
    with pytest.raises(numpack.UnsupportedError, match="complex128"):
        to_safetensors_file(out, tmp_path / "z.safetensors")
    assert not (tmp_path / "z.safetensors").exists()

    # BF16 (written by hand: NumPy has no bfloat16), a '/' key, a damaged file.
    def write(name, header, data):
        h = header.encode()
        h += b" " * (-len(h) % 8)
        p = tmp_path / name
        p.write_bytes(len(h).to_bytes(8, "little") + h + data)
        return p

    bf = write("bf.safetensors", '{"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}', b"\0" * 4)
    assert get_safetensors_metadata(bf)["tensors"]["w"] == {"dtype": "BF16", "shape": (2,)}
    with pytest.raises(numpack.UnsupportedError, match="BF16"):
        from_safetensors_file(bf, out)
    slash = write("sl.safetensors", '{"a/b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\1")
    with pytest.raises(numpack.InvalidNameError, match="a/b"):
        from_safetensors_file(slash, out)
    bad = write("bad.safetensors", '{"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', b"\0" * 8)
    with pytest.raises(numpack.CorruptError):
        from_safetensors_file(bad, out)
    with pytest.raises(numpack.CorruptError):
        get_safetensors_metadata(bad)
    with pytest.raises(Exception):
        st.load_file(str(bad))  # the reference package refuses it too
    assert _load(out).keys() == {"z"}


def test_progress_and_cancellation(tmp_path):
    big = {"big": np.arange(3 << 20, dtype=np.float32).reshape(-1, 1024), "small": np.ones(3)}
    out = tmp_path / "s.npk"
    from_tensor_dict(big, out)
    f = tmp_path / "b.safetensors"
    calls = []
    to_safetensors_file(out, f, progress=lambda d, t: calls.append((d, t)))
    total = big["big"].nbytes + big["small"].nbytes
    assert calls[0] == (0, total) and calls[-1] == (total, total) and len(calls) >= 4
    before = f.read_bytes()
    with pytest.raises(numpack.CancelledError):
        to_safetensors_file(out, f, array_names=["small"], progress=lambda d, t: d == 0)
    assert f.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["b.safetensors", "s.npk"]
    out2 = tmp_path / "t.npk"
    with pytest.raises(numpack.CancelledError):
        from_safetensors_file(f, out2, progress=lambda d, t: d == 0)
    assert _load(out2) == {}

    class Boom(Exception):
        pass

    def boom(d, t):
        if d:
            raise Boom()
        return True

    with pytest.raises(Boom):
        from_safetensors_file(f, out2, progress=boom)
    assert _load(out2) == {}
    seen = []
    from_safetensors_file(f, out2, progress=lambda d, t: seen.append(d))
    assert seen[-1] == total
    np.testing.assert_array_equal(_load(out2)["big"], big["big"])
    with pytest.raises(numpack.CancelledError):
        to_tensor_dict(out2, progress=lambda d, t: False)
    with pytest.raises(numpack.CancelledError):
        from_tensor_dict({"x": np.ones(2)}, tmp_path / "u.npk", progress=lambda d, t: False)
