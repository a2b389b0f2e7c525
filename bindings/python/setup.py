"""Build step: compile the Rust library with cargo and bundle it in the package.

The package calls the library only through its C ABI, in cffi's ABI mode
(``ffi.dlopen``): the wheel carries ``libnumpack.so`` and ``numpack.h`` in
``numpack/_lib/`` and the cffi declarations are produced from that header when the
package is imported. The one thing compiled against Python is ``numpack._bufferbase``,
on CPython before 3.12 only: Python classes there cannot export a buffer, and
``memoryview(lazy)`` needs one (3.12+ calls ``LazyArray.__buffer__`` itself).

Environment:
  CARGO_TARGET_DIR   where cargo builds (relative paths are taken from the repository root)
  CARGO              the cargo executable (default: ``cargo``)
  NUMPACK_SOURCE_DIR the repository root (default: two levels above this file)
"""

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, Extension, setup
from setuptools.command.build_py import build_py


def _repo_root():
    root = os.environ.get("NUMPACK_SOURCE_DIR")
    root = Path(root) if root else Path(__file__).resolve().parents[2]
    if not (root / "Cargo.toml").is_file() or not (root / "include" / "numpack.h").is_file():
        sys.exit(f"numpack: no Rust crate at {root} (set NUMPACK_SOURCE_DIR to the repository root)")
    return root


def _lib_name():
    if sys.platform == "darwin":
        return "libnumpack.dylib"
    if sys.platform == "win32":
        return "numpack.dll"
    return "libnumpack.so"


class BuildWithCargo(build_py):
    def run(self):
        super().run()
        root = _repo_root()
        target = Path(os.environ.get("CARGO_TARGET_DIR") or "target")
        if not target.is_absolute():
            target = root / target
        env = dict(os.environ, CARGO_TARGET_DIR=str(target))
        cargo = os.environ.get("CARGO", "cargo")
        subprocess.check_call([cargo, "build", "--release", "--lib"], cwd=root, env=env)
        dest = Path(self.build_lib) / "numpack" / "_lib"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(target / "release" / _lib_name(), dest / _lib_name())
        shutil.copy2(root / "include" / "numpack.h", dest / "numpack.h")


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform."""

    def has_ext_modules(self):
        return True


def _extensions():
    if platform.python_implementation() != "CPython" or sys.version_info >= (3, 12):
        return []
    # optional: without a C compiler or Python's headers the package still installs, and
    # memoryview(lazy) raises TypeError on these versions (np.asarray(lazy) still works).
    return [Extension("numpack._bufferbase", ["numpack/_bufferbase.c"], optional=True)]


setup(
    packages=["numpack", "numpack.io"],
    ext_modules=_extensions(),
    exclude_package_data={"numpack": ["*.c"]},  # the extension's source stays out of installs
    cmdclass={"build_py": BuildWithCargo},
    distclass=BinaryDistribution,
)
