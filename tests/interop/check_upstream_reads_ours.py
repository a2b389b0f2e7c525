"""Checks that NumPack 0.4.5 (the upstream package) reads a store written by numpack.

Usage: python check_upstream_reads_ours.py <dir>
  <dir>/ours.npk        the store, written by `cargo run --example interop_write -- <dir>`
  <dir>/expected/*.npy  the expected logical contents of every array (file stem = name)

For every array: NumPack's load() must equal the expected array exactly (dtype, shape and
bytes, so NaN payloads and -0.0 count too), get_shape() must equal its shape, and
getitem() of a few rows must return those rows. The member list must equal the expected
names. Prints "N passed, M failed" and exits 1 on any failure.

Afterwards NumPack modifies the store (append, row drop, replace, save, whole drop) and
writes the expected result to <dir>/expected_after/*.npy, for
`interop_write --verify <dir>/ours.npk <dir>/expected_after` (numpack reading a store of
its own that upstream changed).
"""
import sys
from pathlib import Path

import numpy as np
import numpack
from numpack import NumPack


def main() -> int:
    root = Path(sys.argv[1])
    store, expected_dir = root / "ours.npk", root / "expected"
    expected = {p.stem: np.load(p) for p in sorted(expected_dir.glob("*.npy"))}
    passed = failed = 0

    def check(ok: bool, what: str) -> None:
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {what}")

    print(f"numpack {numpack.__version__}, numpy {np.__version__}: reading {store}")
    with NumPack(str(store)) as npk:
        members = sorted(npk.get_member_list())
        check(members == sorted(expected), f"member list {members} != expected {sorted(expected)}")
        for name, want in expected.items():
            if not npk.has_array(name):
                check(False, f"{name}: not in the store")
                continue
            try:
                got = npk.load(name)
            except Exception as e:  # noqa: BLE001 - report and go on
                check(False, f"{name}: load raised {type(e).__name__}: {e}")
                continue
            check(got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}")
            check(got.shape == want.shape, f"{name}: load shape {got.shape} != {want.shape}")
            same = (got.dtype == want.dtype and got.shape == want.shape
                    and np.ascontiguousarray(got).tobytes() == want.tobytes())
            if not same and got.shape == want.shape:
                # Say whether it is a NaN-aware value match with different bits.
                try:
                    eq = np.array_equal(got, want, equal_nan=want.dtype.kind in "fc")
                except TypeError:
                    eq = np.array_equal(got, want)
                print(f"  {name}: values equal ignoring bit patterns: {eq}")
                print(f"  got {got!r}\n  expected {want!r}")
            check(same, f"{name}: contents differ")
            shape = tuple(npk.get_shape(name))
            check(shape == want.shape, f"{name}: get_shape {shape} != {want.shape}")
            rows = want.shape[0] if want.ndim else 0
            if rows > 0:  # 0.4.5 aborts the process on getitem([])
                idx = sorted({0, rows // 2, rows - 1})
                try:
                    part = npk.getitem(name, idx)
                    ok = part.dtype == want.dtype and part.tobytes() == want[idx].tobytes()
                    check(ok, f"{name}: getitem({idx}) differs: {part!r} vs {want[idx]!r}")
                except Exception as e:  # noqa: BLE001
                    check(False, f"{name}: getitem({idx}) raised {type(e).__name__}: {e}")

    # Then NumPack changes the store (arrays without deletion bitmaps only: upstream's
    # append after a row drop is broken, §9) and the expected result goes to
    # <dir>/expected_after/, for numpack to check it reads upstream's changes to its store.
    after_dir = root / "expected_after"
    after_dir.mkdir(exist_ok=True)
    for p in after_dir.glob("*.npy"):
        p.unlink()
    after = dict(expected)
    with NumPack(str(store)) as npk:
        more = np.arange(8, dtype=np.float32).reshape(2, 4) - 0.5
        npk.append({"replaced": more})
        after["replaced"] = np.concatenate([after["replaced"], more])
        npk.drop("shape_3d", [0, 2])
        after["shape_3d"] = np.delete(after["shape_3d"], [0, 2], axis=0)
        new = np.full((2, 3), 42.0, dtype=np.float32)
        npk.replace({"dt_float32": new}, [1, 2])
        after["dt_float32"] = after["dt_float32"].copy()
        after["dt_float32"][1:3] = new
        added = np.arange(12, dtype=np.int64).reshape(3, 4)
        npk.save({"added_by_upstream": added})
        after["added_by_upstream"] = added
        npk.drop("renamed")
        del after["renamed"]
        npk.save({"shape_1d": np.ones(4, dtype=np.float64)})
        after["shape_1d"] = np.ones(4, dtype=np.float64)
    for name, arr in after.items():
        np.save(after_dir / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
