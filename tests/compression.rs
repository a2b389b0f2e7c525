//! Compressed arrays (`data_<name>.npkz`): every store operation on them, reads that
//! decompress only the chunks they need, and corruption named down to the chunk.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use numpack::compress::{self, Compression, SaveOptions};
use numpack::{DType, ErrorCode, OpenOptions, Store};

fn create() -> OpenOptions {
    OpenOptions { create: true, ..Default::default() }
}

fn new_store() -> (tempfile::TempDir, PathBuf, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("z.npk");
    let s = Store::open(&path, create()).unwrap();
    (tmp, path, s)
}

fn zstd(level: i32) -> SaveOptions {
    SaveOptions { compression: Some(Compression { level }) }
}

fn i64s(v: impl IntoIterator<Item = i64>) -> Vec<u8> {
    v.into_iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn to_i64(b: &[u8]) -> Vec<i64> {
    b.chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Rows of 4 int64 (32 bytes, 8192 rows per chunk): row r = [r, 2r, r/7, -r].
fn rows(range: std::ops::Range<i64>) -> Vec<u8> {
    i64s(range.flat_map(|r| [r, 2 * r, r / 7, -r]))
}

const RPC: i64 = 8192;

/// A store with array "a" of `n` such rows, compressed.
fn z_store(n: i64) -> (tempfile::TempDir, PathBuf, Store) {
    let (t, p, s) = new_store();
    s.save_with("a", DType::Int64, &[n as u64, 4], &rows(0..n), &zstd(3)).unwrap();
    (t, p, s)
}

fn firsts(b: &[u8]) -> Vec<i64> {
    to_i64(b).chunks(4).map(|r| r[0]).collect()
}

/// Flips one byte inside chunk `i` of the array's file.
fn damage_chunk(path: &Path, name: &str, i: usize) {
    let file = path.join(compress::file_name(name));
    let z = compress::ZFile::open(&file, name, false, None).unwrap();
    let c = z.chunks[i];
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&file).unwrap();
    let mut b = [0u8];
    let at = c.off + c.len / 2;
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x5a], at).unwrap();
}

#[test]
fn every_dtype_round_trips_and_the_file_is_npkz() {
    let (_t, p, s) = new_store();
    for (k, d) in DType::ALL.iter().enumerate() {
        let n = 100_000u64 + k as u64;
        let shape = [n, 3];
        let bytes: Vec<u8> = (0..n * 3 * d.size() as u64).map(|i| ((i / 5) as u8).wrapping_mul(if *d == DType::Bool { 0 } else { 3 }) | (i % 2 == 0 && *d == DType::Bool) as u8).collect();
        let bytes: Vec<u8> = if *d == DType::Bool { bytes.iter().map(|b| b & 1).collect() } else { bytes };
        let name = format!("a{k}");
        s.save_with(&name, *d, &shape, &bytes, &zstd(3)).unwrap();
        assert!(p.join(format!("data_{name}.npkz")).exists());
        assert!(!p.join(format!("data_{name}.npkd")).exists());
        let (info, back) = s.load(&name).unwrap();
        assert_eq!((info.dtype, info.shape.as_slice()), (*d, &shape[..]));
        assert_eq!(back, bytes, "{d:?}");
        let c = s.compression(&name).unwrap().expect("compressed");
        assert_eq!(c.raw_bytes, bytes.len() as u64);
        assert_eq!(c.level, 3);
        assert!(c.chunks > 1);
        assert!(c.stored_bytes < c.raw_bytes / 2, "{d:?}: {} of {}", c.stored_bytes, c.raw_bytes);
    }
    // A plain array reports no compression; `save_with` without compression is `save`.
    s.save_with("plain", DType::Int64, &[3, 4], &rows(0..3), &SaveOptions::default()).unwrap();
    assert_eq!(s.compression("plain").unwrap(), None);
    assert!(p.join("data_plain.npkd").exists());
    assert_eq!(s.compression("nope").unwrap_err().code, ErrorCode::NotFound);
    // Reopened from the files.
    s.clone().close().unwrap();
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    for (k, d) in DType::ALL.iter().enumerate() {
        assert_eq!(s.load(&format!("a{k}")).unwrap().0.dtype, *d);
    }
}

#[test]
fn bad_options_are_refused() {
    let (_t, _p, s) = new_store();
    for level in [0, 23, -8, 100] {
        let e = s.save_with("a", DType::Int64, &[2, 4], &rows(0..2), &zstd(level)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "level {level}");
        assert!(e.message.contains("level"));
    }
    let e = s.save_with("a", DType::Int64, &[2, 0], &[], &zstd(3)).unwrap_err();
    assert_eq!(e.code, ErrorCode::ShapeMismatch);
    assert!(!s.contains("a").unwrap());
    assert_eq!(s.save_with("a", DType::Int64, &[2, 4], &rows(0..1), &zstd(3)).unwrap_err().code, ErrorCode::BufferSize);
}

#[test]
fn reads_decompress_only_the_chunks_they_need() {
    let n = RPC * 10 + 17;
    let (_t, p, s) = z_store(n);
    // Chunk 4 is damaged: everything outside it still reads.
    damage_chunk(&p, "a", 4);
    let idx: Vec<i64> = vec![0, 5, RPC * 3 + 2, RPC * 10 + 16, -1, RPC * 5, RPC * 4 - 1, 7];
    let mut out = vec![0u8; idx.len() * 32];
    s.read_rows_into("a", &idx, &mut out).unwrap();
    let want: Vec<i64> = idx.iter().map(|&i| if i < 0 { n + i } else { i }).collect();
    assert_eq!(firsts(&out), want);
    let mut out = vec![0u8; 100 * 32];
    s.read_range_into("a", (RPC * 7 - 50) as u64, (RPC * 7 + 50) as u64, &mut out).unwrap();
    assert_eq!(firsts(&out), (RPC * 7 - 50..RPC * 7 + 50).collect::<Vec<_>>());
    // Touching chunk 4 names it and its rows.
    let mut one = vec![0u8; 32];
    let e = s.read_rows_into("a", &[RPC * 4 + 3], &mut one).unwrap_err();
    assert_eq!(e.code, ErrorCode::Corrupt);
    assert!(e.message.contains("chunk 4 (rows 32768..40960)") && e.message.contains("\"a\""), "{}", e.message);
    assert_eq!(s.load("a").unwrap_err().code, ErrorCode::Corrupt);
    // verify() finds exactly that chunk.
    let found = compress::verify(&p.join("data_a.npkz"), "a", Some((DType::Int64, 32, n as u64))).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].chunk, Some(4));
}

#[test]
fn reads_count_only_the_chunks_they_touch() {
    let n = RPC * 10;
    let (_t, p, s) = z_store(n);
    s.clone().close().unwrap();
    let z = compress::ZFile::open(&p.join("data_a.npkz"), "a", false, Some((DType::Int64, 32, n as u64))).unwrap();
    assert_eq!(z.chunks.len(), 10);
    // Three rows in two chunks: two decompressions.
    let mut out = vec![0u8; 3 * 32];
    z.gather(&[(RPC * 2 + 1) as u64, (RPC * 7) as u64, (RPC * 2 + 5) as u64], &mut out).unwrap();
    assert_eq!(firsts(&out), vec![RPC * 2 + 1, RPC * 7, RPC * 2 + 5]);
    assert_eq!(z.decompressions(), 2);
    // A few rows of a recently read chunk come from the cache.
    let mut out = vec![0u8; 20 * 32];
    z.read_runs(&[((RPC * 7 + 10) as u64, 20)], &mut out).unwrap();
    assert_eq!(firsts(&out), (RPC * 7 + 10..RPC * 7 + 30).collect::<Vec<_>>());
    assert_eq!(z.decompressions(), 2);
    // A range over the end of chunk 3 and the start of chunk 4.
    let mut out = vec![0u8; 40 * 32];
    z.read_runs(&[((RPC * 4 - 20) as u64, 40)], &mut out).unwrap();
    assert_eq!(firsts(&out), (RPC * 4 - 20..RPC * 4 + 20).collect::<Vec<_>>());
    assert_eq!(z.decompressions(), 4);
    // Row by row through chunk 5, as a stream in batches of one: one decompression.
    for r in RPC * 5..RPC * 5 + 300 {
        let mut one = vec![0u8; 32];
        z.read_runs(&[(r as u64, 1)], &mut one).unwrap();
        assert_eq!(firsts(&one), vec![r]);
    }
    assert_eq!(z.decompressions(), 5);
}

#[test]
fn random_reads_match_a_plain_copy() {
    let n = RPC * 3 + 1000;
    let (_t, _p, s) = z_store(n);
    s.save("p", DType::Int64, &[n as u64, 4], &rows(0..n)).unwrap();
    s.delete_rows("a", &[1, RPC, RPC + 1, n - 5]).unwrap();
    s.delete_rows("p", &[1, RPC, RPC + 1, n - 5]).unwrap();
    let mut x = 12345u64;
    for _ in 0..20 {
        let idx: Vec<i64> = (0..50)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 33) % (n as u64 - 4)) as i64
            })
            .collect();
        let mut a = vec![0u8; idx.len() * 32];
        let mut b = vec![0u8; idx.len() * 32];
        s.read_rows_into("a", &idx, &mut a).unwrap();
        s.read_rows_into("p", &idx, &mut b).unwrap();
        assert_eq!(a, b);
        let start = (x >> 40) % (n as u64 - 4 - 3000);
        let mut a = vec![0u8; 3000 * 32];
        let mut b = vec![0u8; 3000 * 32];
        s.read_range_into("a", start, start + 3000, &mut a).unwrap();
        s.read_range_into("p", start, start + 3000, &mut b).unwrap();
        assert_eq!(a, b);
    }
    assert!(s.load("a").unwrap().1 == s.load("p").unwrap().1);
    let mut one = vec![0u8; 32];
    assert_eq!(s.read_rows_into("a", &[n], &mut one).unwrap_err().code, ErrorCode::IndexOutOfRange);
}

#[test]
fn append_replace_delete_compact_on_compressed_arrays() {
    let n = RPC + 100;
    let (_t, p, s) = z_store(n);
    let mut model: Vec<i64> = (0..n).collect();
    // Appends that fill the partial last chunk and add new ones.
    s.append("a", DType::Int64, &[10, 4], &rows(n..n + 10)).unwrap();
    s.append("a", DType::Int64, &[(RPC * 2) as u64, 4], &rows(n + 10..n + 10 + RPC * 2)).unwrap();
    model.extend(n..n + 10 + RPC * 2);
    assert_eq!(firsts(&s.load("a").unwrap().1), model);
    assert_eq!(s.compression("a").unwrap().unwrap().chunks, (model.len() as u64).div_ceil(RPC as u64));
    // Replace scattered rows in several chunks, and a range across a chunk boundary.
    let idx = [3i64, RPC + 5, RPC * 2 + 7, -1];
    let data = i64s(idx.iter().flat_map(|&i| [1000 + i, 0, 0, 0]));
    s.replace_rows("a", DType::Int64, &idx, &data).unwrap();
    for &i in &idx {
        let j = if i < 0 { model.len() as i64 + i } else { i } as usize;
        model[j] = 1000 + i;
    }
    s.replace_range("a", DType::Int64, (RPC - 2) as u64, 4, &i64s((0..4).flat_map(|k| [-5 - k, 0, 0, 0]))).unwrap();
    for k in 0..4 {
        model[(RPC - 2 + k) as usize] = -5 - k;
    }
    assert_eq!(firsts(&s.load("a").unwrap().1), model);
    // Delete, then append after deletions.
    s.delete_rows("a", &[0, 2, RPC]).unwrap();
    for i in [RPC as usize, 2, 0] {
        model.remove(i);
    }
    s.append("a", DType::Int64, &[3, 4], &rows(-3..0)).unwrap();
    model.extend(-3..0);
    assert_eq!(firsts(&s.load("a").unwrap().1), model);
    assert_eq!(s.info("a").unwrap().shape[0], model.len() as u64);
    // Wrong dtype or shape for a compressed array is refused like for a plain one.
    assert_eq!(s.append("a", DType::Int32, &[1, 4], &[0; 16]).unwrap_err().code, ErrorCode::DtypeMismatch);
    assert_eq!(s.append("a", DType::Int64, &[1, 3], &[0; 24]).unwrap_err().code, ErrorCode::ShapeMismatch);
    // Reopen: the same rows.
    s.clone().close().unwrap();
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    assert_eq!(firsts(&s.load("a").unwrap().1), model);
    // Compaction drops deleted rows and superseded chunks, and stays compressed.
    let before = s.compression("a").unwrap().unwrap();
    s.compact("a").unwrap();
    let after = s.compression("a").unwrap().unwrap();
    assert!(after.stored_bytes < before.stored_bytes);
    assert_eq!(after.raw_bytes, model.len() as u64 * 32);
    assert!(!p.join("deleted_a.npkb").exists());
    assert_eq!(firsts(&s.load("a").unwrap().1), model);
    // Compacting a compact array changes nothing.
    s.compact("a").unwrap();
    assert_eq!(s.compression("a").unwrap().unwrap(), after);
}

#[test]
fn small_appends_do_not_grow_the_file_without_bound() {
    let (_t, _p, s) = z_store(100);
    let mut n = 100;
    for _ in 0..600 {
        s.append("a", DType::Int64, &[500, 4], &rows(n..n + 500)).unwrap();
        n += 500;
    }
    let c = s.compression("a").unwrap().unwrap();
    // Superseded chunks are reclaimed once they pass 8 MiB and the live bytes.
    assert!(c.stored_bytes < 40 << 20, "{c:?}");
    assert_eq!(firsts(&s.load("a").unwrap().1), (0..n).collect::<Vec<_>>());
}

#[test]
fn clone_rename_drop_resave_and_reset() {
    let (_t, p, s) = z_store(RPC + 1);
    s.delete_rows("a", &[0]).unwrap();
    s.clone_array("a", "b").unwrap();
    assert!(s.compression("b").unwrap().is_some());
    assert_eq!(firsts(&s.load("b").unwrap().1), (1..RPC + 1).collect::<Vec<_>>());
    s.rename("b", "c").unwrap();
    assert!(p.join("data_c.npkz").exists() && !p.join("data_b.npkz").exists());
    assert_eq!(firsts(&s.load("c").unwrap().1), (1..RPC + 1).collect::<Vec<_>>());
    // Plain over compressed and back: one data file at a time.
    s.save("c", DType::Int64, &[2, 4], &rows(0..2)).unwrap();
    assert!(p.join("data_c.npkd").exists() && !p.join("data_c.npkz").exists());
    assert_eq!(s.compression("c").unwrap(), None);
    s.save_with("c", DType::Int64, &[3, 4], &rows(5..8), &zstd(9)).unwrap();
    assert!(!p.join("data_c.npkd").exists() && p.join("data_c.npkz").exists());
    assert_eq!(firsts(&s.load("c").unwrap().1), vec![5, 6, 7]);
    assert_eq!(s.compression("c").unwrap().unwrap().level, 9);
    s.drop_array("c").unwrap();
    assert!(!p.join("data_c.npkz").exists());
    // A plain array renamed onto a freed name reads as plain.
    s.save("d", DType::Int64, &[1, 4], &rows(0..1)).unwrap();
    s.rename("d", "c").unwrap();
    assert_eq!(firsts(&s.load("c").unwrap().1), vec![0]);
    s.reset().unwrap();
    assert!(!p.join("data_a.npkz").exists());
    assert!(s.names().unwrap().is_empty());
}

#[test]
fn streams_and_views() {
    let n = RPC * 4 + 3;
    let (_t, _p, s) = z_store(n);
    s.delete_rows("a", &[5]).unwrap();
    let mut st = s.stream("a", 10_000).unwrap();
    let mut buf = vec![0u8; 10_000 * 32];
    let mut got = Vec::new();
    loop {
        let k = st.next_into(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        got.extend(firsts(&buf[..k as usize * 32]));
    }
    let want: Vec<i64> = (0..n).filter(|&r| r != 5).collect();
    assert_eq!(got, want);
    // A read-only view owns the decompressed rows; a writable one is refused.
    let v = s.view("a", false).unwrap();
    assert!(!v.is_writable());
    assert_eq!(v.rows(), n as u64 - 1);
    assert_eq!(firsts(v.bytes()), (0..n).collect::<Vec<_>>());
    assert_eq!(v.row_map().unwrap()[5], 6);
    let e = s.view("a", true).unwrap_err();
    assert_eq!(e.code, ErrorCode::Unsupported);
    assert!(e.message.contains("compressed"), "{}", e.message);
}

#[test]
fn vector_search_over_a_compressed_array() {
    let (_t, _p, s) = new_store();
    let v: Vec<f32> = (0..20_000).flat_map(|i| [(i % 100) as f32, 1.0, (i / 100) as f32, 0.5]).collect();
    let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    s.save_with("e", DType::Float32, &[20_000, 4], &b, &zstd(3)).unwrap();
    s.save("p", DType::Float32, &[20_000, 4], &b).unwrap();
    let q: Vec<f32> = vec![42.0, 1.0, 17.0, 0.5];
    let qb: Vec<u8> = q.iter().flat_map(|x| x.to_le_bytes()).collect();
    let qs = numpack::vector::Vectors::new(DType::Float32, 4, &qb).unwrap();
    let a = numpack::vector::store_top_k(&s, "e", numpack::vector::Metric::L2, qs, 3).unwrap();
    let qs = numpack::vector::Vectors::new(DType::Float32, 4, &qb).unwrap();
    let b = numpack::vector::store_top_k(&s, "p", numpack::vector::Metric::L2, qs, 3).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn damaged_header_and_index_are_reported() {
    let (_t, p, s) = z_store(RPC * 2);
    s.clone().close().unwrap();
    drop(s);
    let file = p.join("data_a.npkz");
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&file).unwrap();
    // Header: a flipped bit anywhere fails its CRC.
    let mut h = [0u8; 64];
    f.read_exact_at(&mut h, 0).unwrap();
    let mut bad = h;
    bad[33] ^= 1;
    f.write_all_at(&bad, 0).unwrap();
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    let e = s.load("a").unwrap_err();
    assert_eq!(e.code, ErrorCode::Corrupt);
    assert!(e.message.contains("header") && e.message.contains("data_a.npkz"), "{}", e.message);
    let found = compress::verify(&file, "a", None).unwrap();
    assert_eq!((found.len(), found[0].chunk), (1, None));
    // Index: the header is fine, the index fails its CRC.
    f.write_all_at(&h, 0).unwrap();
    let hd = compress::Header::decode(&h).unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, hd.index_off + 9).unwrap();
    f.write_all_at(&[b[0] ^ 0xff], hd.index_off + 9).unwrap();
    s.refresh().unwrap();
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    let e = s.info("a").map(|_| ()).and_then(|_| s.load("a").map(|_| ())).unwrap_err();
    assert!(e.message.contains("index"), "{}", e.message);
    // A file cut short.
    f.write_all_at(&[b[0]], hd.index_off + 9).unwrap();
    f.set_len(hd.index_off).unwrap();
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    let e = s.load("a").unwrap_err();
    assert_eq!(e.code, ErrorCode::Corrupt);
    assert!(e.message.contains("index"), "{}", e.message);
    // A missing file is an error naming it, not an empty array.
    std::fs::remove_file(&file).unwrap();
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    let e = s.load("a").unwrap_err();
    assert!(e.message.contains("data_a.npkd"), "{}", e.message);
}

#[test]
fn frozen_files_list_the_compressed_file() {
    let (_t, _p, s) = z_store(10);
    s.save("b", DType::Int64, &[1, 4], &rows(0..1)).unwrap();
    let names = s.with_frozen_files(|_, names| Ok(names.to_vec())).unwrap();
    assert_eq!(names, vec!["data_a.npkz", "data_b.npkd", "metadata.npkm"]);
}

#[test]
fn read_only_handles_read_compressed_arrays() {
    let (_t, p, s) = z_store(RPC + 5);
    s.clone().close().unwrap();
    let r = Store::open(&p, OpenOptions { read_only: true, ..Default::default() }).unwrap();
    assert_eq!(firsts(&r.load("a").unwrap().1), (0..RPC + 5).collect::<Vec<_>>());
    assert_eq!(r.append("a", DType::Int64, &[1, 4], &rows(0..1)).unwrap_err().code, ErrorCode::ReadOnly);
    assert_eq!(r.save_with("x", DType::Int64, &[1, 4], &rows(0..1), &zstd(3)).unwrap_err().code, ErrorCode::ReadOnly);
}

#[test]
fn a_second_handle_sees_every_change_to_a_compressed_array() {
    // Two handles keep separate states and file caches, as two processes do.
    let (_t, p, a) = z_store(RPC + 10);
    let b = Store::open(&p, OpenOptions::default()).unwrap();
    let mut one = vec![0u8; 32];
    b.read_rows_into("a", &[RPC + 9], &mut one).unwrap();
    assert_eq!(firsts(&one), vec![RPC + 9]);
    // Append (rewrites the partial last chunk), then read the new rows through b.
    a.append("a", DType::Int64, &[5, 4], &rows(RPC + 10..RPC + 15)).unwrap();
    b.read_rows_into("a", &[-1], &mut one).unwrap();
    assert_eq!(firsts(&one), vec![RPC + 14]);
    // Replace a row b has cached the chunk of.
    a.replace_rows("a", DType::Int64, &[RPC + 9], &i64s([-9, 0, 0, 0])).unwrap();
    b.read_rows_into("a", &[RPC + 9], &mut one).unwrap();
    assert_eq!(firsts(&one), vec![-9]);
    // Re-saved plain by a, then compressed again: b follows both.
    a.save("a", DType::Int64, &[2, 4], &rows(7..9)).unwrap();
    assert_eq!(firsts(&b.load("a").unwrap().1), vec![7, 8]);
    assert_eq!(b.compression("a").unwrap(), None);
    a.save_with("a", DType::Int64, &[3, 4], &rows(1..4), &zstd(2)).unwrap();
    assert_eq!(firsts(&b.load("a").unwrap().1), vec![1, 2, 3]);
    assert_eq!(b.compression("a").unwrap().unwrap().level, 2);
    // And b's changes reach a.
    b.append("a", DType::Int64, &[1, 4], &rows(4..5)).unwrap();
    assert_eq!(firsts(&a.load("a").unwrap().1), vec![1, 2, 3, 4]);
}

#[test]
fn packages_carry_compressed_arrays() {
    let (t, _p, s) = z_store(RPC + 7);
    s.delete_rows("a", &[0]).unwrap();
    s.save("b", DType::Int64, &[2, 4], &rows(0..2)).unwrap();
    let pkg = t.path().join("z.npkg");
    numpack::package::pack(&s, &pkg, &Default::default(), None).unwrap();
    let info = numpack::package::info(&pkg).unwrap();
    assert!(info.entries.iter().any(|f| f.name == "data_a.npkz"), "{:?}", info.entries);
    let out = t.path().join("unpacked.npk");
    numpack::package::unpack(&pkg, &out, false, true, None).unwrap();
    let u = Store::open(&out, OpenOptions::default()).unwrap();
    assert_eq!(firsts(&u.load("a").unwrap().1), (1..RPC + 7).collect::<Vec<_>>());
    assert!(u.compression("a").unwrap().is_some());
    assert_eq!(firsts(&u.load("b").unwrap().1), vec![0, 1]);
}
