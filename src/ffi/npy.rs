//! `npk_npy_*`, `npk_npz_*`: NumPy `.npy` / `.npz` files — import into a store, export
//! from it, append rows in place, make legacy files appendable, recover crashed appends.
//!
//! Import and export are streamed (constant memory whatever the file size); exports and
//! rewrites go to a temporary file renamed over the target (atomic). Appends take an
//! exclusive `flock` of the file, so appenders in any thread or process never lose rows.
//! See `src/npy.rs` for the format and the guarantees in detail.

use std::ffi::{c_char, c_void};

use super::boundary::{self, bytes_arg, dtype_arg, flags_arg, path_arg, slice_arg, str_arg, Out};
use super::handle::Handle;
use super::package::{npk_progress_fn, with_progress};
use super::store::{npk_names, npk_store, shape_array};
use super::NPK_MAX_NDIM;
use crate::error::ErrorCode;
use crate::npy::{self, AppendOptions};

/// Flag of `npk_npy_import`, `npk_npz_import` and `npk_npy_export`: replace an existing
/// array (import) or file (export) instead of failing with `NPK_STATUS_ALREADY_EXISTS`.
pub const NPK_NPY_OVERWRITE: u32 = 1;
/// Flag of `npk_npy_append` and `npk_npy_append_file`: `fsync` the rows and the header
/// before returning.
pub const NPK_NPY_SYNC: u32 = 2;
/// Flag of `npk_npy_append` and `npk_npy_append_file`: create the file (appendable, no
/// rows yet) if it does not exist.
pub const NPK_NPY_CREATE: u32 = 4;
/// Flag of `npk_npy_recover`: complete an incomplete last row with zeros instead of
/// dropping it.
pub const NPK_NPY_ZERO_FILL: u32 = 8;

/// What `npk_npy_info` reports about a `.npy` file's header.
#[repr(C)]
pub struct npk_npy_file_info {
    /// The element type: an `npk_dtype` value.
    pub dtype: u32,
    /// Number of dimensions; 0 for a 0-d array.
    pub ndim: u32,
    /// The shape the header states. Entries past `ndim` are 0.
    pub shape: [u64; NPK_MAX_NDIM],
    /// Format version: 1, 2 or 3 (minor is always 0).
    pub version_major: u32,
    pub version_minor: u32,
    /// The elements are stored big-endian (import converts them).
    pub big_endian: bool,
    /// The elements are in Fortran (column-major) order (import converts them).
    pub fortran_order: bool,
    /// The header has room for the shape to grow and the array is C order with at least
    /// one dimension: `npk_npy_append` works without `npk_npy_make_appendable`.
    pub appendable: bool,
    /// The header length field: bytes of the header text, padding and `\n` included.
    pub header_len: u64,
    /// Offset of the first element in the file.
    pub data_offset: u64,
    /// Size of the file. It equals `data_offset` + the shape's bytes unless the file is
    /// truncated or a crashed appender left rows the header does not count (then
    /// `npk_npy_recover` repairs it).
    pub file_size: u64,
}

/// What `npk_npy_recover` found and did.
#[repr(C)]
pub struct npk_npy_recovery {
    /// Rows the header stated before.
    pub header_rows: u64,
    /// Rows the file holds now (and its header states).
    pub rows: u64,
    /// Bytes of an incomplete last row that were cut off.
    pub dropped_bytes: u64,
    /// Zero bytes added to complete an incomplete last row (`NPK_NPY_ZERO_FILL`).
    pub zero_filled_bytes: u64,
    /// The whole file was rewritten because its header had no room for the new shape.
    pub rewritten: bool,
}

/// Reads the header of the `.npy` file at `path` into `*out`. The data is not read and
/// need not be complete.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (empty path), `NOT_FOUND` (no file),
/// `CORRUPT` (not a `.npy` file, damaged header), `UNSUPPORTED` (format version, a
/// dtype numpack does not hold — the message names the descr — or more than
/// `NPK_MAX_NDIM` dimensions), `IO`. Thread safety: safe from any thread.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_npy_info(path: *const c_char, out: *mut npk_npy_file_info) -> ErrorCode {
    boundary::status(|| {
        let path = unsafe { path_arg(path, "path") }?;
        let out = Out::new(out, "out")?;
        let info = npy::info(path)?;
        let value = npk_npy_file_info {
            dtype: info.dtype.code(),
            ndim: info.shape.len() as u32,
            shape: shape_array(&info.shape)?,
            version_major: info.version.0 as u32,
            version_minor: info.version.1 as u32,
            big_endian: info.big_endian,
            fortran_order: info.fortran_order,
            appendable: info.appendable,
            header_len: info.header_len,
            data_offset: info.data_offset,
            file_size: info.file_size,
        };
        unsafe { out.write(value) };
        Ok(())
    })
}

/// Imports the `.npy` file at `path` into array `name` of `store`, streamed (blocks of a
/// few MB). Big-endian data is converted to native order, Fortran order to C order. The
/// array is written under a temporary name and renamed into place when complete.
///
/// `flags`: 0 or `NPK_NPY_OVERWRITE` (replace an existing array).
///
/// `progress` may be NULL; otherwise it is called as `npk_progress_fn` describes, with the
/// bytes of array data done and in all: once with `done` 0, after every block of a few
/// MB, and at the end with `done == total`, on the calling thread. `user_data` is passed
/// to it untouched. When it returns false the call returns `NPK_STATUS_CANCELLED` and
/// no array is created (an existing one is left as it was).
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, unknown flags, `name`
/// not UTF-8, empty path), `INVALID_NAME`, `ALREADY_EXISTS`, `NOT_FOUND` (no file),
/// `CORRUPT`, `UNSUPPORTED` (dtype, version), `SHAPE_MISMATCH` (a 0-d array),
/// `NEEDS_RECOVERY` (the file size does not match its header), `READ_ONLY`, `CANCELLED`,
/// `IO`. Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` and `path`
/// NULL or NUL-terminated strings; `progress` NULL or a function of the type
/// `npk_progress_fn`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_npy_import(
    store: *const npk_store,
    name: *const c_char,
    path: *const c_char,
    flags: u32,
    progress: npk_progress_fn,
    user_data: *mut c_void,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let path = unsafe { path_arg(path, "path") }?;
        let flags = flags_arg(flags, NPK_NPY_OVERWRITE, "flags")?;
        with_progress(progress, user_data, |p| npy::import(&store, name, path, flags & NPK_NPY_OVERWRITE != 0, p)).map(drop)
    })
}

/// Imports every member of the `.npz` archive at `path` (stored or deflated members, as
/// `numpy.savez` and `numpy.savez_compressed` write) into an array named by its key, and
/// writes to `*out` the list of names imported, in archive order. All or nothing: members
/// are streamed (CRC-32 checked) into temporary arrays renamed into place once all are
/// in, so a bad member or an existing name (without `NPK_NPY_OVERWRITE`) changes nothing.
///
/// `flags`: 0 or `NPK_NPY_OVERWRITE`.
///
/// `progress` may be NULL; otherwise it is called as `npk_progress_fn` describes, with the
/// bytes of array data done and in all: once with `done` 0, after every block of a few
/// MB, and at the end with `done == total`, on the calling thread. `user_data` is passed
/// to it untouched. When it returns false the call returns `NPK_STATUS_CANCELLED` and
/// the store is left as it was. `total` counts the data of all members together.
///
/// Ownership: the caller owns `*out` and releases it with `npk_names_free`.
///
/// Errors: as `npk_npy_import`; `CORRUPT` also for a damaged archive, `UNSUPPORTED` for
/// compression methods other than stored and deflate. Thread safety: safe from many
/// threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `path` NULL or a
/// NUL-terminated string; `progress` NULL or a function of the type `npk_progress_fn`;
/// `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_npz_import(
    store: *const npk_store,
    path: *const c_char,
    flags: u32,
    progress: npk_progress_fn,
    user_data: *mut c_void,
    out: *mut *mut npk_names,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let path = unsafe { path_arg(path, "path") }?;
        let flags = flags_arg(flags, NPK_NPY_OVERWRITE, "flags")?;
        let out = Out::new(out, "out")?;
        let names = with_progress(progress, user_data, |p| npy::import_npz(&store, path, flags & NPK_NPY_OVERWRITE != 0, p))?;
        unsafe { out.write(npk_names::from_names(names, ErrorCode::InvalidName)?) };
        Ok(())
    })
}

/// Exports array `name` of `store` to a `.npy` file at `path`: C order, little-endian,
/// version 1.0, with header room so the file stays appendable. Deleted rows are left
/// out. Streamed; written to a temporary file next to `path`, synced, and renamed over
/// it, so `path` holds either its old contents or the complete new file.
///
/// `flags`: 0 or `NPK_NPY_OVERWRITE` (replace an existing file).
///
/// `progress` may be NULL; otherwise it is called as `npk_progress_fn` describes, with the
/// bytes of array data done and in all: once with `done` 0, after every block of a few
/// MB, and at the end with `done == total`, on the calling thread. `user_data` is passed
/// to it untouched. When it returns false the call returns `NPK_STATUS_CANCELLED` and
/// `path` is left as it was, with no temporary file behind.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, unknown flags, `name`
/// not UTF-8, empty path), `INVALID_NAME`, `NOT_FOUND` (no array), `ALREADY_EXISTS` (the
/// file exists, no `NPK_NPY_OVERWRITE`), `CANCELLED`, `IO`, `CORRUPT`. Thread safety:
/// safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` and `path`
/// NULL or NUL-terminated strings; `progress` NULL or a function of the type
/// `npk_progress_fn`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_npy_export(
    store: *const npk_store,
    name: *const c_char,
    path: *const c_char,
    flags: u32,
    progress: npk_progress_fn,
    user_data: *mut c_void,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let path = unsafe { path_arg(path, "path") }?;
        let flags = flags_arg(flags, NPK_NPY_OVERWRITE, "flags")?;
        with_progress(progress, user_data, |p| npy::export(&store, name, path, flags & NPK_NPY_OVERWRITE != 0, p)).map(drop)
    })
}

/// Creates an empty appendable `.npy` file at `path` holding `dtype` rows of shape
/// `row_shape[0..row_ndim]` (the file's shape is `(0, *row_shape)`). The file appears
/// atomically, complete with its header.
///
/// Errors: `NULL_ARGUMENT` (`path` NULL, `row_shape` NULL with `row_ndim` > 0),
/// `INVALID_ARGUMENT` (bad dtype code, empty path, row too large), `SHAPE_MISMATCH`
/// (`row_ndim` + 1 above `NPK_MAX_NDIM`), `ALREADY_EXISTS`, `IO`. Thread safety: safe
/// from any thread.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `row_shape` NULL or `row_ndim`
/// readable values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_npy_create_appendable(path: *const c_char, dtype: u32, row_ndim: u32, row_shape: *const u64) -> ErrorCode {
    boundary::status(|| {
        let path = unsafe { path_arg(path, "path") }?;
        let dtype = dtype_arg(dtype)?;
        let row_shape = unsafe { slice_arg(row_shape, row_ndim as usize, "row_shape") }?;
        npy::create_appendable(path, dtype, row_shape)
    })
}

/// Appends `data_len` bytes of rows to the `.npy` file at `path` in place and writes the
/// file's new row count to `*out_rows`. `data` holds C-order, native (little-endian)
/// elements of `dtype`, in rows of shape `row_shape[0..row_ndim]`, which must be the
/// file's shape without its first dimension. The rows go after the existing data, then
/// the shape in the header is updated in place, all under an exclusive lock of the file:
/// concurrent appenders (threads or processes) are serialised and lose no row. A crash
/// between the two steps leaves a file `npk_npy_recover` repairs.
///
/// `flags`: `NPK_NPY_SYNC` (fsync before returning), `NPK_NPY_CREATE` (create the file
/// if missing, as `npk_npy_create_appendable`).
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (bad dtype code, unknown flags, empty
/// path), `NOT_FOUND` (no file, no `NPK_NPY_CREATE`), `DTYPE_MISMATCH`, `SHAPE_MISMATCH`,
/// `BUFFER_SIZE` (`data_len` is not a whole number of rows), `UNSUPPORTED` (the header
/// has no spare room or the file is in Fortran order: call `npk_npy_make_appendable`;
/// a 0-d array), `NEEDS_RECOVERY` (the file size does not match its header: call
/// `npk_npy_recover`), `CORRUPT`, `IO`. Thread safety: safe from any thread.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `row_shape` NULL or `row_ndim`
/// readable values; `data` NULL or `data_len` readable bytes; `out_rows` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_npy_append(
    path: *const c_char,
    dtype: u32,
    row_ndim: u32,
    row_shape: *const u64,
    data: *const c_void,
    data_len: usize,
    flags: u32,
    out_rows: *mut u64,
) -> ErrorCode {
    boundary::status(|| {
        let path = unsafe { path_arg(path, "path") }?;
        let dtype = dtype_arg(dtype)?;
        let row_shape = unsafe { slice_arg(row_shape, row_ndim as usize, "row_shape") }?;
        let data = unsafe { bytes_arg(data, data_len, "data") }?;
        let flags = flags_arg(flags, NPK_NPY_SYNC | NPK_NPY_CREATE, "flags")?;
        let out = Out::new(out_rows, "out_rows")?;
        let opts = AppendOptions { sync: flags & NPK_NPY_SYNC != 0, create: flags & NPK_NPY_CREATE != 0 };
        let rows = npy::append(path, data, dtype, row_shape, opts)?;
        unsafe { out.write(rows) };
        Ok(())
    })
}

/// Appends every row of the `.npy` file `src` to the `.npy` file at `path` in place,
/// streamed (converting `src`'s byte order and Fortran order), and writes the new row
/// count to `*out_rows`. `path` stays locked for the whole copy, so the rows land
/// together even with concurrent appenders; the header is updated once at the end.
///
/// `flags`: `NPK_NPY_SYNC`, `NPK_NPY_CREATE` (create `path` with `src`'s dtype and row
/// shape if missing).
///
/// `progress` may be NULL; otherwise it is called as `npk_progress_fn` describes, with the
/// bytes of `src`'s data done and in all (once with `done` 0, after every block of a few
/// MB, at the end with `done == total`), on the calling thread, with `user_data`. When it
/// returns false the call returns `NPK_STATUS_CANCELLED` and the rows copied so far are
/// cut off again: `path` holds its old rows (a file made by `NPK_NPY_CREATE` stays,
/// empty).
///
/// Errors: as `npk_npy_append`; `NOT_FOUND`, `CORRUPT`, `UNSUPPORTED`, `NEEDS_RECOVERY`
/// for `src` too; `SHAPE_MISMATCH` (a 0-d `src`); `INVALID_ARGUMENT` (both name the same
/// file); `CANCELLED`. Thread safety: safe from any thread.
///
/// # Safety
/// `path` and `src` must be NULL or NUL-terminated strings; `progress` NULL or a function
/// of the type `npk_progress_fn`; `out_rows` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_npy_append_file(
    path: *const c_char,
    src: *const c_char,
    flags: u32,
    progress: npk_progress_fn,
    user_data: *mut c_void,
    out_rows: *mut u64,
) -> ErrorCode {
    boundary::status(|| {
        let path = unsafe { path_arg(path, "path") }?;
        let src = unsafe { path_arg(src, "src") }?;
        let flags = flags_arg(flags, NPK_NPY_SYNC | NPK_NPY_CREATE, "flags")?;
        let out = Out::new(out_rows, "out_rows")?;
        let opts = AppendOptions { sync: flags & NPK_NPY_SYNC != 0, create: flags & NPK_NPY_CREATE != 0 };
        let rows = with_progress(progress, user_data, |p| npy::append_file(path, src, opts, p))?;
        unsafe { out.write(rows) };
        Ok(())
    })
}

/// Makes the `.npy` file at `path` appendable. A file whose header has no spare room (as
/// NumPy writes them) or in Fortran order is rewritten — streamed into a temporary file
/// with a growable header, in C order and native byte order, then renamed over it under
/// the file's lock. Writes to `*out_rewritten` whether it rewrote the file (false: it was
/// appendable already and is untouched).
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (empty path), `NOT_FOUND`, `CORRUPT`,
/// `UNSUPPORTED` (dtype, 0-d array), `NEEDS_RECOVERY` (size does not match the header:
/// call `npk_npy_recover` first), `IO`. Thread safety: safe from any thread.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `out_rewritten` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_npy_make_appendable(path: *const c_char, out_rewritten: *mut bool) -> ErrorCode {
    boundary::status(|| {
        let path = unsafe { path_arg(path, "path") }?;
        let out = Out::new(out_rewritten, "out_rewritten")?;
        let rewritten = npy::make_appendable(path, None)?;
        unsafe { out.write(rewritten) };
        Ok(())
    })
}

/// Repairs a `.npy` file whose size does not match its header (an appender crashed): the
/// first dimension is set from the data present, an incomplete last row is cut off (or,
/// with `NPK_NPY_ZERO_FILL`, completed with zeros). Covers both a truncated last row and
/// a header that lags behind rows already written. A file that needs nothing is left
/// untouched. Writes what was done to `*out`.
///
/// `flags`: 0 or `NPK_NPY_ZERO_FILL`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (unknown flags, empty path), `NOT_FOUND`,
/// `CORRUPT` (the header itself is damaged), `UNSUPPORTED` (Fortran order or 0-d: rows
/// cannot be told apart; dtype), `IO`. Thread safety: safe from any thread; takes the
/// same lock as `npk_npy_append`.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_npy_recover(path: *const c_char, flags: u32, out: *mut npk_npy_recovery) -> ErrorCode {
    boundary::status(|| {
        let path = unsafe { path_arg(path, "path") }?;
        let flags = flags_arg(flags, NPK_NPY_ZERO_FILL, "flags")?;
        let out = Out::new(out, "out")?;
        let r = npy::recover(path, flags & NPK_NPY_ZERO_FILL != 0)?;
        let value = npk_npy_recovery {
            header_rows: r.header_rows,
            rows: r.rows,
            dropped_bytes: r.dropped_bytes,
            zero_filled_bytes: r.zero_filled_bytes,
            rewritten: r.rewritten,
        };
        unsafe { out.write(value) };
        Ok(())
    })
}
