#!/usr/bin/env python3
"""Static checks of the Julia bindings against include/numpack.h, without Julia.

Parses the header (prototypes, structs, NPK_DTYPE_* / NPK_STATUS_* values, #defines) and
the Julia sources' ccall expressions, and checks that:
  - every ccall names an exported function, with as many argument types as the C
    prototype has parameters, as many argument values as types, and Julia types that
    match the C types (return type included);
  - every export is called by exactly one ccall, and listed in LibNumPack.EXPORTS;
  - each wrapper function has the name of the symbol it calls and as many parameters;
  - the Julia mirrors of the header's structs (npk_array_info, npk_vectors, ...) have its fields;
  - the status, dtype, metric and other constants in Julia equal the header's;
  - NumPack.JULIA_TYPES maps every dtype code to the right Julia type.
Prints one line per failure and "N passed, M failed" last; exits 1 on any failure.

Usage: check.py [--header include/numpack.h] [--package bindings/julia/NumPack.jl]
       check.py --selftest    (mutates copies of the package and expects failures)
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_HEADER = os.path.join(ROOT, "include", "numpack.h")
DEFAULT_PACKAGE = os.path.join(ROOT, "bindings", "julia", "NumPack.jl")

# C scalar type -> accepted Julia spellings.
SCALARS = {
    "void": {"Cvoid", "Nothing"},
    "char": {"UInt8", "Cchar", "Int8"},
    "bool": {"Bool"},
    "uint8_t": {"UInt8"},
    "uint16_t": {"UInt16"},
    "uint32_t": {"UInt32", "Cuint"},
    "uint64_t": {"UInt64"},
    "int8_t": {"Int8"},
    "int16_t": {"Int16"},
    "int32_t": {"Int32", "Cint"},
    "int64_t": {"Int64"},
    "size_t": {"Csize_t", "UInt"},
    "float": {"Float32", "Cfloat"},
    "double": {"Float64", "Cdouble"},
    "npk_status": {"UInt32", "Cuint"},  # read as a raw integer, never as an enum
}

DTYPE_JULIA = {
    "BOOL": "Bool", "UINT8": "UInt8", "UINT16": "UInt16", "UINT32": "UInt32",
    "UINT64": "UInt64", "INT8": "Int8", "INT16": "Int16", "INT32": "Int32",
    "INT64": "Int64", "FLOAT16": "Float16", "FLOAT32": "Float32", "FLOAT64": "Float64",
    "COMPLEX64": "ComplexF32", "COMPLEX128": "ComplexF64",
}


class Checker:
    def __init__(self):
        self.passed = 0
        self.failures = []

    def ok(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failures.append(what)
        return cond


# -- header ----------------------------------------------------------------------------

def strip_c_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def parse_c_type(decl):
    """'const uint64_t *shape' -> ('uint64_t', 1, 'shape'); also works without a name."""
    decl = decl.replace("const", " ")
    stars = decl.count("*")
    words = decl.replace("*", " ").split()
    return words, stars


def parse_header(path):
    text = strip_c_comments(open(path, encoding="utf-8").read())
    defines = {}
    for m in re.finditer(r"^\s*#define\s+(NPK_\w+)\s+(\"[^\"]*\"|\d+)\s*$", text, re.M):
        v = m.group(2)
        defines[m.group(1)] = v[1:-1] if v.startswith('"') else int(v)
    enums = {}
    for m in re.finditer(r"\b(NPK_(?:STATUS|DTYPE|METRIC)_\w+)\s*=\s*(\d+)", text):
        enums[m.group(1)] = int(m.group(2))
    body = re.sub(r"^\s*#.*$", " ", text, flags=re.M)
    functions = {}
    for m in re.finditer(r"([A-Za-z_][\w\s\*]*?)\b(npk_\w+)\s*\(([^()]*)\)\s*;", body):
        ret_words, ret_stars = parse_c_type(m.group(1))
        params = []
        raw = m.group(3).strip()
        if raw and raw != "void":
            for p in raw.split(","):
                words, stars = parse_c_type(p)
                if len(words) < 2:
                    raise SystemExit(f"cannot parse parameter {p!r} of {m.group(2)}")
                params.append((" ".join(words[:-1]), stars, words[-1]))
        functions[m.group(2)] = {
            "ret": (" ".join(ret_words[-1:]), ret_stars),
            "params": params,
            "const_char_ret": "char" in ret_words and ret_stars == 1,
        }
    structs = {}
    for m in re.finditer(r"typedef\s+struct\s*\{(.*?)\}\s*(npk_\w+)\s*;", body, re.S):
        fields = []
        for f in m.group(1).split(";"):
            f = f.strip()
            if not f:
                continue
            arr = re.search(r"\[(\w+)\]\s*$", f)
            if arr:
                f = f[: arr.start()]
            words, stars = parse_c_type(f)
            fields.append((words[-1], " ".join(words[:-1]), stars, arr.group(1) if arr else None))
        structs[m.group(2)] = fields
    opaque = set(re.findall(r"typedef\s+struct\s+(npk_\w+)\s+\1\s*;", body))
    return defines, enums, functions, structs, opaque


# -- Julia -----------------------------------------------------------------------------

def strip_julia_comments(text):
    text = re.sub(r"#=.*?=#", " ", text, flags=re.S)
    out = []
    for line in text.split("\n"):
        # Drop a comment that is not inside a string (the sources keep '#' out of strings
        # on ccall lines; a '#' inside quotes is left alone).
        in_str = False
        cut = len(line)
        for i, ch in enumerate(line):
            if ch == '"' and (i == 0 or line[i - 1] != "\\"):
                in_str = not in_str
            elif ch == "#" and not in_str:
                cut = i
                break
        out.append(line[:cut])
    return "\n".join(out)


def balanced(text, start):
    """text[start] is '('; returns the index of the matching ')'."""
    depth = 0
    in_str = False
    i = start
    while i < len(text):
        ch = text[i]
        if in_str:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError("unbalanced parentheses")


def split_top(text):
    """Splits on commas outside brackets and strings."""
    parts, depth, cur, in_str = [], 0, [], False
    for ch in text:
        if in_str:
            cur.append(ch)
            if ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def parse_julia(package):
    src = os.path.join(package, "src")
    texts = {}
    for dirpath, _, files in os.walk(src):
        for f in sorted(files):
            if f.endswith(".jl"):
                p = os.path.join(dirpath, f)
                texts[os.path.relpath(p, package)] = strip_julia_comments(open(p, encoding="utf-8").read())
    ccalls = []
    for path, text in texts.items():
        for m in re.finditer(r"\bccall\s*\(", text):
            open_i = m.end() - 1
            close_i = balanced(text, open_i)
            args = split_top(text[open_i + 1 : close_i])
            line = text.count("\n", 0, m.start()) + 1
            # The definition this ccall belongs to: `name(params) =` just before it.
            before = text[: m.start()]
            d = list(re.finditer(r"^(\w+)\(([^()]*)\)\s*=\s*$|^(\w+)\(([^()]*)\)\s*=", before, re.M))
            wrapper = None
            if d:
                last = d[-1]
                name = last.group(1) or last.group(3)
                params = last.group(2) if last.group(1) else last.group(4)
                # Only when nothing but whitespace separates the '=' from the ccall.
                if before[last.end():].strip() == "":
                    wrapper = (name, [p for p in split_top(params)])
            ccalls.append({"file": path, "line": line, "args": args, "wrapper": wrapper})
    consts = {}
    structs = {}
    exports = None
    julia_types = None
    for text in texts.values():
        for m in re.finditer(r"^\s*const\s+(NPK_\w+)\s*=\s*(.+?)\s*$", text, re.M):
            v = m.group(2)
            mm = re.fullmatch(r"(?:UInt32|Cuint|UInt64|Int|Int32)\((\d+|0x[0-9a-fA-F]+)\)|(\d+|0x[0-9a-fA-F]+)|\"([^\"]*)\"", v)
            if mm is None:
                consts[m.group(1)] = ("unparsed", v)
            elif mm.group(3) is not None:
                consts[m.group(1)] = mm.group(3)
            else:
                consts[m.group(1)] = int(mm.group(1) or mm.group(2), 0)
        for m in re.finditer(r"^\s*struct\s+(npk_\w+)\s*\n(.*?)^\s*end\b", text, re.M | re.S):
            fields = re.findall(r"^\s*(\w+)::(.+?)\s*$", m.group(2), re.M)
            structs[m.group(1)] = fields
        m = re.search(r"const\s+EXPORTS\s*=\s*\((.*?)\)", text, re.S)
        if m:
            exports = [s.strip().lstrip(":") for s in split_top(m.group(1))]
        m = re.search(r"const\s+JULIA_TYPES\s*=\s*\((.*?)\)", text, re.S)
        if m:
            julia_types = split_top(m.group(1))
    return ccalls, consts, structs, exports, julia_types, texts


# -- matching ----------------------------------------------------------------------------

def norm(j):
    j = re.sub(r"\s+", "", j)
    return re.sub(r"\b(?:LibNumPack|L)\.", "", j)


def julia_matches(ctype, stars, j, *, arg, const_char=False):
    """Does Julia type j match C type `ctype` with `stars` pointer levels?"""
    j = norm(j)
    if stars == 0:
        if ctype.startswith("npk_") and ctype != "npk_status":
            return j == ctype
        return j in SCALARS.get(ctype, set())
    if stars == 1 and ctype == "char":
        return j in {"Cstring", "Ptr{UInt8}", "Ptr{Cchar}", "Ptr{Int8}"}
    m = re.fullmatch(r"(Ptr|Ref)\{(.+)\}", j)
    if not m:
        return False
    if m.group(1) == "Ref" and not arg:
        return False
    inner = m.group(2)
    if ctype == "void" and stars == 1:
        return inner in {"Cvoid", "Nothing"}
    return julia_matches(ctype, stars - 1, inner, arg=True)


def check(header, package, quiet=False):
    c = Checker()
    defines, enums, functions, cstructs, opaque = parse_header(header)
    c.ok(len(functions) > 0, f"no function prototypes found in {header}")
    c.ok(any(k.startswith("NPK_STATUS_") for k in enums), "no NPK_STATUS_* values in the header")
    c.ok(any(k.startswith("NPK_DTYPE_") for k in enums), "no NPK_DTYPE_* values in the header")
    c.ok(any(k.startswith("NPK_METRIC_") for k in enums), "no NPK_METRIC_* values in the header")
    ccalls, consts, jstructs, exports, julia_types, texts = parse_julia(package)
    c.ok(len(ccalls) > 0, f"no ccall found under {package}/src")

    seen = {}
    for call in ccalls:
        where = f"{call['file']}:{call['line']}"
        args = call["args"]
        if not c.ok(len(args) >= 3, f"{where}: ccall with fewer than 3 arguments"):
            continue
        m = re.search(r":(npk_\w+)", args[0])
        if not c.ok(m is not None, f"{where}: ccall target {args[0]!r} names no npk_ symbol"):
            continue
        sym = m.group(1)
        seen.setdefault(sym, []).append(where)
        if not c.ok(sym in functions, f"{where}: {sym} is not exported by the header"):
            continue
        f = functions[sym]
        ret_t, ret_stars = f["ret"]
        if f["const_char_ret"]:
            ret_t = "char"
        c.ok(julia_matches(ret_t, ret_stars, args[1], arg=False),
             f"{where}: {sym} returns {ret_t}{'*' * ret_stars}, ccall says {args[1]}")
        tup = args[2].strip()
        if not c.ok(tup.startswith("(") and tup.endswith(")"),
                    f"{where}: {sym}: argument types are not a tuple literal: {tup}"):
            continue
        types = split_top(tup[1:-1])
        params = f["params"]
        if c.ok(len(types) == len(params),
                f"{where}: {sym} takes {len(params)} arguments, ccall declares {len(types)}"):
            for k, ((ct, stars, pname), jt) in enumerate(zip(params, types)):
                c.ok(julia_matches(ct, stars, jt, arg=True),
                     f"{where}: {sym} argument {k + 1} ({pname}) is {ct}{'*' * stars}, ccall says {jt}")
        values = args[3:]
        c.ok(len(values) == len(types),
             f"{where}: {sym}: {len(types)} argument types but {len(values)} values")
        w = call["wrapper"]
        if c.ok(w is not None, f"{where}: {sym}: ccall is not the body of a `name(args) =` wrapper"):
            c.ok(w[0] == sym, f"{where}: wrapper {w[0]} calls {sym}")
            c.ok(len(w[1]) == len(params),
                 f"{where}: wrapper {w[0]} takes {len(w[1])} parameters, {sym} {len(params)}")
            c.ok([v.strip() for v in values] == [p.strip() for p in w[1]],
                 f"{where}: {sym}: values {values} are not the wrapper's parameters {w[1]} in order")

    for sym in sorted(functions):
        c.ok(sym in seen, f"export {sym} has no ccall")
        c.ok(len(seen.get(sym, [])) <= 1, f"export {sym} is called by several ccalls: {seen.get(sym)}")
    if c.ok(exports is not None, "LibNumPack.EXPORTS not found"):
        c.ok(sorted(exports) == sorted(functions),
             f"EXPORTS differs from the header: missing {sorted(set(functions) - set(exports))}, "
             f"extra {sorted(set(exports) - set(functions))}")

    # Structs.
    for name, fields in sorted(cstructs.items()):
        if not c.ok(name in jstructs, f"struct {name} has no Julia mirror"):
            continue
        jf = jstructs[name]
        if not c.ok(len(jf) == len(fields), f"{name}: {len(fields)} fields in C, {len(jf)} in Julia"):
            continue
        for (fname, ct, stars, arr), (jname, jt) in zip(fields, jf):
            c.ok(fname == jname, f"{name}: field {jname} should be {fname}")
            if arr:
                m = re.fullmatch(r"NTuple\{(\w+),(.+)\}", norm(jt))
                size_ok = m is not None and (m.group(1) == arr or str(defines.get(arr)) == m.group(1))
                c.ok(size_ok and julia_matches(ct, stars, m.group(2), arg=False),
                     f"{name}.{fname}: {ct}[{arr}] in C, {jt} in Julia")
            else:
                c.ok(julia_matches(ct, stars, jt, arg=False), f"{name}.{fname}: {ct}{'*' * stars} in C, {jt} in Julia")
    for name in sorted(opaque):
        c.ok(any(re.search(rf"\bstruct\s+{name}\s+end\b", t) for t in texts.values()),
             f"opaque handle {name} has no Julia type")

    # Constants.
    for name, value in sorted({**defines, **enums}.items()):
        if not c.ok(name in consts, f"constant {name} is missing from the Julia sources"):
            continue
        c.ok(consts[name] == value, f"constant {name} is {value!r} in the header, {consts[name]!r} in Julia")
    for name in sorted(consts):
        if name.startswith(("NPK_STATUS_", "NPK_DTYPE_", "NPK_METRIC_")):
            c.ok(name in enums, f"Julia constant {name} is not in the header")
    if c.ok(julia_types is not None, "NumPack.JULIA_TYPES not found"):
        dtypes = sorted((v, k[len("NPK_DTYPE_"):]) for k, v in enums.items() if k.startswith("NPK_DTYPE_"))
        c.ok([v for v, _ in dtypes] == list(range(len(dtypes))), "dtype codes are not 0..n-1")
        c.ok(len(julia_types) == len(dtypes),
             f"JULIA_TYPES has {len(julia_types)} entries, the header {len(dtypes)} dtypes")
        for (code, dname), jt in zip(dtypes, julia_types):
            c.ok(DTYPE_JULIA.get(dname) == jt.strip(),
                 f"JULIA_TYPES[{code + 1}] is {jt}, NPK_DTYPE_{dname} needs {DTYPE_JULIA.get(dname)}")

    # Every L.npk_* the Julian layer uses is a wrapper.
    for path, text in texts.items():
        for m in re.finditer(r"\bL\.(npk_\w+)\s*\(", text):
            c.ok(m.group(1) in functions or m.group(1) in cstructs,
                 f"{path}: calls L.{m.group(1)}, which is neither an export nor a struct")

    if not quiet:
        for f in c.failures:
            print("FAIL", f)
        print(f"checked {len(functions)} exports, {len(ccalls)} ccalls, "
              f"{len(defines) + len(enums)} constants, {len(cstructs)} structs")
        print(f"{c.passed} passed, {len(c.failures)} failed")
    return c


# -- self-test ------------------------------------------------------------------------------

MUTATIONS = [
    ("one argument type removed from a ccall",
     "(Ptr{npk_store}, Cstring, UInt64, UInt64, Ptr{Cvoid}, Csize_t)",
     "(Ptr{npk_store}, Cstring, UInt64, Ptr{Cvoid}, Csize_t)"),
    ("an argument type and value removed",
     "(Ptr{npk_store}, Cstring, Ptr{Int64}, Csize_t),\n          store, name, idx, n)",
     "(Ptr{npk_store}, Cstring, Ptr{Int64}),\n          store, name, idx)"),
    ("a wrong argument type (UInt32 for uint64_t)",
     "(Ptr{npk_store}, Cstring, UInt64, Ptr{Ptr{npk_stream}})",
     "(Ptr{npk_store}, Cstring, UInt32, Ptr{Ptr{npk_stream}})"),
    ("a wrong pointer level",
     "(Cstring, UInt32, Ptr{Ptr{npk_store}})", "(Cstring, UInt32, Ptr{npk_store})"),
    ("a wrong return type", "ccall(fptr(:npk_store_sync), UInt32", "ccall(fptr(:npk_store_sync), Cint"),
    ("a misspelled symbol", "fptr(:npk_store_drop)", "fptr(:npk_store_dropp)"),
    ("a wrong status value", "NPK_STATUS_NOT_FOUND = UInt32(20)", "NPK_STATUS_NOT_FOUND = UInt32(19)"),
    ("a wrong dtype value", "NPK_DTYPE_FLOAT32 = UInt32(10)", "NPK_DTYPE_FLOAT32 = UInt32(11)"),
    ("a wrong struct field type", "    nbytes::Csize_t", "    nbytes::UInt32"),
    ("a wrong metric value", "NPK_METRIC_L2SQ = UInt32(4)", "NPK_METRIC_L2SQ = UInt32(3)"),
    ("a metric constant missing", "const NPK_METRIC_JS = UInt32(8)\n", ""),
    ("a wrong npk_vectors field type", "    dim::UInt64", "    dim::UInt32"),
    ("a Bool return read as UInt32",
     "ccall(fptr(:npk_metric_is_similarity), Bool", "ccall(fptr(:npk_metric_is_similarity), UInt32"),
    ("an export left unwrapped",
     "npk_view_flush(view) = ccall(fptr(:npk_view_flush), UInt32, (Ptr{npk_view},), view)", ""),
]


def selftest(header, package):
    c = Checker()
    base = check(header, package, quiet=True)
    c.ok(not base.failures, f"the unmodified package must pass (failures: {base.failures[:3]})")
    lib = os.path.join("src", "LibNumPack.jl")
    with tempfile.TemporaryDirectory() as tmp:
        for what, old, new in MUTATIONS:
            copy = os.path.join(tmp, "pkg")
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(package, copy)
            p = os.path.join(copy, lib)
            text = open(p, encoding="utf-8").read()
            if not c.ok(old in text, f"mutation '{what}': text not found in {lib}"):
                continue
            open(p, "w", encoding="utf-8").write(text.replace(old, new, 1))
            # Run as a separate process, as a user would, and expect a non-zero exit.
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--header", header,
                                "--package", copy], capture_output=True, text=True)
            caught = r.returncode != 0 and "FAIL" in r.stdout
            c.ok(caught, f"mutation '{what}' was not caught")
            if caught:
                first = next(l for l in r.stdout.splitlines() if l.startswith("FAIL"))
                print(f"caught {what}: {first}")
        # A header with one more export must also fail (unwrapped export).
        h2 = os.path.join(tmp, "numpack.h")
        htext = open(header, encoding="utf-8").read()
        marker = "#ifdef __cplusplus\n}"
        c.ok(marker in htext, "header: end of extern \"C\" block not found")
        open(h2, "w", encoding="utf-8").write(htext.replace(marker, "npk_status npk_new_thing(const npk_store *store);\n\n" + marker, 1))
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--header", h2, "--package", package],
                           capture_output=True, text=True)
        c.ok(r.returncode != 0 and "npk_new_thing" in r.stdout, "a new header export without a ccall was not caught")
        if r.returncode != 0:
            print("caught a new export in the header with no ccall")
    for f in c.failures:
        print("FAIL", f)
    print(f"{c.passed} passed, {len(c.failures)} failed")
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--header", default=DEFAULT_HEADER)
    ap.add_argument("--package", default=DEFAULT_PACKAGE)
    ap.add_argument("--selftest", action="store_true")
    a = ap.parse_args()
    c = selftest(a.header, a.package) if a.selftest else check(a.header, a.package)
    sys.exit(1 if c.failures else 0)


if __name__ == "__main__":
    main()
