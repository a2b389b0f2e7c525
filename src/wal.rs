//! The log, `numpack.wal`: how a store stays consistent when a process is killed at any
//! instant, and how processes see each other's changes without rewriting the catalogue.
//!
//! - `metadata.npkm` holds the catalogue as of the last checkpoint; the log header names it
//!   by length and CRC32 (`base`). Every mutation appends one record (`u32 len | u32 crc |
//!   payload`, CRC over the generation and payload) while holding the exclusive lock.
//!   A record is committed once the header's `end` (in a shared mapping, stored after
//!   the record is written) covers it; a record beyond `end` never happened.
//! - Data and bitmap files always hold the newest state. Data that a record only makes
//!   visible (appended rows, a new file under a temporary name) is written *before* the
//!   record; changes in place (replaced rows, bitmap words) *after* it, from the record's
//!   own bytes. So only the last record can be half-applied, and redoing it is idempotent.
//!   `applied_end` in the header tells whether the last record was finished.
//! - A checkpoint writes the catalogue to a temporary file, logs `Checkpoint{len, crc}`,
//!   renames the file over `metadata.npkm`, then starts a new generation with an empty log.
//! - `change_counter` is bumped after every finished mutation; readers compare it (one
//!   load from a shared mapping) to know when to catch up.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::codec::{ReadResult, Reader, Writer};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::lock::FileLock;
use crate::metadata::{Entry, MAX_NDIM};

pub const FILE_NAME: &str = "numpack.wal";
pub const MAGIC: &[u8; 8] = b"NPKLOG01";
pub const HEADER_LEN: u64 = 64;
pub const FRAME_LEN: u64 = 8;
/// A record larger than this is taken as damage, not data.
pub const MAX_RECORD: u64 = 1 << 40;
/// Least and most zeros written ahead of the last record (see `Wal::warm_up`).
const WARM_MIN: u64 = 16 << 10;
const WARM_MAX: u64 = 1 << 20;
/// Most of the file kept for reuse after a checkpoint.
pub const KEEP_LEN: u64 = 4 << 20;

const OFF_COUNTER: usize = 40;
const OFF_APPLIED: usize = 48;
const OFF_END: usize = 56;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub generation: u64,
    /// Length and CRC32 of the `metadata.npkm` this generation's records apply to.
    pub base: (u64, u32),
    pub change_counter: u64,
    /// End of the last record whose effects are complete.
    pub applied_end: u64,
    /// End of the last committed record: a record counts once this covers it.
    pub end: u64,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut h = [0u8; HEADER_LEN as usize];
        h[0..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&1u32.to_le_bytes());
        h[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        h[16..24].copy_from_slice(&self.generation.to_le_bytes());
        h[24..32].copy_from_slice(&self.base.0.to_le_bytes());
        h[32..36].copy_from_slice(&self.base.1.to_le_bytes());
        h[OFF_COUNTER..OFF_COUNTER + 8].copy_from_slice(&self.change_counter.to_le_bytes());
        h[OFF_APPLIED..OFF_APPLIED + 8].copy_from_slice(&self.applied_end.to_le_bytes());
        h[OFF_END..OFF_END + 8].copy_from_slice(&self.end.to_le_bytes());
        h
    }

    /// Parses a header (for checking a store without opening it).
    pub fn decode(b: &[u8]) -> ReadResult<Header> {
        let mut r = Reader::new(b);
        if r.take(8, "magic")? != MAGIC {
            return Err("bad magic (expected \"NPKLOG01\")".into());
        }
        let version = r.u32("version")?;
        let len = r.u32("header length")?;
        if version != 1 || len as u64 != HEADER_LEN {
            return Err(format!("log version {version} with a {len}-byte header is not supported"));
        }
        let generation = r.u64("generation")?;
        let base_len = r.u64("base length")?;
        let base_crc = r.u32("base crc")?;
        r.u32("reserved")?;
        let change_counter = r.u64("change counter")?;
        let applied_end = r.u64("applied end")?;
        let end = r.u64("end")?;
        if end < HEADER_LEN || applied_end > end {
            return Err(format!("record bounds {applied_end}/{end} are inconsistent"));
        }
        Ok(Header { generation, base: (base_len, base_crc), change_counter, applied_end, end })
    }
}

/// Absolute bitmap words after a change, so that re-applying is harmless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitmapPatch {
    pub total: u64,
    /// The bitmap file did not exist before: start from all rows live.
    pub created: bool,
    pub words: Vec<(u64, u64)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Install `tmp` as the array's data file with this entry; no rows deleted.
    Save { name: String, entry: Entry, tmp: String },
    /// Rows `old_rows..new_rows` were written to the data file before the record.
    Append { name: String, old_rows: u64, new_rows: u64, modified_us: u64, bitmap: Option<BitmapPatch> },
    /// Write `payload` at the given `(offset, len)` runs of the data file.
    Replace { name: String, modified_us: u64, runs: Vec<(u64, u64)>, payload: Vec<u8> },
    Delete { name: String, modified_us: u64, bitmap: BitmapPatch },
    /// Install `tmp` (the live rows only) as the data file; the bitmap goes away.
    Compact { name: String, rows: u64, modified_us: u64, tmp: String },
    Drop { name: String },
    Rename { from: String, to: String, modified_us: u64, had_bitmap: bool },
    Reset,
    Checkpoint { base: (u64, u32) },
    // --- compressed arrays (src/compress.rs) ---
    /// Install `tmp` as the array's `.npkz` file (its `.npkd` goes away, and its bitmap
    /// unless `keep_bitmap`: a rewrite that kept every physical row).
    ZSave { name: String, entry: Entry, tmp: String, keep_bitmap: bool },
    /// New chunks and index were written past the end of the `.npkz` file before the
    /// record; write `header` (64 bytes) at its start and patch the bitmap.
    ZUpdate { name: String, old_rows: u64, new_rows: u64, modified_us: u64, header: Vec<u8>, bitmap: Option<BitmapPatch> },
    // --- end compressed arrays ---
    /// A segmented array grew: rows `old_rows..new_rows` were written into its segment
    /// files (past the old manifest's ends, and in new files) before the record; write
    /// `manifest` (the new `data_<name>.npkseg`) and patch the bitmap.
    SegAppend { name: String, old_rows: u64, new_rows: u64, modified_us: u64, manifest: Vec<u8>, bitmap: Option<BitmapPatch> },
    /// Install `tmps` (written before the record, in order) as the segment files `manifest`
    /// lists, with `rows` physical rows; the old segments, the bitmap and any plain or
    /// compressed data file go away.
    SegInstall { name: String, rows: u64, modified_us: u64, tmps: Vec<String>, manifest: Vec<u8> },
}

/// Largest manifest a record may carry.
const MAX_MANIFEST: u64 = crate::segments::MAX_MANIFEST_BYTES;

mod kind {
    pub const SAVE: u8 = 1;
    pub const APPEND: u8 = 2;
    pub const REPLACE: u8 = 3;
    pub const DELETE: u8 = 4;
    pub const COMPACT: u8 = 5;
    pub const DROP: u8 = 6;
    pub const RENAME: u8 = 7;
    pub const RESET: u8 = 8;
    pub const CHECKPOINT: u8 = 9;
    // compressed arrays
    pub const ZSAVE: u8 = 20;
    pub const ZUPDATE: u8 = 21;
    // segmented arrays (NumPack 0.7)
    pub const SEG_APPEND: u8 = 30;
    pub const SEG_INSTALL: u8 = 31;
}

fn put_patch(w: &mut Writer, p: &BitmapPatch) {
    w.u64(p.total);
    w.u8(p.created as u8);
    w.u64(p.words.len() as u64);
    for &(i, v) in &p.words {
        w.u64(i);
        w.u64(v);
    }
}

fn take_manifest(r: &mut Reader) -> ReadResult<Vec<u8>> {
    let n = r.u64("manifest length")?;
    if n > MAX_MANIFEST || n > r.remaining() as u64 {
        return Err(format!("a record claims a manifest of {n} bytes"));
    }
    Ok(r.take(n as usize, "manifest")?.to_vec())
}

fn get_patch(r: &mut Reader) -> ReadResult<BitmapPatch> {
    let total = r.u64("bitmap rows")?;
    let created = r.u8("bitmap created")? != 0;
    let n = r.u64("bitmap word count")?;
    if n > r.remaining() as u64 / 16 {
        return Err(format!("bitmap patch claims {n} words"));
    }
    let mut words = Vec::with_capacity(n as usize);
    for _ in 0..n {
        words.push((r.u64("word index")?, r.u64("word")?));
    }
    Ok(BitmapPatch { total, created, words })
}

impl Op {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Op::Save { name, entry, tmp } | Op::ZSave { name, entry, tmp, .. } => {
                w.u8(if matches!(self, Op::Save { .. }) { kind::SAVE } else { kind::ZSAVE });
                w.str(name);
                w.u8(entry.dtype.code() as u8);
                w.u32(entry.shape.len() as u32);
                for &d in &entry.shape {
                    w.u64(d);
                }
                w.u64(entry.modified_us);
                w.str(tmp);
                if let Op::ZSave { keep_bitmap, .. } = self {
                    w.u8(*keep_bitmap as u8);
                }
            }
            Op::Append { name, old_rows, new_rows, modified_us, bitmap } => {
                w.u8(kind::APPEND);
                w.str(name);
                w.u64(*old_rows);
                w.u64(*new_rows);
                w.u64(*modified_us);
                w.u8(bitmap.is_some() as u8);
                if let Some(p) = bitmap {
                    put_patch(&mut w, p);
                }
            }
            Op::Replace { name, modified_us, runs, payload } => {
                w.u8(kind::REPLACE);
                w.str(name);
                w.u64(*modified_us);
                w.u64(runs.len() as u64);
                for &(off, len) in runs {
                    w.u64(off);
                    w.u64(len);
                }
                w.bytes(payload);
            }
            Op::Delete { name, modified_us, bitmap } => {
                w.u8(kind::DELETE);
                w.str(name);
                w.u64(*modified_us);
                put_patch(&mut w, bitmap);
            }
            Op::Compact { name, rows, modified_us, tmp } => {
                w.u8(kind::COMPACT);
                w.str(name);
                w.u64(*rows);
                w.u64(*modified_us);
                w.str(tmp);
            }
            Op::Drop { name } => {
                w.u8(kind::DROP);
                w.str(name);
            }
            Op::Rename { from, to, modified_us, had_bitmap } => {
                w.u8(kind::RENAME);
                w.str(from);
                w.str(to);
                w.u64(*modified_us);
                w.u8(*had_bitmap as u8);
            }
            Op::Reset => w.u8(kind::RESET),
            // compressed arrays
            Op::ZUpdate { name, old_rows, new_rows, modified_us, header, bitmap } => {
                w.u8(kind::ZUPDATE);
                w.str(name);
                w.u64(*old_rows);
                w.u64(*new_rows);
                w.u64(*modified_us);
                w.u64(header.len() as u64);
                w.bytes(header);
                w.u8(bitmap.is_some() as u8);
                if let Some(p) = bitmap {
                    put_patch(&mut w, p);
                }
            }
            Op::SegAppend { name, old_rows, new_rows, modified_us, manifest, bitmap } => {
                w.u8(kind::SEG_APPEND);
                w.str(name);
                w.u64(*old_rows);
                w.u64(*new_rows);
                w.u64(*modified_us);
                w.u64(manifest.len() as u64);
                w.bytes(manifest);
                w.u8(bitmap.is_some() as u8);
                if let Some(p) = bitmap {
                    put_patch(&mut w, p);
                }
            }
            Op::SegInstall { name, rows, modified_us, tmps, manifest } => {
                w.u8(kind::SEG_INSTALL);
                w.str(name);
                w.u64(*rows);
                w.u64(*modified_us);
                w.u64(tmps.len() as u64);
                for t in tmps {
                    w.str(t);
                }
                w.u64(manifest.len() as u64);
                w.bytes(manifest);
            }
            Op::Checkpoint { base } => {
                w.u8(kind::CHECKPOINT);
                w.u64(base.0);
                w.u32(base.1);
            }
        }
        w.buf
    }

    pub fn decode(b: &[u8]) -> ReadResult<Op> {
        let mut r = Reader::new(b);
        let s = |r: &mut Reader, what: &str| r.str(what).map(str::to_string);
        let op = match r.u8("record kind")? {
            k @ (kind::SAVE | kind::ZSAVE) => {
                let name = s(&mut r, "name")?;
                let code = r.u8("dtype")?;
                let dtype = DType::from_code(code as u32).ok_or(format!("unknown dtype code {code}"))?;
                let ndim = r.u32("ndim")? as usize;
                if ndim > MAX_NDIM {
                    return Err(format!("{ndim} dimensions"));
                }
                let shape = (0..ndim).map(|_| r.u64("dimension")).collect::<ReadResult<Vec<_>>>()?;
                crate::metadata::shape_nbytes(dtype, &shape).map_err(|m| format!("array {name:?}: {m}"))?;
                let modified_us = r.u64("modify time")?;
                let (entry, tmp) = (Entry { dtype, shape, modified_us, segmented: false }, s(&mut r, "temporary file")?);
                if k == kind::SAVE { Op::Save { name, entry, tmp } } else { Op::ZSave { name, entry, tmp, keep_bitmap: r.u8("bitmap flag")? != 0 } }
            }
            kind::APPEND => {
                let name = s(&mut r, "name")?;
                let old_rows = r.u64("old rows")?;
                let new_rows = r.u64("new rows")?;
                let modified_us = r.u64("modify time")?;
                let bitmap = if r.u8("bitmap flag")? != 0 { Some(get_patch(&mut r)?) } else { None };
                Op::Append { name, old_rows, new_rows, modified_us, bitmap }
            }
            kind::REPLACE => {
                let name = s(&mut r, "name")?;
                let modified_us = r.u64("modify time")?;
                let n = r.u64("run count")?;
                if n > r.remaining() as u64 / 16 {
                    return Err(format!("replace record claims {n} runs"));
                }
                let mut runs = Vec::with_capacity(n as usize);
                let mut total: u64 = 0;
                for _ in 0..n {
                    let run = (r.u64("run offset")?, r.u64("run length")?);
                    run.0.checked_add(run.1).ok_or("a replaced run's end overflows")?;
                    total = total.checked_add(run.1).ok_or("run lengths overflow")?;
                    runs.push(run);
                }
                if total != r.remaining() as u64 {
                    return Err(format!("replace runs cover {total} bytes but the payload has {}", r.remaining()));
                }
                let payload = r.take(total as usize, "payload")?.to_vec();
                Op::Replace { name, modified_us, runs, payload }
            }
            kind::DELETE => {
                let name = s(&mut r, "name")?;
                let modified_us = r.u64("modify time")?;
                Op::Delete { name, modified_us, bitmap: get_patch(&mut r)? }
            }
            kind::COMPACT => {
                let name = s(&mut r, "name")?;
                let rows = r.u64("rows")?;
                let modified_us = r.u64("modify time")?;
                Op::Compact { name, rows, modified_us, tmp: s(&mut r, "temporary file")? }
            }
            kind::DROP => Op::Drop { name: s(&mut r, "name")? },
            kind::RENAME => {
                let from = s(&mut r, "old name")?;
                let to = s(&mut r, "new name")?;
                let modified_us = r.u64("modify time")?;
                Op::Rename { from, to, modified_us, had_bitmap: r.u8("bitmap flag")? != 0 }
            }
            kind::RESET => Op::Reset,
            // compressed arrays
            kind::ZUPDATE => {
                let name = s(&mut r, "name")?;
                let old_rows = r.u64("old rows")?;
                let new_rows = r.u64("new rows")?;
                let modified_us = r.u64("modify time")?;
                let n = r.u64("header length")?;
                if n != crate::compress::HEADER_LEN {
                    return Err(format!("compressed header of {n} bytes"));
                }
                let header = r.take(n as usize, "header")?.to_vec();
                let bitmap = if r.u8("bitmap flag")? != 0 { Some(get_patch(&mut r)?) } else { None };
                Op::ZUpdate { name, old_rows, new_rows, modified_us, header, bitmap }
            }
            kind::SEG_APPEND => {
                let name = s(&mut r, "name")?;
                let old_rows = r.u64("old rows")?;
                let new_rows = r.u64("new rows")?;
                let modified_us = r.u64("modify time")?;
                let manifest = take_manifest(&mut r)?;
                let bitmap = if r.u8("bitmap flag")? != 0 { Some(get_patch(&mut r)?) } else { None };
                Op::SegAppend { name, old_rows, new_rows, modified_us, manifest, bitmap }
            }
            kind::SEG_INSTALL => {
                let name = s(&mut r, "name")?;
                let rows = r.u64("rows")?;
                let modified_us = r.u64("modify time")?;
                let n = r.u64("segment count")?;
                // Each name takes at least its 4-byte length.
                if n > r.remaining() as u64 / 4 {
                    return Err(format!("segment install record claims {n} files"));
                }
                let tmps = (0..n).map(|_| s(&mut r, "temporary file")).collect::<ReadResult<Vec<_>>>()?;
                let manifest = take_manifest(&mut r)?;
                Op::SegInstall { name, rows, modified_us, tmps, manifest }
            }
            kind::CHECKPOINT => Op::Checkpoint { base: (r.u64("base length")?, r.u32("base crc")?) },
            k => return Err(format!("unknown record kind {k}")),
        };
        if r.remaining() != 0 {
            return Err(format!("{} stray bytes after a record", r.remaining()));
        }
        op.check_files()?;
        Ok(op)
    }

    /// The record's kind, for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Op::Save { .. } => "save",
            Op::Append { .. } => "append",
            Op::Replace { .. } => "replace",
            Op::Delete { .. } => "delete",
            Op::Compact { .. } => "compact",
            Op::Drop { .. } => "drop",
            Op::Rename { .. } => "rename",
            Op::Reset => "reset",
            Op::Checkpoint { .. } => "checkpoint",
            Op::ZSave { .. } => "compressed save",
            Op::ZUpdate { .. } => "compressed update",
            Op::SegAppend { .. } => "segment append",
            Op::SegInstall { .. } => "segment install",
        }
    }

    /// A record is only bytes someone wrote (its CRC proves nothing about who): every
    /// array name it carries must pass the array-name rules, every temporary file it
    /// installs must be a name the engine creates in the store's directory, and every
    /// segment file its manifest lists must be one the engine derives from the array's
    /// name. Replay then never touches a file outside the store, whatever the log says.
    fn check_files(&self) -> ReadResult<()> {
        let kind = self.kind_name();
        let name = |field: &str, n: &str| crate::name::validate(n).map_err(|e| format!("{kind} record, field {field}: {}", e.message));
        let tmp = |t: &str| crate::name::validate_tmp_file(t).map_err(|m| format!("{kind} record, field temporary file: {m}"));
        let manifest = |n: &str, m: &[u8]| {
            crate::segments::Manifest::parse(m, n).map_err(|e| format!("{kind} record, field manifest: {e}"))
        };
        match self {
            Op::Save { name: n, tmp: t, .. } | Op::Compact { name: n, tmp: t, .. } | Op::ZSave { name: n, tmp: t, .. } => {
                name("name", n)?;
                tmp(t)
            }
            Op::Append { name: n, .. }
            | Op::Replace { name: n, .. }
            | Op::Delete { name: n, .. }
            | Op::Drop { name: n }
            | Op::ZUpdate { name: n, .. } => name("name", n),
            Op::Rename { from, to, .. } => {
                name("from", from)?;
                name("to", to)
            }
            Op::SegAppend { name: n, manifest: m, .. } => {
                name("name", n)?;
                manifest(n, m).map(drop)
            }
            Op::SegInstall { name: n, tmps, manifest: m, .. } => {
                name("name", n)?;
                tmps.iter().try_for_each(|t| tmp(t))?;
                let parsed = manifest(n, m)?;
                if parsed.segments.len() != tmps.len() {
                    return Err(format!(
                        "{kind} record lists {} temporary files for the {} segments of its manifest",
                        tmps.len(),
                        parsed.segments.len()
                    ));
                }
                Ok(())
            }
            Op::Reset | Op::Checkpoint { .. } => Ok(()),
        }
    }
}

/// The CRC a record's frame carries: over its generation and payload.
pub fn record_crc(generation: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&generation.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// CRC32 and length naming a catalogue file's contents.
pub fn fingerprint(bytes: &[u8]) -> (u64, u32) {
    (bytes.len() as u64, crc32fast::hash(bytes))
}

/// The open log file, its lock, and a shared mapping of its header.
pub struct Wal {
    pub file: File,
    pub path: PathBuf,
    pub writable: bool,
    /// No log file backs this handle: a read-only open of a store without an initialised
    /// log (a NumPack store, or one whose creator died before writing the log header)
    /// creates none, and reads the catalogue alone. `map` is then private memory holding
    /// an empty generation 0.
    pub detached: bool,
    map: MmapRaw,
    /// How far this handle knows the file to extend: appends below it overwrite cached,
    /// allocated pages, which costs a third of extending the file.
    warm_end: AtomicU64,
}

/// Records read from the log: each op with the offset where it ends.
pub struct Scan {
    pub ops: Vec<(Op, u64)>,
    /// End of the last valid record; anything after it is a torn write.
    pub valid_end: u64,
}

impl Wal {
    /// Opens (creating if `create`) the log of the store in `dir`. The file may still be
    /// empty: see [`Wal::initialised`].
    pub fn open(dir: &Path, create: bool) -> Result<Wal> {
        let path = dir.join(FILE_NAME);
        // Never through a link (a shipped store's log may point anywhere): O_NOFOLLOW, and
        // only a regular file (a FIFO must not block the open: O_NONBLOCK until checked).
        use std::os::unix::fs::OpenOptionsExt;
        let nofollow = libc::O_NOFOLLOW | libc::O_NONBLOCK;
        let rw = OpenOptions::new().read(true).write(true).create(create).custom_flags(nofollow).open(&path);
        let (file, writable) = match rw {
            Ok(f) => (f, true),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(libc::EROFS) => {
                (OpenOptions::new().read(true).custom_flags(nofollow).open(&path).map_err(|e| crate::dirfd::open_error(&path, e))?, false)
            }
            Err(e) => return Err(crate::dirfd::open_error(&path, e)),
        };
        crate::dirfd::require_regular(&file, &path)?;
        {
            // Under the lock: another process may be appending to a log we saw empty.
            let _lock = FileLock::exclusive(&file).map_err(|e| Error::io("cannot lock", &path, e))?;
            if file.metadata().map_err(|e| Error::io("cannot stat", &path, e))?.len() < HEADER_LEN {
                if !writable {
                    return Err(Error::corrupt(&path, "the log is shorter than its header and cannot be repaired read-only"));
                }
                // A fresh (or torn-at-creation) log: make room for the header before mapping it.
                file.set_len(HEADER_LEN).map_err(|e| Error::io("cannot size", &path, e))?;
            }
        }
        let opts = MmapOptions::new().len(HEADER_LEN as usize).clone();
        let map = if writable { opts.map_raw(&file) } else { opts.map_raw_read_only(&file) }
            .map_err(|e| Error::io("cannot map", &path, e))?;
        Ok(Wal { file, path, writable, detached: false, map, warm_end: AtomicU64::new(0) })
    }

    /// Opens the log of the store in `dir` for reading only: no file is created, sized or
    /// written, and the header is mapped read-only. Without an initialised log (none, or
    /// one shorter than its header or never given one) the handle is detached: the
    /// catalogue is the whole store, and its lock is taken on the directory (or on the
    /// uninitialised log), which orders this handle with nobody — a writer that creates
    /// the log later is not seen by this handle.
    pub fn open_read_only(dir: &Path) -> Result<Wal> {
        let path = dir.join(FILE_NAME);
        // Never through a link, and a regular file only, as for a writable open.
        let file = crate::dirfd::open_in(dir, FILE_NAME, crate::dirfd::Access::Read)?;
        if let Some(file) = file {
            let ready = {
                // Under the lock: a writer may be initialising the log right now.
                let _lock = FileLock::exclusive(&file).map_err(|e| Error::io("cannot lock", &path, e))?;
                let len = file.metadata().map_err(|e| Error::io("cannot stat", &path, e))?.len();
                let mut magic = [0u8; 8];
                len >= HEADER_LEN && file.read_exact_at(&mut magic, 0).is_ok() && magic != [0u8; 8]
            };
            if ready {
                let map = MmapOptions::new().len(HEADER_LEN as usize).map_raw_read_only(&file).map_err(|e| Error::io("cannot map", &path, e))?;
                return Ok(Wal { file, path, writable: false, detached: false, map, warm_end: AtomicU64::new(0) });
            }
            return Wal::detached(file, path);
        }
        let file = File::open(dir).map_err(|e| Error::io("cannot open", dir, e))?;
        Wal::detached(file, path)
    }

    fn detached(file: File, path: PathBuf) -> Result<Wal> {
        let mut map = MmapOptions::new().len(HEADER_LEN as usize).map_anon().map_err(|e| Error::io("cannot map memory for", &path, e))?;
        let hdr = Header { generation: 0, base: (0, 0), change_counter: 0, applied_end: HEADER_LEN, end: HEADER_LEN };
        map.copy_from_slice(&hdr.encode());
        Ok(Wal { file, path, writable: false, detached: true, map: MmapRaw::from(map), warm_end: AtomicU64::new(0) })
    }

    fn counter(&self, off: usize) -> &AtomicU64 {
        // SAFETY: the mapping is HEADER_LEN bytes, page aligned, and lives as long as self;
        // offsets are multiples of 8, so the AtomicU64 is aligned. Other processes access
        // the same words only through atomics or whole-header pwrites under the lock.
        unsafe { &*(self.map.as_ptr().add(off) as *const AtomicU64) }
    }

    /// A sequence lock over the store's contents, shared by every process: odd while a
    /// committed change is being applied to the files, even otherwise, and different after
    /// every change. Readers copy only between two equal even values.
    pub fn change_counter(&self) -> u64 {
        self.counter(OFF_COUNTER).load(Ordering::Acquire)
    }

    /// Makes the counter odd: a change is being applied (call holding the lock).
    pub fn begin_change(&self) {
        if !self.writable {
            return;
        }
        let c = self.counter(OFF_COUNTER);
        let v = c.load(Ordering::Relaxed);
        if v % 2 == 0 {
            c.store(v + 1, Ordering::Relaxed);
            // Readers that see the new data must see the odd value first.
            std::sync::atomic::fence(Ordering::Release);
        }
    }

    /// Marks records up to `applied_end` finished and makes the counter even again (also
    /// after a writer died half-way, leaving it odd).
    pub fn mark_applied(&self, applied_end: u64) {
        // A read-only handle maps the header read-only: it changes nothing, ever.
        if !self.writable {
            return;
        }
        self.counter(OFF_APPLIED).store(applied_end, Ordering::Release);
        let c = self.counter(OFF_COUNTER);
        let v = c.load(Ordering::Relaxed);
        // Wraps: the counter is only compared for equality, and a log from elsewhere may
        // start it anywhere.
        c.store((v | 1).wrapping_add(1), Ordering::Release);
    }

    /// Whether a header has been written (false for a log just created).
    pub fn initialised(&self) -> Result<bool> {
        if self.detached {
            return Ok(true);
        }
        let mut magic = [0u8; 8];
        self.file.read_exact_at(&mut magic, 0).map_err(|e| Error::io("cannot read", &self.path, e))?;
        Ok(magic != [0u8; 8])
    }

    /// The header, read through the shared mapping. Call with the lock held: writers
    /// change it only under the lock.
    pub fn read_header(&self) -> Result<Header> {
        let mut b = [0u8; HEADER_LEN as usize];
        // SAFETY: the mapping is HEADER_LEN bytes long and lives as long as self.
        unsafe { std::ptr::copy_nonoverlapping(self.map.as_ptr(), b.as_mut_ptr(), b.len()) };
        Header::decode(&b).map_err(|m| Error::corrupt(&self.path, m))
    }

    /// Writes the whole header in one system call, so a kill leaves the old or the new one.
    pub fn write_header(&self, h: &Header) -> Result<()> {
        self.file.write_all_at(&h.encode(), 0).map_err(|e| Error::io("cannot write", &self.path, e))
    }

    pub fn file_len(&self) -> Result<u64> {
        Ok(self.file.metadata().map_err(|e| Error::io("cannot stat", &self.path, e))?.len())
    }

    /// Appends one record at `at` and commits it; returns the offset after it.
    pub fn append(&self, at: u64, generation: u64, payload: &[u8]) -> Result<u64> {
        let mut rec = Vec::with_capacity(payload.len() + FRAME_LEN as usize);
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        rec.extend_from_slice(&record_crc(generation, payload).to_le_bytes());
        rec.extend_from_slice(payload);
        if payload.len() as u64 > u32::MAX as u64 {
            return Err(Error::invalid(format!("one change of {} bytes is too large for the log", payload.len())));
        }
        self.file.write_all_at(&rec, at).map_err(|e| Error::io("cannot append to", &self.path, e))?;
        let end = at + rec.len() as u64;
        if end > self.warm_end.load(Ordering::Relaxed) {
            self.warm_up(end)?;
        }
        self.set_end(end);
        Ok(end)
    }

    /// Extends the file with zeros past `end`, so that the next records overwrite pages
    /// already allocated and cached instead of growing the file one record at a time.
    /// Nothing valid lies past `end` (callers hold the lock and `end` is the new commit
    /// point), and scans never read past the commit point.
    fn warm_up(&self, end: u64) -> Result<()> {
        let len = self.file_len()?;
        // Doubling the file each time keeps the log of a store changed rarely small.
        let target = end + len.clamp(WARM_MIN, WARM_MAX);
        if len < target {
            let from = len.max(end);
            let zeros = vec![0u8; (target - from) as usize];
            self.file.write_all_at(&zeros, from).map_err(|e| Error::io("cannot extend", &self.path, e))?;
        }
        self.warm_end.store(len.max(target), Ordering::Relaxed);
        Ok(())
    }

    /// Shrinks the file to at most [`KEEP_LEN`] once its records are folded into the
    /// catalogue: the bytes kept are reused by the next records.
    pub fn recycle(&self) -> Result<()> {
        if self.file_len()? > KEEP_LEN {
            self.truncate(KEEP_LEN)?;
            self.warm_end.store(KEEP_LEN, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Moves the commit point (the header's `end`).
    pub fn set_end(&self, end: u64) {
        if !self.writable {
            return;
        }
        self.counter(OFF_END).store(end, Ordering::Release);
    }

    /// Reads the committed records of `generation` from `from` to `to` (the header's
    /// `end`). Stops early at a frame that is incomplete or fails its CRC, which only a
    /// power loss between syncs can leave behind.
    pub fn scan(&self, generation: u64, from: u64, to: u64) -> Result<Scan> {
        if self.detached || from >= to {
            return Ok(Scan { ops: Vec::new(), valid_end: from });
        }
        let end = to.min(self.file_len()?);
        let mut buf = vec![0u8; end.saturating_sub(from) as usize];
        self.file.read_exact_at(&mut buf, from).map_err(|e| Error::io("cannot read", &self.path, e))?;
        let mut ops = Vec::new();
        let mut pos: u64 = 0;
        while pos + FRAME_LEN <= buf.len() as u64 {
            let p = pos as usize;
            let len = u32::from_le_bytes(buf[p..p + 4].try_into().unwrap()) as u64;
            let crc = u32::from_le_bytes(buf[p + 4..p + 8].try_into().unwrap());
            if len > MAX_RECORD || pos + FRAME_LEN + len > buf.len() as u64 {
                break;
            }
            let payload = &buf[p + 8..p + 8 + len as usize];
            if record_crc(generation, payload) != crc {
                break;
            }
            let op = Op::decode(payload).map_err(|m| Error::corrupt(&self.path, format!("record at {}: {m}", from + pos)))?;
            pos += FRAME_LEN + len;
            ops.push((op, from + pos));
        }
        Ok(Scan { ops, valid_end: from + pos })
    }

    pub fn truncate(&self, len: u64) -> Result<()> {
        self.file.set_len(len).map_err(|e| Error::io("cannot truncate", &self.path, e))?;
        self.warm_end.fetch_min(len, Ordering::Relaxed);
        Ok(())
    }

    /// Flushes the records and the header's commit point (written through the shared
    /// mapping, which is the same page cache) to disk.
    pub fn sync_data(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io("cannot sync", &self.path, e))
    }

    pub fn sync(&self) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::io("cannot sync", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TMP: &str = "npk-tmp-1-2-3.npkt";

    fn seg_manifest(name: &str, n: usize) -> Vec<u8> {
        let segments = (0..n).map(|i| crate::segments::Segment { file: crate::segments::segment_file(name, i), rows: 1, bytes: 8 }).collect();
        crate::segments::Manifest { segments }.encode()
    }

    #[test]
    fn ops_round_trip() {
        let patch = BitmapPatch { total: 70, created: true, words: vec![(0, 5), (1, 63)] };
        let ops = vec![
            Op::Save { name: "a".into(), entry: Entry { dtype: DType::Int8, shape: vec![2, 3], modified_us: 5, segmented: false }, tmp: TMP.into() },
            Op::Append { name: "a".into(), old_rows: 2, new_rows: 9, modified_us: 6, bitmap: Some(patch.clone()) },
            Op::Replace { name: "a".into(), modified_us: 1, runs: vec![(3, 2), (9, 1)], payload: vec![1, 2, 3] },
            Op::Delete { name: "a".into(), modified_us: 1, bitmap: patch },
            Op::Compact { name: "a".into(), rows: 3, modified_us: 2, tmp: "npk-tmp-12-34-56.npkt".into() },
            Op::Drop { name: "a".into() },
            Op::Rename { from: "a".into(), to: "b".into(), modified_us: 3, had_bitmap: true },
            Op::Reset,
            Op::Checkpoint { base: (20, 77) },
            Op::ZSave { name: "z".into(), entry: Entry { dtype: DType::Float32, shape: vec![4, 2], modified_us: 9, segmented: false }, tmp: TMP.into(), keep_bitmap: true },
            Op::ZUpdate { name: "z".into(), old_rows: 4, new_rows: 6, modified_us: 10, header: vec![7; 64], bitmap: None },
            Op::SegAppend { name: "s".into(), old_rows: 4, new_rows: 6, modified_us: 11, manifest: seg_manifest("s", 1), bitmap: None },
            Op::SegInstall { name: "s".into(), rows: 3, modified_us: 12, tmps: vec![TMP.into(), "npk-tmp-1-2-4.npkt".into()], manifest: seg_manifest("s", 2) },
        ];
        for op in ops {
            let b = op.encode();
            assert_eq!(Op::decode(&b).unwrap(), op);
            for n in 0..b.len() {
                assert!(Op::decode(&b[..n]).is_err(), "{op:?} prefix {n} accepted");
            }
        }
    }

    #[test]
    fn records_naming_files_outside_the_store_are_refused() {
        let e = |shape: Vec<u64>| Entry { dtype: DType::Int8, shape, modified_us: 0, segmented: false };
        let bad_names = ["", "..", "a/b", "/etc", "a\0b", "a\nb"];
        let bad_tmps = ["/tmp/npk-tmp-1-2-3.npkt", "../npk-tmp-1-2-3.npkt", "x/npk-tmp-1-2-3.npkt", "data_a.npkd", "t"];
        let mut forged: Vec<(Op, &str)> = Vec::new();
        for n in bad_names {
            let n = n.to_string();
            forged.push((Op::Save { name: n.clone(), entry: e(vec![1]), tmp: TMP.into() }, "save record, field name"));
            forged.push((Op::Append { name: n.clone(), old_rows: 0, new_rows: 1, modified_us: 0, bitmap: None }, "append record, field name"));
            forged.push((Op::Replace { name: n.clone(), modified_us: 0, runs: vec![], payload: vec![] }, "replace record, field name"));
            forged.push((Op::Delete { name: n.clone(), modified_us: 0, bitmap: BitmapPatch { total: 1, created: true, words: vec![] } }, "delete record, field name"));
            forged.push((Op::Compact { name: n.clone(), rows: 0, modified_us: 0, tmp: TMP.into() }, "compact record, field name"));
            forged.push((Op::Drop { name: n.clone() }, "drop record, field name"));
            forged.push((Op::Rename { from: n.clone(), to: "b".into(), modified_us: 0, had_bitmap: false }, "rename record, field from"));
            forged.push((Op::Rename { from: "b".into(), to: n.clone(), modified_us: 0, had_bitmap: false }, "rename record, field to"));
            forged.push((Op::ZSave { name: n.clone(), entry: e(vec![1]), tmp: TMP.into(), keep_bitmap: false }, "compressed save record, field name"));
            forged.push((Op::ZUpdate { name: n.clone(), old_rows: 0, new_rows: 1, modified_us: 0, header: vec![0; 64], bitmap: None }, "compressed update record, field name"));
            forged.push((Op::SegAppend { name: n.clone(), old_rows: 0, new_rows: 1, modified_us: 0, manifest: seg_manifest("s", 1), bitmap: None }, "segment append record, field name"));
            forged.push((Op::SegInstall { name: n.clone(), rows: 1, modified_us: 0, tmps: vec![TMP.into()], manifest: seg_manifest("s", 1) }, "segment install record, field name"));
        }
        for t in bad_tmps {
            let t = t.to_string();
            forged.push((Op::Save { name: "a".into(), entry: e(vec![1]), tmp: t.clone() }, "save record, field temporary file"));
            forged.push((Op::Compact { name: "a".into(), rows: 0, modified_us: 0, tmp: t.clone() }, "compact record, field temporary file"));
            forged.push((Op::ZSave { name: "a".into(), entry: e(vec![1]), tmp: t.clone(), keep_bitmap: true }, "compressed save record, field temporary file"));
            forged.push((Op::SegInstall { name: "s".into(), rows: 1, modified_us: 0, tmps: vec![t.clone()], manifest: seg_manifest("s", 1) }, "segment install record, field temporary file"));
        }
        // A manifest naming another array's segments, and a file count that disagrees.
        forged.push((Op::SegAppend { name: "s".into(), old_rows: 0, new_rows: 1, modified_us: 0, manifest: seg_manifest("t", 1), bitmap: None }, "segment append record, field manifest"));
        forged.push((Op::SegInstall { name: "s".into(), rows: 1, modified_us: 0, tmps: vec![TMP.into()], manifest: seg_manifest("../s", 1) }, "segment install record, field manifest"));
        forged.push((Op::SegInstall { name: "s".into(), rows: 1, modified_us: 0, tmps: vec![], manifest: seg_manifest("s", 1) }, "segment install record lists 0"));
        for (op, want) in forged {
            let err = Op::decode(&op.encode()).expect_err(&format!("{op:?} accepted"));
            assert!(err.contains(want), "{op:?}: {err:?} does not say {want:?}");
        }
    }

    #[test]
    fn the_file_is_extended_ahead_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), true).unwrap();
        let big = Op::Replace { name: "x".into(), modified_us: 0, runs: vec![(0, 4000)], payload: vec![7; 4000] }.encode();
        let mut end = HEADER_LEN;
        for _ in 0..2000 {
            end = wal.append(end, 3, &big).unwrap();
            assert!(wal.file_len().unwrap() > end, "zeros are written ahead of the last record");
        }
        assert!(wal.file_len().unwrap() > KEEP_LEN);
        assert_eq!(wal.scan(3, HEADER_LEN, end).unwrap().ops.len(), 2000);
        // After a checkpoint the file shrinks to KEEP_LEN and the next generation's
        // records overwrite the old ones, which are never read as its own.
        wal.recycle().unwrap();
        assert_eq!(wal.file_len().unwrap(), KEEP_LEN);
        let small = Op::Drop { name: "y".into() }.encode();
        let end2 = wal.append(HEADER_LEN, 4, &small).unwrap();
        let s = wal.scan(4, HEADER_LEN, end2).unwrap();
        assert_eq!((s.ops.len(), s.valid_end), (1, end2));
        assert_eq!(wal.file_len().unwrap(), KEEP_LEN, "the kept bytes are reused");
    }

    #[test]
    fn scan_stops_at_torn_or_foreign_records() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), true).unwrap();
        let a = Op::Drop { name: "a".into() }.encode();
        let end1 = wal.append(HEADER_LEN, 7, &a).unwrap();
        let end2 = wal.append(end1, 7, &a).unwrap();
        assert_eq!(wal.scan(7, HEADER_LEN, end2).unwrap().valid_end, end2);
        // Only committed records count.
        assert_eq!(wal.scan(7, HEADER_LEN, end1).unwrap().ops.len(), 1);
        // Records of another generation are not ours.
        assert_eq!(wal.scan(8, HEADER_LEN, end2).unwrap().ops.len(), 0);
        // A torn last record is ignored.
        wal.truncate(end2 - 1).unwrap();
        let s = wal.scan(7, HEADER_LEN, end2).unwrap();
        assert_eq!((s.ops.len(), s.valid_end), (1, end1));
    }
}
