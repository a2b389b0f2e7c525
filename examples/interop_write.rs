//! Interoperability with NumPack 0.4.5 (the upstream package), both directions.
//!
//! `cargo run --example interop_write -- <dir>`
//!     writes a store `<dir>/ours.npk` exercising every dtype, 1-D to 4-D shapes, a
//!     zero-row array, row deletion (with appends after it), in-place replacement,
//!     rename, clone, compaction, overwrite and drop; closes it; and writes the
//!     expected logical contents of every array to `<dir>/expected/<name>.npy`.
//!     `tests/interop/check_upstream_reads_ours.py` then checks NumPack reads the same.
//!
//! `cargo run --example interop_write -- --verify <store> <expected_dir>`
//!     opens a store (written by NumPack, see `tests/interop/upstream_writes.py`)
//!     read-only and checks that its arrays are exactly the `.npy` files in
//!     `<expected_dir>` (same names, dtypes, shapes and bytes). Exits 1 on mismatch.
//!
//! `tests/interop/run.sh` runs both directions.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use numpack::{DType, OpenOptions, Store};

type Res<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [flag, store, expected] if flag == "--verify" => verify(Path::new(store), Path::new(expected)),
        [dir] if !dir.starts_with("--") => write(Path::new(dir)),
        _ => Err("usage: interop_write <dir> | interop_write --verify <store> <expected_dir>".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("interop_write: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------
// NPY v1.0 files

fn dtype_of_descr(s: &str) -> Option<DType> {
    // NumPy writes '|u1' / '|i1' / '|b1' for one-byte types; accept '<' and '=' too.
    let norm = |x: &str| x.trim_start_matches(['<', '|', '=']).to_string();
    DType::ALL.iter().copied().find(|&d| norm(d.npy_descr()) == norm(s))
}

fn shape_repr(shape: &[u64]) -> String {
    match shape {
        [] => "()".into(),
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
    }
}

fn npy_bytes(dtype: DType, shape: &[u64], data: &[u8]) -> Vec<u8> {
    let mut header =
        format!("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", dtype.npy_descr(), shape_repr(shape));
    // magic (6) + version (2) + header length (2) + header, ending in '\n', padded to 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

struct Npy {
    dtype: DType,
    shape: Vec<u64>,
    data: Vec<u8>,
}

/// Parses an NPY file (versions 1.0, 2.0 and 3.0; C order, little-endian only).
fn parse_npy(bytes: &[u8]) -> Res<Npy> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not an NPY file (bad magic)".into());
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12),
        v => return Err(format!("unsupported NPY version {v}")),
    };
    let header = std::str::from_utf8(bytes.get(start..start + hlen).ok_or("truncated NPY header")?)
        .map_err(|_| "NPY header is not text")?;
    let field = |key: &str| -> Res<&str> {
        let at = header.find(&format!("'{key}':")).ok_or_else(|| format!("NPY header lacks {key}: {header}"))?;
        Ok(header[at + key.len() + 3..].trim_start())
    };
    let d = field("descr")?;
    let d = d.strip_prefix('\'').and_then(|s| s.split('\'').next()).ok_or("bad descr")?;
    let dtype = dtype_of_descr(d).ok_or_else(|| format!("unsupported dtype descr {d:?}"))?;
    if !field("fortran_order")?.starts_with("False") {
        return Err("Fortran-ordered NPY files are not supported".into());
    }
    let s = field("shape")?;
    let s = s.strip_prefix('(').and_then(|s| s.split(')').next()).ok_or("bad shape")?;
    let shape = s
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| x.trim_end_matches('L').parse::<u64>().map_err(|e| format!("bad shape {s:?}: {e}")))
        .collect::<Res<Vec<u64>>>()?;
    let data = bytes[start + hlen..].to_vec();
    let want = shape.iter().product::<u64>() * dtype.size() as u64;
    if data.len() as u64 != want {
        return Err(format!("NPY data is {} bytes, shape {shape:?} of {} needs {want}", data.len(), dtype.numpy_name()));
    }
    Ok(Npy { dtype, shape, data })
}

// ---------------------------------------------------------------------------------------
// Writing a store, with an in-memory model of every array's logical contents

/// The expected logical contents of one array.
#[derive(Clone)]
struct Model {
    dtype: DType,
    shape: Vec<u64>,
    data: Vec<u8>,
}

impl Model {
    fn row_bytes(&self) -> usize {
        self.shape[1..].iter().product::<u64>() as usize * self.dtype.size()
    }
    fn row(&self, i: usize) -> &[u8] {
        let rb = self.row_bytes();
        &self.data[i * rb..(i + 1) * rb]
    }
    fn logical(&self, i: i64) -> usize {
        if i < 0 { (self.shape[0] as i64 + i) as usize } else { i as usize }
    }
    fn delete(&mut self, idx: &[i64]) {
        let gone: std::collections::BTreeSet<usize> = idx.iter().map(|&i| self.logical(i)).collect();
        let rows: Vec<u8> =
            (0..self.shape[0] as usize).filter(|i| !gone.contains(i)).flat_map(|i| self.row(i).to_vec()).collect();
        self.shape[0] -= gone.len() as u64;
        self.data = rows;
    }
    fn append(&mut self, rows: u64, data: &[u8]) {
        self.shape[0] += rows;
        self.data.extend_from_slice(data);
    }
    fn replace(&mut self, idx: &[i64], data: &[u8]) {
        let rb = self.row_bytes();
        for (k, &i) in idx.iter().enumerate() {
            let r = self.logical(i);
            self.data[r * rb..(r + 1) * rb].copy_from_slice(&data[k * rb..(k + 1) * rb]);
        }
    }
}

/// Element `i` of an array of `dtype`: small ordinary values mixed with the extremes and
/// the special floating-point values (NaN, ±inf, -0, subnormals).
fn element(dtype: DType, i: usize) -> Vec<u8> {
    use DType::*;
    let k = i as i64;
    const F64: [f64; 10] = [0.0, -0.0, 1.5, -2.25, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE / 4.0, f64::MAX, f64::MIN];
    const F32: [f32; 10] = [0.0, -0.0, 1.5, -2.25, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e-45, f32::MAX, f32::MIN];
    // float16 bit patterns: 0, -0, 1.0, -2.0, NaN, +inf, -inf, smallest subnormal, max, 0.1.
    const F16: [u16; 10] = [0x0000, 0x8000, 0x3c00, 0xc000, 0x7e00, 0x7c00, 0xfc00, 0x0001, 0x7bff, 0x2e66];
    let special = |n: usize| i % n;
    match dtype {
        Bool => vec![(i % 3 != 1) as u8],
        Uint8 => [0u8, 1, 127, 128, 255][special(5)].wrapping_add((i / 5) as u8).to_le_bytes().to_vec(),
        Int8 => [0i8, -1, 127, -128, 5][special(5)].wrapping_add((i / 5) as i8).to_le_bytes().to_vec(),
        Uint16 => [0u16, 1, u16::MAX, 0x8000][special(4)].wrapping_add(i as u16 * 7).to_le_bytes().to_vec(),
        Int16 => [0i16, -1, i16::MAX, i16::MIN][special(4)].wrapping_add(k as i16 * 7).to_le_bytes().to_vec(),
        Uint32 => [0u32, 1, u32::MAX, 0x8000_0000][special(4)].wrapping_add(i as u32 * 1_000_003).to_le_bytes().to_vec(),
        Int32 => [0i32, -1, i32::MAX, i32::MIN][special(4)].wrapping_add(k as i32 * 1_000_003).to_le_bytes().to_vec(),
        Uint64 => [0u64, 1, u64::MAX, 1 << 63][special(4)].wrapping_add(i as u64 * 0x1_0000_0001).to_le_bytes().to_vec(),
        Int64 => [0i64, -1, i64::MAX, i64::MIN][special(4)].wrapping_add(k * 0x1_0000_0001).to_le_bytes().to_vec(),
        Float16 => if i < F16.len() { F16[i] } else { 0x3c00u16 + i as u16 }.to_le_bytes().to_vec(),
        Float32 => if i < F32.len() { F32[i] } else { i as f32 * 0.25 - 3.0 }.to_le_bytes().to_vec(),
        Float64 => if i < F64.len() { F64[i] } else { i as f64 * 0.125 - 3.0 }.to_le_bytes().to_vec(),
        Complex64 => {
            let re = if i < F32.len() { F32[i] } else { i as f32 };
            let im = if i < F32.len() { F32[F32.len() - 1 - i] } else { -(i as f32) * 0.5 };
            [re.to_le_bytes(), im.to_le_bytes()].concat()
        }
        Complex128 => {
            let re = if i < F64.len() { F64[i] } else { i as f64 };
            let im = if i < F64.len() { F64[F64.len() - 1 - i] } else { -(i as f64) * 0.5 };
            [re.to_le_bytes(), im.to_le_bytes()].concat()
        }
    }
}

/// `count` elements of `dtype` starting at element `from` of the sequence above.
fn elements(dtype: DType, from: usize, count: usize) -> Vec<u8> {
    (from..from + count).flat_map(|i| element(dtype, i)).collect()
}

struct Writer {
    store: Store,
    models: BTreeMap<String, Model>,
}

fn e(what: &str) -> impl Fn(numpack::Error) -> String + '_ {
    move |err| format!("{what}: {err}")
}

impl Writer {
    fn save(&mut self, name: &str, dtype: DType, shape: &[u64], seed: usize) -> Res<()> {
        let n = shape.iter().product::<u64>() as usize;
        let data = elements(dtype, seed, n);
        self.store.save(name, dtype, shape, &data).map_err(e(&format!("save {name}")))?;
        self.models.insert(name.into(), Model { dtype, shape: shape.to_vec(), data });
        Ok(())
    }
    fn model(&mut self, name: &str) -> &mut Model {
        self.models.get_mut(name).unwrap()
    }
    fn delete(&mut self, name: &str, idx: &[i64]) -> Res<()> {
        self.store.delete_rows(name, idx).map_err(e(&format!("delete_rows {name} {idx:?}")))?;
        self.model(name).delete(idx);
        Ok(())
    }
    fn append(&mut self, name: &str, rows: u64, seed: usize) -> Res<()> {
        let m = self.models[name].clone();
        let mut shape = m.shape.clone();
        shape[0] = rows;
        let data = elements(m.dtype, seed, rows as usize * m.row_bytes() / m.dtype.size());
        self.store.append(name, m.dtype, &shape, &data).map_err(e(&format!("append {name}")))?;
        self.model(name).append(rows, &data);
        Ok(())
    }
    fn replace_rows(&mut self, name: &str, idx: &[i64], seed: usize) -> Res<()> {
        let m = self.models[name].clone();
        let data = elements(m.dtype, seed, idx.len() * m.row_bytes() / m.dtype.size());
        self.store.replace_rows(name, m.dtype, idx, &data).map_err(e(&format!("replace_rows {name} {idx:?}")))?;
        self.model(name).replace(idx, &data);
        Ok(())
    }
    fn replace_range(&mut self, name: &str, start: u64, rows: u64, seed: usize) -> Res<()> {
        let m = self.models[name].clone();
        let data = elements(m.dtype, seed, rows as usize * m.row_bytes() / m.dtype.size());
        self.store.replace_range(name, m.dtype, start, rows, &data).map_err(e(&format!("replace_range {name}")))?;
        let idx: Vec<i64> = (start as i64..(start + rows) as i64).collect();
        self.model(name).replace(&idx, &data);
        Ok(())
    }
    fn rename(&mut self, from: &str, to: &str) -> Res<()> {
        self.store.rename(from, to).map_err(e(&format!("rename {from} {to}")))?;
        let m = self.models.remove(from).unwrap();
        self.models.insert(to.into(), m);
        Ok(())
    }
    fn clone_array(&mut self, src: &str, dst: &str) -> Res<()> {
        self.store.clone_array(src, dst).map_err(e(&format!("clone {src} {dst}")))?;
        let m = self.models[src].clone();
        self.models.insert(dst.into(), m);
        Ok(())
    }
    fn compact(&mut self, name: &str) -> Res<()> {
        self.store.compact(name).map_err(e(&format!("compact {name}")))
    }
    fn drop_array(&mut self, name: &str) -> Res<()> {
        self.store.drop_array(name).map_err(e(&format!("drop {name}")))?;
        self.models.remove(name);
        Ok(())
    }
    /// Checks the store agrees with the model before handing it to NumPack.
    fn self_check(&self) -> Res<()> {
        let names = self.store.names().map_err(e("names"))?;
        let want: Vec<String> = self.models.keys().cloned().collect();
        if names != want {
            return Err(format!("store lists {names:?}, model {want:?}"));
        }
        for (name, m) in &self.models {
            let (info, data) = self.store.load(name).map_err(e(&format!("load {name}")))?;
            if info.dtype != m.dtype || info.shape != m.shape || data != m.data {
                return Err(format!("self-check: array {name:?} differs from its model"));
            }
        }
        Ok(())
    }
}

fn write(dir: &Path) -> Res<()> {
    let path = dir.join("ours.npk");
    let expected = dir.join("expected");
    fs::create_dir_all(dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    if expected.exists() {
        fs::remove_dir_all(&expected).map_err(|err| format!("cannot clear {}: {err}", expected.display()))?;
    }
    fs::create_dir_all(&expected).map_err(|err| format!("cannot create {}: {err}", expected.display()))?;
    let store = Store::open(&path, OpenOptions { drop_if_exists: true, ..Default::default() }).map_err(e("open"))?;
    let mut w = Writer { store, models: BTreeMap::new() };

    // Every dtype, 2-D.
    for (k, &d) in DType::ALL.iter().enumerate() {
        w.save(&format!("dt_{}", d.numpy_name()), d, &[7, 3], k)?;
    }
    // 1-D to 4-D, and zero-row arrays.
    w.save("shape_1d", DType::Float64, &[13], 0)?;
    w.save("shape_3d", DType::Int32, &[4, 3, 2], 0)?;
    w.save("shape_4d", DType::Uint16, &[3, 2, 2, 5], 0)?;
    w.save("shape_1x1", DType::Complex64, &[1, 1], 0)?;
    w.save("empty_rows", DType::Float32, &[0, 4], 0)?;
    w.save("empty_1d", DType::Int64, &[0], 0)?;
    w.save("empty_then_appended", DType::Int16, &[0, 2], 0)?;
    w.append("empty_then_appended", 3, 100)?;

    // Deleted rows (across bitmap word boundaries, negative index, repeats), then
    // appends: some rows land in the last partially used word, then a new word.
    w.save("deleted", DType::Int64, &[130, 3], 0)?;
    w.delete("deleted", &[0, 5, 63, 64, 127, -1, 5])?;
    w.delete("deleted", &[10, 11, 12, 13, 14, 15, 16, 17, 18, 19])?;
    w.append("deleted", 2, 500)?;
    w.append("deleted", 70, 600)?;
    w.delete("deleted", &[-3, 100])?;
    // Deleted rows only (no append), 1-D, bool.
    w.save("deleted_only", DType::Bool, &[20], 0)?;
    w.delete("deleted_only", &[1, 3, 19])?;
    // Every row deleted.
    w.save("all_deleted", DType::Float32, &[5, 2], 0)?;
    w.delete("all_deleted", &[0, 1, 2, 3, 4])?;
    // Deletion then compaction (bitmap gone, file rewritten).
    w.save("compacted", DType::Uint8, &[70, 4], 0)?;
    w.delete("compacted", &[2, 40, 69])?;
    w.compact("compacted")?;
    w.append("compacted", 3, 77)?;

    // In-place replacement: contiguous, scattered (unsorted, repeated), after deletion.
    w.save("replaced", DType::Float32, &[10, 4], 0)?;
    w.replace_range("replaced", 2, 3, 1000)?;
    w.replace_rows("replaced", &[7, 0, 9, -2], 2000)?;
    w.save("replaced_after_delete", DType::Float64, &[12, 2], 0)?;
    w.delete("replaced_after_delete", &[0, 4, 5])?;
    w.replace_rows("replaced_after_delete", &[0, 3, 8], 3000)?;
    w.replace_range("replaced_after_delete", 4, 2, 4000)?;
    // Overwritten by a save with another shape and dtype.
    w.save("resaved", DType::Int8, &[4, 4], 0)?;
    w.delete("resaved", &[1])?;
    w.save("resaved", DType::Complex128, &[3, 2], 5)?;

    // Rename (plain, and one carrying a bitmap), clone (of an array with deletions).
    w.save("before_rename", DType::Uint32, &[6, 2], 0)?;
    w.rename("before_rename", "renamed")?;
    w.save("before_rename_deleted", DType::Int16, &[9, 2], 0)?;
    w.delete("before_rename_deleted", &[4, 8])?;
    w.rename("before_rename_deleted", "renamed_deleted")?;
    w.clone_array("deleted", "cloned")?;
    w.save("cloned_src_changed_later", DType::Float16, &[8, 2], 0)?;
    w.clone_array("cloned_src_changed_later", "cloned2")?;
    w.replace_rows("cloned_src_changed_later", &[0], 900)?;
    // Dropped arrays must not be listed.
    w.save("dropped", DType::Float32, &[3, 3], 0)?;
    w.delete("dropped", &[0])?;
    w.drop_array("dropped")?;
    // A non-ASCII name.
    w.save("naïve_名前", DType::Int32, &[3], 0)?;

    w.self_check()?;
    let Writer { store, models } = w;
    store.close().map_err(e("close"))?;

    for (name, m) in &models {
        let p = expected.join(format!("{name}.npy"));
        fs::write(&p, npy_bytes(m.dtype, &m.shape, &m.data)).map_err(|err| format!("cannot write {}: {err}", p.display()))?;
    }
    println!("wrote {} arrays to {} and their expected contents to {}", models.len(), path.display(), expected.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Verifying a store against .npy files

fn verify(store_path: &Path, expected: &Path) -> Res<()> {
    let mut want: BTreeMap<String, PathBuf> = BTreeMap::new();
    for entry in fs::read_dir(expected).map_err(|err| format!("cannot list {}: {err}", expected.display()))? {
        let p = entry.map_err(|err| err.to_string())?.path();
        if let (Some(stem), Some("npy")) = (p.file_stem().and_then(|s| s.to_str()), p.extension().and_then(|s| s.to_str())) {
            want.insert(stem.to_string(), p.clone());
        }
    }
    let store = Store::open(store_path, OpenOptions { read_only: true, ..Default::default() })
        .map_err(|err| format!("cannot open {}: {err}", store_path.display()))?;
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut fail = |what: String| {
        println!("FAIL {what}");
        failed += 1;
    };
    let names = store.names().map_err(e("names"))?;
    let want_names: Vec<String> = want.keys().cloned().collect();
    if names == want_names {
        passed += 1;
    } else {
        fail(format!("member list: store has {names:?}, expected {want_names:?}"));
    }
    for (name, p) in &want {
        let npy = match fs::read(p).map_err(|err| err.to_string()).and_then(|b| parse_npy(&b)) {
            Ok(n) => n,
            Err(err) => {
                fail(format!("{name}: cannot read {}: {err}", p.display()));
                continue;
            }
        };
        let (info, data) = match store.load(name) {
            Ok(x) => x,
            Err(err) => {
                fail(format!("{name}: load failed: {err}"));
                continue;
            }
        };
        if info.dtype != npy.dtype {
            fail(format!("{name}: dtype {} but expected {}", info.dtype.numpy_name(), npy.dtype.numpy_name()));
        } else if info.shape != npy.shape {
            fail(format!("{name}: shape {:?} but expected {:?}", info.shape, npy.shape));
        } else if data != npy.data {
            let first = data.iter().zip(&npy.data).position(|(a, b)| a != b).unwrap_or(0);
            fail(format!("{name}: contents differ (first at byte {first} of {})", data.len()));
        } else {
            passed += 1;
        }
        // Rows read back by index and by range agree with the full load.
        if !info.shape.is_empty() && info.shape[0] > 0 && npy.shape == info.shape {
            let rb = info.row_bytes() as usize;
            let rows = info.shape[0] as i64;
            let idx = [rows - 1, 0, -1, rows / 2];
            let mut out = vec![0u8; idx.len() * rb];
            let ok = store.read_rows_into(name, &idx, &mut out).is_ok()
                && idx.iter().enumerate().all(|(k, &i)| {
                    let r = if i < 0 { rows + i } else { i } as usize;
                    out[k * rb..(k + 1) * rb] == npy.data[r * rb..(r + 1) * rb]
                });
            let mut range = vec![0u8; (rows as usize - 1) * rb];
            let ok = ok
                && store.read_range_into(name, 1, rows as u64, &mut range).is_ok()
                && range == npy.data[rb..];
            if ok { passed += 1 } else { fail(format!("{name}: row reads disagree with the expected rows")) }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 { Err(format!("{failed} checks failed")) } else { Ok(()) }
}
