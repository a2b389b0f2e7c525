//! Data files: a cache of open files and their read mappings, and the I/O helpers that
//! move rows between files and caller buffers in as few system calls as possible.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use memmap2::{MmapOptions, MmapRaw};

use crate::dirfd::{self, Access};
use crate::error::{Error, Result};
use crate::segments;

/// An open data file and a shared mapping of it: read-write when the store is writable.
/// The mapping reaches past the end of the file (address space only), so that rows
/// appended later are covered without mapping again; only the first `len` bytes, which
/// the file held when it was checked, are ever touched through `bytes`.
pub struct DataFile {
    pub file: Arc<File>,
    pub path: PathBuf,
    map: Option<Arc<MmapRaw>>,
    len: u64,
    /// When the file's size was last found intact (see [`SizeCheck`]).
    checked: Arc<SizeCheck>,
}

impl DataFile {
    /// The mapped bytes known to be backed by the file.
    pub fn bytes(&self) -> &[u8] {
        match &self.map {
            // SAFETY: the first `len` bytes of the mapping are backed by the file, which is
            // never truncated in place; other writers change bytes, never the length below.
            Some(m) => unsafe { std::slice::from_raw_parts(m.as_ptr(), self.len as usize) },
            None => &[],
        }
    }

    /// Checks that the file still holds the `len` bytes reads touch through the mapping.
    /// numpack never truncates a data file in place (a rewrite installs a new file), but
    /// another program may: touching a mapped page past the new end of the file would
    /// kill the process with SIGBUS, so reads ask the file's size (one `fstat`, at most
    /// once per tick of the coarse clock: [`SizeCheck`]) and report a shrunk file as
    /// damage instead. A truncation within the tick of the last check, or racing the copy
    /// itself, can still fault: see the README's security section.
    fn intact(&self) -> Result<()> {
        if self.checked.fresh() {
            return Ok(());
        }
        let now = file_len(&self.file).map_err(|e| Error::io("cannot stat", &self.path, e))?;
        if now >= self.len {
            self.checked.mark();
        } else {
            return Err(Error::corrupt(
                &self.path,
                format!("it shrank from {} to {now} bytes while open (truncated by another program); it is not read through its mapping", self.len),
            ));
        }
        Ok(())
    }

    fn with_len(&self, len: u64) -> DataFile {
        DataFile { file: self.file.clone(), path: self.path.clone(), map: self.map.clone(), len, checked: self.checked.clone() }
    }

    pub fn mapping(&self) -> Option<Arc<MmapRaw>> {
        self.map.clone()
    }

    /// Drops the pages of bytes `off..off + len` from this process's resident set; see
    /// [`release_pages`].
    pub fn release(&self, off: u64, len: u64) {
        if let Some(m) = &self.map {
            release_pages(m, off, len);
        }
    }

    /// Writes `payload` to the runs `(offset, len)` back to back: copied through the
    /// writable mapping (no system call per run), or with `pwrite` when not mapped so.
    /// The caller holds the store's write lock, so no reader in this process races it.
    pub fn write_runs(&self, writable_map: bool, runs: &[(u64, u64)], payload: &[u8]) -> Result<()> {
        // A run whose end overflows must not pass the bound check by wrapping around.
        let end = runs.iter().map(|r| r.0.checked_add(r.1)).try_fold(0u64, |m, e| e.map(|e| m.max(e)));
        if runs.iter().map(|r| r.1).try_fold(0u64, |t, l| t.checked_add(l)) != Some(payload.len() as u64) {
            return Err(Error::invalid(format!("{} bytes of payload for runs of another length", payload.len())));
        }
        match (&self.map, end) {
            (Some(m), Some(end)) if writable_map && end <= self.len => {
                let mut at = 0usize;
                for &(off, len) in runs {
                    // SAFETY: `off + len <= self.len`, inside the backed part of a writable
                    // mapping; the source is a separate buffer.
                    unsafe { std::ptr::copy_nonoverlapping(payload[at..].as_ptr(), m.as_mut_ptr().add(off as usize), len as usize) };
                    at += len as usize;
                }
                Ok(())
            }
            _ => write_runs(&self.file, &self.path, runs, payload),
        }
    }
}

/// Open data files by array name. Entries are dropped whenever the file behind a name may
/// have been replaced (save, compact, rename, drop, reset, or another process's change).
pub struct FileCache {
    dir: PathBuf,
    writable: bool,
    files: Mutex<HashMap<String, Arc<DataFile>>>,
    /// Compressed arrays' open files (src/compress.rs), dropped with the plain ones.
    zfiles: Mutex<HashMap<String, Arc<crate::compress::ZFile>>>,
    /// Segmented arrays' open segment files, dropped with the plain ones.
    segs: Mutex<HashMap<String, Arc<SegSet>>>,
}

/// Beyond this many cached files the cache starts over, to bound open descriptors.
const MAX_CACHED: usize = 512;

impl FileCache {
    pub fn new(dir: &Path, writable: bool) -> FileCache {
        FileCache { dir: dir.to_path_buf(), writable, files: Mutex::new(HashMap::new()), zfiles: Mutex::default(), segs: Mutex::default() }
    }

    /// The data file of `name`, with at least `need` bytes backed and mapped. A file
    /// shorter than the catalogue says is reported as damage.
    pub fn get(&self, name: &str, need: u64) -> Result<Arc<DataFile>> {
        let mut files = self.files.lock().unwrap();
        if let Some(f) = files.get(name) {
            if let Err(e) = f.intact() {
                files.remove(name);
                return Err(e);
            }
            if f.len >= need {
                return Ok(f.clone());
            }
            let mapped = f.map.as_ref().map_or(0, |m| m.len() as u64);
            if need <= mapped {
                // The file grew (rows appended) within the mapping's reach: check and
                // extend the backed length without mapping again.
                let len = f.file.metadata().map_err(|e| Error::io("cannot stat", &f.path, e))?.len();
                if len >= need {
                    let grown = Arc::new(f.with_len(len.min(mapped)));
                    files.insert(name.to_string(), grown.clone());
                    return Ok(grown);
                }
            }
        }
        let path = self.dir.join(crate::name::data_file(name));
        let file = match files.remove(name) {
            Some(old) => old.file.clone(),
            None => Arc::new(open(&self.dir, &crate::name::data_file(name), self.writable)?),
        };
        let len = file.metadata().map_err(|e| Error::io("cannot stat", &path, e))?.len();
        if len < need {
            return Err(Error::corrupt(&path, format!("it has {len} bytes but the catalogue needs {need}")));
        }
        // Reach past the end so appends stay covered: twice the size, at least 1 MiB.
        let reach = (len.max(1 << 19) * 2) as usize;
        let opts = MmapOptions::new().len(reach).clone();
        let map = if self.writable { opts.map_raw(&file) } else { opts.map_raw_read_only(&file) }
            .map_err(|e| Error::io("cannot map", &path, e))?;
        let df = Arc::new(DataFile { file, path, map: Some(Arc::new(map)), len, checked: Arc::new(SizeCheck::default()) });
        if files.len() >= MAX_CACHED {
            files.clear();
        }
        files.insert(name.to_string(), df.clone());
        Ok(df)
    }

    /// The data file of `name` if it is open and maps at least `need` backed bytes: one
    /// lookup and one `fstat` (see [`DataFile::intact`]), the read paths' common case. `None` means "ask
    /// [`FileCache::compressed`] and [`FileCache::get`]", not "no such file".
    pub fn cached(&self, name: &str, need: u64) -> Option<Arc<DataFile>> {
        self.files.lock().unwrap().get(name).filter(|f| f.len >= need && f.intact().is_ok()).cloned()
    }

    /// Records that this process grew `name`'s file to `len` bytes (an append), so that
    /// reads of the new rows need no system call when the mapping reaches them.
    pub fn grew(&self, name: &str, len: u64) {
        let mut files = self.files.lock().unwrap();
        if let Some(f) = files.get(name) {
            if f.map.as_ref().is_some_and(|m| m.len() as u64 >= len) && len > f.len {
                let grown = Arc::new(f.with_len(len));
                files.insert(name.to_string(), grown);
            }
        }
    }

    pub fn forget(&self, name: &str) {
        self.files.lock().unwrap().remove(name);
        self.zfiles.lock().unwrap().remove(name);
        self.segs.lock().unwrap().remove(name);
    }

    pub fn writable(&self) -> bool {
        self.writable
    }

    pub fn forget_all(&self) {
        self.files.lock().unwrap().clear();
        self.zfiles.lock().unwrap().clear();
        self.segs.lock().unwrap().clear();
    }

    /// The open segments of segmented array `name`, whose manifest must agree with
    /// `entry` (row size and physical rows); damage is reported naming the file.
    pub fn segmented(&self, name: &str, entry: &crate::metadata::Entry) -> Result<Arc<SegSet>> {
        let (rb, rows) = (entry.row_bytes(), entry.physical_rows());
        let mut segs = self.segs.lock().unwrap();
        if let Some(s) = segs.get(name) {
            if s.rows == rows && s.row_bytes == rb {
                return Ok(s.clone());
            }
        }
        let m = segments::read_manifest(&self.dir, name)?;
        m.check_shape(rb, rows).map_err(|e| Error::corrupt(&self.dir.join(segments::manifest_file(name)), e))?;
        let mut set = SegSet::open(&self.dir, &m, self.writable)?;
        set.row_bytes = rb;
        let set = Arc::new(set);
        if segs.len() >= MAX_CACHED {
            segs.clear();
        }
        segs.insert(name.to_string(), set.clone());
        Ok(set)
    }

    // --- compressed arrays ---
    /// The compressed file of `name` (header and index checked against `expect`: dtype,
    /// row bytes, physical rows), or `None` when the array is stored plain. Plain arrays
    /// already opened answer without a system call.
    pub fn compressed(&self, name: &str, expect: (crate::dtype::DType, u64, u64)) -> Result<Option<Arc<crate::compress::ZFile>>> {
        if self.files.lock().unwrap().contains_key(name) {
            return Ok(None);
        }
        let mut z = self.zfiles.lock().unwrap();
        if let Some(f) = z.get(name) {
            if (f.header.dtype, f.header.row_bytes, f.header.rows) == expect {
                return Ok(Some(f.clone()));
            }
        }
        let path = self.dir.join(crate::compress::file_name(name));
        let access = if self.writable { Access::ReadWrite } else { Access::Read };
        let Some(file) = dirfd::open_in(&self.dir, &crate::compress::file_name(name), access)? else { return Ok(None) };
        let f = Arc::new(crate::compress::ZFile::from_file(file, &path, name, Some(expect))?);
        if z.len() >= MAX_CACHED {
            z.clear();
        }
        z.insert(name.to_string(), f.clone());
        Ok(Some(f))
    }
    // --- end compressed arrays ---
}

/// One open segment file of a segmented array.
pub struct Seg {
    pub file: File,
    /// Relative to the store directory, as the manifest names it.
    pub rel: String,
    pub path: PathBuf,
    map: MmapRaw,
    /// Where its bytes start in the array's bytes.
    pub start: u64,
    pub len: u64,
    checked: SizeCheck,
}

impl Seg {
    pub fn release(&self, off: u64, len: u64) {
        release_pages(&self.map, off, len);
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes of the file were checked to exist when it was mapped, and
        // segment files are never truncated in place (a rewrite installs new files).
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.len as usize) }
    }
}

/// A segmented array's segment files, opened and mapped read-only (writes go through
/// `pwrite`, which the shared mappings see). Empty segments are left out.
pub struct SegSet {
    pub segs: Vec<Seg>,
    pub rows: u64,
    pub row_bytes: u64,
    pub total: u64,
}

impl SegSet {
    /// Opens the segments of `m` (names already confined by the manifest's parser): each
    /// must be a regular file, no link, holding at least the bytes the manifest says.
    pub fn open(dir: &Path, m: &segments::Manifest, write: bool) -> Result<SegSet> {
        let mut segs = Vec::with_capacity(m.segments.len());
        let mut start: u64 = 0;
        for s in &m.segments {
            if s.bytes == 0 {
                continue;
            }
            let path = dir.join(&s.file);
            let file = segments::open_confined(dir, &s.file, write)?;
            let len = file.metadata().map_err(|e| Error::io("cannot stat", &path, e))?.len();
            if len < s.bytes {
                return Err(Error::corrupt(&path, format!("it has {len} bytes but the manifest says {}", s.bytes)));
            }
            let map = MmapOptions::new().len(s.bytes as usize).map_raw_read_only(&file).map_err(|e| Error::io("cannot map", &path, e))?;
            segs.push(Seg { file, rel: s.file.clone(), path, map, start, len: s.bytes, checked: SizeCheck::default() });
            start = start.checked_add(s.bytes).ok_or_else(|| Error::corrupt(&dir.join(&s.file), "the segments' bytes overflow"))?;
        }
        Ok(SegSet { segs, rows: m.rows(), row_bytes: 0, total: start })
    }

    /// Calls `f(segment, offset in it, bytes)` for each piece of `off..off + len`. Each
    /// segment's size is checked first, as for plain data files ([`DataFile::intact`]):
    /// a segment another program truncated is reported, not read through its mapping.
    fn pieces(&self, off: u64, len: u64, mut f: impl FnMut(&Seg, u64, u64) -> Result<()>) -> Result<()> {
        let end = off.checked_add(len).filter(|&e| e <= self.total).ok_or_else(|| Error::invalid(format!("bytes {off}+{len} lie past the segments' {}", self.total)))?;
        let mut i = self.segs.partition_point(|s| s.start + s.len <= off);
        let mut at = off;
        while at < end {
            let s = &self.segs[i];
            let n = (s.start + s.len).min(end) - at;
            if !s.checked.fresh() {
                let now = file_len(&s.file).map_err(|e| Error::io("cannot stat", &s.path, e))?;
                if now < s.len {
                    return Err(Error::corrupt(&s.path, format!("it shrank from {} to {now} bytes while open (truncated by another program)", s.len)));
                }
                s.checked.mark();
            }
            f(s, at - s.start, n)?;
            at += n;
            i += 1;
        }
        Ok(())
    }

    /// Copies the runs `(offset, len)` of the array's bytes back to back into `out`.
    pub fn read_runs(&self, runs: &[(u64, u64)], out: &mut [u8]) -> Result<()> {
        let mut at = 0usize;
        for &(off, len) in runs {
            self.pieces(off, len, |s, o, n| {
                out[at..at + n as usize].copy_from_slice(&s.bytes()[o as usize..(o + n) as usize]);
                at += n as usize;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Drops the pages of the runs from this process's resident set (see [`release_pages`]).
    pub fn release_runs(&self, runs: &[(u64, u64)]) -> Result<()> {
        for &(off, len) in runs {
            self.pieces(off, len, |s, o, n| {
                s.release(o, n);
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Writes `payload` to the runs `(offset, len)` of the array's bytes, back to back.
    pub fn write_runs(&self, runs: &[(u64, u64)], payload: &[u8]) -> Result<()> {
        let mut at = 0usize;
        for &(off, len) in runs {
            self.pieces(off, len, |s, o, n| {
                s.file.write_all_at(&payload[at..at + n as usize], o).map_err(|e| Error::io("cannot write", &s.path, e))?;
                at += n as usize;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Calls `f` with each piece of the runs, in order (to stream them to a file).
    pub fn for_each_piece(&self, runs: &[(u64, u64)], mut f: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        for &(off, len) in runs {
            self.pieces(off, len, |s, o, n| f(&s.bytes()[o as usize..(o + n) as usize]))?;
        }
        Ok(())
    }
}

/// Copies the byte runs `(offset, len)` of `df` back to back into `out`, from the mapping
/// (no system call; the mapping stays populated between calls). Large copies are split
/// across cores: faulting in a fresh destination buffer dominates, and parallelises.
pub fn read_runs(df: &DataFile, runs: &[(u64, u64)], out: &mut [u8]) -> Result<()> {
    debug_assert_eq!(runs.iter().map(|r| r.1).sum::<u64>(), out.len() as u64);
    let src = df.bytes();
    const PART: usize = 4 << 20;
    let threads = cores().min(out.len() / PART).max(1);
    if threads == 1 {
        copy_runs(src, runs, 0, out);
        return Ok(());
    }
    // Cut the output into equal parts; each part copies the slices of the runs it covers.
    let part = out.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (k, chunk) in out.chunks_mut(part).enumerate() {
            scope.spawn(move || copy_runs(src, runs, k * part, chunk));
        }
    });
    Ok(())
}

/// When a mapped file was last found to hold its bytes, on the coarse monotonic clock
/// (its tick: 1-4 ms). An `fstat` costs about 0.5 µs here, as much as a whole 100-row
/// gather, so reads ask the size again only once the clock has ticked: a file another
/// program truncates is reported from the next tick on, and a read in the same tick may
/// still fault, as a read racing the check always could.
#[derive(Default)]
pub struct SizeCheck(std::sync::atomic::AtomicU64);

impl SizeCheck {
    fn fresh(&self) -> bool {
        let t = self.0.load(Ordering::Relaxed);
        t != 0 && t == coarse_ticks()
    }

    fn mark(&self) {
        self.0.store(coarse_ticks(), Ordering::Relaxed);
    }
}

/// The coarse monotonic clock in nanoseconds (a vDSO read, no system call); never 0.
fn coarse_ticks() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to fill; CLOCK_MONOTONIC_COARSE exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64) | 1
}

/// The size of an open file with one plain `fstat`: on every read path, where std's
/// `File::metadata` (statx with an empty path) costs about twice as much.
fn file_len(file: &File) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: a valid descriptor and a buffer of the size fstat writes.
    if unsafe { libc::fstat(file.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fstat returned 0, so it filled the buffer.
    Ok(unsafe { st.assume_init() }.st_size as u64)
}

/// Tells the kernel that this process is done with the mapped pages of bytes
/// `off..off + len` (widened to whole pages), so a pass over a large array (an export)
/// does not leave all of it in the resident set. The mappings are shared file mappings,
/// so nothing is lost: the pages stay in the page cache (dirty ones are still written
/// back) and a later access maps them again. Advice only: a failure changes nothing.
fn release_pages(map: &MmapRaw, off: u64, len: u64) {
    let end = off.saturating_add(len).min(map.len() as u64);
    if off < end {
        // SAFETY: DONTNEED on a MAP_SHARED file mapping only unmaps pages from this
        // process; their contents remain the file's, so every slice handed out over the
        // mapping reads the same bytes afterwards (after a minor fault).
        let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, off as usize, (end - off) as usize) };
    }
}

/// Cores to copy with, at most 8. Asked once: `available_parallelism` reads cgroup files,
/// which costs tens of microseconds a call.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(8))
}

/// For each piece of the concatenated runs that falls in `skip..skip + out.len()`, calls
/// `f(source offset, destination range)`.
fn for_each_piece(runs: &[(u64, u64)], skip: usize, len: usize, mut f: impl FnMut(usize, std::ops::Range<usize>)) {
    let mut pos = 0usize; // start of the current run within the concatenation
    let mut at = 0usize; // bytes of the destination filled
    for &(off, rlen) in runs {
        let (off, rlen) = (off as usize, rlen as usize);
        let from = skip.max(pos);
        let to = (skip + len).min(pos + rlen);
        if from < to {
            let n = to - from;
            f(off + (from - pos), at..at + n);
            at += n;
        }
        pos += rlen;
        if pos >= skip + len {
            break;
        }
    }
}

/// Copies bytes `skip..skip + out.len()` of the concatenated runs of `src` into `out`.
fn copy_runs(src: &[u8], runs: &[(u64, u64)], skip: usize, out: &mut [u8]) {
    let len = out.len();
    for_each_piece(runs, skip, len, |from, dst| {
        let n = dst.len();
        out[dst].copy_from_slice(&src[from..from + n]);
    });
}

/// Writes `payload` to the runs `(offset, len)` of `file`, back to back.
pub fn write_runs(file: &File, path: &Path, runs: &[(u64, u64)], payload: &[u8]) -> Result<()> {
    let mut at = 0usize;
    for &(off, len) in runs {
        if off.checked_add(len).is_none() || payload.len() - at < len as usize {
            return Err(Error::corrupt(path, format!("a write of {len} bytes at {off} does not fit")));
        }
        file.write_all_at(&payload[at..at + len as usize], off).map_err(|e| Error::io("cannot write", path, e))?;
        at += len as usize;
    }
    Ok(())
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);
pub const TMP_PREFIX: &str = "npk-tmp-";
pub const TMP_SUFFIX: &str = ".npkt";

/// A new temporary file in `dir`, named after this process so that a later writer can
/// tell an orphan (its process is gone) from a file still being written.
pub fn create_tmp(dir: &Path) -> Result<(File, String)> {
    let d = dirfd::Dir::open(dir)?;
    loop {
        let name = format!(
            "{TMP_PREFIX}{}-{}-{}{TMP_SUFFIX}",
            std::process::id(),
            crate::store::now_us(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(&name);
        if d.kind(&name).is_some() {
            continue;
        }
        match d.open_file(&name, Access::CreateNew)? {
            Some(f) => return Ok((f, name)),
            None => return Err(Error::io("cannot create", &path, std::io::Error::from(std::io::ErrorKind::NotFound))),
        }
    }
}

/// Writes `bytes` to a new temporary file and returns its name.
pub fn write_tmp(dir: &Path, bytes: &[u8]) -> Result<String> {
    let (mut f, name) = create_tmp(dir)?;
    reserve(&f, bytes.len() as u64);
    f.write_all(bytes).map_err(|e| Error::io("cannot write", &dir.join(&name), e))?;
    Ok(name)
}

/// Allocates `len` bytes of disk for a file about to be written, as one extent: writing
/// a large file is a third faster when the file system need not allocate as it goes.
/// Only a hint: where it is not supported the write allocates as usual.
pub fn reserve(f: &File, len: u64) {
    #[cfg(target_os = "linux")]
    if len >= 1 << 20 {
        use std::os::fd::AsRawFd;
        // SAFETY: plain syscall on an open descriptor; the size stays as written.
        unsafe { libc::fallocate(f.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, len as libc::off_t) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (f, len);
}

/// Closes `file` on a background thread. Closing the last descriptor of an unlinked file
/// frees its page cache (about 2 ms for 40 MB), which the caller need not wait for.
pub fn close_in_background(file: Option<File>) {
    type Closer = (u32, std::sync::Mutex<std::sync::mpsc::Sender<File>>);
    static CLOSER: std::sync::OnceLock<Option<Closer>> = std::sync::OnceLock::new();
    let Some(file) = file else { return };
    let closer = CLOSER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<File>();
        let spawned = std::thread::Builder::new().name("numpack-closer".into()).spawn(move || rx.into_iter().for_each(drop));
        spawned.ok().map(|_| (std::process::id(), std::sync::Mutex::new(tx)))
    });
    match closer {
        // A forked child inherits the channel but not the thread: close here.
        Some((pid, tx)) if *pid == std::process::id() => {
            // If the thread is gone, the send hands the file back and it is closed here.
            let _ = tx.lock().unwrap_or_else(|e| e.into_inner()).send(file);
        }
        _ => drop(file),
    }
}

/// Removes temporary files left by processes that no longer exist.
pub fn remove_orphan_tmps(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(TMP_PREFIX).filter(|_| name.ends_with(TMP_SUFFIX)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Renames `from` to `to` inside `dir` (relative to the directory's handle; a link is
/// moved as a link, never followed).
pub fn rename(dir: &Path, from: &str, to: &str) -> Result<()> {
    dirfd::Dir::open(dir)?.rename(from, to)
}

/// Removes `name` from `dir` if it is there (a link itself, never its target).
pub fn remove_if_exists(dir: &Path, name: &str) -> Result<()> {
    dirfd::Dir::open(dir)?.remove_if_exists(name)
}

/// Whether anything is at `name` in `dir`, a link included (dangling or not): it is
/// then opened (and refused) or replaced, never skipped as if absent.
pub fn exists(dir: &Path, name: &str) -> bool {
    dirfd::Dir::open(dir).is_ok_and(|d| d.kind(name).is_some())
}

/// Opens the store file `name` in `dir` for reading (and writing when `write`), never
/// through a link and only when it is a regular file.
pub fn open(dir: &Path, name: &str, write: bool) -> Result<File> {
    dirfd::open_existing(dir, name, if write { Access::ReadWrite } else { Access::Read })
}

/// Reads the whole store file `name`, `None` when missing; at most `max` bytes.
pub fn read(dir: &Path, name: &str, max: u64) -> Result<Option<Vec<u8>>> {
    dirfd::read_in(dir, name, max)
}

#[cfg(test)]
mod tests {
    use super::copy_runs;

    #[test]
    fn parts_of_concatenated_runs_are_copied_exactly() {
        let src: Vec<u8> = (0..=255).collect();
        let runs = [(10u64, 5u64), (100, 7), (3, 4)];
        let all: Vec<u8> = runs.iter().flat_map(|&(o, l)| src[o as usize..(o + l) as usize].to_vec()).collect();
        for skip in 0..all.len() {
            for len in 0..=all.len() - skip {
                let mut out = vec![0u8; len];
                copy_runs(&src, &runs, skip, &mut out);
                assert_eq!(out, all[skip..skip + len], "skip {skip} len {len}");
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn files_handed_to_the_closer_get_closed() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old");
        std::fs::write(&path, b"x").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let link = format!("/proc/self/fd/{}", f.as_raw_fd());
        std::fs::remove_file(&path).unwrap();
        super::close_in_background(Some(f));
        // The descriptor number may be reused, but not for the unlinked file.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_link(&link).is_ok_and(|t| t.to_string_lossy().contains("old (deleted)")) {
            assert!(std::time::Instant::now() < deadline, "the file was never closed");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
