"""
    LibNumPack

The low-level layer: one `ccall` per `npk_*` export of `include/numpack.h`, with the same
name, argument order and C types, plus the header's constants. Nothing here checks
statuses; `NumPack` does. Statuses are returned as raw `UInt32`s so that a newer library
with more codes never breaks this package.

The library is opened by `load_library(path)` (called from `NumPack.__init__`); every
wrapper calls through a function pointer looked up once, so the path can be chosen at
run time (`ENV["NUMPACK_LIB"]` or the `libnumpack` preference).

`tests/julia_static/check.py` verifies, without Julia, that every export is wrapped here
with the right number and C types of arguments and that the constants match the header.
"""
module LibNumPack

using Libdl

# -- constants (checked against the header by tests/julia_static/check.py) -------------

const NPK_VERSION_MAJOR = 0
const NPK_VERSION_MINOR = 1
const NPK_VERSION_PATCH = 0
const NPK_VERSION_STRING = "0.1.0"
const NPK_MAX_NDIM = 32
const NPK_MAX_NAME_LEN = 242
const NPK_OPEN_CREATE = UInt32(1)
const NPK_OPEN_DROP_IF_EXISTS = UInt32(2)
const NPK_OPEN_READ_ONLY = UInt32(4)
const NPK_VIEW_WRITABLE = UInt32(1)
# --- .npy interop ---
const NPK_NPY_OVERWRITE = UInt32(1)
const NPK_NPY_SYNC = UInt32(2)
const NPK_NPY_CREATE = UInt32(4)
const NPK_NPY_ZERO_FILL = UInt32(8)
# --- end ---
# check (cli branch): npk_check_finding.severity
const NPK_SEVERITY_INFO = UInt32(0)
const NPK_SEVERITY_WARNING = UInt32(1)
const NPK_SEVERITY_ERROR = UInt32(2)

# compressed arrays: npk_save_options.compression
const NPK_COMPRESSION_NONE = UInt32(0)
const NPK_COMPRESSION_ZSTD = UInt32(1)

# npk_status
const NPK_STATUS_OK = UInt32(0)
const NPK_STATUS_NULL_ARGUMENT = UInt32(1)
const NPK_STATUS_INVALID_ARGUMENT = UInt32(2)
const NPK_STATUS_INVALID_NAME = UInt32(3)
const NPK_STATUS_INDEX_OUT_OF_RANGE = UInt32(4)
const NPK_STATUS_DTYPE_MISMATCH = UInt32(5)
const NPK_STATUS_SHAPE_MISMATCH = UInt32(6)
const NPK_STATUS_BUFFER_SIZE = UInt32(7)
const NPK_STATUS_NOT_FOUND = UInt32(20)
const NPK_STATUS_ALREADY_EXISTS = UInt32(21)
const NPK_STATUS_STORE_NOT_FOUND = UInt32(22)
const NPK_STATUS_READ_ONLY = UInt32(23)
const NPK_STATUS_IO = UInt32(40)
const NPK_STATUS_CORRUPT = UInt32(41)
const NPK_STATUS_UNSUPPORTED = UInt32(42)
const NPK_STATUS_NEEDS_RECOVERY = UInt32(43)
const NPK_STATUS_CANCELLED = UInt32(60)
const NPK_STATUS_PANIC = UInt32(90)

# npk_dtype
const NPK_DTYPE_BOOL = UInt32(0)
const NPK_DTYPE_UINT8 = UInt32(1)
const NPK_DTYPE_UINT16 = UInt32(2)
const NPK_DTYPE_UINT32 = UInt32(3)
const NPK_DTYPE_UINT64 = UInt32(4)
const NPK_DTYPE_INT8 = UInt32(5)
const NPK_DTYPE_INT16 = UInt32(6)
const NPK_DTYPE_INT32 = UInt32(7)
const NPK_DTYPE_INT64 = UInt32(8)
const NPK_DTYPE_FLOAT16 = UInt32(9)
const NPK_DTYPE_FLOAT32 = UInt32(10)
const NPK_DTYPE_FLOAT64 = UInt32(11)
const NPK_DTYPE_COMPLEX64 = UInt32(12)
const NPK_DTYPE_COMPLEX128 = UInt32(13)

# npk_metric
const NPK_METRIC_DOT = UInt32(0)
const NPK_METRIC_INNER = UInt32(1)
const NPK_METRIC_COSINE = UInt32(2)
const NPK_METRIC_L2 = UInt32(3)
const NPK_METRIC_L2SQ = UInt32(4)
const NPK_METRIC_HAMMING = UInt32(5)
const NPK_METRIC_JACCARD = UInt32(6)
const NPK_METRIC_KL = UInt32(7)
const NPK_METRIC_JS = UInt32(8)

# -- types -----------------------------------------------------------------------------

# Opaque handles: only ever behind a Ptr.
mutable struct npk_store end
mutable struct npk_view end
mutable struct npk_stream end
mutable struct npk_names end
mutable struct npk_check_report end  # check (cli branch)

"`npk_array_info` (field for field, same layout)."
struct npk_array_info
    dtype::UInt32
    ndim::UInt32
    shape::NTuple{NPK_MAX_NDIM,UInt64}
    physical_rows::UInt64
    modified_us::UInt64
end
npk_array_info() = npk_array_info(0, 0, ntuple(_ -> UInt64(0), NPK_MAX_NDIM), 0, 0)

"`npk_view_layout` (field for field, same layout)."
struct npk_view_layout
    data::Ptr{Cvoid}
    writable_data::Ptr{Cvoid}
    nbytes::Csize_t
    dtype::UInt32
    ndim::UInt32
    shape::NTuple{NPK_MAX_NDIM,UInt64}
    rows::UInt64
    row_map::Ptr{UInt64}
end
npk_view_layout() = npk_view_layout(C_NULL, C_NULL, 0, 0, 0, ntuple(_ -> UInt64(0), NPK_MAX_NDIM), 0, C_NULL)

"""
`npk_vectors` (field for field, same layout): `rows` vectors of `dim` elements of dtype
`dtype`, row-major, at `data`. The memory must stay alive (`GC.@preserve`) during the call.
"""
struct npk_vectors
    data::Ptr{Cvoid}
    dtype::UInt32
    rows::UInt64
    dim::UInt64
end

# --- .npy interop ---
"`npk_npy_file_info` (field for field, same layout)."
struct npk_npy_file_info
    dtype::UInt32
    ndim::UInt32
    shape::NTuple{NPK_MAX_NDIM,UInt64}
    version_major::UInt32
    version_minor::UInt32
    big_endian::Bool
    fortran_order::Bool
    appendable::Bool
    header_len::UInt64
    data_offset::UInt64
    file_size::UInt64
end
npk_npy_file_info() = npk_npy_file_info(0, 0, ntuple(_ -> UInt64(0), NPK_MAX_NDIM), 0, 0, false, false, false, 0, 0, 0)

"`npk_npy_recovery` (field for field, same layout)."
struct npk_npy_recovery
    header_rows::UInt64
    rows::UInt64
    dropped_bytes::UInt64
    zero_filled_bytes::UInt64
    rewritten::Bool
end
npk_npy_recovery() = npk_npy_recovery(0, 0, 0, 0, false)
# --- end ---
# check (cli branch)
"`npk_check_finding` (field for field, same layout); the strings belong to the report."
struct npk_check_finding
    severity::UInt32
    id::Ptr{UInt8}
    file::Ptr{UInt8}
    array::Ptr{UInt8}
    message::Ptr{UInt8}
end
npk_check_finding() = npk_check_finding(0, C_NULL, C_NULL, C_NULL, C_NULL)
# compressed arrays
"`npk_save_options` (field for field, same layout)."
struct npk_save_options
    compression::UInt32
    level::Int32
end

"`npk_compression_info` (field for field, same layout)."
struct npk_compression_info
    compression::UInt32
    level::Int32
    chunks::UInt64
    rows_per_chunk::UInt64
    stored_bytes::UInt64
    raw_bytes::UInt64
end
npk_compression_info() = npk_compression_info(0, 0, 0, 0, 0, 0)

# -- the library ---------------------------------------------------------------------------

const EXPORTS = (
    :npk_version, :npk_dtype_size, :npk_dtype_name, :npk_last_error_message,
    :npk_status_name, :npk_store_open, :npk_store_close, :npk_store_sync,
    :npk_store_refresh, :npk_store_is_read_only, :npk_store_list, :npk_names_count,
    :npk_names_get, :npk_names_free, :npk_store_has, :npk_store_info, :npk_store_save,
    :npk_store_load, :npk_store_read_rows, :npk_store_read_range,
    :npk_store_read_range_checked, :npk_store_read_rows_checked,
    :npk_store_replace_rows, :npk_store_replace_range, :npk_store_append,
    :npk_store_delete_rows, :npk_store_drop, :npk_store_compact, :npk_store_clone,
    :npk_store_rename, :npk_store_reset, :npk_store_stream, :npk_stream_next,
    :npk_stream_free, :npk_metric_name, :npk_metric_parse, :npk_metric_is_similarity,
    :npk_vector_capabilities, :npk_vector_distance, :npk_vector_scores, :npk_vector_top_k,
    :npk_store_top_k, :npk_store_scores, :npk_store_view, :npk_view_info, :npk_view_flush,
    :npk_view_free,
    # packages (.npkg)
    :npk_package_pack, :npk_package_unpack, :npk_package_read_info, :npk_package_get_summary,
    :npk_package_get_entry, :npk_package_info_free,
    # --- .npy interop ---
    :npk_npy_info, :npk_npy_import, :npk_npz_import, :npk_npy_export,
    :npk_npy_create_appendable, :npk_npy_append, :npk_npy_append_file, :npk_npy_make_appendable,
    :npk_npy_recover,
    # --- end ---
    # check (cli branch)
    :npk_store_check, :npk_check_report_len, :npk_check_report_get, :npk_check_report_free,
    # compressed arrays
    :npk_store_save_with, :npk_store_compression,
    # safetensors
    :npk_safetensors_read_header, :npk_safetensors_header_summary,
    :npk_safetensors_header_get_tensor, :npk_safetensors_header_get_metadata,
    :npk_safetensors_header_free, :npk_safetensors_import, :npk_safetensors_export,
)

const HANDLE = Ref{Ptr{Cvoid}}(C_NULL)
const PATH = Ref{String}("")
const FPTRS = Dict{Symbol,Ptr{Cvoid}}()

"""
    load_library(path)

Opens the shared library at `path` and looks up every export (an error names the first
one missing). Called by `NumPack.__init__`.
"""
function load_library(path::AbstractString)
    h = Libdl.dlopen(path, Libdl.RTLD_LAZY | Libdl.RTLD_LOCAL)
    for s in EXPORTS
        p = Libdl.dlsym_e(h, s)
        p == C_NULL && error("$path does not export $s: not a numpack library of this version")
        FPTRS[s] = p
    end
    HANDLE[] = h
    PATH[] = String(path)
    return h
end

is_loaded() = HANDLE[] != C_NULL

@inline function fptr(s::Symbol)
    p = get(FPTRS, s, C_NULL)
    p == C_NULL && error("libnumpack is not loaded (set ENV[\"NUMPACK_LIB\"] before `using NumPack`)")
    return p
end

# -- one wrapper per export, in the header's order -----------------------------------------

npk_version() = ccall(fptr(:npk_version), Ptr{UInt8}, ())
npk_dtype_size(dtype) = ccall(fptr(:npk_dtype_size), Csize_t, (UInt32,), dtype)
npk_dtype_name(dtype) = ccall(fptr(:npk_dtype_name), Ptr{UInt8}, (UInt32,), dtype)
npk_last_error_message() = ccall(fptr(:npk_last_error_message), Ptr{UInt8}, ())
npk_status_name(status) = ccall(fptr(:npk_status_name), Ptr{UInt8}, (UInt32,), status)

npk_store_open(path, flags, out) =
    ccall(fptr(:npk_store_open), UInt32, (Cstring, UInt32, Ptr{Ptr{npk_store}}), path, flags, out)
npk_store_close(store) = ccall(fptr(:npk_store_close), UInt32, (Ptr{npk_store},), store)
npk_store_sync(store) = ccall(fptr(:npk_store_sync), UInt32, (Ptr{npk_store},), store)
npk_store_refresh(store) = ccall(fptr(:npk_store_refresh), UInt32, (Ptr{npk_store},), store)
npk_store_is_read_only(store, out) =
    ccall(fptr(:npk_store_is_read_only), UInt32, (Ptr{npk_store}, Ptr{Bool}), store, out)

npk_store_list(store, out) =
    ccall(fptr(:npk_store_list), UInt32, (Ptr{npk_store}, Ptr{Ptr{npk_names}}), store, out)
npk_names_count(names) = ccall(fptr(:npk_names_count), Csize_t, (Ptr{npk_names},), names)
npk_names_get(names, index) =
    ccall(fptr(:npk_names_get), Ptr{UInt8}, (Ptr{npk_names}, Csize_t), names, index)
npk_names_free(names) = ccall(fptr(:npk_names_free), Cvoid, (Ptr{npk_names},), names)

npk_store_has(store, name, out) =
    ccall(fptr(:npk_store_has), UInt32, (Ptr{npk_store}, Cstring, Ptr{Bool}), store, name, out)
npk_store_info(store, name, out) =
    ccall(fptr(:npk_store_info), UInt32, (Ptr{npk_store}, Cstring, Ptr{npk_array_info}),
          store, name, out)
npk_store_save(store, name, dtype, ndim, shape, data, data_len) =
    ccall(fptr(:npk_store_save), UInt32,
          (Ptr{npk_store}, Cstring, UInt32, Csize_t, Ptr{UInt64}, Ptr{Cvoid}, Csize_t),
          store, name, dtype, ndim, shape, data, data_len)
npk_store_load(store, name, buf, buf_len) =
    ccall(fptr(:npk_store_load), UInt32, (Ptr{npk_store}, Cstring, Ptr{Cvoid}, Csize_t),
          store, name, buf, buf_len)
npk_store_read_rows(store, name, idx, n, buf, buf_len) =
    ccall(fptr(:npk_store_read_rows), UInt32,
          (Ptr{npk_store}, Cstring, Ptr{Int64}, Csize_t, Ptr{Cvoid}, Csize_t),
          store, name, idx, n, buf, buf_len)
npk_store_read_range(store, name, start, stop, buf, buf_len) =
    ccall(fptr(:npk_store_read_range), UInt32,
          (Ptr{npk_store}, Cstring, UInt64, UInt64, Ptr{Cvoid}, Csize_t),
          store, name, start, stop, buf, buf_len)
# (small reads) npk_store_read_range, only while the array has the shape in *expect
npk_store_read_range_checked(store, name, expect, start, stop, buf, buf_len) =
    ccall(fptr(:npk_store_read_range_checked), UInt32,
          (Ptr{npk_store}, Cstring, Ptr{npk_array_info}, UInt64, UInt64, Ptr{Cvoid}, Csize_t),
          store, name, expect, start, stop, buf, buf_len)
# (small reads) npk_store_read_rows, only while the array has the shape in *expect
npk_store_read_rows_checked(store, name, expect, idx, n, buf, buf_len) =
    ccall(fptr(:npk_store_read_rows_checked), UInt32,
          (Ptr{npk_store}, Cstring, Ptr{npk_array_info}, Ptr{Int64}, Csize_t, Ptr{Cvoid}, Csize_t),
          store, name, expect, idx, n, buf, buf_len)
npk_store_replace_rows(store, name, dtype, idx, n, data, data_len) =
    ccall(fptr(:npk_store_replace_rows), UInt32,
          (Ptr{npk_store}, Cstring, UInt32, Ptr{Int64}, Csize_t, Ptr{Cvoid}, Csize_t),
          store, name, dtype, idx, n, data, data_len)
npk_store_replace_range(store, name, dtype, start, rows, data, data_len) =
    ccall(fptr(:npk_store_replace_range), UInt32,
          (Ptr{npk_store}, Cstring, UInt32, UInt64, UInt64, Ptr{Cvoid}, Csize_t),
          store, name, dtype, start, rows, data, data_len)
npk_store_append(store, name, dtype, ndim, shape, data, data_len) =
    ccall(fptr(:npk_store_append), UInt32,
          (Ptr{npk_store}, Cstring, UInt32, Csize_t, Ptr{UInt64}, Ptr{Cvoid}, Csize_t),
          store, name, dtype, ndim, shape, data, data_len)
npk_store_delete_rows(store, name, idx, n) =
    ccall(fptr(:npk_store_delete_rows), UInt32, (Ptr{npk_store}, Cstring, Ptr{Int64}, Csize_t),
          store, name, idx, n)
npk_store_drop(store, name) =
    ccall(fptr(:npk_store_drop), UInt32, (Ptr{npk_store}, Cstring), store, name)
npk_store_compact(store, name) =
    ccall(fptr(:npk_store_compact), UInt32, (Ptr{npk_store}, Cstring), store, name)
npk_store_clone(store, src, dst) =
    ccall(fptr(:npk_store_clone), UInt32, (Ptr{npk_store}, Cstring, Cstring), store, src, dst)
npk_store_rename(store, from, to) =
    ccall(fptr(:npk_store_rename), UInt32, (Ptr{npk_store}, Cstring, Cstring), store, from, to)
npk_store_reset(store) = ccall(fptr(:npk_store_reset), UInt32, (Ptr{npk_store},), store)

npk_store_stream(store, name, batch_rows, out) =
    ccall(fptr(:npk_store_stream), UInt32,
          (Ptr{npk_store}, Cstring, UInt64, Ptr{Ptr{npk_stream}}), store, name, batch_rows, out)
npk_stream_next(stream, buf, buf_len, rows_out) =
    ccall(fptr(:npk_stream_next), UInt32, (Ptr{npk_stream}, Ptr{Cvoid}, Csize_t, Ptr{UInt64}),
          stream, buf, buf_len, rows_out)
npk_stream_free(stream) = ccall(fptr(:npk_stream_free), Cvoid, (Ptr{npk_stream},), stream)

npk_metric_name(metric) = ccall(fptr(:npk_metric_name), Ptr{UInt8}, (UInt32,), metric)
npk_metric_parse(name, out) =
    ccall(fptr(:npk_metric_parse), UInt32, (Cstring, Ptr{UInt32}), name, out)
npk_metric_is_similarity(metric) = ccall(fptr(:npk_metric_is_similarity), Bool, (UInt32,), metric)
npk_vector_capabilities() = ccall(fptr(:npk_vector_capabilities), Ptr{UInt8}, ())
npk_vector_distance(metric, a, b, out) =
    ccall(fptr(:npk_vector_distance), UInt32,
          (UInt32, Ptr{npk_vectors}, Ptr{npk_vectors}, Ptr{Float64}), metric, a, b, out)
npk_vector_scores(metric, queries, candidates, out, out_len) =
    ccall(fptr(:npk_vector_scores), UInt32,
          (UInt32, Ptr{npk_vectors}, Ptr{npk_vectors}, Ptr{Float64}, Csize_t),
          metric, queries, candidates, out, out_len)
npk_vector_top_k(metric, queries, candidates, k, out_indices, out_scores, out_len, kk_out) =
    ccall(fptr(:npk_vector_top_k), UInt32,
          (UInt32, Ptr{npk_vectors}, Ptr{npk_vectors}, UInt64, Ptr{UInt64}, Ptr{Float64}, Csize_t,
           Ptr{UInt64}),
          metric, queries, candidates, k, out_indices, out_scores, out_len, kk_out)
npk_store_top_k(store, name, metric, queries, k, out_indices, out_scores, out_len, kk_out) =
    ccall(fptr(:npk_store_top_k), UInt32,
          (Ptr{npk_store}, Cstring, UInt32, Ptr{npk_vectors}, UInt64, Ptr{UInt64}, Ptr{Float64},
           Csize_t, Ptr{UInt64}),
          store, name, metric, queries, k, out_indices, out_scores, out_len, kk_out)
npk_store_scores(store, name, metric, queries, out, out_len, n_out) =
    ccall(fptr(:npk_store_scores), UInt32,
          (Ptr{npk_store}, Cstring, UInt32, Ptr{npk_vectors}, Ptr{Float64}, Csize_t, Ptr{UInt64}),
          store, name, metric, queries, out, out_len, n_out)

npk_store_view(store, name, flags, out) =
    ccall(fptr(:npk_store_view), UInt32, (Ptr{npk_store}, Cstring, UInt32, Ptr{Ptr{npk_view}}),
          store, name, flags, out)
npk_view_info(view, out) =
    ccall(fptr(:npk_view_info), UInt32, (Ptr{npk_view}, Ptr{npk_view_layout}), view, out)
npk_view_flush(view) = ccall(fptr(:npk_view_flush), UInt32, (Ptr{npk_view},), view)
npk_view_free(view) = ccall(fptr(:npk_view_free), Cvoid, (Ptr{npk_view},), view)

# -- packages (.npkg) ------------------------------------------------------------------------

const NPK_PACK_COMPRESS = UInt32(1)
const NPK_PACK_OVERWRITE = UInt32(2)
const NPK_UNPACK_OVERWRITE = UInt32(1)
const NPK_UNPACK_VERIFY = UInt32(2)

"Opaque package description (`npk_package_info`), only ever behind a Ptr."
mutable struct npk_package_info end

"""
`npk_progress_fn`: a C function pointer `bool (*)(uint64_t done, uint64_t total, void *user_data)`,
made with `@cfunction`; `C_NULL` for none.
"""
const npk_progress_fn = Ptr{Cvoid}

"`npk_package_summary` (field for field, same layout)."
struct npk_package_summary
    version::UInt32
    compression::UInt32
    entry_count::UInt64
    total_original_size::UInt64
    total_stored_size::UInt64
end
npk_package_summary() = npk_package_summary(0, 0, 0, 0, 0)

"`npk_package_entry` (field for field, same layout); `name` belongs to the description."
struct npk_package_entry
    name::Ptr{UInt8}
    original_size::UInt64
    stored_size::UInt64
    crc32::UInt32
    has_crc32::Bool
end
npk_package_entry() = npk_package_entry(C_NULL, 0, 0, 0, false)

npk_package_pack(store, target_path, flags, progress, user_data, out_info) =
    ccall(fptr(:npk_package_pack), UInt32,
          (Ptr{npk_store}, Cstring, UInt32, npk_progress_fn, Ptr{Cvoid}, Ptr{Ptr{npk_package_info}}),
          store, target_path, flags, progress, user_data, out_info)
npk_package_unpack(package_path, target_dir, flags, progress, user_data, out_info) =
    ccall(fptr(:npk_package_unpack), UInt32,
          (Cstring, Cstring, UInt32, npk_progress_fn, Ptr{Cvoid}, Ptr{Ptr{npk_package_info}}),
          package_path, target_dir, flags, progress, user_data, out_info)
npk_package_read_info(package_path, out_info) =
    ccall(fptr(:npk_package_read_info), UInt32, (Cstring, Ptr{Ptr{npk_package_info}}),
          package_path, out_info)
npk_package_get_summary(info, out) =
    ccall(fptr(:npk_package_get_summary), UInt32, (Ptr{npk_package_info}, Ptr{npk_package_summary}),
          info, out)
npk_package_get_entry(info, index, out) =
    ccall(fptr(:npk_package_get_entry), UInt32,
          (Ptr{npk_package_info}, Csize_t, Ptr{npk_package_entry}), info, index, out)
npk_package_info_free(info) =
    ccall(fptr(:npk_package_info_free), Cvoid, (Ptr{npk_package_info},), info)
# -- end packages (.npkg) --------------------------------------------------------------------

# --- .npy interop ---
npk_npy_info(path, out) =
    ccall(fptr(:npk_npy_info), UInt32, (Cstring, Ptr{npk_npy_file_info}), path, out)
npk_npy_import(store, name, path, flags, progress, user_data) =
    ccall(fptr(:npk_npy_import), UInt32, (Ptr{npk_store}, Cstring, Cstring, UInt32, npk_progress_fn, Ptr{Cvoid}),
          store, name, path, flags, progress, user_data)
npk_npz_import(store, path, flags, progress, user_data, out) =
    ccall(fptr(:npk_npz_import), UInt32,
          (Ptr{npk_store}, Cstring, UInt32, npk_progress_fn, Ptr{Cvoid}, Ptr{Ptr{npk_names}}),
          store, path, flags, progress, user_data, out)
npk_npy_export(store, name, path, flags, progress, user_data) =
    ccall(fptr(:npk_npy_export), UInt32, (Ptr{npk_store}, Cstring, Cstring, UInt32, npk_progress_fn, Ptr{Cvoid}),
          store, name, path, flags, progress, user_data)
npk_npy_create_appendable(path, dtype, row_ndim, row_shape) =
    ccall(fptr(:npk_npy_create_appendable), UInt32, (Cstring, UInt32, UInt32, Ptr{UInt64}),
          path, dtype, row_ndim, row_shape)
npk_npy_append(path, dtype, row_ndim, row_shape, data, data_len, flags, out_rows) =
    ccall(fptr(:npk_npy_append), UInt32,
          (Cstring, UInt32, UInt32, Ptr{UInt64}, Ptr{Cvoid}, Csize_t, UInt32, Ptr{UInt64}),
          path, dtype, row_ndim, row_shape, data, data_len, flags, out_rows)
npk_npy_append_file(path, src, flags, progress, user_data, out_rows) =
    ccall(fptr(:npk_npy_append_file), UInt32, (Cstring, Cstring, UInt32, npk_progress_fn, Ptr{Cvoid}, Ptr{UInt64}),
          path, src, flags, progress, user_data, out_rows)
npk_npy_make_appendable(path, out_rewritten) =
    ccall(fptr(:npk_npy_make_appendable), UInt32, (Cstring, Ptr{Bool}), path, out_rewritten)
npk_npy_recover(path, flags, out) =
    ccall(fptr(:npk_npy_recover), UInt32, (Cstring, UInt32, Ptr{npk_npy_recovery}), path, flags, out)
# --- end ---
# -- safetensors ---------------------------------------------------------------------------

const NPK_SAFETENSORS_OVERWRITE = UInt32(1)
const NPK_SAFETENSORS_NO_DTYPE = UInt32(0xFFFFFFFF)

"Opaque safetensors header description (`npk_safetensors_header`), only ever behind a Ptr."
mutable struct npk_safetensors_header end

"`npk_safetensors_summary` (field for field, same layout)."
struct npk_safetensors_summary
    tensor_count::UInt64
    metadata_count::UInt64
    header_len::UInt64
    data_offset::UInt64
    file_size::UInt64
end
npk_safetensors_summary() = npk_safetensors_summary(0, 0, 0, 0, 0)

"`npk_safetensors_tensor` (field for field, same layout); the strings belong to the header."
struct npk_safetensors_tensor
    name::Ptr{UInt8}
    dtype_name::Ptr{UInt8}
    npk_dtype::UInt32
    ndim::UInt32
    shape::NTuple{NPK_MAX_NDIM,UInt64}
    data_begin::UInt64
    data_end::UInt64
end
npk_safetensors_tensor() = npk_safetensors_tensor(C_NULL, C_NULL, 0, 0, ntuple(_ -> UInt64(0), NPK_MAX_NDIM), 0, 0)

npk_safetensors_read_header(path, out) =
    ccall(fptr(:npk_safetensors_read_header), UInt32, (Cstring, Ptr{Ptr{npk_safetensors_header}}), path, out)
npk_safetensors_header_summary(header, out) =
    ccall(fptr(:npk_safetensors_header_summary), UInt32,
          (Ptr{npk_safetensors_header}, Ptr{npk_safetensors_summary}), header, out)
npk_safetensors_header_get_tensor(header, index, out) =
    ccall(fptr(:npk_safetensors_header_get_tensor), UInt32,
          (Ptr{npk_safetensors_header}, Csize_t, Ptr{npk_safetensors_tensor}), header, index, out)
npk_safetensors_header_get_metadata(header, index, out_key, out_value) =
    ccall(fptr(:npk_safetensors_header_get_metadata), UInt32,
          (Ptr{npk_safetensors_header}, Csize_t, Ptr{Ptr{UInt8}}, Ptr{Ptr{UInt8}}), header, index, out_key, out_value)
npk_safetensors_header_free(header) =
    ccall(fptr(:npk_safetensors_header_free), Cvoid, (Ptr{npk_safetensors_header},), header)
npk_safetensors_import(store, path, names, names_len, flags, progress, user_data, out) =
    ccall(fptr(:npk_safetensors_import), UInt32,
          (Ptr{npk_store}, Cstring, Ptr{Ptr{UInt8}}, Csize_t, UInt32, npk_progress_fn, Ptr{Cvoid}, Ptr{Ptr{npk_names}}),
          store, path, names, names_len, flags, progress, user_data, out)
npk_safetensors_export(store, path, names, names_len, meta_keys, meta_values, meta_len, flags, progress, user_data) =
    ccall(fptr(:npk_safetensors_export), UInt32,
          (Ptr{npk_store}, Cstring, Ptr{Ptr{UInt8}}, Csize_t, Ptr{Ptr{UInt8}}, Ptr{Ptr{UInt8}}, Csize_t, UInt32,
           npk_progress_fn, Ptr{Cvoid}),
          store, path, names, names_len, meta_keys, meta_values, meta_len, flags, progress, user_data)
# -- end safetensors -----------------------------------------------------------------------

# check (cli branch)
npk_store_check(path, out) =
    ccall(fptr(:npk_store_check), UInt32, (Cstring, Ptr{Ptr{npk_check_report}}), path, out)
npk_check_report_len(report) = ccall(fptr(:npk_check_report_len), Csize_t, (Ptr{npk_check_report},), report)
npk_check_report_get(report, index, out) =
    ccall(fptr(:npk_check_report_get), UInt32, (Ptr{npk_check_report}, Csize_t, Ptr{npk_check_finding}),
          report, index, out)
npk_check_report_free(report) = ccall(fptr(:npk_check_report_free), Cvoid, (Ptr{npk_check_report},), report)
# -- compressed arrays ---------------------------------------------------------------------

npk_store_save_with(store, name, dtype, ndim, shape, data, data_len, opts) =
    ccall(fptr(:npk_store_save_with), UInt32,
          (Ptr{npk_store}, Cstring, UInt32, Csize_t, Ptr{UInt64}, Ptr{Cvoid}, Csize_t, Ptr{npk_save_options}),
          store, name, dtype, ndim, shape, data, data_len, opts)
npk_store_compression(store, name, out) =
    ccall(fptr(:npk_store_compression), UInt32, (Ptr{npk_store}, Cstring, Ptr{npk_compression_info}),
          store, name, out)

end # module
