//! Builds stores exactly as NumPack 0.7.0 writes them, segmented arrays included (its
//! manifest layout and file naming), for the tests of segmented arrays.
#![allow(dead_code)]

use std::fs;
use std::path::Path;

use numpack::metadata::{self, Catalogue, Entry};
use numpack::segments::{self, Manifest, Segment};
use numpack::DType;

pub fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut r = crate::common::Rng::new(seed);
    (0..n).map(|_| r.next_u64() as u8).collect()
}

pub fn row_bytes(dtype: DType, shape: &[u64]) -> u64 {
    shape[1..].iter().product::<u64>() * dtype.size() as u64
}

/// Writes segment files and manifest for `data` as NumPack 0.7 does with segments of at
/// most `target` bytes (whole rows, at least one).
pub fn write_segments(dir: &Path, name: &str, rb: u64, data: &[u8], target: u64) -> Manifest {
    let per = (target.max(rb) / rb.max(1)).max(1);
    let rows = data.len() as u64 / rb;
    fs::create_dir_all(dir.join(segments::dir_name(name))).unwrap();
    let mut m = Manifest::default();
    let mut start = 0;
    while start < rows {
        let n = per.min(rows - start);
        let file = segments::segment_file(name, m.segments.len());
        fs::write(dir.join(&file), &data[(start * rb) as usize..((start + n) * rb) as usize]).unwrap();
        m.segments.push(Segment { file, rows: n, bytes: n * rb });
        start += n;
    }
    fs::write(dir.join(segments::manifest_file(name)), m.encode()).unwrap();
    m
}

pub struct Array07 {
    pub name: &'static str,
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub data: Vec<u8>,
    /// Segment target; `None` writes a plain `.npkd`.
    pub target: Option<u64>,
}

/// A store as NumPack 0.7 leaves it: catalogue, data files, no log.
pub fn make07(dir: &Path, arrays: &[Array07]) {
    fs::create_dir_all(dir).unwrap();
    let mut cat = Catalogue::new();
    for a in arrays {
        let segmented = a.target.is_some();
        match a.target {
            Some(t) => {
                write_segments(dir, a.name, row_bytes(a.dtype, &a.shape), &a.data, t);
            }
            None => fs::write(dir.join(numpack::name::data_file(a.name)), &a.data).unwrap(),
        }
        cat.insert(a.name.to_string(), Entry { dtype: a.dtype, shape: a.shape.clone(), modified_us: 1, segmented });
    }
    fs::write(dir.join(metadata::FILE_NAME), metadata::encode(&cat)).unwrap();
}

pub fn arr(name: &'static str, dtype: DType, shape: &[u64], seed: u64, target: Option<u64>) -> Array07 {
    let n = shape.iter().product::<u64>() as usize * dtype.size();
    let mut data = bytes(seed, n);
    if dtype == DType::Bool {
        data.iter_mut().for_each(|b| *b &= 1);
    }
    Array07 { name, dtype, shape: shape.to_vec(), data, target }
}
