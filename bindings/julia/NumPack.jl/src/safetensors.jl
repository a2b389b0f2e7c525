# Hugging Face .safetensors interop over npk_safetensors_*: read a file's header (tensors
# and __metadata__) without its data, import tensors into a store (all or nothing),
# export arrays to a file (atomic). Shapes are C order as in the file: a Julia `d × k`
# matrix is `k` rows of `d`. BF16/F8 tensors cannot be imported and complex128 arrays
# cannot be exported (`UNSUPPORTED`); keys become array names unchanged.

export SafetensorsTensor, SafetensorsHeader, safetensors_header, import_safetensors, export_safetensors

"""
    SafetensorsTensor

One tensor of a `.safetensors` header: `name`, `dtype_name` (as written, e.g. `"F32"`,
`"BF16"`), `eltype` (the Julia type, or `nothing` for a dtype numpack does not hold),
`shape` (C order; empty for 0-d), `data_begin`, `data_end` (byte range relative to the
header's `data_offset`).
"""
struct SafetensorsTensor
    name::String
    dtype_name::String
    eltype::Union{DataType,Nothing}
    shape::Vector{Int}
    data_begin::Int
    data_end::Int
end

"""
    SafetensorsHeader

`tensors` (in buffer order), `metadata` (the `__metadata__` pairs, in file order),
`header_len`, `data_offset`, `file_size`.
"""
struct SafetensorsHeader
    tensors::Vector{SafetensorsTensor}
    metadata::Vector{Pair{String,String}}
    header_len::Int
    data_offset::Int
    file_size::Int
end

"""
    safetensors_header(path) -> SafetensorsHeader

Reads and checks the header of the `.safetensors` file at `path`; the data is not read.
"""
function safetensors_header(path::AbstractString)
    ensure_loaded()
    out = Ref{Ptr{L.npk_safetensors_header}}(C_NULL)
    check(L.npk_safetensors_read_header(String(path), out))
    h = out[]
    try
        sum = Ref(L.npk_safetensors_summary())
        check(L.npk_safetensors_header_summary(h, sum))
        tensors = SafetensorsTensor[]
        for i in 0:Int(sum[].tensor_count)-1
            t = Ref(L.npk_safetensors_tensor())
            check(L.npk_safetensors_header_get_tensor(h, i, t))
            x = t[]
            T = x.npk_dtype == L.NPK_SAFETENSORS_NO_DTYPE ? nothing : julia_type(x.npk_dtype)
            push!(tensors, SafetensorsTensor(unsafe_string(x.name), unsafe_string(x.dtype_name), T,
                                             Int[x.shape[k] for k in 1:x.ndim], Int(x.data_begin), Int(x.data_end)))
        end
        meta = Pair{String,String}[]
        for i in 0:Int(sum[].metadata_count)-1
            k = Ref{Ptr{UInt8}}(C_NULL)
            v = Ref{Ptr{UInt8}}(C_NULL)
            check(L.npk_safetensors_header_get_metadata(h, i, k, v))
            push!(meta, unsafe_string(k[]) => unsafe_string(v[]))
        end
        s = sum[]
        return SafetensorsHeader(tensors, meta, Int(s.header_len), Int(s.data_offset), Int(s.file_size))
    finally
        L.npk_safetensors_header_free(h)
    end
end

# `strs` as C strings (kept alive by the caller) and an array of their pointers.
function c_strings(strs)
    cs = [Base.cconvert(Cstring, String(x)) for x in strs]
    return cs, Ptr{UInt8}[Base.unsafe_convert(Ptr{UInt8}, Base.unsafe_convert(Cstring, c)) for c in cs]
end

"""
    import_safetensors(store, path; names=nothing, overwrite=false, progress=nothing) -> Vector{String}

Imports the tensors `names` (default: all, in file order) of the `.safetensors` at `path`
into arrays named by their keys; returns the names imported. All or nothing: a bad
tensor, an unsupported dtype, an existing name (without `overwrite`) or a cancelling
`progress(done_bytes, total_bytes)` leaves the store unchanged.
"""
function import_safetensors(s::NumPackStore, path::AbstractString; names=nothing, overwrite::Bool=false,
                            progress=nothing)
    out = Ref{Ptr{L.npk_names}}(C_NULL)
    flags = overwrite ? L.NPK_SAFETENSORS_OVERWRITE : UInt32(0)
    cs, ptrs = c_strings(names === nothing ? String[] : names)
    with_npy_progress(progress) do fn, ud
        GC.@preserve s cs ptrs L.npk_safetensors_import(handle(s), String(path), isempty(ptrs) ? C_NULL : pointer(ptrs),
                                                        length(ptrs), flags, fn, ud, out)
    end
    list = out[]
    try
        return String[unsafe_string(L.npk_names_get(list, i)) for i in 0:Int(L.npk_names_count(list))-1]
    finally
        L.npk_names_free(list)
    end
end

"""
    export_safetensors(store, path; names=nothing, metadata=Dict{String,String}(), overwrite=false, progress=nothing)

Exports the arrays `names` (default: all) to a `.safetensors` at `path` (live rows only),
atomically, with `metadata` as the file's `__metadata__`. `progress`: as in
[`import_safetensors`](@ref); cancelling leaves `path` as it was.
"""
function export_safetensors(s::NumPackStore, path::AbstractString; names=nothing, metadata=Dict{String,String}(),
                            overwrite::Bool=false, progress=nothing)
    flags = overwrite ? L.NPK_SAFETENSORS_OVERWRITE : UInt32(0)
    cs, ptrs = c_strings(names === nothing ? String[] : names)
    kc, kp = c_strings(String[k for (k, _) in metadata])
    vc, vp = c_strings(String[v for (_, v) in metadata])
    with_npy_progress(progress) do fn, ud
        GC.@preserve s cs ptrs kc kp vc vp L.npk_safetensors_export(
            handle(s), String(path), isempty(ptrs) ? C_NULL : pointer(ptrs), length(ptrs),
            isempty(kp) ? C_NULL : pointer(kp), isempty(vp) ? C_NULL : pointer(vp), length(kp), flags, fn, ud)
    end
    return nothing
end
