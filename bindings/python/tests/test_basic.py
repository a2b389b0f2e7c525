import numpy as np
import pytest

import numpack


def test_save_load_roundtrip(npk):
    a = np.arange(20, dtype=np.float32).reshape(10, 2)
    npk.save({"a": a})
    np.testing.assert_array_equal(npk.load("a"), a)
    assert npk.get_shape("a") == (10, 2)
    with pytest.raises(KeyError):
        npk.load("missing")
