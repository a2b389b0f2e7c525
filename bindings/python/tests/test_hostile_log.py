"""A log record forged by someone else (with a valid CRC) never makes numpack move a
file out of the store: the open fails with CORRUPT naming the record, and nothing next
to the store changes."""

import hashlib
import os
import struct
import zlib

import numpy as np
import pytest

import numpack
from numpack._native import ERRORS_BY_NAME

Corrupt = ERRORS_BY_NAME["CORRUPT"]


def tree(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.join(d, name)] = None
        for name in files:
            p = os.path.join(d, name)
            with open(p, "rb") as f:
                out[p] = hashlib.sha256(f.read()).hexdigest()
    return out


def forge_rename(store, src, dst):
    """Appends a committed, unfinished Rename record to the store's log."""
    enc = lambda s: struct.pack("<I", len(s.encode())) + s.encode()
    payload = bytes([7]) + enc(src) + enc(dst) + struct.pack("<QB", 1, 0)
    with open(os.path.join(store, "numpack.wal"), "r+b") as f:
        header = f.read(64)
        generation = header[16:24]
        (end,) = struct.unpack("<Q", header[56:64])
        crc = zlib.crc32(payload, zlib.crc32(generation))
        f.seek(end)
        f.write(struct.pack("<II", len(payload), crc) + payload)
        f.seek(56)
        f.write(struct.pack("<Q", end + 8 + len(payload)))


def test_a_forged_rename_out_of_the_store_is_corrupt(tmp_path):
    sandbox = tmp_path / "sandbox"
    store = sandbox / "inner"
    sandbox.mkdir()
    (sandbox / "bait.txt").write_bytes(b"bait")
    with numpack.NumPack(store, warn_no_context=False) as npk:
        npk.save({"a": np.arange(6, dtype=np.int32).reshape(3, 2)})
    # data_x/../../planted.npkd would land next to the store.
    (store / "data_x").mkdir()
    forge_rename(str(store), "a", "x/../../planted")
    before = tree(tmp_path)
    npk = numpack.NumPack(store, warn_no_context=False)
    with pytest.raises(Corrupt, match="rename record, field to"):
        npk.open()
    assert tree(tmp_path) == before
    assert not (sandbox / "planted.npkd").exists()
    findings = numpack.check(store)
    assert any(f.severity == "error" and f.id == "log-corrupt" and "rename record" in f.message for f in findings), findings
    assert tree(tmp_path) == before
