//! `numpack::check::check`: a clean store passes; each structure damaged on its own gives
//! its own finding id, and the other problems planted beside it are still reported;
//! checking never changes the store.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use numpack::check::{check, ids, Report, Severity};
use numpack::{DType, ErrorCode, OpenOptions, Store};

mod common;
use common::{applied_end, set_applied_end};

fn create() -> OpenOptions {
    OpenOptions { create: true, ..Default::default() }
}

/// "a": 100 × 2 int64 with rows 3 and 70 deleted; "b": 10 × 3 float32; "c": 5 uint8.
fn fixture(close: bool) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.npk");
    let s = Store::open(&path, create()).unwrap();
    let a: Vec<u8> = (0..200i64).flat_map(|x| x.to_le_bytes()).collect();
    s.save("a", DType::Int64, &[100, 2], &a).unwrap();
    s.delete_rows("a", &[3, 70]).unwrap();
    let b: Vec<u8> = (0..30).flat_map(|x| (x as f32).to_le_bytes()).collect();
    s.save("b", DType::Float32, &[10, 3], &b).unwrap();
    s.save("c", DType::Uint8, &[5], &[1, 2, 3, 4, 5]).unwrap();
    if close {
        s.close().unwrap();
    } else {
        std::mem::forget(s); // as if killed: the log keeps its records
    }
    (tmp, path)
}

/// Every file of the directory with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir).unwrap().flatten().filter(|e| e.path().is_file()).map(|e| (e.file_name().to_string_lossy().into_owned(), fs::read(e.path()).unwrap())).collect()
}

/// Checks, asserting that nothing in the directory changed.
fn run(dir: &Path) -> Report {
    let before = snapshot(dir);
    let r = check(dir).unwrap();
    assert_eq!(snapshot(dir), before, "check changed the store");
    r
}

fn ids_of(r: &Report) -> Vec<&'static str> {
    r.findings.iter().map(|f| f.id).collect()
}

const GHOST: &str = "data_ghost.npkd";
/// A pid above any pid_max: the process cannot exist.
const DEAD_TMP: &str = "npk-tmp-999999999-1-1.npkt";

/// Plants two unrelated problems that must be reported whatever else is wrong.
fn plant_others(dir: &Path) {
    fs::write(dir.join(GHOST), b"12345678").unwrap();
    fs::write(dir.join(DEAD_TMP), b"garbage").unwrap();
}

/// Damages the fixture with `damage`, checks, and asserts `id` (with `severity`, on
/// `file`) is reported besides the planted problems.
fn damaged(id: &str, severity: Severity, file: &str, catalogue_readable: bool, damage: impl FnOnce(&Path)) -> Report {
    let (_t, dir) = fixture(true);
    plant_others(&dir);
    damage(&dir);
    let r = run(&dir);
    let f = r.with_id(id).next().unwrap_or_else(|| panic!("{id} not reported: {:#?}", r.findings));
    assert_eq!(f.severity, severity, "{f:?}");
    assert_eq!(f.file.as_deref(), Some(file), "{f:?}");
    assert!(!f.message.is_empty());
    assert_eq!(r.with_id(ids::ORPHAN_TMP).count(), 1, "{:#?}", r.findings);
    assert_eq!(r.with_id(ids::ORPHAN_DATA).count(), catalogue_readable as usize, "{:#?}", r.findings);
    r
}

#[test]
fn a_clean_store_passes() {
    let (_t, dir) = fixture(true);
    let r = run(&dir);
    assert!(r.is_clean(), "{:#?}", r.findings);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.arrays, 3);
    assert!(r.is_ok() && !r.needs_recovery());
}

#[test]
fn a_store_with_an_unfolded_log_passes_with_a_remark() {
    let (_t, dir) = fixture(false);
    let r = run(&dir);
    assert!(r.is_clean(), "{:#?}", r.findings);
    assert_eq!(ids_of(&r), vec![ids::LOG_NOT_CHECKPOINTED]);
    // The arrays come from the log: metadata.npkm still lists none.
    assert_eq!(r.arrays, 3);
    // ... and their files are checked against the log's catalogue.
    fs::OpenOptions::new().write(true).open(dir.join("data_b.npkd")).unwrap().set_len(8).unwrap();
    let r = run(&dir);
    assert_eq!(r.with_id(ids::DATA_SIZE_MISMATCH).next().unwrap().array.as_deref(), Some("b"));
}

#[test]
fn a_numpack_only_store_is_noted() {
    let (_t, dir) = fixture(true);
    fs::remove_file(dir.join(numpack::wal::FILE_NAME)).unwrap();
    let r = run(&dir);
    assert_eq!(ids_of(&r), vec![ids::NO_LOG]);
    assert!(r.is_clean());
}

#[test]
fn truncated_data_file() {
    let r = damaged(ids::DATA_SIZE_MISMATCH, Severity::Error, "data_b.npkd", true, |d| {
        fs::OpenOptions::new().write(true).open(d.join("data_b.npkd")).unwrap().set_len(100).unwrap();
    });
    assert_eq!(r.with_id(ids::DATA_SIZE_MISMATCH).next().unwrap().array.as_deref(), Some("b"));
    assert!(!r.is_ok());
}

#[test]
fn extended_data_file() {
    let r = damaged(ids::DATA_TRAILING_BYTES, Severity::Warning, "data_c.npkd", true, |d| {
        fs::write(d.join("data_c.npkd"), [1, 2, 3, 4, 5, 6, 7]).unwrap();
    });
    assert!(r.is_ok(), "trailing bytes are no error: {:#?}", r.findings);
}

#[test]
fn missing_data_file() {
    let r = damaged(ids::DATA_MISSING, Severity::Error, "data_a.npkd", true, |d| fs::remove_file(d.join("data_a.npkd")).unwrap());
    // Its bitmap is still checked and fine.
    assert!(r.with_id(ids::ORPHAN_BITMAP).next().is_none());
}

#[test]
fn data_file_that_is_a_directory() {
    damaged(ids::DATA_SIZE_MISMATCH, Severity::Error, "data_c.npkd", true, |d| {
        fs::remove_file(d.join("data_c.npkd")).unwrap();
        fs::create_dir(d.join("data_c.npkd")).unwrap();
    });
}

#[test]
fn orphan_files() {
    let r = damaged(ids::ORPHAN_BITMAP, Severity::Warning, "deleted_zz.npkb", true, |d| {
        fs::write(d.join("deleted_zz.npkb"), [0u8; 24]).unwrap();
        fs::write(d.join("notes.txt"), b"hi").unwrap();
    });
    let ghost = r.with_id(ids::ORPHAN_DATA).next().unwrap();
    assert_eq!((ghost.file.as_deref(), ghost.array.as_deref(), ghost.severity), (Some(GHOST), Some("ghost"), Severity::Warning));
    assert_eq!(r.with_id(ids::UNKNOWN_FILE).next().unwrap().file.as_deref(), Some("notes.txt"));
    assert!(r.is_ok());
}

#[test]
fn catalogue_bad_magic() {
    let r = damaged(ids::CATALOGUE_BAD_MAGIC, Severity::Error, "metadata.npkm", false, |d| {
        let p = d.join("metadata.npkm");
        let mut b = fs::read(&p).unwrap();
        b[0] = b'X';
        fs::write(p, b).unwrap();
    });
    assert_eq!(r.arrays, 0);
}

#[test]
fn catalogue_bad_version() {
    damaged(ids::CATALOGUE_BAD_VERSION, Severity::Error, "metadata.npkm", false, |d| {
        let p = d.join("metadata.npkm");
        let mut b = fs::read(&p).unwrap();
        b[4..8].copy_from_slice(&7u32.to_le_bytes());
        fs::write(p, b).unwrap();
    });
}

#[test]
fn catalogue_bad_entry() {
    // An unknown dtype code in the entry of "a": the byte after the file name, mtime and size.
    damaged(ids::CATALOGUE_CORRUPT, Severity::Error, "metadata.npkm", false, |d| {
        let p = d.join("metadata.npkm");
        let mut b = fs::read(&p).unwrap();
        let at = b.windows(11).position(|w| w == b"data_a.npkd").unwrap() + 11 + 16;
        assert_eq!(b[at], DType::Int64.code() as u8);
        b[at] = 99;
        fs::write(p, b).unwrap();
    });
}

#[test]
fn catalogue_truncated_or_missing() {
    damaged(ids::CATALOGUE_CORRUPT, Severity::Error, "metadata.npkm", false, |d| {
        let p = d.join("metadata.npkm");
        let b = fs::read(&p).unwrap();
        fs::write(p, &b[..b.len() - 3]).unwrap();
    });
    damaged(ids::CATALOGUE_MISSING, Severity::Error, "metadata.npkm", false, |d| fs::remove_file(d.join("metadata.npkm")).unwrap());
}

#[test]
fn truncated_bitmap() {
    let r = damaged(ids::BITMAP_SIZE_MISMATCH, Severity::Error, "deleted_a.npkb", true, |d| {
        let p = d.join("deleted_a.npkb");
        let b = fs::read(&p).unwrap();
        fs::write(p, &b[..b.len() - 5]).unwrap();
    });
    assert_eq!(r.with_id(ids::BITMAP_SIZE_MISMATCH).next().unwrap().array.as_deref(), Some("a"));
}

#[test]
fn bitmap_with_wrong_row_count_or_deleted_count() {
    damaged(ids::BITMAP_ROW_COUNT, Severity::Error, "deleted_a.npkb", true, |d| {
        let p = d.join("deleted_a.npkb");
        let mut b = fs::read(&p).unwrap();
        b[..8].copy_from_slice(&99u64.to_le_bytes()); // same word count, other row count
        fs::write(p, b).unwrap();
    });
    damaged(ids::BITMAP_DELETED_COUNT, Severity::Error, "deleted_a.npkb", true, |d| {
        let p = d.join("deleted_a.npkb");
        let mut b = fs::read(&p).unwrap();
        assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), 2);
        b[8..16].copy_from_slice(&5u64.to_le_bytes());
        fs::write(p, b).unwrap();
    });
    damaged(ids::BITMAP_CORRUPT, Severity::Error, "deleted_a.npkb", true, |d| {
        let p = d.join("deleted_a.npkb");
        let mut b = fs::read(&p).unwrap();
        // 100 rows: bits 100..128 of the last word must be clear.
        let last = b.len() - 1;
        b[last] |= 0x80;
        // Keep the deleted count consistent with the clear bits so only the tail is wrong.
        fs::write(p, b).unwrap();
    });
}

#[test]
fn a_bitmap_in_numpacks_legacy_layout_is_fine() {
    let (_t, dir) = fixture(true);
    let p = dir.join("deleted_a.npkb");
    let b = fs::read(&p).unwrap();
    fs::write(&p, &b[16..]).unwrap();
    let r = run(&dir);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

#[test]
fn pending_log_record_needs_recovery_and_check_does_not_recover() {
    let (_t, dir) = fixture(true);
    plant_others(&dir);
    let s = Store::open(&dir, OpenOptions::default()).unwrap();
    // The open removed the dead process's temporary file; plant it again.
    fs::write(dir.join(DEAD_TMP), b"garbage").unwrap();
    let before = applied_end(&dir);
    // A save killed after its commit, before the rename: the temporary file is there,
    // the data file still the old one.
    let data_c = fs::read(dir.join("data_c.npkd")).unwrap();
    s.save("c", DType::Uint8, &[7], &[9; 7]).unwrap();
    std::mem::forget(s);
    set_applied_end(&dir, before);
    // The record names the temporary file; it is the log's first record.
    let wal = fs::read(dir.join(numpack::wal::FILE_NAME)).unwrap();
    let at = wal.windows(8).position(|w| w == b"npk-tmp-").unwrap();
    let len = wal[at..].windows(5).position(|w| w == b".npkt").unwrap() + 5;
    let tmp_name = String::from_utf8(wal[at..at + len].to_vec()).unwrap();
    fs::rename(dir.join("data_c.npkd"), dir.join(&tmp_name)).unwrap();
    fs::write(dir.join("data_c.npkd"), &data_c).unwrap();

    let r = run(&dir);
    let f = r.with_id(ids::NEEDS_RECOVERY).next().unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!((f.severity, f.file.as_deref(), f.array.as_deref()), (Severity::Error, Some("numpack.wal"), Some("c")));
    assert!(r.needs_recovery());
    // The array in flight is not judged (its 5-byte file against 7 rows), the rest is.
    assert!(r.with_id(ids::DATA_SIZE_MISMATCH).next().is_none(), "{:#?}", r.findings);
    assert_eq!(r.with_id(ids::ORPHAN_DATA).count(), 1);
    assert_eq!(r.with_id(ids::ORPHAN_TMP).count(), 1);
    assert!(r.with_id(ids::LOG_NOT_CHECKPOINTED).next().is_some());
    // The temporary file the record installs is no leftover.
    assert!(r.findings.iter().all(|f| f.file.as_deref() != Some(tmp_name.as_str())), "{:#?}", r.findings);
    assert_eq!(r.findings.len(), 4, "{:#?}", r.findings);

    // A writable open recovers; then only the planted ghost remains.
    Store::open(&dir, OpenOptions::default()).unwrap().close().unwrap();
    let r = run(&dir);
    assert_eq!(ids_of(&r), vec![ids::ORPHAN_DATA], "{:#?}", r.findings);
}

#[test]
fn damaged_log() {
    let (_t, dir) = fixture(false);
    plant_others(&dir);
    let p = dir.join(numpack::wal::FILE_NAME);
    let mut b = fs::read(&p).unwrap();
    b[0] = b'x';
    fs::write(&p, &b).unwrap();
    let r = run(&dir);
    let f = r.with_id(ids::LOG_CORRUPT).next().unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(r.with_id(ids::ORPHAN_TMP).count(), 1);
    // The log holds the arrays' entries: metadata.npkm alone lists none, so every data file
    // now looks like an orphan.
    assert!(r.with_id(ids::ORPHAN_DATA).count() >= 1);
}

#[test]
fn leftover_temporary_files() {
    let r = damaged(ids::LEFTOVER_TMP, Severity::Warning, "metadata.npkm.tmp.123_4_5", true, |d| {
        fs::write(d.join("metadata.npkm.tmp.123_4_5"), b"x").unwrap();
    });
    assert!(r.is_ok());
    // A temporary file of a live process (this one) is a writer at work.
    let (_t, dir) = fixture(true);
    let mine = format!("npk-tmp-{}-1-1.npkt", std::process::id());
    fs::write(dir.join(&mine), b"x").unwrap();
    let r = run(&dir);
    assert_eq!(ids_of(&r), vec![ids::TMP_IN_USE]);
    assert_eq!(r.findings[0].severity, Severity::Info);
}

#[test]
fn every_problem_at_once() {
    let (_t, dir) = fixture(true);
    plant_others(&dir);
    fs::remove_file(dir.join("data_c.npkd")).unwrap();
    fs::OpenOptions::new().write(true).open(dir.join("data_b.npkd")).unwrap().set_len(4).unwrap();
    fs::write(dir.join("deleted_a.npkb"), [0u8; 3]).unwrap();
    let r = run(&dir);
    let mut got = ids_of(&r);
    got.sort();
    let mut want =
        vec![ids::DATA_MISSING, ids::DATA_SIZE_MISMATCH, ids::BITMAP_SIZE_MISMATCH, ids::ORPHAN_DATA, ids::ORPHAN_TMP];
    want.sort();
    assert_eq!(got, want, "{:#?}", r.findings);
    assert_eq!(r.count(Severity::Error), 3);
    assert_eq!(r.count(Severity::Warning), 2);
}

#[test]
fn not_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(check(&tmp.path().join("nope")).unwrap_err().code, ErrorCode::StoreNotFound);
    assert_eq!(check(tmp.path()).unwrap_err().code, ErrorCode::StoreNotFound);
    let f = tmp.path().join("file");
    fs::write(&f, b"x").unwrap();
    assert_eq!(check(&f).unwrap_err().code, ErrorCode::InvalidArgument);
}

#[test]
fn a_store_killed_while_being_created() {
    // What a writer killed inside its first open leaves: a log of zeros, nothing else.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s.npk");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join(numpack::wal::FILE_NAME), [0u8; 64]).unwrap();
    let r = run(&dir);
    assert_eq!(ids_of(&r), vec![ids::LOG_UNINITIALISED], "{:#?}", r.findings);
    assert!(r.is_ok());
    // With data files around, the missing catalogue is damage.
    fs::write(dir.join("data_x.npkd"), [0u8; 8]).unwrap();
    let r = run(&dir);
    assert!(r.with_id(ids::CATALOGUE_MISSING).next().is_some(), "{:#?}", r.findings);
    assert!(!r.is_ok());
    // A writable open of the first state makes an empty store.
    fs::remove_file(dir.join("data_x.npkd")).unwrap();
    Store::open(&dir, OpenOptions::default()).unwrap().close().unwrap();
    assert!(run(&dir).findings.is_empty());
}

#[test]
fn checking_beside_a_busy_writer_finds_no_error() {
    let (_t, dir) = fixture(true);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || {
            let s = Store::open(&dir, OpenOptions::default()).unwrap();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let rows = 1 + i % 50;
                s.save("w", DType::Uint8, &[rows], &vec![i as u8; rows as usize]).unwrap();
                s.append("w", DType::Uint8, &[3], &[1, 2, 3]).unwrap();
                s.delete_rows("w", &[0]).unwrap();
                if i % 7 == 0 {
                    s.compact("w").unwrap();
                }
                if i % 11 == 0 {
                    s.sync().unwrap();
                }
                i += 1;
            }
            s.close().unwrap();
            i
        })
    };
    for _ in 0..300 {
        let r = check(&dir).unwrap();
        assert!(r.is_ok(), "{:#?}", r.findings);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
    let r = check(&dir).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

#[test]
fn an_invalid_name_in_the_log_is_reported() {
    use numpack::metadata::Entry;
    use numpack::wal::{Op, Wal, HEADER_LEN};
    let (_t, dir) = fixture(true);
    // A committed, applied record saving an array under a name no file can carry (only a
    // damaged or foreign writer could log one): the log is damaged, and numpack refuses
    // to open the store rather than replay a record naming a path.
    let wal = Wal::open(&dir, false).unwrap();
    let hdr = wal.read_header().unwrap();
    let op = Op::Save {
        name: "bad/name".into(),
        entry: Entry { dtype: DType::Uint8, shape: vec![1], modified_us: 1, segmented: false },
        tmp: "npk-tmp-1-2-3.npkt".into(),
    };
    let end = wal.append(HEADER_LEN, hdr.generation, &op.encode()).unwrap();
    wal.mark_applied(end);
    drop(wal);
    fs::OpenOptions::new().write(true).open(dir.join("data_b.npkd")).unwrap().set_len(4).unwrap();
    let r = run(&dir);
    let f = r.with_id(ids::LOG_CORRUPT).next().unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(f.severity, Severity::Error);
    assert!(f.message.contains("save record, field name") && f.message.contains("bad/name"), "{}", f.message);
    // The arrays of the catalogue are still checked.
    assert_eq!(r.arrays, 3);
    assert_eq!(r.with_id(ids::DATA_SIZE_MISMATCH).next().unwrap().array.as_deref(), Some("b"));
    assert_eq!(r.count(Severity::Error), 2, "{:#?}", r.findings);
    assert_eq!(Store::open(&dir, OpenOptions::default()).unwrap_err().code, numpack::ErrorCode::Corrupt);
}

#[test]
fn log_states() {
    use numpack::wal::{fingerprint, Op, Wal, HEADER_LEN};
    // A torn last record (a power loss between syncs): a warning.
    let (_t, dir) = fixture(true);
    let wal = Wal::open(&dir, false).unwrap();
    let hdr = wal.read_header().unwrap();
    let end = wal.append(HEADER_LEN, hdr.generation, &Op::Drop { name: "c".into() }.encode()).unwrap();
    wal.mark_applied(end);
    let f = fs::OpenOptions::new().write(true).open(dir.join(numpack::wal::FILE_NAME)).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"X", end - 1).unwrap();
    drop(wal);
    let r = run(&dir);
    let torn = r.with_id(ids::LOG_TORN_RECORD).next().unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(torn.severity, Severity::Warning);
    // The torn drop never happened: "c" is still there and fine.
    assert_eq!(r.arrays, 3);
    assert!(r.is_ok(), "{:#?}", r.findings);

    // A writer that died right after finishing a change leaves the counter odd: a remark.
    let (_t, dir) = fixture(true);
    let wal = Wal::open(&dir, false).unwrap();
    wal.begin_change();
    drop(wal);
    let r = run(&dir);
    assert_eq!(ids_of(&r), vec![ids::LOG_COUNTER_ODD]);
    assert!(r.is_clean());

    // Killed while folding the log: the new catalogue is in place, the log not yet reset.
    let (_t, dir) = fixture(true);
    let meta = fs::read(dir.join("metadata.npkm")).unwrap();
    let wal = Wal::open(&dir, false).unwrap();
    let hdr = wal.read_header().unwrap();
    wal.append(HEADER_LEN, hdr.generation, &Op::Checkpoint { base: fingerprint(&meta) }.encode()).unwrap();
    drop(wal);
    let r = run(&dir);
    assert_eq!(ids_of(&r), vec![ids::NEEDS_RECOVERY], "{:#?}", r.findings);
    Store::open(&dir, OpenOptions::default()).unwrap().close().unwrap();
    assert!(run(&dir).findings.is_empty());

    // metadata.npkm rewritten by another program while the log had records: that
    // catalogue wins (here: only "c", so the files of "a" and "b" are orphans).
    let (_t, dir) = fixture(false);
    let mut cat = numpack::metadata::Catalogue::new();
    cat.insert("c".into(), numpack::metadata::Entry { dtype: DType::Uint8, shape: vec![5], modified_us: 1, segmented: false });
    fs::write(dir.join("metadata.npkm"), numpack::metadata::encode(&cat)).unwrap();
    let r = run(&dir);
    assert_eq!(r.with_id(ids::LOG_STALE).next().unwrap_or_else(|| panic!("{:#?}", r.findings)).severity, Severity::Info);
    assert_eq!(r.arrays, 1);
    assert_eq!(r.with_id(ids::ORPHAN_DATA).count(), 2, "{:#?}", r.findings);
    assert_eq!(r.with_id(ids::ORPHAN_BITMAP).count(), 1, "{:#?}", r.findings);
    assert!(r.is_ok());
}

#[test]
fn a_bitmap_beside_a_0d_array() {
    // NumPack can write 0-d arrays; numpack cannot, so the store is made by hand.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s.npk");
    fs::create_dir(&dir).unwrap();
    let mut cat = numpack::metadata::Catalogue::new();
    cat.insert("s".into(), numpack::metadata::Entry { dtype: DType::Float64, shape: vec![], modified_us: 1, segmented: false });
    fs::write(dir.join("metadata.npkm"), numpack::metadata::encode(&cat)).unwrap();
    fs::write(dir.join("data_s.npkd"), 2.5f64.to_le_bytes()).unwrap();
    let r = run(&dir);
    assert_eq!(ids_of(&r), vec![ids::NO_LOG], "{:#?}", r.findings);
    fs::write(dir.join("deleted_s.npkb"), [0u8; 16]).unwrap();
    let r = run(&dir);
    assert_eq!(ids_of(&r), vec![ids::NO_LOG, ids::BITMAP_ON_SCALAR], "{:#?}", r.findings);
}

/// "z": 40,000 × 2 int64 stored compressed (three chunks), row 5 deleted, beside the
/// plain fixture arrays.
fn compressed_fixture() -> (tempfile::TempDir, PathBuf) {
    use numpack::compress::{Compression, SaveOptions};
    let (t, dir) = fixture(true);
    let s = Store::open(&dir, OpenOptions::default()).unwrap();
    let z: Vec<u8> = (0..80_000i64).flat_map(|x| (x / 7).to_le_bytes()).collect();
    s.save_with("z", DType::Int64, &[40_000, 2], &z, &SaveOptions { compression: Some(Compression::default()) }).unwrap();
    s.delete_rows("z", &[5]).unwrap();
    s.close().unwrap();
    (t, dir)
}

#[test]
fn compressed_arrays_are_verified_chunk_by_chunk() {
    let (_t, dir) = compressed_fixture();
    let zfile = dir.join("data_z.npkz");
    let z = numpack::compress::ZFile::open(&zfile, "z", false, None).unwrap();
    assert!(z.chunks.len() >= 3, "{} chunks", z.chunks.len());
    let middle = z.chunks[1];
    drop(z);
    // Sound: no finding about it, and its .npkz is not an unknown or orphan file.
    let r = run(&dir);
    assert!(r.findings.iter().all(|f| f.array.as_deref() != Some("z") && f.file.as_deref() != Some("data_z.npkz")), "{:#?}", r.findings);

    // One flipped byte inside chunk 1: that chunk, and only it, is reported.
    let mut bytes = fs::read(&zfile).unwrap();
    bytes[(middle.off + middle.len / 2) as usize] ^= 0x40;
    fs::write(&zfile, &bytes).unwrap();
    let r = run(&dir);
    let found: Vec<_> = r.with_id(ids::COMPRESSED_CHUNK).collect();
    assert_eq!(found.len(), 1, "{:#?}", r.findings);
    assert_eq!((found[0].severity, found[0].file.as_deref(), found[0].array.as_deref()), (Severity::Error, Some("data_z.npkz"), Some("z")));
    assert!(found[0].message.starts_with("chunk 1: "), "{}", found[0].message);

    // A damaged header: reported as such (the chunks cannot be located without it).
    bytes[9] ^= 0x01;
    fs::write(&zfile, &bytes).unwrap();
    let r = run(&dir);
    assert_eq!(r.with_id(ids::COMPRESSED_HEADER).count(), 1, "{:#?}", r.findings);
    assert_eq!(r.with_id(ids::COMPRESSED_CHUNK).count(), 0);
}

#[test]
fn a_compressed_file_that_disagrees_with_the_catalogue_or_a_stale_plain_file() {
    let (_t, dir) = compressed_fixture();
    // The .npkz of another array under z's name: its row count is not z's.
    {
        use numpack::compress::{Compression, SaveOptions};
        let s = Store::open(&dir, OpenOptions::default()).unwrap();
        s.save_with("y", DType::Int64, &[10, 2], &[0u8; 160], &SaveOptions { compression: Some(Compression::default()) }).unwrap();
        s.close().unwrap();
    }
    fs::copy(dir.join("data_y.npkz"), dir.join("data_z.npkz")).unwrap();
    fs::write(dir.join("data_z.npkd"), vec![0u8; 16]).unwrap();
    let r = run(&dir);
    let h: Vec<_> = r.with_id(ids::COMPRESSED_HEADER).collect();
    assert_eq!(h.len(), 1, "{:#?}", r.findings);
    assert_eq!(h[0].array.as_deref(), Some("z"));
    let stale: Vec<_> = r.with_id(ids::STALE_PLAIN_DATA).collect();
    assert_eq!((stale.len(), stale[0].severity, stale[0].file.as_deref()), (1, Severity::Warning, Some("data_z.npkd")));
    // Without its catalogue entry a .npkz is an orphan data file.
    fs::remove_file(dir.join("data_z.npkd")).unwrap();
    fs::rename(dir.join("data_y.npkz"), dir.join("data_gone.npkz")).unwrap();
    let r = run(&dir);
    assert!(r.with_id(ids::ORPHAN_DATA).any(|f| f.file.as_deref() == Some("data_gone.npkz")), "{:#?}", r.findings);
    assert!(r.with_id(ids::DATA_MISSING).any(|f| f.array.as_deref() == Some("y")), "{:#?}", r.findings);
}
