# NumPy .npy / .npz interop over npk_npy_* and npk_npz_import: import files into a store,
# export arrays, append rows to a .npy in place (safe with concurrent appenders in any
# process), make legacy files appendable, recover files left by a crashed appender.
# Shapes are C order as in the file: a Julia `d × k` matrix is `k` rows of `d`.

export NpyInfo, npy_info, import_npy, import_npz, export_npy, append_npy, append_npy_file,
       create_appendable_npy, make_appendable, recover_npy

"""
    NpyInfo

What a `.npy` header says: `eltype`, `shape` (C order, as written in the file),
`version`, `big_endian`, `fortran_order`, `appendable` (rows can be appended in place),
`header_len`, `data_offset`, `file_size`.
"""
struct NpyInfo
    eltype::DataType
    shape::Vector{Int}
    version::Tuple{Int,Int}
    big_endian::Bool
    fortran_order::Bool
    appendable::Bool
    header_len::Int
    data_offset::Int
    file_size::Int
end

"Whether the file holds exactly the data its shape calls for (else: `recover_npy`)."
iscomplete(i::NpyInfo) = i.file_size == i.data_offset + prod(i.shape; init=1) * sizeof(i.eltype)

"""
    npy_info(path) -> NpyInfo

Reads the header of the `.npy` file at `path`.
"""
function npy_info(path::AbstractString)
    ensure_loaded()
    out = Ref(L.npk_npy_file_info())
    check(L.npk_npy_info(String(path), out))
    i = out[]
    return NpyInfo(julia_type(i.dtype), Int[i.shape[k] for k in 1:i.ndim],
                   (Int(i.version_major), Int(i.version_minor)), i.big_endian, i.fortran_order,
                   i.appendable, Int(i.header_len), Int(i.data_offset), Int(i.file_size))
end

npy_stem(path) = first(splitext(basename(String(path))))

# Runs `call(progress_fn, user_data)` with `progress` (or no callback) through the
# trampoline of package.jl; an exception thrown by `progress` is rethrown as it was,
# else a failed status throws.
function with_npy_progress(call, progress)
    ensure_loaded()
    st = ProgressState(progress, nothing)
    fn = progress === nothing ? C_NULL : @cfunction(progress_trampoline, Bool, (UInt64, UInt64, Ptr{Cvoid}))
    status = GC.@preserve st call(fn, progress === nothing ? C_NULL : pointer_from_objref(st))
    st.err === nothing || throw(st.err.ex)
    check(status)
    return nothing
end

"""
    import_npy(store, path; name=<file stem>, overwrite=false, progress=nothing) -> name

Streams the `.npy` at `path` into array `name` (big-endian and Fortran-order files are
converted); the array appears complete or not at all.

`progress(done_bytes, total_bytes)` is called at the start, after every block of a few MB
and at the end; returning `false` cancels (`CANCELLED`) and leaves no array. An exception
it throws cancels too and is rethrown.
"""
function import_npy(s::NumPackStore, path::AbstractString; name::AbstractString=npy_stem(path),
                    overwrite::Bool=false, progress=nothing)
    flags = overwrite ? L.NPK_NPY_OVERWRITE : UInt32(0)
    with_npy_progress(progress) do fn, ud
        GC.@preserve s L.npk_npy_import(handle(s), String(name), String(path), flags, fn, ud)
    end
    return String(name)
end

"""
    import_npz(store, path; overwrite=false, progress=nothing) -> Vector{String}

Imports every member of the `.npz` at `path` (stored or deflated) as an array named by its
key; returns the names in archive order. All or nothing: the store is unchanged if a
member is bad or (without `overwrite`) a name exists, or if `progress` (as in
[`import_npy`](@ref), counting all members together) cancels.
"""
function import_npz(s::NumPackStore, path::AbstractString; overwrite::Bool=false, progress=nothing)
    out = Ref{Ptr{L.npk_names}}(C_NULL)
    flags = overwrite ? L.NPK_NPY_OVERWRITE : UInt32(0)
    with_npy_progress(progress) do fn, ud
        GC.@preserve s L.npk_npz_import(handle(s), String(path), flags, fn, ud, out)
    end
    names = out[]
    try
        return String[unsafe_string(L.npk_names_get(names, i)) for i in 0:Int(L.npk_names_count(names))-1]
    finally
        L.npk_names_free(names)
    end
end

"""
    export_npy(store, name, path; overwrite=false, progress=nothing)

Streams array `name` (live rows) to a `.npy` at `path`, atomically (temporary file +
rename); the file's header has room to grow, so `append_npy` works on it in place.
`progress`: as in [`import_npy`](@ref); cancelling leaves `path` as it was.
"""
function export_npy(s::NumPackStore, name::AbstractString, path::AbstractString; overwrite::Bool=false,
                    progress=nothing)
    flags = overwrite ? L.NPK_NPY_OVERWRITE : UInt32(0)
    with_npy_progress(progress) do fn, ud
        GC.@preserve s L.npk_npy_export(handle(s), String(name), String(path), flags, fn, ud)
    end
    return nothing
end

"""
    create_appendable_npy(path, T, row_shape=())

Creates an empty appendable `.npy` of element type `T` and C shape `(0, row_shape...)`.
"""
function create_appendable_npy(path::AbstractString, ::Type{T}, row_shape=()) where {T}
    ensure_loaded()
    shp = UInt64[row_shape...]
    GC.@preserve shp check(L.npk_npy_create_appendable(String(path), dtype_code(T), length(shp),
                                                       isempty(shp) ? C_NULL : pointer(shp)))
    return nothing
end

"""
    append_npy(path, a; rowmajor=false, sync=false, create=true) -> Int

Appends the rows of `a` (a `d × k` matrix is `k` rows of `d`, as in `append!`) to the
`.npy` at `path` in place and returns its row count. With `create`, a missing file is
created. `sync` fsyncs before returning.
"""
function append_npy(path::AbstractString, a::AbstractArray{T}; rowmajor::Bool=false, sync::Bool=false,
                    create::Bool=true) where {T}
    ensure_loaded()
    shp = c_shape(a, rowmajor)
    d = to_dense(a, rowmajor)
    row = shp[2:end]
    rows = Ref{UInt64}(0)
    flags = (sync ? L.NPK_NPY_SYNC : UInt32(0)) | (create ? L.NPK_NPY_CREATE : UInt32(0))
    GC.@preserve d row check(L.npk_npy_append(String(path), dtype_code(T), length(row),
                                              isempty(row) ? C_NULL : pointer(row), pointer(d), sizeof(d),
                                              flags, rows))
    return Int(rows[])
end

"""
    append_npy_file(path, src; sync=false, create=true, progress=nothing) -> Int

Appends every row of the `.npy` at `src` to the `.npy` at `path` in place (streamed, under
one lock of `path`) and returns its row count. `progress`: as in [`import_npy`](@ref),
counting `src`'s data; cancelling cuts `path` back to its old rows.
"""
function append_npy_file(path::AbstractString, src::AbstractString; sync::Bool=false, create::Bool=true,
                         progress=nothing)
    rows = Ref{UInt64}(0)
    flags = (sync ? L.NPK_NPY_SYNC : UInt32(0)) | (create ? L.NPK_NPY_CREATE : UInt32(0))
    with_npy_progress(progress) do fn, ud
        L.npk_npy_append_file(String(path), String(src), flags, fn, ud, rows)
    end
    return Int(rows[])
end

"""
    make_appendable(path) -> Bool

Rewrites the `.npy` (streamed, atomically) if its header has no room to grow or it is in
Fortran order; returns whether it did.
"""
function make_appendable(path::AbstractString)
    ensure_loaded()
    out = Ref{Bool}(false)
    check(L.npk_npy_make_appendable(String(path), out))
    return out[]
end

"""
    recover_npy(path; zero_fill=false)

Repairs a `.npy` left by a crashed appender: the shape is set from the data present, an
incomplete last row dropped (or zero-filled). Returns `(header_rows, rows, dropped_bytes,
zero_filled_bytes, rewritten)`.
"""
function recover_npy(path::AbstractString; zero_fill::Bool=false)
    ensure_loaded()
    out = Ref(L.npk_npy_recovery())
    check(L.npk_npy_recover(String(path), zero_fill ? L.NPK_NPY_ZERO_FILL : UInt32(0), out))
    r = out[]
    return (header_rows=Int(r.header_rows), rows=Int(r.rows), dropped_bytes=Int(r.dropped_bytes),
            zero_filled_bytes=Int(r.zero_filled_bytes), rewritten=r.rewritten)
end
