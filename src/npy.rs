//! NumPy `.npy` / `.npz` interop: import files into a store, export arrays to `.npy`,
//! and append rows in place to `.npy` files (the `npy-append-array` feature set).
//!
//! # API
//! | function | does |
//! |---|---|
//! | [`info`] | reads a header ([`NpyInfo`]: dtype, shape, order, offsets, `appendable`) |
//! | [`import`] / [`import_npz`] | file / every `.npz` member → store array(s) |
//! | [`export`] | store array → `.npy` (atomic, appendable) |
//! | [`create_appendable`] | new empty `.npy` of shape `(0, *row_shape)` |
//! | [`append`] / [`append_file`] | rows from memory / from another `.npy` → in place |
//! | [`make_appendable`] | one-time rewrite of a file that cannot grow in place |
//! | [`recover`] | repairs a file left by a crashed appender ([`Recovery`] says what it did) |
//!
//! # The `.npy` format
//! A file is the magic `\x93NUMPY`, a major and minor version byte, the length of the
//! header as a little-endian `u16` (version 1.0) or `u32` (2.0 and 3.0), then the header:
//! a Python dict literal `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`
//! padded with spaces and ended by `\n`, then the raw elements. Version 3.0 only differs
//! in allowing UTF-8 in the header. Every dtype of [`DType`] is read in either byte order
//! (`<`, `>`, `|`, `=`); object, string, structured, datetime and `float128`-like
//! descrs are refused with an error naming the descr.
//!
//! # Progress and cancellation
//! [`import`], [`import_npz`], [`export`], [`append_file`] and [`make_appendable`] take an
//! optional [`Progress`] callback, called with `(bytes of array data done, bytes in all)`
//! once at the start (`done` 0), after every block of at most [`BLOCK_BYTES`] (bigger
//! for wide Fortran-order rows), and at the end (`done == total`), on the calling thread.
//! Returning `false` cancels: the call returns [`ErrorCode::Cancelled`] and leaves nothing
//! half-done: an import leaves no array (and no temporary one), an export or
//! `make_appendable` leaves the old target file untouched and no temporary file, and
//! `append_file` cuts the file back to its old rows (a file it created with
//! `opts.create` stays, empty).
//!
//! # Guarantees
//! - **Streamed.** Import and export move data in blocks of [`BLOCK_BYTES`] whatever the
//!   file size. A Fortran-order file is converted to C order one block of output rows at a
//!   time: each block reads its rows' part of every column with one positioned read per
//!   column, so the file is read once and memory holds one block (see `fortran_to_c`).
//!   An `.npz` member in Fortran order is first extracted to a temporary file in the
//!   store's directory for that.
//! - **Atomic import.** An import is written under a temporary array name and renamed
//!   into place when complete, so readers never see half an array. With `overwrite`, the
//!   old array is dropped just before the rename (a crash between the two leaves the new
//!   data under the temporary name `.npy-import-<pid>-<n>`, never a mix). Temporary
//!   arrays of dead processes are dropped by the next import into the store.
//! - **Atomic export.** Exports are written to a temporary file next to the target, synced
//!   and renamed over it: the target is either the old file or the complete new one.
//! - **Appendable files.** Files this module writes (export, [`create_appendable`],
//!   [`make_appendable`]) reserve room in the header for a first dimension of up to
//!   `u64::MAX` rows, so [`append`] can grow the shape in place without moving the data.
//! - **In-place append, concurrency.** [`append`] writes the rows after the data, then
//!   rewrites the shape in the header, under an exclusive `flock` of the file; concurrent
//!   appenders (threads or processes) are serialised and lose no row. Operations that
//!   replace the file (export over it, [`make_appendable`], [`recover`]) hold the same lock
//!   while they rename, and appenders re-open the file when the path was replaced while
//!   they waited.
//! - **Recovery.** A crash between the data write and the header update leaves a header
//!   whose shape lags behind the data; a crash during the data write leaves a partial last
//!   row. [`append`] refuses such a file (`NEEDS_RECOVERY`) and [`recover`] repairs it:
//!   it sets the shape from the file size, dropping (or zero-filling) an incomplete row.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::dtype::DType;
use crate::error::{bail, Error, ErrorCode, Result};
use crate::lock::FileLock;
use crate::metadata::MAX_NDIM;
use crate::package::Progress;
use crate::store::{ArrayInfo, Store};

/// Bytes moved per block by import, export and rewrites.
pub const BLOCK_BYTES: usize = 4 << 20;
/// Longest header accepted when reading (NumPy writes a few hundred bytes at most).
pub const MAX_HEADER_LEN: u64 = 1 << 20;
const MAGIC: &[u8; 6] = b"\x93NUMPY";

static SEQ: AtomicU64 = AtomicU64::new(0);

/// What a `.npy` header says, plus what the file around it allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyInfo {
    /// Format version `(major, minor)`: (1, 0), (2, 0) or (3, 0).
    pub version: (u8, u8),
    pub dtype: DType,
    /// The descr as written, e.g. `"<f8"` or `">i4"`.
    pub descr: String,
    /// The elements are stored big-endian.
    pub big_endian: bool,
    pub fortran_order: bool,
    /// Shape from the header; empty for a 0-d array.
    pub shape: Vec<u64>,
    /// The header length field: bytes of the dict text, padding and `\n` included.
    pub header_len: u64,
    /// Where the elements start (preamble + `header_len`).
    pub data_offset: u64,
    /// Size of the file in bytes (for an `.npz` member, its uncompressed size).
    pub file_size: u64,
    /// The header has room for the first dimension to grow to `u64::MAX` and the array
    /// is C order with at least one dimension: [`append`] can add rows in place.
    pub appendable: bool,
}

impl NpyInfo {
    /// Bytes per row (one element for 0-d arrays).
    pub fn row_bytes(&self) -> u64 {
        self.shape.iter().skip(1).product::<u64>() * self.dtype.size() as u64
    }
    /// Bytes of data the shape calls for, if that fits in a `u64`.
    pub fn data_bytes(&self) -> Option<u64> {
        crate::metadata::checked_nbytes(self.dtype, &self.shape)
    }
    fn preamble(&self) -> u64 {
        self.data_offset - self.header_len
    }
}

/// What [`recover`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Rows the header claimed before.
    pub header_rows: u64,
    /// Rows the file holds now (and its header says).
    pub rows: u64,
    /// Bytes of an incomplete last row that were cut off.
    pub dropped_bytes: u64,
    /// Zero bytes added to complete an incomplete last row.
    pub zero_filled_bytes: u64,
    /// The file was rewritten (its header had no room for the corrected shape).
    pub rewritten: bool,
}

impl Recovery {
    /// The file needed no repair.
    pub fn was_clean(&self) -> bool {
        self.header_rows == self.rows && self.dropped_bytes == 0 && self.zero_filled_bytes == 0 && !self.rewritten
    }
}

/// Options of [`append`].
#[derive(Clone, Copy, Debug, Default)]
pub struct AppendOptions {
    /// `fsync` the data and the header before returning.
    pub sync: bool,
    /// Create the file (appendable, shape `(0, *row_shape)`) if it does not exist.
    pub create: bool,
}

// ---------------------------------------------------------------------------------
// Header parsing

/// A value of the header's Python literal.
#[derive(Debug)]
enum Lit {
    Str(String),
    Int(u64),
    Bool(bool),
    None,
    Seq(Vec<Lit>),
    Dict(Vec<(String, Lit, String)>),
}

struct Parser<'a> {
    s: &'a [char],
    pos: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_whitespace() {
            self.pos += 1;
        }
    }
    fn peek(&mut self) -> Option<char> {
        self.ws();
        self.s.get(self.pos).copied()
    }
    fn expect(&mut self, c: char) -> std::result::Result<(), String> {
        match self.peek() {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            Some(x) => Err(format!("expected {c:?} at character {} but found {x:?}", self.pos)),
            None => Err(format!("expected {c:?} but the header ended")),
        }
    }
    fn value(&mut self, depth: usize) -> std::result::Result<Lit, String> {
        if depth > 16 {
            return Err("the header nests too deeply".into());
        }
        match self.peek() {
            None => Err("the header ended where a value was expected".into()),
            Some('{') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some('}') {
                        self.pos += 1;
                        return Ok(Lit::Dict(items));
                    }
                    let Lit::Str(key) = self.value(depth + 1)? else { return Err("a dict key is not a string".into()) };
                    self.expect(':')?;
                    self.ws();
                    let start = self.pos;
                    let v = self.value(depth + 1)?;
                    let raw: String = self.s[start..self.pos].iter().collect();
                    items.push((key, v, raw));
                    match self.peek() {
                        Some(',') => self.pos += 1,
                        Some('}') => {}
                        _ => return Err(format!("expected ',' or '}}' at character {}", self.pos)),
                    }
                }
            }
            Some(open @ ('(' | '[')) => {
                let close = if open == '(' { ')' } else { ']' };
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        return Ok(Lit::Seq(items));
                    }
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(',') => self.pos += 1,
                        Some(c) if c == close => {}
                        _ => return Err(format!("expected ',' or {close:?} at character {}", self.pos)),
                    }
                }
            }
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                let mut out = String::new();
                loop {
                    let Some(&c) = self.s.get(self.pos) else { return Err("a string in the header is not closed".into()) };
                    self.pos += 1;
                    if c == q {
                        return Ok(Lit::Str(out));
                    }
                    if c == '\\' {
                        let Some(&e) = self.s.get(self.pos) else { return Err("a string in the header is not closed".into()) };
                        self.pos += 1;
                        out.push(e);
                    } else {
                        out.push(c);
                    }
                }
            }
            Some(c) if c.is_ascii_digit() => {
                let mut v: u64 = 0;
                while let Some(&d) = self.s.get(self.pos).filter(|d| d.is_ascii_digit()) {
                    v = v
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(d as u64 - '0' as u64))
                        .ok_or_else(|| "a number in the header exceeds 2^64-1".to_string())?;
                    self.pos += 1;
                }
                // Python 2 wrote longs as `3L`.
                if matches!(self.s.get(self.pos), Some('L') | Some('l')) {
                    self.pos += 1;
                }
                Ok(Lit::Int(v))
            }
            Some(c) if c.is_alphabetic() || c == '-' => {
                let start = self.pos;
                while self.pos < self.s.len() && (self.s[self.pos].is_alphanumeric() || self.s[self.pos] == '_' || self.s[self.pos] == '-') {
                    self.pos += 1;
                }
                let word: String = self.s[start..self.pos].iter().collect();
                match word.as_str() {
                    "True" => Ok(Lit::Bool(true)),
                    "False" => Ok(Lit::Bool(false)),
                    "None" => Ok(Lit::None),
                    _ => Err(format!("unexpected {word:?} in the header")),
                }
            }
            Some(c) => Err(format!("unexpected character {c:?} at character {}", self.pos)),
        }
    }
}

/// The dtype and byte order of a descr string.
fn parse_descr(descr: &str) -> std::result::Result<(DType, bool), String> {
    let (order, code) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let dtype = match code {
        "b1" | "?" => DType::Bool,
        "u1" | "B" => DType::Uint8,
        "u2" => DType::Uint16,
        "u4" => DType::Uint32,
        "u8" => DType::Uint64,
        "i1" | "b" => DType::Int8,
        "i2" => DType::Int16,
        "i4" => DType::Int32,
        "i8" => DType::Int64,
        "f2" | "e" => DType::Float16,
        "f4" => DType::Float32,
        "f8" => DType::Float64,
        "c8" => DType::Complex64,
        "c16" => DType::Complex128,
        _ => {
            let what = match code.chars().next() {
                Some('O') => "Python objects",
                Some('U') | Some('S') | Some('a') => "strings",
                Some('V') => "raw or structured records",
                Some('M') | Some('m') => "datetimes",
                Some('f') | Some('c') | Some('g') => "floats of a width numpack does not hold",
                _ => "an element type numpack does not hold",
            };
            return Err(format!("dtype descr {descr:?} ({what}) is not supported; numpack holds {}", supported_list()));
        }
    };
    Ok((dtype, order == '>'))
}

fn supported_list() -> String {
    DType::ALL.iter().map(|d| d.numpy_name()).collect::<Vec<_>>().join(", ")
}

/// Reads and parses the header from `r` (positioned at the start of the file).
/// `file_size` is the size the caller knows (file or member size). `origin` names the
/// file in errors.
fn read_header(r: &mut impl Read, file_size: u64, origin: &Path) -> Result<NpyInfo> {
    let truncated = |what: &str| Error::corrupt(origin, format!("not a complete .npy file: it ends inside the {what}"));
    let mut pre = [0u8; 10];
    read_full(r, &mut pre, origin)?.then_some(()).ok_or_else(|| truncated("preamble"))?;
    if &pre[..6] != MAGIC {
        return Err(Error::corrupt(origin, "not a .npy file: the magic string \\x93NUMPY is missing"));
    }
    let version = (pre[6], pre[7]);
    let (header_len, preamble) = match version.0 {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as u64, 10u64),
        2 | 3 => {
            let mut more = [0u8; 2];
            read_full(r, &mut more, origin)?.then_some(()).ok_or_else(|| truncated("preamble"))?;
            (u32::from_le_bytes([pre[8], pre[9], more[0], more[1]]) as u64, 12u64)
        }
        _ => bail!(Unsupported, "{}: .npy format version {}.{} is not supported (1.0, 2.0 and 3.0 are)", origin.display(), version.0, version.1),
    };
    if header_len > MAX_HEADER_LEN {
        return Err(Error::corrupt(origin, format!("the header claims {header_len} bytes (the limit is {MAX_HEADER_LEN})")));
    }
    let mut text = vec![0u8; header_len as usize];
    read_full(r, &mut text, origin)?.then_some(()).ok_or_else(|| truncated("header"))?;
    // Versions 1 and 2 are latin-1, version 3 UTF-8; the fields we accept are ASCII.
    let chars: Vec<char> = if version.0 == 3 {
        String::from_utf8(text).map_err(|_| Error::corrupt(origin, "the version 3.0 header is not UTF-8"))?.chars().collect()
    } else {
        text.iter().map(|&b| b as char).collect()
    };
    let mut p = Parser { s: &chars, pos: 0 };
    let dict = p.value(0).map_err(|m| Error::corrupt(origin, format!("bad header: {m}")))?;
    if p.peek().is_some() {
        return Err(Error::corrupt(origin, format!("bad header: unexpected text after the dict at character {}", p.pos)));
    }
    let Lit::Dict(items) = dict else { return Err(Error::corrupt(origin, "bad header: it is not a dict")) };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (key, value, raw) in items {
        match key.as_str() {
            "descr" => descr = Some((value, raw)),
            "fortran_order" => fortran = Some(value),
            "shape" => shape = Some(value),
            _ => return Err(Error::corrupt(origin, format!("bad header: unexpected key {key:?}"))),
        }
    }
    let (descr, raw) = descr.ok_or_else(|| Error::corrupt(origin, "bad header: no 'descr'"))?;
    let descr = match descr {
        Lit::Str(s) => s,
        _ => bail!(Unsupported, "{}: dtype descr {raw} (a structured dtype) is not supported; numpack holds {}", origin.display(), supported_list()),
    };
    let (dtype, big_endian) = parse_descr(&descr).map_err(|m| Error::new(ErrorCode::Unsupported, format!("{}: {m}", origin.display())))?;
    let fortran_order = match fortran {
        Some(Lit::Bool(b)) => b,
        _ => return Err(Error::corrupt(origin, "bad header: 'fortran_order' is missing or not True/False")),
    };
    let shape = match shape {
        Some(Lit::Seq(dims)) => dims
            .into_iter()
            .map(|d| match d {
                Lit::Int(v) => Ok(v),
                other => Err(Error::corrupt(origin, format!("bad header: shape entry {other:?} is not a non-negative integer"))),
            })
            .collect::<Result<Vec<u64>>>()?,
        _ => return Err(Error::corrupt(origin, "bad header: 'shape' is missing or not a tuple")),
    };
    if shape.len() > MAX_NDIM {
        bail!(Unsupported, "{}: {} dimensions exceed numpack's limit of {MAX_NDIM}", origin.display(), shape.len());
    }
    if crate::metadata::checked_nbytes(dtype, &shape).is_none() {
        return Err(Error::corrupt(origin, format!("the shape {shape:?} is too large")));
    }
    let mut info = NpyInfo {
        version,
        dtype,
        descr,
        big_endian,
        fortran_order,
        shape,
        header_len,
        data_offset: preamble + header_len,
        file_size,
        appendable: false,
    };
    info.appendable = !(info.shape.is_empty() || info.fortran_order && info.shape.len() > 1)
        && (dict_text(&info.descr, info.fortran_order, &info.shape, Some(u64::MAX)).len() as u64) < header_len;
    Ok(info)
}

/// Fills `buf`; `Ok(false)` when the input ends first.
fn read_full(r: &mut impl Read, buf: &mut [u8], origin: &Path) -> Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Decompression and checksum failures of .npz members.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => return Err(Error::corrupt(origin, e)),
            Err(e) => return Err(Error::io("cannot read", origin, e)),
        }
    }
    Ok(true)
}

/// The header dict, with the first dimension replaced by `first` if given.
fn dict_text(descr: &str, fortran: bool, shape: &[u64], first: Option<u64>) -> String {
    let dims: Vec<String> = shape.iter().enumerate().map(|(i, d)| if i == 0 { first.unwrap_or(*d) } else { *d }.to_string()).collect();
    let tuple = match dims.len() {
        0 => "()".to_string(),
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    format!("{{'descr': '{descr}', 'fortran_order': {}, 'shape': {tuple}, }}", if fortran { "True" } else { "False" })
}

/// A complete C-order header for `dtype`/`shape` with room for the first dimension to
/// grow to `u64::MAX`, padded so the data starts on a 64-byte boundary.
pub fn appendable_header(dtype: DType, shape: &[u64]) -> Vec<u8> {
    let descr = dtype.npy_descr();
    // Room for 20 digits plus one spare space, like npy-append-array (21 digits), so
    // either tool can grow files the other made.
    let room = dict_text(descr, false, shape, if shape.is_empty() { None } else { Some(u64::MAX) }).len() + 2;
    let (major, pre) = if room + 10 <= 0xffff { (1u8, 10usize) } else { (2u8, 12usize) };
    let total = (pre + room).div_ceil(64) * 64;
    let header_len = total - pre;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[major, 0]);
    if major == 1 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict_text(descr, false, shape, None).as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// Rewrites the header of `file` in place with the first dimension set to `rows`.
/// `Ok(false)` if the new text does not fit the existing header.
fn set_rows_in_place(file: &File, info: &NpyInfo, rows: u64, path: &Path) -> Result<bool> {
    let mut shape = info.shape.clone();
    shape[0] = rows;
    let text = dict_text(&info.descr, info.fortran_order, &shape, None);
    if text.len() as u64 + 1 > info.header_len {
        return Ok(false);
    }
    let mut buf = text.into_bytes();
    buf.resize(info.header_len as usize - 1, b' ');
    buf.push(b'\n');
    file.write_all_at(&buf, info.preamble()).map_err(|e| Error::io("cannot write the header of", path, e))?;
    Ok(true)
}

fn open_read(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::new(ErrorCode::NotFound, format!("no file at {}", path.display())),
        _ => Error::io("cannot open", path, e),
    })
}

/// Reads a file from a position with `pread`, leaving the file's cursor alone.
struct AtReader<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for AtReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn header_of(file: &File, path: &Path) -> Result<NpyInfo> {
    let size = file.metadata().map_err(|e| Error::io("cannot stat", path, e))?.len();
    let mut r = io::BufReader::new(AtReader { file, pos: 0 });
    read_header(&mut r, size, path)
}

/// Reads the header of the `.npy` file at `path`. Does not require the data to be
/// complete (compare `file_size` with `data_offset + data_bytes()`).
pub fn info(path: impl AsRef<Path>) -> Result<NpyInfo> {
    let path = path.as_ref();
    header_of(&open_read(path)?, path)
}

/// Checks that the data is exactly as long as the shape says.
fn check_complete(info: &NpyInfo, path: &Path) -> Result<()> {
    let want = info.data_bytes().and_then(|b| b.checked_add(info.data_offset)).unwrap_or(u64::MAX);
    if info.file_size < want {
        bail!(
            NeedsRecovery,
            "{} is truncated: its header's shape {:?} needs {want} bytes but the file has {}; recover it (drop or zero-fill the incomplete rows) first",
            path.display(),
            info.shape,
            info.file_size
        );
    }
    if info.file_size > want {
        bail!(
            NeedsRecovery,
            "{} has {} bytes after the data its header's shape {:?} describes (an appender crashed before updating the header?); recover it first",
            path.display(),
            info.file_size - want,
            info.shape
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Element conversion

/// Swaps each element (each component for complex types) of `buf` between byte orders.
fn swap_bytes(dtype: DType, buf: &mut [u8]) {
    let unit = match dtype {
        DType::Complex64 | DType::Complex128 => dtype.size() / 2,
        _ => dtype.size(),
    };
    if unit > 1 {
        buf.chunks_exact_mut(unit).for_each(|c| c.reverse());
    }
}

/// Rows per block for rows of `row_bytes` (at least one).
fn block_rows(row_bytes: u64) -> u64 {
    (BLOCK_BYTES as u64 / row_bytes.max(1)).max(1)
}

/// Reports progress to an optional callback; a `false` from it becomes `CANCELLED`.
pub(crate) struct Meter<'a> {
    cb: Option<Progress<'a>>,
    done: u64,
    total: u64,
    reported: Option<u64>,
    what: &'static str,
}

impl<'a> Meter<'a> {
    /// Reports `(0, total)`.
    pub(crate) fn start(cb: Option<Progress<'a>>, total: u64, what: &'static str) -> Result<Meter<'a>> {
        let mut m = Meter { cb, done: 0, total, reported: None, what };
        m.report()?;
        Ok(m)
    }

    fn report(&mut self) -> Result<()> {
        self.reported = Some(self.done);
        if let Some(cb) = self.cb.as_mut() {
            if !cb(self.done, self.total) {
                bail!(Cancelled, "{} cancelled by the progress callback", self.what);
            }
        }
        Ok(())
    }

    /// Counts `bytes` more done and reports.
    pub(crate) fn advance(&mut self, bytes: u64) -> Result<()> {
        self.done = (self.done + bytes).min(self.total);
        self.report()
    }

    /// Reports `(total, total)` unless that was the last report.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.done = self.total;
        if self.reported == Some(self.total) { Ok(()) } else { self.report() }
    }
}

/// Least bytes read per positioned read when converting Fortran order (see below).
const MIN_RUN_BYTES: usize = 16 << 10;
/// Most bytes of output rows held when converting Fortran order.
const MAX_TRANSPOSE_BYTES: usize = 64 << 20;

/// Converts the Fortran-order array of `file` (little- or big-endian) to C order, handing
/// `sink` consecutive blocks of native C-order rows.
///
/// Seen as raw elements, the data is a C-order matrix `M[r][i]` with `d0` columns, where
/// `i` is the first index and `r` the trailing indices in Fortran order. A block of
/// output rows `i0..i1` reads, for every `r`, the run `M[r][i0..i1]` with one positioned
/// read, and puts element `(r, i)` at row `i`, position `perm[r]` (the C-order position
/// of the trailing indices). So each block is one pass over all columns of the file, and
/// the file is read once in total. Blocks are [`BLOCK_BYTES`], grown (up to
/// [`MAX_TRANSPOSE_BYTES`]) so that each run is at least [`MIN_RUN_BYTES`] when rows are
/// wide. Memory: one block, one run and `perm` (one `usize` per element of a row).
fn fortran_to_c(info: &NpyInfo, file: &File, path: &Path, sink: &mut dyn FnMut(&mut [u8], u64) -> Result<()>) -> Result<()> {
    let es = info.dtype.size();
    let d0 = info.shape[0] as usize;
    let trailing = &info.shape[1..];
    let per_row: usize = trailing.iter().product::<u64>() as usize;
    // perm[r] for r in Fortran order of the trailing dims.
    let mut perm: Vec<usize> = Vec::with_capacity(per_row);
    let nd = trailing.len();
    let mut strides = vec![1usize; nd];
    for k in (0..nd.saturating_sub(1)).rev() {
        strides[k] = strides[k + 1] * trailing[k + 1] as usize;
    }
    let mut idx = vec![0u64; nd];
    for _ in 0..per_row {
        perm.push(idx.iter().zip(&strides).map(|(&i, &s)| i as usize * s).sum());
        for k in 0..nd {
            idx[k] += 1;
            if idx[k] < trailing[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    let row_bytes = per_row * es;
    let wide = (MIN_RUN_BYTES / es).min(MAX_TRANSPOSE_BYTES / row_bytes.max(1));
    let block = (block_rows(row_bytes as u64) as usize).max(wide).clamp(1, d0.max(1));
    let mut buf = vec![0u8; block * row_bytes];
    let mut run = vec![0u8; block * es];
    let mut i0 = 0usize;
    while i0 < d0 {
        let i1 = (i0 + block).min(d0);
        let out = &mut buf[..(i1 - i0) * row_bytes];
        let run = &mut run[..(i1 - i0) * es];
        for (r, &pos) in perm.iter().enumerate() {
            let at = info.data_offset + ((r * d0 + i0) * es) as u64;
            file.read_exact_at(run, at).map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => Error::corrupt(path, "the file ended while being read (truncated meanwhile?)"),
                _ => Error::io("cannot read", path, e),
            })?;
            for (k, e) in run.chunks_exact(es).enumerate() {
                let at = k * row_bytes + pos * es;
                out[at..at + es].copy_from_slice(e);
            }
        }
        if info.big_endian {
            swap_bytes(info.dtype, out);
        }
        sink(out, (i1 - i0) as u64)?;
        i0 = i1;
    }
    Ok(())
}

/// Feeds the data of a C-order array read from `r` to `sink` in native blocks.
fn stream_c(info: &NpyInfo, r: &mut impl Read, origin: &Path, sink: &mut dyn FnMut(&mut [u8], u64) -> Result<()>) -> Result<()> {
    let row_bytes = info.row_bytes();
    let rows = info.shape.first().copied().unwrap_or(1);
    if row_bytes == 0 {
        return sink(&mut [], rows);
    }
    let block = block_rows(row_bytes).min(rows.max(1));
    let mut buf = vec![0u8; (block * row_bytes) as usize];
    let mut done = 0;
    while done < rows {
        let n = block.min(rows - done);
        let out = &mut buf[..(n * row_bytes) as usize];
        if !read_full(r, out, origin)? {
            bail!(Corrupt, "{} is truncated: the data ends before row {} of {rows}", origin.display(), done + n);
        }
        if info.big_endian {
            swap_bytes(info.dtype, out);
        }
        sink(out, n)?;
        done += n;
    }
    Ok(())
}

/// Feeds the data of the `.npy` file `file` (complete, header read) to `sink` in C order.
fn stream_file(info: &NpyInfo, file: &File, path: &Path, sink: &mut dyn FnMut(&mut [u8], u64) -> Result<()>) -> Result<()> {
    if info.fortran_order && info.shape.len() > 1 && info.data_bytes().unwrap_or(0) > 0 {
        return fortran_to_c(info, file, path, sink);
    }
    let mut r = AtReader { file, pos: info.data_offset };
    stream_c(info, &mut r, path, sink)
}

// ---------------------------------------------------------------------------------
// Import

const TEMP_ARRAY_PREFIX: &str = ".npy-import-";

fn temp_array_name() -> String {
    format!("{TEMP_ARRAY_PREFIX}{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Drops temporary arrays left by imports whose process has died (checked through
/// `/proc/<pid>`; where that does not exist, nothing is dropped). Best effort: a
/// read-only store or any error leaves them.
pub(crate) fn drop_orphan_imports(store: &Store) {
    if store.is_read_only() || !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(names) = store.names() else { return };
    for name in names {
        let Some(pid) = name.strip_prefix(TEMP_ARRAY_PREFIX).and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = store.drop_array(&name);
        }
    }
}

fn check_importable(info: &NpyInfo, path: &Path) -> Result<()> {
    if info.shape.is_empty() {
        bail!(
            ShapeMismatch,
            "{} holds a 0-d array (a scalar); store arrays need at least one dimension: save it as a 1-element 1-d array instead",
            path.display()
        );
    }
    Ok(())
}

pub(crate) fn check_target(store: &Store, name: &str, overwrite: bool) -> Result<()> {
    crate::name::validate(name)?;
    if !overwrite && store.contains(name)? {
        bail!(AlreadyExists, "an array named {name:?} already exists (import with overwrite to replace it)");
    }
    Ok(())
}

/// Writes the data `feed` produces into a new temporary array; returns its name. On
/// failure the temporary array is dropped.
pub(crate) fn write_temp(store: &Store, dtype: DType, shape: &[u64], feed: impl FnOnce(&mut dyn FnMut(&mut [u8], u64) -> Result<()>) -> Result<()>) -> Result<String> {
    let tmp = temp_array_name();
    let mut started = false;
    let result = (|| {
        let mut shape = shape.to_vec();
        let mut sink = |block: &mut [u8], rows: u64| -> Result<()> {
            shape[0] = rows;
            if !started {
                started = true;
                store.save(&tmp, dtype, &shape, block)
            } else {
                store.append(&tmp, dtype, &shape, block)
            }
        };
        feed(&mut sink)?;
        if !started {
            shape[0] = 0;
            store.save(&tmp, dtype, &shape, &[])?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = store.drop_array(&tmp);
            Err(e)
        }
    }
}

/// Renames temporary arrays to their names, dropping existing arrays first when
/// `overwrite` (else `ALREADY_EXISTS` for the first that exists, before any rename). On
/// failure the temporary arrays not yet renamed are dropped.
pub(crate) fn install(store: &Store, pairs: &[(String, String)], overwrite: bool) -> Result<()> {
    let result = (|| {
        if !overwrite {
            for (_, name) in pairs {
                if store.contains(name)? {
                    bail!(AlreadyExists, "an array named {name:?} already exists (import with overwrite to replace it)");
                }
            }
        }
        for (tmp, name) in pairs {
            if store.contains(name)? {
                store.drop_array(name)?;
            }
            store.rename(tmp, name)?;
        }
        Ok(())
    })();
    if result.is_err() {
        for (tmp, _) in pairs {
            let _ = store.drop_array(tmp);
        }
    }
    result
}

/// Imports the `.npy` file at `path` into array `name` of `store`, streamed in blocks of
/// [`BLOCK_BYTES`]. Big-endian data is converted to native order and Fortran order to C
/// order. The array appears complete or not at all. Returns the new array's info.
///
/// `progress` (see the module docs) counts the bytes of data; `false` from it cancels,
/// leaving no array.
///
/// Errors: `ALREADY_EXISTS` (without `overwrite`), `NOT_FOUND` (no file), `CORRUPT` (not
/// a `.npy`, bad header), `UNSUPPORTED` (dtype, version), `SHAPE_MISMATCH` (0-d),
/// `NEEDS_RECOVERY` (file size does not match the shape), `INVALID_NAME`, `CANCELLED`,
/// store errors.
pub fn import(store: &Store, name: &str, path: impl AsRef<Path>, overwrite: bool, progress: Option<Progress<'_>>) -> Result<ArrayInfo> {
    let path = path.as_ref();
    let file = open_read(path)?;
    let info = header_of(&file, path)?;
    check_importable(&info, path)?;
    check_complete(&info, path)?;
    check_target(store, name, overwrite)?;
    drop_orphan_imports(store);
    let mut meter = Meter::start(progress, info.data_bytes().unwrap_or(0), "the import")?;
    let tmp = write_temp(store, info.dtype, &info.shape, |sink| {
        stream_file(&info, &file, path, &mut |block, rows| {
            let n = block.len() as u64;
            sink(block, rows)?;
            meter.advance(n)
        })?;
        meter.finish()
    })?;
    install(store, &[(tmp, name.to_string())], overwrite)?;
    store.info(name)
}

/// The array name for an `.npz` member: its name without the `.npy` suffix.
fn member_key(member: &str) -> &str {
    member.strip_suffix(".npy").unwrap_or(member)
}

fn zip_err(path: &Path, e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(e) => Error::io("cannot read", path, e),
        zip::result::ZipError::UnsupportedArchive(m) => Error::new(ErrorCode::Unsupported, format!("{}: {m}", path.display())),
        other => Error::corrupt(path, format!("not a valid .npz (zip) archive: {other}")),
    }
}

/// Imports every member of the `.npz` archive at `path` (stored or deflated) into an
/// array named by its key (the member name without `.npy`). All or nothing: every header
/// (and name) is checked first, then each member is streamed (its CRC-32 checked) into a
/// temporary array, and the temporary arrays are renamed into place only once all are in;
/// a bad member or an existing name (without `overwrite`) leaves the store as it was.
/// Returns the names imported, in archive order.
///
/// `progress` counts the bytes of data of all members together; `false` from it cancels,
/// leaving the store as it was.
///
/// Errors: as [`import`]; `CORRUPT` for a damaged archive or a member whose data does not
/// match its header; `UNSUPPORTED` for other compression methods.
pub fn import_npz(store: &Store, path: impl AsRef<Path>, overwrite: bool, progress: Option<Progress<'_>>) -> Result<Vec<String>> {
    let path = path.as_ref();
    let file = open_read(path)?;
    let mut zip = zip::ZipArchive::new(io::BufReader::new(file)).map_err(|e| zip_err(path, e))?;
    let mut members = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for i in 0..zip.len() {
        let mut m = zip.by_index(i).map_err(|e| zip_err(path, e))?;
        if m.is_dir() {
            continue;
        }
        let member = m.name().to_string();
        let origin = path.join(&member);
        let key = member_key(&member).to_string();
        let size = m.size();
        let info = read_header(&mut m, size, &origin)?;
        check_importable(&info, &origin)?;
        check_complete(&info, &origin).map_err(|e| {
            Error::new(ErrorCode::Corrupt, format!("{}: the member's size does not match its header", e.message.split(';').next().unwrap_or_default()))
        })?;
        check_target(store, &key, overwrite).map_err(|e| Error::new(e.code, format!("{}: {}", origin.display(), e.message)))?;
        if !seen.insert(key.clone()) {
            bail!(Corrupt, "{} holds two members named {key:?}", path.display());
        }
        members.push((i, key, info));
    }
    // Every member goes to a temporary array first; all are renamed once all are in, so a
    // member whose data turns out damaged leaves the store as it was.
    drop_orphan_imports(store);
    let total = members.iter().map(|(_, _, info)| info.data_bytes().unwrap_or(0)).fold(0u64, u64::saturating_add);
    let mut meter = Meter::start(progress, total, "the .npz import")?;
    let mut done: Vec<(String, String)> = Vec::new();
    let result = (|| {
        for (i, key, info) in members {
            let mut m = zip.by_index(i).map_err(|e| zip_err(path, e))?;
            let origin = path.join(m.name());
            // Skip the header (already parsed).
            io::copy(&mut (&mut m).take(info.data_offset), &mut io::sink()).map_err(|e| Error::corrupt(&origin, e))?;
            if info.fortran_order && info.shape.len() > 1 && info.data_bytes().unwrap_or(0) > 0 {
                // Needs random access: extract to a temporary file in the store's directory,
                // named like the store's own temporary files (`npk-tmp-<pid>-...npkt`) so
                // that if this process dies, the next writer of the store removes it.
                let tmp_path = store.path().join(format!(
                    "npk-tmp-{}-{}-npz{}.npkt",
                    std::process::id(),
                    crate::store::now_us(),
                    SEQ.fetch_add(1, Ordering::Relaxed)
                ));
                let result = (|| {
                    let mut out = File::options().read(true).write(true).create_new(true).open(&tmp_path).map_err(|e| Error::io("cannot create", &tmp_path, e))?;
                    out.write_all(&vec![0u8; info.data_offset as usize]).map_err(|e| Error::io("cannot write", &tmp_path, e))?;
                    let copied = io::copy(&mut m, &mut out).map_err(|e| match e.kind() {
                        io::ErrorKind::InvalidData => Error::corrupt(&origin, e),
                        _ => Error::io("cannot extract", &origin, e),
                    })?;
                    if copied != info.data_bytes().unwrap_or(0) {
                        bail!(Corrupt, "{}: the member holds {copied} bytes of data but its shape needs {}", origin.display(), info.data_bytes().unwrap_or(0));
                    }
                    let tmp_info = NpyInfo { file_size: info.data_offset + copied, ..info.clone() };
                    write_temp(store, tmp_info.dtype, &tmp_info.shape, |sink| {
                        stream_file(&tmp_info, &out, &origin, &mut |block, rows| {
                            let n = block.len() as u64;
                            sink(block, rows)?;
                            meter.advance(n)
                        })
                    })
                })();
                let _ = fs::remove_file(&tmp_path);
                done.push((result?, key.clone()));
            } else {
                let tmp = write_temp(store, info.dtype, &info.shape, |sink| {
                    stream_c(&info, &mut m, &origin, &mut |block, rows| {
                        let n = block.len() as u64;
                        sink(block, rows)?;
                        meter.advance(n)
                    })?;
                    // Reading to the end makes the zip reader check the member's CRC-32.
                    let mut rest = [0u8; 1];
                    match m.read(&mut rest) {
                        Ok(0) => Ok(()),
                        Ok(_) => bail!(Corrupt, "{}: the member holds more data than its header's shape", origin.display()),
                        Err(e) => Err(Error::corrupt(&origin, format!("cannot read the member: {e}"))),
                    }
                })?;
                done.push((tmp, key.clone()));
            }
        }
        meter.finish()
    })();
    if let Err(e) = result {
        for (tmp, _) in &done {
            let _ = store.drop_array(tmp);
        }
        return Err(e);
    }
    install(store, &done, overwrite)?;
    Ok(done.into_iter().map(|(_, key)| key).collect())
}

// ---------------------------------------------------------------------------------
// Writing files

/// A temporary file next to `path`, removed on drop unless kept.
pub(crate) struct TempFile {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    keep: bool,
}

impl TempFile {
    pub(crate) fn new(target: &Path) -> Result<TempFile> {
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "npy".into());
        let path = dir.join(format!(".{base}.tmp-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        let file = File::options().read(true).write(true).create_new(true).open(&path).map_err(|e| Error::io("cannot create", &path, e))?;
        Ok(TempFile { path, file, keep: false })
    }

    /// Syncs the file and renames it to `target`, then syncs the directory.
    pub(crate) fn persist(mut self, target: &Path) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::io("cannot sync", &self.path, e))?;
        fs::rename(&self.path, target).map_err(|e| Error::io("cannot rename a temporary file to", target, e))?;
        self.keep = true;
        sync_parent(target);
        Ok(())
    }

    /// Makes this file appear at `target` only if nothing is there: a hard link, which
    /// fails atomically if `target` exists. On file systems without hard links, a check
    /// then a rename (a file created at `target` in between would be replaced).
    pub(crate) fn persist_new(mut self, target: &Path) -> Result<()> {
        self.file.sync_all().map_err(|e| Error::io("cannot sync", &self.path, e))?;
        let exists = || Error::new(ErrorCode::AlreadyExists, format!("{} already exists", target.display()));
        match fs::hard_link(&self.path, target) {
            Ok(()) => {
                let _ = fs::remove_file(&self.path);
                self.keep = true;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(exists()),
            Err(_) => {
                if fs::symlink_metadata(target).is_ok() {
                    return Err(exists());
                }
                fs::rename(&self.path, target).map_err(|e| Error::io("cannot rename a temporary file to", target, e))?;
                self.keep = true;
            }
        }
        sync_parent(target);
        Ok(())
    }
}

/// Syncs the directory holding `path` (best effort), so a rename or link in it is durable.
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Runs `f` with the file at `path` open read-write and exclusively locked. If the path
/// was replaced (renamed over) while waiting for the lock, the new file is opened.
fn with_locked<T>(path: &Path, f: impl FnOnce(&File) -> Result<T>) -> Result<T> {
    loop {
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::new(ErrorCode::NotFound, format!("no file at {}", path.display())),
            _ => Error::io("cannot open", path, e),
        })?;
        let _lock = FileLock::exclusive(&file).map_err(|e| Error::io("cannot lock", path, e))?;
        let ours = file.metadata().map_err(|e| Error::io("cannot stat", path, e))?;
        match fs::metadata(path) {
            Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => return f(&file),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("cannot stat", path, e)),
        }
    }
}

/// Exports array `name` of `store` to a `.npy` file at `path` (C order, little-endian,
/// header with room to append), streamed in blocks. Deleted rows are left out. The file
/// is written to a temporary file next to `path` and renamed over it, so `path` holds the
/// old file or the complete new one. Returns the written file's header.
///
/// `progress` counts the bytes of data; `false` from it cancels, leaving `path` as it was
/// and no temporary file.
///
/// Errors: `ALREADY_EXISTS` (`path` exists and not `overwrite`), `NOT_FOUND` (no array),
/// `CANCELLED`, `IO`, store errors.
pub fn export(store: &Store, name: &str, path: impl AsRef<Path>, overwrite: bool, progress: Option<Progress<'_>>) -> Result<NpyInfo> {
    let path = path.as_ref();
    if !overwrite && fs::symlink_metadata(path).is_ok() {
        bail!(AlreadyExists, "{} already exists (export with overwrite to replace it)", path.display());
    }
    let ainfo = store.info(name)?;
    let total = if ainfo.shape.is_empty() { ainfo.dtype.size() as u64 } else { ainfo.shape[0].saturating_mul(ainfo.row_bytes()) };
    let mut meter = Meter::start(progress, total, "the export")?;
    let tmp = TempFile::new(path)?;
    let header = appendable_header(ainfo.dtype, &ainfo.shape);
    let mut w = io::BufWriter::with_capacity(1 << 20, &tmp.file);
    w.write_all(&header).map_err(|e| Error::io("cannot write", &tmp.path, e))?;
    if ainfo.shape.is_empty() {
        let (_, data) = store.load(name)?;
        w.write_all(&data).map_err(|e| Error::io("cannot write", &tmp.path, e))?;
        meter.advance(data.len() as u64)?;
    } else {
        let rows = ainfo.shape[0];
        let rb = ainfo.row_bytes();
        let block = block_rows(rb).min(rows.max(1));
        let mut buf = vec![0u8; (block * rb) as usize];
        let mut at = 0;
        while at < rows {
            let n = block.min(rows - at);
            let out = &mut buf[..(n * rb) as usize];
            store.read_range_once(name, ainfo.dtype, &ainfo.shape, at, at + n, out)?;
            w.write_all(out).map_err(|e| Error::io("cannot write", &tmp.path, e))?;
            meter.advance(out.len() as u64)?;
            at += n;
        }
    }
    w.flush().map_err(|e| Error::io("cannot write", &tmp.path, e))?;
    drop(w);
    let written = header_of(&tmp.file, &tmp.path)?;
    check_complete(&written, &tmp.path)?;
    meter.finish()?;
    if overwrite && path.exists() {
        // Hold the old file's lock across the rename so appenders move to the new file.
        let tmp_cell = std::cell::RefCell::new(Some(tmp));
        let r = with_locked(path, |_| tmp_cell.borrow_mut().take().expect("renamed once").persist(path));
        match r {
            Err(e) if e.code == ErrorCode::NotFound => {
                if let Some(t) = tmp_cell.borrow_mut().take() {
                    t.persist(path)?;
                }
            }
            other => other?,
        }
    } else if overwrite {
        tmp.persist(path)?;
    } else {
        tmp.persist_new(path)?;
    }
    Ok(written)
}

/// Creates an empty appendable `.npy` at `path` of shape `(0, *row_shape)`. Fails with
/// `ALREADY_EXISTS` if something is there (created atomically: a concurrent reader sees
/// no file or the complete header).
pub fn create_appendable(path: impl AsRef<Path>, dtype: DType, row_shape: &[u64]) -> Result<()> {
    let path = path.as_ref();
    if row_shape.len() + 1 > MAX_NDIM {
        bail!(ShapeMismatch, "{} dimensions exceed the limit of {MAX_NDIM}", row_shape.len() + 1);
    }
    let mut shape = vec![0u64];
    shape.extend_from_slice(row_shape);
    if crate::metadata::checked_nbytes(dtype, &[&[1u64][..], row_shape].concat()).is_none() {
        bail!(InvalidArgument, "row shape {row_shape:?} is too large");
    }
    let mut tmp = TempFile::new(path)?;
    tmp.file.write_all(&appendable_header(dtype, &shape)).map_err(|e| Error::io("cannot write", &tmp.path, e))?;
    tmp.persist_new(path)
}

/// Appends rows to the `.npy` file at `path` in place and returns its new row count.
///
/// `data` holds whole rows of `dtype` (native byte order) shaped `row_shape` (the file's
/// shape without its first dimension). The rows are written after the existing data,
/// then the header's shape is updated in place, all under an exclusive lock of the file,
/// so concurrent appenders never lose rows. A big-endian file gets big-endian rows.
///
/// Errors: `NOT_FOUND` (no file and not `opts.create`), `UNSUPPORTED` (the header has no
/// room: make the file appendable first; Fortran order; 0-d), `DTYPE_MISMATCH`,
/// `SHAPE_MISMATCH`, `BUFFER_SIZE` (`data` is not whole rows), `NEEDS_RECOVERY` (the file
/// size does not match its header: recover it), `CORRUPT`, `IO`.
pub fn append(path: impl AsRef<Path>, data: &[u8], dtype: DType, row_shape: &[u64], opts: AppendOptions) -> Result<u64> {
    let path = path.as_ref();
    let row_bytes = row_shape.iter().try_fold(dtype.size() as u64, |a, &d| a.checked_mul(d)).ok_or_else(|| Error::invalid("row shape is too large"))?;
    if row_bytes == 0 && !data.is_empty() || row_bytes != 0 && data.len() as u64 % row_bytes != 0 {
        bail!(BufferSize, "data is {} bytes, not a whole number of {row_bytes}-byte rows of shape {row_shape:?}", data.len());
    }
    if opts.create && !path.exists() {
        match create_appendable(path, dtype, row_shape) {
            Err(e) if e.code == ErrorCode::AlreadyExists => {}
            other => other?,
        }
    }
    let rows = (data.len() as u64).checked_div(row_bytes).unwrap_or(0);
    with_locked(path, |file| {
        let info = append_target(file, path, dtype, row_shape)?;
        let mut sink = AppendSink::new(file, &info, path);
        if rows > 0 {
            sink.write(data, rows)?;
        }
        sink.finish(opts.sync)
    })
}

/// Appends all rows of the `.npy` file `src` to the `.npy` file `path` in place, streamed
/// in blocks, converting `src`'s byte order and Fortran order as needed; returns the new
/// row count. `path` is locked for the whole copy, so the rows land contiguously even
/// with concurrent appenders; its header is updated once at the end (a crash meanwhile
/// leaves a file [`recover`] completes). With `opts.create`, a missing `path` is created
/// with `src`'s dtype and row shape.
///
/// `progress` counts the bytes of `src`'s data; `false` from it cancels. On cancellation
/// or any error while copying, `path` is cut back to its old rows (its header was not
/// touched yet), so it is as before the call (a file created by `opts.create` stays,
/// empty).
///
/// Errors: as [`append`]; those of reading `src` (`NOT_FOUND`, `CORRUPT`, `UNSUPPORTED`,
/// `NEEDS_RECOVERY`); `SHAPE_MISMATCH` for a 0-d `src`; `INVALID_ARGUMENT` if both paths
/// name the same file; `CANCELLED`.
pub fn append_file(path: impl AsRef<Path>, src: impl AsRef<Path>, opts: AppendOptions, progress: Option<Progress<'_>>) -> Result<u64> {
    let (path, src) = (path.as_ref(), src.as_ref());
    let src_file = open_read(src)?;
    let src_info = header_of(&src_file, src)?;
    check_importable(&src_info, src)?;
    check_complete(&src_info, src)?;
    let row_shape = src_info.shape[1..].to_vec();
    if opts.create && !path.exists() {
        match create_appendable(path, src_info.dtype, &row_shape) {
            Err(e) if e.code == ErrorCode::AlreadyExists => {}
            other => other?,
        }
    }
    with_locked(path, |file| {
        let (a, b) = (file.metadata(), src_file.metadata());
        if let (Ok(a), Ok(b)) = (a, b) {
            if a.ino() == b.ino() && a.dev() == b.dev() {
                bail!(InvalidArgument, "cannot append {} to itself", path.display());
            }
        }
        let info = append_target(file, path, src_info.dtype, &row_shape)?;
        let mut sink = AppendSink::new(file, &info, path);
        let copied = (|| {
            let mut meter = Meter::start(progress, src_info.data_bytes().unwrap_or(0), "the append")?;
            stream_file(&src_info, &src_file, src, &mut |block, rows| {
                let n = block.len() as u64;
                sink.write(block, rows)?;
                meter.advance(n)
            })?;
            meter.finish()
        })();
        if let Err(e) = copied {
            // The header still has the old shape: dropping the rows written so far
            // restores the file exactly.
            if let Err(cut) = file.set_len(info.file_size) {
                return Err(Error::new(
                    e.code,
                    format!("{}; cutting {} back to its old rows also failed ({cut}): recover it", e.message, path.display()),
                ));
            }
            return Err(e);
        }
        sink.finish(opts.sync)
    })
}

/// Reads and checks the header of an append target (locked by the caller).
fn append_target(file: &File, path: &Path, dtype: DType, row_shape: &[u64]) -> Result<NpyInfo> {
    let info = header_of(file, path)?;
    if info.dtype != dtype {
        bail!(DtypeMismatch, "{} holds {} but the rows are {}", path.display(), info.dtype.numpy_name(), dtype.numpy_name());
    }
    if info.shape.is_empty() || info.shape[1..] != *row_shape {
        bail!(ShapeMismatch, "cannot append rows of shape {row_shape:?} to {} of shape {:?}", path.display(), info.shape);
    }
    if !info.appendable {
        bail!(
            Unsupported,
            "{} cannot grow in place ({}); make it appendable first (a one-time rewrite)",
            path.display(),
            if info.fortran_order { "it is in Fortran order" } else { "its header has no spare room" }
        );
    }
    check_complete(&info, path)?;
    Ok(info)
}

/// Writes native rows after the data of a locked append target, then updates its header.
struct AppendSink<'a> {
    file: &'a File,
    info: &'a NpyInfo,
    path: &'a Path,
    at: u64,
    rows: u64,
    scratch: Vec<u8>,
}

impl<'a> AppendSink<'a> {
    fn new(file: &'a File, info: &'a NpyInfo, path: &'a Path) -> AppendSink<'a> {
        AppendSink { file, info, path, at: info.file_size, rows: info.shape[0], scratch: Vec::new() }
    }

    fn write(&mut self, data: &[u8], rows: u64) -> Result<()> {
        self.rows = self.rows.checked_add(rows).ok_or_else(|| Error::invalid("row count overflows"))?;
        let bytes = if self.info.big_endian {
            self.scratch.clear();
            self.scratch.extend_from_slice(data);
            swap_bytes(self.info.dtype, &mut self.scratch);
            &self.scratch[..]
        } else {
            data
        };
        self.file.write_all_at(bytes, self.at).map_err(|e| Error::io("cannot append to", self.path, e))?;
        self.at += bytes.len() as u64;
        Ok(())
    }

    /// Updates the header's row count (data first, then the header: a crash in between
    /// leaves a lagging header, which `recover` fixes).
    fn finish(self, sync: bool) -> Result<u64> {
        if self.rows == self.info.shape[0] {
            return Ok(self.rows);
        }
        if sync {
            self.file.sync_data().map_err(|e| Error::io("cannot sync", self.path, e))?;
        }
        if !set_rows_in_place(self.file, self.info, self.rows, self.path)? {
            bail!(Corrupt, "{}: the header lost its spare room", self.path.display());
        }
        if sync {
            self.file.sync_data().map_err(|e| Error::io("cannot sync", self.path, e))?;
        }
        Ok(self.rows)
    }
}

/// Writes `info`'s array (first `rows` rows) from `file` to a new appendable C-order,
/// little-endian file at a temporary path, then renames it over `path`. The caller holds
/// `file`'s lock.
fn rewrite(file: &File, info: &NpyInfo, rows: u64, path: &Path, progress: Option<Progress<'_>>) -> Result<()> {
    let mut meter = Meter::start(progress, rows.saturating_mul(info.row_bytes()), "the rewrite")?;
    let tmp = TempFile::new(path)?;
    let mut shape = info.shape.clone();
    shape[0] = rows;
    let src = NpyInfo { shape: shape.clone(), ..info.clone() };
    let mut w = io::BufWriter::with_capacity(1 << 20, &tmp.file);
    w.write_all(&appendable_header(info.dtype, &shape)).map_err(|e| Error::io("cannot write", &tmp.path, e))?;
    let tmp_path = tmp.path.clone();
    stream_file(&src, file, path, &mut |block, _| {
        w.write_all(block).map_err(|e| Error::io("cannot write", &tmp_path, e))?;
        meter.advance(block.len() as u64)
    })?;
    w.flush().map_err(|e| Error::io("cannot write", &tmp.path, e))?;
    drop(w);
    meter.finish()?;
    if let Ok(m) = file.metadata() {
        let _ = fs::set_permissions(&tmp.path, m.permissions());
    }
    tmp.persist(path)
}

/// Makes the `.npy` file at `path` appendable: if its header has no spare room (a file
/// written by NumPy) or it is in Fortran order, rewrites it (streamed, to a temporary
/// file renamed over it, converted to C order and native byte order) with a header that
/// can grow. Returns whether it rewrote the file.
///
/// `progress` is called only when the file is rewritten, counting the bytes of data;
/// `false` from it cancels, leaving the file as it was and no temporary file.
///
/// Errors: `NOT_FOUND`, `CORRUPT`, `UNSUPPORTED` (0-d array, dtype), `NEEDS_RECOVERY`
/// (file size does not match the header: recover first), `CANCELLED`, `IO`.
pub fn make_appendable(path: impl AsRef<Path>, progress: Option<Progress<'_>>) -> Result<bool> {
    let path = path.as_ref();
    with_locked(path, |file| {
        let info = header_of(file, path)?;
        if info.shape.is_empty() {
            bail!(Unsupported, "{} holds a 0-d array, which has no rows to append to", path.display());
        }
        if info.appendable {
            return Ok(false);
        }
        check_complete(&info, path)?;
        rewrite(file, &info, info.shape[0], path, progress)?;
        Ok(true)
    })
}

/// Repairs a `.npy` file whose size does not match its header (a crashed appender):
/// sets the first dimension from the data actually present, dropping an incomplete last
/// row, or completing it with zeros when `zero_fill`. A header without room for the new
/// shape is rewritten (whole file, atomically). Reports what it did; a clean file is
/// left untouched.
///
/// Errors: `NOT_FOUND`, `CORRUPT` (the header itself is damaged), `UNSUPPORTED`
/// (Fortran order or 0-d arrays, whose rows cannot be told apart), `IO`.
pub fn recover(path: impl AsRef<Path>, zero_fill: bool) -> Result<Recovery> {
    let path = path.as_ref();
    with_locked(path, |file| {
        let info = header_of(file, path)?;
        let want = info.data_bytes().map(|b| b + info.data_offset);
        if want == Some(info.file_size) {
            let rows = info.shape.first().copied().unwrap_or(1);
            return Ok(Recovery { header_rows: rows, rows, ..Recovery::default() });
        }
        if info.shape.is_empty() || info.fortran_order && info.shape.len() > 1 {
            bail!(
                Unsupported,
                "{} does not match its header but is {}, so its complete rows cannot be told apart",
                path.display(),
                if info.shape.is_empty() { "0-d" } else { "in Fortran order" }
            );
        }
        let rb = info.row_bytes();
        let have = info.file_size.saturating_sub(info.data_offset);
        let mut rep = Recovery { header_rows: info.shape[0], ..Recovery::default() };
        let new_len;
        if let Some(full) = have.checked_div(rb) {
            let partial = have % rb;
            if partial > 0 && zero_fill {
                rep.rows = full + 1;
                rep.zero_filled_bytes = rb - partial;
            } else {
                rep.rows = full;
                rep.dropped_bytes = partial;
            }
            new_len = info.data_offset + rep.rows * rb;
        } else {
            // Rows of zero bytes: the count cannot come from the size; drop stray bytes.
            rep.rows = info.shape[0];
            rep.dropped_bytes = have;
            new_len = info.data_offset;
        }
        file.set_len(new_len).map_err(|e| Error::io("cannot resize", path, e))?;
        file.sync_data().map_err(|e| Error::io("cannot sync", path, e))?;
        if !set_rows_in_place(file, &info, rep.rows, path)? {
            let fixed = NpyInfo { file_size: new_len, ..info.clone() };
            rewrite(file, &fixed, rep.rows, path, None)?;
            rep.rewritten = true;
        } else {
            file.sync_data().map_err(|e| Error::io("cannot sync", path, e))?;
        }
        Ok(rep)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descrs_round_trip_and_unsupported_ones_are_named() {
        for d in DType::ALL {
            assert_eq!(parse_descr(d.npy_descr()).unwrap(), (d, false));
        }
        assert_eq!(parse_descr(">f8").unwrap(), (DType::Float64, true));
        for bad in ["|O", "<U10", "|S3", "<M8[ns]", "<f16", "|V8"] {
            let e = parse_descr(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn appendable_header_is_aligned_and_has_room() {
        let h = appendable_header(DType::Float32, &[0, 3]);
        assert_eq!(h.len() % 64, 0);
        let info = read_header(&mut &h[..], h.len() as u64, Path::new("x")).unwrap();
        assert!(info.appendable);
        assert_eq!(info.shape, vec![0, 3]);
        assert_eq!(info.data_offset, h.len() as u64);
    }
}
