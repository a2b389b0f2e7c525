//! Compressed arrays: the `.npkz` data file. An array stored compressed keeps its
//! catalogue entry in `metadata.npkm` (dtype and shape, as for any array) but its rows
//! live in `data_<name>.npkz` instead of `data_<name>.npkd`:
//!
//! ```text
//! header (64 bytes) | chunk blobs and index blobs, only ever appended
//! ```
//!
//! Rows are cut into chunks of `rows_per_chunk` rows (about [`CHUNK_BYTES`] of raw data;
//! chunk `i` holds rows `i * rows_per_chunk ..`), each chunk byte-shuffled when that
//! helps (byte 0 of every element, then byte 1, ...) and compressed with zstd on its own,
//! with a CRC32 of its stored bytes. The index (32 bytes per chunk) is written after the
//! chunks it names and carries its own CRC32; the header points at the current index and
//! is the only part ever written in place. A change (append, replace) writes new chunk
//! and index blobs past the end of the file, logs the new header, then writes it — the
//! store's log makes that atomic. Superseded blobs are garbage until the array is
//! rewritten (compaction). See `docs/format.md`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dtype::DType;
use crate::error::{Error, ErrorCode, Result};

pub const MAGIC: &[u8; 8] = b"NPKZARR\0";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: u64 = 64;
pub const ENTRY_LEN: usize = 32;
/// Raw bytes aimed at per chunk.
pub const CHUNK_BYTES: u64 = 256 << 10;
/// Codec code for zstd, the only one.
pub const CODEC_ZSTD: u8 = 1;
/// Chunk flag: the raw bytes were byte-shuffled before compression.
pub const FLAG_SHUFFLE: u32 = 1;
/// Chunk flag: stored as is (compression did not make it smaller).
pub const FLAG_RAW: u32 = 2;
/// Default zstd level.
pub const DEFAULT_LEVEL: i32 = 3;
/// Chunks compressed or decompressed together (bounds memory of bulk operations).
const GROUP: usize = 64;

/// `data_<name>.npkz`: a compressed array's data file.
pub fn file_name(name: &str) -> String {
    format!("data_{name}.npkz")
}

/// How to compress an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compression {
    /// zstd level, 1..=22 (negative levels, zstd's fast modes, down to -7 are accepted too).
    pub level: i32,
}

impl Default for Compression {
    fn default() -> Self {
        Compression { level: DEFAULT_LEVEL }
    }
}

impl Compression {
    pub fn check(&self) -> Result<()> {
        if !(-7..=22).contains(&self.level) || self.level == 0 {
            return Err(Error::invalid(format!("zstd level {} is out of range (1..=22, or -7..=-1 for the fast modes)", self.level)));
        }
        Ok(())
    }
}

/// Options of [`crate::Store::save_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaveOptions {
    /// `None`: a plain `.npkd` file, as [`crate::Store::save`].
    pub compression: Option<Compression>,
}

/// What [`crate::Store::compression`] reports for a compressed array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompressionInfo {
    pub level: i32,
    pub chunks: u64,
    pub rows_per_chunk: u64,
    /// Size of the `.npkz` file (superseded chunks included until compaction).
    pub stored_bytes: u64,
    /// Bytes of all physical rows uncompressed.
    pub raw_bytes: u64,
}

/// The file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub dtype: DType,
    pub level: i32,
    pub row_bytes: u64,
    pub rows_per_chunk: u64,
    /// Physical rows (deleted ones included).
    pub rows: u64,
    pub index_off: u64,
    pub chunks: u32,
    pub index_crc: u32,
}

/// Most bytes one stored zstd byte can expand to: a frame is made of blocks of at most
/// 128 KiB of output, each taking at least a 3-byte header and one byte (an RLE block).
pub const MAX_ZSTD_RATIO: u64 = 32 << 10;

/// A chunk to decompress: its index, its pieces (offset, length) and the output rows
/// before it.
type ChunkTask = (usize, Vec<(usize, usize)>, usize);

pub fn rows_per_chunk(row_bytes: u64) -> u64 {
    CHUNK_BYTES.checked_div(row_bytes).map_or(1 << 16, |rows| rows.max(1))
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut h = [0u8; HEADER_LEN as usize];
        h[0..8].copy_from_slice(MAGIC);
        h[8..10].copy_from_slice(&VERSION.to_le_bytes());
        h[10] = self.dtype.code() as u8;
        h[11] = CODEC_ZSTD;
        h[12..16].copy_from_slice(&self.level.to_le_bytes());
        h[16..24].copy_from_slice(&self.row_bytes.to_le_bytes());
        h[24..32].copy_from_slice(&self.rows_per_chunk.to_le_bytes());
        h[32..40].copy_from_slice(&self.rows.to_le_bytes());
        h[40..48].copy_from_slice(&self.index_off.to_le_bytes());
        h[48..52].copy_from_slice(&self.chunks.to_le_bytes());
        h[52..56].copy_from_slice(&self.index_crc.to_le_bytes());
        // 56..60: flags, none defined (0).
        let crc = crc32fast::hash(&h[..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        h
    }

    pub fn decode(h: &[u8]) -> std::result::Result<Header, String> {
        if h.len() < HEADER_LEN as usize {
            return Err(format!("the file is {} bytes, shorter than its 64-byte header", h.len()));
        }
        if &h[0..8] != MAGIC {
            return Err("bad magic (expected \"NPKZARR\\0\")".into());
        }
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap());
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap());
        if crc32fast::hash(&h[..60]) != u32_at(60) {
            return Err("the header fails its CRC32".into());
        }
        let version = u16::from_le_bytes([h[8], h[9]]);
        if version != VERSION {
            return Err(format!("format version {version} is not supported (this library reads version {VERSION})"));
        }
        let dtype = DType::from_code(h[10] as u32).ok_or(format!("unknown dtype code {}", h[10]))?;
        if h[11] != CODEC_ZSTD {
            return Err(format!("unknown codec {}", h[11]));
        }
        let flags = u32_at(56);
        if flags != 0 {
            return Err(format!("unknown header flags {flags:#x}"));
        }
        let hd = Header {
            dtype,
            level: i32::from_le_bytes(h[12..16].try_into().unwrap()),
            row_bytes: u64_at(16),
            rows_per_chunk: u64_at(24),
            rows: u64_at(32),
            index_off: u64_at(40),
            chunks: u32_at(48),
            index_crc: u32_at(52),
        };
        // Writers refuse rows of zero bytes (nothing to compress); readers divide by it.
        if hd.row_bytes == 0 {
            return Err("rows of 0 bytes (a compressed array's rows hold at least one element)".into());
        }
        if hd.row_bytes % dtype.size() as u64 != 0 {
            return Err(format!("row size {} is not a multiple of the {}-byte element", hd.row_bytes, dtype.size()));
        }
        // Writers pick rows per chunk (`rows_per_chunk()` today); readers take any.
        if hd.rows_per_chunk == 0 || hd.rows_per_chunk > u32::MAX as u64 {
            return Err(format!("{} rows per chunk", hd.rows_per_chunk));
        }
        if hd.rows.checked_mul(hd.row_bytes).is_none() || hd.rows_per_chunk.checked_mul(hd.row_bytes).is_none_or(|b| b > isize::MAX as u64) {
            return Err(format!("{} rows of {} bytes, {} per chunk, overflow byte sizes", hd.rows, hd.row_bytes, hd.rows_per_chunk));
        }
        if hd.rows.div_ceil(hd.rows_per_chunk) != hd.chunks as u64 {
            return Err(format!("{} chunks cannot hold {} rows of {} per chunk", hd.chunks, hd.rows, hd.rows_per_chunk));
        }
        if hd.index_off < HEADER_LEN {
            return Err(format!("the index offset {} lies inside the header", hd.index_off));
        }
        Ok(hd)
    }

    /// Rows of chunk `i`.
    pub fn chunk_rows(&self, i: u64) -> u64 {
        self.rows_per_chunk.min(self.rows - i * self.rows_per_chunk)
    }
}

/// One index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub off: u64,
    pub len: u64,
    pub rows: u32,
    pub flags: u32,
    pub crc: u32,
}

fn encode_index(chunks: &[Chunk]) -> Vec<u8> {
    let mut b = Vec::with_capacity(chunks.len() * ENTRY_LEN);
    for c in chunks {
        b.extend_from_slice(&c.off.to_le_bytes());
        b.extend_from_slice(&c.len.to_le_bytes());
        b.extend_from_slice(&c.rows.to_le_bytes());
        b.extend_from_slice(&c.flags.to_le_bytes());
        b.extend_from_slice(&c.crc.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
    }
    b
}

/// A compressed array's open file, with the header and index it was read with. Chunk
/// and index blobs are never overwritten, so this stays a valid snapshot of that version.
pub struct ZFile {
    pub file: File,
    pub path: PathBuf,
    /// The array's name, for messages.
    pub array: String,
    pub header: Header,
    pub chunks: Vec<Chunk>,
    /// The last chunks decompressed for partial reads (streams in small batches, nearby
    /// rows): chunk blobs never change, so they stay valid as long as this snapshot.
    recent: std::sync::Mutex<Vec<(usize, std::sync::Arc<Vec<u8>>)>>,
    /// Chunks decompressed through this handle.
    decompressed: std::sync::atomic::AtomicU64,
}

/// Chunks kept in [`ZFile`]'s small cache.
const RECENT: usize = 2;

/// A problem found by [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The chunk concerned; `None` for the header or index.
    pub chunk: Option<u64>,
    pub message: String,
}

impl ZFile {
    /// Opens `path` and checks its header and index (not the chunks) against the
    /// catalogue's `dtype`, `row_bytes` and physical `rows` when given.
    pub fn open(path: &Path, array: &str, writable: bool, expect: Option<(DType, u64, u64)>) -> Result<ZFile> {
        let access = if writable { crate::dirfd::Access::ReadWrite } else { crate::dirfd::Access::Read };
        let file = crate::dirfd::open_path(path, access)?.ok_or_else(|| Error::io("cannot open data file", path, std::io::ErrorKind::NotFound.into()))?;
        ZFile::from_file(file, path, array, expect)
    }

    pub fn from_file(file: File, path: &Path, array: &str, expect: Option<(DType, u64, u64)>) -> Result<ZFile> {
        let corrupt = |m: String| Error::corrupt(path, format!("compressed array {array:?}: {m}"));
        let len = file.metadata().map_err(|e| Error::io("cannot stat", path, e))?.len();
        let mut h = vec![0u8; HEADER_LEN.min(len) as usize];
        file.read_exact_at(&mut h, 0).map_err(|e| Error::io("cannot read", path, e))?;
        let header = Header::decode(&h).map_err(|m| corrupt(format!("header: {m}")))?;
        if let Some((dtype, row_bytes, rows)) = expect {
            if header.dtype != dtype || header.row_bytes != row_bytes || header.rows != rows {
                return Err(corrupt(format!(
                    "the header says {} rows of {} bytes of {} but the catalogue says {rows} rows of {row_bytes} bytes of {}",
                    header.rows,
                    header.row_bytes,
                    header.dtype.numpy_name(),
                    dtype.numpy_name()
                )));
            }
        }
        let ilen = header.chunks as u64 * ENTRY_LEN as u64;
        if header.index_off.checked_add(ilen).is_none_or(|e| e > len) {
            return Err(corrupt(format!("the index ({ilen} bytes at {}) runs past the end of the {len}-byte file", header.index_off)));
        }
        let mut ib = vec![0u8; ilen as usize];
        file.read_exact_at(&mut ib, header.index_off).map_err(|e| Error::io("cannot read", path, e))?;
        if crc32fast::hash(&ib) != header.index_crc {
            return Err(corrupt("the chunk index fails its CRC32".into()));
        }
        let mut chunks = Vec::with_capacity(header.chunks as usize);
        for (i, e) in ib.chunks_exact(ENTRY_LEN).enumerate() {
            let c = Chunk {
                off: u64::from_le_bytes(e[0..8].try_into().unwrap()),
                len: u64::from_le_bytes(e[8..16].try_into().unwrap()),
                rows: u32::from_le_bytes(e[16..20].try_into().unwrap()),
                flags: u32::from_le_bytes(e[20..24].try_into().unwrap()),
                crc: u32::from_le_bytes(e[24..28].try_into().unwrap()),
            };
            // A chunk's raw size is bounded by what its stored bytes can expand to: buffers
            // are sized from it before decompressing, so a tiny "bomb" chunk claiming
            // gigabytes must be refused here.
            let raw = c.rows as u64 * header.row_bytes;
            let most = if c.flags & FLAG_RAW != 0 { c.len } else { c.len.saturating_mul(MAX_ZSTD_RATIO) };
            if raw > most {
                return Err(corrupt(format!("chunk {i} claims {raw} raw bytes from {} stored bytes (at most {most})", c.len)));
            }
            if c.rows as u64 != header.chunk_rows(i as u64) || c.off < HEADER_LEN || c.off.checked_add(c.len).is_none_or(|e| e > len) || c.flags & !(FLAG_SHUFFLE | FLAG_RAW) != 0 {
                return Err(corrupt(format!("index entry of chunk {i} is inconsistent ({c:?})")));
            }
            chunks.push(c);
        }
        Ok(ZFile { file, path: path.to_path_buf(), array: array.to_string(), header, chunks, recent: Default::default(), decompressed: Default::default() })
    }

    /// Chunks decompressed through this handle so far (a debugging and test aid).
    pub fn decompressions(&self) -> u64 {
        self.decompressed.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn rb(&self) -> usize {
        self.header.row_bytes as usize
    }

    fn rpc(&self) -> u64 {
        self.header.rows_per_chunk
    }

    pub fn info(&self) -> Result<CompressionInfo> {
        let len = self.file.metadata().map_err(|e| Error::io("cannot stat", &self.path, e))?.len();
        Ok(CompressionInfo {
            level: self.header.level,
            chunks: self.chunks.len() as u64,
            rows_per_chunk: self.rpc(),
            stored_bytes: len,
            raw_bytes: self.header.rows * self.header.row_bytes,
        })
    }

    /// Bytes of the file no longer referenced (superseded chunks and indexes).
    pub fn garbage(&self) -> Result<u64> {
        let len = self.file.metadata().map_err(|e| Error::io("cannot stat", &self.path, e))?.len();
        let live: u64 = HEADER_LEN + self.chunks.iter().map(|c| c.len).sum::<u64>() + self.chunks.len() as u64 * ENTRY_LEN as u64;
        Ok(len.saturating_sub(live))
    }

    fn damaged(&self, i: usize, what: &str) -> Error {
        let first = i as u64 * self.rpc();
        Error::corrupt(
            &self.path,
            format!("compressed array {:?}: chunk {i} (rows {first}..{}) {what}", self.array, first + self.header.chunk_rows(i as u64)),
        )
    }

    /// Decompresses chunk `i` into `out` (exactly its raw size), checking its CRC32.
    pub fn decompress_into(&self, i: usize, out: &mut [u8]) -> Result<()> {
        let c = self.chunks[i];
        debug_assert_eq!(out.len() as u64, c.rows as u64 * self.header.row_bytes);
        with_scratch(&STORED, c.len as usize, |stored| {
            self.file.read_exact_at(stored, c.off).map_err(|e| Error::io("cannot read", &self.path, e))?;
            if crc32fast::hash(stored) != c.crc {
                return Err(self.damaged(i, "fails its CRC32"));
            }
            self.decompressed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            decode_chunk(stored, c.flags, self.header.dtype.size(), out).map_err(|m| self.damaged(i, &m))
        })
    }

    pub fn decompress(&self, i: usize) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.chunks[i].rows as usize * self.rb()];
        self.decompress_into(i, &mut out)?;
        Ok(out)
    }

    /// Chunk `i` decompressed, from the small cache of recent chunks when it is there.
    pub fn chunk(&self, i: usize) -> Result<std::sync::Arc<Vec<u8>>> {
        if let Some((_, c)) = self.recent.lock().unwrap().iter().find(|(k, _)| *k == i) {
            return Ok(c.clone());
        }
        let c = std::sync::Arc::new(self.decompress(i)?);
        let mut recent = self.recent.lock().unwrap();
        if recent.len() >= RECENT {
            recent.remove(0);
        }
        recent.push((i, c.clone()));
        Ok(c)
    }

    /// Copies physical rows `phys` (any order, repeats allowed) into `out`, decompressing
    /// each chunk that holds one of them once (in parallel).
    pub fn gather(&self, phys: &[u64], out: &mut [u8]) -> Result<()> {
        let rb = self.rb();
        if rb == 0 || phys.is_empty() {
            return Ok(());
        }
        let rpc = self.rpc();
        let mut order: Vec<(u64, usize)> = phys.iter().enumerate().map(|(k, &p)| (p, k)).collect();
        order.sort_unstable_by_key(|&(p, _)| p / rpc);
        let mut at = 0;
        while at < order.len() {
            // The next GROUP distinct chunks.
            let mut ids: Vec<u64> = Vec::new();
            let mut end = at;
            while end < order.len() {
                let c = order[end].0 / rpc;
                if ids.last() != Some(&c) {
                    if ids.len() == GROUP {
                        break;
                    }
                    ids.push(c);
                }
                end += 1;
            }
            let bufs: Vec<std::sync::Arc<Vec<u8>>> = ids.par_iter().map(|&c| self.chunk(c as usize)).collect::<Result<_>>()?;
            let mut slot = 0;
            for &(p, k) in &order[at..end] {
                while ids[slot] != p / rpc {
                    slot += 1;
                }
                let r = (p - ids[slot] * rpc) as usize;
                out[k * rb..(k + 1) * rb].copy_from_slice(&bufs[slot][r * rb..(r + 1) * rb]);
            }
            at = end;
        }
        Ok(())
    }

    /// Copies the physical row runs `(first row, rows)` (ascending, not overlapping) back
    /// to back into `out`. Chunks are decompressed in parallel, whole chunks straight into
    /// `out`.
    pub fn read_runs(&self, runs: &[(u64, u64)], out: &mut [u8]) -> Result<()> {
        let rb = self.rb();
        if rb == 0 {
            return Ok(());
        }
        let rpc = self.rpc();
        // Per chunk: the pieces (row in chunk, rows) it supplies, in output order.
        let mut tasks: Vec<ChunkTask> = Vec::new();
        for &(start, n) in runs {
            let mut r = start;
            while r < start + n {
                let c = (r / rpc) as usize;
                let take = ((c as u64 + 1) * rpc).min(start + n) - r;
                let piece = ((r - c as u64 * rpc) as usize, take as usize);
                match tasks.last_mut() {
                    Some(t) if t.0 == c => {
                        t.1.push(piece);
                        t.2 += take as usize;
                    }
                    _ => tasks.push((c, vec![piece], take as usize)),
                }
                r += take;
            }
        }
        let mut rest = out;
        let mut jobs = Vec::with_capacity(tasks.len());
        for (c, pieces, rows) in tasks {
            let (head, tail) = rest.split_at_mut(rows * rb);
            jobs.push((c, pieces, head));
            rest = tail;
        }
        for group in jobs.chunks_mut(GROUP) {
            group.par_iter_mut().try_for_each(|(c, pieces, dst)| -> Result<()> {
                let full = self.chunks[*c].rows as usize;
                if pieces.len() == 1 && pieces[0] == (0, full) {
                    return self.decompress_into(*c, dst);
                }
                let buf = self.chunk(*c)?;
                let mut at = 0;
                for &(r, n) in pieces.iter() {
                    dst[at..at + n * rb].copy_from_slice(&buf[r * rb..(r + n) * rb]);
                    at += n * rb;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Writes new versions of chunks (`(index, raw rows)`; indices past the end extend the
    /// array) and a new index past the end of the file; returns the header that makes them
    /// current, for the caller to log and then write with [`ZFile::write_header`].
    pub fn stage(&self, changed: Vec<(usize, Vec<u8>)>, rows: u64) -> Result<Header> {
        let rb = self.header.row_bytes;
        let level = self.header.level;
        let elem = self.header.dtype.size();
        let mut chunks = self.chunks.clone();
        let n = rows.div_ceil(self.rpc()) as usize;
        if n < chunks.len() {
            return Err(Error::invalid("a compressed array cannot shrink in place"));
        }
        let mut at = self.file.metadata().map_err(|e| Error::io("cannot stat", &self.path, e))?.len().max(HEADER_LEN);
        for group in changed.chunks(GROUP) {
            let packed: Vec<(Vec<u8>, u32)> = group.par_iter().map(|(_, raw)| encode_chunk(raw, elem, level)).collect();
            let mut blob = Vec::with_capacity(packed.iter().map(|p| p.0.len()).sum());
            for ((i, raw), (bytes, flags)) in group.iter().zip(packed) {
                let c = Chunk { off: at + blob.len() as u64, len: bytes.len() as u64, rows: (raw.len() as u64 / rb.max(1)) as u32, flags, crc: crc32fast::hash(&bytes) };
                if rb == 0 {
                    return Err(Error::invalid("rows of zero bytes cannot be stored compressed"));
                }
                blob.extend_from_slice(&bytes);
                if *i < chunks.len() {
                    chunks[*i] = c;
                } else if *i == chunks.len() {
                    chunks.push(c);
                } else {
                    return Err(Error::invalid("chunks must be added in order"));
                }
            }
            self.file.write_all_at(&blob, at).map_err(|e| Error::io("cannot write", &self.path, e))?;
            at += blob.len() as u64;
        }
        if chunks.len() != n {
            return Err(Error::invalid(format!("{} chunks staged for {rows} rows", chunks.len())));
        }
        let index = encode_index(&chunks);
        self.file.write_all_at(&index, at).map_err(|e| Error::io("cannot write", &self.path, e))?;
        Ok(Header { rows, index_off: at, chunks: n as u32, index_crc: crc32fast::hash(&index), ..self.header })
    }
}

/// Writes a header in place (one system call).
pub fn write_header(path: &Path, header: &[u8]) -> Result<()> {
    let f = crate::dirfd::open_path(path, crate::dirfd::Access::ReadWrite)?.ok_or_else(|| Error::io("cannot open", path, std::io::ErrorKind::NotFound.into()))?;
    f.write_all_at(header, 0).map_err(|e| Error::io("cannot write", path, e))
}


/// Byte-shuffles `src` (elements of `elem` bytes) into `dst`: byte 0 of every element,
/// then byte 1, ...
pub fn shuffle(src: &[u8], elem: usize, dst: &mut [u8]) {
    match elem {
        2 => shuffle_n::<2>(src, dst),
        4 => shuffle_n::<4>(src, dst),
        8 => shuffle_n::<8>(src, dst),
        16 => shuffle_n::<16>(src, dst),
        _ => {
            let n = src.len() / elem;
            for b in 0..elem {
                for (i, o) in dst[b * n..(b + 1) * n].iter_mut().enumerate() {
                    *o = src[i * elem + b];
                }
            }
        }
    }
}

/// Inverse of [`shuffle`].
pub fn unshuffle(src: &[u8], elem: usize, dst: &mut [u8]) {
    match elem {
        2 => unshuffle_n::<2>(src, dst),
        4 => unshuffle_n::<4>(src, dst),
        8 => unshuffle_n::<8>(src, dst),
        16 => unshuffle_n::<16>(src, dst),
        _ => {
            let n = src.len() / elem;
            for b in 0..elem {
                for (i, &v) in src[b * n..(b + 1) * n].iter().enumerate() {
                    dst[i * elem + b] = v;
                }
            }
        }
    }
}

/// Elements per block of the transposes: the block's `E` output streams stay in cache.
const BLOCK: usize = 256;

fn shuffle_n<const E: usize>(src: &[u8], dst: &mut [u8]) {
    let n = src.len() / E;
    let mut i = 0;
    while i < n {
        let m = BLOCK.min(n - i);
        for b in 0..E {
            let out = &mut dst[b * n + i..b * n + i + m];
            let inp = &src[i * E..(i + m) * E];
            for (o, e) in out.iter_mut().zip(inp.chunks_exact(E)) {
                *o = e[b];
            }
        }
        i += m;
    }
}

fn unshuffle_n<const E: usize>(src: &[u8], dst: &mut [u8]) {
    let n = src.len() / E;
    let mut i = 0;
    while i < n {
        let m = BLOCK.min(n - i);
        let out = &mut dst[i * E..(i + m) * E];
        for b in 0..E {
            let inp = &src[b * n + i..b * n + i + m];
            for (e, &v) in out.chunks_exact_mut(E).zip(inp) {
                e[b] = v;
            }
        }
        i += m;
    }
}

thread_local! {
    // Scratch buffers reused across chunks: fresh 256 KiB buffers would be zeroed and
    // page-faulted in for every chunk.
    static STORED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    static UNSHUFFLED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    static SHUFFLED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    static ZOUT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    static CCTX: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { std::cell::RefCell::new(None) };
    static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` on this thread's buffer `key`, at least `len` bytes long (contents
/// unspecified). Taken out of the cell meanwhile, so nested use cannot conflict.
fn with_scratch<R>(key: &'static std::thread::LocalKey<std::cell::RefCell<Vec<u8>>>, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut buf = key.with(|c| std::mem::take(&mut *c.borrow_mut()));
    if buf.len() < len {
        buf.resize(len, 0);
    }
    let r = f(&mut buf[..len]);
    // Keep it unless it grew far past a chunk (a huge row).
    if buf.len() <= 4 * CHUNK_BYTES as usize {
        key.with(|c| *c.borrow_mut() = buf);
    }
    r
}

/// zstd-compresses `src` at `level` and passes the result (empty on failure) to `f`.
fn zcompress_with<R>(src: &[u8], level: i32, f: impl FnOnce(&[u8]) -> R) -> R {
    let mut out = ZOUT.with(|c| std::mem::take(&mut *c.borrow_mut()));
    out.clear();
    out.reserve(zstd::zstd_safe::compress_bound(src.len()));
    let ok = CCTX.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_none_or(|(l, _)| *l != level) {
            *c = zstd::bulk::Compressor::new(level).ok().map(|z| (level, z));
        }
        match c.as_mut() {
            Some((_, z)) => z.compress_to_buffer(src, &mut out).is_ok(),
            None => false,
        }
    });
    if !ok {
        out.clear();
    }
    let r = f(&out);
    if out.capacity() <= 4 * CHUNK_BYTES as usize {
        ZOUT.with(|c| *c.borrow_mut() = out);
    }
    r
}

/// Compresses one chunk's raw rows: shuffled or not, whichever compresses a sample
/// better; stored raw when compression does not pay. Returns the bytes and flags.
pub fn encode_chunk(raw: &[u8], elem: usize, level: i32) -> (Vec<u8>, u32) {
    let whole = raw.len() / elem * elem;
    let mut shuffle_helps = false;
    if elem > 1 && raw.len() >= 2 * elem {
        // Judge on a sample: the first 32 KiB of elements, shuffled alone, at level 1.
        let sample = (32 << 10).min(whole) / elem * elem;
        let plain = zcompress_with(&raw[..sample], 1, |z| z.len());
        let shuffled = with_scratch(&SHUFFLED, sample, |s| {
            shuffle(&raw[..sample], elem, s);
            zcompress_with(s, 1, |z| z.len())
        });
        shuffle_helps = shuffled < plain;
    }
    let finish = |z: &[u8], flags: u32| {
        if z.is_empty() || z.len() >= raw.len() { (raw.to_vec(), FLAG_RAW) } else { (z.to_vec(), flags) }
    };
    if !shuffle_helps {
        return zcompress_with(raw, level, |z| finish(z, 0));
    }
    with_scratch(&SHUFFLED, raw.len(), |s| {
        shuffle(&raw[..whole], elem, &mut s[..whole]);
        s[whole..].copy_from_slice(&raw[whole..]);
        // One frame per byte plane: the planes differ (sign and exponent bytes against
        // noisy low mantissa bytes), and each frame gets its own entropy tables.
        let plane = whole / elem;
        let mut frames = Vec::with_capacity(raw.len() / 2);
        for b in 0..elem {
            let end = if b + 1 == elem { raw.len() } else { (b + 1) * plane };
            let ok = zcompress_with(&s[b * plane..end], level, |z| {
                frames.extend_from_slice(z);
                !z.is_empty()
            });
            if !ok || frames.len() >= raw.len() {
                return (raw.to_vec(), FLAG_RAW);
            }
        }
        finish(&frames, FLAG_SHUFFLE)
    })
}

/// Inverse of [`encode_chunk`] into `out` (exactly the raw size).
pub fn decode_chunk(stored: &[u8], flags: u32, elem: usize, out: &mut [u8]) -> std::result::Result<(), String> {
    if flags & FLAG_RAW != 0 {
        if stored.len() != out.len() {
            return Err(format!("holds {} raw bytes, expected {}", stored.len(), out.len()));
        }
        out.copy_from_slice(stored);
        return Ok(());
    }
    if flags & FLAG_SHUFFLE == 0 {
        return zdecompress(stored, out);
    }
    with_scratch(&UNSHUFFLED, out.len(), |tmp| {
        zdecompress(stored, tmp)?;
        let whole = out.len() / elem * elem;
        unshuffle(&tmp[..whole], elem, &mut out[..whole]);
        let rest = out.len() - whole;
        out[whole..].copy_from_slice(&tmp[whole..whole + rest]);
        Ok(())
    })
}

/// Decompresses one zstd frame into exactly `dst`.
fn zdecompress(stored: &[u8], dst: &mut [u8]) -> std::result::Result<(), String> {
    let n = DCTX
        .with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = zstd::bulk::Decompressor::new().ok();
            }
            match d.as_mut() {
                Some(z) => z.decompress_to_buffer(stored, dst).map_err(|e| e.to_string()),
                None => Err("cannot create a zstd context".into()),
            }
        })
        .map_err(|e| format!("does not decompress: {e}"))?;
    if n != dst.len() {
        return Err(format!("decompresses to {n} bytes, expected {}", dst.len()));
    }
    Ok(())
}

/// Writes a new compressed file row by row: full chunks are compressed in parallel
/// groups and written as they fill; [`Builder::finish`] adds the index and header.
pub struct Builder<'f> {
    file: &'f File,
    path: PathBuf,
    header: Header,
    pending: Vec<u8>,
    chunks: Vec<Chunk>,
    at: u64,
}

impl<'f> Builder<'f> {
    pub fn new(file: &'f File, path: &Path, dtype: DType, row_bytes: u64, c: Compression) -> Result<Builder<'f>> {
        c.check()?;
        if row_bytes == 0 {
            return Err(Error::new(ErrorCode::ShapeMismatch, "rows of zero bytes cannot be stored compressed"));
        }
        let header = Header { dtype, level: c.level, row_bytes, rows_per_chunk: rows_per_chunk(row_bytes), rows: 0, index_off: HEADER_LEN, chunks: 0, index_crc: 0 };
        Ok(Builder { file, path: path.to_path_buf(), header, pending: Vec::new(), chunks: Vec::new(), at: HEADER_LEN })
    }

    fn chunk_bytes(&self) -> usize {
        (self.header.rows_per_chunk * self.header.row_bytes) as usize
    }

    /// Adds whole rows.
    pub fn push(&mut self, mut rows: &[u8]) -> Result<()> {
        let cb = self.chunk_bytes();
        debug_assert_eq!(rows.len() as u64 % self.header.row_bytes, 0);
        self.header.rows += rows.len() as u64 / self.header.row_bytes;
        if !self.pending.is_empty() {
            let take = (cb - self.pending.len()).min(rows.len());
            self.pending.extend_from_slice(&rows[..take]);
            rows = &rows[take..];
            if self.pending.len() == cb {
                let p = std::mem::take(&mut self.pending);
                self.write(&[&p[..]])?;
            }
        }
        let whole = rows.len() / cb * cb;
        for group in rows[..whole].chunks(cb * GROUP) {
            let parts: Vec<&[u8]> = group.chunks(cb).collect();
            self.write(&parts)?;
        }
        self.pending.extend_from_slice(&rows[whole..]);
        Ok(())
    }

    fn write(&mut self, parts: &[&[u8]]) -> Result<()> {
        let (elem, level, rb) = (self.header.dtype.size(), self.header.level, self.header.row_bytes);
        let packed: Vec<(Vec<u8>, u32)> = parts.par_iter().map(|raw| encode_chunk(raw, elem, level)).collect();
        let mut blob = Vec::with_capacity(packed.iter().map(|p| p.0.len()).sum());
        for (raw, (bytes, flags)) in parts.iter().zip(packed) {
            self.chunks.push(Chunk { off: self.at + blob.len() as u64, len: bytes.len() as u64, rows: (raw.len() as u64 / rb) as u32, flags, crc: crc32fast::hash(&bytes) });
            blob.extend_from_slice(&bytes);
        }
        self.file.write_all_at(&blob, self.at).map_err(|e| Error::io("cannot write", &self.path, e))?;
        self.at += blob.len() as u64;
        Ok(())
    }

    /// Writes the last partial chunk, the index and the header.
    pub fn finish(mut self) -> Result<Header> {
        if !self.pending.is_empty() {
            let p = std::mem::take(&mut self.pending);
            self.write(&[&p[..]])?;
        }
        let index = encode_index(&self.chunks);
        self.file.write_all_at(&index, self.at).map_err(|e| Error::io("cannot write", &self.path, e))?;
        let h = Header { index_off: self.at, chunks: self.chunks.len() as u32, index_crc: crc32fast::hash(&index), ..self.header };
        self.file.write_all_at(&h.encode(), 0).map_err(|e| Error::io("cannot write", &self.path, e))?;
        Ok(h)
    }
}

/// Checks a `.npkz` file completely: header, index, and every chunk's CRC32 and
/// decompression. `expect` is the catalogue's (dtype, row bytes, physical rows). Returns
/// every problem found (empty when the file is sound); `Err` only when the file cannot
/// be read at all. For `npk check`.
pub fn verify(path: &Path, array: &str, expect: Option<(DType, u64, u64)>) -> Result<Vec<Finding>> {
    let file = crate::dirfd::open_path(path, crate::dirfd::Access::Read)?.ok_or_else(|| Error::io("cannot open", path, std::io::ErrorKind::NotFound.into()))?;
    let z = match ZFile::from_file(file, path, array, expect) {
        Ok(z) => z,
        Err(e) if e.code == ErrorCode::Corrupt => return Ok(vec![Finding { chunk: None, message: e.message }]),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for i in 0..z.chunks.len() {
        match z.decompress(i) {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::Corrupt => found.push(Finding { chunk: Some(i as u64), message: e.message }),
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_round_trips_and_header_checks_itself() {
        let src: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for elem in [2, 3, 4, 8, 16] {
            let whole = src.len() / elem * elem;
            let mut s = vec![0u8; whole];
            shuffle(&src[..whole], elem, &mut s);
            assert_eq!(s[1], src[elem]);
            assert_eq!(s[whole / elem], src[1]);
            let mut back = vec![0u8; whole];
            unshuffle(&s, elem, &mut back);
            assert_eq!(back, src[..whole]);
        }
        let h = Header { dtype: DType::Float32, level: 3, row_bytes: 16, rows_per_chunk: rows_per_chunk(16), rows: 5, index_off: 100, chunks: 1, index_crc: 7 };
        let b = h.encode();
        assert_eq!(Header::decode(&b).unwrap(), h);
        for i in 0..64 {
            let mut c = b;
            c[i] ^= 1;
            assert!(Header::decode(&c).is_err(), "flip in byte {i} accepted");
        }
    }

    #[test]
    fn headers_whose_sizes_divide_by_zero_or_wrap_are_refused() {
        let ok = Header { dtype: DType::Float32, level: 3, row_bytes: 16, rows_per_chunk: 8, rows: 5, index_off: 64, chunks: 1, index_crc: 0 };
        assert!(Header::decode(&ok.encode()).is_ok());
        let zero = Header { row_bytes: 0, ..ok };
        assert!(Header::decode(&zero.encode()).unwrap_err().contains("rows of 0 bytes"));
        let wraps = Header { row_bytes: 1 << 40, rows: 1 << 30, rows_per_chunk: 1 << 30, chunks: 1, ..ok };
        assert!(Header::decode(&wraps.encode()).unwrap_err().contains("overflow"));
    }

    #[test]
    fn chunks_round_trip_whatever_the_filter() {
        let smooth: Vec<u8> = (0..4096u32).flat_map(|i| (i as f32 * 0.01).sin().to_le_bytes()).collect();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        for (raw, elem) in [(&smooth, 4), (&noise, 1), (&noise, 8)] {
            let (z, flags) = encode_chunk(raw, elem, 3);
            let mut out = vec![0u8; raw.len()];
            decode_chunk(&z, flags, elem, &mut out).unwrap();
            assert_eq!(&out, raw);
        }
        assert_eq!(encode_chunk(&noise, 1, 3).1, FLAG_RAW, "incompressible bytes are stored raw");
    }
}
