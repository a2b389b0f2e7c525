"""The public surface of NumPack 0.7.0 (names, members, parameters and defaults) is all
present here. Needs a venv with the real NumPack 0.7.0 (tests/interop/oracle07-venv.sh
makes <repo>/.venv-oracle07; NUMPACK_ORACLE07_PYTHON names another python); skipped
without one."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ORACLE = Path(os.environ.get("NUMPACK_ORACLE07_PYTHON")
              or HERE.parents[2] / ".venv-oracle07" / "bin" / "python")


def dump(python, cwd, env=None):
    out = subprocess.run([str(python), str(HERE / "surface_dump.py")], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def surfaces(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("surface")  # away from any source checkout
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only the oracle's own numpack
    probe = "import numpack, sys; sys.exit(numpack.__version__ != '0.7.0')"
    if not ORACLE.is_file() or subprocess.run([str(ORACLE), "-c", probe], cwd=cwd, env=clean,
                                              capture_output=True, timeout=120).returncode:
        pytest.skip(f"no NumPack 0.7.0 at {ORACLE} (tests/interop/oracle07-venv.sh)")
    return dump(ORACLE, cwd, clean), dump(sys.executable, cwd)


def signature_gaps(where, theirs, ours):
    """What a call valid for NumPack's signature could not do with ours."""
    gaps = []
    by_name = {p[0]: p for p in ours}
    positional = [p for p in ours if p[1] in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")]
    star_args = any(p[1] == "VAR_POSITIONAL" for p in ours)
    for i, (name, kind, default) in enumerate(theirs):
        if kind == "POSITIONAL_OR_KEYWORD" and i >= len(positional) and not star_args:
            gaps.append(f"{where}: takes fewer positional arguments than NumPack ({name})")
        if kind in ("POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY") and not name.startswith("_"):
            mine = by_name.get(name)
            if mine is None:
                gaps.append(f"{where}: no parameter {name!r}")
            elif default is not None and mine[2] != default:
                gaps.append(f"{where}: {name} defaults to {mine[2]}, NumPack {default}")
    known = {p[0] for p in theirs}
    for name, kind, default in ours:
        if name not in known and default is None and kind not in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            gaps.append(f"{where}: requires {name!r}, which NumPack does not")
    return gaps


def test_every_public_name_is_here(surfaces):
    theirs, ours = surfaces
    for module, names in theirs["modules"].items():
        missing = sorted(set(names) - set(ours["modules"][module]))
        assert not missing, f"{module} lacks {missing}"
    for module, names in theirs["all"].items():
        assert set(names) <= set(ours["all"][module]), module
    assert ours["has_version"]


def test_every_member_and_parameter_is_here(surfaces):
    theirs, ours = surfaces
    gaps = []
    data_kinds = {"property", "getset_descriptor", "member_descriptor"}
    for cls, members in theirs["classes"].items():
        mine = ours["classes"][cls]
        for name, info in members.items():
            if name not in mine:
                gaps.append(f"{cls}.{name} is missing")
                continue
            if (info["kind"] in data_kinds) != (mine[name]["kind"] in data_kinds):
                gaps.append(f"{cls}.{name}: attribute/method mismatch ({info['kind']} vs {mine[name]['kind']})")
            if name.startswith("__") or info["sig"] is None or mine[name]["sig"] is None:
                continue  # special methods are called by Python, positionally
            gaps += signature_gaps(f"{cls}.{name}", info["sig"], mine[name]["sig"])
    for name, sig in theirs["functions"].items():
        gaps += signature_gaps(name, sig, ours["functions"][name])
    assert not gaps, "\n".join(gaps)
