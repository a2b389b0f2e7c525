//! A store: a directory of named N-dimensional arrays in NumPack's format, safe to share
//! between threads and processes, consistent after a crash at any instant.
//!
//! All row indices are *logical*: rows deleted through the bitmap are invisible to every
//! read and write.

mod compressed; // compressed arrays
mod segmented;
mod files;
mod log;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock, RwLockWriteGuard};

use crate::bitmap::Bitmap;
use crate::dtype::DType;
use crate::error::{bail, Error, Result};
use crate::lock::FileLock;
use crate::metadata::{self, Entry, MAX_NDIM};
use crate::name::{self, bitmap_file, data_file};
use crate::view::View;
use crate::stream::Stream;
use crate::wal::{BitmapPatch, Op, Wal};
use files::FileCache;
use log::State;
// For `crate::check`, which replays the log without opening the store.
pub(crate) use files::{TMP_PREFIX, TMP_SUFFIX};
// For `crate::segments`, which writes manifests the same way as every other file.
pub(crate) use files::{rename as rename_in, write_tmp, SegSet};
pub(crate) use compressed::words_as_bytes;
pub(crate) use log::apply_to_catalogue;

/// The log is folded into `metadata.npkm` once it grows past this.
const CHECKPOINT_BYTES: u64 = 64 << 20;
/// Bitmap words further apart than this are written with separate calls.
const WORD_GAP: usize = 512;

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// How to open a store.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    /// Create the directory (and an empty store) if it does not exist.
    pub create: bool,
    /// Delete what is at the path first (a store directory, an empty directory or a
    /// file; never a non-empty directory that is not a store). Implies `create`.
    pub drop_if_exists: bool,
    /// Refuse every change through this handle.
    pub read_only: bool,
}

/// What a caller needs to know to read an array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayInfo {
    pub dtype: DType,
    /// Logical shape: `shape[0]` counts live rows only. Empty for a 0-d array.
    pub shape: Vec<u64>,
    /// Rows in the data file, deleted ones included.
    pub physical_rows: u64,
    /// Microseconds since the Unix epoch.
    pub modified_us: u64,
}

impl ArrayInfo {
    /// Saturates rather than wraps, as [`ArrayInfo::nbytes`].
    pub fn row_bytes(&self) -> u64 {
        self.shape.iter().skip(1).fold(self.dtype.size() as u64, |acc, &d| acc.saturating_mul(d))
    }
    /// Saturates rather than wraps (shapes are checked when read, so it does not).
    pub fn nbytes(&self) -> u64 {
        self.shape.iter().fold(self.dtype.size() as u64, |acc, &d| acc.saturating_mul(d))
    }
}

/// A handle on an open store. Cheap to clone (clones share one handle); `Send + Sync`.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.inner.dir).field("read_only", &self.inner.read_only).finish()
    }
}

pub(crate) struct Inner {
    dir: PathBuf,
    read_only: bool,
    wal: Wal,
    files: FileCache,
    state: RwLock<State>,
    closed: AtomicBool,
    /// Data files this handle mapped writable: `sync` flushes them too, since writes
    /// through such views bypass the log and its list of written files.
    writable_views: Mutex<HashSet<String>>,
}

/// Where an array's rows are read from.
enum RowsFile {
    Plain(Arc<files::DataFile>),
    Compressed(Arc<crate::compress::ZFile>), // compressed arrays
    Segmented(Arc<files::SegSet>),
}

/// One array as seen under the state lock.
struct Array<'a> {
    name: &'a str,
    entry: &'a Entry,
    bitmap: Option<&'a Bitmap>,
}

impl Array<'_> {
    fn rows(&self) -> u64 {
        self.bitmap.map_or(self.entry.physical_rows(), Bitmap::live)
    }
    fn row_bytes(&self) -> u64 {
        self.entry.row_bytes()
    }
    fn require_rows(&self) -> Result<()> {
        if self.entry.shape.is_empty() {
            bail!(ShapeMismatch, "array {:?} is 0-dimensional and has no rows", self.name);
        }
        Ok(())
    }
    fn physical(&self, logical: u64) -> u64 {
        self.bitmap.map_or(logical, |b| b.physical(logical))
    }
    /// Physical rows of logical indices; negative indices count from the end.
    fn resolve(&self, idx: &[i64]) -> Result<Vec<u64>> {
        let rows = self.rows();
        idx.iter()
            .map(|&i| {
                let j = if i < 0 { i as i128 + rows as i128 } else { i as i128 };
                if j < 0 || j >= rows as i128 {
                    bail!(IndexOutOfRange, "index {i} is out of range for array {:?} with {rows} rows", self.name);
                }
                Ok(self.physical(j as u64))
            })
            .collect()
    }
    /// Copies the rows at logical indices `idx` from the mapped file `src` to `out`,
    /// checking each index as it goes (one pass, no index vector).
    fn gather(&self, src: &[u8], idx: &[i64], out: &mut [u8]) -> Result<()> {
        let rows = self.rows();
        let rb = self.row_bytes() as usize;
        for (&i, dst) in idx.iter().zip(out.chunks_exact_mut(rb)) {
            // A negative index wraps to `rows + i`; anything out of range ends up >= rows.
            let l = if i < 0 { (i as u64).wrapping_add(rows) } else { i as u64 };
            if l >= rows {
                bail!(IndexOutOfRange, "index {i} is out of range for array {:?} with {rows} rows", self.name);
            }
            let p = self.physical(l) as usize;
            dst.copy_from_slice(&src[p * rb..(p + 1) * rb]);
        }
        Ok(())
    }

    /// As [`Array::gather`], from a segmented array's segments.
    fn gather_segments(&self, set: &files::SegSet, idx: &[i64], out: &mut [u8]) -> Result<()> {
        let rb = self.row_bytes();
        let phys = self.resolve(idx)?;
        for (p, dst) in phys.into_iter().zip(out.chunks_exact_mut(rb as usize)) {
            set.read_runs(&[(p * rb, rb)], dst)?;
        }
        Ok(())
    }

    /// Byte runs `(offset, len)` of the logical rows `start..stop`.
    fn range_runs(&self, start: u64, stop: u64) -> Result<Vec<(u64, u64)>> {
        let rows = self.rows();
        if start > stop || stop > rows {
            bail!(IndexOutOfRange, "rows {start}..{stop} are out of range for array {:?} with {rows} rows", self.name);
        }
        let rb = self.row_bytes();
        if start == stop {
            return Ok(vec![]);
        }
        Ok(match self.bitmap {
            None => vec![(start * rb, (stop - start) * rb)],
            Some(b) => b.live_runs(b.physical(start), b.physical(stop - 1) + 1).into_iter().map(|(r, n)| (r * rb, n * rb)).collect(),
        })
    }
    fn info(&self) -> ArrayInfo {
        let mut shape = self.entry.shape.clone();
        if let Some(first) = shape.first_mut() {
            *first = self.rows();
        }
        ArrayInfo { dtype: self.entry.dtype, shape, physical_rows: self.entry.physical_rows(), modified_us: self.entry.modified_us }
    }
    /// The array has `dtype` and the logical `shape` (live rows first), else
    /// `DtypeMismatch` or `ShapeMismatch`.
    fn check_layout(&self, dtype: DType, shape: &[u64]) -> Result<()> {
        self.check_dtype(dtype)?;
        let same = self.entry.shape.len() == shape.len()
            && shape.first().is_some_and(|&rows| rows == self.rows())
            && self.entry.shape[1..] == shape[1..];
        if !same {
            bail!(ShapeMismatch, "array {:?} has shape {:?} now, not {shape:?}", self.name, self.info().shape);
        }
        Ok(())
    }
    fn check_dtype(&self, dtype: DType) -> Result<()> {
        if dtype != self.entry.dtype {
            bail!(DtypeMismatch, "array {:?} holds {} but the data is {}", self.name, self.entry.dtype.numpy_name(), dtype.numpy_name());
        }
        Ok(())
    }
}

fn array<'a>(st: &'a State, name: &'a str) -> Result<Array<'a>> {
    name::validate(name)?;
    let (name, entry) = st.cat.get_key_value(name).ok_or_else(|| Error::not_found(name))?;
    let bitmap = match st.bitmaps.get(name) {
        None => None,
        Some(Ok(b)) => Some(&**b),
        Some(Err(e)) => return Err(e.clone()),
    };
    Ok(Array { name, entry, bitmap })
}

fn check_len(what: &str, got: usize, want: u64) -> Result<()> {
    if got as u64 != want {
        bail!(BufferSize, "{what} is {got} bytes but must be {want}");
    }
    Ok(())
}

/// Runs of indices into `words` whose gaps are at most `gap` words.
fn word_spans(changed: &[usize], gap: usize) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for &w in changed {
        match spans.last_mut() {
            Some(s) if w <= s.1 + gap => s.1 = w,
            _ => spans.push((w, w)),
        }
    }
    spans
}

impl Store {
    /// Opens the store at `path`.
    pub fn open(path: impl AsRef<Path>, opts: OpenOptions) -> Result<Store> {
        let dir = path.as_ref().to_path_buf();
        if opts.read_only && opts.drop_if_exists {
            return Err(Error::invalid("drop_if_exists cannot be combined with read_only"));
        }
        if opts.drop_if_exists {
            wipe(&dir)?;
        }
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!(InvalidArgument, "{} is a file, not a store directory", dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !(opts.create || opts.drop_if_exists) || opts.read_only {
                    bail!(StoreNotFound, "no store at {}", dir.display());
                }
                fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
            }
            Err(e) => return Err(Error::io("cannot stat", &dir, e)),
        }
        if opts.read_only && !dir.join(metadata::FILE_NAME).exists() {
            bail!(StoreNotFound, "{} holds no store (no {})", dir.display(), metadata::FILE_NAME);
        }
        // Read-only means no file is created, renamed or written: not even the log.
        let wal = if opts.read_only { Wal::open_read_only(&dir)? } else { Wal::open(&dir, true)? };
        let inner = Inner {
            files: FileCache::new(&dir, wal.writable && !opts.read_only),
            dir,
            read_only: opts.read_only,
            wal,
            state: RwLock::new(State::default()),
            closed: AtomicBool::new(false),
            writable_views: Mutex::default(),
        };
        {
            let mut st = inner.state.write().unwrap();
            let _lock = FileLock::exclusive(&inner.wal.file).map_err(|e| Error::io("cannot lock", &inner.wal.path, e))?;
            inner.reload(&mut st)?;
        }
        Ok(Store { inner: Arc::new(inner) })
    }

    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// Folds pending changes into `metadata.npkm` (so NumPack sees them) and closes this
    /// handle. Clones of the handle, views and streams stay usable.
    pub fn close(self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.fold(false)
    }

    /// Makes every change so far durable: flushes written files, the catalogue and the log
    /// to disk (`fsync`). After `sync` returns, a power loss cannot undo those changes.
    pub fn sync(&self) -> Result<()> {
        self.inner.fold(true)
    }

    /// Picks up changes committed by other handles and processes. Reads do this
    /// automatically when the store's change counter moved; this forces it.
    pub fn refresh(&self) -> Result<()> {
        let mut st = self.inner.state.write().unwrap();
        let _lock = self.inner.lock()?;
        self.inner.catch_up(&mut st)
    }

    /// Names of all arrays, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        self.read(|st| Ok(st.cat.keys().cloned().collect()))
    }

    pub fn contains(&self, name: &str) -> Result<bool> {
        name::validate(name)?;
        self.read(|st| Ok(st.cat.contains_key(name)))
    }

    pub fn info(&self, name: &str) -> Result<ArrayInfo> {
        self.read(|st| Ok(array(st, name)?.info()))
    }

    /// Creates or replaces array `name` with `data` (C order, little-endian) of `shape`.
    /// Existing views keep the old contents.
    pub fn save(&self, name: &str, dtype: DType, shape: &[u64], data: &[u8]) -> Result<()> {
        name::validate(name)?;
        check_shape(shape)?;
        let nbytes = metadata::shape_nbytes(dtype, shape).map_err(Error::invalid)?;
        check_len("data", data.len(), nbytes)?;
        self.inner.writable()?;
        let tmp = files::write_tmp(&self.inner.dir, data)?;
        let entry = Entry { dtype, shape: shape.to_vec(), modified_us: now_us(), segmented: false };
        let result = self.inner.mutate(|inner, st| inner.install(st, Op::Save { name: name.into(), entry, tmp: tmp.clone() }));
        if result.is_err() {
            let _ = files::remove_if_exists(&self.inner.dir, &tmp);
        }
        result
    }

    /// Copies all live rows into `out`, which must be exactly the array's logical size.
    pub fn load_into(&self, name: &str, out: &mut [u8]) -> Result<()> {
        self.read(|st| {
            let a = array(st, name)?;
            check_len("the output buffer", out.len(), a.info().nbytes())?;
            self.inner.read_all(&a, out)
        })
    }

    /// Checks that the array's data files hold every byte its shape says, without reading
    /// them: call before sizing a buffer by the shape of an array from an untrusted store.
    pub fn check_data(&self, name: &str) -> Result<()> {
        self.read(|st| self.inner.check_data(&array(st, name)?))
    }

    /// Convenience: the array's info and all its live rows in a new buffer, both from
    /// one version of the array.
    pub fn load(&self, name: &str) -> Result<(ArrayInfo, Vec<u8>)> {
        self.read(|st| {
            let a = array(st, name)?;
            let info = a.info();
            // The data must be there before a buffer is sized by the catalogue's shape.
            self.inner.check_data(&a)?;
            let mut out = Vec::new();
            out.try_reserve_exact(info.nbytes() as usize)
                .map_err(|_| Error::invalid(format!("array {name:?} ({} bytes) does not fit in memory", info.nbytes())))?;
            out.resize(info.nbytes() as usize, 0);
            self.inner.read_all(&a, &mut out)?;
            Ok((info, out))
        })
    }

    /// Copies the rows at logical indices `idx` (negative counts from the end; repeats
    /// allowed) into `out`, which must hold exactly `idx.len()` rows.
    pub fn read_rows_into(&self, name: &str, idx: &[i64], out: &mut [u8]) -> Result<()> {
        self.read(|st| self.inner.read_rows(&array(st, name)?, idx, out))
    }

    /// As [`Store::read_rows_into`], but only while the array still has `dtype` and the
    /// logical `shape`: see [`Store::read_range_checked`].
    pub fn read_rows_checked(&self, name: &str, dtype: DType, shape: &[u64], idx: &[i64], out: &mut [u8]) -> Result<()> {
        self.read(|st| {
            let a = array(st, name)?;
            a.check_layout(dtype, shape)?;
            self.inner.read_rows(&a, idx, out)
        })
    }

    /// Copies logical rows `start..stop` into `out` (exactly `stop - start` rows).
    pub fn read_range_into(&self, name: &str, start: u64, stop: u64, out: &mut [u8]) -> Result<()> {
        self.read(|st| self.inner.read_range(&array(st, name)?, start, stop, out))
    }

    /// As [`Store::read_range_into`], but only while the array still has `dtype` and the
    /// logical `shape` (live rows first) a caller sized `out` from: else
    /// `DtypeMismatch` or `ShapeMismatch`, and `out` is untouched. The check and the copy
    /// see one version of the array, so a caller holding an earlier [`Store::info`] need
    /// not ask again before each read.
    pub fn read_range_checked(&self, name: &str, dtype: DType, shape: &[u64], start: u64, stop: u64, out: &mut [u8]) -> Result<()> {
        self.read(|st| {
            let a = array(st, name)?;
            a.check_layout(dtype, shape)?;
            self.inner.read_range(&a, start, stop, out)
        })
    }

    /// As [`Store::read_range_checked`], for one pass over an array (exports): the pages
    /// read are then dropped from this process's resident set (they stay in the page
    /// cache), so memory does not grow with the array as it would through the mapping.
    pub fn read_range_once(&self, name: &str, dtype: DType, shape: &[u64], start: u64, stop: u64, out: &mut [u8]) -> Result<()> {
        self.read(|st| {
            let a = array(st, name)?;
            a.check_layout(dtype, shape)?;
            self.inner.read_range(&a, start, stop, out)?;
            self.inner.release_range(&a, start, stop)
        })
    }

    /// Reads up to `batch` logical rows from `start` into `out`, which must hold `batch`
    /// rows; returns the rows read (0 past the end). Size and rows come from one version.
    pub(crate) fn read_batch(&self, name: &str, start: u64, batch: u64, out: &mut [u8]) -> Result<u64> {
        self.read(|st| {
            let a = array(st, name)?;
            a.require_rows()?;
            // A full batch must fit `out`, whatever is left, so callers size buffers once.
            let need = batch.checked_mul(a.row_bytes()).filter(|&b| b <= usize::MAX as u64);
            match need {
                Some(need) if out.len() as u64 >= need => {}
                _ => bail!(
                    BufferSize,
                    "the batch buffer is {} bytes but one batch of {batch} rows needs {}",
                    out.len(),
                    need.map_or("more than addressable".to_string(), |b| b.to_string())
                ),
            }
            let n = batch.min(a.rows().saturating_sub(start));
            self.inner.read_range(&a, start, start + n, &mut out[..(n * a.row_bytes()) as usize])?;
            Ok(n)
        })
    }

    /// Overwrites the rows at logical indices `idx` with the rows of `data`, in order;
    /// when an index repeats, the last row given for it wins.
    pub fn replace_rows(&self, name: &str, dtype: DType, idx: &[i64], data: &[u8]) -> Result<()> {
        self.inner.mutate(|inner, st| {
            let a = array(st, name)?;
            a.require_rows()?;
            a.check_dtype(dtype)?;
            let rb = a.row_bytes();
            check_len("data", data.len(), idx.len() as u64 * rb)?;
            let phys = a.resolve(idx)?;
            if phys.is_empty() || rb == 0 {
                return Ok(());
            }
            // Sort by file position keeping the last write per row, then merge neighbours
            // whose source rows are neighbours too into single writes.
            let mut order: Vec<(u64, usize)> = phys.into_iter().zip(0..).collect();
            order.sort_by_key(|&(p, _)| p);
            let mut dedup: Vec<(u64, usize)> = Vec::with_capacity(order.len());
            for pair in order {
                match dedup.last_mut() {
                    Some(last) if last.0 == pair.0 => *last = pair,
                    _ => dedup.push(pair),
                }
            }
            let mut runs: Vec<(u64, u64)> = Vec::new();
            let mut payload = Vec::with_capacity(dedup.len() * rb as usize);
            let mut prev: Option<(u64, usize)> = None;
            for &(p, s) in &dedup {
                let src = &data[s * rb as usize..(s + 1) * rb as usize];
                match (prev, runs.last_mut()) {
                    (Some((pp, ps)), Some(run)) if p == pp + 1 && s == ps + 1 => run.1 += rb,
                    _ => runs.push((p * rb, rb)),
                }
                payload.extend_from_slice(src);
                prev = Some((p, s));
            }
            inner.replace(st, name, runs, payload)
        })
    }

    /// Overwrites `rows` logical rows from `start` with `data`.
    pub fn replace_range(&self, name: &str, dtype: DType, start: u64, rows: u64, data: &[u8]) -> Result<()> {
        self.inner.mutate(|inner, st| {
            let a = array(st, name)?;
            a.require_rows()?;
            a.check_dtype(dtype)?;
            let stop = start.checked_add(rows).ok_or_else(|| Error::invalid("row range overflows"))?;
            let runs = a.range_runs(start, stop)?;
            check_len("data", data.len(), rows * a.row_bytes())?;
            if data.is_empty() {
                return Ok(());
            }
            inner.replace(st, name, runs, data.to_vec())
        })
    }

    /// Appends rows. `shape` describes `data`: same dtype, same number of dimensions and
    /// same trailing dimensions as the array. Appending zero rows changes nothing.
    pub fn append(&self, name: &str, dtype: DType, shape: &[u64], data: &[u8]) -> Result<()> {
        self.inner.mutate(|inner, st| {
            let a = array(st, name)?;
            a.require_rows()?;
            a.check_dtype(dtype)?;
            if shape.len() != a.entry.shape.len() || shape[1..] != a.entry.shape[1..] {
                bail!(
                    ShapeMismatch,
                    "cannot append rows of shape {shape:?} to array {name:?} of shape {:?}",
                    a.info().shape
                );
            }
            let nbytes = metadata::shape_nbytes(dtype, shape).map_err(Error::invalid)?;
            check_len("data", data.len(), nbytes)?;
            if shape[0] == 0 {
                return Ok(());
            }
            let old = a.entry.physical_rows();
            let new = old.checked_add(shape[0]).ok_or_else(|| Error::invalid("row count overflows"))?;
            let mut grown = a.entry.shape.clone();
            grown[0] = new;
            metadata::shape_nbytes(dtype, &grown).map_err(|m| Error::invalid(format!("array {name:?} cannot grow: {m}")))?;
            if let Some(z) = inner.zfile(&a)? {
                return inner.z_append(st, name, &z, data); // compressed arrays
            }
            // The rows go past the committed end first; the record then makes them visible.
            let manifest = if a.entry.segmented {
                Some(inner.seg_write_rows(name, a.entry, data)?)
            } else {
                let df = inner.files.get(name, 0)?;
                use std::os::unix::fs::FileExt;
                let at = old * a.row_bytes();
                df.file.write_all_at(data, at).map_err(|e| Error::io("cannot write", &df.path, e))?;
                inner.files.grew(name, at + data.len() as u64);
                None
            };
            // Grow the bitmap in place; if anything below fails, `mutate` reloads from disk.
            let mut first = 0;
            let patch = match st.bitmaps.get_mut(name) {
                Some(Ok(b)) => {
                    let b = Arc::make_mut(b);
                    first = b.extend(new);
                    Some(BitmapPatch { total: new, created: false, words: (first..b.words().len()).map(|w| (w as u64, b.words()[w])).collect() })
                }
                _ => None,
            };
            let mut written = Vec::new();
            let op = match manifest {
                Some((manifest, files)) => {
                    written = files;
                    Op::SegAppend { name: name.into(), old_rows: old, new_rows: new, modified_us: now_us(), manifest, bitmap: patch }
                }
                None => Op::Append { name: name.into(), old_rows: old, new_rows: new, modified_us: now_us(), bitmap: patch },
            };
            inner.commit(st, &op)?;
            if let Op::SegAppend { manifest, .. } = &op {
                crate::segments::write_manifest(&inner.dir, name, manifest)?;
                inner.files.forget(name);
                st.dirty.insert(crate::segments::manifest_file(name));
                st.dirty.insert(crate::segments::dir_name(name));
                st.dirty.extend(written);
            } else {
                st.dirty.insert(data_file(name));
            }
            if let Some(Ok(b)) = st.bitmaps.get(name) {
                if st.legacy.remove(name) {
                    inner.write_bitmap_file(name, b)?;
                } else {
                    // Only the old last word onward changes: patch those words, then the header.
                    let changed: Vec<usize> = (first..b.words().len()).collect();
                    inner.write_bitmap_words(name, b, &changed)?;
                }
                st.dirty.insert(bitmap_file(name));
            }
            inner.finish(st, &op)
        })
    }

    /// Deletes rows at logical indices (negative counts from the end; repeats allowed).
    /// The rows stay in the data file, hidden by the bitmap, until [`Store::compact`].
    pub fn delete_rows(&self, name: &str, idx: &[i64]) -> Result<()> {
        self.inner.mutate(|inner, st| {
            let a = array(st, name)?;
            a.require_rows()?;
            let phys = a.resolve(idx)?;
            if phys.is_empty() {
                return Ok(());
            }
            let created = a.bitmap.is_none();
            if created {
                // The new bitmap is sized by the catalogue's rows: they must exist first.
                inner.check_data(&a)?;
            }
            let total = a.entry.physical_rows();
            let rewrite = st.legacy.contains(name);
            let slot = st.bitmaps.entry(name.to_string()).or_insert_with(|| Ok(Arc::new(Bitmap::all_live(total))));
            let Ok(bm) = slot else { unreachable!("array() returns a damaged bitmap's error") };
            let bm = Arc::make_mut(bm);
            let changed = bm.delete(&phys);
            let words = changed.iter().map(|&w| (w as u64, bm.words()[w])).collect();
            let op = Op::Delete { name: name.into(), modified_us: now_us(), bitmap: BitmapPatch { total, created, words } };
            inner.commit(st, &op)?;
            let Some(Ok(bm)) = st.bitmaps.get(name) else { unreachable!() };
            if created {
                // Written in place: recovery rebuilds a created bitmap from the record
                // alone, never from this file, so a half-written file is harmless.
                let path = inner.dir.join(bitmap_file(name));
                let mut f = crate::dirfd::open_in(&inner.dir, &bitmap_file(name), crate::dirfd::Access::Truncate)?
                    .ok_or_else(|| Error::io("cannot create", &path, std::io::ErrorKind::NotFound.into()))?;
                bm.write_to(&mut f).map_err(|e| Error::io("cannot write", &path, e))?;
            } else if rewrite {
                inner.write_bitmap_file(name, bm)?;
                st.legacy.remove(name);
            } else {
                inner.write_bitmap_words(name, bm, &changed)?;
            }
            st.dirty.insert(bitmap_file(name));
            inner.finish(st, &op)
        })
    }

    /// Removes an array and its files.
    pub fn drop_array(&self, name: &str) -> Result<()> {
        name::validate(name)?;
        self.inner.mutate(|inner, st| {
            // Only the catalogue entry is needed, so a damaged bitmap cannot block the drop.
            if !st.cat.contains_key(name) {
                return Err(Error::not_found(name));
            }
            inner.install(st, Op::Drop { name: name.into() })
        })
    }

    /// Rewrites the array without its deleted rows and removes its bitmap. Does nothing
    /// when no row is deleted.
    pub fn compact(&self, name: &str) -> Result<()> {
        self.inner.mutate(|inner, st| {
            let a = array(st, name)?;
            if let Some(z) = inner.zfile(&a)? {
                // compressed arrays: also reclaims superseded chunks
                if a.bitmap.is_none() && z.garbage()? == 0 {
                    return Ok(());
                }
                return inner.z_rewrite(st, name, false);
            }
            if a.bitmap.is_none() {
                return Ok(());
            }
            let rows = a.rows();
            // As NumPack 0.7: a segmented array stays segmented while its live rows
            // exceed the segment target, else it becomes one plain file.
            if a.entry.segmented && rows.saturating_mul(a.row_bytes()) > crate::segments::target_bytes(a.row_bytes()) {
                let (tmps, manifest) = inner.seg_copy_live(&a)?;
                let op = Op::SegInstall { name: name.into(), rows, modified_us: now_us(), tmps: tmps.clone(), manifest };
                let result = inner.install(st, op);
                if result.is_err() {
                    for t in tmps {
                        let _ = files::remove_if_exists(&inner.dir, &t);
                    }
                }
                return result;
            }
            let tmp = inner.copy_live(&a)?;
            inner.install(st, Op::Compact { name: name.into(), rows, modified_us: now_us(), tmp })
        })
    }

    /// Copies the live rows of `src` into a new array `dst`.
    pub fn clone_array(&self, src: &str, dst: &str) -> Result<()> {
        name::validate(dst)?;
        self.inner.mutate(|inner, st| {
            let a = array(st, src)?;
            if st.cat.contains_key(dst) {
                bail!(AlreadyExists, "an array named {dst:?} already exists");
            }
            let info = a.info();
            let entry = Entry { dtype: info.dtype, shape: info.shape, modified_us: now_us(), segmented: false };
            if let Some(z) = inner.zfile(&a)? {
                // compressed arrays: the copy is compressed alike
                let tmp = inner.z_copy_live(&a, &z, crate::compress::Compression { level: z.header.level })?;
                return inner.install(st, Op::ZSave { name: dst.into(), entry, tmp, keep_bitmap: false });
            }
            let tmp = inner.copy_live(&a)?;
            inner.install(st, Op::Save { name: dst.into(), entry, tmp })
        })
    }

    /// Renames array `from` to `to`, which must not exist.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        name::validate(to)?;
        self.inner.mutate(|inner, st| {
            let a = array(st, from)?;
            if from == to {
                return Ok(());
            }
            if st.cat.contains_key(to) {
                bail!(AlreadyExists, "an array named {to:?} already exists");
            }
            let had_bitmap = a.bitmap.is_some();
            inner.install(st, Op::Rename { from: from.into(), to: to.into(), modified_us: now_us(), had_bitmap })
        })
    }

    /// Removes every array.
    pub fn reset(&self) -> Result<()> {
        self.inner.mutate(|inner, st| inner.install(st, Op::Reset))
    }

    /// Maps the array's data file: read-only, or writable (changes go straight to the file,
    /// outside the log: visible at once and kept if the process dies, durable against power
    /// loss after [`View::flush`] or [`Store::sync`] on this handle, not atomic).
    pub fn view(&self, name: &str, writable: bool) -> Result<View> {
        if writable {
            self.inner.writable()?;
        }
        let view = self.read(|st| {
            let a = array(st, name)?;
            let row_map = a.bitmap.map(|b| b.live_rows());
            if let Some(z) = self.inner.zfile(&a)? {
                // compressed arrays: no mapping; a read-only view owns the decompressed rows
                if writable {
                    return Err(Inner::z_refuse(name, "viewed writable (memory-mapped)"));
                }
                let words = self.inner.z_view_bytes(&z)?;
                return Ok(View::new(crate::view::ViewMap::Owned(words), a.entry.dtype, a.entry.shape.clone(), a.rows(), row_map));
            }
            if a.entry.segmented {
                if writable {
                    bail!(
                        Unsupported,
                        "array {name:?} is stored in NumPack 0.7 segments, which cannot be viewed writable; use replace, or save it again to store it in one file"
                    );
                }
                let set = self.inner.files.segmented(name, a.entry)?;
                let map = crate::view::join_segments(&set, a.entry.nbytes())?;
                return Ok(View::new(map, a.entry.dtype, a.entry.shape.clone(), a.rows(), row_map));
            }
            let map = if writable {
                crate::view::map_writable(&self.inner.dir.join(data_file(name)), a.entry.nbytes())?
            } else {
                crate::view::ViewMap::Shared(self.inner.files.get(name, a.entry.nbytes())?.mapping())
            };
            Ok(View::new(map, a.entry.dtype, a.entry.shape.clone(), a.rows(), row_map))
        })?;
        if writable {
            self.inner.writable_views.lock().unwrap().insert(data_file(name));
        }
        Ok(view)
    }

    /// Runs `f` on the store's files as NumPack's format defines them, frozen: the log is
    /// folded into `metadata.npkm` first, and every writer (in any process) waits until
    /// `f` returns. `f` gets the store's directory and the names of its format files
    /// (`metadata.npkm`, then each array's `data_*.npkd` — `data_*.npkz` for a compressed
    /// array, `data_*.npkseg` and the segment files `data_*_segments/seg_*.npkd` it lists
    /// for a segmented one — and `deleted_*.npkb` if it has one), sorted. For packing and
    /// checking a store. A read-only handle works only when the log has no records (else
    /// `READ_ONLY`: the changes since the last checkpoint need a writable handle to fold).
    pub fn with_frozen_files<T>(&self, f: impl FnOnce(&Path, &[String]) -> Result<T>) -> Result<T> {
        let mut st = self.inner.state.write().unwrap();
        let _lock = self.inner.lock()?;
        self.inner.catch_up(&mut st)?;
        if st.wal_end > crate::wal::HEADER_LEN {
            self.inner.writable().map_err(|e| {
                Error::new(e.code, format!("{}; the changes since its last checkpoint must be folded by a writable handle first", e.message))
            })?;
            self.inner.checkpoint(&mut st, false)?;
        }
        let mut names = vec![metadata::FILE_NAME.to_string()];
        for (name, entry) in &st.cat {
            if entry.segmented {
                names.push(crate::segments::manifest_file(name));
                let m = crate::segments::read_manifest(&self.inner.dir, name)?;
                names.extend(m.segments.into_iter().filter(|s| s.bytes > 0 || files::exists(&self.inner.dir, &s.file)).map(|s| s.file));
            } else if files::exists(&self.inner.dir, &crate::compress::file_name(name)) {
                names.push(crate::compress::file_name(name)); // compressed arrays
            } else {
                names.push(data_file(name));
            }
            if files::exists(&self.inner.dir, &bitmap_file(name)) {
                names.push(bitmap_file(name));
            }
        }
        names.sort();
        f(&self.inner.dir, &names)
    }

    /// Iterates over the array's live rows in batches of `batch_rows`.
    pub fn stream(&self, name: &str, batch_rows: u64) -> Result<Stream> {
        if batch_rows == 0 {
            return Err(Error::invalid("batch size must be at least one row"));
        }
        let info = self.info(name)?;
        if info.shape.is_empty() {
            bail!(ShapeMismatch, "array {name:?} is 0-dimensional and has no rows");
        }
        Ok(Stream::new(self.clone(), name.to_string(), batch_rows))
    }

    /// Runs `f` on an up-to-date state. The shared change counter is a sequence lock: the
    /// fast path runs `f` under the handle's read lock only while the counter is even and
    /// equal to the state's, and keeps the result only if it did not move meanwhile (no
    /// other handle or process changed the store under the copy). Otherwise `f` runs with
    /// the store locked, so a busy writer cannot starve readers.
    fn read<T>(&self, mut f: impl FnMut(&State) -> Result<T>) -> Result<T> {
        let before = self.inner.wal.change_counter();
        if before % 2 == 0 {
            let st = self.inner.state.read().unwrap();
            if st.loaded && st.seen_counter == before {
                let result = f(&st);
                std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
                if self.inner.wal.change_counter() == before {
                    return result;
                }
            }
        }
        let mut st = self.inner.state.write().unwrap();
        let _lock = self.inner.lock()?;
        self.inner.catch_up(&mut st)?;
        f(&st)
    }
}

fn check_shape(shape: &[u64]) -> Result<()> {
    if shape.is_empty() {
        bail!(ShapeMismatch, "0-d arrays cannot be saved; store a 1-element 1-d array instead");
    }
    if shape.len() > MAX_NDIM {
        bail!(ShapeMismatch, "{} dimensions exceed the limit of {MAX_NDIM}", shape.len());
    }
    Ok(())
}

/// Deletes a store (or an empty directory, or a file) at `dir` for `drop_if_exists`.
fn wipe(dir: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("cannot stat", dir, e)),
        Ok(m) => m,
    };
    if !meta.is_dir() {
        return fs::remove_file(dir).map_err(|e| Error::io("cannot remove", dir, e));
    }
    let is_store = dir.join(metadata::FILE_NAME).exists() || dir.join(crate::wal::FILE_NAME).exists();
    let empty = fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?.next().is_none();
    if !is_store && !empty {
        bail!(InvalidArgument, "refusing to delete {}: it is not a numpack store", dir.display());
    }
    fs::remove_dir_all(dir).map_err(|e| Error::io("cannot remove", dir, e))
}

impl Inner {
    fn writable(&self) -> Result<()> {
        if self.read_only || !self.wal.writable {
            bail!(ReadOnly, "the store at {} is open read-only", self.dir.display());
        }
        Ok(())
    }

    fn lock(&self) -> Result<FileLock<'_>> {
        FileLock::exclusive(&self.wal.file).map_err(|e| Error::io("cannot lock", &self.wal.path, e))
    }

    /// Runs a mutation with the state locked, the store locked and the state caught up.
    /// If it fails part-way the state is reloaded from the files on next use.
    fn mutate<T>(&self, f: impl FnOnce(&Inner, &mut State) -> Result<T>) -> Result<T> {
        self.writable()?;
        let mut st: RwLockWriteGuard<State> = self.state.write().unwrap();
        let _lock = self.lock()?;
        self.catch_up(&mut st)?;
        let result = f(self, &mut st);
        if result.is_err() {
            // Memory may be ahead of the files, or behind a record that was committed but
            // not applied: rebuild from the files (redoing that record) on next use.
            st.loaded = false;
        }
        if result.is_ok() && st.wal_end > CHECKPOINT_BYTES {
            self.checkpoint(&mut st, false)?;
        }
        result
    }

    /// Appends the record: from here on the operation has happened, and readers in other
    /// handles hold off until `finish` (the change counter is odd in between).
    fn commit(&self, st: &mut State, op: &Op) -> Result<()> {
        st.wal_end = self.wal.append(st.wal_end, st.generation, &op.encode())?;
        self.wal.begin_change();
        Ok(())
    }

    /// Records that the operation's effects are complete and updates the catalogue.
    fn finish(&self, st: &mut State, op: &Op) -> Result<()> {
        apply_to_catalogue(&mut st.cat, op).map_err(|m| Error::corrupt(&self.wal.path, m))?;
        self.wal.mark_applied(st.wal_end);
        st.seen_counter = self.wal.change_counter();
        Ok(())
    }

    /// Commits an operation whose file effects are renames and removals (save, compact,
    /// drop, rename, reset) and applies them with the same code recovery uses.
    fn install(&self, st: &mut State, op: Op) -> Result<()> {
        self.sync_before_install(&op)?;
        self.commit(st, &op)?;
        self.sync_record()?;
        self.redo(&op)?;
        match &op {
            Op::ZSave { name, keep_bitmap: true, .. } => {
                // compressed arrays: the same rows rewritten; the bitmap stays
                self.files.forget(name);
                st.dirty.insert(crate::compress::file_name(name));
            }
            Op::Save { name, .. } | Op::Compact { name, .. } | Op::Drop { name } | Op::ZSave { name, .. } | Op::SegInstall { name, .. } => {
                self.files.forget(name);
                st.bitmaps.remove(name);
                st.legacy.remove(name);
                st.dirty.insert(data_file(name));
                st.dirty.insert(crate::compress::file_name(name)); // compressed arrays
                if let Op::SegInstall { manifest, .. } = &op {
                    st.dirty.insert(crate::segments::manifest_file(name));
                    st.dirty.insert(crate::segments::dir_name(name));
                    if let Ok(m) = crate::segments::Manifest::parse(manifest, name) {
                        st.dirty.extend(m.segments.into_iter().map(|s| s.file));
                    }
                }
            }
            Op::Rename { from, to, .. } => {
                self.files.forget(from);
                self.files.forget(to);
                st.legacy.remove(to);
                if let Some(b) = st.bitmaps.remove(from) {
                    st.bitmaps.insert(to.clone(), b);
                    st.dirty.insert(bitmap_file(to));
                }
                if st.legacy.remove(from) {
                    st.legacy.insert(to.clone());
                }
                st.dirty.insert(data_file(to));
                st.dirty.insert(crate::compress::file_name(to)); // compressed arrays
            }
            Op::Reset => {
                self.files.forget_all();
                st.bitmaps.clear();
                st.legacy.clear();
            }
            _ => unreachable!("install takes file-replacing operations"),
        }
        self.finish(st, &op)
    }

    /// Logs new bytes for `runs` of the data file, then writes them in place.
    fn replace(&self, st: &mut State, name: &str, runs: Vec<(u64, u64)>, payload: Vec<u8>) -> Result<()> {
        let z = {
            let a = array(st, name)?;
            self.zfile(&a)?
        };
        if let Some(z) = z {
            return self.z_replace(st, name, &z, &runs, &payload); // compressed arrays
        }
        if st.cat[name].segmented {
            let set = self.files.segmented(name, &st.cat[name])?;
            let op = Op::Replace { name: name.into(), modified_us: now_us(), runs, payload };
            self.commit(st, &op)?;
            if let Op::Replace { runs, payload, .. } = &op {
                set.write_runs(runs, payload)?;
            }
            st.dirty.extend(set.segs.iter().map(|s| s.rel.clone()));
            return self.finish(st, &op);
        }
        let entry_bytes = st.cat[name].nbytes();
        let df = self.files.get(name, entry_bytes)?;
        let op = Op::Replace { name: name.into(), modified_us: now_us(), runs, payload };
        self.commit(st, &op)?;
        if let Op::Replace { runs, payload, .. } = &op {
            df.write_runs(self.files.writable(), runs, payload)?;
        }
        st.dirty.insert(data_file(name));
        self.finish(st, &op)
    }

    /// Writes changed words of a header-layout bitmap file in place.
    fn write_bitmap_words(&self, name: &str, bm: &Bitmap, changed: &[usize]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let path = self.dir.join(bitmap_file(name));
        let f = files::open(&self.dir, &bitmap_file(name), true)?;
        let words = bm.words();
        for (a, b) in word_spans(changed, WORD_GAP) {
            let bytes = crate::bitmap::words_le_bytes(&words[a..=b]);
            f.write_all_at(&bytes, crate::bitmap::HEADER_LEN + a as u64 * 8).map_err(|e| Error::io("cannot write", &path, e))?;
        }
        f.write_all_at(&bm.header(), 0).map_err(|e| Error::io("cannot write", &path, e))
    }

    /// The file to read `a`'s rows from. An open plain file answers with one cache
    /// lookup and one `fstat` (a file truncated behind the store is reported, not read).
    fn rows_file(&self, a: &Array) -> Result<RowsFile> {
        if a.entry.segmented {
            return Ok(RowsFile::Segmented(self.files.segmented(a.name, a.entry)?));
        }
        let need = a.entry.nbytes();
        if let Some(df) = self.files.cached(a.name, need) {
            return Ok(RowsFile::Plain(df));
        }
        if let Some(z) = self.zfile(a)? {
            return Ok(RowsFile::Compressed(z)); // compressed arrays
        }
        Ok(RowsFile::Plain(self.files.get(a.name, need)?))
    }

    /// Copies the rows of `a` at logical indices `idx` into `out` (exactly `idx.len()` rows).
    fn read_rows(&self, a: &Array, idx: &[i64], out: &mut [u8]) -> Result<()> {
        a.require_rows()?;
        check_len("the output buffer", out.len(), idx.len() as u64 * a.row_bytes())?;
        if out.is_empty() {
            return a.resolve(idx).map(drop);
        }
        match self.rows_file(a)? {
            RowsFile::Plain(df) => a.gather(df.bytes(), idx, out),
            RowsFile::Compressed(z) => z.gather(&a.resolve(idx)?, out), // compressed arrays
            RowsFile::Segmented(s) => a.gather_segments(&s, idx, out),
        }
    }

    /// Copies logical rows `start..stop` of `a` into `out` (exactly `stop - start` rows).
    fn read_range(&self, a: &Array, start: u64, stop: u64, out: &mut [u8]) -> Result<()> {
        a.require_rows()?;
        let runs = a.range_runs(start, stop)?;
        check_len("the output buffer", out.len(), (stop - start) * a.row_bytes())?;
        match self.rows_file(a)? {
            RowsFile::Plain(df) => files::read_runs(&df, &runs, out),
            // compressed arrays: the chunks are decompressed in parallel
            RowsFile::Compressed(z) => z.read_runs(&compressed::row_runs(&runs, a.row_bytes()), out),
            RowsFile::Segmented(s) => s.read_runs(&runs, out),
        }
    }

    /// Drops the mapped pages of logical rows `start..stop` from the resident set.
    fn release_range(&self, a: &Array, start: u64, stop: u64) -> Result<()> {
        let runs = a.range_runs(start, stop)?;
        match self.rows_file(a)? {
            RowsFile::Plain(df) => runs.iter().for_each(|&(off, len)| df.release(off, len)),
            // compressed arrays are read through buffers, not mapped
            RowsFile::Compressed(_) => {}
            RowsFile::Segmented(s) => s.release_runs(&runs)?,
        }
        Ok(())
    }

    /// Copies all live rows of an array into `out` (exactly its logical size).
    /// Opens the array's data, checking that it holds every byte the catalogue says.
    fn check_data(&self, a: &Array) -> Result<()> {
        if self.zfile(a)?.is_some() {
            return Ok(());
        }
        if a.entry.segmented {
            return self.files.segmented(a.name, a.entry).map(|_| ());
        }
        self.files.get(a.name, a.entry.nbytes()).map(|_| ())
    }

    fn read_all(&self, a: &Array, out: &mut [u8]) -> Result<()> {
        let runs = if a.entry.shape.is_empty() { vec![(0, a.entry.nbytes())] } else { a.range_runs(0, a.rows())? };
        if let Some(z) = self.zfile(a)? {
            return z.read_runs(&compressed::row_runs(&runs, a.row_bytes()), out); // compressed arrays
        }
        if a.entry.segmented {
            return self.files.segmented(a.name, a.entry)?.read_runs(&runs, out);
        }
        let df = self.files.get(a.name, a.entry.nbytes())?;
        files::read_runs(&df, &runs, out)
    }

    /// Writes the live rows of an array to a new temporary file; returns its name.
    fn copy_live(&self, a: &Array) -> Result<String> {
        use std::io::Write;
        let runs = if a.entry.shape.is_empty() { vec![(0, a.entry.nbytes())] } else { a.range_runs(0, a.rows())? };
        if a.entry.segmented {
            let set = self.files.segmented(a.name, a.entry)?;
            let (f, tmp) = files::create_tmp(&self.dir)?;
            files::reserve(&f, runs.iter().map(|r| r.1).sum());
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            let path = self.dir.join(&tmp);
            set.for_each_piece(&runs, |b| w.write_all(b).map_err(|e| Error::io("cannot write", &path, e)))?;
            w.flush().map_err(|e| Error::io("cannot write", &path, e))?;
            return Ok(tmp);
        }
        let df = self.files.get(a.name, a.entry.nbytes())?;
        let (mut f, tmp) = files::create_tmp(&self.dir)?;
        files::reserve(&f, runs.iter().map(|r| r.1).sum());
        let src = df.bytes();
        for (off, len) in runs {
            f.write_all(&src[off as usize..(off + len) as usize]).map_err(|e| Error::io("cannot write", &self.dir.join(&tmp), e))?;
        }
        Ok(tmp)
    }

    /// Catches up and checkpoints (durably with `durable`).
    fn fold(&self, durable: bool) -> Result<()> {
        if self.read_only || !self.wal.writable {
            return Ok(());
        }
        let mut st = self.state.write().unwrap();
        let _lock = self.lock()?;
        self.catch_up(&mut st)?;
        self.checkpoint(&mut st, durable)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Acquire) {
            let _ = self.fold(false);
        }
    }
}
