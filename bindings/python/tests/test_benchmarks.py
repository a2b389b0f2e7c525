"""The benchmark scripts of benches/python run end to end on small data and print a
table whose numpack figures are positive numbers (peers that are not installed are
left out by the scripts themselves). Timings are not judged here."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHES = Path(__file__).resolve().parents[3] / "benches" / "python"


def run(script, *args, tmp_path):
    proc = subprocess.run([sys.executable, str(BENCHES / script), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line.startswith("| ") and "---" not in line]


def cells(line):
    return [c.strip() for c in line.strip("|").split("|")]


def positive(text):
    value = float(text.rstrip("x"))
    assert value > 0, text
    return value


def test_storage_benchmark(tmp_path):
    rows = run("bench_storage.py", "--rows", "30000", "--rounds", "2", "--repeat", "1",
               tmp_path=tmp_path)
    header, body = cells(rows[0]), [cells(r) for r in rows[1:]]
    assert header[:3] == ["operation", "numpack", "NPY"]
    ops = [r[0] for r in body]
    assert "save (whole array) as a new array" in ops and "stream all rows in batches of 10,000" in ops
    for r in body:
        positive(r[1])  # numpack has a figure on every row
    # NPY has one on every row but the batch-mode ones, which have no peer
    assert all(r[2] != "—" for r in body if not r[0].startswith(("100 ", "same,")))


def test_vector_benchmark(tmp_path):
    rows = run("bench_vector.py", "--n1", "3000", "--n100", "2000", "--repeat", "1", tmp_path=tmp_path)
    body = [cells(r) for r in rows[1:]]
    assert len(body) == 6  # 2 cases x dot, l2sq, cosine
    for r in body:
        for c in r[1:]:
            positive(c)


@pytest.mark.filterwarnings("ignore")
def test_compression_benchmark(tmp_path):
    rows = run("bench_compression.py", "--scale", "0.002", "--repeat", "1", tmp_path=tmp_path)
    body = [cells(r) for r in rows[1:]]
    ours = [r for r in body if r[1].startswith("numpack")]
    assert len(ours) == 3  # one per dataset
    for r in ours:
        assert positive(r[2]) > 1  # each dataset compresses
        for c in r[3:]:
            positive(c)


def test_io_benchmark(tmp_path):
    rows = run("bench_io.py", "--size", "256KiB", "--csv-size", "64KiB", tmp_path=tmp_path)
    header, body = cells(rows[0]), [cells(r) for r in rows[1:]]
    assert header[:5] == ["format", "direction", "array", "numpack peak RSS (MiB)", "numpack MB/s"]
    assert [(r[0], r[1]) for r in body] == [(f, d) for f in ("csv", "hdf5", "zarr", "parquet", "feather", "npy", "safetensors")
                                            for d in ("import", "export")]
    for r in body:
        positive(r[3])
        positive(r[4])


def test_safetensors_benchmark(tmp_path):
    rows = run("bench_safetensors.py", "--size-mb", "10", "--repeat", "1", tmp_path=tmp_path)
    body = [cells(r) for r in rows[1:]]
    assert [r[0] for r in body] == ["import: file → store", "export: store → file"]
    for r in body:
        positive(r[1].replace(",", ""))
