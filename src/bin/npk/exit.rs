//! Exit codes scripts can rely on, and the one table mapping library errors to them.

use numpack::{Error, ErrorCode};

/// Success.
pub const OK: i32 = 0;
/// `check` found problems (errors or warnings).
pub const PROBLEMS: i32 = 1;
/// The command line could not be parsed.
pub const USAGE: i32 = 2;
pub const INVALID_ARGUMENT: i32 = 3;
pub const NOT_FOUND: i32 = 4;
pub const ALREADY_EXISTS: i32 = 5;
pub const PERMISSION: i32 = 6;
pub const IO: i32 = 7;
pub const CORRUPT: i32 = 8;
pub const UNSUPPORTED: i32 = 9;
pub const NEEDS_RECOVERY: i32 = 10;
pub const CANCELLED: i32 = 11;
pub const INTERNAL: i32 = 12;

/// The exit code and a hint of what to do for an error. I/O errors the OS reports as a
/// missing file or a permission problem map to [`NOT_FOUND`] and [`PERMISSION`].
pub fn classify(e: &Error) -> (i32, &'static str) {
    use ErrorCode::*;
    match e.code {
        Ok => (OK, ""),
        NullArgument | InvalidArgument | InvalidName | IndexOutOfRange | DtypeMismatch | ShapeMismatch | BufferSize => {
            (INVALID_ARGUMENT, "check the arguments (`npk <command> --help`)")
        }
        NotFound => (NOT_FOUND, "list the store's arrays with `npk ls <store>`"),
        StoreNotFound => (NOT_FOUND, "check the path: a store is a directory holding metadata.npkm"),
        AlreadyExists => (ALREADY_EXISTS, "choose another target, or pass --overwrite to replace it"),
        ReadOnly => (PERMISSION, "the store is read-only here: check the permissions of its directory and files"),
        Io if os_error(e, &[libc::ENOENT]) => (NOT_FOUND, "check the path"),
        Io if os_error(e, &[libc::EACCES, libc::EPERM, libc::EROFS]) => {
            (PERMISSION, "check the permissions of the path (or use a writable copy)")
        }
        Io => (IO, "check the path, the free space and the file system"),
        Corrupt => (CORRUPT, "run `npk check <store>` to see everything that is damaged"),
        Unsupported => (UNSUPPORTED, "this data uses a feature this version of npk cannot read; use a newer npk"),
        NeedsRecovery => (NEEDS_RECOVERY, "open the store once with write access (e.g. `npk compact <store>`) to recover it"),
        Cancelled => (CANCELLED, "interrupted; nothing was left half-done"),
        Panic => (INTERNAL, "this is a bug in npk; please report it with the command that triggered it"),
    }
}

/// Whether an I/O error's message carries one of these OS error numbers (the library's
/// I/O messages end with Rust's "(os error N)").
fn os_error(e: &Error, codes: &[i32]) -> bool {
    codes.iter().any(|c| e.message.contains(&format!("(os error {c})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_has_an_exit_code_and_a_hint() {
        let want = |c: ErrorCode| match c {
            ErrorCode::Ok => OK,
            ErrorCode::NullArgument
            | ErrorCode::InvalidArgument
            | ErrorCode::InvalidName
            | ErrorCode::IndexOutOfRange
            | ErrorCode::DtypeMismatch
            | ErrorCode::ShapeMismatch
            | ErrorCode::BufferSize => INVALID_ARGUMENT,
            ErrorCode::NotFound | ErrorCode::StoreNotFound => NOT_FOUND,
            ErrorCode::AlreadyExists => ALREADY_EXISTS,
            ErrorCode::ReadOnly => PERMISSION,
            ErrorCode::Io => IO,
            ErrorCode::Corrupt => CORRUPT,
            ErrorCode::Unsupported => UNSUPPORTED,
            ErrorCode::NeedsRecovery => NEEDS_RECOVERY,
            ErrorCode::Cancelled => CANCELLED,
            ErrorCode::Panic => INTERNAL,
        };
        for c in ErrorCode::ALL {
            let (code, hint) = classify(&Error::new(c, "x"));
            assert_eq!(code, want(c), "{c:?}");
            assert_eq!(hint.is_empty(), c == ErrorCode::Ok, "{c:?}");
        }
    }

    #[test]
    fn os_errors_refine_io() {
        let io = |m: &str| classify(&Error::new(ErrorCode::Io, m)).0;
        assert_eq!(io("cannot open /x: No such file or directory (os error 2)"), NOT_FOUND);
        assert_eq!(io("cannot open /x: Permission denied (os error 13)"), PERMISSION);
        assert_eq!(io("cannot write /x: Read-only file system (os error 30)"), PERMISSION);
        assert_eq!(io("cannot write /x: No space left on device (os error 28)"), IO);
    }
}
