//! `npk_store_check`: verifying a store without changing it (`crate::check`);
//! `npk_check_report`: the findings.

use std::ffi::{c_char, CString};

use super::boundary::{self, path_arg, Out};
use super::handle::Handle;
use crate::check::{check, Severity};
use crate::error::{Error, ErrorCode};

/// `npk_check_finding.severity`: worth knowing, nothing to fix.
pub const NPK_SEVERITY_INFO: u32 = 0;
/// `npk_check_finding.severity`: harmless for reads and writes, but to clean up.
pub const NPK_SEVERITY_WARNING: u32 = 1;
/// `npk_check_finding.severity`: the store cannot be used as it is.
pub const NPK_SEVERITY_ERROR: u32 = 2;
const _: () = assert!(NPK_SEVERITY_INFO == Severity::Info as u32);
const _: () = assert!(NPK_SEVERITY_WARNING == Severity::Warning as u32);
const _: () = assert!(NPK_SEVERITY_ERROR == Severity::Error as u32);

/// The findings of `npk_store_check`. Create with `npk_store_check`, release with
/// `npk_check_report_free`.
///
/// Thread safety: `npk_check_report_len` and `npk_check_report_get` may be called on the
/// same report from many threads at once.
pub struct npk_check_report {
    _private: [u8; 0],
}

/// One finding, as the library keeps it: NUL-terminated copies of every string.
pub(crate) struct CFinding {
    severity: u32,
    id: CString,
    file: Option<CString>,
    array: Option<CString>,
    message: CString,
}

impl Handle for npk_check_report {
    type Target = Vec<CFinding>;
    const NAME: &'static str = "npk_check_report";
}

/// One finding of a check, as `npk_check_report_get` gives it.
#[repr(C)]
pub struct npk_check_finding {
    /// `NPK_SEVERITY_INFO`, `NPK_SEVERITY_WARNING` or `NPK_SEVERITY_ERROR`.
    pub severity: u32,
    /// Stable identifier, e.g. "data-size-mismatch" (the README lists them all).
    pub id: *const c_char,
    /// The file concerned, relative to the store directory; NULL when none.
    pub file: *const c_char,
    /// The array concerned; NULL when none.
    pub array: *const c_char,
    /// What is wrong and what to do about it.
    pub message: *const c_char,
}

/// A string for C: NUL bytes (which no finding should hold) become '?'.
fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "?")).unwrap_or_default()
}

/// Checks the store at `path` without changing it (no file is created or written, and a
/// store left by a killed writer is not recovered: that is reported as the finding
/// "needs-recovery") and writes to `*out` a new report listing every problem found. A
/// report with no finding of severity `NPK_SEVERITY_ERROR` is a store that works.
///
/// Ownership: the caller owns `*out` and must release it with `npk_check_report_free`.
///
/// Errors: `NULL_ARGUMENT`; `STORE_NOT_FOUND` when there is no store at `path`;
/// `INVALID_ARGUMENT` for an empty path or a path that is a file; `IO` when the
/// directory cannot be listed or the store's lock taken. Damage is never an error here:
/// it is what the report lists.
/// Thread safety: safe from any thread. It holds the store's lock while it looks, so a
/// writer in another thread or process waits for it (and it for the writer).
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_store_check(path: *const c_char, out: *mut *mut npk_check_report) -> ErrorCode {
    boundary::status(|| {
        let path = unsafe { path_arg(path, "path") }?;
        let out = Out::new(out, "out")?;
        let report = check(path)?;
        let findings = report
            .findings
            .iter()
            .map(|f| CFinding {
                severity: f.severity as u32,
                id: c_string(f.id),
                file: f.file.as_deref().map(c_string),
                array: f.array.as_deref().map(c_string),
                message: c_string(&f.message),
            })
            .collect();
        unsafe { out.write(npk_check_report::into_raw(findings)) };
        Ok(())
    })
}

/// The number of findings in the report; 0 when `report` is NULL or not a live report.
///
/// Thread safety: safe from many threads. Does not change the last-error message.
///
/// # Safety
/// `report` must be NULL or a pointer returned by `npk_store_check`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_check_report_len(report: *const npk_check_report) -> usize {
    boundary::value(0, || npk_check_report::get(report, "report").map_or(0, |r| r.len()))
}

/// Writes finding `index` (0-based, in the order found) to `*out`.
///
/// Ownership: the strings `*out` points to belong to the report and stay valid until
/// `npk_check_report_free`.
///
/// Errors: `NULL_ARGUMENT`, `INVALID_ARGUMENT` (not a live report),
/// `INDEX_OUT_OF_RANGE` when `index >= npk_check_report_len(report)`.
/// Thread safety: safe from many threads.
///
/// # Safety
/// `report` must be NULL or a pointer returned by `npk_store_check`; `out` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_check_report_get(
    report: *const npk_check_report,
    index: usize,
    out: *mut npk_check_finding,
) -> ErrorCode {
    boundary::status(|| {
        let report = npk_check_report::get(report, "report")?;
        let out = Out::new(out, "out")?;
        let f = report.get(index).ok_or_else(|| {
            Error::new(ErrorCode::IndexOutOfRange, format!("finding {index} is out of range for a report of {}", report.len()))
        })?;
        let opt = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        // The strings live as long as the report, not just this reference to it.
        let finding = npk_check_finding {
            severity: f.severity,
            id: f.id.as_ptr(),
            file: opt(&f.file),
            array: opt(&f.array),
            message: f.message.as_ptr(),
        };
        unsafe { out.write(finding) };
        Ok(())
    })
}

/// Releases a report made by `npk_store_check`. NULL, and a report already released,
/// are ignored. Must not race with other calls on the same report.
///
/// # Safety
/// `report` must be NULL or a pointer returned by `npk_store_check`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn npk_check_report_free(report: *mut npk_check_report) {
    boundary::value((), || drop(npk_check_report::take(report, "report")))
}
