"""Checks that NumPack 0.7.0 reads a store written by numpack, then changes it.

Usage: python check07_reads_ours.py <dir>
  <dir>/ours.npk        the store, written by `cargo run --example interop_write -- <dir>`
  <dir>/expected/*.npy  the expected logical contents of every array (file stem = name)

For every array, NumPack 0.7.0 must give exactly the expected dtype, shape and bytes
(NaN payloads and -0.0 count) through load(), through a lazy load indexed with the list
of all rows, through stream_load() and through getitem() of a few rows and of no rows;
get_shape() must be the shape and the member list the expected names.

Then NumPack 0.7.0 changes the store over three sessions (append, replace by logical row
after a drop, row drops, whole-array drops, which 0.7.0 keeps listed with zero rows,
update() compaction of numpack's deletion bitmap then an append, in-place and reshaping
overwrites, clone, new arrays including a 0-d one) and writes the expected result to
<dir>/expected_after/*.npy for `interop_write --verify <dir>/ours.npk <dir>/expected_after`.
Before that, a fresh NumPack 0.7.0 instance must itself read back the expected result
(so that a later mismatch is numpack's). Operations 0.7.0 gets wrong are avoided
(append into a partly used bitmap word after a drop, negative drop indexes after a drop,
loading a 0-d array: /work/shared/UPSTREAM_API.md §9; multi-row replace of rows that are
not physically consecutive, which writes garbage). Prints "N passed, M failed" and
exits 1 on any failure.
"""
import sys
from pathlib import Path

import numpy as np
import numpack
from numpack import NumPack

passed = failed = 0


def check(ok: bool, what: str) -> None:
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {what}")


def same(got, want: np.ndarray) -> bool:
    got = np.asarray(got)
    return (got.dtype == want.dtype and got.shape == want.shape
            and np.ascontiguousarray(got).tobytes() == want.tobytes())


def describe(name: str, how: str, got, want: np.ndarray) -> str:
    got = np.asarray(got)
    return f"{name}: {how} gives {got.dtype}{got.shape}, expected {want.dtype}{want.shape}" + \
        ("" if got.shape != want.shape else f"\n  got {got!r}\n  expected {want!r}")


def read_all(npk: NumPack, name: str, want: np.ndarray) -> None:
    """Every read path of NumPack 0.7.0 against the expected array."""
    try:
        got = npk.load(name)
        check(same(got, want), describe(name, "load()", got, want))
    except Exception as e:  # noqa: BLE001 - report and go on
        check(False, f"{name}: load raised {type(e).__name__}: {e}")
    shape = tuple(npk.get_shape(name))
    check(shape == want.shape, f"{name}: get_shape {shape} != {want.shape}")
    if want.ndim == 0:  # 0.7.0 aborts the process on any read of a 0-d array
        return
    rows = want.shape[0]
    lazy = npk.load(name, lazy=True)
    check(tuple(lazy.shape) == want.shape, f"{name}: lazy shape {lazy.shape} != {want.shape}")
    if rows > 0:  # lazy[[]] raises in 0.7.0 (§9); the list form hides deleted rows
        got = lazy[list(range(rows))]
        check(same(got, want), describe(name, "lazy[all rows]", got, want))
    batches = list(npk.stream_load(name, buffer_size=4))
    got = np.concatenate(batches) if batches else want[:0]
    check(same(got, want) and all(len(b) <= 4 for b in batches),
          describe(name, "stream_load(buffer_size=4)", got, want))
    for idx in ([], sorted({0, rows // 2, rows - 1}) if rows else None, [rows - 1, 0] if rows else None):
        if idx is None:
            continue
        try:
            got = npk.getitem(name, idx)
            check(same(got, want[idx]), describe(name, f"getitem({idx})", got, want[idx]))
        except Exception as e:  # noqa: BLE001
            check(False, f"{name}: getitem({idx}) raised {type(e).__name__}: {e}")


def change(store: Path, model: dict[str, np.ndarray]) -> None:
    """NumPack 0.7.0 changes numpack's store; `model` follows along."""
    with NumPack(str(store)) as npk:
        more = np.arange(8, dtype=np.float32).reshape(2, 4) - 0.5
        npk.append({"replaced": more})
        model["replaced"] = np.concatenate([model["replaced"], more])
        npk.drop("shape_3d", [0, 2])
        model["shape_3d"] = np.delete(model["shape_3d"], [0, 2], axis=0)
        # Rows dropped by numpack first: indexes are logical.
        npk.drop("deleted_only", [0, 5])
        model["deleted_only"] = np.delete(model["deleted_only"], [0, 5])
        new = np.full((2, 3), 42.0, dtype=np.float32)
        npk.replace({"dt_float32": new}, [1, 2])
        model["dt_float32"][1:3] = new
        # numpack dropped physical rows 0, 4, 5 of 12: logical 0 is physical 1, logical
        # 4 and 5 are physical 7 and 8. 0.7.0 corrupts multi-row replaces whose physical
        # rows are not consecutive, so those are left out.
        one = np.array([[-1.0, -2.0]])
        npk.replace({"replaced_after_delete": one}, 0)
        model["replaced_after_delete"][0] = one[0]
        two = np.array([[7.5, 8.5], [9.5, -0.0]])
        npk.replace({"replaced_after_delete": two}, [4, 5])
        model["replaced_after_delete"][[4, 5]] = two
        # Whole-array drops: 0.7.0 keeps the name, with every row deleted.
        npk.drop("renamed")
        model["renamed"] = model["renamed"][:0]
        npk.drop("renamed_deleted")
        model["renamed_deleted"] = model["renamed_deleted"][:0]
    with NumPack(str(store)) as npk:
        npk.update("deleted")  # numpack's deletion bitmap, compacted by NumPack
        npk.clone("deleted_only", "cloned_by_07")
        model["cloned_by_07"] = model["deleted_only"].copy()
        added = np.arange(12, dtype=np.int64).reshape(3, 4)
        npk.save({"added_by_07": added, "scalar_by_07": np.array(-2.5)})
        model["added_by_07"] = added
        model["scalar_by_07"] = np.array(-2.5)
        npk.save({"shape_1d": np.ones(4, dtype=np.float64)})  # another shape
        model["shape_1d"] = np.ones(4, dtype=np.float64)
        same_shape = (np.arange(21, dtype=np.int8) - 10).reshape(7, 3)
        npk.save({"dt_int8": same_shape})  # same shape and dtype: overwritten in place
        model["dt_int8"] = same_shape
    with NumPack(str(store)) as npk:
        more = np.full((3, 3), -9, dtype=np.int64)
        npk.append({"deleted": more})  # compacted: no bitmap left
        model["deleted"] = np.concatenate([model["deleted"], more])


def main() -> int:
    root = Path(sys.argv[1])
    store, expected_dir = root / "ours.npk", root / "expected"
    expected = {p.stem: np.load(p) for p in sorted(expected_dir.glob("*.npy"))}
    print(f"numpack {numpack.__version__}, numpy {np.__version__}: reading {store}")
    with NumPack(str(store)) as npk:
        members = sorted(npk.get_member_list())
        check(members == sorted(expected), f"member list {members} != expected {sorted(expected)}")
        for name, want in expected.items():
            if npk.has_array(name):
                read_all(npk, name, want)
            else:
                check(False, f"{name}: not in the store")

    model = {k: v.copy() for k, v in expected.items()}
    try:
        change(store, model)
    except Exception as e:  # noqa: BLE001
        check(False, f"changing the store raised {type(e).__name__}: {e}")
    else:
        with NumPack(str(store)) as npk:
            members = sorted(npk.get_member_list())
            check(members == sorted(model), f"after changes: member list {members} != {sorted(model)}")
            for name, want in model.items():
                if want.ndim == 0:
                    shape = tuple(npk.get_shape(name))
                    check(shape == (), f"after changes: {name}: get_shape {shape} != ()")
                    continue
                got = npk.load(name)
                check(same(got, want), describe(name, "after changes: load()", got, want))
        after_dir = root / "expected_after"
        after_dir.mkdir(exist_ok=True)
        for p in after_dir.glob("*.npy"):
            p.unlink()
        for name, arr in model.items():
            np.save(after_dir / f"{name}.npy", np.array(arr, order="C"), allow_pickle=False)  # keeps 0-d
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
