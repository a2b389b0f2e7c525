"""Stores written by NumPack 0.4.5 (tests/fixtures/upstream-numpack-0.4.5) read equal."""

import json

import numpy as np
import pytest

from numpack import NumPack

from conftest import FIXTURES

MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
CASES = [(store, name) for store, arrays in MANIFEST.items() for name in arrays]


@pytest.mark.parametrize("store,name", CASES, ids=[f"{s}.{n}" for s, n in CASES])
def test_fixture_reads_equal(fixture_copy, store, name):
    expected = np.load(FIXTURES / "expected" / f"{store}.{name}.npy")
    meta = MANIFEST[store][name]
    with NumPack(fixture_copy(f"{store}.npk")) as npk:
        assert sorted(npk.get_member_list()) == sorted(MANIFEST[store])
        assert npk.get_shape(name) == tuple(meta["shape"]) == expected.shape
        out = npk.load(name)
        assert out.dtype == np.dtype(meta["dtype"])
        np.testing.assert_array_equal(out, expected)
        lazy = npk.load(name, lazy=True)
        np.testing.assert_array_equal(np.asarray(lazy), expected)
        np.testing.assert_array_equal(lazy[::2], expected[::2])
        np.testing.assert_array_equal(npk.getitem(name, [-1, 0]), expected[[-1, 0]])
        np.testing.assert_array_equal(np.concatenate(list(npk.stream_load(name, 4))), expected)


def test_modify_fixture_then_reopen(fixture_copy):
    path = fixture_copy("modified.npk")
    expected = np.load(FIXTURES / "expected" / "modified.a.npy")
    with NumPack(path) as npk:
        npk.drop("a", [0, -1])
        npk.append({"a": np.ones((2,) + expected.shape[1:], expected.dtype)})
    ref = np.concatenate([expected[1:-1], np.ones((2,) + expected.shape[1:], expected.dtype)])
    with NumPack(path) as npk:
        np.testing.assert_array_equal(npk.load("a"), ref)
        npk.update("a")
        np.testing.assert_array_equal(npk.load("a"), ref)
