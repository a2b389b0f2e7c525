//! Array names become file names (`data_<name>.npkd`), so every name is checked
//! before it touches the file system.

use crate::error::{bail, Result};

/// Longest name in bytes: `deleted_<name>.npkb` must fit a 255-byte file name.
pub const MAX_NAME_LEN: usize = 242;

/// Checks that `name` can name an array: non-empty, at most [`MAX_NAME_LEN`] bytes, not
/// `.` or `..`, and free of `/`, `\` and control characters (NUL included).
pub fn validate(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!(InvalidName, "array name is empty");
    }
    if name.len() > MAX_NAME_LEN {
        bail!(InvalidName, "array name is {} bytes long; the limit is {MAX_NAME_LEN}", name.len());
    }
    if name == "." || name == ".." {
        bail!(InvalidName, "array name {name:?} is reserved");
    }
    if let Some(c) = name.chars().find(|c| *c == '/' || *c == '\\' || c.is_control()) {
        bail!(InvalidName, "array name {name:?} contains the forbidden character {c:?}");
    }
    Ok(())
}

/// Checks that `file` is a temporary file name the engine itself creates in a store's
/// directory: `npk-tmp-<pid>-<time>-<seq>.npkt`, digits only between the dashes. Log
/// records name the temporary files they install; a record from someone else may name
/// any path, so replay renames only names of exactly this form (one path component, no
/// `/`, no `..`, inside the store).
pub fn validate_tmp_file(file: &str) -> std::result::Result<(), String> {
    use crate::store::{TMP_PREFIX, TMP_SUFFIX};
    let ok = file.strip_prefix(TMP_PREFIX).and_then(|r| r.strip_suffix(TMP_SUFFIX)).is_some_and(|mid| {
        let parts: Vec<&str> = mid.split('-').collect();
        parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit()))
    });
    if ok {
        Ok(())
    } else {
        Err(format!("{file:?} is not a temporary file name numpack creates ({TMP_PREFIX}<pid>-<time>-<seq>{TMP_SUFFIX})"))
    }
}

/// `data_<name>.npkd`: the array's raw data.
pub fn data_file(name: &str) -> String {
    format!("data_{name}.npkd")
}

/// `deleted_<name>.npkb`: the array's deletion bitmap.
pub fn bitmap_file(name: &str) -> String {
    format!("deleted_{name}.npkb")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_names_that_escape_or_break_file_names() {
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b", "line\nbreak"] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
        for good in ["a", "embeddings.v2", "..x", "名前", &"x".repeat(MAX_NAME_LEN)] {
            validate(good).unwrap();
        }
    }

    #[test]
    fn only_the_engines_own_temporary_names_pass() {
        let dir = tempfile::tempdir().unwrap();
        let file = crate::store::write_tmp(dir.path(), b"x").unwrap();
        validate_tmp_file(&file).unwrap();
        for bad in [
            "",
            "/tmp/npk-tmp-1-2-3.npkt",
            "../npk-tmp-1-2-3.npkt",
            "sub/npk-tmp-1-2-3.npkt",
            "npk-tmp-1-2.npkt",
            "npk-tmp-1-2-3-4.npkt",
            "npk-tmp-1-2-x.npkt",
            "npk-tmp-1--3.npkt",
            "npk-tmp-1-2-3.npkt/..",
            "npk-tmp-1-2-3.npkd",
            "data_a.npkd",
            "npk-tmp-1-2-3\0.npkt",
        ] {
            assert!(validate_tmp_file(bad).is_err(), "{bad:?} accepted");
        }
    }
}
