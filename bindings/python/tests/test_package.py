"""Packages (.npkg): numpack.pack / unpack / get_package_info, as upstream NumPack's."""

import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import numpack
from numpack import NumPack
from numpack.io import get_package_info as io_get_package_info
from numpack.io import pack as io_pack
from numpack.io import unpack as io_unpack

from conftest import DTYPES, sample


def make_store(path, dtypes=DTYPES):
    """Every dtype, some rows deleted from a few arrays; returns the expected arrays."""
    want = {}
    with NumPack(path, drop_if_exists=True, warn_no_context=False) as n:
        for i, dt in enumerate(dtypes):
            a = sample(dt, (50, 3), seed=i)
            n.save({f"a_{dt}": a})
            want[f"a_{dt}"] = a
        if "a_float32" in want:
            n.drop("a_float32", [0, 7, -1])
            want["a_float32"] = np.delete(want["a_float32"], [0, 7, 49], axis=0)
        if "a_int64" in want:
            n.drop("a_int64", list(range(0, 50, 2)))
            want["a_int64"] = want["a_int64"][1::2]
        n.save({"empty": np.zeros((0, 4), np.float64)})
        want["empty"] = np.zeros((0, 4), np.float64)
    return want


def check_store(path, want):
    with NumPack(path, warn_no_context=False) as n:
        assert sorted(n.get_member_list()) == sorted(want)
        for k, v in want.items():
            got = n.load(k)
            assert got.dtype == v.dtype and got.shape == v.shape, k
            np.testing.assert_array_equal(got, v)


@pytest.mark.parametrize("compression", [True, False])
def test_round_trip_every_dtype_with_deleted_rows(tmp_path, compression):
    src = tmp_path / "s.npk"
    want = make_store(src)
    pkg = numpack.pack(src, compression=compression)
    assert pkg == tmp_path / "s.npk.npkg" and pkg.is_file()
    out = numpack.unpack(pkg, tmp_path / "restored" / "r.npk")
    assert out == tmp_path / "restored" / "r.npk"
    check_store(out, want)
    # Defaults: x.npk.npkg -> x.npk beside it (the source is still there).
    with pytest.raises(FileExistsError):
        numpack.unpack(pkg)
    (tmp_path / "other").mkdir()
    moved = pkg.rename(tmp_path / "other" / pkg.name)
    assert numpack.unpack(moved) == tmp_path / "other" / "s.npk"
    check_store(tmp_path / "other" / "s.npk", want)
    # The source store is untouched and still opens.
    check_store(src, want)


def test_exports_and_target_names(tmp_path):
    assert numpack.io.pack is numpack.pack is io_pack
    assert numpack.unpack is io_unpack and numpack.get_package_info is io_get_package_info
    assert {"pack", "unpack", "get_package_info"} <= set(numpack.__all__)
    src = tmp_path / "s.npk"
    make_store(src, ["float32"])
    assert numpack.pack(src, tmp_path / "backup") == tmp_path / "backup.npkg"
    assert numpack.pack(src, tmp_path / "b.bin") == tmp_path / "b.bin"
    assert numpack.unpack(tmp_path / "backup.npkg") == tmp_path / "backup.npk"
    assert (tmp_path / "backup.npk" / "metadata.npkm").is_file()


def test_changes_not_yet_checkpointed_are_packed(tmp_path):
    src = tmp_path / "s.npk"
    n = NumPack(src, warn_no_context=False)
    n.open()
    n.save({"x": np.arange(12, dtype=np.int32).reshape(4, 3)})
    n.append({"x": np.full((2, 3), 7, np.int32)})
    n.drop("x", [1])
    expected = n.load("x")
    pkg = numpack.pack(src, tmp_path / "p.npkg")  # while the store is open elsewhere
    n.close()
    check_store(numpack.unpack(pkg, tmp_path / "o.npk"), {"x": expected})


def test_info_matches_the_layout(tmp_path):
    src = tmp_path / "s.npk"
    make_store(src, ["int32", "float64"])
    pkg = numpack.pack(src, tmp_path / "p.npkg")
    info = numpack.get_package_info(pkg)
    assert set(info) == {"version", "compression", "compression_name", "file_count", "files",
                         "total_original_size", "total_compressed_size", "compression_ratio"}
    assert info["version"] == 2 and info["compression"] == 1 and info["compression_name"] == "zstd"
    names = [f["name"] for f in info["files"]]
    assert names == sorted(names)
    assert set(names) == {"metadata.npkm", "data_a_int32.npkd", "data_a_float64.npkd", "data_empty.npkd"}
    assert info["file_count"] == len(names)
    for f in info["files"]:
        assert set(f) == {"name", "original_size", "compressed_size", "actual_size"}
        assert f["original_size"] == (src / f["name"]).stat().st_size
        assert f["actual_size"] == (f["compressed_size"] or f["original_size"])
    assert info["total_original_size"] == sum(f["original_size"] for f in info["files"])
    assert info["total_compressed_size"] == sum(f["actual_size"] for f in info["files"])
    assert info["compression_ratio"] == info["total_compressed_size"] / info["total_original_size"]
    # Header + entries + payloads + footer is the whole file.
    entries = sum(4 + len(f["name"]) + 16 for f in info["files"])
    assert pkg.stat().st_size == 13 + entries + info["total_compressed_size"] + 4

    raw = numpack.get_package_info(numpack.pack(src, tmp_path / "raw.npkg", compression=False))
    assert raw["compression"] == 0 and raw["compression_name"] == "none"
    assert all(f["compressed_size"] == 0 for f in raw["files"])
    assert raw["compression_ratio"] == 1.0


def test_source_errors(tmp_path):
    with pytest.raises(ValueError):
        numpack.pack(tmp_path / "missing.npk")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="metadata.npkm|store"):
        numpack.pack(tmp_path / "plain")
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ValueError):
        numpack.pack(tmp_path / "f")
    with pytest.raises(ValueError):
        numpack.unpack(tmp_path / "missing.npkg")
    with pytest.raises(ValueError):
        numpack.unpack(tmp_path / "plain")
    with pytest.raises(ValueError):
        numpack.get_package_info(tmp_path / "missing.npkg")
    (tmp_path / "junk.npkg").write_bytes(b"NOPE" + bytes(20))
    # "Invalid": the key word NumPack's own tests match for a file that is not a package.
    with pytest.raises(ValueError, match="Invalid package .*not a .npkg package"):
        numpack.get_package_info(tmp_path / "junk.npkg")
    with pytest.raises(ValueError, match="Invalid package .*not a .npkg package"):
        numpack.unpack(tmp_path / "junk.npkg", tmp_path / "o.npk")
    assert not (tmp_path / "o.npk").exists()
    with pytest.raises(TypeError):
        numpack.unpack(tmp_path / "junk.npkg", tmp_path / "o.npk", progress=42)


def _entries(data):
    """(name, payload offset, payload length) of each entry of a package's bytes."""
    count = struct.unpack_from("<I", data, 9)[0]
    pos, out = 13, []
    for _ in range(count):
        (n,) = struct.unpack_from("<I", data, pos)
        name = data[pos + 4:pos + 4 + n].decode()
        orig, comp = struct.unpack_from("<QQ", data, pos + 4 + n)
        at = pos + 4 + n + 16
        size = comp or orig
        out.append((name, at, size))
        pos = at + size
    return out


def test_corrupt_packages(tmp_path):
    src = tmp_path / "s.npk"
    want = make_store(src, ["int32", "float64"])
    with NumPack(src, warn_no_context=False) as n:
        n.save({"z": np.arange(30000, dtype=np.int32) % 7})  # compresses
    want["z"] = np.arange(30000, dtype=np.int32) % 7
    pkg = numpack.pack(src, tmp_path / "p.npkg")
    data = bytearray(pkg.read_bytes())
    name, at, size = next(e for e in _entries(data) if e[0] == "data_z.npkd")
    assert size < 30000 * 4
    data[at + size // 2] ^= 0x20
    bad = tmp_path / "bad.npkg"
    bad.write_bytes(bytes(data))
    # A damaged compressed file is named, with or without verify.
    for verify in (True, False):
        with pytest.raises(RuntimeError, match="data_z.npkd") as e:
            numpack.unpack(bad, tmp_path / "o.npk", verify=verify)
        assert isinstance(e.value, numpack.CorruptError) and isinstance(e.value, ValueError)
        assert not (tmp_path / "o.npk").exists()

    # Raw payloads: only the footer (CRC32 of CRC32s) tells, under verify.
    raw = numpack.pack(src, tmp_path / "raw.npkg", compression=False)
    data = bytearray(raw.read_bytes())
    name, at, size = next(e for e in _entries(data) if e[0] == "data_a_float64.npkd")
    data[at + 5] ^= 0x01
    bad.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        numpack.unpack(bad, tmp_path / "o.npk")
    assert not (tmp_path / "o.npk").exists()
    numpack.unpack(bad, tmp_path / "o.npk", verify=False)  # NumPack's verify=False
    with NumPack(tmp_path / "o.npk", warn_no_context=False) as n:
        assert not np.array_equal(n.load("a_float64"), want["a_float64"])

    # Truncated, and a version from the future.
    good = raw.read_bytes()
    bad.write_bytes(good[:-9])
    with pytest.raises(ValueError, match="truncated"):
        numpack.get_package_info(bad)
    bad.write_bytes(good[:4] + struct.pack("<I", 3) + good[8:])
    with pytest.raises(ValueError, match="version 3"):
        numpack.get_package_info(bad)


def hostile(path, name, payload=b"evil"):
    body = struct.pack("<I", len(name)) + name + struct.pack("<QQ", len(payload), 0) + payload
    crc = zlib.crc32(struct.pack("<I", zlib.crc32(payload)))
    path.write_bytes(b"NPKG" + struct.pack("<IBI", 2, 0, 1) + body + struct.pack("<I", crc))


@pytest.mark.parametrize("name", [b"../escape.npkd", b"/tmp/abs.npkd", b"a/data_x.npkd", b"..", b"x\\..\\y"])
def test_entries_escaping_the_target_are_refused(tmp_path, name):
    pkg = tmp_path / "evil.npkg"
    hostile(pkg, name)
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match="escape"):
        numpack.unpack(pkg, tmp_path / "sub" / "out.npk", overwrite=True)
    with pytest.raises(ValueError, match="escape"):
        numpack.get_package_info(pkg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.npkg", "sub"]
    assert list((tmp_path / "sub").iterdir()) == []


def test_overwrite_rules(tmp_path):
    src = tmp_path / "s.npk"
    want = make_store(src, ["int16"])
    pkg = numpack.pack(src, tmp_path / "p.npkg")
    with pytest.raises(FileExistsError) as e:
        numpack.pack(src, pkg)
    assert isinstance(e.value, numpack.AlreadyExistsError)
    numpack.pack(src, pkg, compression=False, overwrite=True)
    assert numpack.get_package_info(pkg)["compression"] == 0

    out = numpack.unpack(pkg, tmp_path / "o.npk")
    with pytest.raises(FileExistsError):
        numpack.unpack(pkg, out)
    with NumPack(out, warn_no_context=False) as n:
        n.save({"extra": np.ones(3)})
    numpack.unpack(pkg, out, overwrite=True)
    check_store(out, want)

    # A failed unpack never removes the store it would replace.
    data = bytearray(pkg.read_bytes())
    name, at, size = next(e for e in _entries(data) if e[0].startswith("data_"))
    data[at] ^= 0xFF
    (tmp_path / "bad.npkg").write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="checksum"):
        numpack.unpack(tmp_path / "bad.npkg", out, overwrite=True)
    check_store(out, want)
    # A directory that is not a store is never replaced.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match="not a numpack store"):
        numpack.unpack(pkg, tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_progress_and_cancel(tmp_path):
    src = tmp_path / "s.npk"
    want = make_store(src, ["float64", "uint8"])
    calls = []
    pkg = numpack.pack(src, tmp_path / "p.npkg", progress=lambda d, t: calls.append((d, t)))
    total = numpack.get_package_info(pkg)["total_original_size"]
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))

    seen = []
    with pytest.raises(numpack.CancelledError, match="cancelled"):
        numpack.pack(src, tmp_path / "q.npkg", progress=lambda d, t: seen.append(d) or len(seen) < 2)
    assert len(seen) == 2 and not (tmp_path / "q.npkg").exists()
    with pytest.raises(numpack.CancelledError):
        numpack.unpack(pkg, tmp_path / "o.npk", progress=lambda d, t: d == 0)
    assert not (tmp_path / "o.npk").exists()

    # An exception in the callback cancels and comes out unchanged.
    class Stop(Exception):
        pass

    def boom(done, total):
        raise Stop("from the callback")

    with pytest.raises(Stop):
        numpack.unpack(pkg, tmp_path / "o.npk", progress=boom)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.npkg", "s.npk"]
    # Cancelling an overwrite keeps the old store.
    out = numpack.unpack(pkg, tmp_path / "o.npk")
    with pytest.raises(numpack.CancelledError):
        numpack.unpack(pkg, out, overwrite=True, progress=lambda d, t: d < t)
    check_store(out, want)


NPKG_FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "npkg"


@pytest.mark.parametrize("name,flag", [("theirs-zstd.npkg", 1), ("theirs-zlib.npkg", 1), ("theirs-raw.npkg", 0)])
def test_packages_written_by_numpack(tmp_path, name, flag):
    """Packages NumPack 0.5.0 wrote (tests/fixtures/npkg/README.md): zstd, its zlib
    fallback, raw."""
    pkg = tmp_path / name
    shutil.copy(NPKG_FIXTURES / name, pkg)
    info = numpack.get_package_info(pkg)
    assert info["version"] == 2 and info["compression"] == flag
    assert info["compression_name"] == ("zstd" if flag else "none")
    assert [f["name"] for f in info["files"]] == sorted(f["name"] for f in info["files"])
    want = {p.stem: np.load(p) for p in (NPKG_FIXTURES / "expected").glob("*.npy")}
    assert len(want) == 6
    out = numpack.unpack(pkg)
    assert out == tmp_path / name.replace(".npkg", ".npk")
    check_store(out, want)
