//! NumPack 0.7's segmented arrays (`data_<name>.npkseg` + `data_<name>_segments/`): stores
//! built file by file exactly as 0.7 writes them, then every read path, every mutation,
//! check, packages and hostile manifests.
//!
//! Appends and compactions size segments from `NUMPACK_SEGMENT_TARGET_BYTES`, as NumPack
//! 0.7 does; every test sets it (once, before any store is touched) to [`TARGET`].

mod common;
mod seg07;

use seg07::*;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use numpack::check::{self, ids};
use numpack::metadata;
use numpack::segments::{self, Manifest};
use numpack::{DType, ErrorCode, OpenOptions, Store};

/// The segment target appends and compactions use: two pages.
const TARGET: u64 = 8192;

fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: every test calls this first, and `Once` makes the others wait, so no thread
    // reads the environment while it is written.
    ONCE.call_once(|| unsafe { std::env::set_var("NUMPACK_SEGMENT_TARGET_BYTES", TARGET.to_string()) });
}


/// The layouts tested: 1-D to 3-D, several dtypes, segment sizes that are and are not
/// page multiples, single-row segments and a last segment partly filled.
fn layouts() -> Vec<Array07> {
    vec![
        arr("f32_2d", DType::Float32, &[100, 3], 1, Some(120)), // 12-byte rows, 10 per segment
        arr("i64_1d", DType::Int64, &[37], 2, Some(8)),          // one row per segment
        arr("u8_3d", DType::Uint8, &[50, 2, 5], 3, Some(70)),    // 7 rows per segment, last 1
        arr("f64_aligned", DType::Float64, &[40, 64], 4, Some(4096)), // page-sized segments
        arr("c64", DType::Complex64, &[9, 2], 5, Some(40)),
        arr("bool", DType::Bool, &[33], 6, Some(10)),
        arr("plain", DType::Int32, &[20, 2], 7, None),
        arr("empty", DType::Float32, &[0, 4], 8, Some(64)), // no segment at all
        arr("f16_3d", DType::Float16, &[31, 3, 3], 9, Some(100)), // 18-byte rows, 5 per segment
    ]
}

fn open(dir: &Path) -> Store {
    Store::open(dir, OpenOptions::default()).unwrap()
}

fn open_ro(dir: &Path) -> Store {
    Store::open(dir, OpenOptions { read_only: true, ..Default::default() }).unwrap()
}

fn rows_of(data: &[u8], rb: usize) -> Vec<&[u8]> {
    if rb == 0 { vec![] } else { data.chunks(rb).collect() }
}

/// Every read path agrees with `want` (the array's logical rows).
fn check_reads(s: &Store, name: &str, dtype: DType, shape: &[u64], want: &[u8]) {
    let info = s.info(name).unwrap();
    assert_eq!(info.dtype, dtype, "{name}");
    assert_eq!(info.shape, shape, "{name}");
    let (_, all) = s.load(name).unwrap();
    assert_eq!(all, want, "{name}: load");
    let rb = row_bytes(dtype, shape) as usize;
    let rows = shape[0];
    let rs = rows_of(want, rb);
    // Every range of a small array; of a larger one, every 3-row range (so every segment
    // boundary is crossed) and random ones.
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    if rows <= 40 {
        ranges.extend((0..=rows).flat_map(|a| (a..=rows).map(move |b| (a, b))));
    } else {
        ranges.extend((0..rows - 3).map(|a| (a, a + 3)));
        let mut r = common::Rng::new(rows * 7);
        for _ in 0..200 {
            let a = r.below(rows + 1);
            ranges.push((a, r.range(a, rows)));
        }
    }
    for (start, stop) in ranges {
        let mut out = vec![0u8; (stop - start) as usize * rb];
        s.read_range_into(name, start, stop, &mut out).unwrap();
        assert_eq!(out, &want[start as usize * rb..stop as usize * rb], "{name}: rows {start}..{stop}");
    }
    // Random rows, negative ones and repeats.
    let mut r = common::Rng::new(rows);
    let idx: Vec<i64> = (0..rows * 2).map(|_| r.below(rows.max(1)) as i64 - if r.chance(300) { rows as i64 } else { 0 }).collect();
    if rows > 0 {
        let mut out = vec![0u8; idx.len() * rb];
        s.read_rows_into(name, &idx, &mut out).unwrap();
        let exp: Vec<u8> = idx.iter().flat_map(|&i| rs[if i < 0 { (i + rows as i64) as usize } else { i as usize }].to_vec()).collect();
        assert_eq!(out, exp, "{name}: read_rows");
    }
    let e = s.read_rows_into(name, &[rows as i64], &mut vec![0u8; rb]).unwrap_err();
    assert_eq!(e.code, ErrorCode::IndexOutOfRange);
    // A view: logical rows through its row map.
    let v = s.view(name, false).unwrap();
    let got: Vec<u8> = match v.row_map() {
        None => v.bytes().to_vec(),
        Some(m) => m.iter().flat_map(|&p| v.bytes()[p as usize * rb..(p as usize + 1) * rb].to_vec()).collect(),
    };
    assert_eq!(got, want, "{name}: view");
    // A stream, in batches that straddle segments.
    let mut st = s.stream(name, 3).unwrap();
    let mut buf = vec![0u8; 3 * rb];
    let mut streamed = Vec::new();
    loop {
        let n = st.next_into(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        streamed.extend_from_slice(&buf[..n as usize * rb]);
    }
    assert_eq!(streamed, want, "{name}: stream");
}

fn assert_clean(dir: &Path) {
    let r = check::check(dir).unwrap();
    let bad: Vec<_> = r.findings.iter().filter(|f| f.severity >= check::Severity::Warning).collect();
    assert!(bad.is_empty(), "check found {bad:#?}");
}

fn manifest(dir: &Path, name: &str) -> Manifest {
    Manifest::parse(&fs::read(dir.join(segments::manifest_file(name))).unwrap(), name).unwrap()
}

/// Names, sizes and contents of every file under `dir`.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walk(dir) {
        let rel = e.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        out.insert(rel, fs::read(&e).unwrap_or_default());
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn every_read_path_reads_0_7_segments() {
    init();
    let d = tempfile::tempdir().unwrap();
    let arrays = layouts();
    make07(d.path(), &arrays);
    assert_clean(d.path());
    let before = snapshot(d.path());
    {
        let s = open_ro(d.path());
        for a in &arrays {
            check_reads(&s, a.name, a.dtype, &a.shape, &a.data);
        }
        assert!(s.view("f32_2d", true).is_err());
    }
    // The log (numpack.wal) is created by any open of a writable directory, as for every
    // store; nothing of NumPack's format may change.
    let mut after = snapshot(d.path());
    after.remove("numpack.wal");
    let changed: Vec<&String> = after.keys().filter(|k| before.get(*k) != after.get(*k)).chain(before.keys().filter(|k| !after.contains_key(*k))).collect();
    assert!(changed.is_empty(), "a read-only open changed {changed:?}");
    let s = open(d.path());
    for a in &arrays {
        check_reads(&s, a.name, a.dtype, &a.shape, &a.data);
    }
    let e = s.view("f32_2d", true).unwrap_err();
    assert_eq!(e.code, ErrorCode::Unsupported);
    assert!(e.message.contains("segments"), "{}", e.message);
}

#[test]
fn vector_search_reads_segments() {
    init();
    let d = tempfile::tempdir().unwrap();
    let mut a = arr("v", DType::Float32, &[30, 4], 9, Some(48));
    let floats: Vec<f32> = (0..120).map(|i| (i as f32 * 0.37).sin()).collect();
    a.data = floats.iter().flat_map(|f| f.to_le_bytes()).collect();
    let mut p = arr("p", DType::Float32, &[30, 4], 9, None);
    p.data = a.data.clone();
    make07(d.path(), &[a, p]);
    let s = open_ro(d.path());
    let q: Vec<u8> = floats[40..44].iter().flat_map(|f| f.to_le_bytes()).collect();
    let top = |name: &str| {
        let qv = numpack::vector::Vectors::new(DType::Float32, 4, &q).unwrap();
        let mut idx = [0u64; 5];
        let mut sc = [0f64; 5];
        numpack::vector::store_top_k_into(&s, name, numpack::vector::Metric::L2, qv, 5, &mut idx, &mut sc).unwrap();
        (idx, sc)
    };
    let (seg, plain) = (top("v"), top("p"));
    assert_eq!(seg, plain);
    assert_eq!(seg.0[0], 10);
}

/// Model of one array's logical rows.
struct Model {
    dtype: DType,
    shape: Vec<u64>,
    rows: Vec<Vec<u8>>,
}

impl Model {
    fn of(a: &Array07) -> Model {
        let rb = row_bytes(a.dtype, &a.shape) as usize;
        Model { dtype: a.dtype, shape: a.shape.clone(), rows: a.data.chunks(rb).map(<[u8]>::to_vec).collect() }
    }
    fn data(&self) -> Vec<u8> {
        self.rows.concat()
    }
    fn logical_shape(&self) -> Vec<u64> {
        let mut s = self.shape.clone();
        s[0] = self.rows.len() as u64;
        s
    }
    fn check(&self, s: &Store, name: &str) {
        check_reads(s, name, self.dtype, &self.logical_shape(), &self.data());
    }
}

#[test]
fn mutations_keep_segments_as_0_7_lays_them_out() {
    init();
    let d = tempfile::tempdir().unwrap();
    let arrays = layouts();
    make07(d.path(), &arrays);
    let s = open(d.path());
    let mut models: BTreeMap<&str, Model> = arrays.iter().map(|a| (a.name, Model::of(a))).collect();
    for (k, a) in arrays.iter().enumerate() {
        let m = models.get_mut(a.name).unwrap();
        let rb = row_bytes(a.dtype, &a.shape);
        let seed = 100 + k as u64;
        // Append: tops up the last segment to TARGET, then adds segments of TARGET bytes.
        let before = if a.target.is_some() { Some(manifest(d.path(), a.name)) } else { None };
        let add = (2 * TARGET / rb + 3).max(3);
        let mut shape = a.shape.clone();
        shape[0] = add;
        let data = bytes(seed, (add * rb) as usize);
        let data: Vec<u8> = if a.dtype == DType::Bool { data.iter().map(|b| b & 1).collect() } else { data };
        s.append(a.name, a.dtype, &shape, &data).unwrap();
        m.rows.extend(data.chunks(rb as usize).map(<[u8]>::to_vec));
        if let Some(before) = before {
            let after = manifest(d.path(), a.name);
            let (want, _) = before.plan_append(a.name, rb, add, TARGET);
            assert_eq!(after, want, "{}: segments after append", a.name);
            assert!(after.segments.len() > before.segments.len());
            assert_eq!(after.segments.last().unwrap().file, segments::segment_file(a.name, after.segments.len() - 1));
        }
        m.check(&s, a.name);
        // Replace rows spread over several segments, and a range across boundaries.
        let n = m.rows.len() as i64;
        let idx = vec![0, n / 3, n / 2, n - 1, -2];
        let newrows: Vec<u8> = idx.iter().enumerate().flat_map(|(i, _)| vec![(i as u8 + 1) & if a.dtype == DType::Bool { 1 } else { 0xff }; rb as usize]).collect();
        s.replace_rows(a.name, a.dtype, &idx, &newrows).unwrap();
        for (i, &j) in idx.iter().enumerate() {
            let j = if j < 0 { (j + n) as usize } else { j as usize };
            m.rows[j] = newrows[i * rb as usize..(i + 1) * rb as usize].to_vec();
        }
        let span = (m.rows.len() as u64 / 2).min(25);
        let fill: Vec<u8> = vec![if a.dtype == DType::Bool { 1 } else { 0x5a }; (span * rb) as usize];
        s.replace_range(a.name, a.dtype, 1, span, &fill).unwrap();
        for r in 0..span as usize {
            m.rows[1 + r] = fill[..rb as usize].to_vec();
        }
        m.check(&s, a.name);
        // Delete rows (the bitmap), then compact.
        let del: Vec<i64> = (0..m.rows.len() as i64).filter(|i| i % 3 == 1).collect();
        s.delete_rows(a.name, &del).unwrap();
        let mut i = 0;
        m.rows.retain(|_| {
            i += 1;
            (i - 1) % 3 != 1
        });
        m.check(&s, a.name);
        s.compact(a.name).unwrap();
        m.check(&s, a.name);
        let live = m.rows.len() as u64 * rb;
        let seg = d.path().join(segments::manifest_file(a.name)).exists();
        if a.target.is_some() {
            // 0.7's rule: still segmented while the live bytes exceed the target.
            assert_eq!(seg, live > TARGET, "{}: {live} live bytes", a.name);
            if seg {
                let mf = manifest(d.path(), a.name);
                assert!(mf.segments[..mf.segments.len() - 1].iter().all(|x| x.bytes == TARGET / rb * rb));
                let on_disk = fs::read_dir(d.path().join(segments::dir_name(a.name))).unwrap().count();
                assert_eq!(on_disk, mf.segments.len(), "{}: old segments left", a.name);
            } else {
                assert!(!d.path().join(segments::dir_name(a.name)).exists());
            }
        }
        assert_clean(d.path());
    }
    // A fresh handle sees the same.
    drop(s);
    assert_clean(d.path());
    let s = open_ro(d.path());
    for (name, m) in &models {
        m.check(&s, name);
    }
    drop(s);
    let s = open(d.path());

    // Rename moves the directory and rewrites the manifest's names.
    assert!(d.path().join(segments::manifest_file("u8_3d")).exists());
    s.rename("u8_3d", "moved").unwrap();
    let m = models.remove("u8_3d").unwrap();
    m.check(&s, "moved");
    assert!(!d.path().join(segments::dir_name("u8_3d")).exists());
    assert!(!d.path().join(segments::manifest_file("u8_3d")).exists());
    assert!(manifest(d.path(), "moved").segments.iter().all(|x| x.file.starts_with("data_moved_segments/")));
    models.insert("moved", m);
    assert_clean(d.path());

    // Clone of a segmented array: a plain copy NumPack 0.4.5 can read too.
    s.clone_array("moved", "copy").unwrap();
    models["moved"].check(&s, "copy");
    assert!(d.path().join("data_copy.npkd").exists());

    // Saving over a segmented array replaces it with a plain file; the segments go.
    let new = bytes(7, 16 * 4);
    s.save("f64_aligned", DType::Int32, &[16], &new).unwrap();
    assert_eq!(s.load("f64_aligned").unwrap().1, new);
    assert!(!d.path().join(segments::manifest_file("f64_aligned")).exists());
    assert!(!d.path().join(segments::dir_name("f64_aligned")).exists());
    models.remove("f64_aligned");

    // Drop removes manifest and directory.
    s.drop_array("moved").unwrap();
    assert!(!d.path().join(segments::manifest_file("moved")).exists());
    assert!(!d.path().join(segments::dir_name("moved")).exists());
    models.remove("moved");
    assert_clean(d.path());
    drop(s);
    let s = open(d.path());
    for (name, m) in &models {
        m.check(&s, name);
    }
    // Reset removes every segment file.
    s.reset().unwrap();
    let left: Vec<_> = fs::read_dir(d.path()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("data_")).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn packages_carry_manifest_and_segments() {
    init();
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("s");
    let arrays = layouts();
    make07(&store, &arrays);
    let pkg = d.path().join("s.npkg");
    let s = open(&store);
    s.delete_rows("f32_2d", &[3, 50]).unwrap();
    let info = numpack::package::pack(&s, &pkg, &Default::default(), None).unwrap();
    let names: Vec<&str> = info.entries.iter().map(|e| e.name.as_str()).collect();
    assert!(names.contains(&"data_f32_2d.npkseg"), "{names:?}");
    assert!(names.contains(&"data_f32_2d_segments/seg_000009.npkd"), "{names:?}");
    let out = d.path().join("u");
    numpack::package::unpack(&pkg, &out, false, true, None).unwrap();
    assert_clean(&out);
    let u = open_ro(&out);
    for a in &arrays {
        assert_eq!(u.load(a.name).unwrap(), s.load(a.name).unwrap(), "{}", a.name);
    }
}

/// Writes a package file holding `files` (name, bytes) raw, as NumPack's layout.
fn raw_package(path: &Path, files: &[(String, Vec<u8>)]) {
    let mut b = Vec::new();
    b.extend_from_slice(b"NPKG");
    b.extend_from_slice(&2u32.to_le_bytes());
    b.push(0);
    b.extend_from_slice(&(files.len() as u32).to_le_bytes());
    let mut footer = crc32fast::Hasher::new();
    for (n, data) in files {
        b.extend_from_slice(&(n.len() as u32).to_le_bytes());
        b.extend_from_slice(n.as_bytes());
        b.extend_from_slice(&(data.len() as u64).to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(data);
        footer.update(&crc32fast::hash(data).to_le_bytes());
    }
    b.extend_from_slice(&footer.finalize().to_le_bytes());
    fs::write(path, b).unwrap();
}

#[test]
fn hostile_packages_cannot_escape_or_lie() {
    init();
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("s");
    make07(&store, &[arr("a", DType::Int16, &[10], 1, Some(6))]);
    let files: Vec<(String, Vec<u8>)> = snapshot(&store).into_iter().collect();
    let ok = d.path().join("ok.npkg");
    raw_package(&ok, &files);
    numpack::package::unpack(&ok, &d.path().join("ok"), false, true, None).unwrap();
    let bad_names = ["data_a_segments/../../x.npkd", "/tmp/x", "data_a_segments/sub/seg_000000.npkd", "data_b_segments/x", "../data_a.npkd"];
    for (k, bad) in bad_names.iter().enumerate() {
        let mut f = files.clone();
        f.push((bad.to_string(), vec![1, 2]));
        let p = d.path().join(format!("bad{k}.npkg"));
        raw_package(&p, &f);
        let e = numpack::package::unpack(&p, &d.path().join(format!("bad{k}")), false, true, None).unwrap_err();
        assert_eq!(e.code, ErrorCode::Corrupt, "{bad}: {e:?}");
    }
    // A segment cut short, or missing, is caught before the store appears.
    let mut f = files.clone();
    let seg = f.iter_mut().find(|(n, _)| n.ends_with("seg_000001.npkd")).unwrap();
    seg.1.pop();
    raw_package(&d.path().join("short.npkg"), &f);
    let e = numpack::package::unpack(&d.path().join("short.npkg"), &d.path().join("short"), false, true, None).unwrap_err();
    assert!(e.message.contains("seg_000001"), "{e:?}");
    assert!(!d.path().join("short").exists());
    let f: Vec<_> = files.iter().filter(|(n, _)| !n.ends_with("seg_000002.npkd")).cloned().collect();
    raw_package(&d.path().join("missing.npkg"), &f);
    let e = numpack::package::unpack(&d.path().join("missing.npkg"), &d.path().join("missing"), false, true, None).unwrap_err();
    assert!(e.message.contains("seg_000002"), "{e:?}");
}

/// A damaged store: the array fails with a clear `Corrupt` error, the other arrays still
/// read, and check names the file and the damage.
fn expect_damage(name: &str, damage: impl FnOnce(&Path), id: &str, says: &str) {
    init();
    let d = tempfile::tempdir().unwrap();
    make07(d.path(), &[arr("a", DType::Float32, &[20, 3], 1, Some(60)), arr("ok", DType::Uint8, &[5], 2, Some(2))]);
    damage(d.path());
    let r = check::check(d.path()).unwrap();
    let f = r.findings.iter().find(|f| f.id == id).unwrap_or_else(|| panic!("{name}: no {id} in {:#?}", r.findings));
    assert!(f.message.contains(says), "{name}: {}", f.message);
    assert_eq!(f.array.as_deref(), Some("a"), "{name}");
    for s in [open_ro(d.path()), open(d.path())] {
        let e = s.load("a").unwrap_err();
        assert!(matches!(e.code, ErrorCode::Corrupt | ErrorCode::Io), "{name}: {e:?}");
        assert!(e.message.contains(says) || e.message.contains("data_a"), "{name}: {}", e.message);
        assert!(s.read_rows_into("a", &[0], &mut [0u8; 12]).is_err());
        assert!(s.view("a", false).is_err());
        assert!(s.append("a", DType::Float32, &[1, 3], &[0; 12]).is_err(), "{name}: append");
        assert_eq!(s.load("ok").unwrap().1.len(), 5);
    }
}

fn edit_manifest(dir: &Path, text: &str) {
    fs::write(dir.join("data_a.npkseg"), text).unwrap();
}

#[test]
fn bad_json_is_reported() {
    expect_damage("bad json", |d| edit_manifest(d, "{\"version\": 1, \"segments\": [}"), ids::SEGMENT_MANIFEST, "not valid JSON");
}

#[test]
fn rows_that_do_not_match_bytes_are_reported() {
    expect_damage(
        "rows/bytes",
        |d| {
            let mut m = manifest(d, "a");
            m.segments[1].rows += 1;
            edit_manifest(d, std::str::from_utf8(&m.encode()).unwrap());
        },
        ids::SEGMENT_MANIFEST,
        "segment 1",
    );
}

#[test]
fn rows_that_do_not_match_the_catalogue_are_reported() {
    expect_damage(
        "rows/catalogue",
        |d| {
            let mut m = manifest(d, "a");
            m.segments.pop();
            edit_manifest(d, std::str::from_utf8(&m.encode()).unwrap());
        },
        ids::SEGMENT_MANIFEST,
        "the catalogue says 20",
    );
}

#[test]
fn path_escapes_are_refused() {
    for bad in ["../outside.npkd", "/etc/passwd", "data_a_segments/../../x.npkd", "data_ok_segments/seg_000000.npkd"] {
        expect_damage(
            bad,
            |d| {
                let mut m = manifest(d, "a");
                m.segments[0].file = bad.to_string();
                edit_manifest(d, std::str::from_utf8(&m.encode()).unwrap());
            },
            ids::SEGMENT_MANIFEST,
            "must stay in the array's own directory",
        );
    }
}

#[test]
fn a_symlinked_manifest_is_refused() {
    expect_damage(
        "symlinked manifest",
        |d| {
            let m = d.join("data_a.npkseg");
            fs::rename(&m, d.join("elsewhere.json")).unwrap();
            std::os::unix::fs::symlink(d.join("elsewhere.json"), &m).unwrap();
        },
        ids::SEGMENT_MANIFEST,
        "link",
    );
}

#[test]
fn missing_segments_are_reported() {
    expect_damage("missing", |d| fs::remove_file(d.join("data_a_segments/seg_000001.npkd")).unwrap(), ids::DATA_MISSING, "seg_000001");
}

#[test]
fn short_segments_are_reported() {
    expect_damage(
        "short",
        |d| {
            let p = d.join("data_a_segments/seg_000002.npkd");
            let b = fs::read(&p).unwrap();
            fs::write(&p, &b[..b.len() - 1]).unwrap();
        },
        ids::DATA_SIZE_MISMATCH,
        "seg_000002",
    );
}

#[test]
fn symlinked_segments_are_refused() {
    expect_damage(
        "symlink",
        |d| {
            let p = d.join("data_a_segments/seg_000000.npkd");
            let outside = d.join("outside.bin");
            fs::rename(&p, &outside).unwrap();
            std::os::unix::fs::symlink(&outside, &p).unwrap();
        },
        ids::SEGMENT_FILE,
        "link",
    );
}

#[test]
fn a_symlinked_segment_directory_is_refused() {
    expect_damage(
        "symlinked dir",
        |d| {
            let sd = d.join("data_a_segments");
            let outside = d.join("elsewhere");
            fs::rename(&sd, &outside).unwrap();
            std::os::unix::fs::symlink(&outside, &sd).unwrap();
        },
        ids::SEGMENT_FILE,
        "link",
    );
}

#[test]
fn huge_counts_fail_without_allocating() {
    expect_damage(
        "huge rows",
        |d| edit_manifest(d, "{\"version\":1,\"segments\":[{\"file\":\"data_a_segments/seg_000000.npkd\",\"rows\":18446744073709551615,\"bytes\":12}]}"),
        ids::SEGMENT_MANIFEST,
        "overflow",
    );
    expect_damage(
        "huge bytes",
        |d| {
            let big = format!("{{\"version\":1,\"segments\":[{}]}}", ["{\"file\":\"data_a_segments/seg_000000.npkd\",\"rows\":1}"; 3].join(","));
            edit_manifest(d, &big)
        },
        ids::SEGMENT_MANIFEST,
        "",
    );
    expect_damage(
        "too large a file",
        |d| edit_manifest(d, &" ".repeat((segments::MAX_MANIFEST_BYTES + 1) as usize)),
        ids::SEGMENT_MANIFEST,
        "limit",
    );
}

const CRASH_STORE: &str = "NPK_SEG_CRASH_STORE";
const CRASH_SEED: &str = "NPK_SEG_CRASH_SEED";
const CRASH_PROGRESS: &str = "NPK_SEG_CRASH_PROGRESS";
/// Float32 rows of 3: 12 bytes, so TARGET segments (682 rows) are no page multiple.
const CRASH_RB: usize = 12;

/// The crash test's model: the array's current name and its logical rows.
#[derive(Clone, Debug, PartialEq)]
struct CrashModel {
    name: String,
    rows: Vec<Vec<u8>>,
}

enum CrashOp {
    Append(Vec<u8>),
    Replace(Vec<i64>, Vec<u8>),
    Delete(Vec<i64>),
    Compact,
    Rename(String),
}

/// The next operation: a function of the generator and the model only, so the parent
/// replays exactly what the child did.
fn crash_op(r: &mut common::Rng, m: &CrashModel) -> CrashOp {
    let n = m.rows.len() as u64;
    match r.below(10) {
        0..=3 => {
            let k = r.range(1, 400) as usize;
            CrashOp::Append(common::random_bytes(r, k * CRASH_RB))
        }
        4 | 5 if n > 0 => {
            let idx: Vec<i64> = (0..r.range(1, 8)).map(|_| r.below(n) as i64).collect();
            let data = common::random_bytes(r, idx.len() * CRASH_RB);
            CrashOp::Replace(idx, data)
        }
        6 | 7 if n > 100 => CrashOp::Delete((0..r.range(1, 40)).map(|_| r.below(n) as i64).collect()),
        8 => CrashOp::Compact,
        9 => CrashOp::Rename(if m.name == "s" { "t".into() } else { "s".into() }),
        _ => {
            let k = r.range(1, 50) as usize;
            CrashOp::Append(common::random_bytes(r, k * CRASH_RB))
        }
    }
}

fn crash_apply(m: &mut CrashModel, op: &CrashOp) {
    match op {
        CrashOp::Append(d) => m.rows.extend(d.chunks(CRASH_RB).map(<[u8]>::to_vec)),
        CrashOp::Replace(idx, d) => {
            for (k, &i) in idx.iter().enumerate() {
                m.rows[i as usize] = d[k * CRASH_RB..(k + 1) * CRASH_RB].to_vec();
            }
        }
        CrashOp::Delete(idx) => {
            let gone: std::collections::BTreeSet<usize> = idx.iter().map(|&i| i as usize).collect();
            let mut k = 0;
            m.rows.retain(|_| {
                k += 1;
                !gone.contains(&(k - 1))
            });
        }
        CrashOp::Compact => {}
        CrashOp::Rename(to) => m.name = to.clone(),
    }
}

fn crash_exec(s: &Store, m: &CrashModel, op: &CrashOp) -> numpack::Result<()> {
    match op {
        CrashOp::Append(d) => s.append(&m.name, DType::Float32, &[(d.len() / CRASH_RB) as u64, 3], d),
        CrashOp::Replace(idx, d) => s.replace_rows(&m.name, DType::Float32, idx, d),
        CrashOp::Delete(idx) => s.delete_rows(&m.name, idx),
        CrashOp::Compact => s.compact(&m.name),
        CrashOp::Rename(to) => s.rename(&m.name, to),
    }
}

fn crash_read(s: &Store) -> CrashModel {
    let names = s.names().unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    let (_, data) = s.load(&names[0]).unwrap();
    CrashModel { name: names[0].clone(), rows: data.chunks(CRASH_RB).map(<[u8]>::to_vec).collect() }
}

#[test]
#[ignore = "run as a child process by crash_recovery_keeps_segments_consistent"]
fn segment_crash_child() {
    let Ok(path) = std::env::var(CRASH_STORE) else { return };
    let seed = common::env_u64(CRASH_SEED, 0);
    let s = open(Path::new(&path));
    let mut m = crash_read(&s);
    let mut r = common::Rng::new(seed);
    let mut prog = fs::OpenOptions::new().create(true).append(true).open(std::env::var(CRASH_PROGRESS).unwrap()).unwrap();
    common::announce(common::READY, "");
    for _ in 0..200 {
        let op = crash_op(&mut r, &m);
        crash_exec(&s, &m, &op).unwrap();
        crash_apply(&mut m, &op);
        // One write(2) per finished operation: the page cache keeps it past SIGKILL.
        std::io::Write::write_all(&mut prog, b"x").unwrap();
    }
}

/// A child changes a segmented array (appends that top up and add segments, replaces,
/// deletes, compactions that rewrite segments, renames) and is killed at a random
/// instant; the next open recovers the array to the state after the operations that
/// finished, or after the one in flight too, and the store checks without errors.
#[test]
fn crash_recovery_keeps_segments_consistent() {
    init();
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("s");
    let mut a = arr("s", DType::Float32, &[1500, 3], 11, Some(TARGET / 12 * 12));
    a.data = common::random_bytes(&mut common::Rng::new(5), 1500 * CRASH_RB);
    make07(&path, &[a]);
    let mut model = crash_read(&open_ro(&path));
    let master = common::env_u64("NPK_SEG_CRASH_SEED_BASE", 0x5E6);
    let cycles = common::env_u64("NPK_SEG_CRASH_CYCLES", 30);
    let mut timer = common::Rng::new(master);
    for cycle in 0..cycles {
        let seed = master.wrapping_mul(31).wrapping_add(cycle);
        let progress = d.path().join(format!("progress-{cycle}"));
        let mut child = common::spawn_child(
            "segment_crash_child",
            &[(CRASH_STORE, path.display().to_string()), (CRASH_SEED, seed.to_string()), (CRASH_PROGRESS, progress.display().to_string())],
        );
        assert!(child.wait_ready(), "cycle {cycle}: the child died before it was ready");
        std::thread::sleep(std::time::Duration::from_micros(timer.below(40_000)));
        child.sigkill();
        let _ = child.child.wait();
        let done = fs::metadata(&progress).map(|m| m.len()).unwrap_or(0);
        // The states after `done` operations and after the one in flight.
        let mut r = common::Rng::new(seed);
        let mut states = vec![model.clone()];
        let mut m = model.clone();
        for _ in 0..=done {
            let op = crash_op(&mut r, &m);
            crash_apply(&mut m, &op);
            states.push(m.clone());
        }
        let (before, after) = (&states[done as usize], &states[done as usize + 1]);
        eprintln!("cycle {cycle}: killed after {done} operations");
        let s = open(&path);
        let got = crash_read(&s);
        assert!(
            got == *before || got == *after,
            "seed {master:#x} cycle {cycle}: after {done} operations the array is {} with {} rows; expected {} rows ({}) or {} ({})",
            got.name,
            got.rows.len(),
            before.rows.len(),
            before.name,
            after.rows.len(),
            after.name
        );
        drop(s);
        let report = check::check(&path).unwrap();
        let errors: Vec<_> = report.findings.iter().filter(|f| f.severity == check::Severity::Error).collect();
        assert!(errors.is_empty(), "seed {master:#x} cycle {cycle}: {errors:#?}");
        model = got;
    }
    // NumPack 0.7's view of the result: the catalogue names the manifest, which lists the
    // segment files in order.
    let s = open(&path);
    s.sync().unwrap();
    drop(s);
    let cat = metadata::decode(&fs::read(path.join(metadata::FILE_NAME)).unwrap()).unwrap();
    let e = &cat[&model.name];
    if e.segmented {
        manifest(&path, &model.name).check_shape(e.row_bytes(), e.physical_rows()).unwrap();
    }
}

/// Segments of whole pages are mapped back to back (zero-copy: a view sees rows replaced
/// after it was made, as for a plain array); other sizes give a copy taken when the view
/// is made.
#[test]
fn views_map_page_sized_segments_and_copy_others() {
    init();
    let d = tempfile::tempdir().unwrap();
    make07(d.path(), &[arr("pages", DType::Uint8, &[64, 1024], 1, Some(4096)), arr("odd", DType::Uint8, &[64, 1000], 2, Some(4096))]);
    let s = open(d.path());
    for (name, rb, mapped) in [("pages", 1024usize, true), ("odd", 1000, false)] {
        let v = s.view(name, false).unwrap();
        let before = v.bytes()[20 * rb];
        s.replace_rows(name, DType::Uint8, &[20], &vec![before.wrapping_add(1); rb]).unwrap();
        assert_eq!(v.bytes()[20 * rb] != before, mapped, "{name}");
        assert_eq!(s.view(name, false).unwrap().bytes()[20 * rb], before.wrapping_add(1), "{name}");
    }
}

/// Bytes past the last segment's end (an append cut short) are a warning for check and
/// are cut by the next append, so NumPack 0.7, which appends at the end of the file,
/// never puts rows after them.
#[test]
fn appends_cut_bytes_left_past_the_last_segment() {
    init();
    let d = tempfile::tempdir().unwrap();
    let a = arr("a", DType::Int16, &[10, 2], 1, Some(16)); // 4 rows per segment, last 2
    let want = a.data.clone();
    make07(d.path(), &[a]);
    let last = d.path().join("data_a_segments/seg_000002.npkd");
    let mut b = fs::read(&last).unwrap();
    b.extend_from_slice(&[0xEE; 40]);
    fs::write(&last, &b).unwrap();
    let r = check::check(d.path()).unwrap();
    assert!(r.findings.iter().any(|f| f.id == ids::DATA_TRAILING_BYTES && f.file.as_deref() == Some("data_a_segments/seg_000002.npkd")), "{r:#?}");
    let s = open(d.path());
    assert_eq!(s.load("a").unwrap().1, want);
    s.append("a", DType::Int16, &[1, 2], &[1, 0, 2, 0]).unwrap();
    let m = manifest(d.path(), "a");
    assert_eq!(fs::metadata(&last).unwrap().len(), m.segments[2].bytes);
    assert_eq!(s.load("a").unwrap().1, [want.as_slice(), &[1, 0, 2, 0]].concat());
    drop(s);
    assert_clean(d.path());
}

/// Saving compressed over a segmented array replaces its segments by a `.npkz`; a
/// segmented array reports no compression.
#[test]
fn compressed_save_over_segments_removes_them() {
    init();
    let d = tempfile::tempdir().unwrap();
    make07(d.path(), &[arr("a", DType::Float64, &[30, 2], 1, Some(48))]);
    let s = open(d.path());
    assert_eq!(s.compression("a").unwrap(), None);
    let data = bytes(3, 8 * 16);
    let opts = numpack::SaveOptions { compression: Some(numpack::Compression { level: 3 }) };
    s.save_with("a", DType::Float64, &[8, 2], &data, &opts).unwrap();
    assert!(s.compression("a").unwrap().is_some());
    assert_eq!(s.load("a").unwrap().1, data);
    assert!(!d.path().join("data_a.npkseg").exists() && !d.path().join("data_a_segments").exists());
    drop(s);
    assert_clean(d.path());
}

/// Another handle (as another process would) sees appends, replaces, compactions and
/// renames of a segmented array it has already read.
#[test]
fn other_handles_follow_segment_changes() {
    init();
    let d = tempfile::tempdir().unwrap();
    let a = arr("a", DType::Int32, &[700, 3], 1, Some(120));
    let mut m = Model::of(&a);
    make07(d.path(), &[a]);
    let (w, r) = (open(d.path()), open(d.path()));
    m.check(&r, "a");
    let more = bytes(2, 900 * 12);
    w.append("a", DType::Int32, &[900, 3], &more).unwrap();
    m.rows.extend(more.chunks(12).map(<[u8]>::to_vec));
    m.check(&r, "a");
    w.replace_rows("a", DType::Int32, &[5, 1500], &[9u8; 24]).unwrap();
    m.rows[5] = vec![9; 12];
    m.rows[1500] = vec![9; 12];
    m.check(&r, "a");
    w.delete_rows("a", &[0, 800]).unwrap();
    m.rows.remove(800);
    m.rows.remove(0);
    w.compact("a").unwrap();
    assert!(d.path().join("data_a.npkseg").exists());
    m.check(&r, "a");
    w.rename("a", "b").unwrap();
    m.check(&r, "b");
}
