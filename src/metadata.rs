//! `metadata.npkm`: NumPack's binary catalogue (format version 1), read and written
//! byte-compatibly. Shapes here are *physical*: rows deleted through the bitmap still count.

use std::collections::BTreeMap;

use crate::codec::{ReadResult, Reader, Writer};
use crate::dtype::DType;
use crate::name;

pub const FILE_NAME: &str = "metadata.npkm";
pub const MAGIC: u32 = 0x424B_504E; // "NPKB"
pub const VERSION: u32 = 1;
/// Largest catalogue read from a package (it is held in memory whole): about 300 000
/// arrays with long names; a larger claim is damage or a decompression bomb.
pub const MAX_FILE_LEN: u64 = 256 << 20;
/// More dimensions than anyone stores; a larger count means a damaged file.
pub const MAX_NDIM: usize = 32;

/// One array's catalogue entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub dtype: DType,
    /// Physical shape; `shape[0]` counts deleted rows too.
    pub shape: Vec<u64>,
    /// Microseconds since the Unix epoch.
    pub modified_us: u64,
    /// Stored as NumPack 0.7 segments (`data_<name>.npkseg`, see [`crate::segments`])
    /// rather than one `data_<name>.npkd`.
    pub segmented: bool,
}

impl Entry {
    /// The data file the catalogue names for array `name`.
    pub fn data_file(&self, name: &str) -> String {
        if self.segmented { crate::segments::manifest_file(name) } else { name::data_file(name) }
    }
    /// Elements in one row (product of the trailing dimensions).
    pub fn row_elems(&self) -> u64 {
        self.shape.iter().skip(1).product()
    }
    /// Saturates rather than wraps: entries are checked with [`shape_nbytes`] when
    /// decoded, so a saturated value only ever meets a bound check that then fails.
    pub fn row_bytes(&self) -> u64 {
        self.shape.iter().skip(1).fold(self.dtype.size() as u64, |acc, &d| acc.saturating_mul(d))
    }
    pub fn physical_rows(&self) -> u64 {
        self.shape.first().copied().unwrap_or(1)
    }
    /// Saturates rather than wraps, as [`Entry::row_bytes`].
    pub fn nbytes(&self) -> u64 {
        self.row_bytes().saturating_mul(self.physical_rows())
    }
}

/// Most rows an array whose rows hold no bytes (a trailing dimension of 0) may have. No
/// data bounds such a count, while row-sized structures (the deletion bitmap, row maps)
/// grow with it: without a limit, a catalogue claiming `[2^60, 0]` would make any reader
/// allocate exabytes.
pub const MAX_EMPTY_ROWS: u64 = 1 << 28;

/// Byte size of an array of `dtype` and `shape`, or a message naming why the shape cannot
/// be stored: a product overflows, or rows of zero bytes exceed [`MAX_EMPTY_ROWS`]. Every
/// shape read from a file goes through this before anything is sized by it.
pub fn shape_nbytes(dtype: DType, shape: &[u64]) -> Result<u64, String> {
    if shape.len() > MAX_NDIM {
        return Err(format!("shape {shape:?} has more than {MAX_NDIM} dimensions"));
    }
    let n = checked_nbytes(dtype, shape).ok_or_else(|| format!("shape {shape:?} of {} overflows 64-bit byte sizes", dtype.name()))?;
    let rows = shape.first().copied().unwrap_or(1);
    if n == 0 && shape.len() > 1 && shape[1..].contains(&0) && rows > MAX_EMPTY_ROWS {
        return Err(format!("shape {shape:?} has {rows} rows of zero bytes (limit {MAX_EMPTY_ROWS})"));
    }
    Ok(n)
}

/// Byte size of `shape` of `dtype`, or `None` when it, or the size of one row, overflows
/// `u64` (a zero-row array must still have rows of a representable size).
pub fn checked_nbytes(dtype: DType, shape: &[u64]) -> Option<u64> {
    let row = shape.iter().skip(1).try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d))?;
    row.checked_mul(shape.first().copied().unwrap_or(1))
}

/// The whole catalogue, ordered by name (upstream used hash order; sorted is stable).
pub type Catalogue = BTreeMap<String, Entry>;

pub fn encode(cat: &Catalogue) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(MAGIC);
    w.u32(VERSION);
    w.u64(cat.values().map(Entry::nbytes).sum());
    w.u32(cat.len() as u32);
    for (name, e) in cat {
        w.str(name);
        w.u32(e.shape.len() as u32);
        for &d in &e.shape {
            w.u64(d);
        }
        w.str(&e.data_file(name));
        w.u64(e.modified_us);
        w.u64(e.nbytes());
        w.u8(e.dtype.code() as u8);
        // Compression: algorithm 0 (none), level 0, sizes 0; no block index.
        w.u8(0);
        w.u32(0);
        w.u64(0);
        w.u64(0);
        w.u8(0);
    }
    w.buf
}

/// Parses a catalogue. Anything out of place is an error describing it: the caller
/// must never treat an unreadable catalogue as an empty store.
pub fn decode(bytes: &[u8]) -> ReadResult<Catalogue> {
    let mut r = Reader::new(bytes);
    let magic = r.u32("magic")?;
    if magic != MAGIC {
        return Err(format!("bad magic {magic:#010x} (expected {MAGIC:#010x}, \"NPKB\")"));
    }
    let version = r.u32("version")?;
    if version != VERSION {
        return Err(format!("format version {version} is not supported (this library reads version {VERSION})"));
    }
    let total_size = r.u64("total size")?;
    let count = r.u32("array count")? as usize;
    let mut cat = Catalogue::new();
    let mut sum: u64 = 0;
    for i in 0..count {
        let name = r.str(&format!("name of array {i}"))?.to_string();
        name::validate(&name).map_err(|e| format!("array {i}: {e}"))?;
        let ndim = r.u32("ndim")? as usize;
        if ndim > MAX_NDIM {
            return Err(format!("array {name:?} claims {ndim} dimensions (limit {MAX_NDIM})"));
        }
        let mut shape = Vec::with_capacity(ndim);
        for _ in 0..ndim {
            shape.push(r.u64("dimension")?);
        }
        let data_file = r.str("data file name")?;
        let segmented = data_file == crate::segments::manifest_file(&name);
        if data_file != name::data_file(&name) && !segmented {
            return Err(format!(
                "array {name:?} names data file {data_file:?}, expected {:?} or {:?}",
                name::data_file(&name),
                crate::segments::manifest_file(&name)
            ));
        }
        let modified_us = r.u64("modify time")?;
        let size_bytes = r.u64("size")?;
        let code = r.u8("dtype")?;
        let dtype = DType::from_code(code as u32).ok_or_else(|| format!("array {name:?} has unknown dtype code {code}"))?;
        let algo = r.u8("compression")?;
        let _level = r.u32("compression level")?;
        let _orig = r.u64("original size")?;
        let _comp = r.u64("compressed size")?;
        if algo != 0 {
            return Err(format!("array {name:?} is compressed (algorithm {algo}), which this version cannot read"));
        }
        if r.u8("block info flag")? != 0 {
            return Err(format!("array {name:?} has a block index, which this version cannot read"));
        }
        let expect = shape_nbytes(dtype, &shape).map_err(|m| format!("array {name:?}: {m}"))?;
        if expect != size_bytes {
            return Err(format!("array {name:?}: size {size_bytes} does not match shape {shape:?} of {}", dtype.name()));
        }
        sum = sum.checked_add(size_bytes).ok_or("total size overflows")?;
        if cat.insert(name.clone(), Entry { dtype, shape, modified_us, segmented }).is_some() {
            return Err(format!("array {name:?} is listed twice"));
        }
    }
    if sum != total_size {
        return Err(format!("total size {total_size} does not match the sum of array sizes {sum}"));
    }
    if r.remaining() != 0 {
        return Err(format!("{} unexpected bytes after the last array", r.remaining()));
    }
    Ok(cat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Catalogue {
        let mut c = Catalogue::new();
        c.insert("a".into(), Entry { dtype: DType::Float32, shape: vec![4, 3], modified_us: 7, segmented: false });
        c.insert("b".into(), Entry { dtype: DType::Int64, shape: vec![3], modified_us: 9, segmented: false });
        c
    }

    #[test]
    fn layout_matches_upstream() {
        let bytes = encode(&sample());
        // Header 20 bytes, then "a" (0x5b..) and "b": 170 bytes in total, as upstream.
        assert_eq!(bytes.len(), 170);
        assert_eq!(&bytes[0..4], b"NPKB");
        assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), 72);
        assert_eq!(decode(&bytes).unwrap(), sample());
        assert_eq!(encode(&Catalogue::new()).len(), 20);
    }

    #[test]
    fn segmented_entries_name_their_manifest() {
        let mut c = sample();
        c.get_mut("b").unwrap().segmented = true;
        let bytes = encode(&c);
        assert_eq!(bytes.len(), 172);
        assert!(bytes.windows(12).any(|w| w == b"data_b.npkse"));
        assert_eq!(decode(&bytes).unwrap(), c);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode(&sample());
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "prefix of {n} bytes accepted");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
    }

    #[test]
    fn rows_too_large_to_address_are_rejected_even_without_rows() {
        assert_eq!(checked_nbytes(DType::Uint8, &[0, 1 << 62, 4]), None);
        assert_eq!(checked_nbytes(DType::Float32, &[0, 3]), Some(0));
        assert_eq!(checked_nbytes(DType::Float32, &[]), Some(4));
    }

    #[test]
    fn shapes_from_files_are_sized_without_wrapping() {
        assert_eq!(shape_nbytes(DType::Float64, &[4, 3]), Ok(96));
        assert!(shape_nbytes(DType::Uint8, &[1 << 62, 8]).unwrap_err().contains("overflows"));
        assert_eq!(shape_nbytes(DType::Uint8, &[MAX_EMPTY_ROWS, 0]), Ok(0));
        assert!(shape_nbytes(DType::Uint8, &[MAX_EMPTY_ROWS + 1, 0]).unwrap_err().contains("rows of zero bytes"));
        // No rows at all, or a 1-d array: nothing row-sized to bound.
        assert_eq!(shape_nbytes(DType::Uint8, &[0, 1 << 40]), Ok(0));
        let e = Entry { dtype: DType::Uint64, shape: vec![1 << 62, 4], modified_us: 0, segmented: false };
        assert_eq!((e.row_bytes(), e.nbytes()), (32, u64::MAX), "saturated, not wrapped");
    }

    #[test]
    fn absurd_counts_fail_without_allocating() {
        let mut bytes = encode(&Catalogue::new());
        bytes[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&bytes).is_err());
    }
}
