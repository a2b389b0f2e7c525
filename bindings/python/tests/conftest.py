import shutil
from pathlib import Path

import numpy as np
import pytest

import numpack

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "upstream-numpack-0.4.5"

DTYPES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
          "float16", "float32", "float64", "complex64", "complex128"]


def sample(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dt.kind in "ui":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    return rng.standard_normal(shape).astype(dt)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "store.npk"


@pytest.fixture
def npk(path):
    with numpack.NumPack(path, warn_no_context=False) as n:
        yield n


@pytest.fixture
def fixture_copy(tmp_path):
    def copy(name):
        dst = tmp_path / name
        shutil.copytree(FIXTURES / name, dst)
        return dst

    return copy
