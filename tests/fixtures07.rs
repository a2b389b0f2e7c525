//! The plain store written by NumPack 0.7.0 (tests/fixtures/upstream-numpack-0.7.0,
//! made by tests/interop/make_fixtures07.py) opens and reads equal to the arrays it was
//! given, including the array 0.7.0 keeps listed after a whole-array drop.

use std::path::{Path, PathBuf};

use numpack::{DType, OpenOptions, Store};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream-numpack-0.7.0")
}

/// The expected arrays of one fixture store: (name, dtype, shape, bytes), by name.
fn expected(store: &str) -> Vec<(String, DType, Vec<u64>, Vec<u8>)> {
    let prefix = format!("{}.", store.trim_end_matches(".npk"));
    let mut out = Vec::new();
    for e in std::fs::read_dir(fixtures().join("expected")).unwrap() {
        let path = e.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap();
        let Some(name) = file.strip_prefix(&prefix).and_then(|n| n.strip_suffix(".npy")) else { continue };
        let info = numpack::npy::info(&path).unwrap();
        assert!(!info.big_endian && !info.fortran_order, "{file}");
        let bytes = std::fs::read(&path).unwrap()[info.data_offset as usize..].to_vec();
        assert_eq!(Some(bytes.len() as u64), info.data_bytes(), "{file}");
        out.push((name.to_string(), info.dtype, info.shape, bytes));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Copies a fixture store into a temporary directory (opening a store may write to it).
fn copy_store(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    std::fs::create_dir(&dst).unwrap();
    for e in std::fs::read_dir(fixtures().join(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    (tmp, dst)
}

#[test]
fn plain_store_reads_equal() {
    let want = expected("plain.npk");
    assert_eq!(want.len(), 21);
    let (_tmp, path) = copy_store("plain.npk");
    for mode in [OpenOptions { read_only: true, ..Default::default() }, OpenOptions::default()] {
        let store = Store::open(&path, mode).unwrap();
        let names = store.names().unwrap();
        assert_eq!(names, want.iter().map(|w| w.0.clone()).collect::<Vec<_>>());
        for (name, dtype, shape, bytes) in &want {
            let (info, data) = store.load(name).unwrap();
            assert_eq!((info.dtype, &info.shape), (*dtype, shape), "{name}");
            assert!(data == *bytes, "{name}: contents differ");
        }
    }
}

#[test]
fn plain_store_rows_go_through_0_7_bitmaps() {
    let want = expected("plain.npk");
    let (_tmp, path) = copy_store("plain.npk");
    let store = Store::open(&path, OpenOptions { read_only: true, ..Default::default() }).unwrap();
    // 100 rows, 5 dropped by 0.7.0.
    let info = store.info("deleted").unwrap();
    assert_eq!((info.shape.clone(), info.physical_rows), (vec![95, 3], 100));
    let (_, _, _, rows) = want.iter().find(|w| w.0 == "deleted").unwrap();
    let mut out = vec![0u8; 3 * 24];
    store.read_rows_into("deleted", &[-1, 0, 60], &mut out).unwrap();
    assert_eq!(out, [&rows[94 * 24..95 * 24], &rows[..24], &rows[60 * 24..61 * 24]].concat());
    // 128 rows, 2 dropped, 5 appended in a later session.
    let info = store.info("deleted_appended").unwrap();
    assert_eq!((info.shape.clone(), info.physical_rows), (vec![131, 2], 133));
    // Dropped whole by 0.7.0: still listed, every row deleted.
    let info = store.info("whole_dropped").unwrap();
    assert_eq!((info.shape.clone(), info.physical_rows, info.dtype), (vec![0, 2], 4, DType::Float32));
    // Compacted by 0.7.0's update(): no bitmap left.
    let info = store.info("compacted").unwrap();
    assert_eq!((info.shape.clone(), info.physical_rows), (vec![67, 2], 67));
}

#[test]
fn plain_store_keeps_working_after_changes_and_reopen() {
    let want = expected("plain.npk");
    let (_tmp, path) = copy_store("plain.npk");
    let store = Store::open(&path, OpenOptions::default()).unwrap();
    store.append("whole_dropped", DType::Float32, &[1, 2], &[0u8; 8]).unwrap();
    store.compact("deleted").unwrap();
    store.close().unwrap();
    let store = Store::open(&path, OpenOptions::default()).unwrap();
    // The appended row is the only live one: the dropped rows stay dropped.
    let (info, data) = store.load("whole_dropped").unwrap();
    assert_eq!((info.shape, data), (vec![1, 2], vec![0u8; 8]));
    let (info, data) = store.load("deleted").unwrap();
    assert_eq!((info.shape.clone(), info.physical_rows), (vec![95, 3], 95));
    assert!(data == want.iter().find(|w| w.0 == "deleted").unwrap().3);
    assert!(!path.join("deleted_deleted.npkb").exists());
}
