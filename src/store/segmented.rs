//! Write paths of NumPack 0.7's segmented arrays (format in `src/segments.rs`); reads
//! dispatch from `mod.rs` through [`files::FileCache::segmented`].
//!
//! Crash safety follows the store's model. Appended rows go into the segment files first,
//! past the ends the manifest records (the last segment topped up, new files after it),
//! where no reader looks; the record then carries the whole new manifest, written
//! atomically after it (and rewritten by recovery). A compaction that keeps the array
//! segmented writes every new segment under a temporary name before its record, which
//! renames them into place.

use std::io::Write;
use std::os::unix::fs::FileExt;

use super::{files, Array, Inner};
use crate::error::{Error, Result};
use crate::metadata::Entry;
use crate::segments::{self, Manifest, Segment};

impl Inner {
    /// The array's manifest, checked against its catalogue entry.
    fn seg_manifest(&self, name: &str, entry: &Entry) -> Result<Manifest> {
        let m = segments::read_manifest(&self.dir, name)?;
        m.check_shape(entry.row_bytes(), entry.physical_rows()).map_err(|e| Error::corrupt(&self.dir.join(segments::manifest_file(name)), e))?;
        Ok(m)
    }

    /// Writes appended rows into the segment files as NumPack 0.7 would place them, and
    /// returns the new manifest's bytes (for the record) and the files written.
    pub(super) fn seg_write_rows(&self, name: &str, entry: &Entry, data: &[u8]) -> Result<(Vec<u8>, Vec<String>)> {
        let rb = entry.row_bytes();
        // Every segment is opened and checked first: rows are never added to an array
        // whose earlier rows are damaged.
        self.files.segmented(name, entry)?;
        let old = self.seg_manifest(name, entry)?;
        let rows = (data.len() as u64).checked_div(rb).unwrap_or(0);
        let (new, pieces) = old.plan_append(name, rb, rows, segments::target_bytes(rb));
        self.seg_dir(name)?;
        let mut at = 0usize;
        let mut written = Vec::new();
        for (i, first, n) in pieces {
            let seg = &new.segments[i];
            let bytes = &data[at..at + (n * rb) as usize];
            let path = self.dir.join(&seg.file);
            let file = if i < old.segments.len() {
                segments::open_confined(&self.dir, &seg.file, true)?
            } else {
                // A file of this name is no segment yet (left by an append cut short).
                crate::dirfd::open_in(&self.dir, &seg.file, crate::dirfd::Access::Truncate)?
                    .ok_or_else(|| Error::io("cannot create segment file", &path, std::io::ErrorKind::NotFound.into()))?
            };
            file.write_all_at(bytes, first * rb).map_err(|e| Error::io("cannot write", &path, e))?;
            at += bytes.len();
            written.push(seg.file.clone());
        }
        // Bytes past the old last segment's new end (left by an append cut short) go:
        // NumPack 0.7 appends at the end of the file, and would put its rows after them.
        if let Some(last) = old.segments.last() {
            let end = new.segments[old.segments.len() - 1].bytes;
            let path = self.dir.join(&last.file);
            let f = segments::open_confined(&self.dir, &last.file, true)?;
            if f.metadata().map_err(|e| Error::io("cannot stat", &path, e))?.len() > end {
                f.set_len(end).map_err(|e| Error::io("cannot truncate", &path, e))?;
            }
        }
        Ok((new.encode(), written))
    }

    /// Creates the array's segment directory if missing (refusing a link in its place).
    fn seg_dir(&self, name: &str) -> Result<()> {
        let d = self.dir.join(segments::dir_name(name));
        match std::fs::symlink_metadata(&d) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(Error::corrupt(&d, "it is not a directory (a link?); segment files must be inside the store")),
            Err(_) => std::fs::create_dir(&d).map_err(|e| Error::io("cannot create", &d, e)),
        }
    }

    /// Writes the live rows of a segmented array into new temporary files, one per
    /// segment of NumPack 0.7's size; returns their names and the manifest naming them
    /// at their final places.
    pub(super) fn seg_copy_live(&self, a: &Array) -> Result<(Vec<String>, Vec<u8>)> {
        let set = self.files.segmented(a.name, a.entry)?;
        let rb = a.row_bytes();
        let rows = a.rows();
        let per = (segments::target_bytes(rb) / rb.max(1)).max(1);
        let mut tmps: Vec<String> = Vec::new();
        let mut m = Manifest::default();
        let result = (|| {
            let mut start = 0;
            while start < rows {
                let n = per.min(rows - start);
                let runs = a.range_runs(start, start + n)?;
                let (f, tmp) = files::create_tmp(&self.dir)?;
                tmps.push(tmp.clone());
                files::reserve(&f, n * rb);
                let path = self.dir.join(&tmp);
                let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
                set.for_each_piece(&runs, |b| w.write_all(b).map_err(|e| Error::io("cannot write", &path, e)))?;
                w.flush().map_err(|e| Error::io("cannot write", &path, e))?;
                m.segments.push(Segment { file: segments::segment_file(a.name, m.segments.len()), rows: n, bytes: n * rb });
                start += n;
            }
            Ok(())
        })();
        if let Err(e) = result {
            for t in &tmps {
                let _ = files::remove_if_exists(&self.dir, t);
            }
            return Err(e);
        }
        Ok((tmps, m.encode()))
    }
}
