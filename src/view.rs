//! Memory-mapped views of an array's data file, for zero-copy access. A view owns its
//! mapping, so it stays valid after the store handle is closed or the array replaced.

use std::path::Path;
use std::sync::Arc;

use memmap2::{MmapMut, MmapOptions, MmapRaw};

use crate::dtype::DType;
use crate::error::{Error, Result};

pub enum ViewMap {
    /// A mapping shared with the store's cache, used read-only (`None` for an empty array).
    Shared(Option<Arc<MmapRaw>>),
    Writable(Option<MmapMut>),
    /// A compressed array's rows, decompressed into memory (8-byte aligned words).
    Owned(Vec<u64>),
    /// A segmented array's segment files mapped back to back into one reserved range.
    Joined(Joined),
}

/// One address range holding the segment files of a segmented array, each mapped at its
/// place (`MAP_FIXED` over a reservation), so a view of such an array is zero-copy like
/// any other. Possible when every segment but the last holds a whole number of pages.
pub struct Joined {
    ptr: *mut libc::c_void,
    reserved: usize,
}

// SAFETY: the range is only read, through shared read-only mappings that live as long as
// the value; no thread-affine state is involved.
unsafe impl Send for Joined {}
unsafe impl Sync for Joined {}

impl Drop for Joined {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the range this value reserved and owns.
        unsafe { libc::munmap(self.ptr, self.reserved) };
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

/// The bytes of a segmented array (`len` of them) as one view: segment files mapped back
/// to back when every segment but the last is a whole number of pages, else a copy in
/// memory (NumPack 0.7's usual segment sizes, 256 MiB rounded down to whole rows, are
/// page multiples only when the row size divides them).
pub(crate) fn join_segments(set: &crate::store::SegSet, len: u64) -> Result<ViewMap> {
    let page = page_size();
    let aligned = set.segs.iter().all(|s| s.start % page == 0);
    if len == 0 {
        return Ok(ViewMap::Owned(Vec::new()));
    }
    if !aligned || set.total < len {
        let mut words = vec![0u64; len.div_ceil(8) as usize];
        let bytes = crate::store::words_as_bytes(&mut words);
        set.read_runs(&[(0, len)], &mut bytes[..len as usize])?;
        return Ok(ViewMap::Owned(words));
    }
    let reserved = len.div_ceil(page) * page;
    // SAFETY: a fresh private, inaccessible reservation; nothing else uses the range.
    let base = unsafe { libc::mmap(std::ptr::null_mut(), reserved as usize, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
    if base == libc::MAP_FAILED {
        return Err(Error::new(crate::error::ErrorCode::Io, format!("cannot reserve {reserved} bytes of address space: {}", std::io::Error::last_os_error())));
    }
    let joined = Joined { ptr: base, reserved: reserved as usize };
    for s in &set.segs {
        use std::os::fd::AsRawFd;
        // SAFETY: the target lies inside the reservation this function owns (`start` is a
        // page multiple and `start + len <= total`), so MAP_FIXED replaces only our pages.
        let at = unsafe { (base as *mut u8).add(s.start as usize) } as *mut libc::c_void;
        let got = unsafe { libc::mmap(at, s.len as usize, libc::PROT_READ, libc::MAP_SHARED | libc::MAP_FIXED, s.file.as_raw_fd(), 0) };
        if got == libc::MAP_FAILED {
            return Err(Error::io("cannot map", &s.path, std::io::Error::last_os_error()));
        }
    }
    Ok(ViewMap::Joined(joined))
}

pub(crate) fn map_writable(path: &Path, len: u64) -> Result<ViewMap> {
    if len == 0 {
        return Ok(ViewMap::Writable(None));
    }
    let f = crate::dirfd::open_path(path, crate::dirfd::Access::ReadWrite)?.ok_or_else(|| Error::io("cannot open", path, std::io::ErrorKind::NotFound.into()))?;
    let flen = f.metadata().map_err(|e| Error::io("cannot stat", path, e))?.len();
    if flen < len {
        return Err(Error::corrupt(path, format!("it has {flen} bytes but the catalogue needs {len}")));
    }
    // SAFETY: data files are never truncated in place, so the range stays backed.
    let m = unsafe { MmapOptions::new().len(len as usize).map_mut(&f) }.map_err(|e| Error::io("cannot map", path, e))?;
    Ok(ViewMap::Writable(Some(m)))
}

/// The physical rows of one array as they are in the file, plus the logical→physical
/// row map when rows have been deleted.
pub struct View {
    map: ViewMap,
    dtype: DType,
    shape: Vec<u64>,
    rows: u64,
    row_map: Option<Arc<Vec<u64>>>,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").field("dtype", &self.dtype).field("shape", &self.shape).field("rows", &self.rows).field("writable", &self.is_writable()).finish()
    }
}

impl View {
    pub(crate) fn new(map: ViewMap, dtype: DType, shape: Vec<u64>, rows: u64, row_map: Option<Arc<Vec<u64>>>) -> View {
        View { map, dtype, shape, rows, row_map }
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Physical shape: `shape()[0]` includes deleted rows.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// Live (logical) rows.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// For each logical row, its physical row; `None` when no row is deleted (identity).
    pub fn row_map(&self) -> Option<&[u64]> {
        self.row_map.as_ref().map(|m| m.as_slice())
    }

    pub fn is_writable(&self) -> bool {
        matches!(self.map, ViewMap::Writable(_))
    }

    /// Bytes of all physical rows.
    pub fn len(&self) -> usize {
        // Shapes were checked when read and the mapping against them when the view was
        // made; saturating keeps a wrapped product from ever naming fewer bytes than that.
        self.shape.iter().fold(self.dtype.size() as u64, |acc, &d| acc.saturating_mul(d)) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.map {
            // SAFETY: the store checked that the file backs the array's bytes when the view
            // was made, and data files are never truncated in place.
            ViewMap::Shared(Some(m)) => unsafe { std::slice::from_raw_parts(m.as_ptr(), self.len()) },
            ViewMap::Shared(None) => &[],
            ViewMap::Writable(m) => &m.as_deref().unwrap_or(&[])[..self.len()],
            ViewMap::Owned(w) => {
                // SAFETY: plain words viewed as bytes; `len()` bytes fit the words.
                let b = unsafe { std::slice::from_raw_parts(w.as_ptr() as *const u8, w.len() * 8) };
                &b[..self.len()]
            }
            // SAFETY: the segments mapped into the range cover the array's bytes (checked
            // against the manifest when mapped); segment files are never truncated in place.
            ViewMap::Joined(j) => unsafe { std::slice::from_raw_parts(j.ptr as *const u8, self.len()) },
        }
    }

    /// The bytes, writable; `None` for a read-only view.
    pub fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        let len = self.len();
        match &mut self.map {
            ViewMap::Writable(Some(m)) => Some(&mut m[..len]),
            ViewMap::Writable(None) => Some(&mut []),
            ViewMap::Shared(_) | ViewMap::Owned(_) | ViewMap::Joined(_) => None,
        }
    }

    /// Writes a writable view's changes to disk (`msync`); nothing to do for read-only.
    pub fn flush(&self) -> Result<()> {
        match &self.map {
            ViewMap::Writable(Some(m)) => m.flush().map_err(|e| Error::new(crate::error::ErrorCode::Io, format!("cannot flush view: {e}"))),
            _ => Ok(()),
        }
    }
}
