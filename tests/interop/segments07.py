"""NumPack 0.7.0's side of the segmented-array interop (tests/interop/segments.sh).

Usage: <oracle07 python> segments07.py write|verify|update|append <store> <expected_dir>

  write   writes a store with segmented arrays (NUMPACK_SEGMENT_TARGET_BYTES, set by the
          caller, keeps them small): 2-D float32 whose segments are no page multiple, 1-D
          int64 in page-sized segments, 3-D uint8, one appended to in a second session and
          one with rows dropped, plus a small plain array; and <name>.npy per array with
          the logical contents, computed with NumPy alongside, never read back.
  verify  opens the store with NumPack 0.7.0 and checks every array equals its .npy
          (dtype, shape, bytes) through load, getitem and stream_load, and that the store
          lists exactly those arrays.
  update  runs NumPack 0.7.0's update() (compaction) on every array, which rewrites the
          arrays above the segment target as segments, and checks they became segmented.
  append  appends rows with NumPack 0.7.0 to every segmented array without deleted rows
          (0.7 mishandles appends after row drops, UPSTREAM_API.md section 9), rewrites the
          .npy files and verifies.

Prints "N passed, M failed" last; exits 1 on a failure.
"""
import sys
from pathlib import Path

import numpy as np
from numpack import NumPack

passed = 0
failed = 0


def check(ok: bool, what: str) -> None:
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}", file=sys.stderr)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def write(store: Path, exp: Path) -> None:
    rng = np.random.default_rng(7)
    model = {
        "seg_f32": rng.standard_normal((500, 7)).astype(np.float32),
        "seg_i64": np.arange(1500, dtype=np.int64) * 3 - 7,
        "seg_u8": rng.integers(0, 255, (300, 4, 5), dtype=np.uint8),
        "seg_app": rng.standard_normal((200, 3)),
        "seg_del": rng.integers(-1000, 1000, (600, 5), dtype=np.int32),
        "plain": np.arange(12, dtype=np.uint16).reshape(3, 4),
    }
    with NumPack(str(store), drop_if_exists=True, warn_no_context=False) as npk:
        npk.save({k: v.copy() for k, v in model.items()})
    with NumPack(str(store), warn_no_context=False) as npk:
        more = rng.standard_normal((400, 3))
        npk.append({"seg_app": more})
        model["seg_app"] = np.concatenate([model["seg_app"], more])
        # Rows dropped in one call, none negative (0.7's defects with later drops).
        rows = [0, 169, 170, 339, 599]
        npk.drop("seg_del", rows)
        model["seg_del"] = np.delete(model["seg_del"], rows, axis=0)
    exp.mkdir(parents=True, exist_ok=True)
    for name, arr in model.items():
        np.save(exp / f"{name}.npy", arr)
    for name in model:
        if name != "plain":
            check((store / f"data_{name}.npkseg").exists(), f"{name} is not segmented")


def expected(exp: Path) -> dict:
    return {p.stem: np.load(p) for p in sorted(exp.glob("*.npy"))}


def verify(store: Path, exp: Path) -> None:
    want = expected(exp)
    with NumPack(str(store), warn_no_context=False) as npk:
        check(sorted(npk.get_member_list()) == sorted(want), f"arrays {sorted(npk.get_member_list())} != {sorted(want)}")
        for name, arr in want.items():
            got = npk.load(name)
            check(same(got, arr), f"{name}: load gives {got.dtype}{got.shape}, expected {arr.dtype}{arr.shape} (or other bytes)")
            n = arr.shape[0]
            if n == 0:
                continue
            idx = sorted({0, n // 2, n - 1})
            check(same(npk.getitem(name, idx), arr[idx]), f"{name}: getitem {idx}")
            parts = list(npk.stream_load(name, buffer_size=64))
            joined = np.concatenate(parts) if parts else arr[:0]
            check(same(joined, arr), f"{name}: stream_load")


def update(store: Path, exp: Path) -> None:
    want = expected(exp)
    with NumPack(str(store), warn_no_context=False) as npk:
        for name in want:
            npk.update(name)
    for name, arr in want.items():
        check((store / f"data_{name}.npkseg").exists(), f"{name} ({arr.nbytes} bytes) was not rewritten as segments")
    verify(store, exp)


def append(store: Path, exp: Path) -> None:
    want = expected(exp)
    grown = []
    with NumPack(str(store), warn_no_context=False) as npk:
        for name, arr in want.items():
            if not (store / f"data_{name}.npkseg").exists() or (store / f"deleted_{name}.npkb").exists():
                continue
            more = (np.arange(37 * arr[0].size) % 97).astype(arr.dtype).reshape((37,) + arr.shape[1:])
            npk.append({name: more})
            want[name] = np.concatenate([arr, more])
            np.save(exp / f"{name}.npy", want[name])
            grown.append(name)
    check(len(grown) > 0, "no segmented array without deleted rows to append to")
    verify(store, exp)


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[1] not in ("write", "verify", "update", "append"):
        print(__doc__, file=sys.stderr)
        return 2
    cmd, store, exp = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    try:
        {"write": write, "verify": verify, "update": update, "append": append}[cmd](store, exp)
    except Exception as e:  # a crash is a failure with its cause, never a silent pass
        check(False, f"{cmd} raised {type(e).__name__}: {e}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
