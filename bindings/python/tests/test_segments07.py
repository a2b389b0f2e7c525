"""Stores with NumPack 0.7.0's segmented arrays (tests/fixtures/upstream-numpack-0.7.0,
written by the real 0.7.0 with small segment targets) read equal through every read path,
report the manifest as their data file, and keep working after changes."""

import json
import shutil

import numpy as np
import pytest

from numpack import NumPack

from conftest import REPO

FIXTURES = REPO / "tests" / "fixtures" / "upstream-numpack-0.7.0"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
CASES = [(store, name) for store in ("seg4096", "seg1000") for name in MANIFEST[store]]


@pytest.fixture
def copy_store(tmp_path):
    def copy(name):
        dst = tmp_path / name
        shutil.copytree(FIXTURES / name, dst)
        return dst

    return copy


@pytest.mark.parametrize("store,name", CASES, ids=[f"{s}.{n}" for s, n in CASES])
def test_segmented_fixture_reads_equal(copy_store, store, name):
    expected = np.load(FIXTURES / "expected" / f"{store}.{name}.npy")
    segmented = "segment_rows" in MANIFEST[store][name]
    with NumPack(copy_store(f"{store}.npk")) as npk:
        out = npk.load(name)
        assert out.dtype == expected.dtype and out.shape == expected.shape
        assert out.tobytes() == expected.tobytes()
        lazy = npk.load(name, lazy=True)
        np.testing.assert_array_equal(np.asarray(lazy), expected)
        np.testing.assert_array_equal(npk.getitem(name, [-1, 0, len(expected) // 2]), expected[[-1, 0, len(expected) // 2]])
        np.testing.assert_array_equal(np.concatenate(list(npk.stream_load(name, 50))), expected)
        want_file = f"data_{name}.npkseg" if segmented else f"data_{name}.npkd"
        assert npk.get_metadata()["arrays"][name]["data_file"] == want_file


def test_segmented_fixture_changes(copy_store):
    path = copy_store("seg1000.npk")
    expected = np.load(FIXTURES / "expected" / "seg1000.f32_2d.npy")
    more = np.arange(30 * 9, dtype=np.float32).reshape(30, 9)
    with NumPack(path) as npk:
        npk.append({"f32_2d": more})
        npk.replace({"f32_2d": np.full((2, 9), 7, np.float32)}, [26, 27])
        npk.drop("f32_2d", [0])
    want = np.concatenate([expected, more])
    want[[26, 27]] = 7
    want = want[1:]
    with NumPack(path) as npk:
        np.testing.assert_array_equal(npk.load("f32_2d"), want)
        npk.save({"f32_2d": want[:3]})
        assert npk.get_metadata()["arrays"]["f32_2d"]["data_file"] == "data_f32_2d.npkd"
    assert not (path / "data_f32_2d_segments").exists()
