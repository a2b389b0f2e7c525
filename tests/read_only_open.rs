//! A read-only open creates, renames and writes no file: not the log of a NumPack store,
//! not a repair of a store that needs recovery, not a checkpoint. Each test compares the
//! directory (names, sizes, modification times, contents) before and after.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::SystemTime;

use numpack::wal::{Op, Wal};
use numpack::{DType, ErrorCode, OpenOptions, Store};

type Snapshot = BTreeMap<String, (u64, SystemTime, Vec<u8>)>;

fn snapshot(dir: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let md = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if md.is_dir() {
                todo.push(p.clone());
                out.insert(rel, (0, md.modified().unwrap(), Vec::new()));
            } else {
                out.insert(rel, (md.len(), md.modified().unwrap(), fs::read(&p).unwrap()));
            }
        }
    }
    out.insert(".".into(), (0, fs::metadata(dir).unwrap().modified().unwrap(), Vec::new()));
    out
}

fn ro() -> OpenOptions {
    OpenOptions { read_only: true, ..Default::default() }
}

fn i32s(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A store with arrays `a` (4 rows of 2 int32, row 1 deleted) and `b`, checkpointed.
fn store(dir: &Path) {
    let s = Store::open(dir, OpenOptions { create: true, ..Default::default() }).unwrap();
    s.save("a", DType::Int32, &[4, 2], &i32s(&[0, 1, 2, 3, 4, 5, 6, 7])).unwrap();
    s.save("b", DType::Uint8, &[3], &[7, 8, 9]).unwrap();
    s.delete_rows("a", &[1]).unwrap();
    s.close().unwrap();
}

/// Everything a reader does: list, info, load, rows, ranges, a view, a stream.
fn read_everything(s: &Store) {
    assert_eq!(s.names().unwrap(), vec!["a".to_string(), "b".to_string()]);
    let (info, bytes) = s.load("a").unwrap();
    assert_eq!(info.shape, vec![3, 2]);
    assert_eq!(bytes, i32s(&[0, 1, 4, 5, 6, 7]));
    let mut row = vec![0u8; 8];
    s.read_rows_into("a", &[-1], &mut row).unwrap();
    assert_eq!(row, i32s(&[6, 7]));
    let mut r = vec![0u8; 2];
    s.read_range_into("b", 1, 3, &mut r).unwrap();
    assert_eq!(r, [8, 9]);
    assert_eq!(s.view("b", false).unwrap().bytes(), &[7, 8, 9]);
    let mut st = s.stream("a", 2).unwrap();
    let mut buf = vec![0u8; 16];
    assert_eq!((st.next_into(&mut buf).unwrap(), st.next_into(&mut buf).unwrap(), st.next_into(&mut buf).unwrap()), (2, 1, 0));
    assert_eq!(s.save("c", DType::Uint8, &[1], &[1]).unwrap_err().code, ErrorCode::ReadOnly);
    s.refresh().unwrap();
}

#[test]
fn a_numpack_only_store_gets_no_log() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("s");
    store(&dir);
    // What NumPack leaves: the catalogue, data and bitmap files, no numpack.wal.
    fs::remove_file(dir.join(numpack::wal::FILE_NAME)).unwrap();
    let before = snapshot(&dir);
    let s = Store::open(&dir, ro()).unwrap();
    read_everything(&s);
    s.close().unwrap();
    let s = Store::open(&dir, ro()).unwrap();
    drop(s);
    assert_eq!(snapshot(&dir), before);
    assert!(!dir.join(numpack::wal::FILE_NAME).exists());
}

#[test]
fn an_uninitialised_log_is_left_alone() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("s");
    store(&dir);
    // A writer died after creating the log and before writing its header.
    for len in [0u64, 10, 64] {
        let f = fs::OpenOptions::new().write(true).truncate(true).open(dir.join(numpack::wal::FILE_NAME)).unwrap();
        f.set_len(len).unwrap();
        drop(f);
        let before = snapshot(&dir);
        let s = Store::open(&dir, ro()).unwrap();
        read_everything(&s);
        drop(s);
        assert_eq!(snapshot(&dir), before, "log of {len} bytes");
    }
}

#[test]
fn records_since_the_checkpoint_are_read_but_not_folded() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("s");
    store(&dir);
    {
        // Changes logged and applied, not checkpointed (the handle is leaked, as a
        // killed process would).
        let w = Store::open(&dir, OpenOptions::default()).unwrap();
        w.append("b", DType::Uint8, &[1], &[10]).unwrap();
        w.rename("b", "c").unwrap();
        w.rename("c", "b").unwrap();
        std::mem::forget(w);
    }
    // The writer's temporary files of a dead process are not removed by a reader either.
    fs::write(dir.join("npk-tmp-999999999-1-1.npkt"), b"orphan").unwrap();
    let before = snapshot(&dir);
    let s = Store::open(&dir, ro()).unwrap();
    assert_eq!(s.load("b").unwrap().1, vec![7, 8, 9, 10]);
    let frozen = s.with_frozen_files(|_, _| Ok(())).unwrap_err();
    assert_eq!(frozen.code, ErrorCode::ReadOnly, "{frozen}");
    s.close().unwrap();
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn a_store_needing_recovery_is_reported_and_untouched() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("s");
    store(&dir);
    // A committed record whose effects were never applied: a writer killed right after
    // logging a drop.
    {
        let wal = Wal::open(&dir, false).unwrap();
        let hdr = wal.read_header().unwrap();
        wal.append(hdr.end, hdr.generation, &Op::Drop { name: "b".into() }.encode()).unwrap();
        wal.begin_change();
    }
    let before = snapshot(&dir);
    let e = Store::open(&dir, ro()).unwrap_err();
    assert_eq!(e.code, ErrorCode::NeedsRecovery, "{e}");
    assert!(e.message.contains("write access"), "{e}");
    assert_eq!(snapshot(&dir), before);
    // A writable open finishes the drop; read-only opens work again.
    Store::open(&dir, OpenOptions::default()).unwrap().close().unwrap();
    let s = Store::open(&dir, ro()).unwrap();
    assert_eq!(s.names().unwrap(), vec!["a".to_string()]);
}

#[test]
fn a_counter_left_odd_by_a_finished_writer_does_not_stop_readers() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("s");
    store(&dir);
    Wal::open(&dir, false).unwrap().begin_change();
    let before = snapshot(&dir);
    let s = Store::open(&dir, ro()).unwrap();
    read_everything(&s);
    drop(s);
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn a_reader_follows_a_writer_in_another_handle() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("s");
    store(&dir);
    let r = Store::open(&dir, ro()).unwrap();
    let w = Store::open(&dir, OpenOptions::default()).unwrap();
    w.append("b", DType::Uint8, &[2], &[1, 2]).unwrap();
    assert_eq!(r.load("b").unwrap().1, vec![7, 8, 9, 1, 2]);
    w.drop_array("a").unwrap();
    assert_eq!(r.names().unwrap(), vec!["b".to_string()]);
    w.close().unwrap();
    assert_eq!(r.names().unwrap(), vec!["b".to_string()]);
}

#[test]
fn the_cli_readers_create_nothing() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("s");
    store(&dir);
    fs::remove_file(dir.join(numpack::wal::FILE_NAME)).unwrap();
    let before = snapshot(&dir);
    let npk = env!("CARGO_BIN_EXE_npk");
    for args in [vec!["ls"], vec!["head", "a"], vec!["stats", "a"], vec!["check"]] {
        let out = std::process::Command::new(npk).args(&args[..1]).arg(&dir).args(&args[1..]).output().unwrap();
        assert!(out.status.success(), "npk {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(snapshot(&dir), before, "npk {args:?} changed the store");
    }
}
