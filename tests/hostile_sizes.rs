//! Stores, logs, compressed files and packages whose sizes were crafted to wrap, divide by
//! zero or size huge allocations. Each case runs in a child process whose address space is
//! limited, so that an abort (a failed allocation) or a crash fails the case instead of the
//! runner; every operation must end in a clear error, and `check` must report the damage.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use numpack::check::{check, Severity};
use numpack::compress::{self, Header as ZHeader};
use numpack::metadata::{self, Catalogue};
use numpack::wal::{BitmapPatch, Op, Wal};
use numpack::{Compression, DType, ErrorCode, OpenOptions, SaveOptions, Store};

const CHILD: &str = "NPK_HOSTILE_CASE";
/// Address space of each child: far below what any crafted size asks for, well above
/// what a test binary needs.
const LIMIT: u64 = 2 << 30;

/// Runs test `name` of this binary again in a child with [`LIMIT`] of address space.
fn in_child(name: &str) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"]).env(CHILD, name);
    // SAFETY: only setrlimit, async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: LIMIT as libc::rlim_t, rlim_max: LIMIT as libc::rlim_t };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "case {name} failed in its child ({:?}):\n{so}\n{se}", out.status);
    assert!(so.contains("1 passed"), "case {name} did not run in its child:\n{so}\n{se}");
}

macro_rules! hostile {
    ($name:ident, $body:block) => {
        #[test]
        fn $name() {
            if std::env::var(CHILD).as_deref() == Ok(stringify!($name)) {
                $body
            } else {
                in_child(stringify!($name));
            }
        }
    };
}

fn create() -> OpenOptions {
    OpenOptions { create: true, ..OpenOptions::default() }
}

fn read_only() -> OpenOptions {
    OpenOptions { read_only: true, ..OpenOptions::default() }
}

/// A store with array `a` (`u8`, 10 rows of 4) and float array `f` (4 rows), closed.
fn base() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s.npk");
    let s = Store::open(&dir, create()).unwrap();
    s.save("a", DType::Uint8, &[10, 4], &[7u8; 40]).unwrap();
    s.save("f", DType::Float64, &[4], &[0u8; 32]).unwrap();
    s.close().unwrap();
    (tmp, dir)
}

/// Appends `op` to the log with a valid CRC, as a writer would; `applied` marks its effects
/// done (else the next writable open redoes it).
fn log(dir: &Path, op: &Op, applied: bool) {
    let wal = Wal::open(dir, false).unwrap();
    let hdr = wal.read_header().unwrap();
    let end = wal.append(hdr.end, hdr.generation, &op.encode()).unwrap();
    if applied {
        wal.mark_applied(end);
    }
}

/// Rewrites the catalogue (shapes unchecked by the test) and removes the log, as a
/// store written by another program.
fn set_catalogue(dir: &Path, f: impl FnOnce(&mut Catalogue)) {
    let mut cat = metadata::decode(&fs::read(dir.join(metadata::FILE_NAME)).unwrap()).unwrap();
    f(&mut cat);
    // Entry sizes are written from the shape as given (saturated, never wrapped).
    fs::write(dir.join(metadata::FILE_NAME), metadata::encode(&cat)).unwrap();
    let _ = fs::remove_file(dir.join(numpack::wal::FILE_NAME));
}

#[track_caller]
fn corrupt<T: std::fmt::Debug>(r: numpack::Result<T>, what: &str) -> numpack::Error {
    let e = r.expect_err(what);
    assert_eq!(e.code, ErrorCode::Corrupt, "{what}: {e}");
    e
}

/// `check` reports an error finding whose message contains `needle`.
#[track_caller]
fn reported(dir: &Path, needle: &str) {
    let r = check(dir).unwrap();
    assert!(!r.is_ok(), "check says the store is fine: {:#?}", r.findings);
    assert!(
        r.findings.iter().any(|f| f.severity == Severity::Error && f.message.contains(needle)),
        "no error mentions {needle:?}: {:#?}",
        r.findings
    );
}

/// Each operation fails with a clear error or works; none crashes. The store handle is
/// used as given.
fn exercise(s: &Store, name: &str) {
    let _ = s.info(name);
    let _ = s.load(name);
    let _ = s.view(name, false);
    let _ = s.stream(name, 2).map(|mut st| {
        let mut buf = vec![0u8; 1 << 16];
        st.next_into(&mut buf)
    });
    let _ = s.delete_rows(name, &[0]);
    let _ = s.compact(name);
}

hostile!(catalogue_rows_of_zero_bytes_are_bounded, {
    let (_t, dir) = base();
    let s = Store::open(&dir, OpenOptions::default()).unwrap();
    s.save("e", DType::Uint8, &[10, 0], &[]).unwrap();
    assert_eq!(s.save("e2", DType::Uint8, &[1 << 60, 0], &[]).unwrap_err().code, ErrorCode::InvalidArgument);
    s.close().unwrap();
    // An empty data file and a catalogue claiming 2^60 rows of nothing: a deletion bitmap
    // for them would take 2^57 bytes.
    set_catalogue(&dir, |c| c.get_mut("e").unwrap().shape = vec![1 << 60, 0]);
    let e = corrupt(Store::open(&dir, read_only()), "read-only open");
    assert!(e.message.contains("rows of zero bytes"), "{e}");
    corrupt(Store::open(&dir, OpenOptions::default()), "writable open");
    reported(&dir, "rows of zero bytes");
});

hostile!(logged_row_counts_cannot_wrap_the_byte_size, {
    let (_t, dir) = base();
    // 2^62 rows of 4 bytes: 2^64 bytes, which wraps to 0.
    log(&dir, &Op::Append { name: "a".into(), old_rows: 10, new_rows: 1 << 62, modified_us: 1, bitmap: None }, true);
    let e = corrupt(Store::open(&dir, read_only()), "read-only open");
    assert!(e.message.contains("impossible size"), "{e}");
    corrupt(Store::open(&dir, OpenOptions::default()), "writable open");
    reported(&dir, "impossible size");
});

hostile!(logged_shapes_cannot_wrap, {
    let (_t, dir) = base();
    let entry = metadata::Entry { dtype: DType::Float64, shape: vec![1 << 61, 1], modified_us: 1, segmented: false };
    log(&dir, &Op::Save { name: "f".into(), entry, tmp: "npk-tmp-1-1-1.npkt".into() }, true);
    corrupt(Store::open(&dir, read_only()), "read-only open");
    corrupt(Store::open(&dir, OpenOptions::default()), "writable open");
    reported(&dir, "overflows");
});

hostile!(logged_replace_runs_stay_inside_the_array, {
    // A run whose end wraps around u64 (it would write before the mapping), then one past
    // the end of the array's bytes.
    for run in [(u64::MAX - 3, 8u64), (16, 64)] {
        let (_t, dir) = base();
        let op = Op::Replace { name: "f".into(), modified_us: 1, runs: vec![run], payload: vec![9; run.1 as usize] };
        log(&dir, &op, false);
        let before = fs::read(dir.join("data_f.npkd")).unwrap();
        corrupt(Store::open(&dir, OpenOptions::default()), "writable open");
        corrupt(Store::open(&dir, read_only()), "read-only open");
        assert_eq!(fs::read(dir.join("data_f.npkd")).unwrap(), before, "the data file was written");
        assert!(check(&dir).unwrap().findings.iter().any(|f| f.severity == Severity::Error), "check says {run:?} is fine");
    }
});

hostile!(logged_bitmaps_must_cover_the_array_rows, {
    let (_t, dir) = base();
    let bitmap = BitmapPatch { total: 1 << 62, created: true, words: vec![(0, !1)] };
    log(&dir, &Op::Delete { name: "a".into(), modified_us: 1, bitmap }, false);
    let e = corrupt(Store::open(&dir, OpenOptions::default()), "writable open");
    assert!(e.message.contains("covers"), "{e}");
    reported(&dir, "covers");
});

hostile!(logged_rows_must_be_in_the_data_file_before_a_bitmap_is_built, {
    let (_t, dir) = base();
    // 2^40 rows (4 TiB, which fits u64) with a bitmap of 128 GiB, redone on open; the data
    // file holds 10 rows.
    let rows = 1u64 << 40;
    let bitmap = BitmapPatch { total: rows, created: true, words: vec![] };
    log(&dir, &Op::Append { name: "a".into(), old_rows: 10, new_rows: rows, modified_us: 1, bitmap: Some(bitmap) }, false);
    let e = corrupt(Store::open(&dir, OpenOptions::default()), "writable open");
    assert!(e.message.contains("data_a.npkd"), "{e}");
    let e = Store::open(&dir, read_only()).unwrap_err();
    assert!(matches!(e.code, ErrorCode::NeedsRecovery | ErrorCode::Corrupt), "{e}");
    assert!(!check(&dir).unwrap().is_ok());
});

hostile!(arrays_larger_than_their_files_are_not_allocated, {
    let (_t, dir) = base();
    // Applied: no redo. The catalogue now says 2^40 rows of 4 bytes.
    log(&dir, &Op::Append { name: "a".into(), old_rows: 10, new_rows: 1 << 40, modified_us: 1, bitmap: None }, true);
    for opts in [read_only(), OpenOptions::default()] {
        let s = Store::open(&dir, opts).unwrap();
        assert_eq!(s.info("a").unwrap().nbytes(), 1 << 42);
        corrupt(s.load("a"), "load");
        corrupt(s.view("a", false), "view");
        corrupt(s.check_data("a"), "check_data");
        let mut row = [0u8; 4];
        corrupt(s.read_rows_into("a", &[-1], &mut row), "last row");
        exercise(&s, "a");
    }
    reported(&dir, "data_a.npkd");
});

/// A compressed array `z` whose catalogue shape and `.npkz` file are replaced: `header`
/// and one chunk entry at offset 64 of `chunk_len` bytes, the index right after.
fn compressed_store(shape: Vec<u64>, header: impl FnOnce(u32) -> ZHeader, chunk: (u64, u32, u32)) -> (tempfile::TempDir, PathBuf) {
    let (t, dir) = base();
    let s = Store::open(&dir, OpenOptions::default()).unwrap();
    let opts = SaveOptions { compression: Some(Compression::default()) };
    s.save_with("z", DType::Float32, &[4, 2], &[0u8; 32], &opts).unwrap();
    s.close().unwrap();
    set_catalogue(&dir, |c| c.get_mut("z").unwrap().shape = shape);
    let (len, rows, flags) = chunk;
    let mut index = Vec::new();
    index.extend_from_slice(&64u64.to_le_bytes());
    index.extend_from_slice(&len.to_le_bytes());
    index.extend_from_slice(&rows.to_le_bytes());
    index.extend_from_slice(&flags.to_le_bytes());
    index.extend_from_slice(&0u32.to_le_bytes()); // chunk CRC (never reached)
    index.extend_from_slice(&0u32.to_le_bytes());
    let mut h = header(crc32fast::hash(&index));
    h.index_off = 64 + len;
    let mut file = h.encode().to_vec();
    file.extend(std::iter::repeat_n(0u8, len as usize));
    file.extend_from_slice(&index);
    fs::write(dir.join(compress::file_name("z")), file).unwrap();
    (t, dir)
}

hostile!(compressed_rows_of_zero_bytes_are_refused, {
    let header = |crc| ZHeader { dtype: DType::Float32, level: 3, row_bytes: 0, rows_per_chunk: 1 << 16, rows: 4, index_off: 0, chunks: 1, index_crc: crc };
    let (_t, dir) = compressed_store(vec![4, 0], header, (0, 4, compress::FLAG_RAW));
    for opts in [read_only(), OpenOptions::default()] {
        let s = Store::open(&dir, opts).unwrap();
        let e = corrupt(s.load("z"), "load");
        assert!(e.message.contains("rows of 0 bytes"), "{e}");
        // A row of zero bytes reads as nothing, or fails; it never divides by zero.
        let _ = s.read_rows_into("z", &[0], &mut []);
        exercise(&s, "z");
    }
    let s = Store::open(&dir, OpenOptions::default()).unwrap();
    corrupt(s.append("z", DType::Float32, &[1, 0], &[]).and(s.append("z", DType::Float32, &[2, 0], &[])), "append");
    // Replacing a row of zero bytes changes nothing and may succeed; it must not crash.
    let _ = s.replace_range("z", DType::Float32, 0, 1, &[]);
    drop(s);
    reported(&dir, "rows of 0 bytes");
});

hostile!(compressed_chunks_cannot_claim_more_than_zstd_can_expand_to, {
    // One chunk of 1024 rows of 1 GiB (2^40 bytes) stored in 16 bytes.
    let header = |crc| ZHeader { dtype: DType::Float32, level: 3, row_bytes: 1 << 30, rows_per_chunk: 1024, rows: 1024, index_off: 0, chunks: 1, index_crc: crc };
    let (_t, dir) = compressed_store(vec![1024, 1 << 28], header, (16, 1024, 0));
    for opts in [read_only(), OpenOptions::default()] {
        let s = Store::open(&dir, opts).unwrap();
        let e = corrupt(s.load("z"), "load");
        assert!(e.message.contains("raw bytes"), "{e}");
        exercise(&s, "z");
    }
    reported(&dir, "raw bytes");
});

hostile!(plain_arrays_larger_than_their_file_are_not_loaded, {
    let (_t, dir) = base();
    set_catalogue(&dir, |c| c.get_mut("a").unwrap().shape = vec![1 << 20, 1 << 20]);
    for opts in [read_only(), OpenOptions::default()] {
        let s = Store::open(&dir, opts).unwrap();
        corrupt(s.load("a"), "load");
        corrupt(s.view("a", false), "view");
        exercise(&s, "a");
    }
    reported(&dir, "data_a.npkd");
});

/// A zstd frame of `blocks` RLE blocks of 128 KiB of zeros: 4 bytes per block, the most
/// any zstd stream expands.
fn zstd_bomb(blocks: usize) -> Vec<u8> {
    let mut f = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x50]; // magic; no content size; 1 MiB window
    for i in 0..blocks {
        let last = (i + 1 == blocks) as u32;
        let h = (131072u32 << 3) | (1 << 1) | last;
        f.extend_from_slice(&h.to_le_bytes()[..3]);
        f.push(0);
    }
    f
}

fn package(entries: &[(&str, u64, &[u8])]) -> Vec<u8> {
    let mut p = b"NPKG".to_vec();
    p.extend_from_slice(&2u32.to_le_bytes());
    p.push(1);
    p.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (name, original, payload) in entries {
        p.extend_from_slice(&(name.len() as u32).to_le_bytes());
        p.extend_from_slice(name.as_bytes());
        p.extend_from_slice(&original.to_le_bytes());
        p.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        p.extend_from_slice(payload);
    }
    p.extend_from_slice(&0u32.to_le_bytes());
    p
}

hostile!(package_bombs_are_refused, {
    let tmp = tempfile::tempdir().unwrap();
    // A catalogue that really decompresses to 1.5 GiB of zeros (as far as zstd can
    // expand): more than any catalogue, and than the child's address space.
    let blocks = 12 << 10;
    let bomb = zstd_bomb(blocks);
    let pkg = tmp.path().join("bomb.npkg");
    fs::write(&pkg, package(&[("metadata.npkm", blocks as u64 * 131072, &bomb)])).unwrap();
    let e = corrupt(numpack::package::unpack(&pkg, &tmp.path().join("out"), false, false, None), "unpack");
    assert!(e.message.contains("limit"), "{e}");
    assert!(!tmp.path().join("out").exists());
    // A payload claiming more than any stream of its size can hold.
    let small = zstd_bomb(1);
    let pkg2 = tmp.path().join("claim.npkg");
    fs::write(&pkg2, package(&[("data_a.npkd", 1 << 40, &small), ("metadata.npkm", 20, &small)])).unwrap();
    let e = corrupt(numpack::package::info(&pkg2), "info");
    assert!(e.message.contains("compressed bytes"), "{e}");
    corrupt(numpack::package::unpack(&pkg2, &tmp.path().join("out2"), false, true, None), "unpack");
});

hostile!(a_logged_compressed_header_must_hold_its_rows_before_a_bitmap_is_built, {
    let (_t, dir) = base();
    let s = Store::open(&dir, OpenOptions::default()).unwrap();
    let opts = SaveOptions { compression: Some(Compression::default()) };
    s.save_with("z", DType::Float32, &[4, 2], &[0u8; 32], &opts).unwrap();
    s.close().unwrap();
    // A header claiming 2^40 rows (a bitmap of 128 GiB) whose index is not in the file.
    let rows = 1u64 << 40;
    let h = ZHeader { dtype: DType::Float32, level: 3, row_bytes: 8, rows_per_chunk: 1 << 20, rows, index_off: 64, chunks: 1 << 20, index_crc: 0 };
    let bitmap = BitmapPatch { total: rows, created: true, words: vec![] };
    let op = Op::ZUpdate { name: "z".into(), old_rows: 4, new_rows: rows, modified_us: 1, header: h.encode().to_vec(), bitmap: Some(bitmap) };
    log(&dir, &op, false);
    let e = corrupt(Store::open(&dir, OpenOptions::default()), "writable open");
    assert!(e.message.contains("index"), "{e}");
    assert!(!check(&dir).unwrap().is_ok());
});
