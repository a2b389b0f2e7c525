//! Helpers shared by the tests of the `npk` binary (`cli.rs`, `cli_npy.rs`).
#![allow(dead_code)]

use std::fs;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs `npk` with `args` and waits for it.
pub fn npk(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_npk")).args(args.iter().map(|a| a.as_ref())).output().unwrap()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().expect("killed by a signal")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Runs with `--json`, expects exit code `want`, returns the parsed document.
pub fn json(want: i32, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Value {
    let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"--json"];
    all.extend_from_slice(args);
    let o = npk(&all);
    assert_eq!(code(&o), want, "stdout: {}\nstderr: {}", stdout(&o), stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&o)))
}

/// Whether process `pid` catches SIGINT (its handler is installed).
pub fn catches_sigint(pid: u32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGINT - 1)) != 0)
}
