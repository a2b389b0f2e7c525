"""The demo's Python half: open the store the C demo wrote with NumPack 0.4.5 (the
upstream package) and check what it sees. Usage: python demo_numpack045.py <store-dir>"""
import sys

import numpy as np
from numpack import NumPack

ROWS, DIM, APPEND = 200_000, 32, 20_000

with NumPack(sys.argv[1]) as npk:
    names = sorted(npk.get_member_list())
    assert names == ["embeddings", "labels"], names
    emb = npk.load("embeddings")
    live = ROWS + APPEND - ROWS // 20
    assert emb.shape == (live, DIM) and emb.dtype == np.float32, (emb.shape, emb.dtype)
    # Compacted by the C demo: row 0 was physical row 1; every 20th original row is gone.
    firsts = np.abs(emb[:, 0])
    kept = np.array([r for r in range(ROWS) if r % 20] + list(range(ROWS, ROWS + APPEND)), dtype=np.float32)
    assert np.array_equal(firsts, kept)
    assert np.allclose(np.abs(emb[:, 1:]) - firsts[:, None], np.arange(1, DIM, dtype=np.float32) / 100, atol=0.02)
    labels = npk.load("labels")
    assert labels.dtype == np.int64 and np.array_equal(labels, np.arange(1000) % 7)
    rows = npk.getitem("embeddings", [0, live - 1])
    print(f"Python (NumPack 0.4.5): {len(names)} arrays, embeddings {emb.shape} {emb.dtype}, "
          f"first row starts {rows[0][0]:g}, last {rows[1][0]:g}; all values checked")
