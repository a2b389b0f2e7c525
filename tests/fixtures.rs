//! Stores written by NumPack 0.4.5 open and read equal to the arrays it was given.

use std::path::{Path, PathBuf};

use numpack::{DType, OpenOptions, Store};

/// Parses an NPY v1/v2 file: (descr, shape, data bytes).
fn read_npy(path: &Path) -> (String, Vec<u64>, Vec<u8>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let (hlen, start) = if b[6] == 1 { (u16::from_le_bytes([b[8], b[9]]) as usize, 10) } else { (u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize, 12) };
    let header = std::str::from_utf8(&b[start..start + hlen]).unwrap();
    let descr = header.split("'descr': '").nth(1).unwrap().split('\'').next().unwrap().to_string();
    assert!(header.contains("'fortran_order': False"));
    let shape_txt = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape = shape_txt.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    (descr, shape, b[start + hlen..].to_vec())
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream-numpack-0.4.5")
}

/// Copies a fixture store into a temporary directory (opening a store writes its log).
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

fn check_store(store_name: &str) -> usize {
    let (_tmp, path) = copy_store(store_name);
    let prefix = store_name.trim_end_matches(".npk");
    let expected: Vec<PathBuf> = std::fs::read_dir(fixtures().join("expected"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(&format!("{prefix}.")))
        .collect();
    for mode in [OpenOptions::default(), OpenOptions { read_only: true, ..Default::default() }] {
        let store = Store::open(&path, mode).unwrap();
        let mut names = store.names().unwrap();
        names.sort();
        let mut want: Vec<String> = expected
            .iter()
            .map(|p| p.file_stem().unwrap().to_str().unwrap().strip_prefix(&format!("{prefix}.")).unwrap().to_string())
            .collect();
        want.sort();
        assert_eq!(names, want);
        for p in &expected {
            let name = p.file_stem().unwrap().to_str().unwrap().strip_prefix(&format!("{prefix}.")).unwrap();
            let (descr, shape, data) = read_npy(p);
            let (info, bytes) = store.load(name).unwrap();
            assert_eq!(info.dtype.npy_descr(), descr, "{name}");
            assert_eq!(info.shape, shape, "{name}");
            assert_eq!(bytes, data, "{name}");
        }
    }
    expected.len()
}

#[test]
fn all_dtypes_store_reads_equal() {
    assert_eq!(check_store("all_dtypes.npk"), 14);
}

#[test]
fn shapes_store_reads_equal() {
    assert_eq!(check_store("shapes.npk"), 4);
}

#[test]
fn store_with_deletions_reads_logical_rows() {
    assert_eq!(check_store("modified.npk"), 2);
    let (_tmp, path) = copy_store("modified.npk");
    let store = Store::open(&path, OpenOptions::default()).unwrap();
    let info = store.info("a").unwrap();
    assert_eq!((info.shape.clone(), info.physical_rows), (vec![22, 4], 25));
    // Row reads go through the deletion bitmap too.
    let (_, _, want) = read_npy(&fixtures().join("expected/modified.a.npy"));
    let mut row = vec![0u8; 16];
    store.read_rows_into("a", &[-1], &mut row).unwrap();
    assert_eq!(row, want[want.len() - 16..]);
}

#[test]
fn fixture_store_keeps_working_after_changes_and_reopen() {
    let (_tmp, path) = copy_store("modified.npk");
    let store = Store::open(&path, OpenOptions::default()).unwrap();
    store.append("b", DType::Int64, &[1, 2], &[7u8; 16]).unwrap();
    store.compact("a").unwrap();
    store.close().unwrap();
    let store = Store::open(&path, OpenOptions::default()).unwrap();
    assert_eq!(store.info("b").unwrap().shape, vec![10, 2]);
    assert_eq!(store.info("a").unwrap().physical_rows, 22);
    assert!(!path.join("deleted_a.npkb").exists());
}
