//! Packages under SIGKILL: a child process packs or unpacks, and the parent kills it in
//! the middle of the work, then checks what a user would find.
//!
//! * Killed while packing: the target path holds no package, or (only when the kill came
//!   after the final rename) a whole one; a leftover temporary file is never taken for a
//!   package (`info` refuses it) unless it is complete; the source store is intact and
//!   writable again (the pack's lock died with the process).
//! * Killed while unpacking: the target directory does not exist, or is the whole new
//!   store; with `overwrite` over an existing store it is the old store or the new one,
//!   never a mix and never missing; leftovers are hidden names a later unpack ignores.
//!
//! Two ways to kill: deterministically in the middle (the child's progress callback
//! announces that it is past some files and blocks, the parent kills it there), and at
//! random instants while the child runs (`NUMPACK_PKG_CRASH_SEED`, `_CYCLES`).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use numpack::package::{self, PackOptions};
use numpack::{DType, ErrorCode, OpenOptions, Store};

const ENV_MODE: &str = "NPK_PKGCRASH_MODE";
const ENV_SRC: &str = "NPK_PKGCRASH_SRC";
const ENV_DST: &str = "NPK_PKGCRASH_DST";
const ENV_OVERWRITE: &str = "NPK_PKGCRASH_OVERWRITE";
const ENV_STOP: &str = "NPK_PKGCRASH_STOP";
const MID: &str = "NPK_MID";
const DONE: &str = "NPK_DONE";

// ---------------------------------------------------------------------------------------
// The child.

#[test]
#[ignore = "child process of the package kill tests; does nothing when run on its own"]
fn package_crash_child() {
    let Ok(mode) = std::env::var(ENV_MODE) else { return };
    let src = PathBuf::from(std::env::var(ENV_SRC).unwrap());
    let dst = PathBuf::from(std::env::var(ENV_DST).unwrap());
    let overwrite = std::env::var(ENV_OVERWRITE).is_ok_and(|v| v == "1");
    // At this progress call (1-based) announce MID and block until killed; 0: never.
    let stop = env_u64(ENV_STOP, 0);
    let mut calls = 0u64;
    let mut progress = |done: u64, total: u64| {
        calls += 1;
        if calls == stop {
            assert!(done > 0 && done < total, "stop point {stop} is not in the middle ({done} of {total})");
            announce(MID, &format!("{done} {total}"));
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        true
    };
    match mode.as_str() {
        "pack" => {
            let store = Store::open(&src, OpenOptions::default()).expect("child: cannot open the store");
            announce(READY, "");
            let opts = PackOptions { overwrite, ..PackOptions::default() };
            package::pack(&store, &dst, &opts, Some(&mut progress)).expect("child: pack failed");
            store.close().unwrap();
        }
        "unpack" => {
            announce(READY, "");
            package::unpack(&src, &dst, overwrite, true, Some(&mut progress)).expect("child: unpack failed");
        }
        other => panic!("unknown mode {other}"),
    }
    announce(DONE, "");
}

fn spawn(mode: &str, src: &Path, dst: &Path, overwrite: bool, stop: u64) -> Proc {
    spawn_child(
        "package_crash_child",
        &[
            (ENV_MODE, mode.to_string()),
            (ENV_SRC, src.display().to_string()),
            (ENV_DST, dst.display().to_string()),
            (ENV_OVERWRITE, if overwrite { "1" } else { "0" }.to_string()),
            (ENV_STOP, stop.to_string()),
        ],
    )
}

/// Kills the child and waits for it; true when the kill (not an exit) ended it.
fn kill(child: &mut Proc) -> bool {
    use std::os::unix::process::ExitStatusExt;
    child.sigkill();
    let st = child.child.wait().unwrap();
    assert!(st.success() || st.signal() == Some(libc::SIGKILL), "the child failed on its own: {st}");
    !st.success()
}

// ---------------------------------------------------------------------------------------
// Stores and checks.

/// A store of six arrays, about 9 MiB (some compressible, some not, one with deleted
/// rows), so that packing calls the progress callback many times.
fn build(path: &Path, seed: u64) -> Model {
    let s = Store::open(path, OpenOptions { create: true, drop_if_exists: true, ..Default::default() }).unwrap();
    let mut rng = Rng::new(seed);
    for i in 0..3 {
        let noise: Vec<u8> = (0..(2 << 20) / 8).flat_map(|_| rng.next_u64().to_le_bytes()).collect();
        s.save(&format!("noise{i}"), DType::Uint64, &[(2 << 20) / 8], &noise).unwrap();
    }
    let ramp: Vec<u8> = (0..(512u32 << 10)).flat_map(|i| (i / 5 + seed as u32).to_le_bytes()).collect();
    s.save("ramp", DType::Uint32, &[1 << 17, 4], &ramp).unwrap();
    s.save("small", DType::Float64, &[10, 2], &random_bytes(&mut rng, 160)).unwrap();
    s.save("gaps", DType::Int16, &[1000, 3], &random_bytes(&mut rng, 6000)).unwrap();
    s.delete_rows("gaps", &[0, 10, 999]).unwrap();
    let m = snapshot(&s);
    s.close().unwrap();
    m
}

fn read(path: &Path) -> numpack::Result<Model> {
    let s = Store::open(path, OpenOptions { read_only: true, ..Default::default() })?;
    Ok(snapshot(&s))
}

fn expect_store(path: &Path, want: &Model, what: &str) {
    let got = read(path).unwrap_or_else(|e| panic!("{what}: {} does not open: {e}", path.display()));
    assert!(got == *want, "{what}: {} differs:\n{}", path.display(), diff(&got, want));
}

/// The source store after a killed pack: the same contents, and writable again (the lock
/// the pack held is gone with the process).
fn expect_source_intact(path: &Path, want: &Model) {
    expect_store(path, want, "the source store after a killed pack");
    let s = Store::open(path, OpenOptions::default()).unwrap();
    s.save("probe", DType::Uint8, &[3], &[1, 2, 3]).expect("the source store takes writes again");
    s.drop_array("probe").unwrap();
    s.close().unwrap();
    expect_store(path, want, "the source store after a write");
}

/// Whether a package file is whole and holds `want`.
fn package_holds(pkg: &Path, want: &Model, scratch: &Path) -> numpack::Result<()> {
    package::info(pkg)?;
    let out = scratch.join("check.npk");
    let _ = fs::remove_dir_all(&out);
    package::unpack(pkg, &out, false, true, None)?;
    expect_store(&out, want, "a package left at the target");
    fs::remove_dir_all(&out).unwrap();
    Ok(())
}

/// After a killed pack to `target` in `dir`: the target is absent or a whole package of
/// `want`; every temporary file left is refused by `info` or is whole. Returns the
/// number of leftovers refused.
fn check_after_pack(dir: &Path, target: &Path, want: &Model, scratch: &Path) -> usize {
    if target.exists() {
        package_holds(target, want, scratch).unwrap_or_else(|e| panic!("the target of a killed pack is not a whole package: {e}"));
    }
    let prefix = format!("{}.tmp-", target.file_name().unwrap().to_str().unwrap());
    let mut refused = 0;
    for name in names_in(dir).into_iter().filter(|n| n.starts_with(&prefix)) {
        let tmp = dir.join(&name);
        match package::info(&tmp) {
            Err(e) => {
                assert_eq!(e.code, ErrorCode::Corrupt, "{name}: {e}");
                assert!(e.message.contains("truncated") || e.message.contains("not a .npkg"), "{name}: {}", e.message);
                refused += 1;
            }
            Ok(_) => package_holds(&tmp, want, scratch).unwrap_or_else(|e| panic!("{name} passes info but is not whole: {e}")),
        }
        fs::remove_file(&tmp).unwrap();
    }
    refused
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
}

/// After a killed unpack to `target` in `dir`: the target is absent (or, with `old`,
/// the old store) or the whole new store; leftovers are hidden names. Removes them.
fn check_after_unpack(dir: &Path, target: &Path, new: &Model, old: Option<&Model>) {
    match read(target) {
        Ok(got) if got == *new => {}
        Ok(got) if old.is_some_and(|o| got == *o) => {}
        Ok(got) => panic!("the target of a killed unpack is neither the old nor the new store:\n{}", diff(&got, new)),
        Err(e) => {
            assert!(old.is_none(), "a killed unpack over an existing store lost it: {e}");
            assert!(!target.exists(), "a killed unpack left a target that does not open: {e}");
        }
    }
    let tname = target.file_name().unwrap().to_str().unwrap();
    for name in names_in(dir) {
        if name.starts_with(&format!(".{tname}.unpack-")) || name.starts_with(&format!(".{tname}.old-")) {
            fs::remove_dir_all(dir.join(&name)).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Deterministic kills in the middle.

#[test]
fn killed_in_the_middle_of_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("s.npk");
    let want = build(&src, 1);
    let target = tmp.path().join("p.npkg");
    // Call 1 is the start, call 2 comes 4 MiB into the first (2 MiB) files or after the
    // first file; 4 is well inside. Then again with an older package at the target.
    for (stop, overwrite) in [(2, false), (4, false), (3, true)] {
        if overwrite {
            let s = Store::open(&src, OpenOptions::default()).unwrap();
            package::pack(&s, &target, &PackOptions::default(), None).unwrap();
            s.close().unwrap();
        }
        let mut child = spawn("pack", &src, &target, overwrite, stop);
        assert!(child.wait_ready(), "the child died before it was ready");
        assert!(child.expect_line(MID).is_some(), "the child died before the stop point {stop}");
        assert!(kill(&mut child));
        if overwrite {
            package_holds(&target, &want, tmp.path()).expect("the old package survives a killed overwrite");
            fs::remove_file(&target).unwrap();
        } else {
            assert!(!target.exists(), "a pack killed in the middle left a file at the target");
        }
        assert_eq!(check_after_pack(tmp.path(), &target, &want, tmp.path()), 1, "one partial temporary file, refused");
        expect_source_intact(&src, &want);
        assert_eq!(names_in(tmp.path()), BTreeSet::from(["s.npk".to_string()]));
    }
}

#[test]
fn killed_in_the_middle_of_unpack() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("s.npk");
    let want = build(&src, 2);
    let pkg = tmp.path().join("p.npkg");
    let s = Store::open(&src, OpenOptions::default()).unwrap();
    package::pack(&s, &pkg, &PackOptions::default(), None).unwrap();
    s.close().unwrap();
    let old_dir = tmp.path().join("old.npk");
    let old = build(&old_dir, 3);
    for (target, stop, overwrite) in [(tmp.path().join("new.npk"), 2, false), (tmp.path().join("new.npk"), 4, false), (old_dir.clone(), 3, true)] {
        let mut child = spawn("unpack", &pkg, &target, overwrite, stop);
        assert!(child.wait_ready(), "the child died before it was ready");
        assert!(child.expect_line(MID).is_some(), "the child died before the stop point {stop}");
        assert!(kill(&mut child));
        if overwrite {
            expect_store(&target, &old, "the old store after a killed unpack over it");
        } else {
            assert!(!target.exists(), "an unpack killed in the middle left a target");
            assert!(matches!(read(&target), Err(e) if e.code == ErrorCode::StoreNotFound));
        }
        // The half-written temporary directory is there, under a hidden name.
        let hidden: Vec<String> = names_in(tmp.path()).into_iter().filter(|n| n.starts_with('.')).collect();
        assert_eq!(hidden.len(), 1, "{hidden:?}");
        // A later unpack is not disturbed by it.
        package::unpack(&pkg, &target, true, true, None).unwrap();
        expect_store(&target, &want, "a later unpack");
        check_after_unpack(tmp.path(), &target, &want, None);
        if overwrite {
            fs::remove_dir_all(&target).unwrap();
            build(&old_dir, 3);
        } else {
            fs::remove_dir_all(&target).unwrap();
        }
    }
    expect_store(&src, &want, "the source store");
}

// ---------------------------------------------------------------------------------------
// Kills at random instants.

#[test]
fn killed_at_random_instants() {
    let master = env_u64("NUMPACK_PKG_CRASH_SEED", 0x9AC4_C4A5);
    let cycles = env_u64("NUMPACK_PKG_CRASH_CYCLES", 24);
    let mut rng = Rng::new(master);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("s.npk");
    let want = build(&src, 4);
    let pkg = tmp.path().join("p.npkg");
    let s = Store::open(&src, OpenOptions::default()).unwrap();
    package::pack(&s, &pkg, &PackOptions::default(), None).unwrap();
    s.close().unwrap();
    let old_dir = tmp.path().join("old.npk");
    let old = build(&old_dir, 5);
    // Roughly how long one operation takes, to spread the kills over it.
    let t0 = std::time::Instant::now();
    let probe = tmp.path().join("probe.npk");
    package::unpack(&pkg, &probe, false, true, None).unwrap();
    fs::remove_dir_all(&probe).unwrap();
    let span_us = (t0.elapsed().as_micros() as u64 * 2).max(2000);
    let (mut completed, mut killed) = (0, 0);
    for cycle in 0..cycles {
        let delay = Duration::from_micros(rng.below(span_us));
        let ctx = format!("NUMPACK_PKG_CRASH_SEED={master:#x} cycle {cycle}, kill after {delay:?}");
        match cycle % 3 {
            0 => {
                let target = tmp.path().join("k.npkg");
                let mut child = spawn("pack", &src, &target, false, 0);
                assert!(child.wait_ready(), "{ctx}: the child died before it was ready");
                std::thread::sleep(delay);
                if kill(&mut child) { killed += 1 } else { completed += 1 }
                check_after_pack(tmp.path(), &target, &want, tmp.path());
                let _ = fs::remove_file(&target);
                expect_source_intact(&src, &want);
            }
            1 => {
                let target = tmp.path().join("k.npk");
                let mut child = spawn("unpack", &pkg, &target, false, 0);
                assert!(child.wait_ready(), "{ctx}: the child died before it was ready");
                std::thread::sleep(delay);
                if kill(&mut child) { killed += 1 } else { completed += 1 }
                check_after_unpack(tmp.path(), &target, &want, None);
                let _ = fs::remove_dir_all(&target);
            }
            _ => {
                let mut child = spawn("unpack", &pkg, &old_dir, true, 0);
                assert!(child.wait_ready(), "{ctx}: the child died before it was ready");
                std::thread::sleep(delay);
                if kill(&mut child) { killed += 1 } else { completed += 1 }
                check_after_unpack(tmp.path(), &old_dir, &want, Some(&old));
                build(&old_dir, 5);
            }
        }
        let left: BTreeSet<String> = names_in(tmp.path());
        let expected: BTreeSet<String> = ["s.npk", "p.npkg", "old.npk"].map(String::from).into();
        assert_eq!(left, expected, "{ctx}: files left beside the targets");
    }
    eprintln!("package kills: {killed} killed mid-operation, {completed} finished first");
    expect_store(&src, &want, "the source store");
}
