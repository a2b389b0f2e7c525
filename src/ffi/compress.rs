//! Compressed arrays (`crate::compress`): saving an array compressed and asking how an
//! array is stored. A compressed array is read, appended to, replaced, deleted from and
//! streamed with the ordinary `npk_store_*` functions; `npk_store_view` gives a
//! read-only view of its decompressed rows (a copy, not a mapping), and a writable view
//! fails with `NPK_STATUS_UNSUPPORTED`.

use std::ffi::{c_char, c_void};

use super::boundary::{self, bytes_arg, dtype_arg, slice_arg, str_arg, Out};
use super::handle::Handle;
use super::store::npk_store;
use crate::compress::{Compression, SaveOptions, DEFAULT_LEVEL};
use crate::error::Error;

/// `npk_save_options.compression`: a plain array (`data_<name>.npkd`, readable by
/// NumPack).
pub const NPK_COMPRESSION_NONE: u32 = 0;
/// `npk_save_options.compression`: zstd-compressed chunks of rows, byte-shuffled
/// (`data_<name>.npkz`; NumPack does not read such arrays).
pub const NPK_COMPRESSION_ZSTD: u32 = 1;

/// Options of `npk_store_save_with`. A zero-initialised struct (`npk_save_options o =
/// {0};`) means a plain save, exactly `npk_store_save`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct npk_save_options {
    /// `NPK_COMPRESSION_NONE` or `NPK_COMPRESSION_ZSTD`.
    pub compression: u32,
    /// zstd level: 1..=22, or -7..=-1 for zstd's fast modes; 0 means the default, 3.
    /// Ignored with `NPK_COMPRESSION_NONE`.
    pub level: i32,
}

/// What `npk_store_compression` reports. For a plain array `compression` is
/// `NPK_COMPRESSION_NONE` and every other field 0.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct npk_compression_info {
    /// `NPK_COMPRESSION_NONE` or `NPK_COMPRESSION_ZSTD`.
    pub compression: u32,
    /// The zstd level the array was written with.
    pub level: i32,
    /// Number of chunks (each compressed on its own).
    pub chunks: u64,
    /// Rows per chunk (the last chunk may hold fewer).
    pub rows_per_chunk: u64,
    /// Size of the `.npkz` file in bytes (chunks superseded by appends and replaces
    /// included until `npk_store_compact`).
    pub stored_bytes: u64,
    /// Size of all physical rows uncompressed, in bytes.
    pub raw_bytes: u64,
}

fn options(opts: &npk_save_options) -> crate::Result<SaveOptions> {
    match opts.compression {
        NPK_COMPRESSION_NONE => Ok(SaveOptions { compression: None }),
        NPK_COMPRESSION_ZSTD => {
            let level = if opts.level == 0 { DEFAULT_LEVEL } else { opts.level };
            Ok(SaveOptions { compression: Some(Compression { level }) })
        }
        c => Err(Error::invalid(format!("compression {c} is not an npk_compression value (0 none, 1 zstd)"))),
    }
}

/// As `npk_store_save`, with options: `opts->compression == NPK_COMPRESSION_ZSTD`
/// stores the array in compressed chunks (`data_<name>.npkz`), which NumPack refuses to
/// read (it finds no `data_<name>.npkd`) rather than misreads. `opts` NULL means a plain
/// save.
///
/// Errors: those of `npk_store_save`, plus `INVALID_ARGUMENT` (unknown `compression`,
/// level out of range) and `SHAPE_MISMATCH` (compressed rows of zero bytes, e.g. shape
/// `[n, 0]`). Thread safety: safe from many threads.
///
/// # Safety
/// As `npk_store_save`; `opts` NULL or a readable `npk_save_options`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_save_with(
    store: *const npk_store,
    name: *const c_char,
    dtype: u32,
    ndim: usize,
    shape: *const u64,
    data: *const c_void,
    data_len: usize,
    opts: *const npk_save_options,
) -> crate::error::ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let dtype = dtype_arg(dtype)?;
        let shape = unsafe { slice_arg(shape, ndim, "shape") }?;
        let data = unsafe { bytes_arg(data, data_len, "data") }?;
        let opts = if opts.is_null() { SaveOptions::default() } else { options(&unsafe { slice_arg(opts, 1, "opts") }?[0])? };
        store.save_with(name, dtype, shape, data, &opts)
    })
}

/// Writes to `*out` how array `name` is stored: `NPK_COMPRESSION_NONE` (all other
/// fields 0) for a plain array, else its level, chunks and sizes.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, `name` not UTF-8),
/// `INVALID_NAME`, `NOT_FOUND`, `IO`, `CORRUPT` (the compressed file's header or index
/// is damaged). Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_compression(store: *const npk_store, name: *const c_char, out: *mut npk_compression_info) -> crate::error::ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let out = Out::new(out, "out")?;
        let info = match store.compression(name)? {
            None => npk_compression_info { compression: NPK_COMPRESSION_NONE, level: 0, chunks: 0, rows_per_chunk: 0, stored_bytes: 0, raw_bytes: 0 },
            Some(c) => npk_compression_info {
                compression: NPK_COMPRESSION_ZSTD,
                level: c.level,
                chunks: c.chunks,
                rows_per_chunk: c.rows_per_chunk,
                stored_bytes: c.stored_bytes,
                raw_bytes: c.raw_bytes,
            },
        };
        unsafe { out.write(info) };
        Ok(())
    })
}
