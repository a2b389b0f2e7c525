//! Status codes and error messages: `npk_status` is the core [`ErrorCode`] itself
//! (cbindgen emits it renamed), so the numbers have a single source.

use std::ffi::{c_char, CString};
use std::sync::OnceLock;

use super::boundary;
use crate::error::ErrorCode;

/// The message of the last call on this thread that returned an `npk_status`: the
/// cause of its failure, or "" when it succeeded (or when no such call was made yet).
///
/// Ownership: the string belongs to the library; it stays valid until the next call on
/// this thread of a function that returns `npk_status`. Never NULL. Does not change the
/// message itself, nor do the other functions that do not return `npk_status`.
///
/// Thread safety: the message is per thread.
#[unsafe(no_mangle)]
pub extern "C" fn npk_last_error_message() -> *const c_char {
    boundary::value(c"".as_ptr(), boundary::last_error_ptr)
}

/// The identifier of a status code, e.g. "NOT_FOUND" for `NPK_STATUS_NOT_FOUND`, or
/// "UNKNOWN" for a number that is not a status code.
///
/// Ownership: a static string; never NULL. Thread safety: safe from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn npk_status_name(status: u32) -> *const c_char {
    static NAMES: OnceLock<Vec<(u32, CString)>> = OnceLock::new();
    boundary::value(c"UNKNOWN".as_ptr(), || {
        let names = NAMES.get_or_init(|| {
            ErrorCode::ALL.iter().map(|&c| (c as u32, CString::new(c.name()).expect("no NUL in status names"))).collect()
        });
        names.iter().find(|(code, _)| *code == status).map_or(c"UNKNOWN".as_ptr(), |(_, name)| name.as_ptr())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn every_status_has_its_name() {
        for code in ErrorCode::ALL {
            let name = unsafe { CStr::from_ptr(npk_status_name(code as u32)) };
            assert_eq!(name.to_str().unwrap(), code.name());
        }
        let unknown = unsafe { CStr::from_ptr(npk_status_name(12345)) };
        assert_eq!(unknown, c"UNKNOWN");
    }
}
