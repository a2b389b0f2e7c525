//! Fuzz target bodies, shared by the libFuzzer binaries in `fuzz/` and by
//! `tests/fuzz_replay.rs`, which replays every corpus and regression input through the
//! same functions on each `cargo test`.
//!
//! Each target takes arbitrary bytes and must return normally: a decoder that rejects
//! its input returns an error, never panics, aborts or allocates more than the input
//! justifies. Checksums (CRC32 of log records, `.npkz` headers, indexes and chunks)
//! are recomputed by the harness where noted, because a fuzzer cannot forge them and
//! would otherwise never get past them; a hostile file can forge them just as easily.
//!
//! Everything a target writes goes into a fresh temporary directory that is removed
//! afterwards. The whole-store target refuses to run log records naming paths with `/`
//! (issue 12, finding 1: replaying them today renames or removes files outside the
//! store, which on a fuzzing host could touch any file the user owns).

#![allow(dead_code)]

use std::fs;
use std::path::Path;

use numpack::bitmap::Bitmap;
use numpack::compress;
use numpack::metadata;
use numpack::segments::Manifest;
use numpack::wal::{self, Op};
use numpack::{DType, OpenOptions, Store};

/// Every target, by the name of its corpus and regression directories.
/// A target: its name and its body.
pub type Target = (&'static str, fn(&[u8]));

pub const TARGETS: &[Target] = &[
    ("catalogue", catalogue),
    ("wal", wal),
    ("bitmap", bitmap),
    ("npkz", npkz),
    ("npkg", npkg),
    ("npy", npy),
    ("npz", npz),
    ("safetensors", safetensors),
    ("segments", segments),
    ("store", store),
];

/// Largest buffer a harness itself allocates to read an array back: beyond this the
/// harness skips the read (the library's own allocations are not limited here).
const READ_LIMIT: u64 = 16 << 20;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("npk-fuzz-").tempdir().expect("cannot create a temporary directory")
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Splits `data` into `n` length-prefixed sections (u32 little-endian lengths, clamped
/// to what is left); the last section takes the rest.
fn sections(mut data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if i + 1 == n {
            out.push(data);
            break;
        }
        if data.len() < 4 {
            out.push(&data[..0]);
            continue;
        }
        let len = (u32_at(data, 0) as usize).min(data.len() - 4);
        out.push(&data[4..4 + len]);
        data = &data[4 + len..];
    }
    out
}

/// The catalogue (`metadata.npkm`): decode, and what decodes re-encodes to itself.
pub fn catalogue(data: &[u8]) {
    if let Ok(cat) = metadata::decode(data) {
        let again = metadata::decode(&metadata::encode(&cat)).expect("a decoded catalogue re-encodes to a valid one");
        assert_eq!(again, cat);
        for e in cat.values() {
            // decode promised checked sizes: these must not overflow.
            let _ = (e.row_bytes(), e.nbytes(), e.physical_rows());
        }
    }
}

/// The log: the first 64 bytes as a header, the rest as one record payload.
pub fn wal(data: &[u8]) {
    let (head, rest) = data.split_at(data.len().min(wal::HEADER_LEN as usize));
    let _ = wal::Header::decode(head);
    if let Ok(op) = Op::decode(rest) {
        let again = Op::decode(&op.encode()).expect("a decoded record re-encodes to a valid one");
        assert_eq!(again, op);
    }
}

/// A deletion bitmap: 8 bytes of row count, the rest as the file.
pub fn bitmap(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let total = u64_at(data, 0);
    if let Ok(b) = Bitmap::decode(&data[8..], total) {
        assert_eq!(b.total(), total);
        assert_eq!(b.live() + b.deleted(), total);
        let again = Bitmap::decode(&b.encode(), total).expect("a decoded bitmap re-encodes to a valid one");
        assert_eq!(again, b);
        let rows = b.live_rows();
        assert_eq!(rows.len() as u64, b.live());
        for (i, &r) in rows.iter().enumerate().take(64) {
            assert!(b.is_live(r));
            assert_eq!(b.physical(i as u64), r);
        }
        let _ = b.live_runs(0, b.live());
    }
}

/// Recomputes the checksums of a `.npkz` image in place: each chunk's CRC (where its
/// bytes lie in the file), the index CRC and the header CRC.
pub fn fix_npkz(f: &mut [u8]) {
    let hl = compress::HEADER_LEN as usize;
    if f.len() < hl || &f[..8] != compress::MAGIC {
        return;
    }
    let index_off = u64_at(f, 40);
    let chunks = u32_at(f, 48) as u64;
    let ilen = chunks.saturating_mul(compress::ENTRY_LEN as u64);
    if let Some(end) = index_off.checked_add(ilen).filter(|&e| e <= f.len() as u64 && index_off >= hl as u64) {
        let (io, end) = (index_off as usize, end as usize);
        for e in (io..end).step_by(compress::ENTRY_LEN) {
            let (off, len) = (u64_at(f, e), u64_at(f, e + 8));
            if let Some(ce) = off.checked_add(len).filter(|&ce| ce <= f.len() as u64) {
                let crc = crc32fast::hash(&f[off as usize..ce as usize]);
                f[e + 24..e + 28].copy_from_slice(&crc.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&f[io..end]);
        f[52..56].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32fast::hash(&f[..60]);
    f[60..64].copy_from_slice(&crc.to_le_bytes());
}

/// A compressed array file: the header decoder, the file reader (checksums fixed up)
/// with every chunk decompressed, and the chunk decoder on its own.
pub fn npkz(data: &[u8]) {
    let _ = compress::Header::decode(data);
    let mut f = data.to_vec();
    fix_npkz(&mut f);
    let dir = tempdir();
    let path = dir.path().join("data_a.npkz");
    fs::write(&path, &f).unwrap();
    if let Ok(z) = compress::ZFile::open(&path, "a", false, None) {
        let _ = z.info();
        let _ = z.garbage();
        let h = compress::Header::decode(&f).expect("ZFile::open accepted the header");
        for i in 0..(h.chunks as usize).min(8) {
            if h.chunk_rows(i as u64).saturating_mul(h.row_bytes) <= READ_LIMIT {
                let _ = z.decompress(i);
            }
        }
    }
    // The chunk decoder with flags, element size and raw size taken from the input.
    if data.len() >= 8 {
        let flags = u32_at(data, 0) & 3;
        let elem = [1usize, 2, 4, 8, 16][data[4] as usize % 5];
        let raw = u16::from_le_bytes([data[5], data[6]]) as usize;
        let mut out = vec![0u8; raw];
        let _ = compress::decode_chunk(&data[8..], flags, elem, &mut out);
    }
}

/// A `.npkg` package: its info, then unpacking it (with verification) into a fresh
/// directory and checking the store that comes out.
pub fn npkg(data: &[u8]) {
    let dir = tempdir();
    let pkg = dir.path().join("p.npkg");
    fs::write(&pkg, data).unwrap();
    if numpack::package::info(&pkg).is_err() {
        return;
    }
    let out = dir.path().join("out");
    if numpack::package::unpack(&pkg, &out, false, true, None).is_ok() {
        let _ = numpack::check::check(&out);
        if let Ok(s) = Store::open(&out, OpenOptions { read_only: true, ..Default::default() }) {
            read_all(&s);
        }
    }
}

fn fresh_store(dir: &Path) -> Store {
    Store::open(dir.join("store"), OpenOptions { create: true, ..Default::default() }).expect("cannot create a store")
}

/// Reads every array of `s` back (those small enough for the harness's buffer).
fn read_all(s: &Store) {
    let Ok(names) = s.names() else { return };
    for n in names.iter().take(8) {
        let Ok(info) = s.info(n) else { continue };
        let Some(nbytes) = info.shape.iter().try_fold(info.dtype.size() as u64, |a, &d| a.checked_mul(d)) else { continue };
        if nbytes <= READ_LIMIT {
            let _ = s.load(n);
            let _ = s.read_rows_into(n, &[0, -1], &mut vec![0u8; (2 * row_bytes(&info).unwrap_or(0)).min(READ_LIMIT) as usize]);
        }
    }
}

fn row_bytes(info: &numpack::ArrayInfo) -> Option<u64> {
    info.shape.iter().skip(1).try_fold(info.dtype.size() as u64, |a, &d| a.checked_mul(d))
}

/// A `.npy` file: its header, then importing it into a store and reading it back.
pub fn npy(data: &[u8]) {
    let dir = tempdir();
    let path = dir.path().join("a.npy");
    fs::write(&path, data).unwrap();
    if numpack::npy::info(&path).is_err() {
        return;
    }
    let s = fresh_store(dir.path());
    if numpack::npy::import(&s, "a", &path, false, None).is_ok() {
        read_all(&s);
    }
}

/// A `.npz` archive: importing every member into a store and reading them back.
pub fn npz(data: &[u8]) {
    let dir = tempdir();
    let path = dir.path().join("a.npz");
    fs::write(&path, data).unwrap();
    let s = fresh_store(dir.path());
    if numpack::npy::import_npz(&s, &path, false, None).is_ok() {
        read_all(&s);
    }
}

/// A safetensors file: the length prefix and JSON header decoders, then the file-level
/// reader and an import into a store.
pub fn safetensors(data: &[u8]) {
    use numpack::safetensors::{self as st, header};
    if data.len() >= 8 {
        let size = data.len() as u64;
        if let Ok(n) = header::header_len(data[..8].try_into().unwrap(), size) {
            let json = &data[8..8 + n as usize];
            let _ = header::parse(json, size - 8 - n);
        }
    }
    let dir = tempdir();
    let path = dir.path().join("a.safetensors");
    fs::write(&path, data).unwrap();
    if st::info(&path).is_err() {
        return;
    }
    let s = fresh_store(dir.path());
    if st::import(&s, &path, &st::ImportOptions::default(), None).is_ok() {
        read_all(&s);
    }
}

/// A segment manifest (`data_<name>.npkseg`): parse, re-encode, plan an append.
pub fn segments(data: &[u8]) {
    if let Ok(m) = Manifest::parse(data, "a") {
        let again = Manifest::parse(&m.encode(), "a").expect("a parsed manifest re-encodes to a valid one");
        assert_eq!(again, m);
        let _ = m.rows();
        let _ = m.check_shape(8, m.rows());
        let _ = m.plan_append("a", 8, 3, 1 << 20);
        let _ = m.renamed("a", "b");
    }
}

/// Whether a decoded record names a path rather than an array (issue 12, finding 1).
fn names_a_path(op: &Op) -> bool {
    let bad = |s: &str| s.contains('/') || s == "." || s == "..";
    match op {
        Op::Save { name, tmp, .. } | Op::Compact { name, tmp, .. } | Op::ZSave { name, tmp, .. } => bad(name) || bad(tmp),
        Op::Append { name, .. } | Op::Replace { name, .. } | Op::Delete { name, .. } | Op::Drop { name } => bad(name),
        Op::ZUpdate { name, .. } | Op::SegAppend { name, .. } => bad(name),
        Op::SegInstall { name, tmps, .. } => bad(name) || tmps.iter().any(|t| bad(t)),
        Op::Rename { from, to, .. } => bad(from) || bad(to),
        Op::Reset | Op::Checkpoint { .. } => false,
    }
}

/// The log image with its records' CRCs recomputed for the header's generation and,
/// when `fit`, the header's base set to `meta` and its end to the last whole record.
/// `None` when a record names a path (see [`names_a_path`]).
fn fix_log(log: &[u8], meta: &[u8], fit: bool) -> Option<Vec<u8>> {
    let mut f = log.to_vec();
    let hl = wal::HEADER_LEN as usize;
    if f.len() < hl {
        return Some(f);
    }
    let generation = u64_at(&f, 16);
    let mut pos = hl;
    while pos + 8 <= f.len() {
        let len = u32_at(&f, pos) as usize;
        if len > f.len() - pos - 8 {
            break;
        }
        let payload = &f[pos + 8..pos + 8 + len];
        if let Ok(op) = Op::decode(payload) {
            if names_a_path(&op) {
                return None;
            }
        }
        let crc = wal::record_crc(generation, payload);
        f[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
        pos += 8 + len;
    }
    if fit {
        let (blen, bcrc) = wal::fingerprint(meta);
        f[24..32].copy_from_slice(&blen.to_le_bytes());
        f[32..36].copy_from_slice(&bcrc.to_le_bytes());
        f[48..56].copy_from_slice(&(hl as u64).min(pos as u64).to_le_bytes());
        f[56..64].copy_from_slice(&(pos as u64).to_le_bytes());
    }
    Some(f)
}

/// A whole store from hostile files. The input is a flags byte, then four
/// length-prefixed sections: `metadata.npkm`, `numpack.wal`, the bitmap and the data
/// file of the catalogue's first array (`a` if it names none), the data file last.
/// Flags: bit 0 fixes the log's record CRCs, bit 1 also fits its header to the
/// catalogue, bit 2 fixes the checksums of a `.npkz` data file, bit 3 leaves the log
/// out, bit 4 writes the data file as `.npkz`.
///
/// The store is opened read-only (list, read, check) then writable (read, replace,
/// append, delete, read again, check, close); afterwards nothing may exist beside the
/// store directory in the sandbox.
pub fn store(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let parts = sections(rest, 4);
    let (meta, log, bits, dat) = (parts[0], parts[1], parts[2], parts[3]);
    let log = if flags & 1 != 0 {
        match fix_log(log, meta, flags & 2 != 0) {
            Some(l) => l,
            None => return,
        }
    } else {
        // Records with wrong CRCs are never replayed, but their path check still applies
        // if the fuzzer happens to forge one.
        match fix_log(log, meta, false) {
            Some(_) => log.to_vec(),
            None => return,
        }
    };
    let first = metadata::decode(meta).ok().and_then(|c| c.keys().next().cloned()).unwrap_or_else(|| "a".to_string());

    let sandbox = tempdir();
    let dir = sandbox.path().join("store");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("metadata.npkm"), meta).unwrap();
    if flags & 8 == 0 {
        fs::write(dir.join(wal::FILE_NAME), &log).unwrap();
    }
    if !bits.is_empty() {
        fs::write(dir.join(numpack::name::bitmap_file(&first)), bits).unwrap();
    }
    if flags & 16 != 0 {
        let mut z = dat.to_vec();
        if flags & 4 != 0 {
            fix_npkz(&mut z);
        }
        fs::write(dir.join(compress::file_name(&first)), z).unwrap();
    } else {
        fs::write(dir.join(numpack::name::data_file(&first)), dat).unwrap();
    }

    let _ = numpack::check::check(&dir);
    if let Ok(s) = Store::open(&dir, OpenOptions { read_only: true, ..Default::default() }) {
        read_all(&s);
        if let (Ok(mut st), Ok(info)) = (s.stream(&first, 4), s.info(&first)) {
            if let Some(rb) = row_bytes(&info).filter(|&rb| rb <= 1 << 16) {
                let mut buf = vec![0u8; (rb * st.batch_rows()) as usize];
                for _ in 0..4 {
                    if !matches!(st.next_into(&mut buf), Ok(n) if n > 0) {
                        break;
                    }
                }
            }
        }
        drop(s);
    }
    if let Ok(s) = Store::open(&dir, OpenOptions::default()) {
        read_all(&s);
        if let Ok(info) = s.info(&first) {
            if let Some(rb) = row_bytes(&info).filter(|&rb| rb <= 1 << 16) {
                let row = vec![0x5au8; rb as usize];
                let _ = s.replace_rows(&first, info.dtype, &[0], &row);
                let _ = s.replace_range(&first, info.dtype, 0, 1, &row);
                let mut shape = info.shape.clone();
                if let Some(d0) = shape.first_mut() {
                    *d0 = 1;
                    let _ = s.append(&first, info.dtype, &shape, &row);
                }
                let _ = s.delete_rows(&first, &[0, -1]);
                read_all(&s);
            }
            let _ = s.view(&first, false).map(drop);
        }
        let _ = s.save("fuzz_new", DType::Int32, &[2], &[0u8; 8]);
        let _ = s.close();
    }
    let _ = numpack::check::check(&dir);
    let beside: Vec<_> = fs::read_dir(sandbox.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(beside, [std::ffi::OsString::from("store")], "a file appeared or vanished beside the store");
}
