//! NumPack packages (`.npkg`): a whole store in one file, to move or archive it.
//! Byte-compatible with NumPack's `pack`/`unpack`/`get_package_info`
//! (`numpack/io/package_io.py`, NumPack 0.5.0).
//!
//! # Layout (little-endian)
//!
//! ```text
//! "NPKG" | u32 version (2; 1 is read too) | u8 compression (0 none, 1 zstd) | u32 file_count
//! file_count times:
//!     u32 name_len | name (UTF-8 file name) | u64 original_size | u64 compressed_size
//!     payload: compressed_size bytes when compressed_size > 0, else original_size raw bytes
//! u32 footer
//! ```
//!
//! Files are the store's format files (`metadata.npkm`, `data_<array>.npkd`,
//! `deleted_<array>.npkb`; for a NumPack 0.7 segmented array `data_<array>.npkseg` and
//! `data_<array>_segments/seg_<n>.npkd`, the only names with a directory) sorted by name;
//! never `numpack.wal`. With compression each
//! file is one zstd stream, stored raw (`compressed_size = 0`) when that stream would not
//! be smaller than the file, as NumPack does. The footer of version 2 is the CRC32 of the
//! concatenated little-endian CRC32s of the files' uncompressed bytes; version 1's is the
//! CRC32 of all files' uncompressed bytes in a row.
//!
//! NumPack writes zlib streams (level 6) under compression flag 1 when its Python lacks
//! the `zstandard` module. So every compressed payload is decoded by what its first bytes
//! are (a zstd frame or a zlib stream), whatever the flag says.
//!
//! # Guarantees
//!
//! * Constant memory, whatever the size of the store: files are streamed through
//!   1 MiB buffers and the codecs' fixed-size state; nothing is read whole.
//! * [`pack`] writes a temporary file beside the target and renames it into place after
//!   `fsync`; [`unpack`] writes a temporary directory beside the target, checks it, and
//!   renames it into place. A failure or a cancellation leaves the target as it was and
//!   removes the temporary file or directory. (A process killed meanwhile leaves its
//!   temporary `<target>.tmp-<pid>-<n>` or `.<target>.unpack-<pid>-<n>` behind; it is
//!   never mistaken for a package or a store.)
//! * Reading checks everything it reads: structure, names, sizes, the codecs' own
//!   checksums, each array's data file against the catalogue and (with `verify`) the
//!   footer. Damage is reported as [`ErrorCode::Corrupt`] naming the package and, where
//!   it can be told, the file inside; never a panic, never a partial store.
//!
//! # Thread safety
//!
//! Every function here may run in any number of threads at once. The progress callback
//! runs on the calling thread, between blocks of work. Two calls writing the same target
//! do not mix their output: each writes its own temporary file or directory, and the
//! final rename decides (without `overwrite`, the second gets `ALREADY_EXISTS`).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{bail, Error, ErrorCode, Result};
use crate::{metadata, name, Store};

/// The package magic, `"NPKG"`.
pub const MAGIC: [u8; 4] = *b"NPKG";
/// The format version [`pack`] writes. Versions 1 and 2 are read.
pub const VERSION: u32 = 2;
/// Compression flag: payloads are raw.
pub const COMPRESSION_NONE: u8 = 0;
/// Compression flag: payloads may be compressed (zstd; zlib from NumPack's fallback).
pub const COMPRESSION_ZSTD: u8 = 1;

/// Magic, version, compression flag, file count.
const HEADER_LEN: u64 = 4 + 4 + 1 + 4;
/// Name length and the two sizes of an entry header.
const ENTRY_FIXED: u64 = 4 + 8 + 8;
const FOOTER_LEN: u64 = 4;
/// Longest entry name: a file name (`deleted_` + a name of at most 242 bytes + `.npkb`).
const MAX_ENTRY_NAME: u32 = 255;
/// The size of every I/O buffer.
const BUF: usize = 1 << 20;
/// The progress callback is called at least this often (bytes of file data).
const PROGRESS_STEP: u64 = 4 << 20;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// How [`pack`] writes a package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackOptions {
    /// Compress each file with zstd (and store it raw when that does not make it
    /// smaller). `false` stores every file raw and writes compression flag 0.
    pub compress: bool,
    /// zstd level, default 3 (NumPack's). Any level zstd accepts (`-131072..=22`; 0 means
    /// zstd's default, 3); others give `INVALID_ARGUMENT`. Ignored without `compress`.
    pub level: i32,
    /// Replace an existing package file at the target. Without it an existing target gives
    /// `ALREADY_EXISTS` and nothing is written.
    pub overwrite: bool,
}

impl Default for PackOptions {
    /// `compress: true, level: 3, overwrite: false`, as NumPack.
    fn default() -> PackOptions {
        PackOptions { compress: true, level: 3, overwrite: false }
    }
}

/// Progress callback: called with `(bytes done, bytes total)` of file data (uncompressed)
/// once at the start, after each file, at least every 4 MiB, and at the end. Returning
/// `false` cancels the operation: it returns [`ErrorCode::Cancelled`] and leaves neither
/// a target nor a temporary file behind. Runs on the calling thread.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64) -> bool;

/// One file in a package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageEntry {
    /// Its file name in the store directory (`metadata.npkm`, `data_<array>.npkd` or
    /// `deleted_<array>.npkb`).
    pub name: String,
    /// Its size in the store.
    pub original_size: u64,
    /// Its payload's size when compressed; 0 when stored raw (the payload is then
    /// `original_size` bytes). NumPack's `compressed_size`.
    pub stored_size: u64,
    /// CRC32 of its uncompressed bytes: as packed ([`pack`]) or as unpacked and written
    /// ([`unpack`], whether or not `verify` compared the footer). `None` from [`info`],
    /// which decompresses nothing (version 2 stores per-file CRCs only inside the footer).
    pub crc32: Option<u32>,
}

impl PackageEntry {
    /// Bytes the entry's payload occupies in the package.
    pub fn payload_size(&self) -> u64 {
        if self.stored_size > 0 { self.stored_size } else { self.original_size }
    }
}

/// What a package holds (NumPack's `get_package_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageInfo {
    /// Format version: 1 or 2.
    pub version: u32,
    /// Compression flag: [`COMPRESSION_NONE`] or [`COMPRESSION_ZSTD`].
    pub compression: u8,
    /// `"zstd"` for flag 1, `"none"` for 0 (NumPack's names; flag 1 payloads written by
    /// NumPack without `zstandard` are zlib streams all the same).
    pub compression_name: &'static str,
    /// The files, in package order (sorted by name when written by numpack or NumPack).
    pub entries: Vec<PackageEntry>,
    /// Sum of the files' sizes.
    pub total_original_size: u64,
    /// Sum of the payloads' sizes ([`PackageEntry::payload_size`]): NumPack's
    /// `total_compressed_size`.
    pub total_stored_size: u64,
}

fn compression_name(flag: u8) -> &'static str {
    if flag == COMPRESSION_ZSTD { "zstd" } else { "none" }
}

/// NumPack's default package path for a store directory: `<parent>/<name>.npkg`, e.g.
/// `data/x.npk` -> `data/x.npk.npkg`. A path without a final name (`/`, `..`) gets
/// `.npkg` appended to it as written. Pure: touches no file.
pub fn default_package_path(store_dir: &Path) -> PathBuf {
    match store_dir.file_name() {
        Some(n) => {
            let mut name = n.to_os_string();
            name.push(".npkg");
            store_dir.with_file_name(name)
        }
        None => {
            let mut s: OsString = store_dir.as_os_str().to_os_string();
            s.push(".npkg");
            PathBuf::from(s)
        }
    }
}

/// NumPack's default store path for a package: the package's stem when it ends in
/// `.npk` (`x.npk.npkg` -> `x.npk`), else the stem plus `.npk` (`x.npkg` -> `x.npk`,
/// `backup` -> `backup.npk`), beside the package. Pure: touches no file.
pub fn default_unpack_path(package: &Path) -> PathBuf {
    let stem = package.file_stem().map(|s| s.to_os_string()).unwrap_or_default();
    let name = if stem.as_encoded_bytes().ends_with(b".npk") {
        stem
    } else {
        let mut s = stem;
        s.push(".npk");
        s
    };
    package.with_file_name(name)
}

// ---------------------------------------------------------------------------------------
// Names

/// What a file of a store is, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind<'a> {
    Metadata,
    Data(&'a str),
    Bitmap(&'a str),
    /// A segment file of a segmented array (NumPack 0.7): `data_<array>_segments/seg_N.npkd`,
    /// the only kind of entry inside a directory.
    Segment(&'a str),
}

/// The kind of a store format file name, or `None` when it is not one.
fn kind(file: &str) -> Option<Kind<'_>> {
    if file == metadata::FILE_NAME {
        return Some(Kind::Metadata);
    }
    let array = |prefix: &str, suffix: &str| file.strip_prefix(prefix)?.strip_suffix(suffix).filter(|a| name::validate(a).is_ok());
    if let Some(a) = array("data_", ".npkd") {
        return Some(Kind::Data(a));
    }
    // compressed arrays: `data_<array>.npkz` instead of `.npkd` (src/compress.rs)
    if let Some(a) = array("data_", ".npkz") {
        return Some(Kind::Data(a));
    }
    if let Some(a) = array("data_", crate::segments::EXTENSION) {
        return Some(Kind::Data(a));
    }
    if let Some((d, _)) = file.split_once('/') {
        let a = d.strip_prefix("data_")?.strip_suffix("_segments").filter(|a| name::validate(a).is_ok())?;
        return crate::segments::valid_segment_file(a, file).then_some(Kind::Segment(a));
    }
    array("deleted_", ".npkb").map(Kind::Bitmap)
}

/// Checks an entry name: a plain file name that is one of the store's format files.
fn check_entry_name(pkg: &Path, index: u32, name: &str) -> Result<()> {
    // A segment file is the one kind of entry with a directory, and its exact pattern
    // (checked by `kind`) leaves no room for `..` or an absolute path.
    let segment = matches!(kind(name), Some(Kind::Segment(_)));
    let path_like = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['\\', '\0'])
        || (name.contains('/') && !segment)
        || Path::new(name).is_absolute();
    if path_like {
        return Err(Error::corrupt(pkg, format!("entry {index} ({name:?}) would escape the target directory")));
    }
    if kind(name).is_none() {
        return Err(Error::corrupt(
            pkg,
            format!(
                "entry {index} ({name:?}) is not a file of a NumPack store \
                 (metadata.npkm, data_<array>.npkd, data_<array>.npkz, data_<array>.npkseg, \
                 data_<array>_segments/seg_<n>.npkd or deleted_<array>.npkb with a valid array name)"
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Progress and temporaries

struct Meter<'a> {
    cb: Option<Progress<'a>>,
    done: u64,
    total: u64,
    reported: u64,
    what: &'static str,
}

impl<'a> Meter<'a> {
    fn new(cb: Option<Progress<'a>>, total: u64, what: &'static str) -> Meter<'a> {
        Meter { cb, done: 0, total, reported: 0, what }
    }

    /// Calls the callback now; a `false` from it becomes `CANCELLED`.
    fn report(&mut self) -> Result<()> {
        self.reported = self.done;
        if let Some(cb) = self.cb.as_mut() {
            if !cb(self.done, self.total) {
                bail!(Cancelled, "{} cancelled by the progress callback", self.what);
            }
        }
        Ok(())
    }

    fn advance(&mut self, n: u64) -> Result<()> {
        self.done += n;
        if self.done - self.reported >= PROGRESS_STEP { self.report() } else { Ok(()) }
    }
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// `<dir>/<prefix><pid>-<n>`, fresh for this process.
fn tmp_name(dir: &Path, prefix: &OsString) -> PathBuf {
    let mut n = prefix.clone();
    n.push(format!("{}-{}", std::process::id(), TMP_SEQ.fetch_add(1, Ordering::Relaxed)));
    dir.join(n)
}

/// Creates a new temporary file (with its handle) or directory named by [`tmp_name`];
/// a name left by an earlier process of the same id is skipped.
fn create_tmp(dir: &Path, prefix: &OsString, is_dir: bool) -> Result<(Tmp, Option<File>)> {
    loop {
        let path = tmp_name(dir, prefix);
        let made = if is_dir {
            fs::create_dir(&path).map(|_| None)
        } else {
            File::options().write(true).create_new(true).open(&path).map(Some)
        };
        match made {
            Ok(file) => return Ok((Tmp { path, dir: is_dir, keep: false }, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("cannot create", &path, e)),
        }
    }
}

/// A temporary file or directory, removed on drop unless kept.
struct Tmp {
    path: PathBuf,
    dir: bool,
    keep: bool,
}

impl Drop for Tmp {
    fn drop(&mut self) {
        if !self.keep {
            let _ = if self.dir { fs::remove_dir_all(&self.path) } else { fs::remove_file(&self.path) };
        }
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("cannot sync directory", dir, e))
}

/// Directories made for a target, removed again (when still empty) unless kept.
struct MadeDirs {
    /// Outermost first.
    dirs: Vec<PathBuf>,
    keep: bool,
}

impl Drop for MadeDirs {
    fn drop(&mut self) {
        if !self.keep {
            for d in self.dirs.iter().rev() {
                let _ = fs::remove_dir(d);
            }
        }
    }
}

/// Creates the missing parent directories of `path`.
fn create_parent(path: &Path) -> Result<MadeDirs> {
    let parent = parent_of(path);
    let mut missing = Vec::new();
    let mut p = Some(parent);
    while let Some(d) = p.filter(|d| !d.as_os_str().is_empty() && fs::symlink_metadata(d).is_err()) {
        missing.push(d.to_path_buf());
        p = d.parent();
    }
    missing.reverse();
    let made = MadeDirs { dirs: missing, keep: false };
    fs::create_dir_all(parent).map_err(|e| Error::io("cannot create directory", parent, e))?;
    Ok(made)
}

/// Renames `from` to `to` unless `to` exists (then `ALREADY_EXISTS`), atomically where
/// the system can (Linux `renameat2(RENAME_NOREPLACE)`).
fn rename_no_replace(from: &Path, to: &Path) -> Result<()> {
    let exists = || Error::new(ErrorCode::AlreadyExists, format!("{} already exists (pass overwrite to replace it)", to.display()));
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let (Ok(f), Ok(t)) = (CString::new(from.as_os_str().as_bytes()), CString::new(to.as_os_str().as_bytes())) else {
            return Err(Error::invalid(format!("path {} contains a NUL byte", to.display())));
        };
        // SAFETY: two valid NUL-terminated paths, relative to the working directory.
        let rc = unsafe { libc::renameat2(libc::AT_FDCWD, f.as_ptr(), libc::AT_FDCWD, t.as_ptr(), libc::RENAME_NOREPLACE) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => return Err(exists()),
            // The file system cannot do it: check, then rename, below.
            Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {}
            _ => return Err(Error::io(&format!("cannot rename {} to", from.display()), to, err)),
        }
    }
    if fs::symlink_metadata(to).is_ok() {
        return Err(exists());
    }
    fs::rename(from, to).map_err(|e| Error::io(&format!("cannot rename {} to", from.display()), to, e))
}

/// Swaps `a` and `b` atomically (Linux `renameat2(RENAME_EXCHANGE)`): `Ok(true)` when
/// done, `Ok(false)` when the system or file system cannot, or `b` does not exist.
fn rename_exchange(a: &Path, b: &Path) -> Result<bool> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let (Ok(ca), Ok(cb)) = (CString::new(a.as_os_str().as_bytes()), CString::new(b.as_os_str().as_bytes())) else {
            return Err(Error::invalid(format!("path {} contains a NUL byte", b.display())));
        };
        // SAFETY: two valid NUL-terminated paths, relative to the working directory.
        let rc = unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => Ok(false),
            _ => Err(Error::io(&format!("cannot swap {} with", a.display()), b, err)),
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = (a, b);
        Ok(false)
    }
}

// ---------------------------------------------------------------------------------------
// pack

/// The output file, counting its position.
struct Out {
    w: BufWriter<File>,
    pos: u64,
    path: PathBuf,
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.w.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

impl Out {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.write_all(bytes).map_err(|e| Error::io("cannot write", &self.path, e))
    }
    /// Writes `bytes` at `at`, then returns to the end.
    fn patch(&mut self, at: u64, bytes: &[u8]) -> Result<()> {
        let end = self.pos;
        (|| {
            self.w.seek(SeekFrom::Start(at))?;
            self.w.write_all(bytes)?;
            self.w.seek(SeekFrom::Start(end)).map(drop)
        })()
        .map_err(|e| Error::io("cannot write", &self.path, e))
    }
    /// Cuts the file back to `len` bytes and continues there.
    fn truncate(&mut self, len: u64) -> Result<()> {
        (|| {
            self.w.flush()?;
            self.w.get_ref().set_len(len)?;
            self.w.seek(SeekFrom::Start(len)).map(drop)
        })()
        .map_err(|e| Error::io("cannot truncate", &self.path, e))?;
        self.pos = len;
        Ok(())
    }
}

/// Packs the store behind `store` into a package file at `target`.
///
/// The files packed are the ones [`Store::with_frozen_files`] gives: the log is folded
/// into `metadata.npkm` first and every writer of the store (any thread, any process)
/// waits until the package is written, so the package holds one consistent state with
/// every change made before the call. Writes through writable views bypass that lock
/// and must not run meanwhile. Parent directories of `target` are created. The package is
/// written to `<target>.tmp-<pid>-<n>`, `fsync`ed, and renamed to `target`.
///
/// Returns what was written, with every entry's CRC32. The caller keeps `store`.
///
/// Errors: `ALREADY_EXISTS` when `target` exists and `opts.overwrite` is false (checked
/// before anything is written); `INVALID_ARGUMENT` for a zstd level out of range, a
/// `target` that is a directory, or a `target` that would be a file of the store itself;
/// `READ_ONLY` when `store` is a read-only handle and its log has changes to fold;
/// `CANCELLED` when `progress` returns false; `IO` for a failed read or write; whatever
/// folding the log reports (e.g. `CORRUPT`). On any error no target is created (an existing
/// one is left as it was) and the temporary file is removed.
pub fn pack(store: &Store, target: &Path, opts: &PackOptions, progress: Option<Progress<'_>>) -> Result<PackageInfo> {
    if opts.compress && !zstd::compression_level_range().contains(&opts.level) {
        let r = zstd::compression_level_range();
        bail!(InvalidArgument, "zstd level {} is out of range {}..={}", opts.level, r.start(), r.end());
    }
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => bail!(InvalidArgument, "the package target {} is a directory", target.display()),
        Ok(_) if !opts.overwrite => {
            bail!(AlreadyExists, "{} already exists (pass overwrite to replace it)", target.display())
        }
        _ => {}
    }
    let Some(target_name) = target.file_name() else {
        bail!(InvalidArgument, "the package target {} names no file", target.display());
    };
    let mut made = create_parent(target)?;
    let parent = parent_of(target);
    if let (Ok(a), Ok(b)) = (fs::canonicalize(parent), fs::canonicalize(store.path())) {
        let n = target_name.to_string_lossy();
        if a == b && (kind(&n).is_some() || n == crate::wal::FILE_NAME) {
            bail!(InvalidArgument, "the package target {} would overwrite a file of the store", target.display());
        }
    }
    let mut prefix = target_name.to_os_string();
    prefix.push(".tmp-");
    let (mut tmp, file) = create_tmp(parent, &prefix, false)?;
    let (tmp_path, file) = (tmp.path.clone(), file.expect("a temporary file has a handle"));
    let mut out = Out { w: BufWriter::with_capacity(BUF, file), pos: 0, path: tmp_path.clone() };

    let info = store.with_frozen_files(|dir, names| write_package(&mut out, dir, names, opts, progress))?;

    let file = out.w.into_inner().map_err(|e| Error::io("cannot write", &tmp_path, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io("cannot sync", &tmp_path, e))?;
    drop(file);
    if opts.overwrite {
        fs::rename(&tmp_path, target).map_err(|e| Error::io(&format!("cannot rename {} to", tmp_path.display()), target, e))?;
    } else {
        rename_no_replace(&tmp_path, target)?;
    }
    tmp.keep = true;
    made.keep = true;
    sync_dir(parent)?;
    Ok(info)
}

fn write_package(out: &mut Out, dir: &Path, names: &[String], opts: &PackOptions, progress: Option<Progress<'_>>) -> Result<PackageInfo> {
    // Each file is opened once, relative to the store's directory and never through a
    // link (a store may come from anyone: a link would pack a file from outside it).
    let d = crate::dirfd::Dir::open(dir)?;
    let mut opened = Vec::with_capacity(names.len());
    let mut sizes = Vec::with_capacity(names.len());
    for n in names {
        let p = dir.join(n);
        let f = d.open_existing(n, crate::dirfd::Access::Read)?;
        sizes.push(f.metadata().map_err(|e| Error::io("cannot stat", &p, e))?.len());
        opened.push(f);
    }
    let total: u64 = sizes.iter().sum();
    let mut meter = Meter::new(progress, total, "packing");
    meter.report()?;

    let flag = if opts.compress { COMPRESSION_ZSTD } else { COMPRESSION_NONE };
    out.put(&MAGIC)?;
    out.put(&VERSION.to_le_bytes())?;
    out.put(&[flag])?;
    out.put(&(names.len() as u32).to_le_bytes())?;

    let mut buf = vec![0u8; BUF];
    let mut footer = crc32fast::Hasher::new();
    let mut entries = Vec::with_capacity(names.len());
    let out_path = out.path.clone();
    for ((n, &len), mut src) in names.iter().zip(&sizes).zip(opened) {
        let path = dir.join(n);
        out.put(&(n.len() as u32).to_le_bytes())?;
        out.put(n.as_bytes())?;
        let sizes_at = out.pos;
        out.put(&len.to_le_bytes())?;
        out.put(&0u64.to_le_bytes())?;
        let start = out.pos;

        let mut crc = crc32fast::Hasher::new();
        let mut stored = 0u64;
        if opts.compress && len > 0 {
            let mut enc = zstd::stream::write::Encoder::new(&mut *out, opts.level).map_err(|e| Error::io("cannot start zstd for", &out_path, e))?;
            // The frame says its size and carries a checksum, so a reader names this file
            // when its bytes are damaged (NumPack's reader checks it too).
            let setup = enc.include_checksum(true).and_then(|_| enc.include_contentsize(true)).and_then(|_| enc.set_pledged_src_size(Some(len)));
            setup.map_err(|e| Error::io("cannot set up zstd for", &out_path, e))?;
            copy_file(&mut src, &path, len, &mut buf, |chunk| {
                crc.update(chunk);
                enc.write_all(chunk).map_err(|e| Error::io("cannot write", &out_path, e))?;
                meter.advance(chunk.len() as u64)
            })?;
            enc.finish().map_err(|e| Error::io("cannot write", &out_path, e))?;
            let csize = out.pos - start;
            if csize < len {
                stored = csize;
                out.patch(sizes_at + 8, &stored.to_le_bytes())?;
            } else {
                // Not smaller: store the file raw instead, as NumPack does.
                out.truncate(start)?;
                src.seek(SeekFrom::Start(0)).map_err(|e| Error::io("cannot seek", &path, e))?;
                copy_file(&mut src, &path, len, &mut buf, |chunk| out.put(chunk))?;
            }
        } else {
            copy_file(&mut src, &path, len, &mut buf, |chunk| {
                crc.update(chunk);
                out.put(chunk)?;
                meter.advance(chunk.len() as u64)
            })?;
        }
        let crc = crc.finalize();
        footer.update(&crc.to_le_bytes());
        entries.push(PackageEntry { name: n.clone(), original_size: len, stored_size: stored, crc32: Some(crc) });
        meter.report()?;
    }
    out.put(&footer.finalize().to_le_bytes())?;
    out.flush().map_err(|e| Error::io("cannot write", &out.path, e))?;
    Ok(PackageInfo {
        version: VERSION,
        compression: flag,
        compression_name: compression_name(flag),
        total_original_size: total,
        total_stored_size: entries.iter().map(PackageEntry::payload_size).sum(),
        entries,
    })
}

/// Reads exactly `len` bytes of `src` in `buf`-sized chunks and hands them to `f`.
fn copy_file(src: &mut File, path: &Path, len: u64, buf: &mut [u8], mut f: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = match src.read(&mut buf[..want]) {
            Ok(0) => bail!(Io, "{} shrank while it was being packed ({} bytes short)", path.display(), left),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("cannot read", path, e)),
        };
        f(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reading

/// The package file through a buffer, remembering the last real I/O error, so that an
/// error coming out of a decoder can be told apart from damaged data.
struct PkgReader {
    r: BufReader<File>,
    io_error: Option<io::Error>,
}

impl PkgReader {
    fn record(&mut self, e: io::Error) -> io::Error {
        let copy = io::Error::new(e.kind(), e.to_string());
        self.io_error = Some(e);
        copy
    }
}

impl Read for PkgReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.r.read(buf).map_err(|e| self.record(e))
    }
}

impl BufRead for PkgReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        // Two steps, because the borrow of a successful result outlives the match.
        if let Err(e) = self.r.fill_buf() {
            return Err(self.record(e));
        }
        self.r.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.r.consume(n)
    }
}

/// The parsed headers of a package.
struct Index {
    info: PackageInfo,
    /// Offset of each entry's payload.
    offsets: Vec<u64>,
    /// Offset of the footer.
    footer_at: u64,
}

/// Reads every header of the package, seeking over the payloads, and checks the
/// structure: magic, version, flag, names, sizes against the file's length, duplicates,
/// and a 4-byte footer right after the last payload.
fn read_index(pkg: &Path, file: &File) -> Result<Index> {
    let len = file.metadata().map_err(|e| Error::io("cannot stat", pkg, e))?.len();
    let mut r = BufReader::with_capacity(64 << 10, file);
    let mut pos = 0u64;
    // Reads `N` bytes at `pos`, or says what was cut off.
    fn take<const N: usize>(r: &mut BufReader<&File>, pkg: &Path, pos: &mut u64, len: u64, what: &dyn Fn() -> String) -> Result<[u8; N]> {
        if len - *pos < N as u64 {
            return Err(Error::corrupt(pkg, format!("truncated: {} needs {N} bytes at offset {} but the package ends at {len}", what(), *pos)));
        }
        let mut b = [0u8; N];
        r.read_exact(&mut b).map_err(|e| Error::io("cannot read", pkg, e))?;
        *pos += N as u64;
        Ok(b)
    }

    if len < 4 {
        bail!(Corrupt, "Invalid package {}: not a .npkg package, it has only {len} bytes", pkg.display());
    }
    let magic: [u8; 4] = take(&mut r, pkg, &mut pos, len, &|| "the magic".into())?;
    if magic != MAGIC {
        bail!(Corrupt, "Invalid package {}: not a .npkg package, it starts with {magic:02x?}, not \"NPKG\"", pkg.display());
    }
    let version = u32::from_le_bytes(take(&mut r, pkg, &mut pos, len, &|| "the version".into())?);
    if version > VERSION {
        bail!(Unsupported, "{} is a .npkg package of version {version}; this library reads versions 1 and 2", pkg.display());
    }
    if version == 0 {
        return Err(Error::corrupt(pkg, "version 0 does not exist"));
    }
    let [flag] = take(&mut r, pkg, &mut pos, len, &|| "the compression flag".into())?;
    if flag > COMPRESSION_ZSTD {
        bail!(Unsupported, "{} uses compression {flag}; this library knows 0 (none) and 1 (zstd)", pkg.display());
    }
    let count = u32::from_le_bytes(take(&mut r, pkg, &mut pos, len, &|| "the file count".into())?);
    let room = len.saturating_sub(HEADER_LEN + FOOTER_LEN) / (ENTRY_FIXED + 1);
    if count as u64 > room {
        return Err(Error::corrupt(pkg, format!("it claims {count} files but its {len} bytes hold at most {room} (truncated, or a damaged file count)")));
    }

    let mut entries = Vec::with_capacity(count as usize);
    let mut offsets = Vec::with_capacity(count as usize);
    let mut seen = HashSet::with_capacity(count as usize);
    let mut total_original_size = 0u64;
    for i in 0..=count {
        let start = pos;
        let parsed = (|| -> Result<()> {
            if i == count {
                if len - pos != FOOTER_LEN {
                    return Err(Error::corrupt(
                        pkg,
                        if len - pos < FOOTER_LEN {
                            format!("truncated: the 4-byte footer at offset {pos} is cut off at {len}")
                        } else {
                            format!("{} bytes follow the last file where only the 4-byte footer belongs", len - pos)
                        },
                    ));
                }
                return Ok(());
            }
            let name_len = u32::from_le_bytes(take(&mut r, pkg, &mut pos, len, &|| format!("the name length of entry {i}"))?);
            if name_len == 0 || name_len > MAX_ENTRY_NAME {
                return Err(Error::corrupt(pkg, format!("entry {i} has a name of {name_len} bytes (1 to {MAX_ENTRY_NAME} allowed)")));
            }
            if len - pos < name_len as u64 {
                return Err(Error::corrupt(pkg, format!("truncated: the name of entry {i} needs {name_len} bytes at offset {pos} but the package ends at {len}")));
            }
            let mut nb = vec![0u8; name_len as usize];
            r.read_exact(&mut nb).map_err(|e| Error::io("cannot read", pkg, e))?;
            pos += name_len as u64;
            let name = String::from_utf8(nb).map_err(|e| Error::corrupt(pkg, format!("the name of entry {i} is not UTF-8: {:?}", String::from_utf8_lossy(e.as_bytes()))))?;
            check_entry_name(pkg, i, &name)?;
            let original_size = u64::from_le_bytes(take(&mut r, pkg, &mut pos, len, &|| format!("the original size of entry {i} ({name:?})"))?);
            let stored_size = u64::from_le_bytes(take(&mut r, pkg, &mut pos, len, &|| format!("the compressed size of entry {i} ({name:?})"))?);
            if stored_size > 0 && flag == COMPRESSION_NONE {
                return Err(Error::corrupt(pkg, format!("entry {i} ({name:?}) is compressed but the package says it uses no compression")));
            }
            // No zstd or zlib stream expands more than this: a larger claim is a bomb (or
            // damage), refused before anything is decompressed or sized by it.
            let most = stored_size.saturating_mul(crate::compress::MAX_ZSTD_RATIO);
            if stored_size > 0 && original_size > most {
                return Err(Error::corrupt(
                    pkg,
                    format!("entry {i} ({name:?}) claims {original_size} bytes from {stored_size} compressed bytes (at most {most})"),
                ));
            }
            let entry = PackageEntry { name, original_size, stored_size, crc32: None };
            let payload = entry.payload_size();
            let room = len.saturating_sub(pos + FOOTER_LEN);
            if payload > room {
                return Err(Error::corrupt(
                    pkg,
                    format!("truncated: entry {i} ({:?}) has a payload of {payload} bytes at offset {pos} but only {room} bytes precede the footer", entry.name),
                ));
            }
            total_original_size = total_original_size.checked_add(original_size).ok_or_else(|| {
                Error::corrupt(pkg, format!("entry {i} ({:?}) claims {original_size} bytes, beyond any file", entry.name))
            })?;
            if !seen.insert(entry.name.clone()) {
                return Err(Error::corrupt(pkg, format!("entry {i} ({:?}) appears twice", entry.name)));
            }
            offsets.push(pos);
            r.seek_relative(payload as i64).map_err(|e| Error::io("cannot seek in", pkg, e))?;
            pos += payload;
            entries.push(entry);
            Ok(())
        })();
        // A wrong size in one entry shows at the next: name the entry before it.
        if let (Err(e), Some(prev)) = (&parsed, entries.last()) {
            if e.code == ErrorCode::Corrupt {
                let at = if i == count { "the footer".to_string() } else { format!("entry {i}") };
                return Err(Error::new(e.code, format!("{} ({at} is at offset {start}, after the payload of {:?})", e.message, prev.name)));
            }
        }
        parsed?;
    }
    let info = PackageInfo {
        version,
        compression: flag,
        compression_name: compression_name(flag),
        total_original_size,
        // Payloads lie within the file, so their sum cannot overflow.
        total_stored_size: entries.iter().map(PackageEntry::payload_size).sum(),
        entries,
    };
    Ok(Index { info, offsets, footer_at: pos })
}

fn open_package(package: &Path) -> Result<File> {
    let file = File::open(package).map_err(|e| Error::io("cannot open package", package, e))?;
    let meta = file.metadata().map_err(|e| Error::io("cannot stat", package, e))?;
    if !meta.is_file() {
        bail!(InvalidArgument, "{} is not a file", package.display());
    }
    Ok(file)
}

/// Describes a package from its headers alone, seeking over the payloads: nothing is
/// decompressed, so entries have `crc32: None`. The structure is checked as by
/// [`unpack`] (magic, version, names, sizes against the file's length, duplicates, the
/// footer's place), not the contents.
///
/// Errors: `IO` when the file cannot be opened or read; `INVALID_ARGUMENT` when it is not
/// a regular file; `CORRUPT` for a file that is not a package ("not a .npkg package") or
/// a damaged one (the message names the entry); `UNSUPPORTED` for versions above 2 or an
/// unknown compression flag.
pub fn info(package: &Path) -> Result<PackageInfo> {
    let file = open_package(package)?;
    Ok(read_index(package, &file)?.info)
}

/// How a compressed payload is encoded, by its first bytes.
enum Codec {
    Zstd,
    Zlib,
}

fn codec_of(head: [u8; 4]) -> Option<Codec> {
    if head == ZSTD_MAGIC {
        return Some(Codec::Zstd);
    }
    // RFC 1950: deflate, window <= 32 KiB, header check, no preset dictionary.
    let (cmf, flg) = (head[0], head[1]);
    if cmf & 0x0F == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0 && flg & 0x20 == 0 {
        return Some(Codec::Zlib);
    }
    None
}

/// Why pumping a stream stopped.
enum Fail {
    /// The stream's reader failed: damaged data, or an I/O error recorded by `PkgReader`.
    Read(io::Error),
    /// A definite error (the sink, sizes).
    Other(Error),
}

/// Reads `src` to its end through `buf`, checking it yields exactly `want` bytes, and
/// hands each chunk to `sink` after adding it to `crc`.
fn pump(
    src: &mut impl Read,
    want: u64,
    buf: &mut [u8],
    crc: &mut crc32fast::Hasher,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    corrupt: &dyn Fn(String) -> Error,
) -> std::result::Result<(), Fail> {
    let mut got = 0u64;
    loop {
        let n = match src.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Fail::Read(e)),
        };
        if got + n as u64 > want {
            return Err(Fail::Other(corrupt(format!("it decodes to more than its recorded {want} bytes"))));
        }
        got += n as u64;
        crc.update(&buf[..n]);
        sink(&buf[..n]).map_err(Fail::Other)?;
    }
    if got < want {
        return Err(Fail::Other(corrupt(format!("it decodes to only {got} of its recorded {want} bytes"))));
    }
    Ok(())
}

/// Decodes one entry whose payload starts at the reader's position, handing the file's
/// bytes to `sink`; returns their CRC32. Leaves the reader right after the payload.
fn decode_entry(src: &mut PkgReader, pkg: &Path, e: &PackageEntry, buf: &mut [u8], sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<u32> {
    let corrupt = |what: String| Error::corrupt(pkg, format!("file {:?}: {what}", e.name));
    let mut crc = crc32fast::Hasher::new();
    src.io_error = None;
    let result = if e.stored_size == 0 {
        pump(&mut (&mut *src).take(e.original_size), e.original_size, buf, &mut crc, sink, &corrupt)
    } else {
        if e.stored_size < 4 {
            return Err(corrupt(format!("its compressed payload of {} bytes is too short to be a zstd or zlib stream", e.stored_size)));
        }
        let mut head = [0u8; 4];
        src.read_exact(&mut head).map_err(|err| Error::io("cannot read", pkg, err))?;
        let stream = io::Cursor::new(head).chain((&mut *src).take(e.stored_size - 4));
        match codec_of(head) {
            Some(Codec::Zstd) => (|| {
                let mut d = zstd::stream::read::Decoder::with_buffer(stream).map_err(Fail::Read)?;
                pump(&mut d, e.original_size, buf, &mut crc, sink, &corrupt)?;
                let left = d.finish().into_inner().1.limit();
                if left > 0 {
                    return Err(Fail::Other(corrupt(format!("{left} bytes follow its zstd stream"))));
                }
                Ok(())
            })(),
            Some(Codec::Zlib) => (|| {
                let mut d = flate2::bufread::ZlibDecoder::new(stream);
                pump(&mut d, e.original_size, buf, &mut crc, sink, &corrupt)?;
                let left = d.into_inner().into_inner().1.limit();
                if left > 0 {
                    return Err(Fail::Other(corrupt(format!("{left} bytes follow its zlib stream"))));
                }
                Ok(())
            })(),
            None => return Err(corrupt(format!("its compressed payload starts with {head:02x?}: neither a zstd frame nor a zlib stream"))),
        }
    };
    match result {
        Ok(()) => Ok(crc.finalize()),
        Err(Fail::Other(err)) => Err(err),
        Err(Fail::Read(err)) => Err(match src.io_error.take() {
            Some(io) => Error::io("cannot read", pkg, io),
            None if e.stored_size == 0 => corrupt(format!("truncated: {err}")),
            None => corrupt(format!("its compressed data is damaged: {err}")),
        }),
    }
}

/// Checks the catalogue against the package's files before anything is unpacked: it
/// decodes, and every array it lists has its data file, at least as large as the
/// catalogue says (the store accepts longer files: an append cut short by a crash leaves
/// its rows past the end), and a bitmap, when present, of a size that fits the array's
/// rows. Returns the bitmap files in NumPack's layout with a header, and the rows each
/// must cover, for [`check_bitmap_headers`].
fn check_catalogue(pkg: &Path, meta: &[u8], entries: &[PackageEntry]) -> Result<Vec<(String, u64)>> {
    let cat = metadata::decode(meta).map_err(|m| Error::corrupt(pkg, format!("its {}: {m}", metadata::FILE_NAME)))?;
    let by_name: HashMap<&str, &PackageEntry> = entries.iter().map(|e| (e.name.as_str(), e)).collect();
    // Names are not covered by the footer: a damaged bitmap name would silently bring
    // deleted rows back. (A data file of no array is harmless and unpacked as it is:
    // NumPack leaves such files after a crash.)
    for e in entries {
        if let Some(Kind::Bitmap(array)) = kind(&e.name) {
            if !cat.contains_key(array) {
                return Err(Error::corrupt(pkg, format!("file {:?} is the bitmap of array {array:?}, which its catalogue does not list", e.name)));
            }
        }
    }
    let mut headers = Vec::new();
    for (array, entry) in &cat {
        let mut df = entry.data_file(array);
        // A segmented array's segments are checked against its manifest once unpacked.
        let mut need = if entry.segmented { 0 } else { entry.nbytes() };
        // compressed arrays: the `.npkz` file (at least its header) stands for the `.npkd`
        let zf = crate::compress::file_name(array);
        if !by_name.contains_key(df.as_str()) && by_name.contains_key(zf.as_str()) {
            (df, need) = (zf, crate::compress::HEADER_LEN);
        }
        match by_name.get(df.as_str()) {
            None => return Err(Error::corrupt(pkg, format!("array {array:?} has no data file {df:?} in the package"))),
            Some(d) if d.original_size < need => {
                return Err(Error::corrupt(pkg, format!("file {df:?} has {} bytes but array {array:?} needs {need}", d.original_size)));
            }
            _ => {}
        }
        if let Some(b) = by_name.get(name::bitmap_file(array).as_str()) {
            let rows = entry.physical_rows();
            let words = rows.div_ceil(64);
            let with_header = crate::bitmap::HEADER_LEN + words * 8;
            if b.original_size == with_header {
                headers.push((b.name.clone(), rows));
            } else if b.original_size != words * 8 {
                return Err(Error::corrupt(
                    pkg,
                    format!(
                        "file {:?} has {} bytes, which hold no bitmap of the {rows} rows of array {array:?} ({with_header} expected)",
                        b.name, b.original_size
                    ),
                ));
            }
        }
    }
    Ok(headers)
}

/// Checks each unpacked segmented array: its manifest against the catalogue's shape,
/// and each segment file it lists against the manifest's bytes.
fn check_segments(pkg: &Path, dir: &Path) -> Result<()> {
    let meta = fs::read(dir.join(metadata::FILE_NAME)).map_err(|e| Error::io("cannot read", &dir.join(metadata::FILE_NAME), e))?;
    let cat = metadata::decode(&meta).map_err(|m| Error::corrupt(pkg, format!("its {}: {m}", metadata::FILE_NAME)))?;
    for (array, entry) in cat.iter().filter(|(_, e)| e.segmented) {
        let bad = |m: String| Error::corrupt(pkg, format!("segmented array {array:?}: {m}"));
        let m = crate::segments::read_manifest(dir, array).map_err(|e| bad(e.message))?;
        m.check_shape(entry.row_bytes(), entry.physical_rows()).map_err(bad)?;
        for s in m.segments.iter().filter(|s| s.bytes > 0) {
            let len = fs::symlink_metadata(dir.join(&s.file)).map(|m| m.len()).map_err(|_| bad(format!("the package holds no segment file {:?}", s.file)))?;
            if len < s.bytes {
                return Err(bad(format!("segment file {:?} has {len} bytes but the manifest says {}", s.file, s.bytes)));
            }
        }
    }
    Ok(())
}

/// Checks that each unpacked bitmap's header covers its array's rows.
fn check_bitmap_headers(pkg: &Path, dir: &Path, headers: &[(String, u64)]) -> Result<()> {
    for (file, rows) in headers {
        let path = dir.join(file);
        let mut h = [0u8; 8];
        File::open(&path).and_then(|mut f| f.read_exact(&mut h)).map_err(|e| Error::io("cannot read", &path, e))?;
        let total = u64::from_le_bytes(h);
        if total != *rows {
            return Err(Error::corrupt(pkg, format!("file {file:?} covers {total} rows but its array has {rows}")));
        }
    }
    Ok(())
}

/// What is at an unpack target, when it may be replaced.
fn check_unpack_target(target: &Path, overwrite: bool) -> Result<bool> {
    let meta = match fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("cannot stat", target, e)),
        Ok(m) => m,
    };
    if !overwrite {
        bail!(AlreadyExists, "{} already exists (pass overwrite to replace it)", target.display());
    }
    if meta.is_dir() {
        let is_store = target.join(metadata::FILE_NAME).exists() || target.join(crate::wal::FILE_NAME).exists();
        let empty = fs::read_dir(target).map_err(|e| Error::io("cannot list", target, e))?.next().is_none();
        if !is_store && !empty {
            bail!(InvalidArgument, "refusing to replace {}: it is a directory that is not a numpack store", target.display());
        }
    }
    Ok(true)
}

/// Unpacks the package at `package` into a store directory at `target`.
///
/// The files are decompressed into a new temporary directory beside the target
/// (`.<target name>.unpack-<pid>-<n>`), each file's CRC32 computed as it is written; with
/// `verify` the footer is compared against them (a package from NumPack's `verify=False`
/// path or a damaged footer can still be read without). Then the catalogue is checked
/// against the files (see below), files and directory are `fsync`ed, and only then is the
/// target touched: renamed into place when there was none, or, with `overwrite`, swapped
/// with the old target in one atomic rename (Linux; elsewhere the old target is renamed
/// aside and the new one into place), and the old one deleted. So
/// the old store is never deleted before the package has been read and checked in full.
/// The result opens with [`Store::open`]. Handles open on a replaced store keep the old
/// (deleted) files: do not unpack over a store in use.
///
/// Checks: every check of [`info`]; each compressed payload is a zstd frame or a zlib
/// stream (by its magic; NumPack writes zlib under the zstd flag without `zstandard`)
/// that decodes to exactly its recorded size, its own checksum intact; `metadata.npkm` is
/// present and decodes; every array it lists has its data file, at least as long as the
/// catalogue says (the store tolerates longer ones); every bitmap file belongs to a listed
/// array and fits it (names are not covered by the footer, and a damaged bitmap name
/// would silently undelete rows). Data files of arrays the catalogue does not list
/// (NumPack leaves them after a crash) are unpacked as they are; the store ignores them.
/// Entry names are plain file names of the store's format: never paths.
///
/// Returns what was unpacked, with every entry's CRC32. Parent directories of `target`
/// are created.
///
/// Errors: `ALREADY_EXISTS` when `target` exists and `overwrite` is false (before any
/// work); `INVALID_ARGUMENT` when, with `overwrite`, `target` is a non-empty directory
/// that is not a store, or `package` is not a regular file; `CORRUPT` for damage (the
/// message names the package and the file inside), including a footer mismatch with
/// `verify`; `UNSUPPORTED` for versions above 2; `CANCELLED` when `progress` returns
/// false; `IO` for failed reads and writes. On any error the target is left as it was and
/// the temporary directory removed.
pub fn unpack(package: &Path, target: &Path, overwrite: bool, verify: bool, progress: Option<Progress<'_>>) -> Result<PackageInfo> {
    let replace = check_unpack_target(target, overwrite)?;
    let Some(target_name) = target.file_name() else {
        bail!(InvalidArgument, "the unpack target {} names no directory", target.display());
    };
    let file = open_package(package)?;
    let Index { mut info, offsets, footer_at } = read_index(package, &file)?;
    let Some(meta_at) = info.entries.iter().position(|e| e.name == metadata::FILE_NAME) else {
        return Err(Error::corrupt(package, format!("it holds no {}: not a store", metadata::FILE_NAME)));
    };
    let mut src = PkgReader { r: BufReader::with_capacity(BUF, file), io_error: None };
    let mut buf = vec![0u8; BUF];
    let seek = |src: &mut PkgReader, at: u64| src.r.seek(SeekFrom::Start(at)).map(drop).map_err(|e| Error::io("cannot seek in", package, e));

    // The catalogue first (it is small, and sorts last): a package whose files do not
    // match it fails before anything is decompressed.
    let meta_entry = &info.entries[meta_at];
    if meta_entry.original_size > metadata::MAX_FILE_LEN {
        return Err(Error::corrupt(
            package,
            format!("its {} claims {} bytes (limit {})", metadata::FILE_NAME, meta_entry.original_size, metadata::MAX_FILE_LEN),
        ));
    }
    let mut meta = Vec::new();
    seek(&mut src, offsets[meta_at])?;
    decode_entry(&mut src, package, meta_entry, &mut buf, &mut |chunk| {
        meta.extend_from_slice(chunk);
        Ok(())
    })?;
    let bitmap_headers = check_catalogue(package, &meta, &info.entries)?;
    drop(meta);

    let mut made = create_parent(target)?;
    let parent = parent_of(target);
    let mut prefix = OsString::from(".");
    prefix.push(target_name);
    prefix.push(".unpack-");
    let (mut tmp, _) = create_tmp(parent, &prefix, true)?;
    let tmp_path = tmp.path.clone();

    let mut meter = Meter::new(progress, info.total_original_size, "unpacking");
    meter.report()?;
    let mut v1 = crc32fast::Hasher::new();
    let mut v2 = crc32fast::Hasher::new();
    for (e, &at) in info.entries.iter_mut().zip(&offsets) {
        let path = tmp_path.join(&e.name);
        if let Some((sub, _)) = e.name.split_once('/') {
            let d = tmp_path.join(sub);
            if !d.is_dir() {
                fs::create_dir(&d).map_err(|err| Error::io("cannot create", &d, err))?;
            }
        }
        let mut f = File::options().write(true).create_new(true).open(&path).map_err(|err| Error::io("cannot create", &path, err))?;
        seek(&mut src, at)?;
        let mut sink = |chunk: &[u8]| {
            f.write_all(chunk).map_err(|err| Error::io("cannot write", &path, err))?;
            meter.advance(chunk.len() as u64)
        };
        let crc = decode_entry(&mut src, package, e, &mut buf, &mut sink)?;
        e.crc32 = Some(crc);
        v2.update(&crc.to_le_bytes());
        // Version 1's footer is the CRC of all files' bytes in a row.
        v1.combine(&crc32fast::Hasher::new_with_initial_len(crc, e.original_size));
        meter.report()?;
    }
    if verify {
        seek(&mut src, footer_at)?;
        let mut footer = [0u8; 4];
        src.read_exact(&mut footer).map_err(|e| Error::io("cannot read", package, e))?;
        let stored = u32::from_le_bytes(footer);
        let actual = if info.version == 1 { v1.finalize() } else { v2.finalize() };
        if stored != actual {
            return Err(Error::corrupt(
                package,
                format!(
                    "checksum mismatch: the footer says {stored:08x} but the files give {actual:08x}: the contents of a stored file or the footer are damaged"
                ),
            ));
        }
    }
    check_bitmap_headers(package, &tmp_path, &bitmap_headers)?;
    check_segments(package, &tmp_path)?;
    // Synced once all is checked, so a damaged package costs no waiting for the disk, and
    // earlier files are already on their way there while later ones are decoded.
    for e in &info.entries {
        let path = tmp_path.join(&e.name);
        File::open(&path).and_then(|f| f.sync_all()).map_err(|err| Error::io("cannot sync", &path, err))?;
    }
    let subdirs: std::collections::BTreeSet<&str> = info.entries.iter().filter_map(|e| e.name.split_once('/').map(|(d, _)| d)).collect();
    for d in subdirs {
        sync_dir(&tmp_path.join(d))?;
    }
    sync_dir(&tmp_path)?;

    if replace && rename_exchange(&tmp_path, target)? {
        // One atomic step: the new store is at the target and the old one at the
        // temporary name, so no instant leaves the target missing.
        tmp.keep = true;
        made.keep = true;
        sync_dir(parent)?;
        // Best effort, as below: the new store is in place.
        let _ = if fs::symlink_metadata(&tmp_path).is_ok_and(|m| m.is_dir()) { fs::remove_dir_all(&tmp_path) } else { fs::remove_file(&tmp_path) };
    } else if replace {
        // Where the system cannot swap: two renames, with a window in which a kill leaves
        // the target missing and the old store at `.<target>.old-<pid>-<n>`.
        let mut aside_prefix = OsString::from(".");
        aside_prefix.push(target_name);
        aside_prefix.push(".old-");
        let aside = tmp_name(parent, &aside_prefix);
        let moved = match fs::rename(target, &aside) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io(&format!("cannot move {} aside to", target.display()), &aside, e)),
        };
        if let Err(e) = fs::rename(&tmp_path, target) {
            if moved {
                let _ = fs::rename(&aside, target);
            }
            return Err(Error::io(&format!("cannot rename {} to", tmp_path.display()), target, e));
        }
        tmp.keep = true;
        made.keep = true;
        sync_dir(parent)?;
        if moved {
            // Best effort: the new store is in place, so this call has succeeded. (A
            // failure leaves the old store hidden at `.<target>.old-<pid>-<n>`.)
            let _ = if fs::symlink_metadata(&aside).is_ok_and(|m| m.is_dir()) { fs::remove_dir_all(&aside) } else { fs::remove_file(&aside) };
        }
    } else {
        rename_no_replace(&tmp_path, target)?;
        tmp.keep = true;
        made.keep = true;
        sync_dir(parent)?;
    }
    Ok(info)
}
