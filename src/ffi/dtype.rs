//! Element types: `npk_dtype` is the core [`DType`] itself (cbindgen emits it renamed).
//! Functions take dtype codes as plain `uint32_t`, so an invalid value from C is
//! reported instead of being undefined behaviour.

use std::ffi::{c_char, CString};
use std::sync::OnceLock;

use super::boundary;
use crate::dtype::DType;

/// Bytes per element of the dtype with code `dtype` (an `npk_dtype` value), or 0 when
/// `dtype` is not a dtype code.
///
/// Thread safety: safe from any thread. Does not change the last-error message.
#[unsafe(no_mangle)]
pub extern "C" fn npk_dtype_size(dtype: u32) -> usize {
    boundary::value(0, || DType::from_code(dtype).map_or(0, DType::size))
}

/// The NumPy name of the dtype with code `dtype` (e.g. "float32", usable as
/// `numpy.dtype(name)`), or NULL when `dtype` is not a dtype code.
///
/// Ownership: a static string. Thread safety: safe from any thread. Does not change
/// the last-error message.
#[unsafe(no_mangle)]
pub extern "C" fn npk_dtype_name(dtype: u32) -> *const c_char {
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    boundary::value(std::ptr::null(), || {
        let names = NAMES.get_or_init(|| {
            DType::ALL.iter().map(|d| CString::new(d.numpy_name()).expect("no NUL in dtype names")).collect()
        });
        DType::from_code(dtype).map_or(std::ptr::null(), |d| names[d.code() as usize].as_ptr())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn sizes_and_names_follow_the_core_table() {
        for d in DType::ALL {
            assert_eq!(npk_dtype_size(d.code()), d.size());
            let name = unsafe { CStr::from_ptr(npk_dtype_name(d.code())) };
            assert_eq!(name.to_str().unwrap(), d.numpy_name());
        }
        assert_eq!(npk_dtype_size(DType::ALL.len() as u32), 0);
        assert!(npk_dtype_name(u32::MAX).is_null());
    }
}
