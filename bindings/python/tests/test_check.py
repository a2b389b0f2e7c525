"""numpack.check: a sound store gives no finding; damage is reported with its id, file and
array; checking changes nothing; a missing store raises."""

import os

import numpy as np
import pytest

import numpack
from numpack import NumPack


@pytest.fixture
def store(tmp_path):
    p = tmp_path / "s.npk"
    with NumPack(p) as npk:
        npk.save({"a": np.arange(20, dtype=np.int64).reshape(10, 2), "b": np.ones(5, np.float32)})
        npk.drop("a", [1, 3])
    return p


def snapshot(p):
    return {n: (p / n).read_bytes() for n in sorted(os.listdir(p))}


def test_a_sound_store_has_no_findings(store):
    assert numpack.check(store) == []
    assert numpack.check(str(store)) == []


def test_damage_is_reported_and_nothing_changes(store):
    with open(store / "data_b.npkd", "r+b") as f:
        f.truncate(3)
    (store / "data_ghost.npkd").write_bytes(b"x" * 8)
    (store / "deleted_a.npkb").write_bytes(b"\0" * 5)
    before = snapshot(store)
    findings = numpack.check(store)
    assert snapshot(store) == before
    by_id = {f.id: f for f in findings}
    assert set(by_id) == {"data-size-mismatch", "orphan-data-file", "bitmap-size-mismatch"}
    f = by_id["data-size-mismatch"]
    assert (f.severity, f.file, f.array) == ("error", "data_b.npkd", "b")
    assert "data_b.npkd" in f.message
    assert by_id["orphan-data-file"].severity == "warning"
    assert by_id["bitmap-size-mismatch"].as_dict()["array"] == "a"
    assert isinstance(f, numpack.Finding)


def test_an_open_writer_is_noted_not_an_error(tmp_path):
    p = tmp_path / "s.npk"
    npk = NumPack(p)
    npk.open()
    try:
        npk.save({"x": np.zeros((3, 2), np.float64)})
        findings = numpack.check(p)
        assert [(f.id, f.severity, f.file, f.array) for f in findings] == [
            ("log-not-checkpointed", "info", "numpack.wal", None)]
    finally:
        npk.close()
    assert numpack.check(p) == []


def test_catalogue_damage(store):
    (store / "metadata.npkm").write_bytes(b"garbage!" * 4)
    findings = numpack.check(store)
    assert [f.id for f in findings] == ["catalogue-bad-magic"]
    assert findings[0].file == "metadata.npkm"


def test_no_store_raises(tmp_path):
    with pytest.raises(numpack.StoreNotFoundError):
        numpack.check(tmp_path / "missing")
    with pytest.raises(numpack.StoreNotFoundError):
        numpack.check(tmp_path)
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(numpack.InvalidArgumentError):
        numpack.check(tmp_path / "file")
