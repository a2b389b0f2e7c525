//! Stores that travel may hold symbolic links in place of their files (`data_a.npkd ->
//! ~/.bashrc`). numpack opens every file of a store relative to the store's directory
//! and never through a link: each mutating and reading operation on such a store either
//! fails with an error naming the linked file or leaves the link alone, and nothing
//! outside the store changes (every file beside it is hashed before and after). A store
//! directory reached through a link is fine. And a data file truncated behind an open
//! store is reported, not a SIGBUS.

mod common;
mod seg07;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use numpack::package::{self, PackOptions};
use numpack::{DType, Error, ErrorCode, OpenOptions, SaveOptions, Store};
use seg07::*;

struct Sandbox {
    _root: tempfile::TempDir,
    store: PathBuf,
    outside: PathBuf,
    out_pkg: PathBuf,
}

/// Everything under `dir`, links not followed: path → kind and contents (or target).
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let md = fs::symlink_metadata(&p).unwrap();
            if md.file_type().is_symlink() {
                out.insert(rel, format!("link {}", fs::read_link(&p).unwrap().display()));
            } else if md.is_dir() {
                out.insert(rel.clone(), "dir".into());
                walk(base, &p, out);
            } else {
                let b = fs::read(&p).unwrap();
                out.insert(rel, format!("file {} {:08x}", b.len(), crc32(&b)));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

fn crc32(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in b {
        c ^= x as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

const ROW: usize = 16; // a: float64 rows of 2

/// A store with a plain array `a` (one row deleted, so it has a bitmap), a compressed
/// array `z` and a segmented array `s` (as NumPack 0.7 writes it), beside a directory
/// `outside` that no operation may touch.
fn sandbox() -> Sandbox {
    let root = tempfile::tempdir().unwrap();
    let store = root.path().join("store");
    let outside = root.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("unrelated"), b"keep me").unwrap();
    make07(&store, &[arr("a", DType::Float64, &[6, 2], 1, None), arr("s", DType::Float32, &[20, 3], 2, Some(120))]);
    let s = Store::open(&store, OpenOptions::default()).unwrap();
    let zdata = bytes(3, 8 * 40);
    s.save_with("z", DType::Float64, &[40], &zdata, &SaveOptions { compression: Some(Default::default()) }).unwrap();
    s.delete_rows("a", &[1]).unwrap();
    s.close().unwrap();
    let out_pkg = root.path().join("out.npkg");
    Sandbox { _root: root, store, outside, out_pkg }
}

/// Replaces store file `rel` by a link to a copy of it outside the store (so that
/// following the link would "work"), or, when `dangling`, to a name that does not exist.
fn plant(sb: &Sandbox, rel: &str, dangling: bool) {
    let p = sb.store.join(rel);
    let flat = rel.replace('/', "__");
    let target = if dangling {
        sb.outside.join(format!("missing_{flat}"))
    } else {
        let bait = sb.outside.join(format!("bait_{flat}"));
        fs::rename(&p, &bait).unwrap();
        bait
    };
    if p.is_dir() {
        fs::remove_dir_all(&p).unwrap();
    } else {
        let _ = fs::remove_file(&p);
    }
    symlink(&target, &p).unwrap();
}

type Op = fn(&Store, &Sandbox) -> numpack::Result<()>;

fn ops() -> Vec<(&'static str, Op)> {
    vec![
        ("load a", |s, _| s.load("a").map(drop)),
        ("replace a", |s, _| s.replace_rows("a", DType::Float64, &[0], &[7u8; ROW])),
        ("append a", |s, _| s.append("a", DType::Float64, &[1, 2], &[7u8; ROW])),
        ("delete a", |s, _| s.delete_rows("a", &[0])),
        ("writable view a", |s, _| {
            let mut v = s.view("a", true)?;
            if let Some(b) = v.bytes_mut() {
                b.fill(9);
            }
            Ok(())
        }),
        ("compact a", |s, _| s.compact("a")),
        ("save over a", |s, _| s.save("a", DType::Float64, &[1, 2], &[1u8; ROW])),
        ("rename a", |s, _| s.rename("a", "b").and_then(|_| s.load("b").map(drop))),
        ("drop a", |s, _| s.drop_array("a")),
        ("load z", |s, _| s.load("z").map(drop)),
        ("replace z", |s, _| s.replace_rows("z", DType::Float64, &[0], &[7u8; 8])),
        ("append z", |s, _| s.append("z", DType::Float64, &[1], &[7u8; 8])),
        ("delete z", |s, _| s.delete_rows("z", &[0])),
        ("load s", |s, _| s.load("s").map(drop)),
        ("replace s", |s, _| s.replace_rows("s", DType::Float32, &[0], &[7u8; 12])),
        ("append s", |s, _| s.append("s", DType::Float32, &[1, 3], &[7u8; 12])),
        ("compact s", |s, _| s.delete_rows("s", &[0]).and_then(|_| s.compact("s"))),
        ("reset", |s, _| s.reset()),
        ("pack", |s, sb| package::pack(s, &sb.out_pkg, &PackOptions::default(), None).map(drop)),
    ]
}

/// The files planted as links and the operations that must then fail naming them.
fn plants() -> Vec<(&'static str, &'static [&'static str])> {
    const A_DATA: &[&str] = &["load a", "replace a", "append a", "writable view a", "compact a", "pack"];
    const A_BITMAP: &[&str] = &["load a", "replace a", "append a", "delete a", "writable view a", "compact a", "pack"];
    const Z: &[&str] = &["load z", "replace z", "append z", "pack"];
    const S: &[&str] = &["load s", "replace s", "append s", "compact s", "pack"];
    vec![
        ("data_a.npkd", A_DATA),
        ("deleted_a.npkb", A_BITMAP),
        ("data_z.npkz", Z),
        ("data_s.npkseg", S),
        ("data_s_segments/seg_000000.npkd", S),
        ("data_s_segments", S),
    ]
}

fn names_file(e: &Error, rel: &str) -> bool {
    e.message.contains(rel)
}

#[test]
fn linked_files_are_refused_by_every_operation_and_nothing_outside_changes() {
    let mut failures = Vec::new();
    for dangling in [false, true] {
        for (rel, must_fail) in plants() {
            for (what, op) in ops() {
                let sb = sandbox();
                plant(&sb, rel, dangling);
                let before = tree(&sb.outside);
                let result = Store::open(&sb.store, OpenOptions::default()).and_then(|s| op(&s, &sb).and_then(|_| s.close()));
                let after = tree(&sb.outside);
                if before != after {
                    failures.push(format!("{rel} (dangling: {dangling}), {what}: the outside changed: {before:?} -> {after:?}"));
                }
                // A link is moved or removed as a link, never followed; reading one is refused.
                if must_fail.contains(&what) {
                    match &result {
                        Ok(()) => failures.push(format!("{rel} (dangling: {dangling}), {what}: succeeded through a link")),
                        Err(e) if !names_file(e, rel) => failures.push(format!("{rel} (dangling: {dangling}), {what}: unclear error {e}")),
                        Err(e) if !dangling && e.code != ErrorCode::Corrupt => {
                            failures.push(format!("{rel}, {what}: {:?} rather than CORRUPT: {e}", e.code))
                        }
                        Err(_) => {}
                    }
                }
                let pkg = sb.out_pkg.exists().then(|| fs::read(&sb.out_pkg).unwrap());
                if let Some(p) = pkg {
                    let bait = sb.outside.join(format!("bait_{}", rel.replace('/', "__")));
                    if bait.is_file() && !fs::read(&bait).unwrap().is_empty() && result.is_ok() && must_fail.contains(&"pack") {
                        failures.push(format!("{rel}, {what}: a package of {} bytes was written through a link", p.len()));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn a_linked_catalogue_or_log_makes_open_fail_naming_it() {
    for rel in [numpack::metadata::FILE_NAME, numpack::wal::FILE_NAME] {
        for dangling in [false, true] {
            for read_only in [false, true] {
                let sb = sandbox();
                plant(&sb, rel, dangling);
                let before = tree(&sb.outside);
                let e = Store::open(&sb.store, OpenOptions { read_only, ..Default::default() })
                    .and_then(|s| s.load("a").map(drop))
                    .expect_err(&format!("{rel} dangling {dangling} read-only {read_only}: opened through a link"));
                assert!(names_file(&e, rel), "{rel}: unclear error {e}");
                assert_eq!(tree(&sb.outside), before, "{rel}: the outside changed");
            }
        }
    }
}

#[test]
fn read_only_opens_refuse_linked_files() {
    for (rel, must_fail) in plants() {
        let sb = sandbox();
        plant(&sb, rel, false);
        let before = tree(&sb.outside);
        let s = Store::open(&sb.store, OpenOptions { read_only: true, ..Default::default() }).unwrap();
        let array = must_fail[0].rsplit(' ').next().unwrap();
        let e = s.load(array).expect_err(&format!("{rel}: read through a link"));
        assert!(names_file(&e, rel) && e.code == ErrorCode::Corrupt, "{rel}: {e}");
        let e = s.view(array, false).map(drop).expect_err(&format!("{rel}: mapped through a link"));
        assert!(names_file(&e, rel), "{rel}: {e}");
        assert_eq!(tree(&sb.outside), before);
    }
}

#[test]
fn special_files_in_a_store_are_refused_without_blocking() {
    let sb = sandbox();
    fs::remove_file(sb.store.join("data_a.npkd")).unwrap();
    let c = std::ffi::CString::new(sb.store.join("data_a.npkd").to_str().unwrap()).unwrap();
    // SAFETY: a valid path string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let s = Store::open(&sb.store, OpenOptions::default()).unwrap();
    let e = s.load("a").unwrap_err();
    assert!(e.code == ErrorCode::Corrupt && e.message.contains("data_a.npkd") && e.message.contains("not a regular file"), "{e}");
}

#[test]
fn a_store_reached_through_a_link_works() {
    let sb = sandbox();
    let via = sb.outside.parent().unwrap().join("via");
    symlink(&sb.store, &via).unwrap();
    let s = Store::open(&via, OpenOptions::default()).unwrap();
    assert_eq!(s.load("a").unwrap().1.len(), 5 * ROW);
    s.append("a", DType::Float64, &[1, 2], &[3u8; ROW]).unwrap();
    s.replace_rows("a", DType::Float64, &[0], &[4u8; ROW]).unwrap();
    s.delete_rows("a", &[1]).unwrap();
    s.compact("a").unwrap();
    s.rename("a", "b").unwrap();
    s.append("s", DType::Float32, &[1, 3], &[7u8; 12]).unwrap();
    s.replace_rows("z", DType::Float64, &[0], &[7u8; 8]).unwrap();
    package::pack(&s, &sb.out_pkg, &PackOptions::default(), None).unwrap();
    s.close().unwrap();
    let s = Store::open(&via, OpenOptions { read_only: true, ..Default::default() }).unwrap();
    let (info, b) = s.load("b").unwrap();
    assert_eq!(info.shape, vec![5, 2]);
    assert_eq!(&b[..ROW], &[4u8; ROW]);
    assert_eq!(&b[4 * ROW..], &[3u8; ROW]);
    assert_eq!(s.load("s").unwrap().0.shape, vec![21, 3]);
}

/// Child side of [`a_data_file_truncated_behind_an_open_store_is_an_error_not_a_crash`]:
/// run by the parent in its own process, so that a SIGBUS fails the parent's test.
#[test]
#[ignore]
fn truncation_child() {
    let Ok(dir) = std::env::var("NPK_TRUNCATION_STORE") else { return };
    let dir = Path::new(&dir);
    for writable in [true, false] {
        for (name, file) in [("a", "data_a.npkd".to_string()), ("s", segments_file())] {
            let s = Store::open(dir, OpenOptions { read_only: !writable, ..Default::default() }).unwrap();
            let (info, _) = s.load(name).unwrap();
            let rb = info.row_bytes() as usize;
            let keep = fs::read(dir.join(&file)).unwrap();
            // Another program truncates the mapped file.
            fs::OpenOptions::new().write(true).open(dir.join(&file)).unwrap().set_len(0).unwrap();
            // Reads ask a file's size once per tick of the coarse clock (1-4 ms).
            std::thread::sleep(std::time::Duration::from_millis(20));
            let mut out = vec![0u8; rb];
            for r in [
                s.load(name).map(drop),
                s.read_rows_into(name, &[(info.shape[0] - 1) as i64], &mut out),
                s.read_range_into(name, info.shape[0] - 1, info.shape[0], &mut out),
            ]
            .into_iter()
            .enumerate()
            {
                let (i, r) = r;
                let e = r.expect_err(&format!("read {i} of {file} (writable {writable}) after truncation"));
                assert!(e.code == ErrorCode::Corrupt && e.message.contains(&file), "{e}");
            }
            fs::write(dir.join(&file), &keep).unwrap();
            s.load(name).unwrap();
        }
    }
    println!("CHILD-OK");
}

fn segments_file() -> String {
    numpack::segments::segment_file("s", 1) // rows 10..19: the last row's segment
}

#[test]
fn a_data_file_truncated_behind_an_open_store_is_an_error_not_a_crash() {
    let sb = sandbox();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "truncation_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env("NPK_TRUNCATION_STORE", &sb.store)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "child failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_reports_every_linked_store_as_damaged() {
    use numpack::check::{self, ids};
    let mut all: Vec<&str> = plants().into_iter().map(|p| p.0).collect();
    all.extend([numpack::metadata::FILE_NAME, numpack::wal::FILE_NAME]);
    for rel in all {
        for dangling in [false, true] {
            let sb = sandbox();
            assert!(check::check(&sb.store).unwrap().is_clean(), "the sandbox store is damaged to begin with");
            plant(&sb, rel, dangling);
            let before = tree(&sb.outside);
            let r = check::check(&sb.store).unwrap();
            let found = r.with_id(ids::NOT_REGULAR_FILE).chain(r.with_id(ids::SEGMENT_FILE)).any(|f| f.file.as_deref() == Some(rel));
            assert!(!r.is_ok() && found, "{rel} (dangling {dangling}): {:#?}", r.findings);
            assert_eq!(tree(&sb.outside), before);
        }
    }
}
