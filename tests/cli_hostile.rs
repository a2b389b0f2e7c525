//! `npk` on crafted stores: sizes from the catalogue never size an allocation before the
//! data is known to be there (each run under a 2 GiB address-space limit, so an abort
//! shows as a signal), and names and paths reach the terminal escaped.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use numpack::metadata::{self, Catalogue};
use numpack::{DType, OpenOptions, Store};

/// Runs `npk` with `args` and a 2 GiB address-space limit.
fn npk(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_npk"));
    cmd.args(args.iter().map(|a| a.as_ref()));
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 2 << 30, rlim_max: 2 << 30 };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

/// A store with `a` (`u8`, 2 rows of 4) whose catalogue shape is then set to `shape`
/// (the data file keeps its 8 bytes), without a log, as another program would leave it.
fn crafted(shape: Vec<u64>) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s.npk");
    let s = Store::open(&dir, OpenOptions { create: true, ..Default::default() }).unwrap();
    s.save("a", DType::Uint8, &[2, 4], &[1; 8]).unwrap();
    s.close().unwrap();
    let mut cat: Catalogue = metadata::decode(&fs::read(dir.join(metadata::FILE_NAME)).unwrap()).unwrap();
    cat.get_mut("a").unwrap().shape = shape;
    fs::write(dir.join(metadata::FILE_NAME), metadata::encode(&cat)).unwrap();
    fs::remove_file(dir.join(numpack::wal::FILE_NAME)).unwrap();
    (tmp, dir)
}

#[track_caller]
fn fails_cleanly(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    let code = o.status.code().unwrap_or_else(|| panic!("killed by a signal: {:?}\n{err}", o.status));
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(needle), "{needle:?} not in: {err}");
}

#[test]
fn rows_larger_than_the_data_file_are_not_allocated() {
    // Two rows of 16 GiB each, in an 8-byte file.
    let (_t, dir) = crafted(vec![2, 1 << 34]);
    fails_cleanly(&npk(&[&"head", &dir, &"a"]), "data_a.npkd");
    fails_cleanly(&npk(&[&"tail", &dir, &"a"]), "data_a.npkd");
    fails_cleanly(&npk(&[&"stats", &dir]), "data_a.npkd");
    fails_cleanly(&npk(&[&"stats", &dir, &"--axis", &"0"]), "data_a.npkd");
}

#[test]
fn columns_of_an_array_without_rows_are_not_allocated() {
    let (_t, dir) = crafted(vec![0, 1 << 40]);
    let o = npk(&[&"stats", &dir, &"--axis", &"0"]);
    fails_cleanly(&o, "no rows");
    let o = npk(&[&"stats", &dir]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}

fn store_with_file(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s.npk");
    let s = Store::open(&dir, OpenOptions { create: true, ..Default::default() }).unwrap();
    s.save("a", DType::Uint8, &[2], &[1, 2]).unwrap();
    s.close().unwrap();
    fs::write(dir.join(name), b"x").unwrap();
    (tmp, dir)
}

#[test]
fn names_from_the_store_reach_the_terminal_escaped() {
    // A file name that would set the terminal's title and clear the screen, and one that
    // reverses the text after it.
    let (_t, dir) = store_with_file("x\u{1b}]0;pwned\u{7}\u{1b}[2Jy");
    let o = npk(&[&"check", &dir]);
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "raw control characters: {out:?}");
    assert!(out.contains("x\\u{1b}]0;pwned\\u{7}\\u{1b}[2Jy"), "{out}");
    let o = npk(&[&"--json", &"check", &dir]);
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(!out.contains('\u{1b}'), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let files: Vec<&str> = v["findings"].as_array().unwrap().iter().filter_map(|f| f["file"].as_str()).collect();
    assert!(files.contains(&"x\u{1b}]0;pwned\u{7}\u{1b}[2Jy"), "JSON keeps the exact name: {files:?}");

    let (_t, dir) = store_with_file("evil\u{202e}txt.exe");
    let o = npk(&[&"check", &dir]);
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(!out.contains('\u{202e}') && out.contains("evil\\u{202e}txt.exe"), "{out}");
    let o = npk(&[&"--json", &"check", &dir]);
    let out = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(!out.contains('\u{202e}') && out.contains("evil\\u202etxt.exe"), "{out}");
    serde_json::from_str::<serde_json::Value>(&out).unwrap();
}

#[test]
fn paths_in_error_messages_are_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("no\u{1b}[31mstore");
    let o = npk(&[&"info", &bad]);
    let err = String::from_utf8(o.stderr.clone()).unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(!err.contains('\u{1b}') && err.contains("no\\u{1b}[31mstore"), "{err:?}");
    assert!(!Path::new(&bad).exists());
}
