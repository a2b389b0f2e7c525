//! NumPack 0.7's segmented arrays: an array stored as `data_<name>.npkseg`, a JSON
//! manifest, plus the segment files `data_<name>_segments/seg_NNNNNN.npkd` it lists, each
//! holding whole rows, back to back in row order. The catalogue's data-file field names
//! the manifest.
//!
//! The manifest comes from disk, so it is parsed as hostile input: bounded in size, every
//! key and type checked, every file name confined to the array's own segment directory
//! (`seg_<digits>.npkd`, so no `..`, no absolute path, no second level), sums checked
//! for overflow, and rows and bytes checked against the catalogue's shape.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

pub const EXTENSION: &str = ".npkseg";
pub const VERSION: u64 = 1;
/// NumPack 0.7's default segment size.
pub const DEFAULT_TARGET_BYTES: u64 = 256 << 20;
/// A manifest larger than this is damage: a million segments take about 100 MB, far
/// more than any store NumPack writes (256 MiB segments), so 64 MiB is generous.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// Most segments one array may have.
pub const MAX_SEGMENTS: usize = 1 << 20;

/// `data_<name>.npkseg`: the manifest.
pub fn manifest_file(name: &str) -> String {
    format!("data_{name}{EXTENSION}")
}

/// `data_<name>_segments`: the directory of the segment files.
pub fn dir_name(name: &str) -> String {
    format!("data_{name}_segments")
}

/// `data_<name>_segments/seg_NNNNNN.npkd`: segment `index`, as NumPack 0.7 names it.
pub fn segment_file(name: &str, index: usize) -> String {
    format!("{}/seg_{index:06}.npkd", dir_name(name))
}

/// The segment size NumPack 0.7 aims at for rows of `row_bytes`: from
/// `NUMPACK_SEGMENT_TARGET_BYTES` or `NPK_SEGMENT_TARGET_BYTES` (256 MiB when unset or not
/// a number), never below one row.
pub fn target_bytes(row_bytes: u64) -> u64 {
    let configured = ["NUMPACK_SEGMENT_TARGET_BYTES", "NPK_SEGMENT_TARGET_BYTES"]
        .iter()
        .find_map(|k| std::env::var(k).ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(DEFAULT_TARGET_BYTES);
    configured.max(row_bytes.max(1))
}

/// One segment file: its path relative to the store, rows and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
}

/// A parsed, checked manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub segments: Vec<Segment>,
}

/// A segment file name of array `name` is valid: `data_<name>_segments/seg_<digits>.npkd`.
pub fn valid_segment_file(name: &str, file: &str) -> bool {
    let Some(leaf) = file.strip_prefix(&dir_name(name)).and_then(|r| r.strip_prefix('/')) else { return false };
    let Some(digits) = leaf.strip_prefix("seg_").and_then(|r| r.strip_suffix(".npkd")) else { return false };
    !digits.is_empty() && digits.len() <= 12 && digits.bytes().all(|b| b.is_ascii_digit())
}

fn field<'a>(obj: &'a serde_json::Map<String, Value>, key: &str, at: &str) -> std::result::Result<&'a Value, String> {
    obj.get(key).ok_or_else(|| format!("{at} has no {key:?}"))
}

fn uint(v: &Value, what: &str) -> std::result::Result<u64, String> {
    v.as_u64().ok_or_else(|| format!("{what} is {v}, not a non-negative integer"))
}

impl Manifest {
    /// Parses the manifest of array `name`. Checks structure and names only; see
    /// [`Manifest::check_shape`] for the rows against the catalogue.
    pub fn parse(bytes: &[u8], name: &str) -> std::result::Result<Manifest, String> {
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(format!("the manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES}", bytes.len()));
        }
        let root: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
        let obj = root.as_object().ok_or("the manifest is not a JSON object")?;
        if let Some(k) = obj.keys().find(|k| *k != "version" && *k != "segments") {
            return Err(format!("unexpected key {k:?}"));
        }
        let version = uint(field(obj, "version", "the manifest")?, "\"version\"")?;
        if version != VERSION {
            return Err(format!("manifest version {version} is not supported (this library reads version {VERSION})"));
        }
        let list = field(obj, "segments", "the manifest")?.as_array().ok_or("\"segments\" is not a list")?;
        if list.len() > MAX_SEGMENTS {
            return Err(format!("{} segments exceed the limit of {MAX_SEGMENTS}", list.len()));
        }
        let mut segments = Vec::with_capacity(list.len());
        let mut seen = std::collections::HashSet::new();
        for (i, s) in list.iter().enumerate() {
            let at = format!("segment {i}");
            let o = s.as_object().ok_or_else(|| format!("{at} is not a JSON object"))?;
            if let Some(k) = o.keys().find(|k| !["file", "rows", "bytes"].contains(&k.as_str())) {
                return Err(format!("{at} has an unexpected key {k:?}"));
            }
            let file = field(o, "file", &at)?.as_str().ok_or_else(|| format!("{at}: \"file\" is not a string"))?;
            if !valid_segment_file(name, file) {
                return Err(format!(
                    "{at} names file {file:?}, which is not {}/seg_<digits>.npkd (segment files must stay in the array's own directory)",
                    dir_name(name)
                ));
            }
            if !seen.insert(file) {
                return Err(format!("{at} names file {file:?} a second time"));
            }
            let rows = uint(field(o, "rows", &at)?, &format!("{at}'s rows"))?;
            let bytes = uint(field(o, "bytes", &at)?, &format!("{at}'s bytes"))?;
            segments.push(Segment { file: file.to_string(), rows, bytes });
        }
        Ok(Manifest { segments })
    }

    /// The segments hold exactly `rows` rows of `row_bytes` each: every segment's bytes
    /// are its rows times the row size, and the rows add up (all checked for overflow).
    pub fn check_shape(&self, row_bytes: u64, rows: u64) -> std::result::Result<(), String> {
        let mut total: u64 = 0;
        for (i, s) in self.segments.iter().enumerate() {
            let want = s.rows.checked_mul(row_bytes).ok_or_else(|| format!("segment {i}: {} rows overflow", s.rows))?;
            if want != s.bytes {
                return Err(format!("segment {i} ({}) claims {} rows but {} bytes; rows of {row_bytes} bytes need {want}", s.file, s.rows, s.bytes));
            }
            total = total.checked_add(s.rows).ok_or("the segments' rows overflow")?;
        }
        if total != rows {
            return Err(format!("the segments hold {total} rows but the catalogue says {rows}"));
        }
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.segments.iter().map(|s| s.rows).sum()
    }

    /// The manifest as NumPack 0.7 writes it: pretty JSON, keys in its order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::from("{\n  \"version\": 1,\n  \"segments\": [");
        for (i, s) in self.segments.iter().enumerate() {
            let file = serde_json::to_string(&s.file).expect("a string always serialises");
            out.push_str(if i == 0 { "\n" } else { ",\n" });
            out.push_str(&format!("    {{\n      \"file\": {file},\n      \"rows\": {},\n      \"bytes\": {}\n    }}", s.rows, s.bytes));
        }
        out.push_str(if self.segments.is_empty() { "]\n}" } else { "\n  ]\n}" });
        out.into_bytes()
    }

    /// The same segments under array `to` (for a rename: file names carry the array's).
    pub fn renamed(&self, from: &str, to: &str) -> Manifest {
        let (old, new) = (dir_name(from), dir_name(to));
        let segments = self
            .segments
            .iter()
            .map(|s| Segment { file: format!("{new}{}", s.file.strip_prefix(&old).unwrap_or(&s.file)), ..s.clone() })
            .collect();
        Manifest { segments }
    }

    /// Splits `rows` new rows of `row_bytes` over the segments as NumPack 0.7 appends
    /// them: the last segment is topped up to `target` bytes, then new segments of at
    /// most `target / row_bytes` rows follow. Returns the new manifest and, in order, the
    /// pieces written: (segment index, row offset within it, rows).
    pub fn plan_append(&self, name: &str, row_bytes: u64, rows: u64, target: u64) -> (Manifest, Vec<(usize, u64, u64)>) {
        let mut m = self.clone();
        let mut pieces = Vec::new();
        let mut left = rows;
        let per = target.checked_div(row_bytes).map_or(u64::MAX, |n| n.max(1));
        let count = m.segments.len();
        if let Some(last) = m.segments.last_mut() {
            let room = target.saturating_sub(last.bytes).checked_div(row_bytes).unwrap_or(left);
            let n = room.min(left);
            if n > 0 {
                pieces.push((count - 1, last.rows, n));
                last.rows += n;
                last.bytes += n * row_bytes;
                left -= n;
            }
        }
        while left > 0 {
            let n = per.min(left);
            let index = m.segments.len();
            m.segments.push(Segment { file: segment_file(name, index), rows: n, bytes: n * row_bytes });
            pieces.push((index, 0, n));
            left -= n;
        }
        (m, pieces)
    }
}

/// Opens a file of the store without following a symbolic link at its last component,
/// and checks that the directory holding it is no link either.
pub fn open_confined(dir: &Path, rel: &str, write: bool) -> Result<File> {
    let access = if write { crate::dirfd::Access::ReadWrite } else { crate::dirfd::Access::Read };
    crate::dirfd::open_in(dir, rel, access)?
        .ok_or_else(|| Error::io("cannot open segment file", &dir.join(rel), std::io::ErrorKind::NotFound.into()))
}

/// Reads and parses array `name`'s manifest (bounded: a larger file is damage).
pub fn read_manifest(dir: &Path, name: &str) -> Result<Manifest> {
    let rel = manifest_file(name);
    let path = dir.join(&rel);
    let f = open_confined(dir, &rel, false)?;
    let mut bytes = Vec::new();
    f.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Error::io("cannot read", &path, e))?;
    Manifest::parse(&bytes, name).map_err(|m| Error::corrupt(&path, m))
}

/// Writes array `name`'s manifest atomically (temporary file, then rename).
pub fn write_manifest(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = crate::store::write_tmp(dir, bytes)?;
    crate::store::rename_in(dir, &tmp, &manifest_file(name))
}

/// Removes array `name`'s manifest and segment directory, whatever state they are in
/// (a link in place of the directory is removed, never followed).
pub fn remove_all(dir: &Path, name: &str) -> Result<()> {
    let m = dir.join(manifest_file(name));
    match fs::remove_file(&m) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io("cannot remove", &m, e)),
        _ => {}
    }
    let d = dir.join(dir_name(name));
    match fs::symlink_metadata(&d) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(&d).map_err(|e| Error::io("cannot remove", &d, e)),
        Ok(_) => fs::remove_file(&d).map_err(|e| Error::io("cannot remove", &d, e)),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            segments: vec![
                Segment { file: segment_file("a", 0), rows: 3, bytes: 24 },
                Segment { file: segment_file("a", 1), rows: 1, bytes: 8 },
            ],
        }
    }

    #[test]
    fn encoding_round_trips_and_matches_numpack_layout() {
        let m = sample();
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(text.starts_with("{\n  \"version\": 1,\n  \"segments\": [\n    {\n      \"file\": \"data_a_segments/seg_000000.npkd\",\n      \"rows\": 3,"));
        assert_eq!(Manifest::parse(text.as_bytes(), "a").unwrap(), m);
        assert_eq!(Manifest::parse(&Manifest::default().encode(), "a").unwrap(), Manifest::default());
        m.check_shape(8, 4).unwrap();
        assert!(m.check_shape(8, 5).is_err());
        assert!(m.check_shape(4, 4).is_err());
    }

    #[test]
    fn hostile_manifests_are_refused() {
        let bad = [
            "",
            "[]",
            "{\"version\":2,\"segments\":[]}",
            "{\"version\":1}",
            "{\"version\":1,\"segments\":[],\"x\":1}",
            "{\"version\":1,\"segments\":[{\"file\":\"../x\",\"rows\":1,\"bytes\":8}]}",
            "{\"version\":1,\"segments\":[{\"file\":\"/etc/passwd\",\"rows\":1,\"bytes\":8}]}",
            "{\"version\":1,\"segments\":[{\"file\":\"data_a_segments/../../x.npkd\",\"rows\":1,\"bytes\":8}]}",
            "{\"version\":1,\"segments\":[{\"file\":\"data_b_segments/seg_000000.npkd\",\"rows\":1,\"bytes\":8}]}",
            "{\"version\":1,\"segments\":[{\"file\":\"data_a_segments/seg_000000.npkd\",\"rows\":-1,\"bytes\":8}]}",
            "{\"version\":1,\"segments\":[{\"file\":\"data_a_segments/seg_000000.npkd\",\"rows\":1.5,\"bytes\":8}]}",
            "{\"version\":1,\"segments\":[{\"file\":\"data_a_segments/seg_0.npkd\",\"rows\":1,\"bytes\":8},{\"file\":\"data_a_segments/seg_0.npkd\",\"rows\":1,\"bytes\":8}]}",
        ];
        for b in bad {
            assert!(Manifest::parse(b.as_bytes(), "a").is_err(), "{b:?} accepted");
        }
        let huge = Manifest { segments: vec![Segment { file: segment_file("a", 0), rows: u64::MAX, bytes: 8 }] };
        assert!(huge.check_shape(8, 1).is_err());
        let two = Manifest {
            segments: vec![Segment { file: segment_file("a", 0), rows: u64::MAX, bytes: u64::MAX }, Segment { file: segment_file("a", 1), rows: 1, bytes: 1 }],
        };
        assert!(two.check_shape(1, 0).is_err());
    }

    #[test]
    fn appends_top_up_then_add_segments() {
        let (m, pieces) = sample().plan_append("a", 8, 10, 32);
        assert_eq!(pieces, vec![(1, 1, 3), (2, 0, 4), (3, 0, 3)]);
        assert_eq!(m.segments.iter().map(|s| s.rows).collect::<Vec<_>>(), vec![3, 4, 4, 3]);
        assert_eq!(m.segments[3].file, "data_a_segments/seg_000003.npkd");
        assert_eq!(sample().renamed("a", "bb").segments[1].file, "data_bb_segments/seg_000001.npkd");
    }
}
