//! Hugging Face safetensors interop: import the tensors of a `.safetensors` file into a
//! store, export arrays of a store to one, read a file's header without its data.
//!
//! # API
//! | function | does |
//! |---|---|
//! | [`info`] | reads and checks the header ([`FileInfo`]: tensors, `__metadata__`) |
//! | [`import`] | all or selected tensors → store arrays named by their keys |
//! | [`export`] | all or selected arrays → one `.safetensors` file (atomic) |
//!
//! The bytes of the header are handled by [`header`] (pure parse and encode).
//!
//! # Dtypes and names
//! `BOOL`, `U8`..`U64`, `I8`..`I64`, `F16`, `F32`, `F64` and `C64` are numpack's
//! bool, uint8..uint64, int8..int64, float16, float32, float64 and complex64, both ways.
//! complex128 has no safetensors dtype: exporting it is `UNSUPPORTED`. The format's
//! other dtypes (`BF16`, `F8_*`, `F6_*`, `F4`) are read in headers but importing them is
//! `UNSUPPORTED` (numpack holds no such type); the message names the tensor and dtype.
//!
//! A tensor's key becomes the array's name unchanged (`.` is fine in names, so
//! `model.layers.0.weight` stays as is). A key no array can be named (it holds `/`, `\`
//! or a control character, is empty, `.`, `..`, or longer than 242 bytes) makes the
//! import fail with `INVALID_NAME` naming it, before anything is written: select the
//! other tensors to import the rest. An array named `__metadata__` cannot be exported
//! (that key holds the file's metadata).
//!
//! 0-d tensors cannot be imported (`SHAPE_MISMATCH`: store arrays have at least one
//! dimension); arrays of NumPack stores that are 0-d export as 0-d tensors. Tensors with
//! a zero dimension import and export as empty arrays.
//!
//! # Guarantees
//! - **Hostile input.** The header length is checked against 100 MB and the file size
//!   before anything is allocated; the JSON is parsed strictly (no duplicate keys, known
//!   dtypes, shapes of at most 32 dimensions) and every tensor's byte range must equal
//!   its shape times its element size (checked arithmetic), the ranges covering the data
//!   buffer exactly, without gaps or overlaps. Anything else is `CORRUPT` or
//!   `UNSUPPORTED` naming the cause.
//! - **Streamed.** Data moves in blocks of about [`BLOCK_BYTES`] (whole rows: a single
//!   row larger than that is moved as one block).
//! - **Atomic import.** Every tensor is written to a temporary array; all are renamed
//!   into place once all are in, so a failure or cancellation leaves the store as it was.
//! - **Atomic export.** The file is written next to the target, synced and renamed over
//!   it. Deleted rows are left out (arrays export their logical rows). Tensors are laid
//!   out by decreasing element size then name, as the reference writer does, so each is
//!   aligned to its element size in the file.
//! - **Progress.** [`import`] and [`export`] take a [`Progress`] callback called with
//!   `(bytes of tensor data done, bytes in all)` as in [`crate::npy`]; `false` cancels
//!   (`CANCELLED`), leaving nothing half-done.

pub mod header;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{bail, Error, ErrorCode, Result};
use crate::npy::{self, Meter, TempFile, BLOCK_BYTES};
use crate::package::Progress;
use crate::store::Store;
pub use header::{Header, TensorEntry};

/// What [`info`] reads from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub header: Header,
    /// Bytes of JSON (`N`, padding included).
    pub header_len: u64,
    /// Where the data buffer starts: `8 + N`. Tensor offsets are relative to it.
    pub data_offset: u64,
    pub file_size: u64,
}

/// Options of [`import`].
#[derive(Clone, Debug, Default)]
pub struct ImportOptions<'a> {
    /// The tensors to import, in this order; `None` imports all, in file order.
    pub names: Option<&'a [String]>,
    /// Replace existing arrays of the same names (else `ALREADY_EXISTS`).
    pub overwrite: bool,
}

/// Options of [`export`].
#[derive(Clone, Debug, Default)]
pub struct ExportOptions<'a> {
    /// The arrays to export; `None` exports all.
    pub names: Option<&'a [String]>,
    /// The file's `__metadata__` (written only when not empty).
    pub metadata: &'a [(String, String)],
    /// Replace an existing file at the target (else `ALREADY_EXISTS`).
    pub overwrite: bool,
}

fn open_read(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::new(ErrorCode::NotFound, format!("no file at {}", path.display())),
        _ => Error::io("cannot open", path, e),
    })
}

fn read_at(file: &File, buf: &mut [u8], at: u64, path: &Path) -> Result<()> {
    file.read_exact_at(buf, at).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::corrupt(path, "the file ended while being read (truncated meanwhile?)"),
        _ => Error::io("cannot read", path, e),
    })
}

fn info_of(file: &File, path: &Path) -> Result<FileInfo> {
    let file_size = file.metadata().map_err(|e| Error::io("cannot stat", path, e))?.len();
    if file_size < header::PREFIX_LEN {
        bail!(Corrupt, "{}: not a safetensors file: it is {file_size} bytes, shorter than the 8-byte header length", path.display());
    }
    let mut prefix = [0u8; 8];
    read_at(file, &mut prefix, 0, path)?;
    let n = header::header_len(prefix, file_size).map_err(|e| Error::new(e.code, format!("{}: {}", path.display(), e.message)))?;
    let mut json = vec![0u8; n as usize];
    read_at(file, &mut json, header::PREFIX_LEN, path)?;
    let data_offset = header::PREFIX_LEN + n;
    let header = header::parse(&json, file_size - data_offset).map_err(|e| Error::new(e.code, format!("{}: {}", path.display(), e.message)))?;
    Ok(FileInfo { header, header_len: n, data_offset, file_size })
}

/// Reads and checks the header of the `.safetensors` file at `path`; the data is not
/// read. Errors: `NOT_FOUND`, `CORRUPT` (see the module docs), `UNSUPPORTED` (unknown
/// dtype, more than 32 dimensions), `IO`.
pub fn info(path: impl AsRef<Path>) -> Result<FileInfo> {
    let path = path.as_ref();
    info_of(&open_read(path)?, path)
}

/// The tensors `names` selects (all when `None`), each once.
fn select<'a>(all: &'a [TensorEntry], names: Option<&[String]>, path: &Path) -> Result<Vec<&'a TensorEntry>> {
    let Some(names) = names else { return Ok(all.iter().collect()) };
    let by_name: HashMap<&str, &TensorEntry> = all.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut seen = HashSet::new();
    names
        .iter()
        .map(|n| {
            if !seen.insert(n.as_str()) {
                bail!(InvalidArgument, "tensor {n:?} is selected twice");
            }
            by_name.get(n.as_str()).copied().ok_or_else(|| {
                Error::new(ErrorCode::NotFound, format!("{} has no tensor {n:?} (it has {} tensors)", path.display(), all.len()))
            })
        })
        .collect()
}

/// Imports tensors of the `.safetensors` file at `path` into arrays of `store` named by
/// their keys, streamed; all or nothing (see the module docs). Returns the names
/// imported, in the order imported (file order, or `opts.names`' order).
///
/// Errors: `NOT_FOUND` (no file, or a selected tensor is not in it), `CORRUPT`,
/// `UNSUPPORTED` (dtype), `SHAPE_MISMATCH` (0-d tensor), `INVALID_NAME`,
/// `INVALID_ARGUMENT` (a tensor selected twice), `ALREADY_EXISTS` (without
/// `overwrite`), `CANCELLED`, `IO`, store errors.
pub fn import(store: &Store, path: impl AsRef<Path>, opts: &ImportOptions<'_>, progress: Option<Progress<'_>>) -> Result<Vec<String>> {
    let path = path.as_ref();
    let file = open_read(path)?;
    let info = info_of(&file, path)?;
    let chosen = select(&info.header.tensors, opts.names, path)?;
    for t in &chosen {
        if t.dtype.is_none() {
            bail!(
                Unsupported,
                "{}: tensor {:?} has dtype {}, which numpack cannot hold (it holds BOOL, U8-U64, I8-I64, F16, F32, F64, C64)",
                path.display(),
                t.name,
                t.dtype_name
            );
        }
        if t.shape.is_empty() {
            bail!(
                ShapeMismatch,
                "{}: tensor {:?} is 0-d (a scalar); store arrays need at least one dimension (leave it out of the selection)",
                path.display(),
                t.name
            );
        }
        npy::check_target(store, &t.name, opts.overwrite).map_err(|e| Error::new(e.code, format!("{}: tensor {:?}: {}", path.display(), t.name, e.message)))?;
    }
    npy::drop_orphan_imports(store);
    let total = chosen.iter().map(|t| t.nbytes()).sum();
    let mut meter = Meter::start(progress, total, "the safetensors import")?;
    let mut done: Vec<(String, String)> = Vec::new();
    let result = (|| {
        for t in &chosen {
            let dtype = t.dtype.expect("checked above");
            let row_bytes = t.shape[1..].iter().product::<u64>() * dtype.size() as u64;
            let tmp = npy::write_temp(store, dtype, &t.shape, |sink| {
                let rows = t.shape[0];
                if row_bytes == 0 {
                    return sink(&mut [], rows);
                }
                let block = (BLOCK_BYTES as u64 / row_bytes).clamp(1, rows.max(1));
                let mut buf = vec![0u8; (block * row_bytes) as usize];
                let mut row = 0;
                while row < rows {
                    let n = block.min(rows - row);
                    let out = &mut buf[..(n * row_bytes) as usize];
                    read_at(&file, out, info.data_offset + t.begin + row * row_bytes, path)?;
                    sink(out, n)?;
                    meter.advance(out.len() as u64)?;
                    row += n;
                }
                Ok(())
            })?;
            done.push((tmp, t.name.clone()));
        }
        meter.finish()
    })();
    if let Err(e) = result {
        for (tmp, _) in &done {
            let _ = store.drop_array(tmp);
        }
        return Err(e);
    }
    npy::install(store, &done, opts.overwrite)?;
    Ok(done.into_iter().map(|(_, name)| name).collect())
}

/// Exports arrays of `store` to a `.safetensors` file at `path`, streamed, atomically
/// (see the module docs). Returns the header written.
///
/// Errors: `ALREADY_EXISTS` (the file exists and not `overwrite`), `NOT_FOUND` (no such
/// array), `UNSUPPORTED` (complex128), `INVALID_NAME` (an array named `__metadata__`),
/// `INVALID_ARGUMENT` (an array selected twice, a metadata key given twice),
/// `DTYPE_MISMATCH`/`SHAPE_MISMATCH` (an array changed while being exported),
/// `CANCELLED`, `IO`, store errors.
pub fn export(store: &Store, path: impl AsRef<Path>, opts: &ExportOptions<'_>, progress: Option<Progress<'_>>) -> Result<Header> {
    let path = path.as_ref();
    if !opts.overwrite && fs::symlink_metadata(path).is_ok() {
        bail!(AlreadyExists, "{} already exists (export with overwrite to replace it)", path.display());
    }
    let mut keys = HashSet::new();
    for (k, _) in opts.metadata {
        if !keys.insert(k.as_str()) {
            bail!(InvalidArgument, "metadata key {k:?} is given twice");
        }
    }
    let names = match opts.names {
        Some(n) => n.to_vec(),
        None => store.names()?,
    };
    let mut seen = HashSet::new();
    let mut arrays = Vec::with_capacity(names.len());
    for name in names {
        if !seen.insert(name.clone()) {
            bail!(InvalidArgument, "array {name:?} is selected twice");
        }
        if name == header::METADATA_KEY {
            bail!(InvalidName, "an array named {name:?} cannot be exported: safetensors keeps that key for the file's metadata");
        }
        let info = store.info(&name)?;
        let Some(st) = info.dtype.safetensors_name() else {
            bail!(Unsupported, "array {name:?} is {}, which the safetensors format has no dtype for", info.dtype.numpy_name());
        };
        arrays.push((name, info, st));
    }
    // Larger elements first, then by name: every tensor stays aligned to its size.
    arrays.sort_by(|a, b| b.1.dtype.size().cmp(&a.1.dtype.size()).then_with(|| a.0.cmp(&b.0)));
    let specs: Vec<header::TensorSpec<'_>> = arrays
        .iter()
        .map(|(name, info, st)| {
            let nbytes = crate::metadata::checked_nbytes(info.dtype, &info.shape).ok_or_else(|| Error::invalid(format!("array {name:?} is too large")))?;
            Ok(header::TensorSpec { name, dtype_name: st, shape: &info.shape, nbytes })
        })
        .collect::<Result<_>>()?;
    let header::Encoded { prefix, offsets } = header::encode(&specs, opts.metadata)?;
    let total = specs.iter().map(|s| s.nbytes).sum();
    let mut meter = Meter::start(progress, total, "the safetensors export")?;
    let tmp = TempFile::new(path)?;
    let werr = |e| Error::io("cannot write", &tmp.path, e);
    let mut w = BufWriter::with_capacity(1 << 20, &tmp.file);
    w.write_all(&prefix).map_err(werr)?;
    for (name, info, _) in &arrays {
        if info.shape.is_empty() {
            let (_, data) = store.load(name)?;
            w.write_all(&data).map_err(werr)?;
            meter.advance(data.len() as u64)?;
            continue;
        }
        let rows = info.shape[0];
        let rb = info.row_bytes();
        if rb == 0 {
            continue;
        }
        let block = (BLOCK_BYTES as u64 / rb).clamp(1, rows.max(1));
        let mut buf = vec![0u8; (block.min(rows) * rb) as usize];
        let mut at = 0;
        while at < rows {
            let n = block.min(rows - at);
            let out = &mut buf[..(n * rb) as usize];
            store.read_range_once(name, info.dtype, &info.shape, at, at + n, out)?;
            w.write_all(out).map_err(werr)?;
            meter.advance(out.len() as u64)?;
            at += n;
        }
    }
    w.flush().map_err(werr)?;
    drop(w);
    meter.finish()?;
    if opts.overwrite {
        tmp.persist(path)?;
    } else {
        tmp.persist_new(path)?;
    }
    let tensors = arrays
        .iter()
        .zip(offsets)
        .map(|((name, info, st), (begin, end))| TensorEntry {
            name: name.clone(),
            dtype_name: st.to_string(),
            dtype: Some(info.dtype),
            shape: info.shape.clone(),
            begin,
            end,
        })
        .collect();
    Ok(Header { tensors, metadata: opts.metadata.to_vec() })
}
