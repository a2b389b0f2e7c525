//! Keeping a handle's in-memory state in step with the files: catching up with records
//! other handles appended, recovering after a crash, redoing a half-applied record, and
//! folding the log into `metadata.npkm` (a checkpoint). Every function here runs with the
//! handle's state locked for writing and the store's file lock held.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::sync::Arc;

use super::files::{self, remove_if_exists, write_tmp};
use super::Inner;
use crate::bitmap::{self, Bitmap};
use crate::error::{bail, Error, Result};
use crate::metadata::{self, Catalogue};
use crate::name::{bitmap_file, data_file};
use crate::segments;
use crate::wal::{self, BitmapPatch, Header, Op, HEADER_LEN};

/// What one handle knows of the store.
#[derive(Default)]
pub struct State {
    pub cat: Catalogue,
    /// Arrays that have a deletion bitmap; an array whose bitmap cannot be read keeps the
    /// error, so that only that array fails.
    pub bitmaps: HashMap<String, std::result::Result<Arc<Bitmap>, Error>>,
    /// Arrays whose bitmap file is in NumPack's legacy header-less layout.
    pub legacy: HashSet<String>,
    pub generation: u64,
    /// End of the last log record reflected in this state.
    pub wal_end: u64,
    /// The log's change counter when this state was last brought up to date.
    pub seen_counter: u64,
    /// False until loaded, and after a failure that may have left memory ahead of disk.
    pub loaded: bool,
    /// Files written since the last durable sync.
    pub dirty: HashSet<String>,
}

/// Applies a record's effect on the catalogue (the same code for live operations,
/// catching up and recovery).
pub fn apply_to_catalogue(cat: &mut Catalogue, op: &Op) -> std::result::Result<(), String> {
    let missing = |n: &str| format!("the log changes array {n:?}, which the catalogue does not have");
    match op {
        Op::Save { name, entry, .. } => {
            cat.insert(name.clone(), entry.clone());
        }
        Op::Append { name, new_rows, modified_us, .. } => {
            let e = cat.get_mut(name).ok_or_else(|| missing(name))?;
            if e.shape.is_empty() {
                return Err(format!("the log appends to 0-d array {name:?}"));
            }
            e.shape[0] = *new_rows;
            e.modified_us = *modified_us;
        }
        Op::Replace { name, modified_us, .. } | Op::Delete { name, modified_us, .. } => {
            cat.get_mut(name).ok_or_else(|| missing(name))?.modified_us = *modified_us;
        }
        Op::Compact { name, rows, modified_us, .. } | Op::SegInstall { name, rows, modified_us, .. } => {
            let e = cat.get_mut(name).ok_or_else(|| missing(name))?;
            if e.shape.is_empty() {
                return Err(format!("the log compacts 0-d array {name:?}"));
            }
            e.shape[0] = *rows;
            e.modified_us = *modified_us;
            e.segmented = matches!(op, Op::SegInstall { .. });
        }
        Op::SegAppend { name, new_rows, modified_us, .. } => {
            let e = cat.get_mut(name).ok_or_else(|| missing(name))?;
            if e.shape.is_empty() || !e.segmented {
                return Err(format!("the log appends segments to array {name:?}, which is not segmented"));
            }
            e.shape[0] = *new_rows;
            e.modified_us = *modified_us;
        }
        Op::Drop { name } => {
            cat.remove(name).ok_or_else(|| missing(name))?;
        }
        Op::Rename { from, to, modified_us, .. } => {
            let mut e = cat.remove(from).ok_or_else(|| missing(from))?;
            e.modified_us = *modified_us;
            cat.insert(to.clone(), e);
        }
        Op::Reset => cat.clear(),
        Op::Checkpoint { .. } => {}
        // compressed arrays
        Op::ZSave { name, entry, .. } => {
            cat.insert(name.clone(), entry.clone());
        }
        Op::ZUpdate { name, new_rows, modified_us, .. } => {
            let e = cat.get_mut(name).ok_or_else(|| missing(name))?;
            if e.shape.is_empty() {
                return Err(format!("the log changes 0-d array {name:?} as compressed"));
            }
            e.shape[0] = *new_rows;
            e.modified_us = *modified_us;
        }
    }
    check_sizes(cat, op)
}

/// A record's sizes must fit the entry it leaves behind: its shape has a byte size (no
/// product wraps), replaced runs lie inside the array's bytes and a bitmap covers exactly
/// its rows. A forged record that passes its CRC is stopped here, before anything is
/// written or allocated from its numbers.
fn check_sizes(cat: &Catalogue, op: &Op) -> std::result::Result<(), String> {
    let entry = |n: &str| cat.get(n).ok_or_else(|| format!("the log changes array {n:?}, which the catalogue does not have"));
    let sized = |n: &str| -> std::result::Result<u64, String> {
        let e = entry(n)?;
        metadata::shape_nbytes(e.dtype, &e.shape).map_err(|m| format!("the log gives array {n:?} an impossible size: {m}"))
    };
    let patch = |n: &str, p: &BitmapPatch| -> std::result::Result<(), String> {
        let rows = entry(n)?.physical_rows();
        if p.total != rows {
            return Err(format!("the log's bitmap of array {n:?} covers {} rows, the array has {rows}", p.total));
        }
        Ok(())
    };
    match op {
        Op::Save { name, .. } | Op::ZSave { name, .. } | Op::Compact { name, .. } | Op::SegInstall { name, .. } => {
            sized(name)?;
        }
        Op::Append { name, bitmap, .. } | Op::ZUpdate { name, bitmap, .. } | Op::SegAppend { name, bitmap, .. } => {
            sized(name)?;
            if let Op::ZUpdate { header, new_rows, .. } = op {
                let e = entry(name)?;
                let h = crate::compress::Header::decode(header).map_err(|m| format!("the log's compressed header of array {name:?}: {m}"))?;
                if (h.dtype, h.row_bytes, h.rows) != (e.dtype, e.row_bytes(), *new_rows) {
                    return Err(format!("the log's compressed header of array {name:?} disagrees with its shape {:?}", e.shape));
                }
            }
            if let Some(p) = bitmap {
                patch(name, p)?;
            }
        }
        Op::Delete { name, bitmap, .. } => {
            sized(name)?;
            patch(name, bitmap)?;
        }
        Op::Replace { name, runs, .. } => {
            let n = sized(name)?;
            for &(off, len) in runs {
                if off.checked_add(len).is_none_or(|end| end > n) {
                    return Err(format!("the log replaces bytes {off}+{len} of array {name:?}, which has {n}"));
                }
            }
        }
        Op::Drop { .. } | Op::Rename { .. } | Op::Reset | Op::Checkpoint { .. } => {}
    }
    Ok(())
}

/// Names whose data file may have been replaced or whose bitmap changed.
fn touched(op: &Op) -> Vec<&str> {
    match op {
        Op::Save { name, .. } | Op::Append { name, .. } | Op::Delete { name, .. } => vec![name],
        Op::Compact { name, .. } | Op::Drop { name } => vec![name],
        Op::Rename { from, to, .. } => vec![from, to],
        Op::Replace { .. } | Op::Reset | Op::Checkpoint { .. } => vec![],
        // compressed arrays
        Op::ZSave { name, .. } | Op::ZUpdate { name, .. } => vec![name],
        Op::SegAppend { name, .. } | Op::SegInstall { name, .. } => vec![name],
    }
}

/// Reads and fully checks an array's bitmap file; `None` when it has none.
fn read_bitmap(inner: &Inner, name: &str, total: u64) -> Result<Option<(Bitmap, bool)>> {
    let path = inner.dir.join(bitmap_file(name));
    let Some(bytes) = files::read(&inner.dir, &bitmap_file(name), crate::dirfd::ANY_SIZE)? else { return Ok(None) };
    let bm = Bitmap::decode(&bytes, total).map_err(|m| Error::corrupt(&path, m))?;
    let legacy = bytes.len() as u64 != bitmap::HEADER_LEN + bm.words().len() as u64 * 8;
    Ok(Some((bm, legacy)))
}

impl State {
    fn reload_bitmap(&mut self, inner: &Inner, name: &str) {
        self.bitmaps.remove(name);
        self.legacy.remove(name);
        let Some(entry) = self.cat.get(name) else { return };
        if entry.shape.is_empty() {
            return;
        }
        match read_bitmap(inner, name, entry.physical_rows()) {
            Ok(None) => {}
            Ok(Some((bm, legacy))) => {
                if legacy {
                    self.legacy.insert(name.to_string());
                }
                self.bitmaps.insert(name.to_string(), Ok(Arc::new(bm)));
            }
            Err(e) => {
                self.bitmaps.insert(name.to_string(), Err(e));
            }
        }
    }
}

impl Inner {
    /// Brings `st` up to date with the files. Cheap when nothing changed: one `fstat`.
    pub(super) fn catch_up(&self, st: &mut State) -> Result<()> {
        if !st.loaded {
            return self.reload(st);
        }
        let hdr = self.wal.read_header()?;
        if hdr.generation != st.generation {
            return self.reload(st);
        }
        if hdr.end == st.wal_end && hdr.applied_end == hdr.end {
            if hdr.change_counter % 2 == 1 {
                // Left odd by a writer killed after finishing its change: nothing to redo.
                // A read-only handle leaves it odd (and reads under the lock) until a
                // writer evens it.
                self.wal.mark_applied(hdr.applied_end);
            }
            st.seen_counter = self.wal.change_counter();
            return Ok(());
        }
        let scan = self.wal.scan(hdr.generation, st.wal_end, hdr.end)?;
        let mut changed: HashSet<String> = HashSet::new();
        for (op, _) in &scan.ops {
            apply_to_catalogue(&mut st.cat, op).map_err(|m| Error::corrupt(&self.wal.path, m))?;
            if matches!(op, Op::Reset) {
                st.bitmaps.clear();
                st.legacy.clear();
                self.files.forget_all();
            }
            changed.extend(touched(op).into_iter().map(String::from));
        }
        self.finish_pending(st, &hdr, &scan)?;
        // Bitmap files hold the newest state, so read them against the final catalogue.
        for name in changed {
            self.files.forget(&name);
            st.reload_bitmap(self, &name);
        }
        Ok(())
    }

    /// After a scan: drop damaged records (only a power loss leaves them) and redo the
    /// last record if its writer died before finishing it (we hold the lock, so no live
    /// writer is mid-operation).
    fn finish_pending(&self, st: &mut State, hdr: &Header, scan: &wal::Scan) -> Result<()> {
        if scan.valid_end < hdr.end && self.wal.writable {
            self.wal.set_end(scan.valid_end);
        }
        if scan.valid_end > hdr.applied_end {
            let last = scan.ops.iter().rev().map(|(op, _)| op).find(|op| !matches!(op, Op::Checkpoint { .. }));
            if let Some(op) = last {
                if !self.wal.writable {
                    bail!(
                        NeedsRecovery,
                        "a writer died in the middle of an operation on {} and this handle cannot write to repair it; open the store once with write access",
                        self.dir.display()
                    );
                }
                self.check_backed(st, op)?;
                self.redo(op)?;
                for name in touched(op) {
                    self.files.forget(name);
                    st.reload_bitmap(self, name);
                }
            }
            self.wal.mark_applied(scan.valid_end);
        }
        st.wal_end = scan.valid_end;
        st.seen_counter = self.wal.change_counter();
        Ok(())
    }

    /// Before redoing a record that rebuilds a bitmap (sized by the array's rows), checks
    /// that the array's data file really holds those rows: a forged row count must not
    /// size an allocation. (A compressed update's new header is checked once written, by
    /// its redo.)
    fn check_backed(&self, st: &State, op: &Op) -> Result<()> {
        let name = match op {
            Op::Append { name, bitmap: Some(_), .. } | Op::SegAppend { name, bitmap: Some(_), .. } | Op::Delete { name, .. } => name,
            _ => return Ok(()),
        };
        let Some(e) = st.cat.get(name) else { return Ok(()) };
        if let Op::SegAppend { manifest, .. } = op {
            // The redo installs the logged manifest: it must describe the rows, and its
            // segment files (written before the record) must hold their bytes.
            let m = segments::Manifest::parse(manifest, name).map_err(|m| Error::corrupt(&self.wal.path, format!("a record's manifest: {m}")))?;
            m.check_shape(e.row_bytes(), e.physical_rows()).map_err(|m| Error::corrupt(&self.wal.path, format!("a record's manifest: {m}")))?;
            files::SegSet::open(&self.dir, &m, false)?;
            return Ok(());
        }
        if e.segmented {
            let m = segments::read_manifest(&self.dir, name)?;
            m.check_shape(e.row_bytes(), e.physical_rows()).map_err(|m| Error::corrupt(&self.dir.join(segments::manifest_file(name)), m))?;
            files::SegSet::open(&self.dir, &m, false)?;
            return Ok(());
        }
        if self.files.compressed(name, (e.dtype, e.row_bytes(), e.physical_rows()))?.is_none() {
            self.files.get(name, e.nbytes())?;
        }
        Ok(())
    }

    /// Rebuilds the state from `metadata.npkm` and the whole log, initialising a new store
    /// and recovering from a crash as needed.
    pub(super) fn reload(&self, st: &mut State) -> Result<()> {
        st.loaded = false;
        self.files.forget_all();
        let meta_path = self.dir.join(metadata::FILE_NAME);
        if !self.wal.initialised()? {
            self.initialise()?;
        }
        let hdr = self.wal.read_header()?;
        let meta = files::read(&self.dir, metadata::FILE_NAME, crate::dirfd::ANY_SIZE)?
            .ok_or_else(|| Error::corrupt(&meta_path, "the file is missing but the store's log exists"))?;
        let fp = wal::fingerprint(&meta);
        let mut cat = metadata::decode(&meta).map_err(|m| Error::corrupt(&meta_path, m))?;
        let scan = self.wal.scan(hdr.generation, HEADER_LEN, hdr.end)?;
        let last_checkpoint = match scan.ops.last() {
            Some((Op::Checkpoint { base }, _)) => Some(*base),
            _ => None,
        };
        *st = State { generation: hdr.generation, dirty: std::mem::take(&mut st.dirty), ..State::default() };
        if last_checkpoint == Some(fp) {
            // Killed after renaming the new catalogue into place: finish the checkpoint.
            st.cat = cat;
            st.wal_end = scan.valid_end;
            if self.wal.writable {
                self.start_generation(st, fp)?;
            }
        } else if fp == hdr.base {
            for (op, _) in &scan.ops {
                apply_to_catalogue(&mut cat, op).map_err(|m| Error::corrupt(&self.wal.path, m))?;
            }
            st.cat = cat;
            self.finish_pending(st, &hdr, &scan)?;
        } else {
            // metadata.npkm was rewritten by another program (NumPack itself, say): it is the
            // truth, and records written against the old catalogue no longer apply.
            st.cat = cat;
            st.wal_end = scan.valid_end;
            if self.wal.writable {
                self.start_generation(st, fp)?;
            }
        }
        self.load_bitmaps(st);
        st.seen_counter = self.wal.change_counter();
        st.loaded = true;
        if self.wal.writable && !self.read_only {
            files::remove_orphan_tmps(&self.dir)?;
        }
        Ok(())
    }

    fn load_bitmaps(&self, st: &mut State) {
        let names: Vec<String> = st.cat.keys().cloned().collect();
        for name in names {
            st.reload_bitmap(self, &name);
        }
    }

    /// First open of a directory: write an empty catalogue unless there is one already
    /// (a NumPack store), then the log header.
    fn initialise(&self) -> Result<()> {
        if !self.wal.writable {
            bail!(StoreNotFound, "{} is not a numpack store", self.dir.display());
        }
        let meta_path = self.dir.join(metadata::FILE_NAME);
        let meta = match files::read(&self.dir, metadata::FILE_NAME, crate::dirfd::ANY_SIZE)? {
            Some(b) => b,
            None => {
                let strays = fs::read_dir(&self.dir)
                    .map_err(|e| Error::io("cannot list", &self.dir, e))?
                    .flatten()
                    .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("data_")))
                    .count();
                if strays > 0 {
                    return Err(Error::corrupt(
                        &meta_path,
                        format!("the file is missing while the directory holds {strays} data files; refusing to open it as an empty store"),
                    ));
                }
                let bytes = metadata::encode(&Catalogue::new());
                let tmp = write_tmp(&self.dir, &bytes)?;
                files::rename(&self.dir, &tmp, metadata::FILE_NAME)?;
                bytes
            }
        };
        let hdr = Header { generation: 1, base: wal::fingerprint(&meta), change_counter: 0, applied_end: HEADER_LEN, end: HEADER_LEN };
        self.wal.truncate(HEADER_LEN)?;
        self.wal.write_header(&hdr)
    }

    /// Empties the log and names `base` as the catalogue it starts from.
    fn start_generation(&self, st: &mut State, base: (u64, u32)) -> Result<()> {
        let old = self.wal.read_header()?;
        let hdr = Header {
            // Both wrap: a header from elsewhere may hold any values, and they are only
            // compared for equality.
            generation: old.generation.wrapping_add(1),
            base,
            change_counter: (old.change_counter | 1).wrapping_add(1),
            applied_end: HEADER_LEN,
            end: HEADER_LEN,
        };
        self.wal.write_header(&hdr)?;
        self.wal.recycle()?;
        st.generation = hdr.generation;
        st.wal_end = HEADER_LEN;
        st.seen_counter = self.wal.change_counter();
        Ok(())
    }

    /// Folds the log into `metadata.npkm`. With `durable`, every file written since the
    /// last durable checkpoint is flushed to disk first, then the catalogue and the log.
    pub(super) fn checkpoint(&self, st: &mut State, durable: bool) -> Result<()> {
        if durable {
            for name in std::mem::take(&mut st.dirty) {
                sync_file(&self.dir.join(&name))?;
            }
            for name in self.writable_views.lock().unwrap().iter() {
                sync_file(&self.dir.join(name))?;
            }
        }
        let bytes = metadata::encode(&st.cat);
        let fp = wal::fingerprint(&bytes);
        let hdr = self.wal.read_header()?;
        if st.wal_end == HEADER_LEN && hdr.base == fp {
            self.wal.recycle()?;
            if durable {
                sync_file(&self.dir.join(metadata::FILE_NAME))?;
                self.wal.sync()?;
            }
            return Ok(());
        }
        let tmp = write_tmp(&self.dir, &bytes)?;
        if durable {
            sync_file(&self.dir.join(&tmp))?;
        }
        let op = Op::Checkpoint { base: fp };
        st.wal_end = self.wal.append(st.wal_end, st.generation, &op.encode())?;
        files::rename(&self.dir, &tmp, metadata::FILE_NAME)?;
        if durable {
            sync_dir(&self.dir)?;
        }
        self.start_generation(st, fp)?;
        if durable {
            self.wal.sync()?;
        }
        Ok(())
    }

    /// Completes a record's effects on the files. Idempotent: safe whether the record was
    /// applied fully, partly or not at all.
    pub(super) fn redo(&self, op: &Op) -> Result<()> {
        let dir = &self.dir;
        match op {
            Op::Save { name, tmp, .. } | Op::Compact { name, tmp, .. } => {
                if files::exists(dir, tmp) {
                    // Unlink first: renaming over an existing file makes ext4 (auto_da_alloc)
                    // start writing the new file back before rename returns, tripling the
                    // cost of a save. The record is committed, so a crash in between is
                    // finished by this same redo. The old file is held open and closed on
                    // another thread, where freeing its pages does not delay the caller.
                    let old = files::open(dir, &data_file(name), false).ok();
                    remove_if_exists(dir, &data_file(name))?;
                    files::rename(dir, tmp, &data_file(name))?;
                    files::close_in_background(old);
                }
                remove_if_exists(dir, &crate::compress::file_name(name))?; // compressed arrays
                segments::remove_all(dir, name)?;
                remove_if_exists(dir, &bitmap_file(name))
            }
            // --- compressed arrays ---
            Op::ZSave { name, tmp, keep_bitmap, .. } => {
                if files::exists(dir, tmp) {
                    remove_if_exists(dir, &crate::compress::file_name(name))?;
                    files::rename(dir, tmp, &crate::compress::file_name(name))?;
                }
                remove_if_exists(dir, &data_file(name))?;
                segments::remove_all(dir, name)?;
                if *keep_bitmap { Ok(()) } else { remove_if_exists(dir, &bitmap_file(name)) }
            }
            Op::ZUpdate { name, old_rows, header, bitmap, .. } => {
                let path = dir.join(crate::compress::file_name(name));
                crate::compress::write_header(&path, header)?;
                if bitmap.is_some() {
                    // The new header's rows size the bitmap: its index and chunks must be in
                    // the file (and their raw sizes possible) before anything is allocated.
                    crate::compress::ZFile::open(&path, name, false, None)?;
                }
                match bitmap {
                    Some(p) => {
                        let keep = p.words.first().map_or(0, |w| w.0 as usize);
                        self.redo_bitmap(name, p, &[Layout::HeaderPrefix { totals: [p.total, *old_rows], keep }, Layout::Legacy(*old_rows)])
                    }
                    None => Ok(()),
                }
            }
            // --- end compressed arrays ---
            Op::Append { name, old_rows, bitmap: Some(p), .. } => {
                // A header-layout file is patched in place, words first: whatever part was
                // written, the words before the first patched one are intact. A legacy file
                // is rewritten whole, so it is either untouched or replaced.
                let keep = p.words.first().map_or(0, |w| w.0 as usize);
                self.redo_bitmap(name, p, &[Layout::HeaderPrefix { totals: [p.total, *old_rows], keep }, Layout::Legacy(*old_rows)])
            }
            Op::Append { bitmap: None, .. } | Op::Checkpoint { .. } => Ok(()),
            Op::SegAppend { name, old_rows, manifest, bitmap, .. } => {
                segments::write_manifest(dir, name, manifest)?;
                match bitmap {
                    Some(p) => {
                        let keep = p.words.first().map_or(0, |w| w.0 as usize);
                        self.redo_bitmap(name, p, &[Layout::HeaderPrefix { totals: [p.total, *old_rows], keep }, Layout::Legacy(*old_rows)])
                    }
                    None => Ok(()),
                }
            }
            Op::SegInstall { name, tmps, manifest, .. } => self.redo_seg_install(name, tmps, manifest),
            Op::Delete { name, bitmap, .. } => self.redo_bitmap(name, bitmap, &[Layout::Header(bitmap.total), Layout::Legacy(bitmap.total)]),
            Op::Replace { name, runs, payload, .. } => {
                if !files::exists(dir, &data_file(name)) && files::exists(dir, &segments::manifest_file(name)) {
                    // A segmented array (the only kind with a manifest and no .npkd: a
                    // save over one removes the manifest once its .npkd is in place).
                    let m = segments::read_manifest(dir, name)?;
                    return files::SegSet::open(dir, &m, true)?.write_runs(runs, payload);
                }
                let path = dir.join(data_file(name));
                let f = files::open(dir, &data_file(name), true)?;
                files::write_runs(&f, &path, runs, payload)
            }
            Op::Drop { name } => {
                remove_if_exists(dir, &crate::compress::file_name(name))?; // compressed arrays
                segments::remove_all(dir, name)?;
                remove_if_exists(dir, &data_file(name))?;
                remove_if_exists(dir, &bitmap_file(name))
            }
            Op::Rename { from, to, had_bitmap, .. } => {
                if files::exists(dir, &data_file(from)) {
                    files::rename(dir, &data_file(from), &data_file(to))?;
                }
                // compressed arrays
                let (zf, zt) = (crate::compress::file_name(from), crate::compress::file_name(to));
                if files::exists(dir, &zf) {
                    remove_if_exists(dir, &data_file(to))?;
                    files::rename(dir, &zf, &zt)?;
                } else if !files::exists(dir, &data_file(from)) && files::exists(dir, &data_file(to)) {
                    // A plain array renamed: no stale compressed file may shadow it.
                    remove_if_exists(dir, &zt)?;
                }
                self.redo_seg_rename(from, to)?;
                if !had_bitmap {
                    remove_if_exists(dir, &bitmap_file(to))
                } else if files::exists(dir, &bitmap_file(from)) {
                    files::rename(dir, &bitmap_file(from), &bitmap_file(to))
                } else {
                    Ok(())
                }
            }
            Op::Reset => {
                for entry in fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?.flatten() {
                    let n = entry.file_name();
                    let n = n.to_string_lossy();
                    let compressed = n.starts_with("data_") && n.ends_with(".npkz"); // compressed arrays
                    let manifest = n.starts_with("data_") && n.ends_with(segments::EXTENSION);
                    if (n.starts_with("data_") && n.ends_with(".npkd")) || (n.starts_with("deleted_") && n.ends_with(".npkb")) || compressed || manifest {
                        remove_if_exists(dir, &n)?;
                    } else if let Some(array) = n.strip_prefix("data_").and_then(|r| r.strip_suffix("_segments")) {
                        segments::remove_all(dir, array)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Installs new segment files: each temporary file still there is renamed to its
    /// place (a redo finds the ones already moved at theirs), then segment files the new
    /// manifest does not list are removed, the manifest written and the other formats'
    /// files and the bitmap removed.
    fn redo_seg_install(&self, name: &str, tmps: &[String], manifest: &[u8]) -> Result<()> {
        let dir = &self.dir;
        let m = segments::Manifest::parse(manifest, name).map_err(|e| Error::corrupt(&self.wal.path, format!("a record's manifest: {e}")))?;
        if m.segments.len() != tmps.len() {
            return Err(Error::corrupt(
                &self.wal.path,
                format!("a segment install record lists {} files for the {} segments of its manifest", tmps.len(), m.segments.len()),
            ));
        }
        let sd = dir.join(segments::dir_name(name));
        if fs::symlink_metadata(&sd).is_ok_and(|md| !md.is_dir()) {
            fs::remove_file(&sd).map_err(|e| Error::io("cannot remove", &sd, e))?;
        }
        fs::create_dir_all(&sd).map_err(|e| Error::io("cannot create", &sd, e))?;
        for (tmp, seg) in tmps.iter().zip(&m.segments) {
            if files::exists(dir, tmp) {
                files::rename(dir, tmp, &seg.file)?;
            }
        }
        let keep: HashSet<&str> = m.segments.iter().map(|s| s.file.rsplit('/').next().unwrap_or("")).collect();
        for entry in fs::read_dir(&sd).map_err(|e| Error::io("cannot list", &sd, e))?.flatten() {
            let n = entry.file_name();
            if !keep.contains(n.to_string_lossy().as_ref()) {
                let p = entry.path();
                let is_dir = fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
                if is_dir { fs::remove_dir_all(&p) } else { fs::remove_file(&p) }.map_err(|e| Error::io("cannot remove", &p, e))?;
            }
        }
        segments::write_manifest(dir, name, manifest)?;
        remove_if_exists(dir, &data_file(name))?;
        remove_if_exists(dir, &crate::compress::file_name(name))?;
        remove_if_exists(dir, &bitmap_file(name))
    }

    /// Moves a segmented array's directory and manifest to a new name; the manifest's file
    /// names carry the array's, so it is rewritten. Each step is skipped when done.
    fn redo_seg_rename(&self, from: &str, to: &str) -> Result<()> {
        let dir = &self.dir;
        let (fd, td) = (segments::dir_name(from), segments::dir_name(to));
        if !files::exists(dir, &segments::manifest_file(from)) {
            if !files::exists(dir, &fd) && !files::exists(dir, &segments::manifest_file(to)) {
                // Not segmented: no stale segments of an older array may shadow `to`.
                segments::remove_all(dir, to)?;
            }
            return Ok(());
        }
        let m = segments::read_manifest(dir, from)?;
        if fs::symlink_metadata(dir.join(&fd)).is_ok() {
            segments::remove_all(dir, to)?;
            files::rename(dir, &fd, &td)?;
        }
        segments::write_manifest(dir, to, &m.renamed(from, to).encode())?;
        remove_if_exists(dir, &segments::manifest_file(from))
    }

    /// Rewrites a bitmap file from whatever state it is in (before or after the record,
    /// or with only some of the record's words written) plus the record's absolute words.
    /// `layouts` lists the states the file may be in.
    fn redo_bitmap(&self, name: &str, patch: &BitmapPatch, layouts: &[Layout]) -> Result<()> {
        let mut bm = Bitmap::all_live(patch.total);
        if !patch.created {
            let path = self.dir.join(bitmap_file(name));
            let bytes = files::read(&self.dir, &bitmap_file(name), crate::dirfd::ANY_SIZE)?
                .ok_or_else(|| Error::io("cannot read", &path, std::io::ErrorKind::NotFound.into()))?;
            let words = layouts.iter().find_map(|l| l.words(&bytes)).ok_or_else(|| {
                Error::corrupt(&path, format!("{} bytes fit none of the layouts {layouts:?}", bytes.len()))
            })?;
            let n = bm.words().len();
            let keep: Vec<(u64, u64)> = words.into_iter().take(n).enumerate().map(|(i, w)| (i as u64, w)).collect();
            bm.patch(patch.total, &keep).map_err(|m| Error::corrupt(&path, m))?;
        }
        bm.patch(patch.total, &patch.words).map_err(|m| Error::corrupt(&self.wal.path, m))?;
        self.write_bitmap_file(name, &bm)
    }

    /// Writes a whole bitmap file atomically (temporary file, flushed, then rename: a
    /// power loss must not leave the name pointing at a file whose contents never
    /// reached the disk).
    pub(super) fn write_bitmap_file(&self, name: &str, bm: &Bitmap) -> Result<()> {
        let (mut f, tmp) = files::create_tmp(&self.dir)?;
        let path = self.dir.join(&tmp);
        bm.write_to(&mut f).map_err(|e| Error::io("cannot write", &path, e))?;
        f.sync_data().map_err(|e| Error::io("cannot sync", &path, e))?;
        files::rename(&self.dir, &tmp, &bitmap_file(name))
    }

    /// Before a file-replacing record is logged: flushes the directory, so that the
    /// temporary files the record installs are named on disk whenever the record is
    /// (else a replay after a power loss would find no file to install and leave the
    /// old one under the new entry). Their contents are not flushed: that would cost a
    /// full write-back of every saved array (a 38 MB save took 7 times as long with it), and
    /// contents written since the last sync are what a power loss may lose anyway.
    pub(super) fn sync_before_install(&self, op: &Op) -> Result<()> {
        match op {
            Op::Save { .. } | Op::Compact { .. } | Op::ZSave { .. } | Op::SegInstall { .. } => sync_dir(&self.dir),
            _ => Ok(()),
        }
    }

    /// After a file-replacing record is logged and before any file is renamed or removed
    /// on its account: flushes the record, so that a power loss never keeps the renames
    /// and loses the record (leaving the old catalogue describing the new files).
    pub(super) fn sync_record(&self) -> Result<()> {
        self.wal.sync_data()
    }
}

/// A state a bitmap file may be in when a record touching it is redone. Sizes alone are
/// ambiguous (a header plus `n` words is as long as `n + 2` header-less words), so the
/// header layout must also carry a matching row count.
#[derive(Debug)]
enum Layout {
    /// Header layout for exactly this many rows.
    Header(u64),
    /// NumPack's header-less layout for this many rows.
    Legacy(u64),
    /// Header layout saying one of `totals` rows, of which only the first `keep` words are
    /// trusted (a patch in progress).
    HeaderPrefix { totals: [u64; 2], keep: usize },
}

impl Layout {
    fn words(&self, bytes: &[u8]) -> Option<Vec<u64>> {
        let words = |body: &[u8]| body.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>();
        let says = |t: u64| bytes.len() >= 16 && bytes[..8] == t.to_le_bytes();
        let n = |t: u64| t.div_ceil(64) as usize;
        match *self {
            Layout::Header(t) => (bytes.len() == 16 + n(t) * 8 && says(t)).then(|| words(&bytes[16..])),
            Layout::Legacy(t) => (bytes.len() == n(t) * 8).then(|| words(bytes)),
            Layout::HeaderPrefix { totals, keep } => {
                (bytes.len() >= 16 + keep * 8 && totals.iter().any(|&t| says(t))).then(|| words(&bytes[16..16 + keep * 8]))
            }
        }
    }
}

fn sync_dir(dir: &std::path::Path) -> Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("cannot sync directory", dir, e))
}

fn sync_file(path: &std::path::Path) -> Result<()> {
    // Not through a link, and never blocking on a FIFO planted in the store.
    match crate::dirfd::open_path(path, crate::dirfd::Access::Read)? {
        Some(f) => f.sync_all().map_err(|e| Error::io("cannot sync", path, e)),
        None => Ok(()),
    }
}
