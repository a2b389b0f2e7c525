//! Compressed arrays in a store (`data_<name>.npkz`, format in `src/compress.rs`): saving
//! compressed, and the write paths (append, replace, compaction) that go through the log.
//! Reads dispatch here from `mod.rs` through [`Inner::zfile`].
//!
//! Crash safety follows the store's model: new chunks and a new index are written past
//! the end of the `.npkz` file (only made visible by the record), then the record
//! carries the new 64-byte header, which is written in place after it (and rewritten by
//! recovery). A whole new file (save, compaction) is installed by rename, as for plain
//! arrays.

use std::sync::Arc;

use super::files;
use super::log::State;
use super::{Array, Inner, Store, array, check_len, check_shape, now_us};
use crate::compress::{self, Builder, Compression, CompressionInfo, SaveOptions, ZFile};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::metadata::Entry;
use crate::name::{self, bitmap_file};
use crate::wal::{BitmapPatch, Op};

/// A file is rewritten once superseded chunks exceed both this and its live bytes.
const RECLAIM_MIN: u64 = 8 << 20;

/// Physical row runs of byte runs (rows of `rb` bytes).
pub(super) fn row_runs(runs: &[(u64, u64)], rb: u64) -> Vec<(u64, u64)> {
    // Compressed rows are never empty (their header is refused otherwise); the guard
    // only keeps a zero from ever reaching the division.
    let rb = rb.max(1);
    runs.iter().map(|&(off, len)| (off / rb, len / rb)).collect()
}

impl Store {
    /// As [`Store::save`], with options: `compression: Some(..)` stores the array in
    /// compressed chunks (`data_<name>.npkz`, which NumPack does not read).
    pub fn save_with(&self, name: &str, dtype: DType, shape: &[u64], data: &[u8], opts: &SaveOptions) -> Result<()> {
        let Some(c) = opts.compression else { return self.save(name, dtype, shape, data) };
        name::validate(name)?;
        check_shape(shape)?;
        c.check()?;
        let nbytes = crate::metadata::shape_nbytes(dtype, shape).map_err(Error::invalid)?;
        check_len("data", data.len(), nbytes)?;
        self.inner.writable()?;
        let row_bytes = shape[1..].iter().product::<u64>() * dtype.size() as u64;
        let (f, tmp) = files::create_tmp(&self.inner.dir)?;
        let built = (|| {
            let mut b = Builder::new(&f, &self.inner.dir.join(&tmp), dtype, row_bytes, c)?;
            b.push(data)?;
            b.finish()
        })();
        drop(f);
        let result = built.and_then(|_| {
            let entry = Entry { dtype, shape: shape.to_vec(), modified_us: now_us(), segmented: false };
            self.inner.mutate(|inner, st| inner.install(st, Op::ZSave { name: name.into(), entry, tmp: tmp.clone(), keep_bitmap: false }))
        });
        if result.is_err() {
            let _ = files::remove_if_exists(&self.inner.dir, &tmp);
        }
        result
    }

    /// How array `name` is compressed; `None` when it is stored plain.
    pub fn compression(&self, name: &str) -> Result<Option<CompressionInfo>> {
        self.read(|st| {
            let a = array(st, name)?;
            match self.inner.zfile(&a)? {
                Some(z) => Ok(Some(z.info()?)),
                None => Ok(None),
            }
        })
    }
}

impl Inner {
    /// The array's compressed file, or `None` when it is stored plain.
    pub(super) fn zfile(&self, a: &Array) -> Result<Option<Arc<ZFile>>> {
        // A segmented array's catalogue entry names its manifest: no stray .npkz may
        // stand in for it.
        if a.entry.shape.is_empty() || a.entry.segmented {
            return Ok(None);
        }
        self.files.compressed(a.name, (a.entry.dtype, a.row_bytes(), a.entry.physical_rows()))
    }

    /// Replace: the chunks holding the byte runs are decompressed, patched and written
    /// anew past the end of the file.
    pub(super) fn z_replace(&self, st: &mut State, name: &str, z: &ZFile, runs: &[(u64, u64)], payload: &[u8]) -> Result<()> {
        let rb = z.header.row_bytes;
        let rpc = z.header.rows_per_chunk;
        let mut chunks: std::collections::BTreeMap<usize, Vec<u8>> = Default::default();
        let mut at = 0usize;
        for (start, n) in row_runs(runs, rb) {
            let mut r = start;
            while r < start + n {
                let c = (r / rpc) as usize;
                let take = ((c as u64 + 1) * rpc).min(start + n) - r;
                if let std::collections::btree_map::Entry::Vacant(v) = chunks.entry(c) {
                    v.insert(z.decompress(c)?);
                }
                let buf = chunks.get_mut(&c).unwrap();
                let from = ((r - c as u64 * rpc) * rb) as usize;
                let len = (take * rb) as usize;
                buf[from..from + len].copy_from_slice(&payload[at..at + len]);
                at += len;
                r += take;
            }
        }
        let rows = z.header.rows;
        self.z_commit(st, name, z, chunks.into_iter().collect(), rows, rows)
    }

    /// Append: the rows (with the old partial last chunk, rewritten) become new chunks.
    pub(super) fn z_append(&self, st: &mut State, name: &str, z: &ZFile, data: &[u8]) -> Result<()> {
        let rb = z.header.row_bytes;
        let rpc = z.header.rows_per_chunk;
        let old = z.header.rows;
        let new = old + data.len() as u64 / rb;
        let first = (old / rpc) as usize;
        let mut buf = if old % rpc != 0 { z.decompress(first)? } else { Vec::new() };
        buf.extend_from_slice(data);
        let changed: Vec<(usize, Vec<u8>)> = buf.chunks((rpc * rb) as usize).enumerate().map(|(k, c)| (first + k, c.to_vec())).collect();
        self.z_commit(st, name, z, changed, old, new)
    }

    /// Writes `changed` chunks and a new index, logs the new header (and the bitmap's
    /// growth when rows were added to an array with deletions), then applies both.
    fn z_commit(&self, st: &mut State, name: &str, z: &ZFile, changed: Vec<(usize, Vec<u8>)>, old: u64, new: u64) -> Result<()> {
        let header = z.stage(changed, new)?;
        let mut first = 0;
        let patch = match st.bitmaps.get_mut(name) {
            Some(Ok(b)) if new != old => {
                let b = Arc::make_mut(b);
                first = b.extend(new);
                Some(BitmapPatch { total: new, created: false, words: (first..b.words().len()).map(|w| (w as u64, b.words()[w])).collect() })
            }
            _ => None,
        };
        let op = Op::ZUpdate { name: name.into(), old_rows: old, new_rows: new, modified_us: now_us(), header: header.encode().to_vec(), bitmap: patch };
        self.commit(st, &op)?;
        compress::write_header(&z.path, &header.encode())?;
        self.files.forget(name);
        st.dirty.insert(compress::file_name(name));
        if new != old {
            if let Some(Ok(b)) = st.bitmaps.get(name) {
                if st.legacy.remove(name) {
                    self.write_bitmap_file(name, b)?;
                } else {
                    let changed: Vec<usize> = (first..b.words().len()).collect();
                    self.write_bitmap_words(name, b, &changed)?;
                }
                st.dirty.insert(bitmap_file(name));
            }
        }
        self.finish(st, &op)?;
        // Superseded chunks pile up with small appends: rewrite once they dominate.
        if file_len(&z.path)? > RECLAIM_MIN {
            let a = array(st, name)?;
            if let Some(z) = self.zfile(&a)? {
                let live: u64 = z.chunks.iter().map(|c| c.len).sum();
                if z.garbage()? > live.max(RECLAIM_MIN) {
                    return self.z_rewrite(st, name, true);
                }
            }
        }
        Ok(())
    }

    /// Rewrites a compressed array without its superseded chunks, and without its
    /// deleted rows unless `keep_rows` (then every physical row and the bitmap stay).
    pub(super) fn z_rewrite(&self, st: &mut State, name: &str, keep_rows: bool) -> Result<()> {
        let a = array(st, name)?;
        let Some(z) = self.zfile(&a)? else { return Err(Error::invalid(format!("array {name:?} is not compressed"))) };
        let mut entry = Entry { dtype: a.entry.dtype, shape: a.entry.shape.clone(), modified_us: now_us(), segmented: false };
        if !keep_rows {
            entry.shape = a.info().shape;
        }
        let tmp = self.z_copy(&z, if keep_rows { None } else { a.bitmap }, Compression { level: z.header.level })?;
        self.install(st, Op::ZSave { name: name.into(), entry, tmp, keep_bitmap: keep_rows })
    }

    /// Writes the live rows of a compressed array to a new compressed temporary file.
    pub(super) fn z_copy_live(&self, a: &Array, z: &ZFile, c: Compression) -> Result<String> {
        self.z_copy(z, a.bitmap, c)
    }

    /// Writes the rows of `z` (those live in `bitmap` when given) to a new compressed
    /// temporary file.
    fn z_copy(&self, z: &ZFile, bitmap: Option<&crate::bitmap::Bitmap>, c: Compression) -> Result<String> {
        let (f, tmp) = files::create_tmp(&self.dir)?;
        let path = self.dir.join(&tmp);
        let built = (|| {
            let mut b = Builder::new(&f, &path, z.header.dtype, z.header.row_bytes, c)?;
            let rpc = z.header.rows_per_chunk;
            let rb = z.rb();
            let n = z.chunks.len();
            const GROUP: usize = 32;
            for g in (0..n).step_by(GROUP) {
                use rayon::prelude::*;
                let ids: Vec<usize> = (g..(g + GROUP).min(n)).collect();
                let bufs: Vec<Vec<u8>> = ids.par_iter().map(|&i| z.decompress(i)).collect::<Result<_>>()?;
                for (&i, buf) in ids.iter().zip(&bufs) {
                    let first = i as u64 * rpc;
                    match bitmap {
                        None => b.push(buf)?,
                        Some(bm) => {
                            for (r, k) in bm.live_runs(first, first + z.chunks[i].rows as u64) {
                                let s = (r - first) as usize * rb;
                                b.push(&buf[s..s + k as usize * rb])?;
                            }
                        }
                    }
                }
            }
            b.finish()
        })();
        drop(f);
        match built {
            Ok(_) => Ok(tmp),
            Err(e) => {
                let _ = files::remove_if_exists(&self.dir, &tmp);
                Err(e)
            }
        }
    }

    /// Every physical row of a compressed array, for a read-only view.
    pub(super) fn z_view_bytes(&self, z: &ZFile) -> Result<Vec<u64>> {
        let len = (z.header.rows * z.header.row_bytes) as usize;
        let mut words = vec![0u64; len.div_ceil(8)];
        let bytes = words_as_bytes(&mut words);
        z.read_runs(&[(0, z.header.rows)], &mut bytes[..len])?;
        Ok(words)
    }

    /// Refuses what a compressed array cannot do.
    pub(super) fn z_refuse(name: &str, what: &str) -> Error {
        Error::new(
            crate::error::ErrorCode::Unsupported,
            format!("array {name:?} is stored compressed and cannot be {what}; save it without compression for that"),
        )
    }
}

fn file_len(path: &std::path::Path) -> Result<u64> {
    Ok(std::fs::metadata(path).map_err(|e| Error::io("cannot stat", path, e))?.len())
}

/// The bytes of a `u64` buffer (8-byte aligned storage for views).
pub(crate) fn words_as_bytes(words: &mut [u64]) -> &mut [u8] {
    let n = words.len() * 8;
    // SAFETY: u8 has no alignment or validity requirements; the length covers exactly
    // the words' storage, borrowed mutably for the result's lifetime.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, n) }
}

