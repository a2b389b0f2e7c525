"""The upstream side of the .npkg interop tests (tests/interop/npkg.sh).

Runs NumPack's own package code: `numpack/io/package_io.py` of NumPack 0.5.0, the first
release with pack/unpack (pure Python, loaded from the 0.5.0 wheel by npkg.sh, because
that wheel's native part needs glibc >= 2.38), with stores read and written by NumPack
0.4.5 (same store format). The module is loaded twice: with `zstandard` (zstd payloads)
and with `zstandard` hidden (NumPack's zlib fallback, still flagged zstd).

Usage: python npkg_upstream.py <package_io.py> <command> ...
  pack <store> <dir>              packs <store> three ways: <dir>/theirs-zstd.npkg,
                                  theirs-zlib.npkg, theirs-raw.npkg
  check <package> <expected_dir> [<info.json>]
                                  upstream get_package_info and unpack(verify=True) of a
                                  package (ours); NumPack 0.4.5 must read exactly the
                                  .npy files of <expected_dir>; with <info.json> (what
                                  `npkg_tool info` printed) the two descriptions must agree
  fixtures <dir>                  writes tests/fixtures/npkg: a small store written by
                                  NumPack 0.4.5, packed three ways, and expected/*.npy
Prints "N passed, M failed"; exits 1 on any failure.
"""
import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import numpack
from numpack import NumPack

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upstream_writes import values  # noqa: E402

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {what}")


def load_package_io(path, with_zstd):
    """NumPack's package_io module, with or without `zstandard` importable."""
    hidden = "zstandard" in sys.modules and sys.modules["zstandard"] is None
    saved = sys.modules.get("zstandard")
    if not with_zstd:
        sys.modules["zstandard"] = None  # makes `import zstandard` raise ImportError
    try:
        name = "upstream_package_io_" + ("zstd" if with_zstd else "zlib")
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        if not with_zstd:
            if saved is None and not hidden:
                sys.modules.pop("zstandard", None)
            else:
                sys.modules["zstandard"] = saved
    if with_zstd and not mod._HAS_ZSTD:
        raise SystemExit("npkg_upstream.py: the oracle venv lacks `zstandard` (pip install zstandard)")
    if not with_zstd and mod._HAS_ZSTD:
        raise SystemExit("npkg_upstream.py: could not hide `zstandard` from package_io.py")
    return mod


def pack_three(pio_zstd, pio_zlib, store, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    made = {
        "zstd": pio_zstd.pack(store, out_dir / "theirs-zstd.npkg", compression=True, overwrite=True),
        "zlib": pio_zlib.pack(store, out_dir / "theirs-zlib.npkg", compression=True, overwrite=True),
        "raw": pio_zstd.pack(store, out_dir / "theirs-raw.npkg", compression=False, overwrite=True),
    }
    for kind, pkg in made.items():
        info = pio_zstd.get_package_info(pkg)
        check(info["version"] == 2 and info["compression"] == (0 if kind == "raw" else 1), f"{pkg}: {info}")
        if kind != "raw":
            head = [f for f in info["files"] if f["compressed_size"] > 0]
            check(bool(head), f"{pkg}: nothing was compressed")
    # The zlib one really holds zlib streams (0x78 ...), the zstd one zstd frames.
    for kind, magic in (("zstd", b"\x28\xb5\x2f\xfd"), ("zlib", b"\x78")):
        raw = made[kind].read_bytes()
        n = int.from_bytes(raw[13:17], "little")
        off = 17 + n
        comp = int.from_bytes(raw[off + 8:off + 16], "little")
        if comp:
            check(raw[off + 16:off + 16 + len(magic)] == magic, f"{made[kind]}: first payload is not {kind}")
    return made


def compare_store(store, expected_dir, label):
    expected = {p.stem: np.load(p) for p in sorted(Path(expected_dir).glob("*.npy"))}
    with NumPack(str(store)) as npk:
        check(sorted(npk.get_member_list()) == sorted(expected), f"{label}: members {sorted(npk.get_member_list())}")
        for name, want in expected.items():
            got = npk.load(name)
            ok = got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()
            check(ok, f"{label}: {name} reads {got.dtype}{got.shape}, expected {want.dtype}{want.shape}")


def cmd_pack(pio_zstd, pio_zlib, store, out_dir):
    pack_three(pio_zstd, pio_zlib, Path(store), Path(out_dir))


def cmd_check(pio_zstd, pio_zlib, pkg, expected_dir, info_json=None):
    pkg = Path(pkg)
    info = pio_zstd.get_package_info(pkg)
    check(info["version"] == 2, f"{pkg}: version {info['version']}")
    if info_json:
        ours = json.loads(Path(info_json).read_text())
        check(info["compression"] == ours["compression"], f"{pkg}: compression {info['compression']} vs ours {ours['compression']}")
        theirs_files = [(f["name"], f["original_size"], f["compressed_size"]) for f in info["files"]]
        our_files = [(f["name"], f["original_size"], f["stored_size"]) for f in ours["files"]]
        check(theirs_files == our_files, f"{pkg}: files {theirs_files} vs ours {our_files}")
        check(info["total_original_size"] == ours["total_original_size"], f"{pkg}: total_original_size")
        check(info["total_compressed_size"] == ours["total_stored_size"], f"{pkg}: total_compressed_size")
    readers = [("with zstandard", pio_zstd)]
    if info["compression"] == 0:
        readers.append(("zlib fallback", pio_zlib))  # our zstd payloads need zstandard upstream
    for label, pio in readers:
        with tempfile.TemporaryDirectory() as tmp:
            out = pio.unpack(pkg, Path(tmp) / "x.npk", verify=True)
            compare_store(out, expected_dir, f"{pkg.name} unpacked by NumPack ({label})")


def cmd_fixtures(pio_zstd, pio_zlib, out_dir):
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "expected").mkdir(parents=True)
    model = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "fixture.npk"
        with NumPack(str(store), drop_if_exists=True) as npk:
            arrays = {
                "f32": values("float32", (20, 3), 1),
                "i64": values("int64", (70,), 2),
                "flags": values("bool", (9, 2), 3),
                "c128": values("complex128", (4, 2), 4),
                "u16_3d": values("uint16", (6, 2, 2), 5),
                "ramp": (np.arange(4000, dtype=np.int32) // 3).reshape(1000, 4),  # compresses
            }
            npk.save(arrays)
            model.update(arrays)
        with NumPack(str(store)) as npk:
            npk.drop("i64", [0, 5, 64, 69])
            model["i64"] = np.delete(model["i64"], [0, 5, 64, 69])
            npk.drop("ramp", list(range(0, 1000, 10)))
            model["ramp"] = np.delete(model["ramp"], range(0, 1000, 10), axis=0)
        compare_store_model(store, model)
        pack_three(pio_zstd, pio_zlib, store, out_dir)
    for name, arr in model.items():
        np.save(out_dir / "expected" / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)


def compare_store_model(store, model):
    with NumPack(str(store)) as npk:
        for name, want in model.items():
            got = npk.load(name)
            check(got.dtype == want.dtype and got.tobytes() == want.tobytes(), f"fixture {name}: NumPack disagrees with its model")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    pio_path, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    pio_zstd = load_package_io(pio_path, True)
    pio_zlib = load_package_io(pio_path, False)
    commands = {"pack": cmd_pack, "check": cmd_check, "fixtures": cmd_fixtures}
    if cmd not in commands:
        print(__doc__)
        return 2
    print(f"NumPack {numpack.__version__} stores, package_io.py of {pio_path}: {cmd} {' '.join(args)}")
    commands[cmd](pio_zstd, pio_zlib, *args)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
