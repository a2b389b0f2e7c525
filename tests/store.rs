//! Behaviour of the Rust API: every operation, the logical row view after deletions,
//! and a clear error (never a panic or silent no-op) for every kind of bad input.

use std::path::PathBuf;

use numpack::{DType, ErrorCode, OpenOptions, Store};

fn create() -> OpenOptions {
    OpenOptions { create: true, ..Default::default() }
}

fn new_store() -> (tempfile::TempDir, PathBuf, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.npk");
    let s = Store::open(&path, create()).unwrap();
    (tmp, path, s)
}

fn i64s(v: impl IntoIterator<Item = i64>) -> Vec<u8> {
    v.into_iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn to_i64(b: &[u8]) -> Vec<i64> {
    b.chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Array "a" of `n` rows × 2 int64: row r = [r, -r].
fn rows_store(n: i64) -> (tempfile::TempDir, PathBuf, Store) {
    let (t, p, s) = new_store();
    s.save("a", DType::Int64, &[n as u64, 2], &i64s((0..n).flat_map(|r| [r, -r]))).unwrap();
    (t, p, s)
}

fn firsts(s: &Store) -> Vec<i64> {
    to_i64(&s.load("a").unwrap().1).chunks(2).map(|r| r[0]).collect()
}

fn code<T: std::fmt::Debug>(r: numpack::Result<T>) -> ErrorCode {
    r.unwrap_err().code
}

#[test]
fn save_load_all_dtypes_and_shapes() {
    let (_t, p, s) = new_store();
    for (i, d) in DType::ALL.iter().enumerate() {
        let shape: Vec<u64> = match i % 4 {
            0 => vec![5],
            1 => vec![3, 4],
            2 => vec![2, 3, 2],
            _ => vec![2, 1, 2, 3, 1],
        };
        let n = shape.iter().product::<u64>() as usize * d.size();
        let data: Vec<u8> = (0..n).map(|x| if *d == DType::Bool { (x % 2) as u8 } else { (x * 7 % 251) as u8 }).collect();
        s.save(d.numpy_name(), *d, &shape, &data).unwrap();
    }
    s.save("empty", DType::Float32, &[0, 3], &[]).unwrap();
    s.close().unwrap();
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    assert_eq!(s.names().unwrap().len(), 15);
    let (info, bytes) = s.load("complex128").unwrap();
    assert_eq!((info.dtype, info.shape, bytes.len()), (DType::Complex128, vec![3, 4], 12 * 16));
    let (info, bytes) = s.load("empty").unwrap();
    assert_eq!((info.shape, bytes.len()), (vec![0, 3], 0));
    // Zero-row arrays accept appends.
    s.append("empty", DType::Float32, &[2, 3], &[0u8; 24]).unwrap();
    assert_eq!(s.info("empty").unwrap().shape, vec![2, 3]);
}

#[test]
fn overwrite_replaces_contents_shape_and_bitmap() {
    let (_t, p, s) = rows_store(10);
    s.delete_rows("a", &[0]).unwrap();
    assert!(p.join("deleted_a.npkb").exists());
    s.save("a", DType::Int32, &[3], &[1u8; 12]).unwrap();
    let info = s.info("a").unwrap();
    assert_eq!((info.dtype, info.shape, info.physical_rows), (DType::Int32, vec![3], 3));
    assert!(!p.join("deleted_a.npkb").exists());
}

#[test]
fn reads_by_index_and_range_are_logical() {
    let (_t, _p, s) = rows_store(10);
    s.delete_rows("a", &[0, 3, -1]).unwrap(); // live: 1 2 4 5 6 7 8
    assert_eq!(firsts(&s), vec![1, 2, 4, 5, 6, 7, 8]);
    let mut out = vec![0u8; 4 * 16];
    s.read_rows_into("a", &[0, -1, 2, 2], &mut out).unwrap();
    assert_eq!(to_i64(&out), vec![1, -1, 8, -8, 4, -4, 4, -4]);
    let mut out = vec![0u8; 3 * 16];
    s.read_range_into("a", 1, 4, &mut out).unwrap();
    assert_eq!(to_i64(&out), vec![2, -2, 4, -4, 5, -5]);
    s.read_range_into("a", 7, 7, &mut []).unwrap();
    assert_eq!(code(s.read_range_into("a", 5, 8, &mut [0u8; 48])), ErrorCode::IndexOutOfRange);
    assert_eq!(code(s.read_rows_into("a", &[7], &mut [0u8; 16])), ErrorCode::IndexOutOfRange);
    assert_eq!(code(s.read_rows_into("a", &[-8], &mut [0u8; 16])), ErrorCode::IndexOutOfRange);
    assert_eq!(code(s.read_rows_into("a", &[0], &mut [0u8; 15])), ErrorCode::BufferSize);
}

#[test]
fn checked_range_reads_only_the_expected_shape() {
    let (_t, _p, s) = rows_store(10);
    s.delete_rows("a", &[0]).unwrap(); // live: 1..=9
    let info = s.info("a").unwrap();
    let mut out = vec![0u8; 2 * 16];
    s.read_range_checked("a", info.dtype, &info.shape, 0, 2, &mut out).unwrap();
    assert_eq!(to_i64(&out), vec![1, -1, 2, -2]);
    let mut shape = info.shape.clone();
    shape[0] += 1;
    assert_eq!(code(s.read_range_checked("a", info.dtype, &shape, 0, 2, &mut out)), ErrorCode::ShapeMismatch);
    assert_eq!(code(s.read_range_checked("a", info.dtype, &[9, 1, 2], 0, 2, &mut out)), ErrorCode::ShapeMismatch);
    assert_eq!(code(s.read_range_checked("a", DType::Float64, &info.shape, 0, 2, &mut out)), ErrorCode::DtypeMismatch);
    assert_eq!(code(s.read_range_checked("a", info.dtype, &info.shape, 8, 10, &mut out)), ErrorCode::IndexOutOfRange);
    s.delete_rows("a", &[0]).unwrap(); // live: 2..=9: the kept shape is stale
    out.fill(0);
    assert_eq!(code(s.read_range_checked("a", info.dtype, &info.shape, 0, 2, &mut out)), ErrorCode::ShapeMismatch);
    assert_eq!(out, vec![0u8; 32], "nothing copied when the check fails");
    let info = s.info("a").unwrap();
    s.read_rows_checked("a", info.dtype, &info.shape, &[-1, 0], &mut out).unwrap();
    assert_eq!(to_i64(&out), vec![9, -9, 2, -2]);
    assert_eq!(code(s.read_rows_checked("a", info.dtype, &[7, 2], &[0], &mut out[..16])), ErrorCode::ShapeMismatch);
    assert_eq!(code(s.read_rows_checked("a", DType::Uint64, &info.shape, &[0], &mut out[..16])), ErrorCode::DtypeMismatch);
    assert_eq!(code(s.read_rows_checked("a", info.dtype, &info.shape, &[8], &mut out[..16])), ErrorCode::IndexOutOfRange);
}

#[test]
fn one_pass_reads_leave_views_and_later_reads_intact() {
    // read_range_once drops the pages it read from the resident set: views over the same
    // mapping, later reads and writes through the mapping must not notice.
    let n = 100_000i64; // 1.6 MB: whole pages of a plain file, many rows per page
    let (_t, _p, s) = rows_store(n);
    s.delete_rows("a", &[5]).unwrap();
    let view = s.view("a", false).unwrap();
    let before = view.bytes().to_vec();
    let info = s.info("a").unwrap();
    let mut out = vec![0u8; 1000 * 16];
    for start in (0..info.shape[0] - 1000).step_by(1000) {
        s.read_range_once("a", info.dtype, &info.shape, start, start + 1000, &mut out).unwrap();
        let want: Vec<i64> = (start..start + 1000).map(|l| if l < 5 { l as i64 } else { l as i64 + 1 }).flat_map(|r| [r, -r]).collect();
        assert_eq!(to_i64(&out), want);
    }
    assert_eq!(view.bytes(), &before[..]);
    s.replace_rows("a", DType::Int64, &[0], &i64s([7, 7])).unwrap();
    s.read_range_once("a", info.dtype, &info.shape, 0, 1, &mut out[..16]).unwrap();
    assert_eq!(to_i64(&out[..16]), vec![7, 7]);
    assert_eq!(firsts(&s)[..3], [7, 1, 2]);
    assert_eq!(code(s.read_range_once("a", DType::Float64, &info.shape, 0, 1, &mut out[..16])), ErrorCode::DtypeMismatch);
}

#[test]
fn replace_by_index_and_range_after_deletions() {
    let (_t, _p, s) = rows_store(10);
    s.delete_rows("a", &[1, 2]).unwrap(); // live: 0 3 4 5 6 7 8 9
    // Scattered, unsorted and repeated: the last value for a row wins.
    s.replace_rows("a", DType::Int64, &[5, 0, -1, 5], &i64s([50, 50, 100, 100, 90, 90, 51, 51])).unwrap();
    assert_eq!(firsts(&s), vec![100, 3, 4, 5, 6, 51, 8, 90]);
    s.replace_range("a", DType::Int64, 1, 3, &i64s([7, 7, 8, 8, 9, 9])).unwrap();
    assert_eq!(firsts(&s), vec![100, 7, 8, 9, 6, 51, 8, 90]);
    assert_eq!(code(s.replace_range("a", DType::Int64, 6, 3, &i64s([0; 6]))), ErrorCode::IndexOutOfRange);
    assert_eq!(code(s.replace_rows("a", DType::Int32, &[0], &[0u8; 8])), ErrorCode::DtypeMismatch);
    assert_eq!(code(s.replace_rows("a", DType::Int64, &[0, 1], &i64s([1, 1]))), ErrorCode::BufferSize);
    assert_eq!(code(s.replace_rows("a", DType::Int64, &[8], &i64s([1, 1]))), ErrorCode::IndexOutOfRange);
    // A failed replace changes nothing.
    assert_eq!(firsts(&s), vec![100, 7, 8, 9, 6, 51, 8, 90]);
}

#[test]
fn appends_after_deletions_never_resurrect_rows() {
    // Upstream brings deleted rows back when an append lands in the bitmap's last word.
    let (_t, p, s) = rows_store(10);
    s.delete_rows("a", &[0, 1, 2, 9]).unwrap();
    s.append("a", DType::Int64, &[2, 2], &i64s([10, -10, 11, -11])).unwrap();
    assert_eq!(s.info("a").unwrap().shape, vec![8, 2]);
    assert_eq!(firsts(&s), vec![3, 4, 5, 6, 7, 8, 10, 11]);
    s.append("a", DType::Int64, &[100, 2], &i64s((12..112).flat_map(|r| [r, -r]))).unwrap();
    s.close().unwrap();
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    assert_eq!(s.info("a").unwrap().shape, vec![108, 2]);
    assert_eq!(firsts(&s)[..8], [3, 4, 5, 6, 7, 8, 10, 11]);
    s.compact("a").unwrap();
    assert_eq!(s.info("a").unwrap().physical_rows, 108);
    assert_eq!(firsts(&s)[107], 111);
}

#[test]
fn append_validates_dtype_and_shape() {
    let (_t, _p, s) = rows_store(3);
    assert_eq!(code(s.append("a", DType::Float64, &[1, 2], &[0u8; 16])), ErrorCode::DtypeMismatch);
    assert_eq!(code(s.append("a", DType::Int64, &[1, 3], &[0u8; 24])), ErrorCode::ShapeMismatch);
    assert_eq!(code(s.append("a", DType::Int64, &[2], &[0u8; 16])), ErrorCode::ShapeMismatch);
    assert_eq!(code(s.append("a", DType::Int64, &[1, 2], &[0u8; 15])), ErrorCode::BufferSize);
    assert_eq!(code(s.append("nope", DType::Int64, &[1, 2], &[0u8; 16])), ErrorCode::NotFound);
    s.append("a", DType::Int64, &[0, 2], &[]).unwrap();
    assert_eq!(s.info("a").unwrap().shape, vec![3, 2]);
}

#[test]
fn delete_compact_clone_rename_drop_reset() {
    let (_t, p, s) = rows_store(6);
    s.delete_rows("a", &[-1, 0, 0]).unwrap();
    assert_eq!(firsts(&s), vec![1, 2, 3, 4]);
    assert_eq!(code(s.delete_rows("a", &[4])), ErrorCode::IndexOutOfRange);
    s.clone_array("a", "b").unwrap();
    assert_eq!(s.info("b").unwrap().physical_rows, 4); // clones are compact
    assert_eq!(code(s.clone_array("a", "b")), ErrorCode::AlreadyExists);
    s.rename("a", "c").unwrap();
    assert!(!s.contains("a").unwrap());
    assert!(p.join("deleted_c.npkb").exists() && !p.join("data_a.npkd").exists());
    assert_eq!(to_i64(&s.load("c").unwrap().1), to_i64(&s.load("b").unwrap().1));
    assert_eq!(code(s.rename("c", "b")), ErrorCode::AlreadyExists);
    s.compact("c").unwrap();
    assert!(!p.join("deleted_c.npkb").exists());
    s.drop_array("b").unwrap();
    assert_eq!(code(s.drop_array("b")), ErrorCode::NotFound);
    assert_eq!(s.names().unwrap(), vec!["c"]);
    s.reset().unwrap();
    assert!(s.names().unwrap().is_empty());
    let left: Vec<_> = std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(left.iter().all(|n| n == "metadata.npkm" || n == "numpack.wal"), "{left:?}");
}

#[test]
fn invalid_names_never_touch_files_outside_the_store() {
    let (t, _p, s) = new_store();
    for bad in ["", ".", "..", "../escape", "a/b", "a\\b", "nul\0", &"x".repeat(300)] {
        assert_eq!(code(s.save(bad, DType::Uint8, &[1], &[0])), ErrorCode::InvalidName, "{bad:?}");
        assert_eq!(code(s.info(bad)), ErrorCode::InvalidName);
    }
    assert_eq!(code(s.rename("x", "../y")), ErrorCode::InvalidName);
    assert!(!t.path().join("data_escape.npkd").exists());
}

#[test]
fn bad_shapes_and_sizes() {
    let (_t, _p, s) = new_store();
    assert_eq!(code(s.save("z", DType::Float32, &[], &[0; 4])), ErrorCode::ShapeMismatch);
    assert_eq!(code(s.save("z", DType::Float32, &[2, 2], &[0; 15])), ErrorCode::BufferSize);
    assert_eq!(code(s.save("z", DType::Float32, &[u64::MAX, 4], &[])), ErrorCode::InvalidArgument);
    assert_eq!(code(s.save("z", DType::Float32, &[1; 33], &[0; 4])), ErrorCode::ShapeMismatch);
    assert_eq!(code(s.stream("z", 1)), ErrorCode::NotFound);
    // Rows too large to address, even in an array with no rows.
    assert_eq!(code(s.save("z", DType::Uint8, &[0, 1 << 62, 4], &[])), ErrorCode::InvalidArgument);
    s.save("z", DType::Uint8, &[3, 2], &[0; 6]).unwrap();
    let mut st = s.stream("z", u64::MAX).unwrap();
    assert_eq!(code(st.next_into(&mut [0u8; 64])), ErrorCode::BufferSize);
}

#[test]
fn read_only_handles_refuse_changes() {
    let (_t, p, s) = rows_store(3);
    s.close().unwrap();
    let ro = Store::open(&p, OpenOptions { read_only: true, ..Default::default() }).unwrap();
    assert_eq!(firsts(&ro), vec![0, 1, 2]);
    assert_eq!(code(ro.append("a", DType::Int64, &[1, 2], &[0; 16])), ErrorCode::ReadOnly);
    assert_eq!(code(ro.delete_rows("a", &[0])), ErrorCode::ReadOnly);
    assert_eq!(code(ro.view("a", true)), ErrorCode::ReadOnly);
    assert_eq!(code(Store::open(p.join("missing"), OpenOptions { read_only: true, ..Default::default() })), ErrorCode::StoreNotFound);
    assert_eq!(code(Store::open(p.join("missing"), OpenOptions::default())), ErrorCode::StoreNotFound);
}

#[test]
fn drop_if_exists_wipes_stores_but_not_other_directories() {
    let (t, p, s) = rows_store(3);
    drop(s);
    let s = Store::open(&p, OpenOptions { drop_if_exists: true, ..Default::default() }).unwrap();
    assert!(s.names().unwrap().is_empty());
    let precious = t.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("thesis.tex"), b"years of work").unwrap();
    assert_eq!(code(Store::open(&precious, OpenOptions { drop_if_exists: true, ..Default::default() })), ErrorCode::InvalidArgument);
    assert!(precious.join("thesis.tex").exists());
    let file = t.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    assert_eq!(code(Store::open(&file, create())), ErrorCode::InvalidArgument);
}

#[test]
fn views_expose_the_file_and_the_row_map() {
    let (_t, _p, s) = rows_store(5);
    s.delete_rows("a", &[1]).unwrap();
    let v = s.view("a", false).unwrap();
    assert_eq!((v.shape(), v.rows(), v.row_map()), (&[5u64, 2][..], 4, Some(&[0u64, 2, 3, 4][..])));
    assert_eq!(to_i64(v.bytes())[2], 1);
    let mut w = s.view("a", true).unwrap();
    w.bytes_mut().unwrap()[..8].copy_from_slice(&42i64.to_le_bytes());
    w.flush().unwrap();
    assert_eq!(firsts(&s)[0], 42);
    // Views outlive the store handle and see the file as it was mapped.
    s.close().unwrap();
    assert_eq!(to_i64(v.bytes())[0], 42);
}

#[test]
fn stream_visits_every_live_row_once() {
    let (_t, _p, s) = rows_store(25);
    s.delete_rows("a", &[0, 24]).unwrap();
    let mut st = s.stream("a", 10).unwrap();
    let mut buf = vec![0u8; 160];
    let mut seen = vec![];
    loop {
        let n = st.next_into(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        seen.extend(to_i64(&buf[..n as usize * 16]).chunks(2).map(|r| r[0]));
    }
    assert_eq!(seen, (1..24).collect::<Vec<_>>());
    assert_eq!(code(s.stream("a", 0)), ErrorCode::InvalidArgument);
    assert_eq!(code(s.stream("a", 10).unwrap().next_into(&mut [0u8; 10])), ErrorCode::BufferSize);
}

#[test]
fn handles_share_changes_without_reopening() {
    let (_t, p, a) = rows_store(3);
    let b = Store::open(&p, OpenOptions::default()).unwrap();
    a.append("a", DType::Int64, &[1, 2], &i64s([3, -3])).unwrap();
    a.save("new", DType::Uint8, &[1], &[9]).unwrap();
    // b's reads notice the change counter moved and catch up.
    assert_eq!(firsts(&b), vec![0, 1, 2, 3]);
    assert!(b.contains("new").unwrap());
    b.delete_rows("a", &[0]).unwrap();
    assert_eq!(firsts(&a), vec![1, 2, 3]);
    a.close().unwrap();
    b.close().unwrap();
    let c = Store::open(&p, OpenOptions::default()).unwrap();
    assert_eq!(firsts(&c), vec![1, 2, 3]);
    assert!(c.contains("new").unwrap());
}

#[test]
fn threads_share_one_handle() {
    let (_t, _p, s) = rows_store(0);
    std::thread::scope(|sc| {
        for t in 0..4i64 {
            let s = s.clone();
            sc.spawn(move || {
                s.save(&format!("own{t}"), DType::Int64, &[1], &i64s([t])).unwrap();
                for i in 0..200 {
                    s.append("a", DType::Int64, &[1, 2], &i64s([t * 1000 + i, 0])).unwrap();
                    let mut row = [0u8; 16];
                    s.read_rows_into("a", &[-1], &mut row).unwrap();
                }
            });
        }
    });
    let mut all = firsts(&s);
    all.sort();
    let mut want: Vec<i64> = (0..4).flat_map(|t| (0..200).map(move |i| t * 1000 + i)).collect();
    want.sort();
    assert_eq!(all, want);
    assert_eq!(s.names().unwrap().len(), 5);
}

#[test]
fn corrupt_files_give_clear_errors_and_are_never_overwritten() {
    let (_t, p, s) = rows_store(100);
    s.delete_rows("a", &[5]).unwrap();
    s.save("b", DType::Uint8, &[4], &[1, 2, 3, 4]).unwrap();
    s.close().unwrap();

    // A damaged bitmap fails only that array, with the cause.
    let bm = std::fs::read(p.join("deleted_a.npkb")).unwrap();
    std::fs::write(p.join("deleted_a.npkb"), &bm[..bm.len() - 3]).unwrap();
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    let e = s.info("a").unwrap_err();
    assert_eq!(e.code, ErrorCode::Corrupt);
    assert!(e.message.contains("deleted_a.npkb"), "{}", e.message);
    assert_eq!(s.load("b").unwrap().1, vec![1, 2, 3, 4]);
    s.drop_array("a").unwrap(); // a damaged array can still be dropped
    s.close().unwrap();

    // A truncated data file is reported, not read past.
    std::fs::write(p.join("data_b.npkd"), [1u8, 2]).unwrap();
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    let e = s.load("b").unwrap_err();
    assert_eq!(e.code, ErrorCode::Corrupt);
    assert!(e.message.contains("data_b.npkd") && e.message.contains("2 bytes"), "{}", e.message);
    drop(s);

    // Damaged metadata: the open fails and the file is left as it was.
    let meta = std::fs::read(p.join("metadata.npkm")).unwrap();
    for cut in [0, 3, 19, meta.len() - 1] {
        std::fs::write(p.join("metadata.npkm"), &meta[..cut]).unwrap();
        let e = Store::open(&p, OpenOptions::default()).expect_err("opened a damaged store");
        assert_eq!(e.code, ErrorCode::Corrupt, "{}", e.message);
        assert!(e.message.contains("metadata.npkm"), "{}", e.message);
        assert_eq!(std::fs::read(p.join("metadata.npkm")).unwrap(), &meta[..cut]);
    }
    let mut bad = meta.clone();
    bad[24] = 0xff; // the name length of the first array
    std::fs::write(p.join("metadata.npkm"), &bad).unwrap();
    assert_eq!(code(Store::open(&p, OpenOptions::default())), ErrorCode::Corrupt);
    std::fs::remove_file(p.join("metadata.npkm")).unwrap();
    assert_eq!(code(Store::open(&p, OpenOptions::default())), ErrorCode::Corrupt);
}

#[test]
fn damaged_log_tail_is_ignored_but_a_damaged_header_is_an_error() {
    let (_t, p, s) = rows_store(4);
    s.append("a", DType::Int64, &[1, 2], &i64s([4, -4])).unwrap();
    std::mem::forget(s); // as if killed: no checkpoint
    // A torn record after the committed ones (a write cut short) is dropped.
    let wal = p.join("numpack.wal");
    let mut bytes = std::fs::read(&wal).unwrap();
    let committed = bytes.len();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5]);
    std::fs::write(&wal, &bytes).unwrap();
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    assert_eq!(firsts(&s), vec![0, 1, 2, 3, 4]);
    // The next record goes where the torn one was.
    s.append("a", DType::Int64, &[1, 2], &i64s([5, -5])).unwrap();
    std::mem::forget(s);
    assert!(std::fs::metadata(&wal).unwrap().len() as usize > committed);
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    assert_eq!(firsts(&s), vec![0, 1, 2, 3, 4, 5]);
    drop(s);
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes[0] = b'X';
    std::fs::write(&wal, &bytes).unwrap();
    let e = Store::open(&p, OpenOptions::default()).err().unwrap();
    assert_eq!(e.code, ErrorCode::Corrupt);
    assert!(e.message.contains("numpack.wal"), "{}", e.message);
}

#[test]
fn numpack_rewriting_the_catalogue_wins_over_stale_log_records() {
    // A store left with log records, whose metadata.npkm another program then rewrote:
    // the rewritten catalogue is the truth.
    let (_t, p, s) = rows_store(4);
    s.close().unwrap();
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    s.save("only_in_log", DType::Uint8, &[1], &[1]).unwrap();
    std::mem::forget(s);
    let mut cat = numpack::metadata::decode(&std::fs::read(p.join("metadata.npkm")).unwrap()).unwrap();
    cat.get_mut("a").unwrap().modified_us = 1;
    std::fs::write(p.join("metadata.npkm"), numpack::metadata::encode(&cat)).unwrap();
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    assert_eq!(s.names().unwrap(), vec!["a"]);
    assert_eq!(s.info("a").unwrap().modified_us, 1);
}

#[test]
fn modify_time_moves_on_every_change() {
    let (_t, _p, s) = rows_store(4);
    let mut last = s.info("a").unwrap().modified_us;
    let mut step = |f: &dyn Fn(&Store)| {
        std::thread::sleep(std::time::Duration::from_millis(2));
        f(&s);
        let now = s.info("a").unwrap().modified_us;
        assert!(now > last);
        last = now;
    };
    step(&|s| s.replace_rows("a", DType::Int64, &[0], &i64s([1, 1])).unwrap());
    step(&|s| s.append("a", DType::Int64, &[1, 2], &i64s([1, 1])).unwrap());
    step(&|s| s.delete_rows("a", &[0]).unwrap());
    step(&|s| s.compact("a").unwrap());
}

/// An append to an array with deleted rows patches the bitmap in place (words, then the
/// header). A writer killed at any point of that patch leaves a state recovery redoes.
#[test]
fn interrupted_bitmap_patch_of_an_append_is_redone() {
    use std::os::unix::fs::FileExt;
    let applied_end = |p: &std::path::Path| {
        let mut b = [0u8; 8];
        std::fs::File::open(p.join("numpack.wal")).unwrap().read_exact_at(&mut b, 48).unwrap();
        b
    };
    let set_applied_end = |p: &std::path::Path, b: [u8; 8]| {
        std::fs::OpenOptions::new().write(true).open(p.join("numpack.wal")).unwrap().write_all_at(&b, 48).unwrap();
    };
    for old_rows in [60i64, 64, 100, 130] {
        for state in ["before", "words only", "after"] {
            let (_t, p, s) = rows_store(old_rows);
            s.delete_rows("a", &[1, old_rows - 2]).unwrap();
            let bitmap = p.join("deleted_a.npkb");
            let before = std::fs::read(&bitmap).unwrap();
            let applied = applied_end(&p);
            s.append("a", DType::Int64, &[70, 2], &i64s((0..70).flat_map(|r| [1000 + r, 0]))).unwrap();
            std::mem::forget(s); // killed right after: nothing else happens
            let after = std::fs::read(&bitmap).unwrap();
            let file = match state {
                "before" => before.clone(),
                "words only" => [&before[..16], &after[16..]].concat(),
                _ => after.clone(),
            };
            std::fs::write(&bitmap, &file).unwrap();
            set_applied_end(&p, applied);
            let s = Store::open(&p, OpenOptions::default()).unwrap();
            let mut want: Vec<i64> = (0..old_rows).filter(|&r| r != 1 && r != old_rows - 2).collect();
            want.extend(1000..1070);
            assert_eq!(firsts(&s), want, "{old_rows} rows, {state}");
            assert_eq!(std::fs::read(&bitmap).unwrap(), after, "{old_rows} rows, {state}");
        }
    }
}

#[test]
fn frozen_files_are_the_folded_format_files() {
    let (_t, p, s) = rows_store(5);
    s.save("b", DType::Int8, &[3], &[1, 2, 3]).unwrap();
    s.delete_rows("a", &[1]).unwrap();
    // A read-only handle cannot fold the log's records into the catalogue.
    let ro = Store::open(&p, OpenOptions { read_only: true, ..Default::default() }).unwrap();
    let e = ro.with_frozen_files(|_, _| Ok(())).unwrap_err();
    assert_eq!(e.code, ErrorCode::ReadOnly);
    assert!(e.message.contains("writable handle"), "{}", e.message);
    let names = s
        .with_frozen_files(|dir, names| {
            assert_eq!(dir, p.as_path());
            // Folded: the catalogue file alone describes both arrays.
            let cat = numpack::metadata::decode(&std::fs::read(dir.join("metadata.npkm")).unwrap()).unwrap();
            assert_eq!(cat.keys().cloned().collect::<Vec<_>>(), vec!["a", "b"]);
            Ok(names.to_vec())
        })
        .unwrap();
    assert_eq!(names, vec!["data_a.npkd", "data_b.npkd", "deleted_a.npkb", "metadata.npkm"]);
    // Now the log is empty, read-only handles can freeze too.
    assert_eq!(ro.with_frozen_files(|_, n| Ok(n.len())).unwrap(), 4);
    assert_eq!(firsts(&s), vec![0, 2, 3, 4]);
}
