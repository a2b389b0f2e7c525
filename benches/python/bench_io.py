"""numpack.io benchmark: peak memory and throughput of each streamable converter, both
directions, against NumPack 0.7.0's own ``numpack.io`` code doing the same job.

Every case runs in a fresh child process (so one case's memory cannot hide in another's)
that imports the converter's libraries, runs one conversion and reports its wall time and
its peak resident set size (``VmHWM``: the whole interpreter, libraries included; Linux
only).
Throughput is MB/s of array data (1 MB = 10^6 bytes). The array is float64 with 16
columns, of ``--size`` bytes (CSV: ``--csv-size``, text formatting being ~100x slower).
Inputs for the imports are written beforehand by numpack's exporters.

    python benches/python/bench_io.py [--size 1GiB] [--upstream-io DIR] [--formats ...]

``--upstream-io``: the ``python/numpack/io`` directory of NumPack 0.7.0's source
distribution. Its converters are loaded from there as a package of their own and run
over this numpack's ``NumPack`` class (a drop-in for NumPack's, same store format), so
the comparison is between the two converters' strategies (NumPack 0.7 loads whole arrays
below 1 GB, and whole Feather files at any size). PyPI has no NumPack 0.7 wheel for
every platform and its source build needs a system BLAS, hence this way. Without the
option only numpack's figures are printed. Prints a markdown table.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

FORMATS = ["csv", "hdf5", "zarr", "parquet", "feather", "npy", "safetensors", "pt"]
SUFFIX = {"csv": "csv", "hdf5": "h5", "zarr": "zarr", "parquet": "parquet", "feather": "feather",
          "npy": "npy", "safetensors": "safetensors", "pt": "pt"}
# Converters named after the format, and the extra arguments that pick the one array.
IMPORTS = {"safetensors": "from_safetensors_file"}
EXPORTS = {"safetensors": "to_safetensors_file"}
EXPORT_KW = {"csv": {"array_name": "data"}, "parquet": {"array_name": "data"},
             "feather": {"array_name": "data"}, "npy": {"array_names": ["data"]},
             "safetensors": {"array_names": ["data"]}, "pt": {"array_names": ["data"]}}
COLUMNS = 16

# One conversion, run by the child: the same call for numpack and for NumPack 0.7
# (upstream's from_csv needs the dtype only to match ours, which reads float64 anyway).
CHILD = r"""
import sys, time, json


def hwm():
    # VmHWM: this process's own peak (ru_maxrss would include the parent's peak, which
    # Linux carries into a child over vfork + exec).
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise SystemExit("no VmHWM in /proc/self/status")


direction, fmt, store, path, out, impl = sys.argv[1:7]
import importlib
import numpy as np
if impl == "-":
    import numpack.io as nio
else:
    import importlib.util
    spec = importlib.util.spec_from_file_location("np07io", impl + "/__init__.py",
                                                  submodule_search_locations=[impl])
    nio = importlib.util.module_from_spec(spec)
    sys.modules["np07io"] = nio
    spec.loader.exec_module(nio)
# The format's library is imported before the clock starts: its import is not the
# conversion's cost (its memory stays in the peak, as in any real use).
lib = {"hdf5": "h5py", "zarr": "zarr", "parquet": "pyarrow.parquet",
       "feather": "pyarrow.feather", "pt": "torch"}.get(fmt)
if lib:
    importlib.import_module(lib)
name, kw = json.loads(sys.argv[7])
base = hwm()
t = time.perf_counter()
if direction == "import":
    getattr(nio, name)(path, out)
else:
    getattr(nio, name)(store, out, **kw)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "base_rss": base,
                  "peak_rss": hwm()}))
"""


def parse_size(text):
    m = re.fullmatch(r"(?i)\s*([\d.]+)\s*([kmg]i?b?)?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    unit = (m.group(2) or "").lower().rstrip("b")
    mult = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30}[unit]
    return int(float(m.group(1)) * mult)


def make_store(path, nbytes):
    """A store with array ``data``: float64, COLUMNS columns, ``nbytes`` bytes, written
    in blocks so the parent stays small."""
    import numpy as np

    import numpack

    rows = max(1, nbytes // (8 * COLUMNS))
    rng = np.random.default_rng(0)
    block = 1 << 16
    with numpack.NumPack(path, drop_if_exists=True, warn_no_context=False) as n:
        for start in range(0, rows, block):
            part = rng.standard_normal((min(block, rows - start), COLUMNS))
            (n.save if start == 0 else n.append)({"data": part})
    return rows * 8 * COLUMNS


def run_case(impl, direction, fmt, store, path, out, timeout):
    for p in (out,):
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.unlink(p)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    name = (IMPORTS.get(fmt, f"from_{fmt}") if direction == "import" else EXPORTS.get(fmt, f"to_{fmt}"))
    call = json.dumps([name, EXPORT_KW.get(fmt, {})])
    proc = subprocess.run([sys.executable, "-c", CHILD, direction, fmt, store, path, out, impl, call],
                          capture_output=True,
                          text=True, timeout=timeout, cwd=os.path.dirname(store), env=env)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": last[:120]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cell(result, nbytes):
    if result is None:
        return "—", "—"
    if "error" in result:
        return "failed", "failed"
    rate = nbytes / result["seconds"] / 1e6
    return f"{result['peak_rss'] / 2**20:.0f}", f"{rate:.0f}" if rate >= 10 else f"{rate:.2g}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=parse_size, default=parse_size("16MiB"),
                    help="array bytes for the binary formats (default 16MiB; the README uses 1GiB)")
    ap.add_argument("--csv-size", type=parse_size, default=None,
                    help="array bytes for CSV (default: --size / 16)")
    ap.add_argument("--formats", nargs="+", default=None, choices=FORMATS,
                    help="default: all, pt only where torch is installed")
    ap.add_argument("--upstream-io", default=None,
                    help="NumPack 0.7.0's python/numpack/io directory (from its sdist)")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    args = ap.parse_args(argv)
    if args.formats is None:
        import importlib.util

        args.formats = [f for f in FORMATS if f != "pt" or importlib.util.find_spec("torch")]
    impls = [("numpack", "-")]
    if args.upstream_io:
        if not os.path.isfile(os.path.join(args.upstream_io, "__init__.py")):
            ap.error(f"--upstream-io: no __init__.py in {args.upstream_io}")
        impls.append(("NumPack 0.7", os.path.abspath(args.upstream_io)))

    work = tempfile.mkdtemp(prefix="bench_io-", dir=args.dir)
    try:
        sizes = {}
        stores = {}
        for fmt in args.formats:
            size = (args.csv_size or max(1, args.size // 16)) if fmt == "csv" else args.size
            if size not in stores:
                stores[size] = os.path.join(work, f"store-{size}")
                sizes[size] = make_store(stores[size], size)
        import numpack.io as nio

        rows = []
        for fmt in args.formats:
            size = (args.csv_size or max(1, args.size // 16)) if fmt == "csv" else args.size
            store, nbytes = stores[size], sizes[size]
            src = os.path.join(work, f"data.{SUFFIX[fmt]}")
            getattr(nio, EXPORTS.get(fmt, f"to_{fmt}"))(store, src, **EXPORT_KW.get(fmt, {}))
            for direction in ("import", "export"):
                results = {}
                for label, impl in impls:
                    out = os.path.join(work, f"out-{label.replace(' ', '')}" +
                                       ("" if direction == "import" else f".{SUFFIX[fmt]}"))
                    results[label] = run_case(impl, direction, fmt, store, src, out, args.timeout)
                    if direction == "import" and os.path.isdir(out):
                        shutil.rmtree(out)
                    elif os.path.isdir(out):
                        shutil.rmtree(out)
                    elif os.path.exists(out):
                        os.unlink(out)
                rows.append((fmt, direction, nbytes, results))
            shutil.rmtree(src) if os.path.isdir(src) else os.unlink(src)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    labels = [label for label, _ in impls]
    head = ["format", "direction", "array"]
    for label in labels:
        head += [f"{label} peak RSS (MiB)", f"{label} MB/s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for fmt, direction, nbytes, results in rows:
        line = [fmt, direction, f"{nbytes / 2**20:,.0f} MiB"]
        for label in labels:
            line += cell(results.get(label), nbytes)
        print("| " + " | ".join(line) + " |")
    for fmt, direction, nbytes, results in rows:
        for label, r in results.items():
            if r and "error" in r:
                print(f"{label} {fmt} {direction} failed: {r['error']}", file=sys.stderr)


if __name__ == "__main__":
    main()
