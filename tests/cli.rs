//! The `npk` binary on generated stores: every subcommand in text and `--json` (parsed
//! with serde_json), and the exit code of each error class a test can provoke.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use numpack::{DType, OpenOptions, Store};
use serde_json::Value;

mod npk_cli;
use npk_cli::{catches_sigint, code, json, npk, stderr, stdout};

fn store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.npk");
    let s = Store::open(&path, OpenOptions { create: true, ..Default::default() }).unwrap();
    let m: Vec<u8> = (0..6i64).flat_map(|r| [r, 10 * r]).flat_map(|x| x.to_le_bytes()).collect();
    s.save("m", DType::Int64, &[6, 2], &m).unwrap();
    s.delete_rows("m", &[1, 4]).unwrap();
    let f: Vec<u8> = [1.5f32, f32::NAN, -2.0, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    s.save("f", DType::Float32, &[4], &f).unwrap();
    s.save("v", DType::Uint8, &[3, 2, 2], &(0..12).collect::<Vec<u8>>()).unwrap();
    s.close().unwrap();
    (tmp, path)
}

fn err_of(v: &Value) -> (&str, i64) {
    (v["error"]["status"].as_str().unwrap(), v["error"]["exit_code"].as_i64().unwrap())
}

#[test]
fn info_and_ls() {
    let (_t, s) = store();
    let v = json(0, &[&"info", &s]);
    let arrays = v["arrays"].as_array().unwrap();
    let names: Vec<&str> = arrays.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["f", "m", "v"]);
    let m = &arrays[1];
    assert_eq!(m["dtype"], "int64");
    assert_eq!(m["shape"], serde_json::json!([4, 2]));
    assert_eq!((m["rows"].as_u64(), m["deleted_rows"].as_u64(), m["physical_rows"].as_u64()), (Some(4), Some(2), Some(6)));
    assert_eq!((m["bytes"].as_u64(), m["file_bytes"].as_u64()), (Some(64), Some(96)));
    assert_eq!(v["total_deleted_rows"], 2);
    assert_eq!(v["total_bytes"].as_u64(), Some(16 + 64 + 12));

    let o = npk(&[&"info", &s, &"m"]);
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    assert!(text.contains("1 arrays") && text.contains("int64") && text.contains("(4, 2)"), "{text}");

    let v = json(0, &[&"ls", &s]);
    assert_eq!(v["arrays"], serde_json::json!(["f", "m", "v"]));
    assert_eq!(stdout(&npk(&[&"ls", &s])), "f\nm\nv\n");
    let v = json(0, &[&"ls", &"-l", &s]);
    assert_eq!(v["arrays"][2], serde_json::json!({"name": "v", "dtype": "uint8", "shape": "(3, 2, 2)"}));
}

#[test]
fn head_and_tail() {
    let (_t, s) = store();
    // Logical rows skip the deleted ones.
    let v = json(0, &[&"head", &s, &"m", &"-n", &"2"]);
    assert_eq!(v["rows"], serde_json::json!([[0, 0], [2, 20]]));
    assert_eq!((v["start"].as_u64(), v["stop"].as_u64()), (Some(0), Some(2)));
    let v = json(0, &[&"tail", &s, &"m", &"-n", &"3"]);
    assert_eq!(v["rows"], serde_json::json!([[2, 20], [3, 30], [5, 50]]));
    // More rows than there are: all of them.
    let v = json(0, &[&"tail", &s, &"m", &"-n", &"100"]);
    assert_eq!(v["rows"].as_array().unwrap().len(), 4);
    // Non-finite floats are strings in JSON.
    let v = json(0, &[&"head", &s, &"f"]);
    assert_eq!(v["rows"], serde_json::json!([1.5, "nan", -2.0, 4.0]));
    let v = json(0, &[&"head", &s, &"v", &"-n", &"1"]);
    assert_eq!(v["rows"], serde_json::json!([[[0, 1], [2, 3]]]));

    // numpy-like text.
    let o = npk(&[&"head", &s, &"m", &"-n", &"2"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).ends_with("[[ 0  0]\n [ 2 20]]\n"), "{}", stdout(&o));
    let o = npk(&[&"head", &s, &"f"]);
    assert!(stdout(&o).ends_with("[1.5 nan -2.  4.]\n"), "{}", stdout(&o));
    let o = npk(&[&"tail", &s, &"v", &"-n", &"1"]);
    assert!(stdout(&o).ends_with("[[[ 8  9]\n  [10 11]]]\n"), "{}", stdout(&o));
}

#[test]
fn stats_whole_and_per_column() {
    let (_t, s) = store();
    let v = json(0, &[&"stats", &s]);
    let by_name = |n: &str| v["arrays"].as_array().unwrap().iter().find(|a| a["name"] == n).unwrap().clone();
    let f = by_name("f")["stats"].clone();
    assert_eq!((f["count"].as_u64(), f["nan_count"].as_u64()), (Some(3), Some(1)));
    assert_eq!((f["min"].as_f64(), f["max"].as_f64()), (Some(-2.0), Some(4.0)));
    assert!((f["mean"].as_f64().unwrap() - 3.5 / 3.0).abs() < 1e-12);
    let mean = 3.5 / 3.0;
    let var = ([1.5f64, -2.0, 4.0].iter().map(|x| (x - mean) * (x - mean)).sum::<f64>()) / 3.0;
    assert!((f["std"].as_f64().unwrap() - var.sqrt()).abs() < 1e-12);
    // Integers: exact min/max over live rows only (0, 2, 3, 5 and ten times them).
    let m = by_name("m")["stats"].clone();
    assert_eq!((m["min"].as_i64(), m["max"].as_i64(), m["count"].as_u64()), (Some(0), Some(50), Some(8)));

    let v = json(0, &[&"stats", &s, &"m", &"--axis", &"0"]);
    let cols = v["arrays"][0]["columns"].as_array().unwrap();
    assert_eq!(cols.len(), 2);
    assert_eq!((cols[0]["max"].as_i64(), cols[1]["max"].as_i64()), (Some(5), Some(50)));
    assert_eq!(cols[1]["mean"].as_f64(), Some(25.0));
    // Per column of a 3-d array: each of the 4 elements of a row.
    let v = json(0, &[&"stats", &s, &"v", &"--axis", &"0"]);
    let cols = v["arrays"][0]["columns"].as_array().unwrap();
    assert_eq!(cols.iter().map(|c| c["min"].as_i64().unwrap()).collect::<Vec<_>>(), [0, 1, 2, 3]);

    let o = npk(&[&"stats", &s, &"f"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("-2") && stdout(&o).contains("nan"), "{}", stdout(&o));
    // Only --axis 0 exists.
    let v = json(3, &[&"stats", &s, &"--axis", &"1"]);
    assert_eq!(err_of(&v), ("INVALID_ARGUMENT", 3));
}

#[test]
fn check_clean_and_corrupted() {
    let (_t, s) = store();
    let v = json(0, &[&"check", &s]);
    assert_eq!((v["ok"].as_bool(), v["errors"].as_u64(), v["arrays"].as_u64()), (Some(true), Some(0), Some(3)));
    assert_eq!(v["findings"], serde_json::json!([]));
    assert!(stdout(&npk(&[&"check", &s])).contains(": ok (3 arrays"));

    // A warning fails the check unless --errors-only.
    fs::write(s.join("data_ghost.npkd"), b"x").unwrap();
    let v = json(1, &[&"check", &s]);
    assert_eq!(v["findings"][0]["id"], "orphan-data-file");
    assert_eq!(v["findings"][0]["severity"], "warning");
    json(0, &[&"check", &"--errors-only", &s]);

    // Damage: a truncated data file and a bitmap of the wrong length, both reported.
    fs::OpenOptions::new().write(true).open(s.join("data_v.npkd")).unwrap().set_len(5).unwrap();
    fs::write(s.join("deleted_m.npkb"), [0u8; 3]).unwrap();
    let v = json(1, &[&"check", &s]);
    let ids: Vec<&str> = v["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    for want in ["data-size-mismatch", "bitmap-size-mismatch", "orphan-data-file"] {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
    assert_eq!(v["errors"], 2);
    let o = npk(&[&"check", &"--errors-only", &s]);
    assert_eq!(code(&o), 1);
    let text = stdout(&o);
    assert!(text.contains("error   data-size-mismatch data_v.npkd (array \"v\")") && text.contains("DAMAGED"), "{text}");
    // Reading the damaged array is CORRUPT (8), and the hint points at check.
    let o = npk(&[&"head", &s, &"v"]);
    assert_eq!(code(&o), 8, "{}", stderr(&o));
    assert!(stderr(&o).starts_with("npk: ") && stderr(&o).contains("npk check"), "{}", stderr(&o));
}

#[test]
fn compact_reclaims_deleted_rows() {
    let (_t, s) = store();
    let v = json(0, &[&"compact", &s]);
    assert_eq!((v["rows_reclaimed"].as_u64(), v["bytes_reclaimed"].as_u64()), (Some(2), Some(32)));
    let v = json(0, &[&"info", &s, &"m"]);
    assert_eq!((v["arrays"][0]["deleted_rows"].as_u64(), v["arrays"][0]["file_bytes"].as_u64()), (Some(0), Some(64)));
    assert!(!s.join("deleted_m.npkb").exists());
    assert_eq!(json(0, &[&"head", &s, &"m"])["rows"], serde_json::json!([[0, 0], [2, 20], [3, 30], [5, 50]]));
    let o = npk(&[&"compact", &s]);
    assert!(stdout(&o).contains("0 deleted rows"), "{}", stdout(&o));
    json(0, &[&"check", &s]);
}

#[test]
fn pack_unpack_and_package_info() {
    let (t, s) = store();
    let pkg = t.path().join("s.npkg");
    let v = json(0, &[&"pack", &s, &"-o", &pkg]);
    assert_eq!(v["compression"], "zstd");
    let files: Vec<&str> = v["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert!(files.contains(&"metadata.npkm") && files.contains(&"deleted_m.npkb"), "{files:?}");

    let v = json(0, &[&"package-info", &pkg]);
    assert_eq!(v["version"], 2);
    assert_eq!(v["files"].as_array().unwrap().len(), files.len());
    assert!(stdout(&npk(&[&"package-info", &pkg])).contains("data_m.npkd"));

    let out = t.path().join("copy.npk");
    json(0, &[&"unpack", &pkg, &"-o", &out]);
    assert_eq!(json(0, &[&"tail", &out, &"m", &"-n", &"1"])["rows"], serde_json::json!([[5, 50]]));
    // Exists already: 5, and --overwrite replaces it.
    let v = json(5, &[&"unpack", &pkg, &"-o", &out]);
    assert_eq!(err_of(&v), ("ALREADY_EXISTS", 5));
    json(0, &[&"unpack", &pkg, &"-o", &out, &"--overwrite"]);
    assert_eq!(code(&npk(&[&"pack", &s, &"-o", &pkg])), 5);
    // Default names: <store>.npkg beside the store, raw files with --no-compress.
    let o = npk(&[&"pack", &s, &"--no-compress"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(t.path().join("s.npk.npkg").exists());
    assert_eq!(json(0, &[&"package-info", &t.path().join("s.npk.npkg")])["compression"], "none");
}

/// Writes a file that starts like a package of format version 3.
fn future_package(dir: &Path) -> PathBuf {
    let p = dir.join("future.npkg");
    let mut b = b"NPKG".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.push(0);
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 16]);
    fs::write(&p, b).unwrap();
    p
}

#[test]
fn exit_codes_of_each_error_class() {
    let (t, s) = store();
    // 2: usage.
    let o = npk(&[&"info"]);
    assert_eq!(code(&o), 2);
    assert_eq!(code(&npk(&[&"frobnicate"])), 2);
    assert_eq!(code(&npk(&[&"head", &s, &"m", &"-n", &"many"])), 2);
    assert_eq!(code(&npk(&[&"--help"])), 0);
    let v = json(2, &[&"stats", &s, &"--axis"]);
    assert_eq!(err_of(&v), ("USAGE", 2));
    // 3: invalid argument.
    let v = json(3, &[&"pack", &s, &"-o", &t.path().join("x.npkg"), &"--level", &"99"]);
    assert_eq!(err_of(&v), ("INVALID_ARGUMENT", 3));
    assert_eq!(code(&npk(&[&"head", &s, &"bad/name"])), 3);
    // 4: not found (array, store, package).
    let v = json(4, &[&"head", &s, &"nope"]);
    assert_eq!(err_of(&v).0, "NOT_FOUND");
    assert!(v["error"]["hint"].as_str().unwrap().contains("npk ls"));
    let o = npk(&[&"info", &t.path().join("missing")]);
    assert_eq!(code(&o), 4);
    assert!(stderr(&o).starts_with("npk: no store at") && stderr(&o).contains("hint: "), "{}", stderr(&o));
    assert_eq!(code(&npk(&[&"check", &t.path().join("missing")])), 4);
    assert_eq!(code(&npk(&[&"compact", &t.path().join("missing")])), 4);
    assert_eq!(code(&npk(&[&"package-info", &t.path().join("missing.npkg")])), 4);
    // 5: already exists (above, and here).
    let pkg = t.path().join("p.npkg");
    fs::write(&pkg, b"x").unwrap();
    assert_eq!(code(&npk(&[&"pack", &s, &"-o", &pkg])), 5);
    // 7: I/O (a path through a regular file).
    let o = npk(&[&"pack", &s, &"-o", &pkg.join("sub.npkg")]);
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    // 8: corrupt.
    assert_eq!(code(&npk(&[&"package-info", &pkg])), 8);
    let bad = t.path().join("bad.npk");
    fs::create_dir(&bad).unwrap();
    fs::write(bad.join("metadata.npkm"), b"garbage garbage garbage").unwrap();
    let v = json(8, &[&"info", &bad]);
    assert_eq!(err_of(&v), ("CORRUPT", 8));
    assert_eq!(json(1, &[&"check", &bad])["findings"][0]["id"], "catalogue-bad-magic");
    // 9: unsupported.
    let v = json(9, &[&"package-info", &future_package(t.path())]);
    assert_eq!(err_of(&v), ("UNSUPPORTED", 9));
}

#[test]
fn ctrl_c_cancels_with_code_11_and_changes_nothing() {
    use std::os::fd::AsRawFd;
    let (_t, s) = store();
    // Hold the store's lock so that `compact` waits in its open, then press Ctrl-C.
    let wal = fs::File::open(s.join(numpack::wal::FILE_NAME)).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(wal.as_raw_fd(), libc::LOCK_EX) }, 0);
    let mut child = Command::new(env!("CARGO_BIN_EXE_npk"))
        .args(["--json", "compact"])
        .arg(&s)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !catches_sigint(pid) {
        assert!(child.try_wait().unwrap().is_none(), "compact ended while the store was locked");
        assert!(std::time::Instant::now() < deadline, "compact never installed its Ctrl-C handler");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGINT) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::flock(wal.as_raw_fd(), libc::LOCK_UN) }, 0);
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 11, "stderr: {}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(err_of(&v), ("CANCELLED", 11));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    // Nothing was compacted.
    assert_eq!(json(0, &[&"info", &s, &"m"])["arrays"][0]["deleted_rows"], 2);
}

#[test]
fn permission_denied_is_6() {
    // sysfs refuses new files even to root.
    let (t, s) = store();
    if !Path::new("/sys/kernel").is_dir() {
        return;
    }
    let pkg = t.path().join("s.npkg");
    json(0, &[&"pack", &s, &"-o", &pkg]);
    let v = json(6, &[&"unpack", &pkg, &"-o", &"/sys/npk-cli-test.npk"]);
    assert_eq!(err_of(&v), ("IO", 6));
    assert!(v["error"]["hint"].as_str().unwrap().contains("permission"));
}

#[test]
fn check_reports_needs_recovery_without_recovering_and_compact_recovers() {
    let (_t, s) = store();
    let store = Store::open(&s, OpenOptions::default()).unwrap();
    let wal = s.join(numpack::wal::FILE_NAME);
    let applied = |b: Option<[u8; 8]>| {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new().read(true).write(true).open(&wal).unwrap();
        let mut cur = [0u8; 8];
        f.read_exact_at(&mut cur, 48).unwrap();
        if let Some(b) = b {
            f.write_all_at(&b, 48).unwrap();
        }
        cur
    };
    let before = applied(None);
    // A delete killed after its record was committed, before the bitmap was rewritten.
    let bitmap = fs::read(s.join("deleted_m.npkb")).unwrap();
    store.delete_rows("m", &[0]).unwrap();
    std::mem::forget(store);
    fs::write(s.join("deleted_m.npkb"), &bitmap).unwrap();
    applied(Some(before));

    let snapshot = |p: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = fs::read_dir(p).unwrap().flatten().map(|e| (e.file_name().into_string().unwrap(), fs::read(e.path()).unwrap())).collect();
        v.sort();
        v
    };
    let files = snapshot(&s);
    let v = json(1, &[&"check", &s]);
    assert_eq!(v["needs_recovery"], true);
    let f = v["findings"].as_array().unwrap().iter().find(|f| f["id"] == "needs-recovery").unwrap().clone();
    assert_eq!((f["severity"].as_str(), f["array"].as_str()), (Some("error"), Some("m")));
    assert!(f["message"].as_str().unwrap().contains("npk compact"));
    assert_eq!(snapshot(&s), files, "check changed the store");

    // compact opens the store writable: recovery redoes the delete, then compaction.
    let v = json(0, &[&"compact", &s]);
    assert_eq!(v["rows_reclaimed"], 3);
    assert_eq!(json(0, &[&"head", &s, &"m"])["rows"], serde_json::json!([[2, 20], [3, 30], [5, 50]]));
    assert_eq!(json(0, &[&"check", &s])["findings"], serde_json::json!([]));
}

#[test]
fn long_rows_are_elided_like_numpy_unless_full() {
    let (_t, s) = store();
    let st = Store::open(&s, OpenOptions::default()).unwrap();
    let data: Vec<u8> = (0..2000u16).flat_map(|x| x.to_le_bytes()).collect();
    st.save("wide", DType::Uint16, &[2, 1000], &data).unwrap();
    st.close().unwrap();
    let o = npk(&[&"head", &s, &"wide"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).ends_with("[[   0    1    2 ...  997  998  999]\n [1000 1001 1002 ... 1997 1998 1999]]\n"), "{}", stdout(&o));
    let o = npk(&[&"head", &s, &"wide", &"--full"]);
    assert!(!stdout(&o).contains("...") && stdout(&o).contains(" 500  501 "), "{}", stdout(&o));
    // JSON always has every element.
    assert_eq!(json(0, &[&"tail", &s, &"wide", &"-n", &"1"])["rows"][0].as_array().unwrap().len(), 1000);
    // Small arrays are never elided.
    assert!(!stdout(&npk(&[&"head", &s, &"v"])).contains("..."));
}
