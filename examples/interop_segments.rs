//! Interoperability with NumPack 0.7.0's segmented arrays, our side (driven by
//! `tests/interop/segments.sh` with `tests/interop/segments07.py` on NumPack's side).
//! Expected contents travel as `.npy` files, one per array (`<name>.npy`), computed
//! independently of either library's reading.
//!
//! `interop_segments check <store> <expected_dir>`
//!     opens the store read-only and checks that its arrays are exactly the `.npy` files
//!     (dtype, shape, bytes) through load, rows, ranges, a view and a stream, and that
//!     `check` finds nothing wrong.
//! `interop_segments mutate <store> <expected_dir>`
//!     appends (topping up the last segment, then new ones, with the segment target from
//!     `NUMPACK_SEGMENT_TARGET_BYTES` as NumPack 0.7 does), replaces rows across segments,
//!     deletes rows and compacts every other array; closes the store (so NumPack sees
//!     the catalogue) and rewrites the `.npy` files with the new expected contents.
//! `interop_segments write <store> <expected_dir>`
//!     writes plain arrays with deleted rows, for NumPack 0.7's `update()` to turn into
//!     segments (the reverse direction), and their expected `.npy` files.
//!
//! Each prints "N passed, M failed" last and exits 1 on a failure.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::ExitCode;

use numpack::{DType, OpenOptions, Store};

struct Arr {
    dtype: DType,
    shape: Vec<u64>,
    data: Vec<u8>,
}

impl Arr {
    fn row_bytes(&self) -> usize {
        self.shape[1..].iter().product::<u64>() as usize * self.dtype.size()
    }
}

fn read_expected(dir: &Path) -> BTreeMap<String, Arr> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir).expect("cannot list the expected directory") {
        let path = e.unwrap().path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".npy")).map(str::to_string) else { continue };
        let info = numpack::npy::info(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let data = fs::read(&path).unwrap()[info.data_offset as usize..].to_vec();
        out.insert(name, Arr { dtype: info.dtype, shape: info.shape, data });
    }
    out
}

fn write_expected(dir: &Path, name: &str, a: &Arr) {
    let mut b = numpack::npy::appendable_header(a.dtype, &a.shape);
    b.extend_from_slice(&a.data);
    fs::write(dir.join(format!("{name}.npy")), b).unwrap();
}

struct Tally {
    passed: u32,
    failed: u32,
}

impl Tally {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            eprintln!("FAIL: {}", what());
        }
    }
    fn finish(&self) -> ExitCode {
        println!("{} passed, {} failed", self.passed, self.failed);
        if self.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
    }
}

fn check(store: &Path, dir: &Path) -> ExitCode {
    let mut t = Tally { passed: 0, failed: 0 };
    let want = read_expected(dir);
    let s = match Store::open(store, OpenOptions { read_only: true, ..Default::default() }) {
        Ok(s) => s,
        Err(e) => {
            t.check(false, || format!("cannot open {}: {e}", store.display()));
            return t.finish();
        }
    };
    let names = s.names().unwrap_or_default();
    t.check(names == want.keys().cloned().collect::<Vec<_>>(), || format!("arrays {names:?}, expected {:?}", want.keys()));
    for (name, a) in &want {
        let got = s.load(name);
        t.check(got.as_ref().is_ok_and(|(i, d)| i.dtype == a.dtype && i.shape == a.shape && *d == a.data), || match &got {
            Ok((i, _)) => format!("{name}: load gives {:?} {:?}, expected {:?} {:?} (or other bytes)", i.dtype, i.shape, a.dtype, a.shape),
            Err(e) => format!("{name}: load failed: {e}"),
        });
        let rb = a.row_bytes();
        let rows = a.shape[0];
        if rows == 0 {
            continue;
        }
        let idx: Vec<i64> = (0..rows as i64).rev().step_by(7).chain([0, -1]).collect();
        let mut out = vec![0u8; idx.len() * rb];
        let r = s.read_rows_into(name, &idx, &mut out);
        let exp: Vec<u8> = idx.iter().flat_map(|&i| {
            let i = if i < 0 { (i + rows as i64) as usize } else { i as usize };
            a.data[i * rb..(i + 1) * rb].to_vec()
        }).collect();
        t.check(r.is_ok() && out == exp, || format!("{name}: read_rows {r:?}"));
        let (lo, hi) = (rows / 3, rows - rows / 4);
        let mut out = vec![0u8; (hi - lo) as usize * rb];
        let r = s.read_range_into(name, lo, hi, &mut out);
        t.check(r.is_ok() && out == a.data[lo as usize * rb..hi as usize * rb], || format!("{name}: rows {lo}..{hi} {r:?}"));
        match s.view(name, false) {
            Ok(v) => {
                let got: Vec<u8> = match v.row_map() {
                    None => v.bytes().to_vec(),
                    Some(m) => m.iter().flat_map(|&p| v.bytes()[p as usize * rb..(p as usize + 1) * rb].to_vec()).collect(),
                };
                t.check(got == a.data, || format!("{name}: view differs"));
            }
            Err(e) => t.check(false, || format!("{name}: view failed: {e}")),
        }
        let mut streamed = Vec::new();
        let mut st = s.stream(name, 61).unwrap();
        let mut buf = vec![0u8; 61 * rb];
        while let Ok(n) = st.next_into(&mut buf) {
            if n == 0 {
                break;
            }
            streamed.extend_from_slice(&buf[..n as usize * rb]);
        }
        t.check(streamed == a.data, || format!("{name}: stream differs"));
    }
    drop(s);
    match numpack::check::check(store) {
        Ok(r) => {
            let bad: Vec<String> = r.findings.iter().filter(|f| f.severity >= numpack::check::Severity::Warning).map(|f| format!("{} {:?}: {}", f.id, f.file, f.message)).collect();
            t.check(bad.is_empty(), || format!("check: {bad:#?}"));
        }
        Err(e) => t.check(false, || format!("check failed: {e}")),
    }
    t.finish()
}

/// Deterministic row contents that are valid for every dtype (0/1 for bool).
fn pattern(dtype: DType, n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| if dtype == DType::Bool { ((i + seed as usize) % 2) as u8 } else { (i as u8).wrapping_mul(31).wrapping_add(seed) }).collect()
}

fn mutate(store: &Path, dir: &Path) -> ExitCode {
    let mut t = Tally { passed: 0, failed: 0 };
    let mut want = read_expected(dir);
    let s = Store::open(store, OpenOptions::default()).expect("cannot open the store");
    for (k, (name, a)) in want.iter_mut().enumerate() {
        let rb = a.row_bytes();
        let rows = a.shape[0] as usize;
        if rows < 10 || rb == 0 {
            continue;
        }
        let add = rows / 2 + 7;
        let mut shape = a.shape.clone();
        shape[0] = add as u64;
        let data = pattern(a.dtype, add * rb, k as u8);
        let r = s.append(name, a.dtype, &shape, &data);
        t.check(r.is_ok(), || format!("{name}: append {r:?}"));
        a.data.extend_from_slice(&data);
        let total = rows + add;
        // Rows in different segments, given in no particular order.
        let idx: Vec<i64> = vec![(total / 2) as i64, 0, -1, (rows - 1) as i64];
        let new = pattern(a.dtype, idx.len() * rb, 100 + k as u8);
        let r = s.replace_rows(name, a.dtype, &idx, &new);
        t.check(r.is_ok(), || format!("{name}: replace {r:?}"));
        for (j, &i) in idx.iter().enumerate() {
            let i = if i < 0 { (i + total as i64) as usize } else { i as usize };
            a.data[i * rb..(i + 1) * rb].copy_from_slice(&new[j * rb..(j + 1) * rb]);
        }
        let gone = [1usize, total / 3, total - 2];
        let r = s.delete_rows(name, &gone.iter().map(|&g| g as i64).collect::<Vec<_>>());
        t.check(r.is_ok(), || format!("{name}: delete {r:?}"));
        let mut rows_v: Vec<&[u8]> = a.data.chunks(rb).collect();
        for &g in gone.iter().rev() {
            rows_v.remove(g);
        }
        a.data = rows_v.concat();
        a.shape[0] = (total - gone.len()) as u64;
        if k % 2 == 0 {
            let r = s.compact(name);
            t.check(r.is_ok(), || format!("{name}: compact {r:?}"));
        }
        let got = s.load(name).map(|(_, d)| d);
        t.check(got.as_ref().is_ok_and(|d| *d == a.data), || format!("{name}: contents after the changes differ"));
    }
    let r = s.close();
    t.check(r.is_ok(), || format!("close {r:?}"));
    for (name, a) in &want {
        write_expected(dir, name, a);
    }
    t.finish()
}

fn write(store: &Path, dir: &Path) -> ExitCode {
    let mut t = Tally { passed: 0, failed: 0 };
    let s = Store::open(store, OpenOptions { create: true, ..Default::default() }).expect("cannot create the store");
    let arrays = [("ours_f32", DType::Float32, vec![900u64, 5]), ("ours_i16", DType::Int16, vec![3000]), ("ours_u8", DType::Uint8, vec![400, 3, 7])];
    for (k, (name, dtype, shape)) in arrays.iter().enumerate() {
        let n = shape.iter().product::<u64>() as usize * dtype.size();
        let data = pattern(*dtype, n, 7 + k as u8);
        let r = s.save(name, *dtype, shape, &data);
        t.check(r.is_ok(), || format!("{name}: save {r:?}"));
        let rb = n / shape[0] as usize;
        let gone = [2usize, 3, shape[0] as usize / 2];
        let r = s.delete_rows(name, &gone.iter().map(|&g| g as i64).collect::<Vec<_>>());
        t.check(r.is_ok(), || format!("{name}: delete {r:?}"));
        let mut rows: Vec<&[u8]> = data.chunks(rb).collect();
        for &g in gone.iter().rev() {
            rows.remove(g);
        }
        let mut shape = shape.clone();
        shape[0] -= gone.len() as u64;
        write_expected(dir, name, &Arr { dtype: *dtype, shape, data: rows.concat() });
    }
    let r = s.close();
    t.check(r.is_ok(), || format!("close {r:?}"));
    t.finish()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, store, dir] if cmd == "check" => check(Path::new(store), Path::new(dir)),
        [cmd, store, dir] if cmd == "mutate" => mutate(Path::new(store), Path::new(dir)),
        [cmd, store, dir] if cmd == "write" => {
            fs::create_dir_all(dir).unwrap();
            write(Path::new(store), Path::new(dir))
        }
        _ => {
            eprintln!("usage: interop_segments check|mutate|write <store> <expected_dir>");
            ExitCode::from(2)
        }
    }
}
