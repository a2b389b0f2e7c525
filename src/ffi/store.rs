//! `npk_store`: opening, reading and changing a store; `npk_names`: lists of names.

use std::ffi::{c_char, c_void, CString};

use super::boundary::{self, bytes_arg, bytes_mut_arg, dtype_arg, flags_arg, path_arg, slice_arg, str_arg, Out};
use super::handle::Handle;
use super::NPK_MAX_NDIM;
use crate::error::{Error, ErrorCode};
use crate::store::{OpenOptions, Store};

/// An open store. Create with `npk_store_open`, release with `npk_store_close`.
///
/// Thread safety: every `npk_store_*` function taking a `const npk_store*` may be called
/// on the same handle from many threads at once.
pub struct npk_store {
    _private: [u8; 0],
}

impl Handle for npk_store {
    type Target = Store;
    const NAME: &'static str = "npk_store";
}

/// A list of array names. Create with `npk_store_list`, release with `npk_names_free`.
pub struct npk_names {
    _private: [u8; 0],
}

impl Handle for npk_names {
    type Target = Vec<CString>;
    const NAME: &'static str = "npk_names";
}

impl npk_names {
    /// A new list of array names; `nul` is the status for a name holding a NUL byte.
    pub(crate) fn from_names(names: Vec<String>, nul: ErrorCode) -> crate::Result<*mut npk_names> {
        let names = names
            .into_iter()
            .map(|n| CString::new(n).map_err(|e| Error::new(nul, format!("an array name contains NUL: {e}"))))
            .collect::<crate::Result<Vec<CString>>>()?;
        Ok(npk_names::into_raw(names))
    }
}

/// `npk_store_open` flag: create the store (directory included) if there is none.
pub const NPK_OPEN_CREATE: u32 = 1;
/// `npk_store_open` flag: delete what is at the path first (a store, an empty directory
/// or a file; never a non-empty directory that is not a store). Implies
/// `NPK_OPEN_CREATE`. Cannot be combined with `NPK_OPEN_READ_ONLY`.
pub const NPK_OPEN_DROP_IF_EXISTS: u32 = 2;
/// `npk_store_open` flag: refuse every change through this handle
/// (`NPK_STATUS_READ_ONLY`), and create, rename or write no file, even to open: see
/// `npk_store_open`.
pub const NPK_OPEN_READ_ONLY: u32 = 4;

const OPEN_FLAGS: u32 = NPK_OPEN_CREATE | NPK_OPEN_DROP_IF_EXISTS | NPK_OPEN_READ_ONLY;

/// What `npk_store_info` reports about an array.
#[repr(C)]
pub struct npk_array_info {
    /// The element type: an `npk_dtype` value.
    pub dtype: u32,
    /// Number of dimensions; 0 for a 0-d array (which only NumPack itself can write).
    pub ndim: u32,
    /// Logical shape: `shape[0]` counts live rows only. Entries past `ndim` are 0.
    pub shape: [u64; NPK_MAX_NDIM],
    /// Rows in the data file, deleted ones included.
    pub physical_rows: u64,
    /// Last change, in microseconds since the Unix epoch.
    pub modified_us: u64,
}

/// Copies a shape into a fixed C array.
pub(crate) fn shape_array(shape: &[u64]) -> crate::Result<[u64; NPK_MAX_NDIM]> {
    let mut out = [0u64; NPK_MAX_NDIM];
    out.get_mut(..shape.len())
        .ok_or_else(|| Error::new(ErrorCode::Unsupported, format!("{} dimensions exceed NPK_MAX_NDIM", shape.len())))?
        .copy_from_slice(shape);
    Ok(out)
}

/// Opens (or with `NPK_OPEN_CREATE` creates) the store at directory `path` and writes a
/// new handle to `*out`.
///
/// `flags` is a combination of `NPK_OPEN_CREATE`, `NPK_OPEN_DROP_IF_EXISTS` and
/// `NPK_OPEN_READ_ONLY`. `path` is any NUL-terminated byte string (it need not be UTF-8).
///
/// Ownership: the caller owns `*out` and must release it with `npk_store_close`.
///
/// Errors: `NULL_ARGUMENT` (`path` or `out` NULL), `INVALID_ARGUMENT` (unknown flag bits,
/// `DROP_IF_EXISTS` with `READ_ONLY`, empty path, path is a file, refusing to drop a
/// directory that is not a store), `STORE_NOT_FOUND` (no store and no `NPK_OPEN_CREATE`,
/// or `READ_ONLY` and no store), `IO`, `CORRUPT` (a damaged file; also a log record
/// naming an array or file numpack would never write, such as a path with `/`: the
/// store is refused rather than replayed), `UNSUPPORTED`, `NEEDS_RECOVERY`.
///
/// Read-only (`NPK_OPEN_READ_ONLY`): no file is created, renamed or written, now or
/// later through this handle. A NumPack store (no `numpack.wal`) is read from its
/// catalogue and gets no log. Changes logged since the last checkpoint are applied in
/// memory only. A store a killed writer left half-changed (its last log record not
/// finished) is not repaired: the open fails with `NEEDS_RECOVERY`, and one writable
/// open repairs it.
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_open(path: *const c_char, flags: u32, out: *mut *mut npk_store) -> ErrorCode {
    boundary::status(|| {
        let path = unsafe { path_arg(path, "path") }?;
        let out = Out::new(out, "out")?;
        let flags = flags_arg(flags, OPEN_FLAGS, "flags")?;
        let opts = OpenOptions {
            create: flags & NPK_OPEN_CREATE != 0,
            drop_if_exists: flags & NPK_OPEN_DROP_IF_EXISTS != 0,
            read_only: flags & NPK_OPEN_READ_ONLY != 0,
        };
        let store = Store::open(path, opts)?;
        unsafe { out.write(npk_store::into_raw(store)) };
        Ok(())
    })
}

/// Folds pending changes into `metadata.npkm` (so NumPack sees them) and releases the
/// handle. The handle is released even when the returned status is an error. Views and
/// streams made from the store stay usable.
///
/// NULL is accepted and returns `NPK_STATUS_OK`. Closing a handle that was already
/// closed (or any pointer that is not a live `npk_store`) is detected and returns
/// `NPK_STATUS_INVALID_ARGUMENT` without touching memory, unless the address has since
/// been reused by a newer store handle, which it then closes.
///
/// Errors: `INVALID_ARGUMENT` (not a live handle), `IO`, `CORRUPT`, `NEEDS_RECOVERY`.
///
/// Thread safety: safe against calls still running on the handle in other threads
/// (they finish normally); calls made after the close fail with `INVALID_ARGUMENT`.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_close(store: *mut npk_store) -> ErrorCode {
    boundary::status(|| match npk_store::take(store, "store")? {
        None => Ok(()),
        Some(store) => Store::clone(&store).close(),
    })
}

/// Makes every change so far durable (`fsync` of data files, catalogue and log) and
/// folds the log into `metadata.npkm`. Does nothing for a read-only handle.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle), `IO`, `CORRUPT`,
/// `NEEDS_RECOVERY`. Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_sync(store: *const npk_store) -> ErrorCode {
    boundary::status(|| npk_store::get(store, "store")?.sync())
}

/// Picks up changes committed by other handles and processes now (reads do it by
/// themselves when the store changed).
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle), `IO`, `CORRUPT`,
/// `NEEDS_RECOVERY`. Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_refresh(store: *const npk_store) -> ErrorCode {
    boundary::status(|| npk_store::get(store, "store")?.refresh())
}

/// Writes to `*out` whether the handle was opened with `NPK_OPEN_READ_ONLY`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle).
/// Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_is_read_only(store: *const npk_store, out: *mut bool) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let out = Out::new(out, "out")?;
        unsafe { out.write(store.is_read_only()) };
        Ok(())
    })
}

/// Writes to `*out` a new list of the names of all arrays, sorted by byte value.
/// Read the list with `npk_names_count` and `npk_names_get`.
///
/// Ownership: the caller owns `*out` and must release it with `npk_names_free`; the list
/// does not depend on the store handle staying open.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle), `IO`, `CORRUPT`.
/// Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_list(store: *const npk_store, out: *mut *mut npk_names) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let out = Out::new(out, "out")?;
        let names = npk_names::from_names(store.names()?, ErrorCode::Corrupt)?;
        unsafe { out.write(names) };
        Ok(())
    })
}

/// The number of names in the list; 0 when `names` is NULL or not a live list.
///
/// Thread safety: safe from many threads. Does not change the last-error message.
///
/// # Safety
/// `names` must be NULL or a pointer returned by `npk_store_list`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_names_count(names: *const npk_names) -> usize {
    boundary::value(0, || npk_names::get(names, "names").map_or(0, |n| n.len()))
}

/// The name at `index` (0-based) as a NUL-terminated UTF-8 string, or NULL when
/// `index` is out of range or `names` is NULL or not a live list.
///
/// Ownership: the string belongs to the list and stays valid until `npk_names_free`.
/// Thread safety: safe from many threads. Does not change the last-error message.
///
/// # Safety
/// `names` must be NULL or a pointer returned by `npk_store_list`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_names_get(names: *const npk_names, index: usize) -> *const c_char {
    boundary::value(std::ptr::null(), || {
        // The strings live as long as the list, not just this reference to it.
        npk_names::get(names, "names").ok().and_then(|n| n.get(index).map(|s| s.as_ptr())).unwrap_or(std::ptr::null())
    })
}

/// Releases a list made by `npk_store_list`. NULL, and a list already released, are
/// ignored. Must not race with other calls on the same list.
///
/// # Safety
/// `names` must be NULL or a pointer returned by `npk_store_list`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_names_free(names: *mut npk_names) {
    boundary::value((), || drop(npk_names::take(names, "names")))
}

/// Writes to `*out` whether an array named `name` exists.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, `name` not UTF-8),
/// `INVALID_NAME`, `IO`, `CORRUPT`. Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_has(store: *const npk_store, name: *const c_char, out: *mut bool) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let out = Out::new(out, "out")?;
        let found = store.contains(name)?;
        unsafe { out.write(found) };
        Ok(())
    })
}

/// Writes to `*out` the dtype, logical shape, physical row count and modification time
/// of array `name`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, `name` not UTF-8),
/// `INVALID_NAME`, `NOT_FOUND`, `IO`, `CORRUPT`. Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_info(store: *const npk_store, name: *const c_char, out: *mut npk_array_info) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let out = Out::new(out, "out")?;
        let info = store.info(name)?;
        let result = npk_array_info {
            dtype: info.dtype.code(),
            ndim: info.shape.len() as u32,
            shape: shape_array(&info.shape)?,
            physical_rows: info.physical_rows,
            modified_us: info.modified_us,
        };
        unsafe { out.write(result) };
        Ok(())
    })
}

/// Creates or replaces array `name` with `data`: `data_len` bytes of C-order,
/// little-endian elements of `dtype` (an `npk_dtype` value) and shape
/// `shape[0..ndim]`. Views made before keep the old contents.
///
/// `data` may be NULL when `data_len` is 0.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, bad dtype code,
/// `name` not UTF-8, shape too large), `INVALID_NAME`, `SHAPE_MISMATCH` (`ndim` 0 or
/// above `NPK_MAX_NDIM`), `BUFFER_SIZE` (`data_len` is not the shape's size),
/// `READ_ONLY`, `IO`, `NEEDS_RECOVERY`. Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `shape` NULL or `ndim` readable values; `data` NULL or
/// `data_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_save(
    store: *const npk_store,
    name: *const c_char,
    dtype: u32,
    ndim: usize,
    shape: *const u64,
    data: *const c_void,
    data_len: usize,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let dtype = dtype_arg(dtype)?;
        let shape = unsafe { slice_arg(shape, ndim, "shape") }?;
        let data = unsafe { bytes_arg(data, data_len, "data") }?;
        store.save(name, dtype, shape, data)
    })
}

/// Copies all live rows of array `name` into `buf`, whose size `buf_len` must be
/// exactly the array's logical size in bytes (from `npk_store_info`: the product of
/// the shape times `npk_dtype_size`). `buf` may be NULL when `buf_len` is 0.
///
/// The contents of `buf` are unspecified after a failure. When another handle or process
/// may change the array meanwhile, `BUFFER_SIZE` means it changed size since your
/// `npk_store_info`: ask again and retry (or read a row range, which stays valid while
/// rows are only appended).
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, `name` not UTF-8),
/// `INVALID_NAME`, `NOT_FOUND`, `BUFFER_SIZE`, `IO`, `CORRUPT`.
/// Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `buf` NULL or `buf_len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_load(store: *const npk_store, name: *const c_char, buf: *mut c_void, buf_len: usize) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let buf = unsafe { bytes_mut_arg(buf, buf_len, "buf") }?;
        store.load_into(name, buf)
    })
}

/// Copies the rows at logical indices `idx[0..n]` of array `name` into `buf`, in order.
/// Negative indices count from the end; repeats are allowed. `buf_len` must be exactly
/// `n` rows. `idx` and `buf` may be NULL when `n` (and `buf_len`) are 0.
///
/// The contents of `buf` are unspecified after a failure.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, `name` not UTF-8,
/// misaligned `idx`), `INVALID_NAME`, `NOT_FOUND`, `INDEX_OUT_OF_RANGE`,
/// `SHAPE_MISMATCH` (0-d array), `BUFFER_SIZE`, `IO`, `CORRUPT`.
/// Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `idx` NULL or `n` readable values; `buf` NULL or `buf_len`
/// writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_read_rows(
    store: *const npk_store,
    name: *const c_char,
    idx: *const i64,
    n: usize,
    buf: *mut c_void,
    buf_len: usize,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let idx = unsafe { slice_arg(idx, n, "idx") }?;
        let buf = unsafe { bytes_mut_arg(buf, buf_len, "buf") }?;
        store.read_rows_into(name, idx, buf)
    })
}

/// Copies logical rows `start` (inclusive) to `stop` (exclusive) of array `name` into
/// `buf`, whose size must be exactly `stop - start` rows. `buf` may be NULL when
/// `buf_len` is 0.
///
/// The contents of `buf` are unspecified after a failure.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, `name` not UTF-8),
/// `INVALID_NAME`, `NOT_FOUND`, `INDEX_OUT_OF_RANGE` (`start > stop` or `stop` past the
/// end), `SHAPE_MISMATCH` (0-d array), `BUFFER_SIZE`, `IO`, `CORRUPT`.
/// Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `buf` NULL or `buf_len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_read_range(
    store: *const npk_store,
    name: *const c_char,
    start: u64,
    stop: u64,
    buf: *mut c_void,
    buf_len: usize,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let buf = unsafe { bytes_mut_arg(buf, buf_len, "buf") }?;
        store.read_range_into(name, start, stop, buf)
    })
}

/// As `npk_store_read_range`, but only while array `name` still has the dtype and
/// logical shape in `*expect` (its `dtype`, `ndim` and `shape[0..ndim]`, live rows
/// first; `physical_rows` and `modified_us` are not compared), typically the result of
/// an earlier `npk_store_info` that `buf` was sized from. The check and the copy see one
/// version of the array, so a caller that keeps that info needs one call per read
/// instead of two, and still never copies rows of a layout it did not expect: when the
/// array changed meanwhile (in this process or another), the call fails with
/// `DTYPE_MISMATCH` or `SHAPE_MISMATCH` and the caller asks `npk_store_info` again.
///
/// `buf` may be NULL when `buf_len` is 0. `buf` is untouched when the check fails and
/// unspecified after other failures.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, `name` not UTF-8,
/// bad dtype code or `ndim` above `NPK_MAX_NDIM` in `*expect`), `INVALID_NAME`,
/// `NOT_FOUND`, `DTYPE_MISMATCH`, `SHAPE_MISMATCH` (the array is not as expected, or
/// 0-d), `INDEX_OUT_OF_RANGE` (`start > stop` or `stop` past the end), `BUFFER_SIZE`,
/// `IO`, `CORRUPT`. Thread safety: safe from many threads; `*expect` is only read.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `expect` NULL or readable; `buf` NULL or `buf_len` writable
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_read_range_checked(
    store: *const npk_store,
    name: *const c_char,
    expect: *const npk_array_info,
    start: u64,
    stop: u64,
    buf: *mut c_void,
    buf_len: usize,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let expect = unsafe { slice_arg(expect, 1, "expect") }?;
        let (dtype, shape) = expected_layout(&expect[0])?;
        let buf = unsafe { bytes_mut_arg(buf, buf_len, "buf") }?;
        store.read_range_checked(name, dtype, shape, start, stop, buf)
    })
}

/// The dtype and shape of an `npk_array_info` a caller expects.
fn expected_layout(expect: &npk_array_info) -> crate::Result<(crate::dtype::DType, &[u64])> {
    let ndim = expect.ndim as usize;
    let shape = expect
        .shape
        .get(..ndim)
        .ok_or_else(|| Error::invalid(format!("`expect->ndim` is {ndim}, above NPK_MAX_NDIM ({NPK_MAX_NDIM})")))?;
    Ok((dtype_arg(expect.dtype)?, shape))
}

/// As `npk_store_read_rows`, but only while array `name` still has the dtype and
/// logical shape in `*expect`, checked and read in one version of the array, like
/// `npk_store_read_range_checked` (whose notes apply: `buf` is untouched when the check
/// fails). Note that the shape includes the live row count, so any row appended or
/// deleted since `*expect` was taken fails the check.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, `name` not UTF-8,
/// misaligned `idx`, bad dtype code or `ndim` above `NPK_MAX_NDIM` in `*expect`),
/// `INVALID_NAME`, `NOT_FOUND`, `DTYPE_MISMATCH`, `SHAPE_MISMATCH` (the array is not as
/// expected, or 0-d), `INDEX_OUT_OF_RANGE`, `BUFFER_SIZE`, `IO`, `CORRUPT`.
/// Thread safety: safe from many threads; `*expect` is only read.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `expect` NULL or readable; `idx` NULL or `n` readable values;
/// `buf` NULL or `buf_len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_read_rows_checked(
    store: *const npk_store,
    name: *const c_char,
    expect: *const npk_array_info,
    idx: *const i64,
    n: usize,
    buf: *mut c_void,
    buf_len: usize,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let expect = unsafe { slice_arg(expect, 1, "expect") }?;
        let (dtype, shape) = expected_layout(&expect[0])?;
        let idx = unsafe { slice_arg(idx, n, "idx") }?;
        let buf = unsafe { bytes_mut_arg(buf, buf_len, "buf") }?;
        store.read_rows_checked(name, dtype, shape, idx, buf)
    })
}

/// Overwrites the rows at logical indices `idx[0..n]` of array `name` with the rows of
/// `data`, in order (negative indices count from the end; when an index repeats, the
/// last row given for it wins). `dtype` must be the array's; `data_len` must be exactly
/// `n` rows. The change is atomic: after a crash either all rows or none are replaced.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, bad dtype code,
/// `name` not UTF-8, misaligned `idx`), `INVALID_NAME`, `NOT_FOUND`, `DTYPE_MISMATCH`,
/// `INDEX_OUT_OF_RANGE`, `SHAPE_MISMATCH` (0-d array), `BUFFER_SIZE`, `READ_ONLY`, `IO`,
/// `CORRUPT`, `NEEDS_RECOVERY`. Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `idx` NULL or `n` readable values; `data` NULL or `data_len`
/// readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_replace_rows(
    store: *const npk_store,
    name: *const c_char,
    dtype: u32,
    idx: *const i64,
    n: usize,
    data: *const c_void,
    data_len: usize,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let dtype = dtype_arg(dtype)?;
        let idx = unsafe { slice_arg(idx, n, "idx") }?;
        let data = unsafe { bytes_arg(data, data_len, "data") }?;
        store.replace_rows(name, dtype, idx, data)
    })
}

/// Overwrites `rows` logical rows of array `name` from row `start` with `data`
/// (`data_len` must be exactly `rows` rows of the array's `dtype`). Atomic like
/// `npk_store_replace_rows`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, bad dtype code,
/// `name` not UTF-8, range overflows), `INVALID_NAME`, `NOT_FOUND`, `DTYPE_MISMATCH`,
/// `INDEX_OUT_OF_RANGE`, `SHAPE_MISMATCH` (0-d array), `BUFFER_SIZE`, `READ_ONLY`, `IO`,
/// `CORRUPT`, `NEEDS_RECOVERY`. Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `data` NULL or `data_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_replace_range(
    store: *const npk_store,
    name: *const c_char,
    dtype: u32,
    start: u64,
    rows: u64,
    data: *const c_void,
    data_len: usize,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let dtype = dtype_arg(dtype)?;
        let data = unsafe { bytes_arg(data, data_len, "data") }?;
        store.replace_range(name, dtype, start, rows, data)
    })
}

/// Appends the rows of `data` to array `name`. `shape[0..ndim]` describes `data`: the
/// array's dtype and number of dimensions, the same trailing dimensions, any number of
/// rows (`shape[0]`; 0 changes nothing). `data_len` must be exactly the shape's size.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, bad dtype code,
/// `name` not UTF-8, sizes overflow), `INVALID_NAME`, `NOT_FOUND`, `DTYPE_MISMATCH`,
/// `SHAPE_MISMATCH`, `BUFFER_SIZE`, `READ_ONLY`, `IO`, `CORRUPT`, `NEEDS_RECOVERY`.
/// Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `shape` NULL or `ndim` readable values; `data` NULL or
/// `data_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_append(
    store: *const npk_store,
    name: *const c_char,
    dtype: u32,
    ndim: usize,
    shape: *const u64,
    data: *const c_void,
    data_len: usize,
) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let dtype = dtype_arg(dtype)?;
        let shape = unsafe { slice_arg(shape, ndim, "shape") }?;
        let data = unsafe { bytes_arg(data, data_len, "data") }?;
        store.append(name, dtype, shape, data)
    })
}

/// Deletes the rows at logical indices `idx[0..n]` of array `name` (negative indices
/// count from the end; repeats allowed). The rows stay in the data file, hidden, until
/// `npk_store_compact`. `idx` may be NULL when `n` is 0.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, `name` not UTF-8,
/// misaligned `idx`), `INVALID_NAME`, `NOT_FOUND`, `INDEX_OUT_OF_RANGE`,
/// `SHAPE_MISMATCH` (0-d array), `READ_ONLY`, `IO`, `CORRUPT`, `NEEDS_RECOVERY`.
/// Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `idx` NULL or `n` readable values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_delete_rows(store: *const npk_store, name: *const c_char, idx: *const i64, n: usize) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let idx = unsafe { slice_arg(idx, n, "idx") }?;
        store.delete_rows(name, idx)
    })
}

/// Removes array `name` and its files. Views made before keep their contents.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, `name` not UTF-8),
/// `INVALID_NAME`, `NOT_FOUND`, `READ_ONLY`, `IO`, `CORRUPT`, `NEEDS_RECOVERY`.
/// Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_drop(store: *const npk_store, name: *const c_char) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        store.drop_array(name)
    })
}

/// Rewrites array `name` without its deleted rows (does nothing when none is deleted).
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, `name` not UTF-8),
/// `INVALID_NAME`, `NOT_FOUND`, `READ_ONLY`, `IO`, `CORRUPT`, `NEEDS_RECOVERY`.
/// Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_compact(store: *const npk_store, name: *const c_char) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        store.compact(name)
    })
}

/// Copies the live rows of array `src` into a new array `dst`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, a name not UTF-8),
/// `INVALID_NAME`, `NOT_FOUND` (`src`), `ALREADY_EXISTS` (`dst`), `READ_ONLY`, `IO`,
/// `CORRUPT`, `NEEDS_RECOVERY`. Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `src` and `dst` NULL
/// or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_clone(store: *const npk_store, src: *const c_char, dst: *const c_char) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let src = unsafe { str_arg(src, "src") }?;
        let dst = unsafe { str_arg(dst, "dst") }?;
        store.clone_array(src, dst)
    })
}

/// Renames array `from` to `to`, which must not exist (renaming to itself does
/// nothing).
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, a name not UTF-8),
/// `INVALID_NAME`, `NOT_FOUND` (`from`), `ALREADY_EXISTS` (`to`), `READ_ONLY`, `IO`,
/// `CORRUPT`, `NEEDS_RECOVERY`. Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `from` and `to` NULL
/// or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_rename(store: *const npk_store, from: *const c_char, to: *const c_char) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let from = unsafe { str_arg(from, "from") }?;
        let to = unsafe { str_arg(to, "to") }?;
        store.rename(from, to)
    })
}

/// Removes every array.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle), `READ_ONLY`, `IO`,
/// `CORRUPT`, `NEEDS_RECOVERY`. Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_reset(store: *const npk_store) -> ErrorCode {
    boundary::status(|| npk_store::get(store, "store")?.reset())
}
