//! Log records forged by someone else (with a valid CRC: the CRC proves nothing about who
//! wrote a record) must never make numpack touch a file outside the store. Each case
//! forges one record naming a path outside the store (absolute, `../`, through a
//! subdirectory, with a NUL, or not the engine's own temporary-file pattern) into a store
//! at `sandbox/inner`, with bait files in `sandbox`; opening the store read-only or
//! writable must fail with a clear `CORRUPT` naming the record and field, `npk check` must
//! report it, and no file in the sandbox's parent tree may change.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use numpack::check::{self, ids};
use numpack::metadata::Entry;
use numpack::segments::{segment_file, Manifest, Segment};
use numpack::wal::{BitmapPatch, Op, Wal};
use numpack::{DType, ErrorCode, OpenOptions, Store};

/// Every regular file under `root` with its contents, and every directory.
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                out.insert(p.clone(), None);
                todo.push(p);
            } else {
                out.insert(p.clone(), Some(fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out
}

/// The part of `tree` outside the store directory.
fn outside(t: &BTreeMap<PathBuf, Option<Vec<u8>>>, store: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    t.iter().filter(|(p, _)| !p.starts_with(store)).map(|(p, c)| (p.clone(), c.clone())).collect()
}

struct Sandbox {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    sandbox: PathBuf,
    store: PathBuf,
}

/// A store at `sandbox/inner` with a plain array `a` (3 rows), a segmented-looking
/// directory `data_x` the forged names climb through, and bait files in `sandbox`.
fn sandbox() -> Sandbox {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let sandbox = root.join("sandbox");
    let store = sandbox.join("inner");
    fs::create_dir_all(&store).unwrap();
    for bait in ["bait.npkt", "npk-tmp-1-2-3.npkt", "victim.npkd", "deleted_victim.npkb", "data_victim.npkd", "data_victim.npkz", "metadata.npkm"] {
        fs::write(sandbox.join(bait), format!("bait {bait}")).unwrap();
    }
    fs::write(root.join("neighbour.txt"), b"outside the sandbox").unwrap();
    let s = Store::open(&store, OpenOptions { create: true, ..Default::default() }).unwrap();
    s.save("a", DType::Int32, &[3, 2], &[1u8; 24]).unwrap();
    s.close().unwrap();
    // A directory inside the store that `x/../../victim` climbs through.
    fs::create_dir(store.join("data_x")).unwrap();
    Sandbox { _tmp: tmp, root, sandbox, store }
}

/// Appends `op` to the store's log as a committed record (valid CRC); `applied` says
/// whether its effects count as done (else a reader must redo it).
fn forge(store: &Path, op: &Op, applied: bool) {
    let wal = Wal::open(store, false).unwrap();
    let hdr = wal.read_header().unwrap();
    let end = wal.append(hdr.end, hdr.generation, &op.encode()).unwrap();
    if applied {
        wal.mark_applied(end);
    }
}

fn entry() -> Entry {
    Entry { dtype: DType::Int32, shape: vec![3, 2], modified_us: 1, segmented: false }
}

fn manifest(name: &str) -> Vec<u8> {
    Manifest { segments: vec![Segment { file: segment_file(name, 0), rows: 3, bytes: 24 }] }.encode()
}

fn patch() -> BitmapPatch {
    BitmapPatch { total: 3, created: true, words: vec![(0, 1)] }
}

/// Forged records and the words the error must contain.
fn forged(abs: &str) -> Vec<(Op, &'static str)> {
    let mut v: Vec<(Op, &'static str)> = Vec::new();
    let tmps = [abs.to_string(), "../bait.npkt".into(), "../npk-tmp-1-2-3.npkt".into(), "data_x/../../bait.npkt".into(), "data_a.npkd".into(), "npk-tmp-1-2.npkt".into()];
    for t in &tmps {
        v.push((Op::Save { name: "a".into(), entry: entry(), tmp: t.clone() }, "save record, field temporary file"));
        v.push((Op::Compact { name: "a".into(), rows: 3, modified_us: 1, tmp: t.clone() }, "compact record, field temporary file"));
        v.push((Op::ZSave { name: "a".into(), entry: entry(), tmp: t.clone(), keep_bitmap: false }, "compressed save record, field temporary file"));
        v.push((
            Op::SegInstall { name: "a".into(), rows: 3, modified_us: 1, tmps: vec![t.clone()], manifest: manifest("a") },
            "segment install record, field temporary file",
        ));
    }
    let names = ["x/../../victim", "../victim", "/abs", "a\0b", "a\\b", "..", ""];
    for n in names {
        let n = n.to_string();
        let ok_tmp = "npk-tmp-1-2-3.npkt".to_string();
        v.push((Op::Save { name: n.clone(), entry: entry(), tmp: ok_tmp.clone() }, "save record, field name"));
        v.push((Op::Compact { name: n.clone(), rows: 3, modified_us: 1, tmp: ok_tmp.clone() }, "compact record, field name"));
        v.push((Op::ZSave { name: n.clone(), entry: entry(), tmp: ok_tmp.clone(), keep_bitmap: true }, "compressed save record, field name"));
        v.push((Op::Append { name: n.clone(), old_rows: 3, new_rows: 4, modified_us: 1, bitmap: Some(patch()) }, "append record, field name"));
        v.push((Op::Replace { name: n.clone(), modified_us: 1, runs: vec![(0, 4)], payload: vec![9; 4] }, "replace record, field name"));
        v.push((Op::Delete { name: n.clone(), modified_us: 1, bitmap: patch() }, "delete record, field name"));
        v.push((Op::Drop { name: n.clone() }, "drop record, field name"));
        v.push((Op::Rename { from: n.clone(), to: "stolen".into(), modified_us: 1, had_bitmap: true }, "rename record, field from"));
        v.push((Op::Rename { from: "a".into(), to: n.clone(), modified_us: 1, had_bitmap: false }, "rename record, field to"));
        v.push((Op::ZUpdate { name: n.clone(), old_rows: 3, new_rows: 4, modified_us: 1, header: vec![0; 64], bitmap: None }, "compressed update record, field name"));
        v.push((
            Op::SegAppend { name: n.clone(), old_rows: 3, new_rows: 4, modified_us: 1, manifest: manifest("a"), bitmap: None },
            "segment append record, field name",
        ));
        v.push((
            Op::SegInstall { name: n.clone(), rows: 3, modified_us: 1, tmps: vec![ok_tmp.clone()], manifest: manifest("a") },
            "segment install record, field name",
        ));
    }
    // Manifests naming segment files of another array, or outside the store.
    v.push((Op::SegAppend { name: "a".into(), old_rows: 3, new_rows: 4, modified_us: 1, manifest: manifest("victim"), bitmap: None }, "segment append record, field manifest"));
    let escaping = br#"{"version":1,"segments":[{"file":"../victim.npkd","rows":3,"bytes":24}]}"#.to_vec();
    v.push((Op::SegAppend { name: "a".into(), old_rows: 3, new_rows: 4, modified_us: 1, manifest: escaping.clone(), bitmap: None }, "segment append record, field manifest"));
    v.push((
        Op::SegInstall { name: "a".into(), rows: 3, modified_us: 1, tmps: vec!["npk-tmp-1-2-3.npkt".into()], manifest: escaping },
        "segment install record, field manifest",
    ));
    v
}

fn assert_corrupt(r: numpack::Result<Store>, want: &str, what: &str) {
    match r {
        Ok(_) => panic!("{what}: the store opened"),
        Err(e) => {
            assert_eq!(e.code, ErrorCode::Corrupt, "{what}: {e}");
            assert!(e.message.contains("numpack.wal") && e.message.contains(want), "{what}: {:?} does not name {want:?}", e.message);
        }
    }
}

#[test]
fn forged_records_are_corrupt_and_touch_nothing() {
    let mut cases = 0;
    for applied in [false, true] {
        let probe = sandbox();
        let abs = probe.sandbox.join("bait.npkt").display().to_string();
        drop(probe);
        for (op, want) in forged(&abs) {
            let sb = sandbox();
            // Absolute paths point at this sandbox's bait.
            let op = match op {
                Op::Save { name, entry, tmp } if tmp == abs => Op::Save { name, entry, tmp: sb.sandbox.join("bait.npkt").display().to_string() },
                Op::Compact { name, rows, modified_us, tmp } if tmp == abs => {
                    Op::Compact { name, rows, modified_us, tmp: sb.sandbox.join("bait.npkt").display().to_string() }
                }
                Op::ZSave { name, entry, tmp, keep_bitmap } if tmp == abs => {
                    Op::ZSave { name, entry, tmp: sb.sandbox.join("bait.npkt").display().to_string(), keep_bitmap }
                }
                Op::SegInstall { name, rows, modified_us, tmps, manifest } if tmps == [abs.clone()] => {
                    Op::SegInstall { name, rows, modified_us, tmps: vec![sb.sandbox.join("bait.npkt").display().to_string()], manifest }
                }
                op => op,
            };
            forge(&sb.store, &op, applied);
            let what = format!("{op:?} (applied: {applied})");
            let before = tree(&sb.root);
            assert_corrupt(Store::open(&sb.store, OpenOptions { read_only: true, ..Default::default() }), want, &what);
            assert_eq!(tree(&sb.root), before, "{what}: a read-only open changed files");
            assert_corrupt(Store::open(&sb.store, OpenOptions::default()), want, &what);
            assert_eq!(outside(&tree(&sb.root), &sb.store), outside(&before, &sb.store), "{what}: a writable open changed files outside the store");
            let report = check::check(&sb.store).unwrap();
            assert!(!report.is_ok(), "{what}: check says the store is fine: {:#?}", report.findings);
            let f = report.with_id(ids::LOG_CORRUPT).next().unwrap_or_else(|| panic!("{what}: {:#?}", report.findings));
            assert!(f.message.contains(want), "{what}: {:?}", f.message);
            assert_eq!(outside(&tree(&sb.root), &sb.store), outside(&before, &sb.store), "{what}: check changed files");
            cases += 1;
        }
    }
    assert!(cases > 100, "{cases} cases");
}

/// A name with a NUL logged by someone else: no handle half-works (listing some names and
/// failing on others); the open itself fails and says why.
#[test]
fn a_nul_in_a_logged_name_fails_the_open_clearly() {
    let sb = sandbox();
    let before = tree(&sb.root);
    forge(&sb.store, &Op::Rename { from: "a".into(), to: "b\0c".into(), modified_us: 1, had_bitmap: false }, true);
    for read_only in [true, false] {
        let e = Store::open(&sb.store, OpenOptions { read_only, ..Default::default() }).unwrap_err();
        assert_eq!(e.code, ErrorCode::Corrupt, "{e}");
        assert!(e.message.contains("rename record, field to") && e.message.contains("'\\0'"), "{e}");
    }
    let after = tree(&sb.root);
    assert_eq!(outside(&after, &sb.store), outside(&before, &sb.store));
    assert_eq!(after.get(&sb.store.join("data_a.npkd")), before.get(&sb.store.join("data_a.npkd")));
}

/// A record written after a handle opened the store (a forged log dropped in place while a
/// reader runs) is refused when the reader catches up, not replayed.
#[test]
fn a_forged_record_seen_while_catching_up_is_refused() {
    let sb = sandbox();
    let reader = Store::open(&sb.store, OpenOptions { read_only: true, ..Default::default() }).unwrap();
    let writer = Store::open(&sb.store, OpenOptions::default()).unwrap();
    assert_eq!(reader.names().unwrap(), vec!["a".to_string()]);
    let before = tree(&sb.root);
    forge(&sb.store, &Op::Drop { name: "x/../../victim".into() }, false);
    for s in [&reader, &writer] {
        let e = s.refresh().unwrap_err();
        assert_eq!(e.code, ErrorCode::Corrupt, "{e}");
        assert!(e.message.contains("drop record, field name"), "{e}");
    }
    assert_eq!(writer.drop_array("a").unwrap_err().code, ErrorCode::Corrupt);
    drop((reader, writer));
    assert_eq!(outside(&tree(&sb.root), &sb.store), outside(&before, &sb.store));
}
