# Packages (.npkg): a whole store in one file, NumPack's layout (version 2), over
# npk_package_*. Included from NumPack.jl.

"""
    PackageEntry

One file of a package: `name` (its file name in the store: `metadata.npkm`,
`data_<array>.npkd`, `deleted_<array>.npkb`), `original_size`, `stored_size` (its
compressed size in the package; 0 when stored raw) and `crc32` (a `UInt32` from
[`NumPack.pack`](@ref) and [`NumPack.unpack`](@ref); `nothing` from
[`NumPack.package_info`](@ref), which decompresses nothing).
"""
struct PackageEntry
    name::String
    original_size::UInt64
    stored_size::UInt64
    crc32::Union{UInt32,Nothing}
end

"""
    PackageInfo

What a package holds: `version` (1 or 2), `compression` (0 none, 1 zstd),
`total_original_size`, `total_stored_size` and `entries` (a `Vector{PackageEntry}` in
package order, sorted by name).
"""
struct PackageInfo
    version::Int
    compression::Int
    total_original_size::UInt64
    total_stored_size::UInt64
    entries::Vector{PackageEntry}
end

function read_package_info(h::Ptr{L.npk_package_info})
    s = Ref(L.npk_package_summary())
    check(L.npk_package_get_summary(h, s))
    entries = PackageEntry[]
    e = Ref(L.npk_package_entry())
    for i in 0:Int(s[].entry_count)-1
        check(L.npk_package_get_entry(h, i, e))
        x = e[]
        push!(entries, PackageEntry(unsafe_string(x.name), x.original_size, x.stored_size,
                                    x.has_crc32 ? x.crc32 : nothing))
    end
    v = s[]
    return PackageInfo(Int(v.version), Int(v.compression), v.total_original_size, v.total_stored_size, entries)
end

# The progress callback's state, passed as user_data; the C callback never throws.
mutable struct ProgressState
    f::Any
    err::Any
end

function progress_trampoline(done::UInt64, total::UInt64, ud::Ptr{Cvoid})::Bool
    st = unsafe_pointer_to_objref(ud)::ProgressState
    try
        return st.f(Int(done), Int(total)) !== false
    catch e
        st.err = CapturedException(e, catch_backtrace())
        return false
    end
end

# Runs `call(progress_fn, user_data, out)` and returns the description it made; an
# exception thrown by `progress` is rethrown as it was.
function with_package_call(call, progress)
    ensure_loaded()
    out = Ref{Ptr{L.npk_package_info}}(C_NULL)
    st = ProgressState(progress, nothing)
    fn = progress === nothing ? C_NULL : @cfunction(progress_trampoline, Bool, (UInt64, UInt64, Ptr{Cvoid}))
    status = GC.@preserve st call(fn, progress === nothing ? C_NULL : pointer_from_objref(st), out)
    try
        st.err === nothing || throw(st.err.ex)
        check(status)
        return read_package_info(out[])
    finally
        L.npk_package_info_free(out[])
    end
end

"""
    NumPack.pack(store, target; compress=true, overwrite=false, progress=nothing) -> PackageInfo

Packs a store (an open `NumPackStore`, or the path of a store directory) into one `.npkg`
file at `target` that NumPack's `unpack` reads. Changes not yet checkpointed are
included; writers of the store wait meanwhile. Streamed in constant memory; written
beside `target` and renamed into place, so `target` is never a partial package. An
existing `target` is an `ALREADY_EXISTS` error unless `overwrite`.

`progress(done_bytes, total_bytes)` is called at the start, after each file, at least
every 4 MiB and at the end; returning `false` cancels (`CANCELLED`, nothing written).
"""
function pack(store::NumPackStore, target::AbstractString; compress::Bool=true, overwrite::Bool=false,
              progress=nothing)
    flags = (compress ? L.NPK_PACK_COMPRESS : UInt32(0)) | (overwrite ? L.NPK_PACK_OVERWRITE : UInt32(0))
    call = (fn, ud, out) -> GC.@preserve store L.npk_package_pack(handle(store), String(target), flags, fn, ud, out)
    return with_package_call(call, progress)
end
function pack(store::AbstractString, target::AbstractString; kw...)
    return open(NumPackStore, store; create=false) do s
        pack(s, target; kw...)
    end
end

"""
    NumPack.unpack(package, target; overwrite=false, verify=true, progress=nothing) -> PackageInfo

Unpacks the `.npkg` file `package` (written by numpack or NumPack) into a store directory
at `target`. Every file's CRC32 is computed as it is written and, with `verify`, checked
against the package's footer; entries that would leave `target` are refused. The store
is assembled in a hidden directory beside `target` and renamed into place once checked
in full, so a failure leaves no half-written target, and with `overwrite` an existing
store is replaced only then. Damage is a `CORRUPT` error naming the file.
`progress`: as for [`NumPack.pack`](@ref).
"""
function unpack(package::AbstractString, target::AbstractString; overwrite::Bool=false, verify::Bool=true,
                progress=nothing)
    flags = (overwrite ? L.NPK_UNPACK_OVERWRITE : UInt32(0)) | (verify ? L.NPK_UNPACK_VERIFY : UInt32(0))
    return with_package_call(progress) do fn, ud, out
        L.npk_package_unpack(String(package), String(target), flags, fn, ud, out)
    end
end

"""
    NumPack.package_info(package) -> PackageInfo

Describes a `.npkg` file from its headers alone (NumPack's `get_package_info`); entries
have `crc32 === nothing`.
"""
function package_info(package::AbstractString)
    ensure_loaded()
    out = Ref{Ptr{L.npk_package_info}}(C_NULL)
    check(L.npk_package_read_info(String(package), out))
    try
        return read_package_info(out[])
    finally
        L.npk_package_info_free(out[])
    end
end
