//! `npk_view`: zero-copy access to an array's data file through a memory map.

use std::ffi::{c_char, c_void};
use std::ptr::NonNull;

use super::boundary::{self, flags_arg, str_arg, Out};
use super::handle::Handle;
use super::store::{npk_store, shape_array};
use super::NPK_MAX_NDIM;
use crate::error::ErrorCode;
use crate::view::View;

/// A memory map of one array's data file. Create with `npk_store_view`, release with
/// `npk_view_free`. It owns its mapping: it stays valid after the store is closed or
/// the array replaced or dropped (it then shows the old contents).
///
/// Thread safety: `npk_view_info` and `npk_view_flush` may be called on the same view
/// from many threads at once.
pub struct npk_view {
    _private: [u8; 0],
}

/// The view and the addresses of its bytes, taken once when it is made so that no
/// reference to memory C may be writing is ever formed afterwards.
pub(crate) struct ViewHandle {
    view: View,
    data: Option<NonNull<u8>>,
    writable: Option<NonNull<u8>>,
}

// SAFETY: the pointers point into the view's own mapping, which is Send + Sync; they are
// only handed out, never dereferenced by Rust.
unsafe impl Send for ViewHandle {}
// SAFETY: as above.
unsafe impl Sync for ViewHandle {}

impl Handle for npk_view {
    type Target = ViewHandle;
    const NAME: &'static str = "npk_view";
}

/// `npk_store_view` flag: map the file writable. Writes through
/// `npk_view_layout.writable_data` go straight to the data file, outside the store's log:
/// visible to readers at once and kept if the process dies; durable against power loss
/// after `npk_view_flush`, or `npk_store_sync` on the store handle that made the view;
/// not atomic.
pub const NPK_VIEW_WRITABLE: u32 = 1;

/// What `npk_view_info` reports about a view: where its bytes are and how they are laid
/// out. (Not called `npk_view_info`: C does not allow a type and a function of one name.)
#[repr(C)]
pub struct npk_view_layout {
    /// The first byte of the physical rows (deleted ones included), C order,
    /// little-endian; NULL when `nbytes` is 0. Valid until `npk_view_free`.
    pub data: *const c_void,
    /// The same address, for writing; NULL unless the view was made with
    /// `NPK_VIEW_WRITABLE` (and NULL when `nbytes` is 0).
    pub writable_data: *mut c_void,
    /// Bytes at `data`: all physical rows.
    pub nbytes: usize,
    /// The element type: an `npk_dtype` value.
    pub dtype: u32,
    /// Number of dimensions.
    pub ndim: u32,
    /// Physical shape: `shape[0]` includes deleted rows. Entries past `ndim` are 0.
    pub shape: [u64; NPK_MAX_NDIM],
    /// Live (logical) rows.
    pub rows: u64,
    /// NULL when no row is deleted (logical row i is physical row i) or `rows` is 0;
    /// else `rows` entries: the physical row of each logical row, ascending. Valid until
    /// `npk_view_free`.
    pub row_map: *const u64,
}

/// Maps the data file of array `name` and writes a new view to `*out`. `flags` is 0 or
/// `NPK_VIEW_WRITABLE`. An array saved compressed (`npk_store_save_with`) has no file
/// to map: a read-only view of it holds a decompressed copy of its physical rows, made
/// now; a writable one is refused (`UNSUPPORTED`).
///
/// Ownership: the caller owns `*out` and must release it with `npk_view_free`; it does
/// not depend on the store handle staying open.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live handle, unknown flag bits,
/// `name` not UTF-8), `INVALID_NAME`, `NOT_FOUND`, `READ_ONLY` (writable view of a
/// read-only store), `UNSUPPORTED` (writable view of a compressed array), `IO`,
/// `CORRUPT`. Thread safety: safe from many threads.
///
/// # Safety
/// `store` must be NULL or a pointer returned by `npk_store_open`; `name` NULL or a
/// NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_view(store: *const npk_store, name: *const c_char, flags: u32, out: *mut *mut npk_view) -> ErrorCode {
    boundary::status(|| {
        let store = npk_store::get(store, "store")?;
        let name = unsafe { str_arg(name, "name") }?;
        let flags = flags_arg(flags, NPK_VIEW_WRITABLE, "flags")?;
        let out = Out::new(out, "out")?;
        let mut view = store.view(name, flags & NPK_VIEW_WRITABLE != 0)?;
        // Checked here so that `npk_view_info` cannot fail on the shape later.
        shape_array(view.shape())?;
        let (data, writable) = if view.is_empty() {
            (None, None)
        } else if let Some(bytes) = view.bytes_mut() {
            let p = NonNull::new(bytes.as_mut_ptr());
            (p, p)
        } else {
            (NonNull::new(view.bytes().as_ptr().cast_mut()), None)
        };
        unsafe { out.write(npk_view::into_raw(ViewHandle { view, data, writable })) };
        Ok(())
    })
}

/// Writes to `*out` the view's addresses, dtype, physical shape, live row count and row
/// map. The pointers in it stay valid until `npk_view_free`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live view).
/// Thread safety: safe from many threads.
///
/// # Safety
/// `view` must be NULL or a pointer returned by `npk_store_view`; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_view_info(view: *const npk_view, out: *mut npk_view_layout) -> ErrorCode {
    boundary::status(|| {
        let handle = npk_view::get(view, "view")?;
        let out = Out::new(out, "out")?;
        let view = &handle.view;
        let row_map = match view.row_map() {
            Some(map) if !map.is_empty() => map.as_ptr(),
            _ => std::ptr::null(),
        };
        let info = npk_view_layout {
            data: handle.data.map_or(std::ptr::null(), |p| p.as_ptr().cast_const().cast()),
            writable_data: handle.writable.map_or(std::ptr::null_mut(), |p| p.as_ptr().cast()),
            nbytes: view.len(),
            dtype: view.dtype().code(),
            ndim: view.shape().len() as u32,
            shape: shape_array(view.shape())?,
            rows: view.rows(),
            row_map,
        };
        unsafe { out.write(info) };
        Ok(())
    })
}

/// Writes a writable view's changes to the data file (`msync`); does nothing for a
/// read-only view.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live view), `IO`.
/// Thread safety: safe from many threads.
///
/// # Safety
/// `view` must be NULL or a pointer returned by `npk_store_view`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_view_flush(view: *const npk_view) -> ErrorCode {
    boundary::status(|| npk_view::get(view, "view")?.view.flush())
}

/// Releases a view: its memory and every pointer `npk_view_info` gave become invalid.
/// Changes to a writable view are not flushed first (the kernel still writes them back
/// eventually; call `npk_view_flush` for durability). NULL, and a view already
/// released, are ignored. Must not race with other calls on the same view.
///
/// # Safety
/// `view` must be NULL or a pointer returned by `npk_store_view`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_view_free(view: *mut npk_view) {
    boundary::value((), || drop(npk_view::take(view, "view")))
}
