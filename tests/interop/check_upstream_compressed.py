"""Checks how NumPack 0.4.5 (the upstream package) treats a store with a compressed array.

Usage: python check_upstream_compressed.py <dir>
  <dir>/mixed.npk  written by `cargo run --example interop_compressed -- <dir>`: a plain
                   float64 array `plain` (4 x 3, 0..12) and a compressed int64 array `z`.

NumPack must list both names, load `plain` exactly, and fail to load or index `z` (its
data file `data_z.npkd` does not exist) rather than return anything. Prints
"N passed, M failed" and exits 1 on any failure.
"""
import sys
from pathlib import Path

import numpy as np
import numpack
from numpack import NumPack


def main() -> int:
    store = Path(sys.argv[1]) / "mixed.npk"
    passed = failed = 0

    def check(ok: bool, what: str) -> None:
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {what}")

    print(f"numpack {numpack.__version__}: reading {store}")
    with NumPack(str(store)) as npk:
        check(sorted(npk.get_member_list()) == ["plain", "z"], "both arrays listed")
        a = npk.load("plain")
        check(a.dtype == np.float64 and np.array_equal(a, np.arange(12.0).reshape(4, 3)), "plain array read exactly")
        for what, call in (("load", lambda: npk.load("z")), ("getitem", lambda: npk.getitem("z", [0, 1]))):
            try:
                got = call()
                check(False, f"{what} of the compressed array returned {type(got).__name__} instead of failing")
            except Exception as e:  # noqa: BLE001 - any refusal will do, data would not
                print(f"{what} of the compressed array refused: {type(e).__name__}: {e}")
                check(True, "")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
