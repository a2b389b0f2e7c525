//! Packages written by NumPack itself (`tests/fixtures/npkg`, see its README): zstd, its
//! zlib fallback and raw. Each is described as NumPack describes it, unpacks with the
//! footer verified, and gives exactly the arrays of `expected/*.npy`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use numpack::package;
use numpack::{DType, OpenOptions, Store};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/npkg")
}

/// An array from a `.npy` file (versions 1-3, little-endian or byte-order-free dtypes,
/// C order): its dtype, shape and bytes.
fn read_npy(path: &Path) -> (DType, Vec<u64>, Vec<u8>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY", "{}", path.display());
    let (hlen, at) = if b[6] == 1 { (u16::from_le_bytes([b[8], b[9]]) as usize, 10) } else { (u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize, 12) };
    let header = std::str::from_utf8(&b[at..at + hlen]).unwrap();
    let field = |key: &str| {
        let i = header.find(key).unwrap_or_else(|| panic!("{}: no {key} in {header}", path.display())) + key.len();
        header[i..].trim_start_matches([' ', ':', '\''])
    };
    let descr = field("'descr'");
    let descr = &descr[..descr.find('\'').unwrap()];
    assert!(field("'fortran_order'").starts_with("False"), "{}: Fortran order", path.display());
    let shape_text = field("'shape'");
    let shape: Vec<u64> = shape_text[1..shape_text.find(')').unwrap()].split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    let dtype = match descr {
        "|b1" => DType::Bool,
        "|u1" => DType::Uint8,
        "<u2" => DType::Uint16,
        "<u4" => DType::Uint32,
        "<u8" => DType::Uint64,
        "|i1" => DType::Int8,
        "<i2" => DType::Int16,
        "<i4" => DType::Int32,
        "<i8" => DType::Int64,
        "<f2" => DType::Float16,
        "<f4" => DType::Float32,
        "<f8" => DType::Float64,
        "<c8" => DType::Complex64,
        "<c16" => DType::Complex128,
        other => panic!("{}: dtype {other} not handled here", path.display()),
    };
    (dtype, shape, b[at + hlen..].to_vec())
}

fn expected() -> BTreeMap<String, (DType, Vec<u64>, Vec<u8>)> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(fixtures().join("expected")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "npy") {
            m.insert(p.file_stem().unwrap().to_str().unwrap().to_string(), read_npy(&p));
        }
    }
    assert_eq!(m.len(), 6, "the fixture's expected arrays");
    m
}

#[test]
fn packages_written_by_numpack_unpack_to_the_expected_arrays() {
    let want = expected();
    let tmp = tempfile::tempdir().unwrap();
    for (file, flag, compressed) in [("theirs-zstd.npkg", 1, true), ("theirs-zlib.npkg", 1, true), ("theirs-raw.npkg", 0, false)] {
        let pkg = fixtures().join(file);
        let info = package::info(&pkg).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!((info.version, info.compression, info.compression_name), (2, flag, if flag == 1 { "zstd" } else { "none" }), "{file}");
        let names: Vec<&str> = info.entries.iter().map(|e| e.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "{file}: NumPack sorts entries by name");
        assert!(names.contains(&"metadata.npkm") && names.contains(&"deleted_i64.npkb") && names.contains(&"deleted_ramp.npkb"), "{file}: {names:?}");
        assert_eq!(info.entries.iter().any(|e| e.stored_size > 0), compressed, "{file}");
        let len = std::fs::metadata(&pkg).unwrap().len();
        let headers: u64 = info.entries.iter().map(|e| 4 + e.name.len() as u64 + 16).sum();
        assert_eq!(len, 13 + headers + info.total_stored_size + 4, "{file}: layout");

        let out = tmp.path().join(file.replace(".npkg", ".npk"));
        let unpacked = package::unpack(&pkg, &out, false, true, None).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(unpacked.entries.iter().all(|e| e.crc32.is_some()));
        let s = Store::open(&out, OpenOptions { read_only: true, ..Default::default() }).unwrap();
        assert_eq!(s.names().unwrap(), want.keys().cloned().collect::<Vec<_>>(), "{file}");
        for (name, (dtype, shape, bytes)) in &want {
            let (info, data) = s.load(name).unwrap();
            assert_eq!(info.dtype, *dtype, "{file}: {name}");
            assert_eq!(&info.shape, shape, "{file}: {name}");
            assert!(data == *bytes, "{file}: {name}: contents differ");
        }
        s.close().unwrap();
    }
    // The three hold the same files.
    let a = package::info(&fixtures().join("theirs-zstd.npkg")).unwrap();
    let c = package::info(&fixtures().join("theirs-raw.npkg")).unwrap();
    assert_eq!(a.total_original_size, c.total_original_size);
}

#[test]
fn repacking_a_numpack_package_gives_the_same_bytes() {
    // Unpacked by us and packed again without compression: byte for byte NumPack's raw
    // package (same order, sizes, payloads and footer). Opening and closing the store
    // without changes leaves NumPack's metadata.npkm as it was.
    let tmp = tempfile::tempdir().unwrap();
    let theirs = fixtures().join("theirs-raw.npkg");
    let out = tmp.path().join("s.npk");
    package::unpack(&theirs, &out, false, true, None).unwrap();
    let s = Store::open(&out, OpenOptions::default()).unwrap();
    let ours = tmp.path().join("ours.npkg");
    package::pack(&s, &ours, &package::PackOptions { compress: false, ..Default::default() }, None).unwrap();
    s.close().unwrap();
    let (a, b) = (std::fs::read(&theirs).unwrap(), std::fs::read(&ours).unwrap());
    assert_eq!(a.len(), b.len());
    assert!(a == b, "first difference at byte {:?}", a.iter().zip(&b).position(|(x, y)| x != y));
}
