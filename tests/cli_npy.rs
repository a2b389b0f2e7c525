//! `npk import|export|append-npy|recover-npy` on generated files: the files and stores
//! they produce, their `--json` documents and their exit codes.

use std::fs;
use std::path::Path;
use std::process::Command;

use numpack::{npy, DType, OpenOptions, Store};
use serde_json::Value;

mod npk_cli;
use npk_cli::{catches_sigint, json, npk};

fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A `.npy` of int64 rows `[r, 10 r]` for r in `rows`, written the way NumPy before 1.14
/// wrote it: a version 1.0 header padded to 16 bytes, too little room for the shape to
/// grow in place.
fn numpy_style_npy(path: &Path, rows: std::ops::Range<i64>) {
    let n = rows.end - rows.start;
    let mut header = format!("{{'descr': '<i8', 'fortran_order': False, 'shape': ({n}, 2), }}");
    while (10 + header.len() + 1) % 16 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(i64s(&rows.flat_map(|r| [r, 10 * r]).collect::<Vec<_>>()));
    fs::write(path, bytes).unwrap();
}

fn load_i64(store: &Path, name: &str) -> (Vec<u64>, Vec<i64>) {
    let s = Store::open(store, OpenOptions { read_only: true, ..Default::default() }).unwrap();
    let (info, bytes) = s.load(name).unwrap();
    s.close().unwrap();
    (info.shape, bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect())
}

fn file_rows(path: &Path) -> Vec<i64> {
    let info = npy::info(path).unwrap();
    let bytes = fs::read(path).unwrap();
    bytes[info.data_offset as usize..].chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn import_export_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, store, out) = (tmp.path().join("feat.npy"), tmp.path().join("s.npk"), tmp.path().join("out.npy"));
    numpy_style_npy(&src, 0..5);

    // Into a new store, named after the file.
    let v = json(0, &[&"import", &store, &src]);
    assert_eq!(v["arrays"][0]["name"], "feat");
    assert_eq!(v["arrays"][0]["shape"], serde_json::json!([5, 2]));
    assert_eq!(load_i64(&store, "feat"), (vec![5, 2], (0..5).flat_map(|r| [r, 10 * r]).collect()));
    // Again: the array exists (exit 5) until --overwrite; --name picks another name.
    let v = json(5, &[&"import", &store, &src]);
    assert_eq!(v["error"]["status"], "ALREADY_EXISTS");
    json(0, &[&"import", &store, &src, &"--overwrite"]);
    json(0, &[&"import", &store, &src, &"--name", &"copy"]);

    // Export leaves out deleted rows and writes a file that can grow.
    {
        let s = Store::open(&store, OpenOptions::default()).unwrap();
        s.delete_rows("feat", &[1, 3]).unwrap();
        s.close().unwrap();
    }
    let v = json(0, &[&"export", &store, &"feat", &out]);
    assert_eq!((v["shape"].clone(), v["appendable"].clone()), (serde_json::json!([3, 2]), Value::Bool(true)));
    assert_eq!(file_rows(&out), [0, 0, 2, 20, 4, 40]);
    assert_eq!(json(5, &[&"export", &store, &"feat", &out])["error"]["exit_code"], 5);
    assert_eq!(json(4, &[&"export", &store, &"nope", &tmp.path().join("x.npy")])["error"]["status"], "NOT_FOUND");
    let o = npk(&[&"export", &store, &"feat", &out, &"--overwrite"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("exported feat to"));
}

#[test]
fn import_of_an_npz_names_arrays_by_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, store, npz) = (tmp.path().join("a.npy"), tmp.path().join("s.npk"), tmp.path().join("two.npz"));
    numpy_style_npy(&a, 0..3);
    // A stored (uncompressed) zip of two members, as np.savez writes.
    {
        let mut w = zip::ZipWriter::new(fs::File::create(&npz).unwrap());
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for key in ["x", "y"] {
            w.start_file(format!("{key}.npy"), opts).unwrap();
            std::io::Write::write_all(&mut w, &fs::read(&a).unwrap()).unwrap();
        }
        w.finish().unwrap();
    }
    let v = json(0, &[&"import", &store, &npz]);
    let names: Vec<&str> = v["arrays"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["x", "y"]);
    assert_eq!(load_i64(&store, "y").1, [0, 0, 1, 10, 2, 20]);
    // --name makes no sense for an .npz; other suffixes are refused; a missing file is 4.
    assert_eq!(json(3, &[&"import", &store, &npz, &"--name", &"z"])["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(json(3, &[&"import", &store, &tmp.path().join("a.csv")])["error"]["exit_code"], 3);
    assert_eq!(json(4, &[&"import", &store, &tmp.path().join("missing.npy")])["error"]["exit_code"], 4);
}

#[test]
fn append_npy_grows_in_place_and_makes_numpy_files_appendable() {
    let tmp = tempfile::tempdir().unwrap();
    let (target, more) = (tmp.path().join("log.npy"), tmp.path().join("more.npy"));
    numpy_style_npy(&target, 0..2);
    numpy_style_npy(&more, 2..4);

    // NumPy's header has no room: refused with what to do, the file untouched.
    let before = fs::read(&target).unwrap();
    let o = npk(&[&"append-npy", &target, &more]);
    assert_eq!(o.status.code(), Some(9));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--make-appendable"), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(fs::read(&target).unwrap(), before);

    let v = json(0, &[&"append-npy", &target, &more, &"--make-appendable"]);
    assert_eq!((v["rows"].as_u64(), v["made_appendable"].as_bool()), (Some(4), Some(true)));
    let v = json(0, &[&"append-npy", &target, &more, &"--sync"]);
    assert_eq!((v["rows"].as_u64(), v["made_appendable"].as_bool()), (Some(6), Some(false)));
    assert_eq!(file_rows(&target), [0, 0, 1, 10, 2, 20, 3, 30, 2, 20, 3, 30]);

    // A missing target: exit 4, or created with --create.
    let fresh = tmp.path().join("fresh.npy");
    assert_eq!(json(4, &[&"append-npy", &fresh, &more])["error"]["exit_code"], 4);
    assert_eq!(json(0, &[&"append-npy", &fresh, &more, &"--create"])["rows"], 2);
    assert_eq!(npy::info(&fresh).unwrap().dtype, DType::Int64);

    // Rows of another shape do not fit: exit 3.
    let other = tmp.path().join("other.npy");
    fs::write(&other, b"\x93NUMPY\x01\x00\x76\x00{'descr': '<i8', 'fortran_order': False, 'shape': (1, 3), }").unwrap();
    let mut f = fs::read(&other).unwrap();
    f.resize(10 + 0x76 - 1, b' ');
    f.push(b'\n');
    f.extend(i64s(&[1, 2, 3]));
    fs::write(&other, f).unwrap();
    assert_eq!(json(3, &[&"append-npy", &target, &other])["error"]["status"], "SHAPE_MISMATCH");
}

#[test]
fn recover_npy_repairs_a_torn_append() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, store) = (tmp.path().join("t.npy"), tmp.path().join("s.npk"));
    numpy_style_npy(&file, 0..3);
    // A crashed appender: one whole row and half of the next, the header not updated.
    let mut bytes = fs::read(&file).unwrap();
    bytes.extend(i64s(&[3, 30, 4]));
    fs::write(&file, &bytes).unwrap();

    // Import and append refuse it and point at recover-npy (exit 10).
    let o = npk(&[&"import", &store, &file]);
    assert_eq!(o.status.code(), Some(10));
    assert!(String::from_utf8_lossy(&o.stderr).contains("npk recover-npy"), "{}", String::from_utf8_lossy(&o.stderr));

    let zero = tmp.path().join("z.npy");
    fs::write(&zero, &bytes).unwrap();
    let v = json(0, &[&"recover-npy", &file]);
    assert_eq!((v["header_rows"].as_u64(), v["rows"].as_u64(), v["dropped_bytes"].as_u64()), (Some(3), Some(4), Some(8)));
    assert_eq!(v["clean"], false);
    assert_eq!(file_rows(&file), [0, 0, 1, 10, 2, 20, 3, 30]);
    let v = json(0, &[&"recover-npy", &zero, &"--zero-fill"]);
    assert_eq!((v["rows"].as_u64(), v["zero_filled_bytes"].as_u64()), (Some(5), Some(8)));
    assert_eq!(file_rows(&zero), [0, 0, 1, 10, 2, 20, 3, 30, 4, 0]);

    // A second run finds nothing to do; the repaired file imports.
    let o = npk(&[&"recover-npy", &file]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to do"));
    json(0, &[&"import", &store, &file]);
    assert_eq!(load_i64(&store, "t").0, [4, 2]);
    // Not a .npy at all: corrupt (exit 8).
    let junk = tmp.path().join("junk.npy");
    fs::write(&junk, b"hello").unwrap();
    assert_eq!(json(8, &[&"recover-npy", &junk])["error"]["status"], "CORRUPT");
}

#[test]
fn ctrl_c_cancels_append_npy_with_code_11_and_keeps_the_old_rows() {
    use std::os::fd::AsRawFd;
    if !Path::new("/proc/self/status").exists() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (target, source) = (t.path().join("t.npy"), t.path().join("s.npy"));
    npy::append(&target, &i64s(&[1, 2]), DType::Int64, &[2], npy::AppendOptions { create: true, sync: false }).unwrap();
    npy::append(&source, &i64s(&[3, 4, 5, 6]), DType::Int64, &[2], npy::AppendOptions { create: true, sync: false }).unwrap();
    let before = fs::read(&target).unwrap();
    // Hold the target's lock so that append-npy waits for it, then press Ctrl-C.
    let held = fs::File::open(&target).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
    let child = Command::new(env!("CARGO_BIN_EXE_npk"))
        .args(["--json", "append-npy"])
        .arg(&target)
        .arg(&source)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !catches_sigint(pid) {
        assert!(std::time::Instant::now() < deadline, "append-npy never installed its Ctrl-C handler");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGINT) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_UN) }, 0);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(11), "stderr: {err}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["status"], "CANCELLED", "{v}");
    assert_eq!(v["error"]["exit_code"], 11, "{v}");
    assert_eq!(fs::read(&target).unwrap(), before);
}
