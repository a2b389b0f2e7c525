"""Writes a store with NumPack 0.4.5 (the upstream package) for numpack to read.

Usage: python upstream_writes.py <dir>
  writes <dir>/theirs.npk (through several open/close sessions: save, append, row drops,
  in-place replace, whole-array drop, compaction with update(), clone, overwrite) and
  <dir>/expected/<name>.npy, the expected logical contents of every array, computed with
  plain NumPy alongside the operations (not read back through NumPack).

Before writing the .npy files it reopens the store with NumPack and checks NumPack itself
reads back the expected contents, so that a mismatch found later on the numpack side is
not an upstream inconsistency. Operations known to be broken upstream are avoided
(non-contiguous replace, append into the last bitmap word after a drop, update() of an
array loaded in the same session): see /work/shared/UPSTREAM_API.md §9.
"""
import shutil
import sys
from pathlib import Path

import numpy as np
import numpack
from numpack import NumPack

DTYPES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
          "float16", "float32", "float64", "complex64", "complex128"]


def values(dtype: str, shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    n = int(np.prod(shape))
    if dt.kind == "b":
        a = rng.integers(0, 2, n).astype(bool)
    elif dt.kind in "ui":
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
        a[: min(n, 2)] = [info.min, info.max][: min(n, 2)]
    elif dt.kind == "f":
        a = (rng.standard_normal(n) * 1000).astype(dt)
        special = np.array([np.nan, np.inf, -np.inf, -0.0, np.finfo(dt).max, np.finfo(dt).tiny], dtype=dt)
        a[: min(n, len(special))] = special[: min(n, len(special))]
    else:
        a = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dt)
        if n >= 2:
            a[0] = complex(np.nan, 1.0)
            a[1] = complex(-0.0, np.inf)
    return a.reshape(shape)


def main() -> int:
    root = Path(sys.argv[1])
    path, expected_dir = root / "theirs.npk", root / "expected"
    for p in (path, expected_dir):
        if p.exists():
            shutil.rmtree(p)
    expected_dir.mkdir(parents=True)
    model: dict[str, np.ndarray] = {}

    # Session 1: every dtype, shapes, empty arrays.
    with NumPack(str(path), drop_if_exists=True) as npk:
        arrays = {f"dt_{d}": values(d, (9, 3), k) for k, d in enumerate(DTYPES)}
        arrays.update({
            "shape_1d": values("float64", (17,), 100),
            "shape_3d": values("int32", (5, 3, 2), 101),
            "shape_4d": values("uint16", (4, 2, 3, 2), 102),
            "shape_5d": values("float32", (2, 2, 2, 2, 3), 103),
            "empty_rows": np.zeros((0, 4), dtype=np.float32),
            "empty_1d": np.zeros((0,), dtype=np.int64),
            "appended": values("float32", (10, 4), 104),
            "dropped_rows": values("int64", (150, 2), 105),
            "replaced": values("float64", (12, 3), 106),
            "to_update": values("int16", (70, 2), 107),
            "to_clone": values("complex64", (6, 2), 108),
            "overwritten": values("uint8", (5, 5), 109),
            "whole_drop": values("float32", (3, 3), 110),
        })
        npk.save(arrays)
        model.update(arrays)

    # Session 2: appends, row drops, replace.
    with NumPack(str(path)) as npk:
        for k in range(3):
            more = values("float32", (7, 4), 200 + k)
            npk.append({"appended": more})
            model["appended"] = np.concatenate([model["appended"], more])
        grow = values("int16", (2, 2), 210)
        npk.save({"empty_then_appended": np.zeros((0, 2), dtype=np.int16)})
        npk.append({"empty_then_appended": grow})
        model["empty_then_appended"] = grow

        drop = [0, 5, 63, 64, 100, 149]
        npk.drop("dropped_rows", drop)
        m = np.delete(model["dropped_rows"], drop, axis=0)
        npk.drop("dropped_rows", 10)          # logical index after the first drop
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
        npk.drop("whole_drop")
        del model["whole_drop"]
        over = values("complex128", (2, 7), 230)
        npk.save({"overwritten": over})
        model["overwritten"] = over

    # Session 3: compaction (no load of that array in this session), clone, replace
    # after a drop (logical rows), append after a drop into a fresh bitmap word.
    with NumPack(str(path)) as npk:
        npk.update("to_update")
        npk.clone("to_clone", "cloned")
        model["cloned"] = model["to_clone"].copy()
        r = values("int64", (2, 2), 240)
        npk.replace({"dropped_rows": r}, [30, 31])
        model["dropped_rows"][30:32] = r

    with NumPack(str(path)) as npk:
        # 128 physical rows, two full bitmap words: the appended rows start a new word.
        npk.save({"drop_then_append": values("uint32", (128, 2), 250)})
        model["drop_then_append"] = values("uint32", (128, 2), 250)
        npk.drop("drop_then_append", [7, 70])
        model["drop_then_append"] = np.delete(model["drop_then_append"], [7, 70], axis=0)
    with NumPack(str(path)) as npk:
        more = values("uint32", (5, 2), 251)
        npk.append({"drop_then_append": more})
        model["drop_then_append"] = np.concatenate([model["drop_then_append"], more])

    # Upstream must agree with the model itself, or the expectations mean nothing.
    bad = []
    with NumPack(str(path)) as npk:
        members = sorted(npk.get_member_list())
        if members != sorted(model):
            bad.append(f"member list {members} != {sorted(model)}")
        for name, want in model.items():
            got = npk.load(name)
            if got.dtype != want.dtype or got.shape != want.shape or got.tobytes() != want.tobytes():
                bad.append(f"{name}: NumPack reads {got.dtype}{got.shape}, model {want.dtype}{want.shape}")
            if tuple(npk.get_shape(name)) != want.shape:
                bad.append(f"{name}: get_shape {npk.get_shape(name)} != {want.shape}")
    if bad:
        print("upstream disagrees with its own model (upstream defect):\n  " + "\n  ".join(bad))
        return 1

    for name, arr in model.items():
        np.save(expected_dir / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
    print(f"numpack {numpack.__version__} wrote {len(model)} arrays to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
