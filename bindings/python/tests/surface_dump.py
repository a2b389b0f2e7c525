"""Prints the public surface of the importable ``numpack`` package as JSON: the names of
its modules, the members of its classes and their signatures. test_surface07.py runs it
under NumPack 0.7.0 and under this package and compares the two."""

import inspect
import json
import sys
import tempfile

import numpy as np

# Special methods that are part of what callers use.
DUNDERS = {
    "__getitem__", "__len__", "__iter__", "__enter__", "__exit__", "__array__",
    "__array_interface__", "__dlpack__", "__dlpack_device__", "__buffer__", "__copy__",
    "__deepcopy__", "__contains__", "__init__", "__add__", "__and__", "__or__", "__xor__",
    "__invert__", "__abs__", "__divmod__", "__matmul__", "__rmatmul__",
}


def signature(obj):
    """[[name, kind, repr(default) or None], ...] without ``self``; None if unknown."""
    try:
        s = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [[p.name, p.kind.name, None if p.default is inspect.Parameter.empty else repr(p.default)]
            for p in s.parameters.values() if p.name != "self"]


def members(cls):
    out = {}
    for name in dir(cls):
        if name.startswith("_") and name not in DUNDERS:
            continue
        value = getattr(cls, name)
        out[name] = {"kind": type(value).__name__, "sig": signature(value) if callable(value) else None}
    return out


def public(module):
    """Names a caller imports: what ``__all__`` lists and what numpack defines, not the
    modules, typing helpers or classes (``Path``...) it imported for itself."""
    names = set(getattr(module, "__all__", ()))
    for name in dir(module):
        value = getattr(module, name)
        if name.startswith("_") or inspect.ismodule(value):
            continue
        if str(getattr(value, "__module__", "")).startswith("numpack"):
            names.add(name)
    return sorted(names)


def main():
    import numpack
    import numpack.vector_engine as ve
    import numpack.writable_array as wa

    with numpack.NumPack(tempfile.mkdtemp() + "/s", warn_no_context=False) as npk:
        npk.save({"a": np.zeros((3, 2))})
        lazy_class = type(npk.load("a", lazy=True))
    surface = {
        "modules": {
            "numpack": public(numpack),
            "numpack.vector_engine": public(ve),
            "numpack.writable_array": public(wa),
        },
        "all": {"numpack": sorted(numpack.__all__), "numpack.vector_engine": sorted(ve.__all__)},
        "classes": {
            "NumPack": members(numpack.NumPack),
            "LazyArray": members(lazy_class),
            "BatchModeContext": members(numpack.BatchModeContext),
            "VectorEngine": members(ve.VectorEngine),
            # NumPack's wrapper class hands out its native object
            "StreamingVectorEngine": members(type(ve.StreamingVectorEngine())),
            "WritableArray": members(wa.WritableArray),
            "WritableBatchMode": members(wa.WritableBatchMode),
        },
        "functions": {name: signature(getattr(numpack, name))
                      for name in ("pack", "unpack", "get_package_info", "force_cleanup_windows_handles")},
        "has_version": isinstance(getattr(numpack, "__version__", None), str),
    }
    json.dump(surface, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
