//! `npk_safetensors_*`: Hugging Face `.safetensors` files — import tensors into a store,
//! export arrays to a file, read a file's header (tensors and `__metadata__`) without
//! its data.
//!
//! Import and export are streamed (blocks of a few MB); an import is all or nothing, an
//! export goes to a temporary file renamed over the target. Headers are checked as
//! hostile input. Dtypes: `BOOL`, `U8`..`U64`, `I8`..`I64`, `F16`, `F32`, `F64` and `C64`
//! map to the `npk_dtype` of the same type; complex128 cannot be exported and `BF16`,
//! `F8_*`, `F6_*`, `F4` cannot be imported (`NPK_STATUS_UNSUPPORTED`, naming the dtype).
//! Tensor keys become array names unchanged. See `src/safetensors/mod.rs` for details.

use std::ffi::{c_char, c_void, CString};

use super::boundary::{self, flags_arg, path_arg, slice_arg, str_arg, Out};
use super::handle::Handle;
use super::package::{npk_progress_fn, with_progress};
use super::store::{npk_names, npk_store, shape_array};
use super::NPK_MAX_NDIM;
use crate::error::{Error, ErrorCode, Result};
use crate::safetensors::{self, ExportOptions, FileInfo, ImportOptions};

/// Flag of `npk_safetensors_import` and `npk_safetensors_export`: replace existing
/// arrays (import) or an existing file (export) instead of failing with
/// `NPK_STATUS_ALREADY_EXISTS`.
pub const NPK_SAFETENSORS_OVERWRITE: u32 = 1;

/// The `npk_dtype` field of `npk_safetensors_tensor` for a dtype numpack does not hold
/// (`BF16`, `F8_*`, `F6_*`, `F4`).
pub const NPK_SAFETENSORS_NO_DTYPE: u32 = 0xFFFF_FFFF;

/// The header of a `.safetensors` file. Made by `npk_safetensors_read_header`; read with
/// `npk_safetensors_header_summary`, `npk_safetensors_header_get_tensor` and
/// `npk_safetensors_header_get_metadata`; released with `npk_safetensors_header_free`.
///
/// Thread safety: may be read from many threads at once. It holds no file open.
pub struct npk_safetensors_header {
    _private: [u8; 0],
}

/// What an `npk_safetensors_header` stands for: the core's header and its strings as C
/// strings, which live as long as the handle.
pub(crate) struct HeaderData {
    info: FileInfo,
    /// Per tensor: name, dtype string.
    tensors: Vec<(CString, CString)>,
    /// Per metadata entry: key, value.
    metadata: Vec<(CString, CString)>,
}

impl Handle for npk_safetensors_header {
    type Target = HeaderData;
    const NAME: &'static str = "npk_safetensors_header";
}

/// What `npk_safetensors_header_summary` reports about a file as a whole.
#[repr(C)]
pub struct npk_safetensors_summary {
    /// Number of tensors.
    pub tensor_count: u64,
    /// Number of `__metadata__` entries.
    pub metadata_count: u64,
    /// Bytes of the JSON header (`N`, padding included).
    pub header_len: u64,
    /// Offset of the data buffer in the file (`8 + N`); tensor offsets are relative to it.
    pub data_offset: u64,
    /// Size of the file.
    pub file_size: u64,
}

/// What `npk_safetensors_header_get_tensor` reports about one tensor.
#[repr(C)]
pub struct npk_safetensors_tensor {
    /// Its key, NUL-terminated UTF-8. Owned by the header handle: valid until
    /// `npk_safetensors_header_free`.
    pub name: *const c_char,
    /// The safetensors dtype string as written (`"F32"`, `"BF16"`, ...). Owned by the
    /// header handle, like `name`.
    pub dtype_name: *const c_char,
    /// The matching `npk_dtype` value, or `NPK_SAFETENSORS_NO_DTYPE`.
    pub npk_dtype: u32,
    /// Number of dimensions; 0 for a 0-d tensor.
    pub ndim: u32,
    /// The shape. Entries past `ndim` are 0.
    pub shape: [u64; NPK_MAX_NDIM],
    /// Byte range `[data_begin, data_end)` of its data, relative to `data_offset` (the
    /// header's `data_offsets`).
    pub data_begin: u64,
    pub data_end: u64,
}

fn c_string(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(ErrorCode::Unsupported, format!("{what} {s:?} contains a NUL byte, which C strings cannot hold")))
}

fn into_handle(info: FileInfo) -> Result<*mut npk_safetensors_header> {
    let tensors = info
        .header
        .tensors
        .iter()
        .map(|t| Ok((c_string(&t.name, "tensor name")?, c_string(&t.dtype_name, "dtype")?)))
        .collect::<Result<Vec<_>>>()?;
    let metadata = info
        .header
        .metadata
        .iter()
        .map(|(k, v)| Ok((c_string(k, "metadata key")?, c_string(v, "metadata value")?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(npk_safetensors_header::into_raw(HeaderData { info, tensors, metadata }))
}

/// `len` UTF-8 strings at `ptr` (NULL allowed when `len` is 0).
///
/// # Safety
/// Unless NULL, `ptr` must point to `len` pointers, each NULL or NUL-terminated.
unsafe fn strings_arg(ptr: *const *const c_char, len: usize, arg: &str) -> Result<Vec<String>> {
    let ptrs = unsafe { slice_arg(ptr, len, arg) }?;
    ptrs.iter().enumerate().map(|(i, &p)| unsafe { str_arg(p, &format!("{arg}[{i}]")) }.map(str::to_string)).collect()
}

/// Reads and checks the header of the `.safetensors` file at `path` and writes a new
/// description of it to `*out`. The data is not read; the header is checked as in an
/// import (offsets against the file size, sizes against shapes, no duplicate keys).
///
/// Ownership: the caller owns `*out` and releases it with `npk_safetensors_header_free`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (empty path), `NOT_FOUND` (no file),
/// `CORRUPT` (not a safetensors file, bad header; the message names the cause),
/// `UNSUPPORTED` (an unknown dtype, more than `NPK_MAX_NDIM` dimensions, a NUL byte in
/// a key), `IO`. Thread safety: safe from any thread.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_safetensors_read_header(path: *const c_char, out: *mut *mut npk_safetensors_header) -> ErrorCode {
    boundary::status(|| {
        let path = unsafe { path_arg(path, "path") }?;
        let out = Out::new(out, "out")?;
        let handle = into_handle(safetensors::info(path)?)?;
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Writes to `*out` the counts and sizes of the file `header` describes.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live `npk_safetensors_header`).
/// Thread safety: safe from many threads.
///
/// # Safety
/// `header` must be NULL or a pointer from `npk_safetensors_read_header`; `out` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_safetensors_header_summary(header: *const npk_safetensors_header, out: *mut npk_safetensors_summary) -> ErrorCode {
    boundary::status(|| {
        let data = npk_safetensors_header::get(header, "header")?;
        let out = Out::new(out, "out")?;
        let i = &data.info;
        let value = npk_safetensors_summary {
            tensor_count: i.header.tensors.len() as u64,
            metadata_count: i.header.metadata.len() as u64,
            header_len: i.header_len,
            data_offset: i.data_offset,
            file_size: i.file_size,
        };
        unsafe { out.write(value) };
        Ok(())
    })
}

/// Writes to `*out` tensor number `index` (0-based, in the order of the data buffer).
///
/// Ownership: `out->name` and `out->dtype_name` belong to `header` and stay valid until
/// `npk_safetensors_header_free`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live `npk_safetensors_header`),
/// `INDEX_OUT_OF_RANGE` (`index` not below `tensor_count`). Thread safety: safe from
/// many threads.
///
/// # Safety
/// `header` must be NULL or a pointer from `npk_safetensors_read_header`; `out` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_safetensors_header_get_tensor(header: *const npk_safetensors_header, index: usize, out: *mut npk_safetensors_tensor) -> ErrorCode {
    boundary::status(|| {
        let data = npk_safetensors_header::get(header, "header")?;
        let out = Out::new(out, "out")?;
        let count = data.tensors.len();
        let (Some(t), Some((name, dtype_name))) = (data.info.header.tensors.get(index), data.tensors.get(index)) else {
            return Err(Error::new(ErrorCode::IndexOutOfRange, format!("tensor {index} is out of range: the file has {count} tensors")));
        };
        let value = npk_safetensors_tensor {
            // The strings live as long as the handle, not just this reference to it.
            name: name.as_ptr(),
            dtype_name: dtype_name.as_ptr(),
            npk_dtype: t.dtype.map_or(NPK_SAFETENSORS_NO_DTYPE, |d| d.code()),
            ndim: t.shape.len() as u32,
            shape: shape_array(&t.shape)?,
            data_begin: t.begin,
            data_end: t.end,
        };
        unsafe { out.write(value) };
        Ok(())
    })
}

/// Writes to `*out_key` and `*out_value` entry number `index` (0-based, in the order
/// written) of the file's `__metadata__`.
///
/// Ownership: both strings belong to `header` and stay valid until
/// `npk_safetensors_header_free`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live `npk_safetensors_header`),
/// `INDEX_OUT_OF_RANGE` (`index` not below `metadata_count`). Thread safety: safe from
/// many threads.
///
/// # Safety
/// `header` must be NULL or a pointer from `npk_safetensors_read_header`; `out_key` and
/// `out_value` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_safetensors_header_get_metadata(
    header: *const npk_safetensors_header,
    index: usize,
    out_key: *mut *const c_char,
    out_value: *mut *const c_char,
) -> ErrorCode {
    boundary::status(|| {
        let data = npk_safetensors_header::get(header, "header")?;
        let out_key = Out::new(out_key, "out_key")?;
        let out_value = Out::new(out_value, "out_value")?;
        let count = data.metadata.len();
        let Some((k, v)) = data.metadata.get(index) else {
            return Err(Error::new(ErrorCode::IndexOutOfRange, format!("metadata entry {index} is out of range: the file has {count}")));
        };
        unsafe {
            out_key.write(k.as_ptr());
            out_value.write(v.as_ptr());
        }
        Ok(())
    })
}

/// Releases a header description. NULL, and a description already released, are
/// ignored. Must not race with other calls on the same description; the strings it gave
/// become invalid.
///
/// # Safety
/// `header` must be NULL or a pointer from `npk_safetensors_read_header`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_safetensors_header_free(header: *mut npk_safetensors_header) {
    boundary::value((), || drop(npk_safetensors_header::take(header, "header")))
}

/// Imports tensors of the `.safetensors` file at `path` into arrays of `store` named by
/// their keys, streamed, and writes to `*out` the names imported, in the order imported.
/// `names[0..names_len]` selects tensors (in that order); `names_len` 0 imports all, in
/// file order. All or nothing: every tensor goes to a temporary array, renamed into
/// place once all are in, so any failure leaves the store as it was.
///
/// `flags`: 0 or `NPK_SAFETENSORS_OVERWRITE` (replace existing arrays).
///
/// `progress` may be NULL; otherwise it is called as `npk_progress_fn` describes, with the
/// bytes of tensor data done and in all (all selected tensors together): once with
/// `done` 0, after every block of a few MB, and at the end with `done == total`, on the
/// calling thread. `user_data` is passed to it untouched. When it returns false the call
/// returns `NPK_STATUS_CANCELLED` and the store is left as it was.
///
/// Ownership: the caller owns `*out` and releases it with `npk_names_free`.
///
/// Errors: `NULL_ARGUMENT` (also `names` NULL with `names_len` > 0, or a NULL entry),
/// `INVALID_ARGUMENT` (not a live handle, unknown flags, a name not UTF-8, a tensor
/// selected twice, empty path), `NOT_FOUND` (no file, or a selected tensor is not in
/// it), `CORRUPT` (bad header), `UNSUPPORTED` (a dtype numpack does not hold: the message
/// names tensor and dtype), `SHAPE_MISMATCH` (a 0-d tensor), `INVALID_NAME` (a key no
/// array can be named, e.g. holding `/`), `ALREADY_EXISTS`, `READ_ONLY`, `CANCELLED`,
/// `IO`. Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `path` NULL or a
/// NUL-terminated string; `names` NULL or `names_len` pointers to NUL-terminated strings;
/// `progress` NULL or a function of the type `npk_progress_fn`; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_safetensors_import(
    store: *const npk_store,
    path: *const c_char,
    names: *const *const c_char,
    names_len: usize,
    flags: u32,
    progress: npk_progress_fn,
    user_data: *mut c_void,
    out: *mut *mut npk_names,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let path = unsafe { path_arg(path, "path") }?;
        let names = unsafe { strings_arg(names, names_len, "names") }?;
        let flags = flags_arg(flags, NPK_SAFETENSORS_OVERWRITE, "flags")?;
        let out = Out::new(out, "out")?;
        let opts = ImportOptions { names: (names_len > 0).then_some(&names[..]), overwrite: flags & NPK_SAFETENSORS_OVERWRITE != 0 };
        let imported = with_progress(progress, user_data, |p| safetensors::import(&store, path, &opts, p))?;
        unsafe { out.write(npk_names::from_names(imported, ErrorCode::InvalidName)?) };
        Ok(())
    })
}

/// Exports arrays of `store` to a `.safetensors` file at `path`: `names[0..names_len]`,
/// or every array when `names_len` is 0. Deleted rows are left out. The file's
/// `__metadata__` is `meta_keys[i]: meta_values[i]` for `i < meta_len` (none when 0).
/// Tensors are laid out by decreasing element size, then name, each aligned to its
/// element size. Streamed; written to a temporary file next to `path`, synced and
/// renamed over it, so `path` holds either its old contents or the complete new file.
///
/// `flags`: 0 or `NPK_SAFETENSORS_OVERWRITE` (replace an existing file).
///
/// `progress` may be NULL; otherwise it is called as for `npk_safetensors_import`, with
/// the bytes of array data. When it returns false the call returns
/// `NPK_STATUS_CANCELLED` and `path` is left as it was, with no temporary file behind.
///
/// Errors: `NULL_ARGUMENT` (also an array argument NULL with a length > 0, or a NULL
/// entry), `INVALID_ARGUMENT` (not a live handle, unknown flags, a string not UTF-8, an
/// array selected twice, a metadata key given twice, empty path), `NOT_FOUND` (no such
/// array), `UNSUPPORTED` (a complex128 array: safetensors has no such dtype),
/// `INVALID_NAME` (an array named `__metadata__`), `ALREADY_EXISTS` (the file exists, no
/// `NPK_SAFETENSORS_OVERWRITE`), `CANCELLED`, `IO`, `CORRUPT`. Thread safety: safe from
/// many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `path` NULL or a
/// NUL-terminated string; `names` NULL or `names_len` pointers to NUL-terminated
/// strings; `meta_keys` and `meta_values` NULL or `meta_len` such pointers each;
/// `progress` NULL or a function of the type `npk_progress_fn`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_safetensors_export(
    store: *const npk_store,
    path: *const c_char,
    names: *const *const c_char,
    names_len: usize,
    meta_keys: *const *const c_char,
    meta_values: *const *const c_char,
    meta_len: usize,
    flags: u32,
    progress: npk_progress_fn,
    user_data: *mut c_void,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let path = unsafe { path_arg(path, "path") }?;
        let names = unsafe { strings_arg(names, names_len, "names") }?;
        let keys = unsafe { strings_arg(meta_keys, meta_len, "meta_keys") }?;
        let values = unsafe { strings_arg(meta_values, meta_len, "meta_values") }?;
        let flags = flags_arg(flags, NPK_SAFETENSORS_OVERWRITE, "flags")?;
        let metadata: Vec<(String, String)> = keys.into_iter().zip(values).collect();
        let opts = ExportOptions {
            names: (names_len > 0).then_some(&names[..]),
            metadata: &metadata,
            overwrite: flags & NPK_SAFETENSORS_OVERWRITE != 0,
        };
        with_progress(progress, user_data, |p| safetensors::export(&store, path, &opts, p)).map(drop)
    })
}
