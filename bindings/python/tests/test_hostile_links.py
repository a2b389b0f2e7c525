"""A store whose data file is a symbolic link to a file outside it (a store from someone
else may be): reads and writes are refused with an error naming the file, the file
outside is untouched, and numpack.check reports the link."""

import os

import numpy as np
import pytest

import numpack
from numpack import NumPack


def test_a_linked_data_file_is_refused_and_left_alone(tmp_path):
    store = tmp_path / "s.npk"
    with NumPack(store) as npk:
        npk.save({"a": np.arange(12, dtype=np.int64).reshape(6, 2)})
    bait = tmp_path / "bait"
    os.rename(store / "data_a.npkd", bait)
    os.symlink(bait, store / "data_a.npkd")
    before = bait.read_bytes()

    with NumPack(store, warn_no_context=False) as npk:
        with pytest.raises(Exception, match="data_a.npkd"):
            npk.load("a")
        with pytest.raises(Exception, match="symbolic link"):
            npk.replace({"a": np.full((1, 2), 7, np.int64)}, [0])
        with pytest.raises(Exception, match="data_a.npkd"):
            npk.append({"a": np.full((1, 2), 7, np.int64)})

    assert bait.read_bytes() == before
    ids = {f.id for f in numpack.check(store)}
    assert "not-a-regular-file" in ids
