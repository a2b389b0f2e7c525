//! Errors: one stable numeric code per kind of failure plus a message naming the cause.
//! The codes are the C ABI's `npk_status` values and never change meaning.

use std::fmt;
use std::io;
use std::path::Path;

/// Stable error codes. Numbers are grouped, explicit and never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Success.
    Ok = 0,
    // 1..: the caller passed something wrong.
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// An argument is out of its domain (flags, sizes, UTF-8, ...).
    InvalidArgument = 2,
    /// An array name cannot be used (empty, path separator, `.`/`..`, NUL, too long).
    InvalidName = 3,
    /// A row index or range lies outside the array.
    IndexOutOfRange = 4,
    /// The element type does not match the array's.
    DtypeMismatch = 5,
    /// The shape does not match (trailing dimensions, row count, 0-d arrays).
    ShapeMismatch = 6,
    /// A caller buffer's size does not match what the operation reads or writes.
    BufferSize = 7,
    // 20..: the store's contents.
    /// No array of that name.
    NotFound = 20,
    /// An array of that name already exists.
    AlreadyExists = 21,
    /// No store at that path (and creation was not requested).
    StoreNotFound = 22,
    /// The store was opened read-only.
    ReadOnly = 23,
    // 40..: the files.
    /// An operating-system I/O error.
    Io = 40,
    /// A file of the store is damaged, truncated or inconsistent.
    Corrupt = 41,
    /// The store uses a feature this version does not implement.
    Unsupported = 42,
    /// A writer died mid-operation and this handle cannot repair the store.
    NeedsRecovery = 43,
    // 60..: the caller's own decisions.
    /// A progress callback asked to stop; the operation left nothing half-done.
    Cancelled = 60,
    // 90..: the library itself.
    /// A bug: a panic was caught at the C boundary.
    Panic = 90,
}

impl ErrorCode {
    /// Every code, for tables in the header, bindings and docs.
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::Ok,
        ErrorCode::NullArgument,
        ErrorCode::InvalidArgument,
        ErrorCode::InvalidName,
        ErrorCode::IndexOutOfRange,
        ErrorCode::DtypeMismatch,
        ErrorCode::ShapeMismatch,
        ErrorCode::BufferSize,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::StoreNotFound,
        ErrorCode::ReadOnly,
        ErrorCode::Io,
        ErrorCode::Corrupt,
        ErrorCode::Unsupported,
        ErrorCode::NeedsRecovery,
        ErrorCode::Cancelled,
        ErrorCode::Panic,
    ];

    /// Short stable identifier, e.g. `"NOT_FOUND"`.
    pub fn name(self) -> &'static str {
        use ErrorCode::*;
        match self {
            Ok => "OK",
            NullArgument => "NULL_ARGUMENT",
            InvalidArgument => "INVALID_ARGUMENT",
            InvalidName => "INVALID_NAME",
            IndexOutOfRange => "INDEX_OUT_OF_RANGE",
            DtypeMismatch => "DTYPE_MISMATCH",
            ShapeMismatch => "SHAPE_MISMATCH",
            BufferSize => "BUFFER_SIZE",
            NotFound => "NOT_FOUND",
            AlreadyExists => "ALREADY_EXISTS",
            StoreNotFound => "STORE_NOT_FOUND",
            ReadOnly => "READ_ONLY",
            Io => "IO",
            Corrupt => "CORRUPT",
            Unsupported => "UNSUPPORTED",
            NeedsRecovery => "NEEDS_RECOVERY",
            Cancelled => "CANCELLED",
            Panic => "PANIC",
        }
    }
}

/// An error: its code and a message that names the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }

    /// An I/O failure while doing `what` on `path`.
    pub fn io(what: &str, path: &Path, err: io::Error) -> Error {
        Error::new(ErrorCode::Io, format!("{what} {}: {err}", path.display()))
    }

    pub fn corrupt(path: &Path, what: impl fmt::Display) -> Error {
        Error::new(ErrorCode::Corrupt, format!("{} is corrupt: {what}", path.display()))
    }

    pub fn not_found(name: &str) -> Error {
        Error::new(ErrorCode::NotFound, format!("no array named {name:?}"))
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidArgument, message)
    }
}

/// Shorthand to return an error with a formatted message.
macro_rules! bail {
    ($code:ident, $($arg:tt)*) => {
        return Err($crate::error::Error::new($crate::error::ErrorCode::$code, format!($($arg)*)))
    };
}
pub(crate) use bail;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_and_names_are_unique() {
        let codes: HashSet<u32> = ErrorCode::ALL.iter().map(|c| *c as u32).collect();
        let names: HashSet<&str> = ErrorCode::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }
}
