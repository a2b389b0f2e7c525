//! Verifying a store without changing it: the catalogue against the files, deletion
//! bitmaps, the log's state and leftovers of dead processes. [`check`] never writes,
//! never creates the log and never recovers: a store that needs recovery is reported as
//! such (finding `needs-recovery`) and left as it is.
//!
//! The catalogue checked is the one a reader would see: `metadata.npkm` plus the committed
//! records of the log, replayed in memory. Every problem found is reported, each with a
//! stable identifier (listed in [`ids`]), the file and array concerned, and a message that
//! says what to do about it.
//!
//! Per-format checks of an array's data file live in one place, [`check_array`] (with
//! [`array_files`] and [`DATA_EXTENSIONS`], which say which files an array owns): a new
//! data-file format (compressed arrays, say) plugs its verifier in there.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::bitmap::{self, Bitmap};
use crate::compress;
use crate::error::{bail, Error, Result};
use crate::lock::FileLock;
use crate::metadata::{self, Catalogue, Entry};
use crate::name::{self, bitmap_file, data_file};
use crate::segments;
use crate::wal::{self, Header, Op, HEADER_LEN};

/// How bad a finding is.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing, nothing to fix (a log not yet folded into the catalogue, say).
    Info = 0,
    /// Harmless for reads and writes, but something to clean up (orphan files, bytes past
    /// an array's end left by an interrupted append).
    Warning = 1,
    /// The store cannot be used as it is: some reads or writes fail or return wrong data.
    Error = 2,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The stable identifiers of findings. Scripts may rely on them; they never change
/// meaning.
pub mod ids {
    /// `metadata.npkm` is missing while the directory holds a store's files.
    pub const CATALOGUE_MISSING: &str = "catalogue-missing";
    /// `metadata.npkm` does not start with the magic "NPKB".
    pub const CATALOGUE_BAD_MAGIC: &str = "catalogue-bad-magic";
    /// `metadata.npkm` has a format version this library does not read.
    pub const CATALOGUE_BAD_VERSION: &str = "catalogue-unsupported-version";
    /// `metadata.npkm` is damaged past its header (entries, sizes, truncation).
    pub const CATALOGUE_CORRUPT: &str = "catalogue-corrupt";
    /// An array name (from the log) cannot be used as a file name.
    pub const INVALID_NAME: &str = "invalid-name";
    /// A catalogued array has no data file.
    pub const DATA_MISSING: &str = "data-missing";
    /// A data file is shorter than its shape and dtype imply (or is not a regular file).
    pub const DATA_SIZE_MISMATCH: &str = "data-size-mismatch";
    /// A data file is longer than its shape and dtype imply (an interrupted append).
    pub const DATA_TRAILING_BYTES: &str = "data-trailing-bytes";
    /// A data file of no catalogued array.
    pub const ORPHAN_DATA: &str = "orphan-data-file";
    /// A bitmap file of no catalogued array.
    pub const ORPHAN_BITMAP: &str = "orphan-bitmap-file";
    /// A bitmap file whose length fits no layout for the array's row count.
    pub const BITMAP_SIZE_MISMATCH: &str = "bitmap-size-mismatch";
    /// A bitmap file whose header counts a different number of rows than the array has.
    pub const BITMAP_ROW_COUNT: &str = "bitmap-row-count-mismatch";
    /// A bitmap file whose header's deleted count disagrees with its bits.
    pub const BITMAP_DELETED_COUNT: &str = "bitmap-deleted-count-mismatch";
    /// Any other damage to a bitmap file (bits set past the last row, unreadable file).
    pub const BITMAP_CORRUPT: &str = "bitmap-corrupt";
    /// A 0-d array has a bitmap file (0-d arrays have no rows to delete).
    pub const BITMAP_ON_SCALAR: &str = "bitmap-on-0d-array";
    /// The log cannot be read: bad header or a damaged committed record.
    pub const LOG_CORRUPT: &str = "log-corrupt";
    /// The log file exists but was never initialised (a store created and killed at once).
    pub const LOG_UNINITIALISED: &str = "log-uninitialised";
    /// A writer died mid-operation; the next writable open redoes it.
    pub const NEEDS_RECOVERY: &str = "needs-recovery";
    /// A writer died just after finishing a change; nothing to redo.
    pub const LOG_COUNTER_ODD: &str = "log-counter-odd";
    /// Committed changes are in the log but not yet folded into `metadata.npkm`.
    pub const LOG_NOT_CHECKPOINTED: &str = "log-not-checkpointed";
    /// The log ends in a torn record (only a power loss leaves one); it is dropped.
    pub const LOG_TORN_RECORD: &str = "log-torn-record";
    /// `metadata.npkm` was rewritten by another program; the log's records are stale.
    pub const LOG_STALE: &str = "log-stale";
    /// No `numpack.wal`: a store written by NumPack only, or never opened by numpack.
    pub const NO_LOG: &str = "no-log";
    /// A numpack temporary file of a process that no longer runs.
    pub const ORPHAN_TMP: &str = "orphan-tmp-file";
    /// A numpack temporary file of a running process (a writer at work).
    pub const TMP_IN_USE: &str = "tmp-file-in-use";
    /// A temporary file NumPack leaves when killed (`*.tmp*`).
    pub const LEFTOVER_TMP: &str = "leftover-tmp-file";
    /// A file or directory that is no part of the store's format.
    pub const UNKNOWN_FILE: &str = "unknown-file";
    /// A compressed array's `.npkz` header or chunk index is damaged or disagrees with the
    /// catalogue.
    pub const COMPRESSED_HEADER: &str = "compressed-header-corrupt";
    /// A chunk of a compressed array fails its CRC32 or does not decompress.
    pub const COMPRESSED_CHUNK: &str = "compressed-chunk-corrupt";
    /// A plain `.npkd` beside the array's `.npkz`: left by an interrupted save, ignored.
    pub const STALE_PLAIN_DATA: &str = "stale-plain-data-file";
    /// A segmented array's manifest (`data_<name>.npkseg`) cannot be read, is not a valid
    /// manifest, names files outside the array's segment directory, or disagrees with
    /// the catalogue's shape.
    pub const SEGMENT_MANIFEST: &str = "segment-manifest-corrupt";
    /// A segment file (or the segment directory) is a link, or not a regular file.
    pub const SEGMENT_FILE: &str = "segment-file-invalid";
    /// A file of the store (catalogue, log, data, bitmap, manifest) is a symbolic link or
    /// not a regular file: numpack refuses to use it (a link could reach any file).
    pub const NOT_REGULAR_FILE: &str = "not-a-regular-file";
}

/// One problem (or remark) about a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// Stable identifier, one of [`ids`].
    pub id: &'static str,
    /// The file concerned, relative to the store directory.
    pub file: Option<String>,
    /// The array concerned.
    pub array: Option<String>,
    /// What is wrong and what to do about it.
    pub message: String,
}

/// Everything [`check`] found, in the order found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub path: PathBuf,
    /// Arrays in the catalogue a reader would see (0 when it cannot be read).
    pub arrays: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    /// True when no finding is an error or a warning.
    pub fn is_clean(&self) -> bool {
        self.findings.iter().all(|f| f.severity == Severity::Info)
    }
    /// True when no finding is an error.
    pub fn is_ok(&self) -> bool {
        self.count(Severity::Error) == 0
    }
    pub fn count(&self, severity: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == severity).count()
    }
    /// Whether a writer died mid-operation (the next writable open recovers).
    pub fn needs_recovery(&self) -> bool {
        self.findings.iter().any(|f| f.id == ids::NEEDS_RECOVERY)
    }
    /// The findings with this identifier.
    pub fn with_id<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Finding> + 'a {
        self.findings.iter().filter(move |f| f.id == id)
    }

    fn push(&mut self, severity: Severity, id: &'static str, file: Option<&str>, array: Option<&str>, message: impl Into<String>) {
        self.findings.push(Finding {
            severity,
            id,
            file: file.map(String::from),
            array: array.map(String::from),
            message: message.into(),
        });
    }
}

/// What the log says, as far as it can be read without changing anything.
struct LogState {
    /// Arrays whose files the unfinished last record may have half-changed: their files
    /// are not judged (recovery redoes that record from its own bytes).
    pending: BTreeSet<String>,
    /// Temporary files the unfinished last record names (recovery installs them).
    pending_tmps: BTreeSet<String>,
}

/// Checks the store at `dir` and reports every problem found. Changes nothing. Fails
/// (rather than reporting) only when `dir` is not a store at all (`STORE_NOT_FOUND`,
/// `INVALID_ARGUMENT` for a file) or cannot be listed (`IO`).
///
/// Holds the store's lock while it looks, so that it sees no writer half-way through
/// an operation of a live process: a running writer's next change waits for it.
pub fn check(dir: &Path) -> Result<Report> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!(InvalidArgument, "{} is a file, not a store directory", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(StoreNotFound, "no store at {}", dir.display()),
        Err(e) => return Err(Error::io("cannot stat", dir, e)),
    }
    // The log doubles as the store's lock: hold it while looking (a read-only descriptor,
    // so nothing is created or changed), and list the directory only then, so that no
    // writer of another process changes files between the listing and the checks.
    let wal_path = dir.join(wal::FILE_NAME);
    // Never through a link: a linked log is reported below (not-a-regular-file).
    let wal_file = match crate::dirfd::open_in(dir, wal::FILE_NAME, crate::dirfd::Access::Read) {
        Ok(f) => f,
        Err(e) if e.code == crate::ErrorCode::Corrupt => None,
        Err(e) => return Err(e),
    };
    let _lock = match &wal_file {
        Some(f) => Some(FileLock::exclusive(f).map_err(|e| Error::io("cannot lock", &wal_path, e))?),
        None => None,
    };
    let listing = list(dir)?;
    let has_meta = listing.contains_key(metadata::FILE_NAME);
    let has_data = listing.keys().any(|n| n.starts_with("data_"));
    if !has_meta && wal_file.is_none() && !has_data {
        bail!(StoreNotFound, "{} holds no store (no {}, no {}, no data files)", dir.display(), metadata::FILE_NAME, wal::FILE_NAME);
    }
    let mut report = Report { path: dir.to_path_buf(), ..Report::default() };
    check_file_types(dir, &mut report);

    // A store killed while it was being created: a log never initialised, no catalogue
    // yet, no data. The log's finding says so; a missing catalogue is then no damage.
    let creating = !has_meta && !has_data && wal_file.as_ref().is_some_and(|f| !log_initialised(f));
    let meta_bytes = if creating { None } else { read_catalogue(dir, has_meta, has_data, &mut report)? };
    let mut cat = meta_bytes.as_ref().and_then(|b| decode_catalogue(b, &mut report));

    let log = match (&wal_file, &meta_bytes) {
        (Some(f), Some(meta)) => check_log(f, meta, cat.as_mut(), &mut report),
        (Some(f), None) if !log_initialised(f) => {
            report.push(
                Severity::Warning,
                ids::LOG_UNINITIALISED,
                Some(wal::FILE_NAME),
                None,
                "the log was created but never initialised (a writer died while creating the store); the next writable open initialises it",
            );
            None
        }
        (Some(_), None) => None,
        (None, _) => {
            report.push(
                Severity::Info,
                ids::NO_LOG,
                None,
                None,
                format!("no {}: the store was written by NumPack or never opened by numpack; nothing to do", wal::FILE_NAME),
            );
            None
        }
    };
    let pending = log.as_ref().map(|l| &l.pending);
    let pending_tmps = log.as_ref().map(|l| l.pending_tmps.clone()).unwrap_or_default();

    if let Some(cat) = &cat {
        report.arrays = cat.len();
        for (name, entry) in cat {
            if let Err(e) = name::validate(name) {
                report.push(Severity::Error, ids::INVALID_NAME, None, Some(name), format!("{e}; drop or rename the array with a numpack writer"));
                continue;
            }
            if pending.is_some_and(|p| p.contains(name)) {
                continue;
            }
            check_array(dir, name, entry, &listing, &mut report);
            check_bitmap(dir, name, entry, listing.contains_key(&bitmap_file(name)), &mut report);
        }
    }
    check_other_files(&listing, cat.as_ref(), pending, &pending_tmps, &mut report);
    Ok(report)
}

/// Reports the store's files that are links or not regular files (a segment directory
/// aside; its files are checked with the array). numpack opens none of them.
fn check_file_types(dir: &Path, report: &mut Report) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name == metadata::FILE_NAME || name == wal::FILE_NAME || name.starts_with("data_") || name.starts_with("deleted_");
        let Ok(md) = fs::symlink_metadata(entry.path()) else { continue };
        if !ours {
            continue;
        }
        let fix = "numpack neither reads nor writes through it; replace it by the file itself (from a trusted copy) or remove it";
        if md.file_type().is_symlink() {
            let target = fs::read_link(entry.path()).map(|t| t.display().to_string()).unwrap_or_default();
            report.push(Severity::Error, ids::NOT_REGULAR_FILE, Some(&name), None, format!("{name} is a symbolic link (to {target:?}); {fix}"));
        } else if !(md.is_file() || md.is_dir() && name.ends_with("_segments")) {
            report.push(Severity::Error, ids::NOT_REGULAR_FILE, Some(&name), None, format!("{name} is not a regular file; {fix}"));
        }
    }
}

/// Name → whether it is a regular file, for every entry of the directory.
fn list(dir: &Path) -> Result<BTreeMap<String, FileKind>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("cannot list", dir, e))?;
        let kind = match fs::metadata(entry.path()) {
            Ok(m) if m.is_file() => FileKind::File(m.len()),
            Ok(_) => FileKind::Other,
            Err(_) => FileKind::Other,
        };
        out.insert(entry.file_name().to_string_lossy().into_owned(), kind);
    }
    Ok(out)
}

/// What a directory entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file of this many bytes.
    File(u64),
    /// A directory, socket, dangling link, ...
    Other,
}

fn read_catalogue(dir: &Path, has_meta: bool, has_data: bool, report: &mut Report) -> Result<Option<Vec<u8>>> {
    if !has_meta {
        let what = if has_data { "the directory holds data files" } else { "the directory holds a numpack log" };
        report.push(
            Severity::Error,
            ids::CATALOGUE_MISSING,
            Some(metadata::FILE_NAME),
            None,
            format!("{} is missing while {what}; restore it from a backup or package (the arrays' shapes and dtypes are only recorded there)", metadata::FILE_NAME),
        );
        return Ok(None);
    }
    // Not through a link, never blocking on a FIFO (those are reported elsewhere).
    match crate::dirfd::read_in(dir, metadata::FILE_NAME, UNTRUSTED_READ_MAX) {
        Ok(Some(b)) => Ok(Some(b)),
        Ok(None) => Ok(None),
        Err(e) => {
            report.push(
                Severity::Error,
                ids::CATALOGUE_CORRUPT,
                Some(metadata::FILE_NAME),
                None,
                format!("cannot read {}: {}", metadata::FILE_NAME, e.message),
            );
            Ok(None)
        }
    }
}

/// Bound of whole-file reads: far beyond any catalogue or bitmap of a real store, and the
/// allocation is sized by the bytes the file holds anyway.
const UNTRUSTED_READ_MAX: u64 = 1 << 40;

fn decode_catalogue(bytes: &[u8], report: &mut Report) -> Option<Catalogue> {
    match metadata::decode(bytes) {
        Ok(c) => Some(c),
        Err(m) => {
            let magic = bytes.get(0..4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
            let version = bytes.get(4..8).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
            let fix = "restore it from a backup or package; no numpack or NumPack reader can open the store until then";
            let (id, msg) = if magic.is_some_and(|m| m != metadata::MAGIC) {
                (ids::CATALOGUE_BAD_MAGIC, format!("{} is not a NumPack catalogue: {m}; {fix}", metadata::FILE_NAME))
            } else if version.is_some_and(|v| v != metadata::VERSION) {
                (ids::CATALOGUE_BAD_VERSION, format!("{}: {m}; open it with the program that wrote it, or restore a version-{} copy", metadata::FILE_NAME, metadata::VERSION))
            } else {
                (ids::CATALOGUE_CORRUPT, format!("{} is damaged: {m}; {fix}", metadata::FILE_NAME))
            };
            report.push(Severity::Error, id, Some(metadata::FILE_NAME), None, msg);
            None
        }
    }
}

/// Names of the arrays whose files a record changes (and the temporary file it installs).
fn touched(op: &Op) -> (Vec<&str>, Vec<&str>) {
    match op {
        Op::Save { name, tmp, .. } | Op::Compact { name, tmp, .. } => (vec![name], vec![tmp]),
        Op::Append { name, .. } | Op::Delete { name, .. } | Op::Replace { name, .. } | Op::Drop { name } => (vec![name], vec![]),
        Op::Rename { from, to, .. } => (vec![from, to], vec![]),
        Op::Reset | Op::Checkpoint { .. } => (vec![], vec![]),
        Op::ZSave { name, tmp, .. } => (vec![name], vec![tmp]),
        Op::ZUpdate { name, .. } | Op::SegAppend { name, .. } => (vec![name], vec![]),
        Op::SegInstall { name, tmps, .. } => (vec![name], tmps.iter().map(String::as_str).collect()),
    }
}

/// Reads the log's header and committed records, replays them onto `cat` (as readers
/// do), and reports the log's state. `None` when the log cannot be read.
fn check_log(file: &File, meta: &[u8], cat: Option<&mut Catalogue>, report: &mut Report) -> Option<LogState> {
    let f = Some(wal::FILE_NAME);
    let mut state = LogState { pending: BTreeSet::new(), pending_tmps: BTreeSet::new() };
    let len = match file.metadata() {
        Ok(m) => m.len(),
        Err(e) => {
            report.push(Severity::Error, ids::LOG_CORRUPT, f, None, format!("cannot stat the log: {e}"));
            return None;
        }
    };
    let mut hb = [0u8; HEADER_LEN as usize];
    if len < HEADER_LEN || file.read_exact_at(&mut hb, 0).is_err() || !log_initialised(file) {
        report.push(
            Severity::Warning,
            ids::LOG_UNINITIALISED,
            f,
            None,
            "the log was created but never initialised (a writer died while creating the store); the next writable open initialises it",
        );
        return Some(state);
    }
    let hdr = match Header::decode(&hb) {
        Ok(h) => h,
        Err(m) => {
            report.push(
                Severity::Error,
                ids::LOG_CORRUPT,
                f,
                None,
                format!("the log's header is damaged: {m}; numpack refuses to open the store. If metadata.npkm is intact, moving {} aside loses only the changes since the last checkpoint", wal::FILE_NAME),
            );
            return None;
        }
    };
    if hdr.end > len {
        report.push(
            Severity::Error,
            ids::LOG_CORRUPT,
            f,
            None,
            format!("the log's header commits records up to byte {} but the file has {len} bytes; restore the store from a backup", hdr.end),
        );
        return None;
    }
    let mut buf = vec![0u8; (hdr.end - HEADER_LEN) as usize];
    if let Err(e) = file.read_exact_at(&mut buf, HEADER_LEN) {
        report.push(Severity::Error, ids::LOG_CORRUPT, f, None, format!("cannot read the log: {e}"));
        return None;
    }
    // Frames as `Wal::scan` reads them: stop at the first torn one.
    let mut ops: Vec<Op> = Vec::new();
    let mut pos = 0usize;
    while pos as u64 + wal::FRAME_LEN <= buf.len() as u64 {
        let rlen = u32::from_le_bytes(buf[pos..pos + 4].try_into().unwrap()) as u64;
        let crc = u32::from_le_bytes(buf[pos + 4..pos + 8].try_into().unwrap());
        if rlen > wal::MAX_RECORD || pos as u64 + wal::FRAME_LEN + rlen > buf.len() as u64 {
            break;
        }
        let payload = &buf[pos + 8..pos + 8 + rlen as usize];
        if wal::record_crc(hdr.generation, payload) != crc {
            break;
        }
        match Op::decode(payload) {
            Ok(op) => ops.push(op),
            Err(m) => {
                report.push(
                    Severity::Error,
                    ids::LOG_CORRUPT,
                    f,
                    None,
                    format!("the log record at byte {} is damaged: {m}; numpack refuses to open the store; restore it from a backup", HEADER_LEN + pos as u64),
                );
                return None;
            }
        }
        pos += (wal::FRAME_LEN + rlen) as usize;
    }
    let valid_end = HEADER_LEN + pos as u64;
    if valid_end < hdr.end {
        report.push(
            Severity::Warning,
            ids::LOG_TORN_RECORD,
            f,
            None,
            format!(
                "the log ends in {} bytes of a torn record (a power loss before a sync); the next writable open drops it, losing that unsynced change",
                hdr.end - valid_end
            ),
        );
    }
    let fp = wal::fingerprint(meta);
    let real: Vec<&Op> = ops.iter().filter(|op| !matches!(op, Op::Checkpoint { .. })).collect();
    let recover = "open the store once with write access (any numpack writer, e.g. `npk compact`) to finish it";
    if let Some(Op::Checkpoint { base }) = ops.last() {
        if *base == fp {
            report.push(
                Severity::Error,
                ids::NEEDS_RECOVERY,
                f,
                None,
                format!("a writer died while folding the log into {} (the new catalogue is in place); {recover}", metadata::FILE_NAME),
            );
            return Some(state);
        }
    }
    if fp != hdr.base {
        if !real.is_empty() {
            report.push(
                Severity::Info,
                ids::LOG_STALE,
                f,
                None,
                format!(
                    "{} was rewritten by another program (NumPack?) after numpack logged {} changes; that catalogue wins and the next writable open discards the stale log",
                    metadata::FILE_NAME,
                    real.len()
                ),
            );
        }
        return Some(state);
    }
    if let Some(cat) = cat {
        for op in &ops {
            if let Err(m) = crate::store::apply_to_catalogue(cat, op) {
                report.push(
                    Severity::Error,
                    ids::LOG_CORRUPT,
                    f,
                    None,
                    format!("the log does not fit the catalogue: {m}; numpack refuses to open the store; restore it from a backup"),
                );
                return None;
            }
        }
    }
    if !real.is_empty() {
        report.push(
            Severity::Info,
            ids::LOG_NOT_CHECKPOINTED,
            f,
            None,
            format!(
                "{} committed changes are in the log but not yet in {}: numpack sees them, NumPack will once a numpack writer closes or syncs the store",
                real.len(),
                metadata::FILE_NAME
            ),
        );
    }
    if valid_end > hdr.applied_end {
        if let Some(op) = real.last() {
            let (names, tmp) = touched(op);
            state.pending.extend(names.iter().map(|s| s.to_string()));
            state.pending_tmps.extend(tmp.into_iter().map(String::from));
            let what = if names.is_empty() { "the store".to_string() } else { format!("array {:?}", names.join("\", \"")) };
            report.push(
                Severity::Error,
                ids::NEEDS_RECOVERY,
                f,
                names.first().copied(),
                format!("a writer died in the middle of an operation on {what} (its files are not judged here); {recover}; read-only handles refuse the store until then"),
            );
        }
    } else if hdr.change_counter % 2 == 1 {
        report.push(
            Severity::Info,
            ids::LOG_COUNTER_ODD,
            f,
            None,
            "a writer died just after finishing a change, leaving the change counter odd; nothing is lost, and the next change (by any writable handle) resets it",
        );
    }
    Some(state)
}

/// Whether the log has a header (a log just created is empty or zeros).
fn log_initialised(file: &File) -> bool {
    let mut magic = [0u8; 8];
    file.read_exact_at(&mut magic, 0).is_ok() && magic != [0u8; 8]
}

/// The per-format checks of one array's data file: the single place where a data-file
/// format's verifier goes. Raw arrays (`data_<name>.npkd`) must hold exactly the bytes
/// their shape and dtype imply.
///
/// `listing` is every entry of the store directory, so that a format can find the files
/// it uses; [`array_files`] must name them (the rest are orphans).
pub fn check_array(dir: &Path, name: &str, entry: &Entry, listing: &BTreeMap<String, FileKind>, report: &mut Report) {
    if entry.segmented {
        return check_segmented(dir, name, entry, listing, report);
    }
    // A compressed array: readers use its .npkz whenever it exists.
    let zname = compress::file_name(name);
    if listing.contains_key(&zname) {
        return check_compressed(dir, name, entry, &zname, listing, report);
    }
    let file = data_file(name);
    let data = listing.get(&file);
    let want = entry.nbytes();
    match data {
        None => report.push(
            Severity::Error,
            ids::DATA_MISSING,
            Some(&file),
            Some(name),
            format!("{file} is missing: the array's {want} bytes are gone; drop the array (or restore the file from a backup)"),
        ),
        Some(FileKind::Other) => report.push(
            Severity::Error,
            ids::DATA_SIZE_MISMATCH,
            Some(&file),
            Some(name),
            format!("{file} is not a regular file; replace it with the array's data or drop the array"),
        ),
        Some(&FileKind::File(len)) if len < want => report.push(
            Severity::Error,
            ids::DATA_SIZE_MISMATCH,
            Some(&file),
            Some(name),
            format!(
                "{file} has {len} bytes but shape {:?} of {} needs {want}: rows past byte {len} are lost; restore it from a backup, or save the rows that remain under a new array",
                entry.shape,
                entry.dtype.numpy_name()
            ),
        ),
        Some(&FileKind::File(len)) if len > want => report.push(
            Severity::Warning,
            ids::DATA_TRAILING_BYTES,
            Some(&file),
            Some(name),
            format!(
                "{file} has {} bytes past the array's end (left by an interrupted append); they are ignored and overwritten by the next append",
                len - want
            ),
        ),
        Some(_) => {}
    }
}

/// A segmented array (NumPack 0.7): its manifest parsed strictly and checked against the
/// catalogue's shape, then each segment file it lists against the manifest's bytes.
fn check_segmented(dir: &Path, name: &str, entry: &Entry, listing: &BTreeMap<String, FileKind>, report: &mut Report) {
    let mf = segments::manifest_file(name);
    if !listing.contains_key(&mf) {
        return report.push(
            Severity::Error,
            ids::DATA_MISSING,
            Some(&mf),
            Some(name),
            format!("{mf} is missing: the array's segments cannot be found; drop the array (or restore the file from a backup)"),
        );
    }
    let fix = "restore it from a backup or package, or drop the array";
    let m = match segments::read_manifest(dir, name) {
        Ok(m) => m,
        Err(e) => return report.push(Severity::Error, ids::SEGMENT_MANIFEST, Some(&mf), Some(name), format!("{}; {fix}", e.message)),
    };
    if let Err(e) = m.check_shape(entry.row_bytes(), entry.physical_rows()) {
        return report.push(
            Severity::Error,
            ids::SEGMENT_MANIFEST,
            Some(&mf),
            Some(name),
            format!("{mf} does not fit shape {:?} of {}: {e}; {fix}", entry.shape, entry.dtype.numpy_name()),
        );
    }
    let sd = segments::dir_name(name);
    if fs::symlink_metadata(dir.join(&sd)).is_ok_and(|m| !m.is_dir()) {
        return report.push(Severity::Error, ids::SEGMENT_FILE, Some(&sd), Some(name), format!("{sd} is not a directory (a link?); segment files must be inside the store; {fix}"));
    }
    for s in &m.segments {
        let f = Some(s.file.as_str());
        let md = match fs::symlink_metadata(dir.join(&s.file)) {
            Ok(md) => md,
            Err(_) if s.bytes == 0 => continue,
            Err(_) => {
                report.push(Severity::Error, ids::DATA_MISSING, f, Some(name), format!("{} is missing: its {} rows are gone; {fix}", s.file, s.rows));
                continue;
            }
        };
        if !md.is_file() {
            report.push(Severity::Error, ids::SEGMENT_FILE, f, Some(name), format!("{} is a link or not a regular file; segment files must be plain files inside the store; {fix}", s.file));
        } else if md.len() < s.bytes {
            report.push(
                Severity::Error,
                ids::DATA_SIZE_MISMATCH,
                f,
                Some(name),
                format!("{} has {} bytes but the manifest says {}: rows past byte {} of this segment are lost; {fix}", s.file, md.len(), s.bytes, md.len()),
            );
        } else if md.len() > s.bytes {
            report.push(
                Severity::Warning,
                ids::DATA_TRAILING_BYTES,
                f,
                Some(name),
                format!("{} has {} bytes past the segment's end (left by an interrupted append); they are ignored and overwritten by the next append", s.file, md.len() - s.bytes),
            );
        }
    }
    if let Ok(entries) = fs::read_dir(dir.join(&sd)) {
        let listed: BTreeSet<&str> = m.segments.iter().map(|s| s.file.as_str()).collect();
        for e in entries.flatten() {
            let rel = format!("{sd}/{}", e.file_name().to_string_lossy());
            if !listed.contains(rel.as_str()) {
                report.push(
                    Severity::Warning,
                    ids::ORPHAN_DATA,
                    Some(&rel),
                    Some(name),
                    format!("{rel} is not listed in {mf} (left by an interrupted append or compaction); delete it to reclaim the space"),
                );
            }
        }
    }
}

/// Verifies every chunk of a compressed array (header, index, each chunk's CRC32 and
/// decompression) against the catalogue's dtype, row size and physical rows.
fn check_compressed(dir: &Path, name: &str, entry: &Entry, zname: &str, listing: &BTreeMap<String, FileKind>, report: &mut Report) {
    let fix = "the rows of the damaged chunks are lost: restore the array from a backup or package, or save the readable rows under a new array";
    let expect = Some((entry.dtype, entry.row_bytes(), entry.physical_rows()));
    match compress::verify(&dir.join(zname), name, expect) {
        Ok(found) => {
            for f in found {
                let (id, what) = match f.chunk {
                    Some(c) => (ids::COMPRESSED_CHUNK, format!("chunk {c}: ")),
                    None => (ids::COMPRESSED_HEADER, String::new()),
                };
                report.push(Severity::Error, id, Some(zname), Some(name), format!("{what}{}; {fix}", f.message));
            }
        }
        Err(e) => report.push(Severity::Error, ids::COMPRESSED_HEADER, Some(zname), Some(name), format!("cannot read {zname}: {}", e.message)),
    }
    let plain = data_file(name);
    if listing.contains_key(&plain) {
        report.push(
            Severity::Warning,
            ids::STALE_PLAIN_DATA,
            Some(&plain),
            Some(name),
            format!("{plain} is left beside {zname} (an interrupted save, or a copy from elsewhere); readers use {zname} and ignore it: delete it"),
        );
    }
}

fn check_bitmap(dir: &Path, name: &str, entry: &Entry, exists: bool, report: &mut Report) {
    if !exists {
        return;
    }
    let file = bitmap_file(name);
    let push = |report: &mut Report, sev, id, msg: String| report.push(sev, id, Some(&file), Some(name), msg);
    if entry.shape.is_empty() {
        push(report, Severity::Warning, ids::BITMAP_ON_SCALAR, format!("{file} belongs to a 0-d array, which has no rows to delete; remove the file"));
        return;
    }
    let fix = "the deleted rows are unknown: restore the file from a backup, or remove it to make every row live again";
    let bytes = match crate::dirfd::read_in(dir, &file, UNTRUSTED_READ_MAX) {
        Ok(Some(b)) => b,
        Ok(None) => return push(report, Severity::Error, ids::BITMAP_CORRUPT, format!("cannot read {file}: it disappeared")),
        Err(e) => return push(report, Severity::Error, ids::BITMAP_CORRUPT, format!("cannot read {file}: {}", e.message)),
    };
    let total = entry.physical_rows();
    let words = total.div_ceil(64);
    let header_len = bitmap::HEADER_LEN + words * 8;
    let n = bytes.len() as u64;
    if n != header_len && n != words * 8 {
        return push(
            report,
            Severity::Error,
            ids::BITMAP_SIZE_MISMATCH,
            format!("{file} has {n} bytes but a bitmap of {total} rows has {header_len} ({} in NumPack's header-less layout); {fix}", words * 8),
        );
    }
    if n == header_len {
        let t = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        let d = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
        if t != total {
            return push(
                report,
                Severity::Error,
                ids::BITMAP_ROW_COUNT,
                format!("{file} covers {t} rows but the array has {total}; {fix}"),
            );
        }
        // Clear bits among the array's rows (bits past the last row are judged below).
        let live: u64 = bytes[16..]
            .chunks_exact(8)
            .enumerate()
            .map(|(i, c)| {
                let w = u64::from_le_bytes(c.try_into().unwrap());
                let valid = total - i as u64 * 64;
                let w = if valid < 64 { w & ((1u64 << valid) - 1) } else { w };
                w.count_ones() as u64
            })
            .sum();
        let clear = total - live;
        if d != clear {
            return push(
                report,
                Severity::Error,
                ids::BITMAP_DELETED_COUNT,
                format!("{file} counts {d} deleted rows in its header but {clear} bits are clear; the bits are likely right: rewrite the file by deleting any row again, or restore it"),
            );
        }
    }
    if let Err(m) = Bitmap::decode(&bytes, total) {
        push(report, Severity::Error, ids::BITMAP_CORRUPT, format!("{file} is damaged: {m}; {fix}"));
    }
}

/// The files array `name` may own, whatever its format: a file of the directory that looks
/// like an array's (see [`DATA_EXTENSIONS`]) and that no catalogued array owns is an orphan.
/// Goes with [`check_array`] when a data-file format is added.
pub fn array_files(name: &str, entry: &Entry) -> Vec<String> {
    let mut files = vec![data_file(name), compress::file_name(name), bitmap_file(name)];
    if entry.segmented {
        files.extend([segments::manifest_file(name), segments::dir_name(name)]);
    }
    files
}

/// Extensions of the data files of every format (`data_<name><ext>`), to tell an orphan
/// data file from an unknown file (`_segments` is a segmented array's directory).
pub const DATA_EXTENSIONS: &[&str] = &[".npkd", ".npkz", segments::EXTENSION, "_segments"];

fn check_other_files(
    listing: &BTreeMap<String, FileKind>,
    cat: Option<&Catalogue>,
    pending: Option<&BTreeSet<String>>,
    pending_tmps: &BTreeSet<String>,
    report: &mut Report,
) {
    use crate::store::{TMP_PREFIX, TMP_SUFFIX};
    for (file, kind) in listing {
        let f = Some(file.as_str());
        if file == metadata::FILE_NAME || file == wal::FILE_NAME || pending_tmps.contains(file) {
            continue;
        }
        if let Some(rest) = file.strip_prefix(TMP_PREFIX).filter(|_| file.ends_with(TMP_SUFFIX)) {
            let pid = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
            if pid.is_some_and(process_alive) {
                report.push(Severity::Info, ids::TMP_IN_USE, f, None, format!("{file} belongs to running process {}; nothing to do", pid.unwrap()));
            } else {
                report.push(
                    Severity::Warning,
                    ids::ORPHAN_TMP,
                    f,
                    None,
                    format!("{file} was left by a process that died; the next writable open removes it (or delete it)"),
                );
            }
            continue;
        }
        if file.contains(".tmp") {
            report.push(
                Severity::Warning,
                ids::LEFTOVER_TMP,
                f,
                None,
                format!("{file} is a temporary file left by a killed writer (NumPack's naming); delete it"),
            );
            continue;
        }
        let array = |prefix: &str, suffix: &str| file.strip_prefix(prefix).and_then(|r| r.strip_suffix(suffix)).map(str::to_string);
        let (owner, id, what) = if let Some(a) = DATA_EXTENSIONS.iter().find_map(|ext| array("data_", ext)) {
            (a, ids::ORPHAN_DATA, "data")
        } else if let Some(a) = array("deleted_", ".npkb") {
            (a, ids::ORPHAN_BITMAP, "bitmap")
        } else {
            let what = if *kind == FileKind::Other { "directory or special file" } else { "file" };
            report.push(Severity::Info, ids::UNKNOWN_FILE, f, None, format!("{file}: a {what} that is no part of the store's format; numpack ignores it"));
            continue;
        };
        // Without a readable catalogue no file can be called an orphan.
        let Some(cat) = cat else { continue };
        let claimed = cat.get(&owner).is_some_and(|e| array_files(&owner, e).contains(file));
        if claimed || pending.is_some_and(|p| p.contains(&owner)) {
            continue;
        }
        report.push(
            Severity::Warning,
            id,
            f,
            Some(&owner),
            format!("{file} looks like a {what} file of array {owner:?}, which the catalogue does not list with this file (left by a crashed NumPack writer?); delete it to reclaim the space"),
        );
    }
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks whether the process exists.
    unsafe { libc::kill(pid, 0) == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) }
}
