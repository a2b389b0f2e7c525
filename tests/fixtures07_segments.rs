//! The segmented stores written by the real NumPack 0.7.0 (tests/fixtures/
//! upstream-numpack-0.7.0, `seg4096.npk` and `seg1000.npk`, made with small
//! `NUMPACK_SEGMENT_TARGET_BYTES`) open, check clean, read equal to the arrays 0.7 was
//! given, keep 0.7's segment layout, and keep working after our changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use numpack::segments::{self, Manifest};
use numpack::{DType, OpenOptions, Store};

/// `seg1000.npk` was written with a 1000-byte target; our appends use the same.
fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: every test calls this first and `Once` makes the others wait, so no thread
    // reads the environment while it is written.
    ONCE.call_once(|| unsafe { std::env::set_var("NUMPACK_SEGMENT_TARGET_BYTES", "1000") });
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream-numpack-0.7.0")
}

/// The expected arrays of one fixture store: name → (dtype, shape, bytes).
fn expected(store: &str) -> BTreeMap<String, (DType, Vec<u64>, Vec<u8>)> {
    let prefix = format!("{}.", store.trim_end_matches(".npk"));
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(fixtures().join("expected")).unwrap() {
        let path = e.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(name) = file.strip_prefix(&prefix).and_then(|n| n.strip_suffix(".npy")) else { continue };
        let info = numpack::npy::info(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap()[info.data_offset as usize..].to_vec();
        out.insert(name.to_string(), (info.dtype, info.shape, bytes));
    }
    out
}

/// Per array, the physical rows of each segment 0.7 wrote (from the fixtures' manifest.json).
fn segment_rows(store: &str) -> BTreeMap<String, Vec<u64>> {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let arrays = v[store.trim_end_matches(".npk")].as_object().unwrap();
    arrays
        .iter()
        .filter_map(|(k, a)| a.get("segment_rows").map(|r| (k.clone(), r.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect())))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn copy_store(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    copy_dir(&fixtures().join(name), &dst);
    (tmp, dst)
}

fn manifest(dir: &Path, name: &str) -> Manifest {
    segments::read_manifest(dir, name).unwrap()
}

fn assert_clean(dir: &Path) {
    let r = numpack::check::check(dir).unwrap();
    let bad: Vec<_> = r.findings.iter().filter(|f| f.severity >= numpack::check::Severity::Warning).collect();
    assert!(bad.is_empty(), "{bad:#?}");
}

fn reads_equal(store_name: &str) {
    init();
    let want = expected(store_name);
    let layout = segment_rows(store_name);
    assert!(!layout.is_empty());
    let (_tmp, path) = copy_store(store_name);
    assert_clean(&path);
    for (name, rows) in &layout {
        let m = manifest(&path, name);
        assert_eq!(&m.segments.iter().map(|s| s.rows).collect::<Vec<_>>(), rows, "{store_name}/{name}");
    }
    for mode in [OpenOptions { read_only: true, ..Default::default() }, OpenOptions::default()] {
        let store = Store::open(&path, mode).unwrap();
        assert_eq!(store.names().unwrap(), want.keys().cloned().collect::<Vec<_>>());
        for (name, (dtype, shape, bytes)) in &want {
            let (info, data) = store.load(name).unwrap();
            assert_eq!((info.dtype, &info.shape), (*dtype, shape), "{name}");
            assert!(data == *bytes, "{store_name}/{name}: contents differ");
            // Row by row, last to first, through the view and in one range.
            let rb = info.row_bytes() as usize;
            let rows = shape[0] as i64;
            let idx: Vec<i64> = (0..rows).rev().collect();
            let mut out = vec![0u8; data.len()];
            store.read_rows_into(name, &idx, &mut out).unwrap();
            let back: Vec<u8> = out.chunks(rb.max(1)).rev().flatten().copied().collect();
            assert!(back == *bytes, "{name}: rows");
            let v = store.view(name, false).unwrap();
            let got: Vec<u8> = match v.row_map() {
                None => v.bytes().to_vec(),
                Some(m) => m.iter().flat_map(|&p| v.bytes()[p as usize * rb..(p as usize + 1) * rb].to_vec()).collect(),
            };
            assert!(got == *bytes, "{name}: view");
        }
    }
    assert_clean(&path);
}

#[test]
fn seg4096_reads_equal() {
    reads_equal("seg4096.npk");
}

#[test]
fn seg1000_reads_equal() {
    reads_equal("seg1000.npk");
}

/// Our changes keep the arrays right and leave a store that checks clean; NumPack 0.7
/// reading them back is tested by tests/interop/segments.sh.
#[test]
fn changes_to_0_7_segments_read_back() {
    init();
    let want = expected("seg1000.npk");
    let (_tmp, path) = copy_store("seg1000.npk");
    let store = Store::open(&path, OpenOptions::default()).unwrap();
    // f32_2d: 100 rows of 36 bytes in segments of 27 rows (0.7's 1000-byte target).
    let (dtype, shape, bytes) = &want["f32_2d"];
    let rb = 36usize;
    let mut rows: Vec<Vec<u8>> = bytes.chunks(rb).map(<[u8]>::to_vec).collect();
    let add: Vec<u8> = (0..30 * rb).map(|i| i as u8).collect();
    store.append("f32_2d", *dtype, &[30, shape[1]], &add).unwrap();
    rows.extend(add.chunks(rb).map(<[u8]>::to_vec));
    store.replace_rows("f32_2d", *dtype, &[26, 27, 53, 54, 129], &vec![7u8; 5 * rb]).unwrap();
    for i in [26, 27, 53, 54, 129] {
        rows[i] = vec![7u8; rb];
    }
    store.delete_rows("f32_2d", &[0, 27, 28, 99]).unwrap();
    for i in [99, 28, 27, 0] {
        rows.remove(i);
    }
    store.compact("deleted_appended").unwrap();
    store.close().unwrap();
    assert_clean(&path);
    let store = Store::open(&path, OpenOptions { read_only: true, ..Default::default() }).unwrap();
    assert_eq!(store.load("f32_2d").unwrap().1, rows.concat());
    assert_eq!(store.load("deleted_appended").unwrap().1, want["deleted_appended"].2);
    assert_eq!(manifest(&path, "deleted_appended").segments.iter().map(|s| s.rows).collect::<Vec<_>>(), vec![62, 62, 62, 39]);
    assert!(!path.join("deleted_deleted_appended.npkb").exists());
    // The appended rows topped up the last segment (19 rows) to 27, then a new one.
    let m = manifest(&path, "f32_2d");
    assert_eq!(m.segments.iter().map(|s| s.rows).collect::<Vec<_>>(), vec![27, 27, 27, 27, 22]);
}
