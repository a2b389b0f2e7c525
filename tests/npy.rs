//! `.npy` / `.npz` interop: import of files NumPy wrote (every dtype, both byte orders,
//! Fortran order, header versions 1-3, npz stored and deflated), export round trips,
//! in-place appends (also concurrent), making legacy files appendable, and recovery.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use numpack::npy::{self, AppendOptions};
use numpack::{DType, ErrorCode, OpenOptions, Store};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/npy")
}

/// `dir/src/name`, its directory created.
fn fixtures_tmp(dir: &Path, name: &str) -> PathBuf {
    fs::create_dir_all(dir.join("src")).unwrap();
    dir.join("src").join(name)
}

fn store(dir: &Path) -> Store {
    Store::open(dir.join("store"), OpenOptions { create: true, ..Default::default() }).unwrap()
}

fn sample(dtype: DType, elems: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(elems * dtype.size());
    for _ in 0..elems * dtype.size() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(if dtype == DType::Bool { ((x >> 29) & 1) as u8 } else { (x >> 24) as u8 });
    }
    out
}

/// `bytes` with the first occurrence of `from` replaced by `to` (same length).
fn replace_bytes(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes.windows(from.len()).position(|w| w == from).expect("pattern present");
    let mut out = bytes.to_vec();
    out[at..at + from.len()].copy_from_slice(to);
    out
}

/// A .npy as NumPy before 1.23 wrote it (`align` 16: the header padded to 16 bytes, no
/// room to grow) or with no padding at all (`align` 1, also valid).
fn tight_npy(descr: &str, shape: &str, data: &[u8], align: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let total = (10 + dict.len() + 1).div_ceil(align) * align;
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

fn err_code<T: std::fmt::Debug>(r: numpack::Result<T>) -> (ErrorCode, String) {
    let e = r.expect_err("expected an error");
    (e.code, e.message)
}

#[test]
fn every_numpy_fixture_imports_to_its_expected_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let mut count = 0;
    for entry in fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("npy") {
            continue;
        }
        let expect_path = path.with_extension("expect");
        if !expect_path.exists() {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let info = npy::info(&path).unwrap();
        let imported = npy::import(&s, &name, &path, false, None).unwrap();
        assert_eq!(imported.shape, info.shape, "{name}");
        assert_eq!(imported.dtype, info.dtype, "{name}");
        let (_, data) = s.load(&name).unwrap();
        assert_eq!(data, fs::read(&expect_path).unwrap(), "{name}: imported bytes differ");
        count += 1;
    }
    assert!(count >= 30, "only {count} fixtures found");
    // The header details the fixtures were made to exercise.
    assert!(npy::info(fixtures().join("float64_be.npy")).unwrap().big_endian);
    assert!(npy::info(fixtures().join("f32_fortran_2d.npy")).unwrap().fortran_order);
    assert_eq!(npy::info(fixtures().join("f64_v2.npy")).unwrap().version, (2, 0));
    assert_eq!(npy::info(fixtures().join("i64_v3.npy")).unwrap().version, (3, 0));
    let legacy = npy::info(fixtures().join("float32_le.npy")).unwrap();
    assert_eq!((legacy.dtype, legacy.shape.clone(), legacy.data_offset), (DType::Float32, vec![3, 2], 128));
}

#[test]
fn unsupported_dtypes_and_scalars_are_refused_naming_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    for (file, descr) in [("unicode", "<U2"), ("object", "|O"), ("datetime", "<M8[D]"), ("structured", "('a', '<i4')")] {
        let (code, msg) = err_code(npy::import(&s, file, fixtures().join(format!("{file}.npy")), false, None));
        assert_eq!(code, ErrorCode::Unsupported, "{file}: {msg}");
        assert!(msg.contains(descr), "{file}: {msg}");
    }
    let (code, msg) = err_code(npy::import(&s, "x", fixtures().join("scalar_0d.npy"), false, None));
    assert_eq!(code, ErrorCode::ShapeMismatch, "{msg}");
    assert!(msg.contains("0-d"), "{msg}");
    assert!(s.names().unwrap().is_empty(), "a refused import left arrays behind");
}

#[test]
fn npz_stored_and_deflated_import_every_member() {
    for archive in ["stored.npz", "deflated.npz"] {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let names = npy::import_npz(&s, fixtures().join(archive), false, None).unwrap();
        assert_eq!(names, ["a", "b", "c", "d"], "{archive}");
        // Member "c" (Fortran order) went through a temporary file, since removed.
        let leftovers: Vec<_> = fs::read_dir(s.path()).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).filter(|n| n.to_string_lossy().starts_with("npk-tmp-")).collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        for (name, shape) in [("a", vec![4u64, 3]), ("b", vec![5]), ("c", vec![3, 5]), ("d", vec![0, 2])] {
            let (info, data) = s.load(name).unwrap();
            assert_eq!(info.shape, shape, "{archive}:{name}");
            assert_eq!(data, fs::read(fixtures().join(format!("npz_{name}.expect"))).unwrap(), "{archive}:{name}");
        }
        // Existing names are refused before anything is written; overwrite replaces.
        let (code, _) = err_code(npy::import_npz(&s, fixtures().join(archive), false, None));
        assert_eq!(code, ErrorCode::AlreadyExists);
        npy::import_npz(&s, fixtures().join(archive), true, None).unwrap();
        assert_eq!(s.names().unwrap(), ["a", "b", "c", "d"]);
    }
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let (code, msg) = err_code(npy::import_npz(&s, fixtures().join("f64_1d.npy"), false, None));
    assert_eq!(code, ErrorCode::Corrupt, "{msg}");
    // A damaged deflated member is reported, and a bad one leaves no array behind.
    let mut bytes = fs::read(fixtures().join("deflated.npz")).unwrap();
    let cut = bytes.len() / 3;
    bytes[cut..cut + 16].fill(0xAA);
    fs::write(dir.path().join("bad.npz"), &bytes).unwrap();
    assert!(npy::import_npz(&s, dir.path().join("bad.npz"), false, None).is_err());
}

#[test]
fn export_round_trips_every_dtype_and_rank_and_leaves_deleted_rows_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let shapes: [&[u64]; 5] = [&[7], &[5, 3], &[4, 2, 3], &[3, 2, 2, 2], &[0, 4]];
    for (k, dtype) in DType::ALL.iter().enumerate() {
        for (j, shape) in shapes.iter().enumerate() {
            let elems = shape.iter().product::<u64>() as usize;
            let data = sample(*dtype, elems, (k * 10 + j) as u64);
            let name = format!("{}_{j}", dtype.numpy_name());
            s.save(&name, *dtype, shape, &data).unwrap();
            let file = dir.path().join(format!("{name}.npy"));
            let written = npy::export(&s, &name, &file, false, None).unwrap();
            assert_eq!((written.dtype, written.shape.as_slice(), written.appendable), (*dtype, *shape, true));
            assert_eq!(written.data_offset % 64, 0);
            assert_eq!(fs::metadata(&file).unwrap().len(), written.data_offset + data.len() as u64);
            let back = format!("{name}_back");
            npy::import(&s, &back, &file, false, None).unwrap();
            let ((a, da), (b, db)) = (s.load(&back).unwrap(), s.load(&name).unwrap());
            assert_eq!((a.dtype, a.shape, da), (b.dtype, b.shape, db), "{name}");
        }
    }
    // Deleted rows are excluded; an existing file is kept unless overwrite.
    s.save("del", DType::Int32, &[6, 2], &sample(DType::Int32, 12, 99)).unwrap();
    s.delete_rows("del", &[1, 4]).unwrap();
    let file = dir.path().join("del.npy");
    fs::write(&file, b"keep me").unwrap();
    let (code, _) = err_code(npy::export(&s, "del", &file, false, None));
    assert_eq!(code, ErrorCode::AlreadyExists);
    assert_eq!(fs::read(&file).unwrap(), b"keep me");
    npy::export(&s, "del", &file, true, None).unwrap();
    npy::import(&s, "del_back", &file, false, None).unwrap();
    let (info, data) = s.load("del_back").unwrap();
    assert_eq!(info.shape, [4, 2]);
    assert_eq!((info, data).1, s.load("del").unwrap().1);
    let (code, _) = err_code(npy::export(&s, "missing", dir.path().join("m.npy"), false, None));
    assert_eq!(code, ErrorCode::NotFound);
    assert!(!dir.path().join("m.npy").exists());
    // No temporary files are left next to the targets.
    let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn import_refuses_existing_names_and_overwrite_replaces_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.save("a", DType::Uint8, &[2], &[1, 2]).unwrap();
    let (code, _) = err_code(npy::import(&s, "a", fixtures().join("f64_1d.npy"), false, None));
    assert_eq!(code, ErrorCode::AlreadyExists);
    assert_eq!(s.load("a").unwrap().1, [1, 2]);
    npy::import(&s, "a", fixtures().join("f64_1d.npy"), true, None).unwrap();
    assert_eq!(s.info("a").unwrap().dtype, DType::Float64);
    assert_eq!(s.names().unwrap(), ["a"], "the temporary array must be gone");
    let (code, _) = err_code(npy::import(&s, "b", dir.path().join("nope.npy"), false, None));
    assert_eq!(code, ErrorCode::NotFound);
    let (code, _) = err_code(npy::import(&s, "bad/name", fixtures().join("f64_1d.npy"), false, None));
    assert_eq!(code, ErrorCode::InvalidName);
}

#[test]
fn damaged_headers_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let good = fs::read(fixtures().join("float64_le.npy")).unwrap();
    let header_end = 128;
    let replace = |from: &str, to: &str| {
        let text = String::from_utf8_lossy(&good[10..header_end]).replace(from, to);
        let mut b = good[..10].to_vec();
        b.extend_from_slice(format!("{text:<width$}", width = header_end - 10).as_bytes());
        b.extend_from_slice(&good[header_end..]);
        b
    };
    let cases: Vec<(&str, Vec<u8>, ErrorCode, &str)> = vec![
        ("empty", vec![], ErrorCode::Corrupt, "preamble"),
        ("magic", [b"NOTNPY".as_slice(), &good[6..]].concat(), ErrorCode::Corrupt, "magic"),
        ("version", [&good[..6], &[9u8, 0], &good[8..]].concat(), ErrorCode::Unsupported, "version 9.0"),
        ("cut header", good[..60].to_vec(), ErrorCode::Corrupt, "ends inside the header"),
        ("huge header", [&good[..8], &[0xff, 0xff], &good[10..]].concat(), ErrorCode::Corrupt, "ends inside the header"),
        ("no shape", replace("'shape'", "'shapf'"), ErrorCode::Corrupt, "unexpected key"),
        ("bad fortran", replace("False", "Maybe"), ErrorCode::Corrupt, "Maybe"),
        ("negative dim", replace("(3, 2)", "(-3, 2)"), ErrorCode::Corrupt, "bad header"),
        ("unclosed", replace("}", " "), ErrorCode::Corrupt, "bad header"),
        ("cut data", good[..good.len() - 5].to_vec(), ErrorCode::NeedsRecovery, "truncated"),
        ("extra data", [&good[..], &[0u8; 8]].concat(), ErrorCode::NeedsRecovery, "recover"),
    ];
    for (what, bytes, code, needle) in cases {
        let path = dir.path().join("case.npy");
        fs::write(&path, &bytes).unwrap();
        let (got, msg) = err_code(npy::import(&s, "x", &path, false, None));
        assert_eq!(got, code, "{what}: {msg}");
        assert!(msg.contains(needle), "{what}: {msg}");
        assert!(msg.contains("case.npy"), "{what}: the message should name the file: {msg}");
    }
    assert!(s.names().unwrap().is_empty());
}

#[test]
fn append_grows_the_header_in_place_and_checks_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    npy::create_appendable(&path, DType::Float32, &[3]).unwrap();
    let (code, _) = err_code(npy::create_appendable(&path, DType::Float32, &[3]));
    assert_eq!(code, ErrorCode::AlreadyExists);
    let header = npy::info(&path).unwrap();
    assert_eq!((header.shape.clone(), header.appendable), (vec![0, 3], true));
    let mut all = Vec::new();
    for i in 0..20u64 {
        let rows = sample(DType::Float32, 3 * (i as usize % 4), i);
        let total = npy::append(&path, &rows, DType::Float32, &[3], AppendOptions { sync: i % 5 == 0, create: false }).unwrap();
        all.extend_from_slice(&rows);
        assert_eq!(total, all.len() as u64 / 12);
    }
    let info = npy::info(&path).unwrap();
    assert_eq!(info.data_offset, header.data_offset, "the data must not move");
    assert_eq!(info.shape, [all.len() as u64 / 12, 3]);
    assert_eq!(&fs::read(&path).unwrap()[info.data_offset as usize..], &all[..]);
    // Rejections leave the file as it was.
    let before = fs::read(&path).unwrap();
    let bad = [
        npy::append(&path, &[0; 12], DType::Int32, &[3], AppendOptions::default()),
        npy::append(&path, &[0; 16], DType::Float32, &[4], AppendOptions::default()),
        npy::append(&path, &[0; 10], DType::Float32, &[3], AppendOptions::default()),
        npy::append(dir.path().join("none.npy"), &[0; 12], DType::Float32, &[3], AppendOptions::default()),
    ];
    let codes: Vec<ErrorCode> = bad.into_iter().map(|r| r.unwrap_err().code).collect();
    assert_eq!(codes, [ErrorCode::DtypeMismatch, ErrorCode::ShapeMismatch, ErrorCode::BufferSize, ErrorCode::NotFound]);
    assert_eq!(fs::read(&path).unwrap(), before);
    // `create` makes the file on first use.
    let fresh = dir.path().join("fresh.npy");
    assert_eq!(npy::append(&fresh, &[1, 0, 1], DType::Bool, &[], AppendOptions { sync: false, create: true }).unwrap(), 3);
    assert_eq!(npy::info(&fresh).unwrap().shape, [3]);
}

#[test]
fn legacy_and_fortran_files_are_made_appendable_by_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    // NumPy >= 1.23 leaves room to grow in its headers; older versions did not.
    let tight_data = sample(DType::Uint16, 8, 4);
    fs::write(fixtures_tmp(dir.path(), "tight.expect"), &tight_data).unwrap();
    fs::write(fixtures_tmp(dir.path(), "tight.npy"), tight_npy("<u2", "(2, 2, 2)", &tight_data, 16)).unwrap();
    assert!(!npy::info(fixtures_tmp(dir.path(), "tight.npy")).unwrap().appendable);
    for name in ["tight", "float64_le", "int32_be", "f32_fortran_2d", "i16_fortran_3d_be", "f64_v2", "f32_zero_rows"] {
        let path = dir.path().join(format!("{name}.npy"));
        let src_dir = if name == "tight" { dir.path().join("src") } else { fixtures() };
        fs::copy(src_dir.join(format!("{name}.npy")), &path).unwrap();
        let info = npy::info(&path).unwrap();
        let row_shape = info.shape[1..].to_vec();
        let row = sample(info.dtype, row_shape.iter().product::<u64>() as usize, 5);
        if !info.appendable {
            let (code, msg) = err_code(npy::append(&path, &row, info.dtype, &row_shape, AppendOptions::default()));
            assert_eq!(code, ErrorCode::Unsupported, "{name}: {msg}");
            assert!(msg.contains("appendable"), "{msg}");
        }
        assert_eq!(npy::make_appendable(&path, None).unwrap(), !info.appendable, "{name}");
        assert!(!npy::make_appendable(&path, None).unwrap(), "{name}: a second call has nothing to do");
        let after = npy::info(&path).unwrap();
        assert!(after.appendable && !after.fortran_order, "{name}");
        npy::append(&path, &row, info.dtype, &row_shape, AppendOptions::default()).unwrap();
        npy::import(&s, name, &path, false, None).unwrap();
        let mut want = fs::read(src_dir.join(format!("{name}.expect"))).unwrap();
        want.extend_from_slice(&row);
        assert_eq!(s.load(name).unwrap().1, want, "{name}");
    }
}

#[test]
fn big_endian_appendable_files_get_big_endian_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("be.npy");
    let header = npy::appendable_header(DType::Complex64, &[0, 2]);
    fs::write(&path, replace_bytes(&header, b"'<c8'", b"'>c8'")).unwrap();
    let rows = sample(DType::Complex64, 6, 3);
    npy::append(&path, &rows, DType::Complex64, &[2], AppendOptions::default()).unwrap();
    let info = npy::info(&path).unwrap();
    assert!(info.big_endian);
    let raw = fs::read(&path).unwrap()[info.data_offset as usize..].to_vec();
    let mut swapped = rows.clone();
    swapped.chunks_exact_mut(4).for_each(|c| c.reverse());
    assert_eq!(raw, swapped, "each float of each complex is swapped on its own");
    let s = store(dir.path());
    npy::import(&s, "be", &path, false, None).unwrap();
    assert_eq!(s.load("be").unwrap().1, rows);
}

#[test]
fn concurrent_appenders_lose_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.npy");
    let threads = 6u64;
    let per = 40u64;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let path = &path;
            scope.spawn(move || {
                for i in 0..per {
                    // Two rows of [thread, i, k]: each row is unique.
                    let mut rows = Vec::new();
                    for k in 0..2u64 {
                        for v in [t, i, k] {
                            rows.extend_from_slice(&v.to_le_bytes());
                        }
                    }
                    npy::append(path, &rows, DType::Uint64, &[3], AppendOptions { sync: false, create: true }).unwrap();
                }
            });
        }
    });
    let info = npy::info(&path).unwrap();
    assert_eq!(info.shape, [threads * per * 2, 3]);
    let data = fs::read(&path).unwrap()[info.data_offset as usize..].to_vec();
    let mut seen = std::collections::HashSet::new();
    for row in data.chunks_exact(24) {
        let v: Vec<u64> = row.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap())).collect();
        assert!(v[0] < threads && v[1] < per && v[2] < 2, "garbage row {v:?}");
        assert!(seen.insert(v), "a row was written twice");
    }
    assert_eq!(seen.len() as u64, threads * per * 2);
}

#[test]
fn recover_drops_or_zero_fills_a_partial_row_and_fixes_a_lagging_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.npy");
    let rows = sample(DType::Int16, 5 * 4, 8);
    npy::append(&path, &rows, DType::Int16, &[4], AppendOptions { sync: false, create: true }).unwrap();
    let clean = npy::recover(&path, false).unwrap();
    assert!(clean.was_clean());
    assert_eq!(clean.rows, 5);
    let offset = npy::info(&path).unwrap().data_offset;

    // A crash in the middle of writing a row: 3 of its 8 bytes made it.
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&[9, 9, 9]).unwrap();
    drop(f);
    let (code, msg) = err_code(npy::append(&path, &rows[..8], DType::Int16, &[4], AppendOptions::default()));
    assert_eq!(code, ErrorCode::NeedsRecovery, "{msg}");
    let saved = fs::read(&path).unwrap();
    let rep = npy::recover(&path, false).unwrap();
    assert_eq!((rep.header_rows, rep.rows, rep.dropped_bytes, rep.zero_filled_bytes, rep.rewritten), (5, 5, 3, 0, false));
    assert_eq!(fs::read(&path).unwrap(), saved[..saved.len() - 3]);

    // Same, zero-filled on request.
    fs::write(&path, &saved).unwrap();
    let rep = npy::recover(&path, true).unwrap();
    assert_eq!((rep.rows, rep.dropped_bytes, rep.zero_filled_bytes), (6, 0, 5));
    let now = fs::read(&path).unwrap();
    assert_eq!(&now[offset as usize + 40..], &[9, 9, 9, 0, 0, 0, 0, 0]);
    assert_eq!(npy::info(&path).unwrap().shape, [6, 4]);

    // A crash after the data but before the header: the header lags two rows behind.
    fs::write(&path, &saved[..saved.len() - 3]).unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&rows[..16]).unwrap();
    drop(f);
    let rep = npy::recover(&path, false).unwrap();
    assert_eq!((rep.header_rows, rep.rows, rep.dropped_bytes), (5, 7, 0));
    npy::append(&path, &rows[..8], DType::Int16, &[4], AppendOptions::default()).unwrap();
    assert_eq!(npy::info(&path).unwrap().shape, [8, 4]);

    // A file without spare header room whose row count gains a digit is rewritten.
    let legacy = dir.path().join("legacy.npy");
    let mut bytes = tight_npy("<f8", "(3, 2)", &sample(DType::Float64, 6, 1), 1);
    fs::write(&legacy, &bytes).unwrap();
    assert!(!npy::info(&legacy).unwrap().appendable);
    bytes.extend(std::iter::repeat_n(7u8, 8 * 16 + 5));
    fs::write(&legacy, &bytes).unwrap();
    let rep = npy::recover(&legacy, false).unwrap();
    assert_eq!((rep.header_rows, rep.rows, rep.dropped_bytes, rep.rewritten), (3, 11, 5, true));
    assert!(npy::info(&legacy).unwrap().appendable);
    let info = npy::info(&legacy).unwrap();
    assert_eq!(info.shape, [11, 2]);
    assert_eq!(info.file_size, info.data_offset + 11 * 16);

    // A truncated header cannot be recovered.
    fs::write(&legacy, &bytes[..40]).unwrap();
    assert_eq!(npy::recover(&legacy, false).unwrap_err().code, ErrorCode::Corrupt);
    let fortran = dir.path().join("f.npy");
    let mut fb = fs::read(fixtures().join("f32_fortran_2d.npy")).unwrap();
    fb.pop();
    fs::write(&fortran, &fb).unwrap();
    assert_eq!(npy::recover(&fortran, false).unwrap_err().code, ErrorCode::Unsupported);
}

#[test]
fn large_fortran_import_crosses_block_boundaries() {
    // More than one 4 MiB block of output rows, in Fortran order, big-endian.
    let dir = tempfile::tempdir().unwrap();
    let (d0, d1, d2) = (70_000u64, 3u64, 5u64);
    let n = (d0 * d1 * d2) as usize;
    // Element (i, j, k) has value i*100 + j*10 + k; Fortran order stores i fastest.
    let mut file = npy::appendable_header(DType::Float64, &[d0, d1, d2]);
    file = replace_bytes(&replace_bytes(&file, b"'<f8'", b"'>f8'"), b"False", b"True ");
    file.reserve(n * 8);
    for k in 0..d2 {
        for j in 0..d1 {
            for i in 0..d0 {
                file.extend_from_slice(&((i * 100 + j * 10 + k) as f64).to_be_bytes());
            }
        }
    }
    let path = dir.path().join("big.npy");
    fs::write(&path, &file).unwrap();
    let info = npy::info(&path).unwrap();
    assert!(info.fortran_order && info.big_endian);
    let s = store(dir.path());
    npy::import(&s, "big", &path, false, None).unwrap();
    let (ai, data) = s.load("big").unwrap();
    assert_eq!(ai.shape, [d0, d1, d2]);
    let mut at = 0;
    for i in 0..d0 {
        for j in 0..d1 {
            for k in 0..d2 {
                let v = f64::from_le_bytes(data[at..at + 8].try_into().unwrap());
                assert_eq!(v, (i * 100 + j * 10 + k) as f64, "({i}, {j}, {k})");
                at += 8;
            }
        }
    }
}

#[test]
fn append_file_streams_one_npy_onto_another() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("dst.npy");
    // Created from the first source (Fortran order, big-endian), then grown by a C-order one.
    let src1 = fixtures().join("i16_fortran_3d_be.npy");
    let src1_info = npy::info(&src1).unwrap();
    let n1 = npy::append_file(&dst, &src1, AppendOptions { sync: false, create: true }, None).unwrap();
    assert_eq!(n1, src1_info.shape[0]);
    let src2 = dir.path().join("more.npy");
    let more = sample(DType::Int16, 2 * 4 * 2 * 5, 3);
    npy::create_appendable(&src2, DType::Int16, &[4, 2]).unwrap();
    npy::append(&src2, &more, DType::Int16, &[4, 2], AppendOptions::default()).unwrap();
    assert_eq!(npy::append_file(&dst, &src2, AppendOptions { sync: true, create: false }, None).unwrap(), n1 + 10);
    let info = npy::info(&dst).unwrap();
    assert_eq!(info.shape, [n1 + 10, 4, 2]);
    let mut want = fs::read(fixtures().join("i16_fortran_3d_be.expect")).unwrap();
    want.extend_from_slice(&more);
    assert_eq!(&fs::read(&dst).unwrap()[info.data_offset as usize..], &want[..]);
    // Mismatches and self-appends change nothing.
    let before = fs::read(&dst).unwrap();
    let codes: Vec<ErrorCode> = [
        npy::append_file(&dst, fixtures().join("float64_le.npy"), AppendOptions::default(), None),
        npy::append_file(&dst, fixtures().join("u16_4d.npy"), AppendOptions::default(), None),
        npy::append_file(&dst, &dst, AppendOptions::default(), None),
        npy::append_file(&dst, fixtures().join("scalar_0d.npy"), AppendOptions::default(), None),
    ]
    .into_iter()
    .map(|r| r.unwrap_err().code)
    .collect();
    assert_eq!(codes, [ErrorCode::DtypeMismatch, ErrorCode::DtypeMismatch, ErrorCode::InvalidArgument, ErrorCode::ShapeMismatch]);
    assert_eq!(fs::read(&dst).unwrap(), before);
}

#[test]
fn npz_member_not_matching_its_header_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    // A stored member whose .npy lost its last bytes.
    let npy_bytes = fs::read(fixtures().join("float64_le.npy")).unwrap();
    let cut = &npy_bytes[..npy_bytes.len() - 8];
    let path = dir.path().join("cut.npz");
    let f = fs::File::create(&path).unwrap();
    let mut zip = zip::ZipWriter::new(f);
    zip.start_file("m.npy", zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)).unwrap();
    zip.write_all(cut).unwrap();
    zip.finish().unwrap();
    let (code, msg) = err_code(npy::import_npz(&s, &path, false, None));
    assert_eq!(code, ErrorCode::Corrupt, "{msg}");
    assert!(msg.contains("m.npy"), "{msg}");
    assert!(s.names().unwrap().is_empty());
}

#[test]
fn appenders_waiting_on_a_file_being_made_appendable_move_to_the_new_file() {
    // A file without header room: appenders are refused until one thread rewrites it,
    // then every row lands in the rewritten file (an appender that opened the old file
    // before the rename reopens the path after it).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.npy");
    let initial: Vec<u8> = (0..4u32).flat_map(|v| [v, 0].map(u32::to_le_bytes).concat()).collect();
    fs::write(&path, tight_npy("<u4", "(4, 2)", &initial, 16)).unwrap();
    assert!(!npy::info(&path).unwrap().appendable);
    let (threads, per) = (4u32, 25u32);
    std::thread::scope(|scope| {
        scope.spawn(|| npy::make_appendable(&path, None).unwrap());
        for t in 0..threads {
            let path = &path;
            scope.spawn(move || {
                for i in 0..per {
                    let row = [t + 1, i].map(u32::to_le_bytes).concat();
                    loop {
                        match npy::append(path, &row, DType::Uint32, &[2], AppendOptions::default()) {
                            Ok(_) => break,
                            Err(e) if e.code == ErrorCode::Unsupported => std::thread::yield_now(),
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    let info = npy::info(&path).unwrap();
    let total = 4 + (threads * per) as u64;
    assert_eq!(info.shape, [total, 2]);
    let data = fs::read(&path).unwrap()[info.data_offset as usize..].to_vec();
    assert_eq!(data.len() as u64, total * 8);
    assert_eq!(&data[..32], &initial[..], "the original rows come first");
    let mut rows: Vec<(u32, u32)> = data[32..]
        .chunks_exact(8)
        .map(|r| (u32::from_le_bytes(r[..4].try_into().unwrap()), u32::from_le_bytes(r[4..].try_into().unwrap())))
        .collect();
    rows.sort();
    let want: Vec<(u32, u32)> = (1..=threads).flat_map(|t| (0..per).map(move |i| (t, i))).collect();
    assert_eq!(rows, want);
}

#[test]
fn damaged_npz_members_are_refused_and_leave_no_array() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let mut bytes = fs::read(fixtures().join("stored.npz")).unwrap();
    // Flip one data byte of member "b.npy" (stored, so only its CRC-32 can tell).
    let expect_b = fs::read(fixtures().join("npz_b.expect")).unwrap();
    let at = bytes.windows(expect_b.len()).position(|w| w == &expect_b[..]).expect("member b's data");
    bytes[at + 3] ^= 0x40;
    let path = dir.path().join("flipped.npz");
    fs::write(&path, &bytes).unwrap();
    let (code, msg) = err_code(npy::import_npz(&s, &path, false, None));
    assert_eq!(code, ErrorCode::Corrupt, "{msg}");
    assert!(msg.contains("b.npy"), "{msg}");
    // All or nothing: member "a", read before the damaged one, is not there either.
    assert!(s.names().unwrap().is_empty(), "{:?}", s.names());
    // A damaged deflated member likewise.
    let mut bytes = fs::read(fixtures().join("deflated.npz")).unwrap();
    let cut = bytes.len() / 3;
    bytes[cut..cut + 16].fill(0xAA);
    fs::write(&path, &bytes).unwrap();
    let (code, msg) = err_code(npy::import_npz(&s, &path, false, None));
    assert_eq!(code, ErrorCode::Corrupt, "{msg}");
    assert!(s.names().unwrap().is_empty(), "{:?}", s.names());
}

#[test]
fn temporary_arrays_of_dead_importers_are_dropped_by_the_next_import() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    // What a killed import leaves: a temporary array named after its (now dead) process.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let orphan = format!(".npy-import-{dead}-0");
    s.save(&orphan, DType::Uint8, &[1], &[7]).unwrap();
    let mine = format!(".npy-import-{}-999999", std::process::id());
    s.save(&mine, DType::Uint8, &[1], &[7]).unwrap();
    npy::import(&s, "x", fixtures().join("f64_1d.npy"), false, None).unwrap();
    let names = s.names().unwrap();
    assert!(!names.contains(&orphan), "{names:?}");
    assert!(names.contains(&mine), "a live process's temporary array must stay: {names:?}");
}

// ---------------------------------------------------------------------------------
// Progress and cancellation

/// A progress callback that records every call and returns false at call `cancel_at`.
fn recorder(calls: &mut Vec<(u64, u64)>, cancel_at: Option<usize>) -> impl FnMut(u64, u64) -> bool + '_ {
    move |done, total| {
        calls.push((done, total));
        Some(calls.len() - 1) != cancel_at
    }
}

/// The calls start at `(0, total)`, never go back, and end at `(total, total)`, with at
/// least `min_blocks` calls in between.
fn check_progress(calls: &[(u64, u64)], total: u64, min_blocks: usize) {
    assert_eq!(calls.first(), Some(&(0, total)), "{calls:?}");
    assert_eq!(calls.last(), Some(&(total, total)), "{calls:?}");
    assert!(calls.iter().all(|&(_, t)| t == total), "{calls:?}");
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "not monotone: {calls:?}");
    assert!(calls.len() > min_blocks, "{} calls for {total} bytes: {calls:?}", calls.len());
}

/// Names in `dir` other than `keep`.
fn others(dir: &Path, keep: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| !keep.contains(&n.as_str())).collect();
    v.sort();
    v
}

/// 10 MiB of float64 rows of 8: three blocks of `BLOCK_BYTES`.
const BIG_ROWS: u64 = 10 * (1 << 20) / 64;

fn big_npy(path: &Path, seed: u64) -> Vec<u8> {
    let data = sample(DType::Float64, (BIG_ROWS * 8) as usize, seed);
    npy::create_appendable(path, DType::Float64, &[8]).unwrap();
    npy::append(path, &data, DType::Float64, &[8], AppendOptions::default()).unwrap();
    data
}

#[test]
fn import_reports_progress_and_a_cancelled_import_leaves_no_array() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.npy");
    let data = big_npy(&path, 1);
    let s = store(dir.path());
    let mut calls = Vec::new();
    npy::import(&s, "a", &path, false, Some(&mut recorder(&mut calls, None))).unwrap();
    check_progress(&calls, data.len() as u64, 3);
    assert_eq!(s.load("a").unwrap().1, data);
    // Cancelled in the middle: no new array, no temporary one.
    let mut calls = Vec::new();
    let (code, msg) = err_code(npy::import(&s, "b", &path, false, Some(&mut recorder(&mut calls, Some(2)))));
    assert_eq!(code, ErrorCode::Cancelled, "{msg}");
    assert_eq!(calls.len(), 3);
    assert_eq!(s.names().unwrap(), ["a"]);
    // Cancelled over an existing array with overwrite: the old array stays.
    let small = dir.path().join("small.npy");
    npy::create_appendable(&small, DType::Float64, &[8]).unwrap();
    npy::import(&s, "a", &small, true, Some(&mut |_, _| false)).unwrap_err();
    assert_eq!(s.names().unwrap(), ["a"]);
    assert_eq!(s.load("a").unwrap().1, data);
    // A Fortran-order file reports the same way.
    let mut calls = Vec::new();
    npy::import(&s, "f", fixtures().join("i16_fortran_3d_be.npy"), false, Some(&mut recorder(&mut calls, None))).unwrap();
    check_progress(&calls, s.info("f").unwrap().nbytes(), 1);
}

#[test]
fn npz_import_reports_all_members_and_a_cancelled_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    let (d1, d2) = (big_npy(&p1, 1), big_npy(&p2, 2));
    let path = dir.path().join("two.npz");
    let mut zip = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    for (name, p) in [("x.npy", &p1), ("y.npy", &p2)] {
        zip.start_file(name, zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)).unwrap();
        zip.write_all(&fs::read(p).unwrap()).unwrap();
    }
    zip.finish().unwrap();
    let s = store(dir.path());
    for cancel_at in [0, 1, 4] {
        let mut calls = Vec::new();
        let (code, _) = err_code(npy::import_npz(&s, &path, false, Some(&mut recorder(&mut calls, Some(cancel_at)))));
        assert_eq!(code, ErrorCode::Cancelled);
        assert!(s.names().unwrap().is_empty(), "cancel at {cancel_at}: {:?}", s.names());
    }
    let mut calls = Vec::new();
    assert_eq!(npy::import_npz(&s, &path, false, Some(&mut recorder(&mut calls, None))).unwrap(), ["x", "y"]);
    check_progress(&calls, (d1.len() + d2.len()) as u64, 6);
    assert_eq!(s.load("y").unwrap().1, d2);
}

#[test]
fn export_reports_progress_and_a_cancelled_export_leaves_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.npy");
    let data = big_npy(&path, 3);
    let s = store(dir.path());
    npy::import(&s, "a", &path, false, None).unwrap();
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("a.npy");
    // Cancelled with no target: nothing appears.
    let mut calls = Vec::new();
    let (code, _) = err_code(npy::export(&s, "a", &out, false, Some(&mut recorder(&mut calls, Some(1)))));
    assert_eq!(code, ErrorCode::Cancelled);
    assert!(others(&out_dir, &[]).is_empty(), "{:?}", others(&out_dir, &[]));
    // Cancelled over an existing file: it stays as it was, no temporary file is left.
    fs::write(&out, b"old contents").unwrap();
    for cancel_at in [0, 2, 3] {
        let mut calls = Vec::new();
        let (code, _) = err_code(npy::export(&s, "a", &out, true, Some(&mut recorder(&mut calls, Some(cancel_at)))));
        assert_eq!(code, ErrorCode::Cancelled);
        assert_eq!(fs::read(&out).unwrap(), b"old contents");
        assert!(others(&out_dir, &["a.npy"]).is_empty(), "{:?}", others(&out_dir, &["a.npy"]));
    }
    let mut calls = Vec::new();
    let info = npy::export(&s, "a", &out, true, Some(&mut recorder(&mut calls, None))).unwrap();
    check_progress(&calls, data.len() as u64, 3);
    assert_eq!(&fs::read(&out).unwrap()[info.data_offset as usize..], &data[..]);
}

#[test]
fn append_file_reports_progress_and_a_cancelled_append_keeps_the_old_rows() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.npy");
    let data = big_npy(&src, 4);
    let dst = dir.path().join("dst.npy");
    let first = sample(DType::Float64, 5 * 8, 5);
    npy::append(&dst, &first, DType::Float64, &[8], AppendOptions { sync: false, create: true }).unwrap();
    let before = fs::read(&dst).unwrap();
    for cancel_at in [0, 1, 3] {
        let mut calls = Vec::new();
        let (code, _) = err_code(npy::append_file(&dst, &src, AppendOptions::default(), Some(&mut recorder(&mut calls, Some(cancel_at)))));
        assert_eq!(code, ErrorCode::Cancelled);
        assert_eq!(fs::read(&dst).unwrap(), before, "cancel at {cancel_at}");
    }
    let mut calls = Vec::new();
    assert_eq!(npy::append_file(&dst, &src, AppendOptions::default(), Some(&mut recorder(&mut calls, None))).unwrap(), 5 + BIG_ROWS);
    check_progress(&calls, data.len() as u64, 3);
    let info = npy::info(&dst).unwrap();
    assert_eq!(&fs::read(&dst).unwrap()[info.data_offset as usize..], &[first, data].concat()[..]);
}

#[test]
fn make_appendable_reports_progress_and_a_cancelled_rewrite_leaves_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(DType::Float64, (BIG_ROWS * 8) as usize, 6);
    let path = dir.path().join("legacy.npy");
    let legacy = tight_npy("<f8", &format!("({BIG_ROWS}, 8)"), &data, 16);
    fs::write(&path, &legacy).unwrap();
    let mut calls = Vec::new();
    let (code, _) = err_code(npy::make_appendable(&path, Some(&mut recorder(&mut calls, Some(2)))));
    assert_eq!(code, ErrorCode::Cancelled);
    assert_eq!(fs::read(&path).unwrap(), legacy);
    assert!(others(dir.path(), &["legacy.npy"]).is_empty(), "{:?}", others(dir.path(), &["legacy.npy"]));
    let mut calls = Vec::new();
    assert!(npy::make_appendable(&path, Some(&mut recorder(&mut calls, None))).unwrap());
    check_progress(&calls, data.len() as u64, 3);
    assert!(npy::info(&path).unwrap().appendable);
}
