//! Memory-mapped views of an array's data file, for zero-copy access. A view owns its
//! mapping, so it stays valid after the store handle is closed or the array replaced.

use std::fs::OpenOptions;
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
}

pub(crate) fn map_writable(path: &Path, len: u64) -> Result<ViewMap> {
    if len == 0 {
        return Ok(ViewMap::Writable(None));
    }
    let f = OpenOptions::new().read(true).write(true).open(path).map_err(|e| Error::io("cannot open", path, e))?;
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
        (self.shape.iter().product::<u64>() * self.dtype.size() as u64) as usize
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
        }
    }

    /// The bytes, writable; `None` for a read-only view.
    pub fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        let len = self.len();
        match &mut self.map {
            ViewMap::Writable(Some(m)) => Some(&mut m[..len]),
            ViewMap::Writable(None) => Some(&mut []),
            ViewMap::Shared(_) | ViewMap::Owned(_) => None,
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
