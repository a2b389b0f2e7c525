"""Writes stores with NumPack 0.7.0 for numpack to read.

Usage: python upstream07_writes.py <dir>
  writes <dir>/theirs.npk through several open/close sessions (every dtype, 0-d to 5-D,
  empty arrays, appends, row drops, replaces by logical row after a drop, whole-array
  drops, which 0.7.0 keeps listed with zero rows, update() compaction, clone, in-place
  and reshaping overwrites, a non-ASCII name) and <dir>/expected/<name>.npy;
  and <dir>/theirs_seg.npk with arrays split into segment files
  (NUMPACK_SEGMENT_TARGET_BYTES=2048: saves, a top-up append, row drops, a replace across
  a segment boundary, compaction) and <dir>/expected_seg/<name>.npy.
The expected contents are computed with plain NumPy alongside the operations (not read
back through NumPack). Before writing them, a fresh NumPack 0.7.0 instance must read both
stores back as expected, so that a later mismatch on the numpack side is not an upstream
inconsistency. Operations 0.7.0 gets wrong are avoided (append into a partly used bitmap
word after a drop, negative drop indexes after a drop, loading a 0-d array, multi-row
replace of rows that are not physically consecutive: /work/shared/UPSTREAM_API.md §9).
Prints "N passed, M failed" (the self-checks) and exits 1 on any failure.
"""
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import numpack
from numpack import NumPack

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upstream_writes import DTYPES, values  # noqa: E402

passed = failed = 0


def check(ok: bool, what: str) -> None:
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {what}")


def write_theirs(path: Path) -> dict[str, np.ndarray]:
    model: dict[str, np.ndarray] = {}
    with NumPack(str(path), drop_if_exists=True) as npk:
        arrays = {f"dt_{d}": values(d, (9, 3), k) for k, d in enumerate(DTYPES)}
        arrays.update({
            "scalar_f64": np.array(3.25),
            "scalar_c64": np.array(1 - 2j, dtype=np.complex64),
            "shape_1d": values("float64", (17,), 100),
            "shape_3d": values("int32", (5, 3, 2), 101),
            "shape_5d": values("float32", (2, 2, 2, 2, 3), 103),
            "empty_rows": np.zeros((0, 4), dtype=np.float32),
            "empty_1d": np.zeros((0,), dtype=np.int64),
            "appended": values("float32", (10, 4), 104),
            "dropped_rows": values("int64", (150, 2), 105),
            "replaced": values("float64", (12, 3), 106),
            "to_update": values("int16", (70, 2), 107),
            "to_clone": values("complex64", (6, 2), 108),
            "overwritten": values("uint8", (5, 5), 109),
            "in_place": values("float16", (4, 3), 110),
            "whole_drop": values("float32", (3, 3), 111),
            "whole_drop_after_rows": values("uint16", (8,), 112),
            "naïve_名前": values("int32", (3,), 113),
        })
        npk.save(arrays)
        model.update({k: v.copy() for k, v in arrays.items()})

    with NumPack(str(path)) as npk:
        for k in range(3):
            more = values("float32", (7, 4), 200 + k)
            npk.append({"appended": more})
            model["appended"] = np.concatenate([model["appended"], more])
        grow = values("int16", (2, 2), 210)
        npk.save({"empty_then_appended": np.zeros((0, 2), dtype=np.int16)})
        npk.append({"empty_then_appended": grow})
        model["empty_then_appended"] = grow

        npk.drop("dropped_rows", [0, 5, 63, 64, 100, 149])
        m = np.delete(model["dropped_rows"], [0, 5, 63, 64, 100, 149], axis=0)
        npk.drop("dropped_rows", 10)  # logical index after the first drop
        m = np.delete(m, 10, axis=0)
        npk.drop("dropped_rows", slice(20, 25))
        model["dropped_rows"] = np.delete(m, range(20, 25), axis=0)

        new = values("float64", (3, 3), 220)
        npk.replace({"replaced": new}, [4, 5, 6])
        model["replaced"][4:7] = new
        one = values("float64", (1, 3), 221)
        npk.replace({"replaced": one}, 0)
        model["replaced"][0:1] = one
        two = values("float64", (2, 3), 222)
        npk.replace({"replaced": two}, slice(9, 11))
        model["replaced"][9:11] = two

        npk.drop("to_update", [1, 2, 68])
        model["to_update"] = np.delete(model["to_update"], [1, 2, 68], axis=0)
        # Whole-array drops: 0.7.0 keeps the name listed, with every row deleted.
        npk.drop("whole_drop")
        model["whole_drop"] = model["whole_drop"][:0]
        npk.drop("whole_drop_after_rows", [2, 3])
        npk.drop("whole_drop_after_rows")
        model["whole_drop_after_rows"] = model["whole_drop_after_rows"][:0]
        over = values("complex128", (2, 7), 230)
        npk.save({"overwritten": over})
        model["overwritten"] = over
        same = values("float16", (4, 3), 231)
        npk.save({"in_place": same})  # same shape and dtype: overwritten in place
        model["in_place"] = same

    with NumPack(str(path)) as npk:
        npk.update("to_update")
        npk.clone("to_clone", "cloned")
        model["cloned"] = model["to_clone"].copy()
        npk.clone("dropped_rows", "cloned_after_drop")  # a clone is compacted
        model["cloned_after_drop"] = model["dropped_rows"].copy()
        # Logical rows 30 and 31 of dropped_rows are physical 37 and 38 (consecutive).
        r = values("int64", (2, 2), 240)
        npk.replace({"dropped_rows": r}, [30, 31])
        model["dropped_rows"][30:32] = r

    with NumPack(str(path)) as npk:
        # 128 physical rows fill two bitmap words: the appended rows start a new one.
        npk.save({"drop_then_append": values("uint32", (128, 2), 250)})
        npk.drop("drop_then_append", [7, 70])
        model["drop_then_append"] = np.delete(values("uint32", (128, 2), 250), [7, 70], axis=0)
    with NumPack(str(path)) as npk:
        more = values("uint32", (5, 2), 251)
        npk.append({"drop_then_append": more})
        model["drop_then_append"] = np.concatenate([model["drop_then_append"], more])
        more = values("int16", (4, 2), 252)
        npk.append({"to_update": more})  # compacted: no bitmap left
        model["to_update"] = np.concatenate([model["to_update"], more])
    return model


def write_segmented(path: Path) -> dict[str, np.ndarray]:
    model: dict[str, np.ndarray] = {}
    os.environ["NUMPACK_SEGMENT_TARGET_BYTES"] = "2048"
    try:
        with NumPack(str(path), drop_if_exists=True) as npk:
            arrays = {
                "f32": values("float32", (300, 5), 300),      # 20-byte rows: 102 a segment
                "i64_1d": values("int64", (700,), 301),        # 256 a segment
                "c128": values("complex128", (90, 3), 302),    # 48-byte rows: 42 a segment
                "dropped": values("uint8", (1000, 3), 303),    # 682 a segment
                "small": values("int16", (4, 2), 304),         # below the target: plain file
            }
            npk.save(arrays)
            model.update({k: v.copy() for k, v in arrays.items()})
        with NumPack(str(path)) as npk:
            more = values("float32", (150, 5), 305)            # tops up, then a new segment
            npk.append({"f32": more})
            model["f32"] = np.concatenate([model["f32"], more])
            r = values("complex128", (4, 3), 306)
            npk.replace({"c128": r}, [40, 41, 42, 43])         # across a segment boundary
            model["c128"][40:44] = r
            npk.drop("dropped", [0, 681, 682, 999])
            model["dropped"] = np.delete(model["dropped"], [0, 681, 682, 999], axis=0)
            npk.drop("i64_1d", [255, 256, 511])
            model["i64_1d"] = np.delete(model["i64_1d"], [255, 256, 511])
        with NumPack(str(path)) as npk:
            npk.update("i64_1d")
    finally:
        del os.environ["NUMPACK_SEGMENT_TARGET_BYTES"]
    for name in ("f32", "i64_1d", "c128", "dropped"):
        check((path / f"data_{name}.npkseg").is_file(), f"theirs_seg.npk: {name} is not segmented")
    return model


def self_check(path: Path, model: dict[str, np.ndarray]) -> None:
    with NumPack(str(path)) as npk:
        members = sorted(npk.get_member_list())
        check(members == sorted(model), f"{path.name}: member list {members} != {sorted(model)}")
        for name, want in model.items():
            shape = tuple(npk.get_shape(name))
            check(shape == want.shape, f"{path.name}/{name}: get_shape {shape} != {want.shape}")
            if want.ndim == 0:  # 0.7.0 aborts the process on any read of a 0-d array
                continue
            got = npk.load(name)
            check(got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes(),
                  f"{path.name}/{name}: NumPack reads {got.dtype}{got.shape}, model {want.dtype}{want.shape}")


def main() -> int:
    root = Path(sys.argv[1])
    root.mkdir(parents=True, exist_ok=True)
    for store, expected_dir, write in (("theirs.npk", "expected", write_theirs),
                                       ("theirs_seg.npk", "expected_seg", write_segmented)):
        out = root / expected_dir
        if out.exists():
            shutil.rmtree(out)
        model = write(root / store)
        self_check(root / store, model)
        out.mkdir()
        for name, arr in model.items():
            np.save(out / f"{name}.npy", np.array(arr, order="C"), allow_pickle=False)  # keeps 0-d
        print(f"numpack {numpack.__version__} wrote {len(model)} arrays to {root / store}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
