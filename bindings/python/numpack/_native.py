"""Loading of the numpack C library through cffi (ABI mode) and status checking.

The cffi declarations are made from ``numpack.h`` itself: a small preprocessor keeps
what a C compiler without ``__cplusplus`` and before C23 would see, turns the integer
``NPK_*`` macros into cffi ``#define`` constants and drops everything else cffi's
``cdef`` cannot take (includes, guards, comments, string macros).

The exception classes are made from the header's ``npk_status`` enumerators, named by
``npk_status_name``; only the Python base class chosen for each status name is written
here.

cffi releases the GIL around every call into the library, in ABI mode as in API mode,
so reads and writes run while other Python threads go on (tests/test_threads.py checks
this).
"""

import os
import re
import sys
from pathlib import Path

import numpy as np
from cffi import FFI

_HERE = Path(__file__).resolve().parent


def _lib_name():
    if sys.platform == "darwin":
        return "libnumpack.dylib"
    if sys.platform == "win32":
        return "numpack.dll"
    return "libnumpack.so"


def _find(env, bundled, *fallbacks):
    if os.environ.get(env):
        return Path(os.environ[env])
    for p in (bundled, *fallbacks):
        if p.is_file():
            return p
    raise ImportError(f"numpack: cannot find {bundled.name} (set {env})")


def _repo():
    return _HERE.parents[2]


HEADER_PATH = _find("NUMPACK_HEADER", _HERE / "_lib" / "numpack.h", _repo() / "include" / "numpack.h")
LIBRARY_PATH = _find(
    "NUMPACK_LIBRARY",
    _HERE / "_lib" / _lib_name(),
    Path(os.environ.get("CARGO_TARGET_DIR") or _repo() / "target") / "release" / _lib_name(),
)

_KNOWN = {"__cplusplus": None, "__STDC_VERSION__": 201710}


def _eval_condition(expr, defined):
    def is_defined(m):
        return "1" if defined.get(m.group(1), None) is not None else "0"

    expr = re.sub(r"defined\s*\(\s*(\w+)\s*\)", is_defined, expr)
    expr = re.sub(r"defined\s+(\w+)", is_defined, expr)

    def value(m):
        v = defined.get(m.group(0))
        return str(v) if isinstance(v, int) else "0"

    expr = re.sub(r"[A-Za-z_]\w*L?\b", lambda m: m.group(0) if m.group(0).isdigit() else value(m), expr)
    expr = re.sub(r"(\d+)L\b", r"\1", expr)
    expr = expr.replace("||", " or ").replace("&&", " and ").replace("!", " not ")
    expr = expr.replace(" not =", "!=")
    return bool(eval(expr, {"__builtins__": {}}, {}))


def plain_cdef(header_text):
    """The header as cffi's ``cdef`` takes it, and the integer and string macros."""
    text = re.sub(r"/\*.*?\*/", "", header_text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    defined = dict(_KNOWN)
    ints, strings = {}, {}
    out = []
    stack = []  # (this branch active, some branch taken)
    for line in text.splitlines():
        s = line.strip()
        active = all(a for a, _ in stack)
        if s.startswith("#"):
            d = s[1:].strip()
            word, _, rest = d.partition(" ")
            rest = rest.strip()
            if word == "ifdef":
                c = defined.get(rest) is not None
                stack.append((c, c))
            elif word == "ifndef":
                c = defined.get(rest) is None
                stack.append((c, c))
            elif word == "if":
                c = _eval_condition(rest, defined)
                stack.append((c, c))
            elif word == "elif":
                _, taken = stack.pop()
                c = (not taken) and _eval_condition(rest, defined)
                stack.append((c, taken or c))
            elif word == "else":
                _, taken = stack.pop()
                stack.append((not taken, True))
            elif word == "endif":
                stack.pop()
            elif word == "define" and active:
                name, _, value = rest.partition(" ")
                value = value.strip()
                if re.fullmatch(r"-?\d+", value):
                    ints[name] = int(value)
                    defined[name] = int(value)
                elif value.startswith('"'):
                    strings[name] = value.strip('"')
                    defined[name] = 1
                else:
                    defined[name] = 1
            continue
        if active and s:
            out.append(line)
    body = "\n".join(out)
    for name, value in ints.items():
        body = re.sub(rf"\b{name}\b", str(value), body)
    body = body.replace('extern "C" {', "").strip()
    lines = [f"#define {n} {v}" for n, v in ints.items()]
    return "\n".join(lines) + "\n" + body + "\n", ints, strings


HEADER_TEXT = HEADER_PATH.read_text()
CDEF, MACROS, STRING_MACROS = plain_cdef(HEADER_TEXT)

ffi = FFI()
ffi.cdef(CDEF)


def c_string(value):
    """``value`` (bytes) as it may go to a ``char *`` parameter. C strings end at the
    first NUL, so ``b"x\\x00y"`` would reach the library as ``"x"`` (saving array
    ``'x\\x00y'`` would overwrite ``'x'``): refuse it instead, naming the value."""
    if b"\x00" in value:
        shown = value.decode("utf-8", "surrogateescape")
        raise ValueError(f"{shown!r} contains a NUL character, which a C string cannot hold")
    return value


def _guarded(fn, positions):
    """``fn`` (a cffi function) checking its ``char *`` arguments with ``c_string``."""
    if len(positions) == 1:
        (p,) = positions

        def call(*args):
            a = args[p] if p < len(args) else None
            if type(a) is bytes and b"\x00" in a:
                c_string(a)
            return fn(*args)
    else:
        def call(*args):
            for p in positions:
                a = args[p] if p < len(args) else None
                if type(a) is bytes and b"\x00" in a:
                    c_string(a)
            return fn(*args)
    call.__name__ = call.__qualname__ = getattr(fn, "__name__", "npk_function")
    return call


class _Library:
    """The library as loaded by cffi, with every function that takes a ``char *``
    wrapped by ``_guarded``: this is the one place strings cross into C, so a NUL inside
    a name, path or metric is refused here whatever module passes it. Attributes are
    resolved on first use and kept."""

    def __init__(self, raw):
        self._raw = raw

    def __getattr__(self, attr):
        value = getattr(self._raw, attr)
        if isinstance(value, ffi.CData):
            t = ffi.typeof(value)
            if t.kind == "function":
                positions = tuple(i for i, a in enumerate(t.args)
                                  if a.kind == "pointer" and a.item.cname == "char")
                if positions:
                    value = _guarded(value, positions)
        setattr(self, attr, value)
        return value

    def __dir__(self):
        return dir(self._raw)


raw_lib = ffi.dlopen(str(LIBRARY_PATH))
lib = _Library(raw_lib)

__version__ = ffi.string(lib.npk_version()).decode()
if __version__ != STRING_MACROS.get("NPK_VERSION_STRING"):
    raise ImportError(
        f"numpack: library {LIBRARY_PATH} is version {__version__}, "
        f"header {HEADER_PATH} is {STRING_MACROS.get('NPK_VERSION_STRING')}"
    )


def _enum(name):
    return dict(ffi.typeof(f"enum {name}").relements)


STATUS = _enum("npk_status")  # e.g. {"NPK_STATUS_OK": 0, ...}
DTYPE_CODES = _enum("npk_dtype")


# ----- errors -------------------------------------------------------------------------


class NumpackError(Exception):
    """Base of every error the library reports. ``code`` is the raw ``npk_status``
    number, ``status`` its name (e.g. ``"NOT_FOUND"``)."""

    code = None
    status = None

    def __init__(self, message="", code=None):
        super().__init__(message)
        if code is not None:
            self.code = code

    def __str__(self):  # KeyError would otherwise show the repr of the message
        return str(self.args[0]) if self.args else ""


# The Python base class (or classes) for each status *name*. Statuses a newer library adds map to
# plain NumpackError(RuntimeError).
_BASES = {
    "NULL_ARGUMENT": ValueError,
    "INVALID_ARGUMENT": ValueError,
    "INVALID_NAME": ValueError,
    # NumPack raises ValueError for a replace past the end and for an append of another
    # dtype: code catching that keeps working.
    "INDEX_OUT_OF_RANGE": (IndexError, ValueError),
    "DTYPE_MISMATCH": (TypeError, ValueError),
    "SHAPE_MISMATCH": ValueError,
    "BUFFER_SIZE": ValueError,
    "NOT_FOUND": KeyError,
    "ALREADY_EXISTS": ValueError,
    "STORE_NOT_FOUND": FileNotFoundError,
    "READ_ONLY": PermissionError,
    "IO": OSError,
    "CORRUPT": RuntimeError,
    "UNSUPPORTED": NotImplementedError,
    "NEEDS_RECOVERY": RuntimeError,
    "PANIC": RuntimeError,
}


def _class_name(status_name):
    return "".join(p.capitalize() for p in status_name.split("_")) + "Error"


ERRORS = {}  # code -> class
ERRORS_BY_NAME = {}  # "NOT_FOUND" -> class
for _enumerator, _code in STATUS.items():
    if _code == 0:
        continue
    _sname = ffi.string(lib.npk_status_name(_code)).decode()
    _base = _BASES.get(_sname, RuntimeError)
    _cls = type(
        _class_name(_sname),
        (NumpackError,) + (_base if isinstance(_base, tuple) else (_base,)),
        {"code": _code, "status": _sname, "__module__": "numpack"},
    )
    ERRORS[_code] = _cls
    ERRORS_BY_NAME[_sname] = _cls

_UNKNOWN = type("UnknownStatusError", (NumpackError, RuntimeError), {"__module__": "numpack"})


def error_for(status):
    message = ffi.string(lib.npk_last_error_message()).decode("utf-8", "replace")
    cls = ERRORS.get(status, _UNKNOWN)
    if not message:
        message = ffi.string(lib.npk_status_name(status)).decode()
    return cls(message, status)


def check(status):
    """Raise the exception for a failed ``npk_status``."""
    if status != 0:
        raise error_for(status)


def take_names(names):
    """The strings of an ``npk_names`` list, which this releases."""
    try:
        return [ffi.string(lib.npk_names_get(names, i)).decode("utf-8") for i in range(lib.npk_names_count(names))]
    finally:
        lib.npk_names_free(names)


# ----- dtypes -------------------------------------------------------------------------

CODE_TO_DTYPE = {}
DTYPE_TO_CODE = {}
for _code in DTYPE_CODES.values():
    _dt = np.dtype(ffi.string(lib.npk_dtype_name(_code)).decode()).newbyteorder("<")
    assert _dt.itemsize == lib.npk_dtype_size(_code)
    CODE_TO_DTYPE[_code] = _dt
    DTYPE_TO_CODE[_dt] = _code
