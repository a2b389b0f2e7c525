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
}
