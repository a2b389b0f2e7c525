//! The C ABI: the crate's only `extern "C"` code. Its modules mirror the core's one to
//! one (`ffi::store` wraps `store`, `ffi::view` wraps `view`, ...); `include/numpack.h`
//! is generated from them by a pinned cbindgen (see `tests/header.rs`).
//!
//! # API conventions
//!
//! - **Names.** Everything is prefixed `npk_` (macros `NPK_`). Functions are named
//!   `npk_<object>_<verb>`.
//! - **Handles.** `npk_store`, `npk_view`, `npk_stream`, `npk_names`, `npk_package_info`,
//!   `npk_check_report` and `npk_safetensors_header` are opaque: the header only declares
//!   them. Each is created by its functions (`npk_store_open`, `npk_store_view`,
//!   `npk_store_stream`, `npk_store_list`, `npk_npz_import` or `npk_safetensors_import`,
//!   `npk_package_pack`/`unpack`/`read_info`, `npk_store_check`,
//!   `npk_safetensors_read_header`) and released by one (`npk_store_close`,
//!   `npk_view_free`, `npk_stream_free`, `npk_names_free`, `npk_package_info_free`,
//!   `npk_check_report_free`, `npk_safetensors_header_free`).
//!   None depends on its store handle staying open.
//! - **Parameter order.** The object first, then inputs, then outputs.
//! - **Outputs** (`T *out`) are written only when the call returns `NPK_STATUS_OK`; on
//!   failure they are left untouched. Caller buffers the library fills (`void *buf`)
//!   have unspecified contents after a failure.
//! - **`const`.** A `const T*` parameter is not modified through that pointer.
//! - **Status.** Every function that can fail returns an `npk_status` (`uint32_t`):
//!   `NPK_STATUS_OK` (0) or the reason for the failure. The values are the core's
//!   `ErrorCode`: grouped, never reused, never renumbered. `npk_status_name` names them.
//!   Bindings should read statuses as raw integers so that a newer library with more
//!   codes never breaks them.
//! - **Last error.** Every function returning `npk_status` clears the calling thread's
//!   last-error message when it starts and, when it fails, stores a message naming the
//!   cause; `npk_last_error_message` returns it ("" after a success). Functions that
//!   cannot fail (`npk_version`, `npk_status_name`, `npk_dtype_size`, `npk_dtype_name`,
//!   `npk_names_count`, `npk_names_get`, `npk_last_error_message` and the `_free`
//!   functions) leave the message alone, so `npk_status_name(st)` and
//!   `npk_last_error_message()` can be evaluated in either order.
//! - **NULL.** A NULL pointer where an object, string or output is required gives
//!   `NPK_STATUS_NULL_ARGUMENT`. A NULL data pointer is allowed when its length is 0.
//!   `npk_store_close` and the `_free` functions accept NULL and do nothing.
//! - **Handle checks.** Every handle passed in is looked up in a registry of live
//!   handles. A handle that was already closed or freed, or a handle of the wrong kind,
//!   gives `NPK_STATUS_INVALID_ARGUMENT` (ignored by the `_free` functions) instead of
//!   undefined behaviour, so closing a store twice is safe. Limit: once the allocator has
//!   reused the address for a new handle of the same kind, a stale pointer refers to
//!   the new handle.
//! - **Strings.** Array names are NUL-terminated UTF-8 (else
//!   `NPK_STATUS_INVALID_ARGUMENT`); paths are NUL-terminated bytes. Returned strings are
//!   owned by the library; each function says how long they stay valid.
//! - **Dtypes** are passed as `uint32_t` holding an `npk_dtype` value; any other number
//!   gives `NPK_STATUS_INVALID_ARGUMENT`. Data is C order, little-endian (native).
//! - **Panics** never cross the boundary: a bug caught there returns
//!   `NPK_STATUS_PANIC`.
//! - **Threads.** An `npk_store` may be used from many threads at once; closing it while
//!   other threads still call into it is safe (their calls finish, later calls fail). A
//!   view may be read from many threads; a stream serialises its calls. A handle of any
//!   kind must not be freed while another thread is still using the pointers it gave.
//! - **Version.** `NPK_VERSION_MAJOR`, `NPK_VERSION_MINOR`, `NPK_VERSION_PATCH` and
//!   `NPK_VERSION_STRING` give the header's version; `npk_version()` the library's.

#![allow(non_camel_case_types)]

mod boundary;
// check: verifying a store (cli branch)
pub mod check;
pub mod compress; // compressed arrays
pub mod dtype;
pub mod error;
mod handle;
// --- .npy interop ---
pub mod npy;
// --- end ---
pub mod store;
pub mod stream;
pub mod vector;
pub mod view;
// --- packages (.npkg) ---
pub mod package;
// --- end packages ---
pub mod safetensors;

use std::ffi::{c_char, CStr};

/// Most dimensions an array can have: the length of the `shape` arrays in
/// `npk_array_info` and `npk_view_layout`.
pub const NPK_MAX_NDIM: usize = 32;
const _: () = assert!(NPK_MAX_NDIM == crate::metadata::MAX_NDIM);

/// Longest array name, in bytes (without the terminating NUL).
pub const NPK_MAX_NAME_LEN: usize = 242;
const _: () = assert!(NPK_MAX_NAME_LEN == crate::name::MAX_NAME_LEN);

const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(v) => v,
    Err(_) => panic!("the crate version contains NUL"),
};

/// The library's version, e.g. "0.1.0" (compare with `NPK_VERSION_STRING`, the
/// header's).
///
/// Ownership: a static string; never NULL. Thread safety: safe from any thread. Does not
/// change the last-error message.
#[unsafe(no_mangle)]
pub extern "C" fn npk_version() -> *const c_char {
    boundary::value(VERSION.as_ptr(), || VERSION.as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_crate_version() {
        // SAFETY: a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(npk_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
