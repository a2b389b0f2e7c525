"""
    NumPack

Julia bindings for numpack, a store of N-dimensional arrays on disk compatible with
NumPack's format, over its C ABI (`LibNumPack`, one `ccall` per export).

# Row-major on disk, column-major in Julia

numpack stores arrays in C order. A C-order array of shape `(n, d)` has exactly the
memory layout of a column-major Julia `d × n` matrix, so this package reverses the shape
instead of moving data:

- `read(store, "x")`, `store["x"]` and `lazy(store, "x")` give a `d × n` matrix: column `j`
  is stored row `j` (1-based). Pass `rowmajor=true` to `read` for an `n × d` permuted
  copy.
- `write`/`append!` take Julia arrays in the same orientation: a `d × k` matrix is `k`
  rows of length `d`. (`rowmajor=true` accepts `k × d` and permutes.)
- Row indices (`store["x", 5]`, `store["x", 2:4]`, `deleteat!`) are 1-based row numbers,
  i.e. column numbers of the Julia matrix.

# Lifetimes

`NumPackStore` is closed by `close` (or a `do` block); a finalizer is only a backstop, and
it never blocks: it queues the handle and the queue is drained by the next `open`/`close`
and at exit. Arrays from `lazy` are plain `Array`s over the memory map (zero-copy,
`unsafe_wrap(...; own=false)`); the map is released by a finalizer of that array, so it
lives as long as the array (keep the array, not a pointer into it).

# Errors

Every failing call throws `NumPackError(code, name, message)`; `code` is the raw
`npk_status` (compare with `NumPack.LibNumPack.NPK_STATUS_*`).

# Library

The shared library is found from `ENV["NUMPACK_LIB"]` (a path to `libnumpack.so`), else
the `libnumpack` preference (`NumPack.set_library!(path)`, stored by Preferences.jl).
Its version is checked in `__init__`.

# Vector search

Exact (brute-force) similarity search, in memory or over a stored array read in place:
`topk` (exported), `NumPack.scores`, `NumPack.distance`, with `NumPack.metric_code`,
`metric_name`, `metrics`, `is_similarity` and `vector_capabilities`.

**Layout.** Vectors are the *columns* of a Julia matrix: a `d × n` matrix is `n` vectors
of `d` elements (the same memory as the C API's row-major `n × d`, so nothing is copied
or permuted), and an `AbstractVector` is one vector. A stored array of shape `(n, d)`,
which `read` gives as `d × n`, is `n` vectors of `d`; a 1-d array is `n` vectors of one
element; an `(n, d₁, d₂)` array is `n` vectors of `d₁·d₂`, the column-major flattening of
its `d₂ × d₁` slices.

**Results.** `topk` returns `(indices, scores)`: for one query vector, two vectors of
`kk = min(k, n)` entries, best first; for a `d × q` matrix of queries, two `kk × q`
matrices whose column `j` is query `j`'s result. Indices are 1-based column numbers (for a
stored array: logical row numbers, deleted rows skipped, as `store[name, i]` counts).
`scores` returns the `n × q` matrix `S[i, j]` = metric(query `j`, candidate `i`) (a
length-`n` vector for one query).

**Metrics.** Names or `Symbol`s, case-insensitive, with aliases (`:cosine`, `"cos"`,
`:euclidean` = `:l2`, `"L2_squared"` = `:l2sq`, ...; see [`metric_code`](@ref)):
similarities `dot`, `inner`, `cosine` rank the highest first, distances `l2`, `l2sq`,
`hamming`, `jaccard`, `kl`, `js` the lowest. Equal scores rank the lower index first and
NaN scores last. `hamming` and `jaccard` read `UInt8` vectors as packed bits.

**Element types.** `Float32`, `Float64`, `Float16`, `Int8` and `UInt8` are passed as they
are; other integer and float types are converted to `Float64` (a copy). When the query's
type differs from the candidates', the library converts the query to the candidates'
float type; `Int8`/`UInt8` candidates need a query of the same type.

Errors are `NumPackError`s with the library's code (e.g. `SHAPE_MISMATCH` when the
lengths of the vectors differ, `DTYPE_MISMATCH`), or `ArgumentError` for what never
reaches the library (a negative `k`, complex elements).
"""
module NumPack

using Libdl
using Preferences

include("LibNumPack.jl")
using .LibNumPack
const L = LibNumPack

export NumPackStore, NumPackError, compact!, lazy, eachbatch, rename!, sync, refresh, shape, topk
export check_store, CheckFinding  # check (cli branch)
export compression  # compressed arrays

# -- library path and version ----------------------------------------------------------

"""
    set_library!(path)

Remembers `path` (a `libnumpack.so`) in the package's `LocalPreferences.toml`; takes
effect at the next session. `ENV["NUMPACK_LIB"]` still wins.
"""
set_library!(path::AbstractString) = @set_preferences!("libnumpack" => String(path))

function library_path()
    p = get(ENV, "NUMPACK_LIB", "")
    isempty(p) || return p
    p = @load_preference("libnumpack", "")
    isempty(p) || return p
    return ""
end

const LOAD_ERROR = Ref{String}("")

function __init__()
    path = library_path()
    if isempty(path)
        LOAD_ERROR[] = "NumPack: no libnumpack. Set ENV[\"NUMPACK_LIB\"] to the path of " *
                       "libnumpack.so (cargo build --lib puts it in target/debug or target/release) " *
                       "or call NumPack.set_library!(path), then restart Julia."
        @warn LOAD_ERROR[]
        return
    end
    try
        L.load_library(path)
    catch e
        LOAD_ERROR[] = "NumPack: cannot load libnumpack from $(repr(path)): $(sprint(showerror, e))"
        @warn LOAD_ERROR[]
        return
    end
    lib = library_version()
    want = VersionNumber(L.NPK_VERSION_STRING)
    # 0.x: the minor version is the compatibility boundary.
    if lib.major != want.major || (want.major == 0 && lib.minor != want.minor) || lib < want
        LOAD_ERROR[] = "NumPack: $(repr(path)) is libnumpack $lib; this package needs $want " *
                       "(same $(want.major == 0 ? "minor" : "major") version)"
        L.HANDLE[] = C_NULL
        empty!(L.FPTRS)
        @warn LOAD_ERROR[]
    end
    atexit(drain_pending)
    return
end

function ensure_loaded()
    L.is_loaded() || error(isempty(LOAD_ERROR[]) ? "NumPack: libnumpack is not loaded" : LOAD_ERROR[])
    return nothing
end

"The library's version."
library_version() = (ensure_loaded(); VersionNumber(unsafe_string(L.npk_version())))

# -- errors ------------------------------------------------------------------------------

"""
    NumPackError(code, name, message)

A failed call: `code` is the raw `npk_status` (a `UInt32`), `name` its identifier (e.g.
"NOT_FOUND"), `message` the library's explanation.
"""
struct NumPackError <: Exception
    code::UInt32
    name::String
    message::String
end
Base.showerror(io::IO, e::NumPackError) = print(io, "NumPackError ", e.name, " (", e.code, "): ", e.message)

status_name(code::Integer) = unsafe_string(L.npk_status_name(UInt32(code)))

# Reads the message on the calling thread right after the failing call.
@inline function check(status::UInt32)
    status == L.NPK_STATUS_OK && return nothing
    msg = unsafe_string(L.npk_last_error_message())
    throw(NumPackError(status, status_name(status), msg))
end

# -- dtypes ------------------------------------------------------------------------------

const JULIA_TYPES = (Bool, UInt8, UInt16, UInt32, UInt64, Int8, Int16, Int32, Int64,
                     Float16, Float32, Float64, ComplexF32, ComplexF64)  # index = dtype code + 1

"The Julia element type of dtype code `code`."
function julia_type(code::Integer)
    0 <= code < length(JULIA_TYPES) || throw(NumPackError(L.NPK_STATUS_UNSUPPORTED, "UNSUPPORTED", "unknown dtype code $code"))
    return JULIA_TYPES[code+1]
end

"The dtype code of Julia element type `T`."
function dtype_code(::Type{T}) where {T}
    i = findfirst(==(T), JULIA_TYPES)
    i === nothing && throw(ArgumentError("numpack cannot store elements of type $T; use one of $(JULIA_TYPES)"))
    return UInt32(i - 1)
end

# -- the store ---------------------------------------------------------------------------

"""
    NumPackStore(path; create=true, drop=false, readonly=false)
    open(NumPackStore, path; ...) do store ... end

An open store. Close it with `close` (a finalizer is only a backstop).
"""
mutable struct NumPackStore
    ptr::Ptr{L.npk_store}
    path::String
    function NumPackStore(path::AbstractString; create::Bool=true, drop::Bool=false, readonly::Bool=false)
        ensure_loaded()
        drain_pending()
        flags = UInt32(0)
        create && !readonly && (flags |= L.NPK_OPEN_CREATE)
        drop && (flags |= L.NPK_OPEN_DROP_IF_EXISTS)
        readonly && (flags |= L.NPK_OPEN_READ_ONLY)
        out = Ref{Ptr{L.npk_store}}(C_NULL)
        check(L.npk_store_open(String(path), flags, out))
        s = new(out[], String(path))
        finalizer(finalize_store, s)
        return s
    end
end

# Finalizers never block: npk_store_close does file I/O, so the handle is queued and
# closed by the next open/close or at exit. (trylock: a finalizer must not wait.)
const PENDING = Ptr{L.npk_store}[]
const PENDING_LOCK = Threads.SpinLock()

function finalize_store(s::NumPackStore)
    s.ptr == C_NULL && return
    if trylock(PENDING_LOCK)
        push!(PENDING, s.ptr)
        s.ptr = C_NULL
        unlock(PENDING_LOCK)
    else
        finalizer(finalize_store, s)  # try again at a later collection
    end
    return
end

function drain_pending()
    L.is_loaded() || return
    ptrs = lock(PENDING_LOCK) do
        p = copy(PENDING)
        empty!(PENDING)
        p
    end
    for p in ptrs
        L.npk_store_close(p)  # errors have no one to go to
    end
end

function Base.open(::Type{NumPackStore}, path::AbstractString; kw...)
    return NumPackStore(path; kw...)
end
function Base.open(f::Function, ::Type{NumPackStore}, path::AbstractString; kw...)
    s = NumPackStore(path; kw...)
    try
        return f(s)
    finally
        close(s)
    end
end

"""
    close(store)

Folds pending changes into the store's metadata and releases the handle (released even
when this throws). Closing twice does nothing.
"""
function Base.close(s::NumPackStore)
    p = s.ptr
    s.ptr = C_NULL
    p == C_NULL || check(L.npk_store_close(p))
    drain_pending()
    return nothing
end
Base.isopen(s::NumPackStore) = s.ptr != C_NULL

function handle(s::NumPackStore)
    s.ptr == C_NULL && throw(NumPackError(L.NPK_STATUS_NULL_ARGUMENT, "NULL_ARGUMENT", "the store is closed"))
    return s.ptr
end

Base.show(io::IO, s::NumPackStore) = print(io, "NumPackStore(", repr(s.path), isopen(s) ? "" : ", closed", ")")

"Makes every change durable."
sync(s::NumPackStore) = GC.@preserve s check(L.npk_store_sync(handle(s)))
"Picks up changes made by other handles and processes."
refresh(s::NumPackStore) = GC.@preserve s check(L.npk_store_refresh(handle(s)))
function isreadonly_store(s::NumPackStore)
    out = Ref{Bool}(false)
    GC.@preserve s check(L.npk_store_is_read_only(handle(s), out))
    return out[]
end
Base.isreadonly(s::NumPackStore) = isreadonly_store(s)

"The names of all arrays, sorted."
function Base.keys(s::NumPackStore)
    out = Ref{Ptr{L.npk_names}}(C_NULL)
    GC.@preserve s check(L.npk_store_list(handle(s), out))
    names = out[]
    try
        n = Int(L.npk_names_count(names))
        return String[unsafe_string(L.npk_names_get(names, i)) for i in 0:n-1]
    finally
        L.npk_names_free(names)
    end
end
Base.length(s::NumPackStore) = length(keys(s))

function Base.haskey(s::NumPackStore, name::AbstractString)
    out = Ref{Bool}(false)
    GC.@preserve s check(L.npk_store_has(handle(s), String(name), out))
    return out[]
end

struct Info
    eltype::DataType
    shape::Vector{Int}        # C order, logical
    physical_rows::Int
    modified_us::UInt64
end

function info(s::NumPackStore, name::AbstractString)
    out = Ref(L.npk_array_info())
    GC.@preserve s check(L.npk_store_info(handle(s), String(name), out))
    i = out[]
    return Info(julia_type(i.dtype), Int[i.shape[k] for k in 1:i.ndim], Int(i.physical_rows), i.modified_us)
end

"The stored shape, in C order: `(rows, d...)`."
shape(s::NumPackStore, name::AbstractString) = Tuple(info(s, name).shape)
"The Julia size of array `name` (the stored shape reversed: `(d..., rows)`)."
Base.size(s::NumPackStore, name::AbstractString) = Tuple(reverse(info(s, name).shape))
Base.eltype(s::NumPackStore, name::AbstractString) = info(s, name).eltype

# -- reading -----------------------------------------------------------------------------

"""
    read(store, name; rowmajor=false)

A copy of the array's live rows. By default a Julia array of the reversed shape (a stored
`(n, d)` array reads as a `d × n` matrix, no reordering); `rowmajor=true` gives the stored
shape, as a permuted copy.
"""
function Base.read(s::NumPackStore, name::AbstractString; rowmajor::Bool=false)
    i = info(s, name)
    a = Array{i.eltype}(undef, reverse(i.shape)...)
    GC.@preserve s a check(L.npk_store_load(handle(s), String(name), pointer(a), sizeof(a)))
    return rowmajor ? reverse_dims(a) : a
end

reverse_dims(a::AbstractArray) = ndims(a) <= 1 ? collect(a) : permutedims(a, ndims(a):-1:1)

rowdims(i::Info) = reverse(i.shape[2:end])

function check_row(i::Info, r::Integer)
    isempty(i.shape) && throw(NumPackError(L.NPK_STATUS_SHAPE_MISMATCH, "SHAPE_MISMATCH", "a 0-d array has no rows"))
    1 <= r <= i.shape[1] || throw(BoundsError(1:i.shape[1], r))
    return Int64(r - 1)
end

"""
    store[name]              the whole array (like `read`)
    store[name, r]           row r (1-based): an array of the trailing dimensions
    store[name, rows]        rows (a range or a vector of row numbers): `d × k`
"""
Base.getindex(s::NumPackStore, name::AbstractString) = read(s, name)

function Base.getindex(s::NumPackStore, name::AbstractString, r::Integer)
    a = s[name, [r]]
    return reshape(a, size(a)[1:end-1])
end

function Base.getindex(s::NumPackStore, name::AbstractString, rows::AbstractUnitRange{<:Integer})
    i = info(s, name)
    isempty(i.shape) && throw(NumPackError(L.NPK_STATUS_SHAPE_MISMATCH, "SHAPE_MISMATCH", "a 0-d array has no rows"))
    a = Array{i.eltype}(undef, rowdims(i)..., length(rows))
    isempty(rows) && return a
    start = check_row(i, first(rows))
    check_row(i, last(rows))
    GC.@preserve s a check(L.npk_store_read_range(handle(s), String(name), UInt64(start),
                                                  UInt64(start + length(rows)), pointer(a), sizeof(a)))
    return a
end

function Base.getindex(s::NumPackStore, name::AbstractString, rows::AbstractVector{<:Integer})
    i = info(s, name)
    idx = Int64[check_row(i, r) for r in rows]
    a = Array{i.eltype}(undef, rowdims(i)..., length(idx))
    GC.@preserve s a idx check(L.npk_store_read_rows(handle(s), String(name), pointer(idx), length(idx),
                                                     pointer(a), sizeof(a)))
    return a
end

# -- writing -----------------------------------------------------------------------------

function c_shape(a::AbstractArray, rowmajor::Bool)
    return rowmajor ? UInt64[size(a)...] : UInt64[reverse(size(a))...]
end
to_dense(a::AbstractArray, rowmajor::Bool) =
    rowmajor ? reverse_dims(a) : (a isa Array ? a : collect(a))

"""
    write(store, name, a; rowmajor=false)
    store[name] = a

Creates or replaces `name` with `a`. A `d × n` Julia matrix is stored as `n` rows of `d`
(shape `(n, d)`); `rowmajor=true` stores `a`'s own shape (permuted copy).
"""
function Base.write(s::NumPackStore, name::AbstractString, a::AbstractArray{T}; rowmajor::Bool=false,
                    compression=nothing) where {T}
    code = dtype_code(T)
    shp = c_shape(a, rowmajor)
    d = to_dense(a, rowmajor)
    if compression !== nothing  # compressed arrays
        opts = Ref(save_options(compression))
        GC.@preserve s d shp opts check(L.npk_store_save_with(handle(s), String(name), code, length(shp),
                                                              pointer(shp), pointer(d), sizeof(d), opts))
        return nothing
    end
    GC.@preserve s d shp check(L.npk_store_save(handle(s), String(name), code, length(shp), pointer(shp),
                                                pointer(d), sizeof(d)))
    return nothing
end

# -- compressed arrays ---------------------------------------------------------------------

"`compression=` of `write`: `:zstd` (level 3) or `(:zstd, level)`."
function save_options(c)
    c === :zstd && return L.npk_save_options(L.NPK_COMPRESSION_ZSTD, 0)
    if c isa Tuple && length(c) == 2 && c[1] === :zstd && c[2] isa Integer
        lv = Int(c[2])
        (lv == 0 || !(-7 <= lv <= 22)) && throw(ArgumentError("zstd level $lv is out of range (1..22, or -7..-1)"))
        return L.npk_save_options(L.NPK_COMPRESSION_ZSTD, Int32(lv))
    end
    throw(ArgumentError("compression must be nothing, :zstd or (:zstd, level), not $(repr(c))"))
end

"""
    compression(store, name)

`nothing` for a plain array; for one written with `write(...; compression=:zstd)` a named
tuple `(codec = :zstd, level, chunks, rows_per_chunk, stored_bytes, raw_bytes)`.
"""
function compression(s::NumPackStore, name::AbstractString)
    out = Ref(L.npk_compression_info())
    GC.@preserve s check(L.npk_store_compression(handle(s), String(name), out))
    c = out[]
    c.compression == L.NPK_COMPRESSION_NONE && return nothing
    return (codec = :zstd, level = Int(c.level), chunks = Int(c.chunks), rows_per_chunk = Int(c.rows_per_chunk),
            stored_bytes = Int(c.stored_bytes), raw_bytes = Int(c.raw_bytes))
end

# -- end compressed arrays -----------------------------------------------------------------
save(s::NumPackStore, name::AbstractString, a::AbstractArray; kw...) = write(s, name, a; kw...)
Base.setindex!(s::NumPackStore, a::AbstractArray, name::AbstractString) = (write(s, name, a); s)

"""
    append!(store, name, a; rowmajor=false)

Appends the rows of `a` (a `d × k` matrix is `k` rows; a vector appends to a 1-d array).
"""
function Base.append!(s::NumPackStore, name::AbstractString, a::AbstractArray{T}; rowmajor::Bool=false) where {T}
    code = dtype_code(T)
    shp = c_shape(a, rowmajor)
    d = to_dense(a, rowmajor)
    GC.@preserve s d shp check(L.npk_store_append(handle(s), String(name), code, length(shp), pointer(shp),
                                                  pointer(d), sizeof(d)))
    return s
end

"""
    store[name, rows] = a

Overwrites rows (1-based numbers or a range) with the columns of `a`.
"""
function Base.setindex!(s::NumPackStore, a::AbstractArray{T}, name::AbstractString, rows) where {T}
    i = info(s, name)
    idx = Int64[check_row(i, r) for r in rows]
    d = to_dense(a, false)
    GC.@preserve s d idx check(L.npk_store_replace_rows(handle(s), String(name), dtype_code(T), pointer(idx),
                                                        length(idx), pointer(d), sizeof(d)))
    return s
end
function Base.setindex!(s::NumPackStore, a::AbstractArray{T}, name::AbstractString, rows::AbstractUnitRange{<:Integer}) where {T}
    i = info(s, name)
    isempty(rows) && return s
    start = check_row(i, first(rows))
    check_row(i, last(rows))
    d = to_dense(a, false)
    GC.@preserve s d check(L.npk_store_replace_range(handle(s), String(name), dtype_code(T), UInt64(start),
                                                     UInt64(length(rows)), pointer(d), sizeof(d)))
    return s
end

"""
    deleteat!(store, name, rows)

Deletes rows (1-based numbers) logically: they stay in the data file until `compact!`.
"""
function Base.deleteat!(s::NumPackStore, name::AbstractString, rows)
    i = info(s, name)
    idx = Int64[check_row(i, r) for r in rows]
    GC.@preserve s idx check(L.npk_store_delete_rows(handle(s), String(name), pointer(idx), length(idx)))
    return s
end

"Rewrites `name` without its deleted rows."
compact!(s::NumPackStore, name::AbstractString) =
    (GC.@preserve s check(L.npk_store_compact(handle(s), String(name))); s)

"Removes array `name`."
Base.delete!(s::NumPackStore, name::AbstractString) =
    (GC.@preserve s check(L.npk_store_drop(handle(s), String(name))); s)

"Renames array `from` to `to`."
rename!(s::NumPackStore, from::AbstractString, to::AbstractString) =
    (GC.@preserve s check(L.npk_store_rename(handle(s), String(from), String(to))); s)

"Copies the live rows of `src` into a new array `dst`."
Base.copy!(s::NumPackStore, dst::AbstractString, src::AbstractString) =
    (GC.@preserve s check(L.npk_store_clone(handle(s), String(src), String(dst))); s)

"Removes every array."
Base.empty!(s::NumPackStore) = (GC.@preserve s check(L.npk_store_reset(handle(s))); s)

# -- zero-copy -----------------------------------------------------------------------------

"""
    lazy(store, name; writable=false)

A zero-copy Julia array over the array's memory map, in the reversed shape (`d × n` for a
stored `(n, d)`). When rows are deleted it is a `view` selecting the live columns. The map
stays alive as long as the returned array (a finalizer of the wrapped array frees it);
with `writable=true`, writes go to the data file (see `NPK_VIEW_WRITABLE`).
"""
function lazy(s::NumPackStore, name::AbstractString; writable::Bool=false)
    out = Ref{Ptr{L.npk_view}}(C_NULL)
    flags = writable ? L.NPK_VIEW_WRITABLE : UInt32(0)
    GC.@preserve s check(L.npk_store_view(handle(s), String(name), flags, out))
    v = out[]
    lay = Ref(L.npk_view_layout())
    st = L.npk_view_info(v, lay)
    if st != L.NPK_STATUS_OK
        err = NumPackError(st, status_name(st), unsafe_string(L.npk_last_error_message()))
        L.npk_view_free(v)
        throw(err)
    end
    l = lay[]
    local a, cols
    try
        T = julia_type(l.dtype)
        dims = reverse(Int[l.shape[k] for k in 1:l.ndim])
        ptr = Ptr{T}(writable ? l.writable_data : l.data)
        if ptr == C_NULL  # an empty array: nothing mapped
            L.npk_view_free(v)
            return Array{T}(undef, dims...)
        end
        # The row map is read while the view is certainly alive.
        cols = l.row_map == C_NULL ? nothing : Int[unsafe_load(l.row_map, k) + 1 for k in 1:Int(l.rows)]
        a = unsafe_wrap(Array, ptr, Tuple(dims); own=false)
    catch
        L.npk_view_free(v)
        rethrow()
    end
    # The array owns the view: freed (munmap, never blocks) when the array is collected.
    finalizer(_ -> L.npk_view_free(v), a)
    cols === nothing && return a
    return view(a, ntuple(_ -> Colon(), ndims(a) - 1)..., cols)  # keeps `a` alive
end

# -- streaming -----------------------------------------------------------------------------

struct BatchIterator
    store::NumPackStore
    name::String
    batch_rows::Int
end

"""
    eachbatch(store, name, batch_rows)

Iterates over the live rows in batches: each batch is a fresh `d × k` array (`k ≤ batch_rows`).
"""
eachbatch(s::NumPackStore, name::AbstractString, batch_rows::Integer) = BatchIterator(s, String(name), Int(batch_rows))
Base.IteratorSize(::Type{BatchIterator}) = Base.SizeUnknown()
Base.eltype(::Type{BatchIterator}) = Array

mutable struct StreamState
    ptr::Ptr{L.npk_stream}
    info::Info
end
free_stream(st::StreamState) = (p = st.ptr; st.ptr = C_NULL; L.npk_stream_free(p); nothing)

function Base.iterate(it::BatchIterator, st::Union{Nothing,StreamState}=nothing)
    if st === nothing
        i = info(it.store, it.name)
        out = Ref{Ptr{L.npk_stream}}(C_NULL)
        GC.@preserve it check(L.npk_store_stream(handle(it.store), it.name, UInt64(it.batch_rows), out))
        st = StreamState(out[], i)
        finalizer(free_stream, st)  # npk_stream_free only frees memory: never blocks
    end
    buf = Array{st.info.eltype}(undef, rowdims(st.info)..., it.batch_rows)
    rows = Ref{UInt64}(0)
    try
        GC.@preserve st buf check(L.npk_stream_next(st.ptr, pointer(buf), sizeof(buf), rows))
    catch
        free_stream(st)
        rethrow()
    end
    if rows[] == 0
        free_stream(st)
        return nothing
    end
    n = Int(rows[])
    batch = n == it.batch_rows ? buf : buf[ntuple(_ -> Colon(), ndims(buf) - 1)..., 1:n]
    return batch, st
end

include("vectors.jl")
include("package.jl")  # packages (.npkg): NumPack.pack, NumPack.unpack, NumPack.package_info
# --- .npy interop ---
include("npy.jl")
# --- end ---
include("check.jl")  # check (cli branch)
include("safetensors.jl")

end # module
