//! safetensors interop: a file the reference `safetensors` package wrote (every dtype
//! numpack maps, metadata, an empty tensor), export/import round trips, selection,
//! names, unsupported dtypes, atomicity under cancellation, and hostile headers, which
//! must give clear errors and never a panic or a huge allocation.

use std::fs;
use std::path::{Path, PathBuf};

use numpack::safetensors::{self, ExportOptions, ImportOptions};
use numpack::{DType, ErrorCode, OpenOptions, Store};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/safetensors")
}

fn store(dir: &Path) -> Store {
    Store::open(dir.join("store"), OpenOptions { create: true, ..Default::default() }).unwrap()
}

/// A file of `json` (padded to 8 bytes) followed by `data`.
fn raw(json: &str, data: &[u8]) -> Vec<u8> {
    let mut j = json.as_bytes().to_vec();
    while j.len() % 8 != 0 {
        j.push(b' ');
    }
    let mut out = (j.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&j);
    out.extend_from_slice(data);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

fn err<T: std::fmt::Debug>(r: numpack::Result<T>) -> (ErrorCode, String) {
    let e = r.unwrap_err();
    (e.code, e.message)
}

fn all(overwrite: bool) -> ImportOptions<'static> {
    ImportOptions { names: None, overwrite }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn imports_the_reference_writers_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let path = fixture().join("all_dtypes.safetensors");
    let expected: serde_json::Value = serde_json::from_str(&fs::read_to_string(fixture().join("expected.json")).unwrap()).unwrap();
    let info = safetensors::info(&path).unwrap();
    let mut meta = info.header.metadata.clone();
    meta.sort();
    assert_eq!(meta, vec![("format".to_string(), "pt".to_string()), ("note".to_string(), "fixture".to_string())]);
    let names = safetensors::import(&s, &path, &all(false), None).unwrap();
    let expected = expected.as_object().unwrap();
    assert_eq!(names.len(), expected.len());
    for (name, want) in expected {
        let (ai, data) = s.load(name).unwrap();
        assert_eq!(ai.dtype.numpy_name(), want["dtype"].as_str().unwrap(), "{name}");
        let shape: Vec<u64> = want["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
        assert_eq!(ai.shape, shape, "{name}");
        assert_eq!(hex(&data), want["hex"].as_str().unwrap(), "{name}");
    }
    assert_eq!(s.info("empty.rows").unwrap().shape, vec![0, 4]);
}

#[test]
fn export_then_import_round_trips_every_mapped_dtype_and_respects_deleted_rows() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for d in DType::ALL.into_iter().filter(|d| d.safetensors_name().is_some()) {
        let data: Vec<u8> = (0..(6 * d.size()) as u32).map(|i| if d == DType::Bool { (i % 2) as u8 } else { (i * 7 + 3) as u8 }).collect();
        s.save(&format!("a.{}", d.numpy_name()), d, &[3, 2], &data).unwrap();
    }
    s.save("rows", DType::Int32, &[4], &[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]).unwrap();
    s.delete_rows("rows", &[1]).unwrap();
    s.save("nothing", DType::Float64, &[0, 3], &[]).unwrap();
    let file = dir.path().join("out.safetensors");
    let meta = vec![("k".to_string(), "v \"quoted\"".to_string())];
    let written = safetensors::export(&s, &file, &ExportOptions { names: None, metadata: &meta, overwrite: false }, None).unwrap();
    let info = safetensors::info(&file).unwrap();
    assert_eq!(info.header.metadata, meta);
    assert_eq!(info.header_len % 8, 0);
    for t in &info.header.tensors {
        let size = t.dtype.unwrap().size() as u64;
        assert_eq!((info.data_offset + t.begin) % size, 0, "{} is not aligned", t.name);
    }
    let mut sorted_written = written.tensors.clone();
    sorted_written.sort_by_key(|t| t.begin);
    assert_eq!(sorted_written, info.header.tensors);
    assert_eq!(info.header.tensors.iter().find(|t| t.name == "rows").unwrap().shape, vec![3]);

    let s2 = Store::open(dir.path().join("back"), OpenOptions { create: true, ..Default::default() }).unwrap();
    let mut names = safetensors::import(&s2, &file, &all(false), None).unwrap();
    names.sort();
    assert_eq!(names, s.names().unwrap());
    for n in &names {
        assert_eq!(s2.load(n).unwrap().1, s.load(n).unwrap().1, "{n}");
        assert_eq!(s2.info(n).unwrap().dtype, s.info(n).unwrap().dtype);
    }
    assert_eq!(s2.load("rows").unwrap().1, vec![1, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]);

    // Existing target / existing arrays.
    let opts = ExportOptions { names: None, metadata: &[], overwrite: false };
    assert_eq!(err(safetensors::export(&s, &file, &opts, None)).0, ErrorCode::AlreadyExists);
    assert_eq!(err(safetensors::import(&s2, &file, &all(false), None)).0, ErrorCode::AlreadyExists);
    safetensors::import(&s2, &file, &all(true), None).unwrap();
}

#[test]
fn selection_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let data = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let path = write(
        dir.path(),
        "f.safetensors",
        &raw(r#"{"a.b":{"dtype":"U8","shape":[2,2],"data_offsets":[0,4]},"x/y":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#, &data),
    );
    // A key with '/' cannot name an array: nothing is imported.
    let (code, msg) = err(safetensors::import(&s, &path, &all(false), None));
    assert_eq!(code, ErrorCode::InvalidName);
    assert!(msg.contains("x/y"), "{msg}");
    assert!(s.names().unwrap().is_empty());
    // Selecting the others works; order follows the selection.
    let sel = vec!["a.b".to_string()];
    assert_eq!(safetensors::import(&s, &path, &ImportOptions { names: Some(&sel), overwrite: false }, None).unwrap(), sel);
    assert_eq!(s.load("a.b").unwrap().1, vec![1, 2, 3, 4]);
    let missing = vec!["nope".to_string()];
    let (code, msg) = err(safetensors::import(&s, &path, &ImportOptions { names: Some(&missing), overwrite: true }, None));
    assert_eq!(code, ErrorCode::NotFound);
    assert!(msg.contains("nope"), "{msg}");
    let twice = vec!["a.b".to_string(), "a.b".to_string()];
    assert_eq!(err(safetensors::import(&s, &path, &ImportOptions { names: Some(&twice), overwrite: true }, None)).0, ErrorCode::InvalidArgument);

    // Export: selection, `__metadata__` and complex128 refused, by name.
    s.save("__metadata__", DType::Uint8, &[1], &[0]).unwrap();
    s.save("c", DType::Complex128, &[1], &[0; 16]).unwrap();
    let out = dir.path().join("o.safetensors");
    let pick = |n: &str| vec![n.to_string()];
    let (code, msg) = err(safetensors::export(&s, &out, &ExportOptions { names: Some(&pick("__metadata__")), ..Default::default() }, None));
    assert_eq!(code, ErrorCode::InvalidName);
    assert!(msg.contains("__metadata__"));
    let (code, msg) = err(safetensors::export(&s, &out, &ExportOptions { names: Some(&pick("c")), ..Default::default() }, None));
    assert_eq!(code, ErrorCode::Unsupported);
    assert!(msg.contains("complex128") && msg.contains("\"c\""), "{msg}");
    assert_eq!(err(safetensors::export(&s, &out, &ExportOptions { names: Some(&pick("zz")), ..Default::default() }, None)).0, ErrorCode::NotFound);
    assert!(!out.exists());
    let h = safetensors::export(&s, &out, &ExportOptions { names: Some(&pick("a.b")), ..Default::default() }, None).unwrap();
    assert_eq!(h.tensors.len(), 1);
    assert_eq!(fs::read(&out).unwrap(), raw(r#"{"a.b":{"dtype":"U8","shape":[2,2],"data_offsets":[0,4]}}"#, &[1, 2, 3, 4]));
}

#[test]
fn unmapped_dtypes_and_0d_tensors_are_read_but_not_imported() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let path = write(
        dir.path(),
        "bf.safetensors",
        &raw(
            r#"{"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"s":{"dtype":"F32","shape":[],"data_offsets":[4,8]},"q":{"dtype":"F4","shape":[3,2],"data_offsets":[8,11]},"ok":{"dtype":"I8","shape":[1],"data_offsets":[11,12]}}"#,
            &[0; 12],
        ),
    );
    let info = safetensors::info(&path).unwrap();
    let names: Vec<_> = info.header.tensors.iter().map(|t| (t.name.as_str(), t.dtype_name.as_str(), t.dtype)).collect();
    assert_eq!(names, vec![("w", "BF16", None), ("s", "F32", Some(DType::Float32)), ("q", "F4", None), ("ok", "I8", Some(DType::Int8))]);
    let (code, msg) = err(safetensors::import(&s, &path, &all(false), None));
    assert_eq!(code, ErrorCode::Unsupported);
    assert!(msg.contains("BF16") && msg.contains("\"w\""), "{msg}");
    let (code, msg) = err(safetensors::import(&s, &path, &ImportOptions { names: Some(&["s".into()]), overwrite: false }, None));
    assert_eq!(code, ErrorCode::ShapeMismatch);
    assert!(msg.contains("0-d"), "{msg}");
    assert!(s.names().unwrap().is_empty());
    safetensors::import(&s, &path, &ImportOptions { names: Some(&["ok".into()]), overwrite: false }, None).unwrap();
}

#[test]
fn cancelled_import_and_export_leave_nothing_half_done() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let big: Vec<u8> = (0..(10u32 << 20)).map(|i| i as u8).collect();
    s.save("big", DType::Uint8, &[10 << 10, 1024], &big).unwrap();
    s.save("small", DType::Float32, &[2], &[0; 8]).unwrap();
    let file = dir.path().join("x.safetensors");
    let mut calls = Vec::new();
    let mut cb = |done: u64, total: u64| {
        calls.push((done, total));
        true
    };
    safetensors::export(&s, &file, &ExportOptions::default(), Some(&mut cb)).unwrap();
    assert_eq!(calls.first(), Some(&(0, (10 << 20) + 8)));
    assert_eq!(calls.last(), Some(&((10 << 20) + 8, (10 << 20) + 8)));
    assert!(calls.len() >= 4, "{calls:?}");
    let before = fs::read(&file).unwrap();

    let mut n = 0;
    let mut stop = |_: u64, _: u64| {
        n += 1;
        n < 3
    };
    let opts = ExportOptions { overwrite: true, ..Default::default() };
    s.save("small", DType::Float32, &[3], &[1; 12]).unwrap();
    assert_eq!(err(safetensors::export(&s, &file, &opts, Some(&mut stop))).0, ErrorCode::Cancelled);
    assert_eq!(fs::read(&file).unwrap(), before);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2, "a temporary file was left");

    let s2 = Store::open(dir.path().join("s2"), OpenOptions { create: true, ..Default::default() }).unwrap();
    let mut n = 0;
    let mut stop = |_: u64, _: u64| {
        n += 1;
        n < 3
    };
    assert_eq!(err(safetensors::import(&s2, &file, &all(false), Some(&mut stop))).0, ErrorCode::Cancelled);
    assert!(s2.names().unwrap().is_empty(), "{:?}", s2.names());
    safetensors::import(&s2, &file, &all(false), None).unwrap();
    assert_eq!(s2.load("big").unwrap().1, big);
}

/// Every hostile file gives the expected code with a message containing `needle`.
#[test]
fn hostile_headers_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let t = |shape: &str, offs: &str| format!(r#"{{"t":{{"dtype":"F32","shape":{shape},"data_offsets":{offs}}}}}"#);
    let mut cases: Vec<(&str, Vec<u8>, ErrorCode, &str)> = vec![
        ("empty", vec![], ErrorCode::Corrupt, "shorter than"),
        ("short", vec![1, 2, 3], ErrorCode::Corrupt, "shorter than"),
        ("huge-n", u64::MAX.to_le_bytes().to_vec(), ErrorCode::Corrupt, "limit"),
        ("n-past-end", [&200u64.to_le_bytes()[..], b"{}"].concat(), ErrorCode::Corrupt, "claims a 200-byte header"),
        ("not-json", raw("{nope", &[]), ErrorCode::Corrupt, "bad JSON"),
        ("not-object", raw("[1,2]", &[]), ErrorCode::Corrupt, "start with '{'"),
        ("trailing-garbage", raw("{} x", &[]), ErrorCode::Corrupt, "bad JSON"),
        ("not-utf8", [&8u64.to_le_bytes()[..], b"{\"\xff\":1}  "].concat(), ErrorCode::Corrupt, "UTF-8"),
        ("dup-key", raw(&format!("{{{0},{0}}}", r#""t":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}"#), &[]), ErrorCode::Corrupt, "twice"),
        ("dup-field", raw(r#"{"t":{"dtype":"U8","dtype":"U8","shape":[0],"data_offsets":[0,0]}}"#, &[]), ErrorCode::Corrupt, "twice"),
        ("dup-meta", raw(r#"{"__metadata__":{"a":"1","a":"2"}}"#, &[]), ErrorCode::Corrupt, "twice"),
        ("meta-not-string", raw(r#"{"__metadata__":{"a":1}}"#, &[]), ErrorCode::Corrupt, "__metadata__"),
        ("missing-field", raw(r#"{"t":{"dtype":"U8","shape":[1]}}"#, &[0; 8]), ErrorCode::Corrupt, "data_offsets"),
        ("unknown-dtype", raw(r#"{"t":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}"#, &[0]), ErrorCode::Unsupported, "Q7"),
        ("negative", raw(&t("[-1]", "[0,4]"), &[0; 4]), ErrorCode::Corrupt, "bad JSON"),
        ("float-dim", raw(&t("[1.5]", "[0,4]"), &[0; 4]), ErrorCode::Corrupt, "bad JSON"),
        ("size-mismatch", raw(&t("[2]", "[0,4]"), &[0; 4]), ErrorCode::Corrupt, "data_offsets"),
        ("reversed", raw(&t("[1]", "[4,0]"), &[0; 4]), ErrorCode::Corrupt, "data_offsets"),
        ("shape-overflow", raw(&t("[4294967296,4294967296,16]", "[0,4]"), &[0; 4]), ErrorCode::Corrupt, "representable"),
        ("out-of-range", raw(&t("[1]", "[0,4]"), &[0; 2]), ErrorCode::Corrupt, "cover 4 bytes"),
        ("trailing-data", raw(&t("[1]", "[0,4]"), &[0; 6]), ErrorCode::Corrupt, "cover 4 bytes"),
        ("offset-huge", raw(&t("[1]", "[18446744073709551612,18446744073709551616]"), &[0; 4]), ErrorCode::Corrupt, "bad JSON"),
        ("gap", raw(&t("[1]", "[4,8]"), &[0; 8]), ErrorCode::Corrupt, "gap"),
        (
            "overlap",
            raw(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                &[0; 8],
            ),
            ErrorCode::Corrupt,
            "overlaps",
        ),
        ("33-dims", raw(&t(&format!("[{}]", vec!["1"; 33].join(",")), "[0,4]"), &[0; 4]), ErrorCode::Unsupported, "33 dimensions"),
        ("deep", raw(&format!("{{\"t\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000)), &[]), ErrorCode::Corrupt, "bad JSON"),
    ];
    // A million dimensions of 1: read without keeping them.
    let dims = vec!["1"; 1_000_000].join(",");
    cases.push(("million-dims", raw(&t(&format!("[{dims}]"), "[0,4]"), &[0; 4]), ErrorCode::Unsupported, "1000000 dimensions"));
    for (what, bytes, code, needle) in cases {
        let path = write(dir.path(), &format!("{what}.safetensors"), &bytes);
        let (c, msg) = err(safetensors::info(&path));
        assert_eq!(c, code, "{what}: {msg}");
        assert!(msg.contains(needle), "{what}: {msg:?} lacks {needle:?}");
        assert!(msg.contains(&path.display().to_string()), "{what}: {msg:?} does not name the file");
        let (c, _) = err(safetensors::import(&s, &path, &all(false), None));
        assert_eq!(c, code, "{what} import");
    }
    assert!(s.names().unwrap().is_empty());
    assert_eq!(err(safetensors::info(dir.path().join("absent.safetensors"))).0, ErrorCode::NotFound);
}

/// A store NumPack 0.4.5 wrote, with deleted rows (its own bitmap): the exported tensors
/// hold exactly the live rows NumPack's `load` returns (its `.npy` dumps).
#[test]
fn exports_a_store_numpack_wrote_with_deleted_rows() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream-numpack-0.4.5");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("modified.npk");
    fs::create_dir(&copy).unwrap();
    for e in fs::read_dir(fixtures.join("modified.npk")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    let s = Store::open(&copy, OpenOptions { read_only: true, ..Default::default() }).unwrap();
    let file = dir.path().join("m.safetensors");
    safetensors::export(&s, &file, &ExportOptions::default(), None).unwrap();
    let info = safetensors::info(&file).unwrap();
    let bytes = fs::read(&file).unwrap();
    for name in ["a", "b"] {
        let want_path = fixtures.join(format!("expected/modified.{name}.npy"));
        let want = numpack::npy::info(&want_path).unwrap();
        let t = info.header.tensors.iter().find(|t| t.name == name).unwrap();
        assert_eq!(t.shape, want.shape, "{name}");
        let data = &bytes[(info.data_offset + t.begin) as usize..(info.data_offset + t.end) as usize];
        assert_eq!(data, &fs::read(&want_path).unwrap()[want.data_offset as usize..], "{name}");
    }
}
