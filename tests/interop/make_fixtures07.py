"""Writes the NumPack 0.7.0 fixture stores in tests/fixtures/upstream-numpack-0.7.0/.

Usage: <oracle07 python> make_fixtures07.py [<out dir>]
  (the python printed by tests/interop/oracle07-venv.sh; <out dir> defaults to
  tests/fixtures/upstream-numpack-0.7.0 beside this script's folder)

Writes, through several open/close sessions each:
  plain.npk    every dtype, 1-D and 3-D shapes, an empty array, deleted rows (with an
               append into a fresh bitmap word), a compacted array and a whole-dropped
               array (0.7.0 keeps it listed with zero rows);
  seg4096.npk  segmented arrays (NUMPACK_SEGMENT_TARGET_BYTES=4096): a 2-D float32 whose
               segments are 4088 bytes (not a page multiple), a 1-D int64, an array
               appended to after its first save (last segment topped up, new ones added),
               one with deleted rows, and a small plain array beside them;
  seg1000.npk  segmented with a 1000-byte target: 2-D float32 with rows replaced across a
               segment boundary, complex128, 1-D int16, deleted rows then an append
               (top-up plus a new segment), a compacted segmented array.
and expected/<store>.<array>.npy (the logical contents, computed with NumPy alongside the
operations, never read back through NumPack) plus manifest.json ({store: {array: {dtype,
shape, and for segmented arrays segment_rows: the rows of each segment}}}). Every store is
then reopened with NumPack 0.7.0 to check it reads back the model, and every array meant
to be segmented is checked to have the segment layout that was asked for. Operations
0.7.0 gets wrong (append into a partly used bitmap word after a row drop, negative drop
indexes after a drop, multi-row replace of rows that are not physically consecutive:
/work/shared/UPSTREAM_API.md §9) are avoided.
"""
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import numpack
from numpack import NumPack

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upstream_writes import DTYPES, values  # noqa: E402


class Store:
    """A NumPack 0.7.0 store plus the model of what each array must read back as."""

    def __init__(self, path: Path, segment_target: int | None):
        self.path = path
        self.segment_target = segment_target
        self.model: dict[str, np.ndarray] = {}
        self.segment_rows: dict[str, list[int]] = {}  # segmented arrays: rows per segment

    def session(self, first: bool = False) -> NumPack:
        # NumPack reads the target from the environment at each save/append.
        if self.segment_target is None:
            os.environ.pop("NUMPACK_SEGMENT_TARGET_BYTES", None)
        else:
            os.environ["NUMPACK_SEGMENT_TARGET_BYTES"] = str(self.segment_target)
        os.environ.pop("NPK_SEGMENT_TARGET_BYTES", None)
        return NumPack(str(self.path), drop_if_exists=first)

    def save(self, npk: NumPack, arrays: dict) -> None:
        npk.save(arrays)
        self.model.update({k: v.copy() for k, v in arrays.items()})

    def append(self, npk: NumPack, name: str, more: np.ndarray) -> None:
        npk.append({name: more})
        self.model[name] = np.concatenate([self.model[name], more])

    def drop_rows(self, npk: NumPack, name: str, rows: list[int]) -> None:
        npk.drop(name, rows)
        self.model[name] = np.delete(self.model[name], rows, axis=0)

    def drop_whole(self, npk: NumPack, name: str) -> None:
        npk.drop(name)
        # 0.7.0 keeps the name listed, with every row deleted.
        self.model[name] = self.model[name][:0]

    def replace(self, npk: NumPack, name: str, rows: list[int], data: np.ndarray) -> None:
        npk.replace({name: data}, rows)
        self.model[name][rows] = data


def write_plain(root: Path) -> Store:
    s = Store(root / "plain.npk", None)
    with s.session(first=True) as npk:
        arrays = {f"dt_{d}": values(d, (6, 3), k) for k, d in enumerate(DTYPES)}
        arrays.update({
            "one_d": values("float64", (11,), 100),
            "three_d": values("int32", (4, 3, 2), 101),
            "empty": np.zeros((0, 4), dtype=np.float32),
            "deleted": values("int64", (100, 3), 102),
            "deleted_appended": values("uint32", (128, 2), 103),
            "compacted": values("int16", (70, 2), 104),
            "whole_dropped": values("float32", (4, 2), 105),
        })
        s.save(npk, arrays)
    with s.session() as npk:
        s.drop_rows(npk, "deleted", [0, 5, 63, 64, 99])
        s.drop_rows(npk, "deleted_appended", [7, 70])
        s.drop_rows(npk, "compacted", [1, 2, 68])
        s.drop_whole(npk, "whole_dropped")
    with s.session() as npk:
        # 128 physical rows fill two bitmap words: the appended rows start a new one.
        s.append(npk, "deleted_appended", values("uint32", (5, 2), 106))
        npk.update("compacted")
    return s


def write_seg4096(root: Path) -> Store:
    s = Store(root / "seg4096.npk", 4096)
    with s.session(first=True) as npk:
        s.save(npk, {
            "f32_2d": values("float32", (500, 7), 200),      # 28-byte rows: 146 a segment
            "i64_1d": values("int64", (1500,), 201),          # 512 a segment, 4096 bytes
            "appended": values("float64", (200, 3), 202),     # 24-byte rows: 170 a segment
            "deleted": values("int32", (600, 5), 203),        # 20-byte rows: 204 a segment
            "small": values("uint8", (3, 4), 204),            # below the target: plain file
        })
    with s.session() as npk:
        s.append(npk, "appended", values("float64", (400, 3), 205))
        s.drop_rows(npk, "deleted", [0, 203, 204, 205, 450, 599])
    s.segment_rows["f32_2d"] = [146, 146, 146, 62]
    s.segment_rows["i64_1d"] = [512, 512, 476]
    s.segment_rows["appended"] = [170, 170, 170, 90]
    s.segment_rows["deleted"] = [204, 204, 192]
    return s


def write_seg1000(root: Path) -> Store:
    s = Store(root / "seg1000.npk", 1000)
    with s.session(first=True) as npk:
        s.save(npk, {
            "f32_2d": values("float32", (100, 9), 300),       # 36-byte rows: 27 a segment
            "c128": values("complex128", (70, 2), 301),       # 32-byte rows: 31 a segment
            "i16_1d": values("int16", (1200,), 302),          # 500 a segment
            "deleted_appended": values("int64", (128, 2), 303),  # 16-byte rows: 62 a segment
            "compacted": values("uint16", (300, 3), 304),     # 6-byte rows: 166 a segment
        })
    with s.session() as npk:
        s.replace(npk, "f32_2d", [25, 26, 27, 28], values("float32", (4, 9), 305))
        s.drop_rows(npk, "deleted_appended", [3, 70, 127])
        s.drop_rows(npk, "compacted", [0, 100, 165, 166, 299])
    with s.session() as npk:
        # 128 physical rows: the appended rows start a new bitmap word; in storage they
        # top up the 4-row last segment to 62 and start a new one.
        s.append(npk, "deleted_appended", values("int64", (100, 2), 306))
        npk.update("compacted")
    s.segment_rows["f32_2d"] = [27, 27, 27, 19]
    s.segment_rows["c128"] = [31, 31, 8]
    s.segment_rows["i16_1d"] = [500, 500, 200]
    s.segment_rows["deleted_appended"] = [62, 62, 62, 42]
    s.segment_rows["compacted"] = [166, 129]
    return s


def check(s: Store) -> list[str]:
    """Reopens the store with NumPack and compares it with the model and layout."""
    bad = []
    with s.session() as npk:
        members = sorted(npk.get_member_list())
        if members != sorted(s.model):
            bad.append(f"{s.path.name}: member list {members} != {sorted(s.model)}")
        for name, want in s.model.items():
            got = npk.load(name)
            if got.dtype != want.dtype or got.shape != want.shape or got.tobytes() != want.tobytes():
                bad.append(f"{s.path.name}/{name}: NumPack reads {got.dtype}{got.shape}, "
                           f"model {want.dtype}{want.shape}")
            if tuple(npk.get_shape(name)) != want.shape:
                bad.append(f"{s.path.name}/{name}: get_shape {npk.get_shape(name)} != {want.shape}")
    for name in s.model:
        manifest = s.path / f"data_{name}.npkseg"
        if name in s.segment_rows:
            if not manifest.is_file():
                bad.append(f"{s.path.name}/{name}: not segmented")
                continue
            counts = [seg["rows"] for seg in json.loads(manifest.read_text())["segments"]]
            if counts != s.segment_rows[name]:
                bad.append(f"{s.path.name}/{name}: segment rows {counts}, wanted {s.segment_rows[name]}")
        elif manifest.exists() or not (s.path / f"data_{name}.npkd").is_file():
            bad.append(f"{s.path.name}/{name}: expected a plain data file")
    return bad


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        Path(__file__).resolve().parents[1] / "fixtures" / "upstream-numpack-0.7.0"
    if numpack.__version__ != "0.7.0":
        print(f"make_fixtures07.py: needs NumPack 0.7.0, this is {numpack.__version__}")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for p in [*out.glob("*.npk"), out / "expected"]:
        if p.exists():
            shutil.rmtree(p)
    (out / "expected").mkdir()
    stores = [write_plain(out), write_seg4096(out), write_seg1000(out)]
    bad = [msg for s in stores for msg in check(s)]
    if bad:
        print("NumPack 0.7.0 disagrees with the model:\n  " + "\n  ".join(bad))
        return 1
    manifest = {}
    for s in stores:
        stem = s.path.name.removesuffix(".npk")
        manifest[stem] = {}
        for name, arr in sorted(s.model.items()):
            np.save(out / "expected" / f"{stem}.{name}.npy", np.array(arr, order="C"), allow_pickle=False)
            manifest[stem][name] = {"dtype": str(arr.dtype), "shape": list(arr.shape)}
            if name in s.segment_rows:
                manifest[stem][name]["segment_rows"] = s.segment_rows[name]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"numpack {numpack.__version__}, numpy {np.__version__}: wrote {len(stores)} stores, "
          f"{sum(len(s.model) for s in stores)} arrays, {total} bytes to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
