//! `npk_stream`: an array's live rows, batch by batch.

use std::ffi::{c_char, c_void};
use std::sync::Mutex;

use super::boundary::{self, bytes_mut_arg, str_arg, Out};
use super::handle::Handle;
use super::store::npk_store;
use crate::error::ErrorCode;
use crate::stream::Stream;

/// A cursor over the live rows of one array. Create with `npk_store_stream`, release
/// with `npk_stream_free`. It does not depend on the store handle staying open.
///
/// Thread safety: calls on one stream are serialised; use one stream per thread.
pub struct npk_stream {
    _private: [u8; 0],
}

impl Handle for npk_stream {
    type Target = Mutex<Stream>;
    const NAME: &'static str = "npk_stream";
}

/// Starts reading array `name` in batches of `batch_rows` rows and writes the new
/// stream to `*out`.
///
/// Ownership: the caller owns `*out` and must release it with `npk_stream_free`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, `batch_rows` 0,
/// `name` not UTF-8), `INVALID_NAME`, `NOT_FOUND`, `SHAPE_MISMATCH` (0-d array), `IO`,
/// `CORRUPT`. Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_stream(store: *const npk_store, name: *const c_char, batch_rows: u64, out: *mut *mut npk_stream) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let out = Out::new(out, "out")?;
        let stream = store.stream(name, batch_rows)?;
        unsafe { out.write(npk_stream::into_raw(Mutex::new(stream))) };
        Ok(())
    })
}

/// Reads the next batch of rows into `buf` and writes the number of rows read to
/// `*rows_out`: `batch_rows` rows, fewer for the last batch, 0 at the end. `buf_len` must
/// hold at least a full batch (`batch_rows` rows). Each batch reads the array as it is
/// then, so rows appended meanwhile are reached too.
///
/// The contents of `buf` are unspecified after a failure.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live stream), `BUFFER_SIZE`,
/// `NOT_FOUND` (the array was dropped), `INDEX_OUT_OF_RANGE`, `IO`, `CORRUPT`.
/// Thread safety: calls on one stream are serialised.
///
/// # Safety
/// `stream` must be NULL or a pointer returned by `npk_store_stream`; `buf` NULL or
/// `buf_len` writable bytes; `rows_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_stream_next(stream: *mut npk_stream, buf: *mut c_void, buf_len: usize, rows_out: *mut u64) -> ErrorCode {
    boundary::status(|| {
        let stream = npk_stream::get(stream, "stream")?;
        let buf = unsafe { bytes_mut_arg(buf, buf_len, "buf") }?;
        let rows_out = Out::new(rows_out, "rows_out")?;
        // A panic mid-batch leaves the position where it was, so a poisoned lock is fine.
        let rows = stream.lock().unwrap_or_else(|e| e.into_inner()).next_into(buf)?;
        unsafe { rows_out.write(rows) };
        Ok(())
    })
}

/// Releases a stream. NULL, and a stream already released, are ignored. Must not race
/// with other calls on the same stream.
///
/// # Safety
/// `stream` must be NULL or a pointer returned by `npk_store_stream`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_stream_free(stream: *mut npk_stream) {
    boundary::value((), || drop(npk_stream::take(stream, "stream")))
}
