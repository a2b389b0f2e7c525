//! The one boundary every export goes through.
//!
//! - [`status`] runs the body of a fallible export: it clears the thread's last-error
//!   message, catches panics (`NPK_STATUS_PANIC`), and on failure records the message and
//!   returns the error's code.
//! - [`value`] runs the body of an infallible export (lookups, accessors, `_free`): it
//!   catches panics and returns a fallback, and leaves the last-error message alone.
//! - The `*_arg` helpers turn C arguments into Rust values: NULL checks
//!   (`NPK_STATUS_NULL_ARGUMENT`; a NULL buffer is fine when its length is 0), alignment
//!   and size checks, UTF-8 names (`NPK_STATUS_INVALID_ARGUMENT`), dtype codes.
//! - [`Out`] is an output pointer checked up front and written only once the call has
//!   succeeded.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use crate::dtype::DType;
use crate::error::{Error, ErrorCode, Result};

thread_local! {
    /// The message of the last failed call on this thread; empty after a success.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    let bytes: Vec<u8> = message.bytes().map(|b| if b == 0 { b'?' } else { b }).collect();
    let message = CString::new(bytes).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|m| *m.borrow_mut() = message);
}

fn clear_last_error() {
    let _ = LAST_ERROR.try_with(|m| {
        let mut m = m.borrow_mut();
        if !m.as_bytes().is_empty() {
            *m = CString::default();
        }
    });
}

/// The thread's last-error message; valid until it is next set or cleared.
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.try_with(|m| m.borrow().as_ptr()).unwrap_or(c"".as_ptr())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs the body of an export that returns `npk_status`.
pub(crate) fn status(body: impl FnOnce() -> Result<()>) -> ErrorCode {
    clear_last_error();
    let result = panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        Err(Error::new(ErrorCode::Panic, format!("internal error (a bug in numpack): {}", panic_message(&*payload))))
    });
    match result {
        Ok(()) => ErrorCode::Ok,
        Err(e) => {
            set_last_error(&e.message);
            e.code
        }
    }
}

/// Runs the body of an export that cannot fail; `fallback` if it panics.
pub(crate) fn value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn null(arg: &str) -> Error {
    Error::new(ErrorCode::NullArgument, format!("argument `{arg}` is NULL"))
}

/// Checks a pointer to `len` values of `T`: non-NULL unless `len` is 0, aligned, and
/// small enough to be a Rust slice.
fn check_buffer<T>(ptr: *const T, len: usize, arg: &str) -> Result<bool> {
    if len == 0 {
        return Ok(false);
    }
    if ptr.is_null() {
        return Err(null(arg));
    }
    if !ptr.is_aligned() {
        return Err(Error::invalid(format!("argument `{arg}` is not aligned to {} bytes", align_of::<T>())));
    }
    if len.checked_mul(size_of::<T>()).is_none_or(|n| n > isize::MAX as usize) {
        return Err(Error::invalid(format!("argument `{arg}` claims {len} elements, more than memory can hold")));
    }
    Ok(true)
}

/// `len` values of `T` at `ptr` (NULL allowed when `len` is 0).
///
/// # Safety
/// Unless NULL, `ptr` must point to `len` initialised values that stay valid and
/// unmutated for `'a`.
pub(crate) unsafe fn slice_arg<'a, T>(ptr: *const T, len: usize, arg: &str) -> Result<&'a [T]> {
    if !check_buffer(ptr, len, arg)? {
        return Ok(&[]);
    }
    // SAFETY: non-NULL, aligned, size checked; validity is the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// `len` bytes at `ptr` (NULL allowed when `len` is 0).
///
/// # Safety
/// As [`slice_arg`].
pub(crate) unsafe fn bytes_arg<'a>(ptr: *const c_void, len: usize, arg: &str) -> Result<&'a [u8]> {
    unsafe { slice_arg(ptr.cast::<u8>(), len, arg) }
}

/// `len` writable bytes at `ptr` (NULL allowed when `len` is 0).
///
/// # Safety
/// Unless NULL, `ptr` must point to `len` writable bytes, not otherwise accessed for `'a`.
pub(crate) unsafe fn bytes_mut_arg<'a>(ptr: *mut c_void, len: usize, arg: &str) -> Result<&'a mut [u8]> {
    let ptr = ptr.cast::<u8>();
    if !check_buffer(ptr, len, arg)? {
        return Ok(&mut []);
    }
    // SAFETY: as in `slice_arg`; exclusivity is the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// The bytes of a NUL-terminated C string.
///
/// # Safety
/// Unless NULL, `ptr` must point to a NUL-terminated string valid for `'a`.
unsafe fn c_bytes<'a>(ptr: *const c_char, arg: &str) -> Result<&'a [u8]> {
    if ptr.is_null() {
        return Err(null(arg));
    }
    // SAFETY: non-NULL; termination and validity are the caller's promise.
    Ok(unsafe { CStr::from_ptr(ptr) }.to_bytes())
}

/// A UTF-8 C string (array names).
///
/// # Safety
/// As [`c_bytes`].
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, arg: &str) -> Result<&'a str> {
    let bytes = unsafe { c_bytes(ptr, arg) }?;
    std::str::from_utf8(bytes).map_err(|e| Error::invalid(format!("argument `{arg}` is not valid UTF-8: {e}")))
}

/// A file-system path: any bytes but NUL (paths need not be UTF-8 on Unix).
///
/// # Safety
/// As [`c_bytes`].
pub(crate) unsafe fn path_arg<'a>(ptr: *const c_char, arg: &str) -> Result<&'a Path> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = unsafe { c_bytes(ptr, arg) }?;
    if bytes.is_empty() {
        return Err(Error::invalid(format!("argument `{arg}` is an empty path")));
    }
    Ok(Path::new(std::ffi::OsStr::from_bytes(bytes)))
}

/// A dtype code from C: an invalid value is an error, never a Rust enum.
pub(crate) fn dtype_arg(code: u32) -> Result<DType> {
    DType::from_code(code).ok_or_else(|| Error::invalid(format!("{code} is not a dtype code (0..={})", DType::ALL.len() - 1)))
}

/// Flags from C: unknown bits are an error.
pub(crate) fn flags_arg(flags: u32, known: u32, arg: &str) -> Result<u32> {
    if flags & !known != 0 {
        return Err(Error::invalid(format!("argument `{arg}` has unknown bits {:#x}", flags & !known)));
    }
    Ok(flags)
}

/// An output pointer, checked before the work is done and written after it succeeded.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// Checks that `ptr` is non-NULL and aligned.
    pub(crate) fn new(ptr: *mut T, arg: &str) -> Result<Out<T>> {
        if ptr.is_null() {
            return Err(null(arg));
        }
        if !ptr.is_aligned() {
            return Err(Error::invalid(format!("argument `{arg}` is not aligned to {} bytes", align_of::<T>())));
        }
        Ok(Out(ptr))
    }

    /// Stores the result.
    ///
    /// # Safety
    /// The pointer given to [`Out::new`] must be valid for writing a `T`.
    pub(crate) unsafe fn write(self, value: T) {
        // SAFETY: non-NULL and aligned (checked in `new`), writable by the caller's promise.
        unsafe { self.0.write(value) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> String {
        // SAFETY: the pointer is a live NUL-terminated string.
        unsafe { CStr::from_ptr(last_error_ptr()) }.to_str().unwrap().to_string()
    }

    #[test]
    fn panics_become_a_status_and_a_message() {
        let code = status(|| panic!("boom"));
        assert_eq!(code, ErrorCode::Panic);
        assert!(last().contains("boom"), "{}", last());
        assert_eq!(status(|| Ok(())), ErrorCode::Ok);
        assert_eq!(last(), "");
        assert_eq!(value(7, || panic!("boom")), 7);
    }

    #[test]
    fn messages_with_nul_survive() {
        let code = status(|| Err(Error::invalid("a\0b")));
        assert_eq!(code, ErrorCode::InvalidArgument);
        assert_eq!(last(), "a?b");
    }

    #[test]
    fn buffers_may_be_null_only_when_empty() {
        unsafe {
            assert!(slice_arg::<u64>(std::ptr::null(), 0, "x").unwrap().is_empty());
            assert_eq!(slice_arg::<u64>(std::ptr::null(), 1, "x").unwrap_err().code, ErrorCode::NullArgument);
            let v = [0u64; 2];
            let misaligned = v.as_ptr().cast::<u8>().wrapping_add(1).cast::<u64>();
            assert_eq!(slice_arg(misaligned, 1, "x").unwrap_err().code, ErrorCode::InvalidArgument);
            assert_eq!(slice_arg(v.as_ptr(), usize::MAX / 4, "x").unwrap_err().code, ErrorCode::InvalidArgument);
        }
    }
}
