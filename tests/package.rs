//! `.npkg` packages: round trips, NumPack's layout, overwrite rules, progress and
//! cancellation, and damage of every kind refused with a clear error and no target.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{diff, random_bytes, snapshot, Model, Rng};
use numpack::package::{self, PackOptions, PackageInfo};
use numpack::{DType, ErrorCode, OpenOptions, Store};

fn create(path: &Path) -> Store {
    Store::open(path, OpenOptions { create: true, ..Default::default() }).unwrap()
}

fn open(path: &Path) -> Store {
    Store::open(path, OpenOptions::default()).unwrap()
}

/// Bytes of `rows` rows of `dtype` with row shape `row`, valid for the dtype (bools 0/1).
fn data(rng: &mut Rng, dtype: DType, shape: &[u64]) -> Vec<u8> {
    let n = shape.iter().product::<u64>() as usize * dtype.size();
    let mut b = random_bytes(rng, n);
    if dtype == DType::Bool {
        b.iter_mut().for_each(|x| *x &= 1);
    }
    b
}

/// A store with every dtype, deletions, empty arrays, and with `big` a 3 MiB
/// incompressible array and a 2 MiB compressible one.
fn build_store(path: &Path, big: bool) -> Model {
    let s = create(path);
    let mut rng = Rng::new(7);
    for d in DType::ALL {
        let shape = [7, 3];
        s.save(&format!("dt_{}", d.numpy_name()), d, &shape, &data(&mut rng, d, &shape)).unwrap();
    }
    s.save("deleted", DType::Int32, &[100, 4], &data(&mut rng, DType::Int32, &[100, 4])).unwrap();
    s.delete_rows("deleted", &[0, 5, 50, -1]).unwrap();
    s.save("empty_rows", DType::Float32, &[0, 5], &[]).unwrap();
    s.save("empty_1d", DType::Int64, &[0], &[]).unwrap();
    if big {
        // Fresh random words: random_bytes repeats a pool, which zstd would find.
        let noise: Vec<u8> = (0..(3 << 20) / 8).flat_map(|_| rng.next_u64().to_le_bytes()).collect();
        s.save("noise", DType::Uint8, &[3 << 20], &noise).unwrap();
        let ramp: Vec<u8> = (0..(512u32 << 10)).flat_map(|i| (i / 7).to_le_bytes()).collect();
        s.save("ramp", DType::Uint32, &[512 << 10], &ramp).unwrap();
    }
    let m = snapshot(&s);
    s.close().unwrap();
    m
}

/// A store of three small arrays (one with deletions): packages of about 1 KB.
fn tiny_store(path: &Path) -> Model {
    let s = create(path);
    s.save("a", DType::Float32, &[4, 3], &(0..12).flat_map(|i| (i as f32).to_le_bytes()).collect::<Vec<_>>()).unwrap();
    s.save("b", DType::Int64, &[40], &(0..40i64).flat_map(|i| (i * i).to_le_bytes()).collect::<Vec<_>>()).unwrap();
    s.save("c", DType::Uint8, &[5, 2], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).unwrap();
    s.delete_rows("a", &[1]).unwrap();
    let m = snapshot(&s);
    s.close().unwrap();
    m
}

fn files_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir).map(|r| r.map(|e| e.unwrap().file_name().into_string().unwrap()).collect()).unwrap_or_default()
}

fn pack_default(store: &Path, target: &Path, compress: bool) -> PackageInfo {
    let s = open(store);
    let info = package::pack(&s, target, &PackOptions { compress, ..Default::default() }, None).unwrap();
    s.close().unwrap();
    info
}

fn check_unpacked(dir: &Path, want: &Model) {
    let s = Store::open(dir, OpenOptions { read_only: true, ..Default::default() }).unwrap();
    let got = snapshot(&s);
    assert!(got == *want, "unpacked store differs:\n{}", diff(&got, want));
}

fn err_code<T: std::fmt::Debug>(r: numpack::Result<T>) -> (ErrorCode, String) {
    let e = r.expect_err("expected an error");
    (e.code, e.message)
}

// ---------------------------------------------------------------------------------------
// Round trips

#[test]
fn round_trip_with_and_without_compression() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.npk");
    let want = build_store(&src, true);
    let format_files: BTreeSet<String> = files_in(&src).into_iter().filter(|f| f != "numpack.wal").collect();
    for compress in [true, false] {
        let pkg = tmp.path().join(format!("out/{compress}/s.npkg"));
        let packed = pack_default(&src, &pkg, compress);
        assert_eq!(packed.version, 2);
        assert_eq!(packed.compression, compress as u8);
        assert_eq!(packed.compression_name, if compress { "zstd" } else { "none" });
        let names: Vec<&str> = packed.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, format_files.iter().map(String::as_str).collect::<Vec<_>>(), "sorted format files, no log");
        for e in &packed.entries {
            let bytes = std::fs::read(src.join(&e.name)).unwrap();
            assert_eq!(e.original_size, bytes.len() as u64, "{}", e.name);
            assert_eq!(e.crc32, Some(crc32fast::hash(&bytes)), "{}", e.name);
        }
        let entry = |n: &str| packed.entries.iter().find(|e| e.name == n).unwrap();
        if compress {
            assert_eq!(entry("data_noise.npkd").stored_size, 0, "incompressible data is stored raw");
            let ramp = entry("data_ramp.npkd");
            assert!(ramp.stored_size > 0 && ramp.stored_size < ramp.original_size / 10, "{ramp:?}");
            assert_eq!(entry("data_empty_rows.npkd").stored_size, 0);
        } else {
            assert!(packed.entries.iter().all(|e| e.stored_size == 0));
        }
        assert_eq!(packed.total_original_size, packed.entries.iter().map(|e| e.original_size).sum::<u64>());
        assert_eq!(std::fs::metadata(&pkg).unwrap().len(), 13 + packed.entries.iter().map(|e| 20 + e.name.len() as u64 + e.payload_size()).sum::<u64>() + 4);
        assert_eq!(files_in(pkg.parent().unwrap()), BTreeSet::from(["s.npkg".to_string()]), "no temporary file left");

        let listed = package::info(&pkg).unwrap();
        let mut no_crc = packed.clone();
        no_crc.entries.iter_mut().for_each(|e| e.crc32 = None);
        assert_eq!(listed, no_crc);

        let dst = tmp.path().join(format!("back/{compress}/s.npk"));
        let unpacked = package::unpack(&pkg, &dst, false, true, None).unwrap();
        assert_eq!(unpacked, packed);
        assert_eq!(files_in(&dst), format_files);
        for f in &format_files {
            assert!(std::fs::read(src.join(f)).unwrap() == std::fs::read(dst.join(f)).unwrap(), "{f} differs");
        }
        assert_eq!(files_in(dst.parent().unwrap()), BTreeSet::from(["s.npk".to_string()]), "no temporary directory left");
        check_unpacked(&dst, &want);
    }
}

#[test]
fn pack_folds_changes_still_in_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("s.npk");
    let s = create(&src);
    s.save("x", DType::Float64, &[10, 2], &[1u8; 160]).unwrap();
    s.close().unwrap();
    // Changes after the last checkpoint live in numpack.wal until the next fold.
    let s = open(&src);
    s.append("x", DType::Float64, &[5, 2], &[2u8; 80]).unwrap();
    s.replace_rows("x", DType::Float64, &[0], &[3u8; 16]).unwrap();
    s.delete_rows("x", &[1, 2]).unwrap();
    s.save("y", DType::Int8, &[3], &[1, 2, 3]).unwrap();
    s.drop_array("x").ok();
    s.save("x", DType::Float64, &[2, 2], &[9u8; 32]).unwrap();
    s.append("x", DType::Float64, &[1, 2], &[8u8; 16]).unwrap();
    s.delete_rows("x", &[0]).unwrap();
    let want = snapshot(&s);
    let stale = std::fs::read(src.join("metadata.npkm")).unwrap();
    let pkg = tmp.path().join("s.npkg");
    let info = package::pack(&s, &pkg, &PackOptions::default(), None).unwrap();
    assert!(info.entries.iter().all(|e| e.name != "numpack.wal"));
    assert_ne!(std::fs::read(src.join("metadata.npkm")).unwrap(), stale, "the log was folded first");
    // The handle stays usable.
    s.append("y", DType::Int8, &[1], &[4]).unwrap();
    s.close().unwrap();
    let dst = tmp.path().join("d.npk");
    package::unpack(&pkg, &dst, false, true, None).unwrap();
    check_unpacked(&dst, &want);
}

#[test]
fn read_only_handles_pack_clean_stores_only() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("s.npk");
    let want = tiny_store(&src);
    let ro = Store::open(&src, OpenOptions { read_only: true, ..Default::default() }).unwrap();
    package::pack(&ro, &tmp.path().join("a.npkg"), &PackOptions::default(), None).unwrap();
    let w = open(&src);
    w.save("more", DType::Int8, &[1], &[1]).unwrap();
    ro.refresh().unwrap();
    let (code, msg) = err_code(package::pack(&ro, &tmp.path().join("b.npkg"), &PackOptions::default(), None));
    assert_eq!(code, ErrorCode::ReadOnly, "{msg}");
    assert!(!tmp.path().join("b.npkg").exists());
    drop(w);
    package::unpack(&tmp.path().join("a.npkg"), &tmp.path().join("a.npk"), false, true, None).unwrap();
    check_unpacked(&tmp.path().join("a.npk"), &want);
    assert_eq!(files_in(tmp.path()), BTreeSet::from(["s.npk", "a.npkg", "a.npk"].map(String::from)));
}

#[test]
fn options_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("s.npk");
    tiny_store(&src);
    let s = open(&src);
    for level in [23, 1000, i32::MIN] {
        let (code, msg) = err_code(package::pack(&s, &tmp.path().join("x.npkg"), &PackOptions { level, ..Default::default() }, None));
        assert_eq!(code, ErrorCode::InvalidArgument, "{msg}");
    }
    for level in [-5, 0, 1, 19] {
        let p = tmp.path().join(format!("l{level}.npkg"));
        package::pack(&s, &p, &PackOptions { level, ..Default::default() }, None).unwrap();
        package::info(&p).unwrap();
    }
    // A target that would be a file of the store itself.
    for name in ["metadata.npkm", "data_a.npkd", "numpack.wal"] {
        let (code, msg) = err_code(package::pack(&s, &src.join(name), &PackOptions { overwrite: true, ..Default::default() }, None));
        assert_eq!(code, ErrorCode::InvalidArgument, "{msg}");
    }
    // Beside the store files, another name is fine (it is not packed next time).
    package::pack(&s, &src.join("backup.npkg"), &PackOptions::default(), None).unwrap();
    let info = package::pack(&s, &tmp.path().join("again.npkg"), &PackOptions::default(), None).unwrap();
    assert!(info.entries.iter().all(|e| e.name != "backup.npkg"));
}

// ---------------------------------------------------------------------------------------
// Targets

#[test]
fn pack_target_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("s.npk");
    tiny_store(&src);
    let s = open(&src);
    let pkg = tmp.path().join("deep/er/s.npkg");
    package::pack(&s, &pkg, &PackOptions::default(), None).unwrap();
    let first = std::fs::read(&pkg).unwrap();
    let (code, msg) = err_code(package::pack(&s, &pkg, &PackOptions { compress: false, ..Default::default() }, None));
    assert_eq!(code, ErrorCode::AlreadyExists, "{msg}");
    assert_eq!(std::fs::read(&pkg).unwrap(), first, "the existing package is untouched");
    package::pack(&s, &pkg, &PackOptions { compress: false, overwrite: true, ..Default::default() }, None).unwrap();
    assert_eq!(package::info(&pkg).unwrap().compression, 0, "replaced");
    let (code, msg) = err_code(package::pack(&s, tmp.path(), &PackOptions { overwrite: true, ..Default::default() }, None));
    assert_eq!(code, ErrorCode::InvalidArgument, "{msg}");
    assert_eq!(files_in(pkg.parent().unwrap()), BTreeSet::from(["s.npkg".to_string()]));
}

#[test]
fn unpack_target_rules_and_failures_keep_the_old_store() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.npk"), tmp.path().join("b.npk"));
    let want_a = tiny_store(&a);
    let want_b = build_store(&b, false);
    let pkg_b = tmp.path().join("b.npkg");
    pack_default(&b, &pkg_b, true);
    let listing = |d: &Path| files_in(d).into_iter().map(|f| (f.clone(), std::fs::read(d.join(&f)).unwrap())).collect::<Vec<_>>();
    let before = listing(&a);

    let (code, msg) = err_code(package::unpack(&pkg_b, &a, false, true, None));
    assert_eq!(code, ErrorCode::AlreadyExists, "{msg}");
    assert_eq!(listing(&a), before);

    // A damaged package never replaces the target, whatever the damage.
    let good = std::fs::read(&pkg_b).unwrap();
    let layout = parse(&good);
    let mut damaged = Vec::new();
    let mut payload = good.clone();
    let ramp = layout.iter().find(|e| e.stored > 0).unwrap();
    payload[ramp.payload + ramp.stored as usize / 2] ^= 0x10;
    damaged.push(payload);
    let mut footer = good.clone();
    *footer.last_mut().unwrap() ^= 1;
    damaged.push(footer);
    damaged.push(good[..good.len() - 10].to_vec());
    for (i, bytes) in damaged.iter().enumerate() {
        let p = tmp.path().join(format!("bad{i}.npkg"));
        std::fs::write(&p, bytes).unwrap();
        let (code, msg) = err_code(package::unpack(&p, &a, true, true, None));
        assert_eq!(code, ErrorCode::Corrupt, "{msg}");
        assert_eq!(listing(&a), before, "damage {i} touched the target");
        std::fs::remove_file(&p).unwrap();
    }
    check_unpacked(&a, &want_a);

    // overwrite replaces a store, an empty directory or a file; never another directory.
    package::unpack(&pkg_b, &a, true, true, None).unwrap();
    check_unpacked(&a, &want_b);
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    package::unpack(&pkg_b, &empty, true, true, None).unwrap();
    check_unpacked(&empty, &want_b);
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    package::unpack(&pkg_b, &file, true, true, None).unwrap();
    check_unpacked(&file, &want_b);
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"keep").unwrap();
    let (code, msg) = err_code(package::unpack(&pkg_b, &other, true, true, None));
    assert_eq!(code, ErrorCode::InvalidArgument, "{msg}");
    assert_eq!(std::fs::read(other.join("notes.txt")).unwrap(), b"keep");
    let nested = tmp.path().join("x/y/z.npk");
    package::unpack(&pkg_b, &nested, false, false, None).unwrap();
    check_unpacked(&nested, &want_b);
    assert_eq!(
        files_in(tmp.path()),
        BTreeSet::from(["a.npk", "b.npk", "b.npkg", "empty", "file", "other", "x"].map(String::from)),
        "nothing left aside"
    );
}

#[test]
fn default_paths_follow_numpack() {
    use package::{default_package_path as pp, default_unpack_path as up};
    assert_eq!(pp(Path::new("data/x.npk")), PathBuf::from("data/x.npk.npkg"));
    assert_eq!(pp(Path::new("x.npk/")), PathBuf::from("x.npk.npkg"));
    assert_eq!(pp(Path::new("/a/store")), PathBuf::from("/a/store.npkg"));
    assert_eq!(up(Path::new("data/x.npk.npkg")), PathBuf::from("data/x.npk"));
    assert_eq!(up(Path::new("data/x.npkg")), PathBuf::from("data/x.npk"));
    assert_eq!(up(Path::new("/b/backup")), PathBuf::from("/b/backup.npk"));
    assert_eq!(up(Path::new("y.tar.gz")), PathBuf::from("y.tar.npk"));
    assert_eq!(up(&pp(Path::new("/s/q.npk"))), PathBuf::from("/s/q.npk"));
}

// ---------------------------------------------------------------------------------------
// Progress and cancellation

#[test]
fn progress_is_reported_and_cancels_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("s.npk");
    let want = build_store(&src, true);
    let s = open(&src);
    let out = tmp.path().join("out");
    let pkg = out.join("s.npkg");

    let mut calls = Vec::new();
    let mut record = |d: u64, t: u64| {
        calls.push((d, t));
        true
    };
    let info = package::pack(&s, &pkg, &PackOptions::default(), Some(&mut record)).unwrap();
    let total = info.total_original_size;
    check_progress(&calls, total, info.entries.len());

    let mut calls = Vec::new();
    let mut record = |d: u64, t: u64| {
        calls.push((d, t));
        true
    };
    let dst = out.join("d.npk");
    package::unpack(&pkg, &dst, false, true, Some(&mut record)).unwrap();
    check_progress(&calls, total, info.entries.len());
    check_unpacked(&dst, &want);
    std::fs::remove_dir_all(&dst).unwrap();
    let pkg_bytes = std::fs::read(&pkg).unwrap();

    // Cancel at the first call, in the middle (inside the big file), and at the last.
    let n = calls.len();
    for stop_at in [0, n / 2, n - 1] {
        let mut k = 0;
        let mut cancel = |_: u64, _: u64| {
            k += 1;
            k <= stop_at
        };
        let (code, msg) = err_code(package::pack(&s, &out.join("c.npkg"), &PackOptions::default(), Some(&mut cancel)));
        assert_eq!(code, ErrorCode::Cancelled, "{msg}");
        let mut k = 0;
        let mut cancel = |_: u64, _: u64| {
            k += 1;
            k <= stop_at
        };
        let (code, msg) = err_code(package::unpack(&pkg, &dst, false, true, Some(&mut cancel)));
        assert_eq!(code, ErrorCode::Cancelled, "{msg}");
        // Replacing: the old package and store stay.
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(dst.join("metadata.npkm"), b"old").unwrap();
        let mut k = 0;
        let mut cancel = |_: u64, _: u64| {
            k += 1;
            k <= stop_at
        };
        let (code, _) = err_code(package::unpack(&pkg, &dst, true, true, Some(&mut cancel)));
        assert_eq!(code, ErrorCode::Cancelled);
        assert_eq!(std::fs::read(dst.join("metadata.npkm")).unwrap(), b"old");
        std::fs::remove_dir_all(&dst).unwrap();
        let mut k = 0;
        let mut cancel = |_: u64, _: u64| {
            k += 1;
            k <= stop_at
        };
        let (code, _) = err_code(package::pack(&s, &pkg, &PackOptions { overwrite: true, ..Default::default() }, Some(&mut cancel)));
        assert_eq!(code, ErrorCode::Cancelled);
        assert!(std::fs::read(&pkg).unwrap() == pkg_bytes, "the old package stays");
        assert_eq!(files_in(&out), BTreeSet::from(["s.npkg".to_string()]), "cancelling at call {stop_at} left files");
    }
    s.close().unwrap();
}

fn check_progress(calls: &[(u64, u64)], total: u64, files: usize) {
    assert_eq!(calls.first(), Some(&(0, total)));
    assert_eq!(calls.last(), Some(&(total, total)));
    assert!(calls.iter().all(|&(_, t)| t == total));
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "progress went back: {calls:?}");
    assert!(calls.len() > files, "{} calls for {files} files", calls.len());
    // Never more than 4 MiB of data (plus one 1 MiB buffer) between two calls.
    assert!(calls.windows(2).all(|w| w[1].0 - w[0].0 <= 5 << 20), "{calls:?}");
}

// ---------------------------------------------------------------------------------------
// Hand-made packages

/// One entry of a package made by the tests.
struct Raw {
    name: Vec<u8>,
    content: Vec<u8>,
    payload: Option<Vec<u8>>,
}

fn raw(name: &str, content: &[u8]) -> Raw {
    Raw { name: name.as_bytes().to_vec(), content: content.to_vec(), payload: None }
}

fn zlib(name: &str, content: &[u8]) -> Raw {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(content).unwrap();
    Raw { payload: Some(e.finish().unwrap()), ..raw(name, content) }
}

fn zstd_plain(name: &str, content: &[u8]) -> Raw {
    // As python-zstandard writes it: no checksum, no content size.
    let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    e.include_checksum(false).unwrap();
    e.include_contentsize(false).unwrap();
    e.write_all(content).unwrap();
    Raw { payload: Some(e.finish().unwrap()), ..raw(name, content) }
}

/// A package of `entries`, with the footer its version defines.
fn build(version: u32, flag: u8, entries: &[Raw]) -> Vec<u8> {
    let mut b = b"NPKG".to_vec();
    b.extend(version.to_le_bytes());
    b.push(flag);
    b.extend((entries.len() as u32).to_le_bytes());
    let mut v1 = crc32fast::Hasher::new();
    let mut v2 = crc32fast::Hasher::new();
    for e in entries {
        b.extend((e.name.len() as u32).to_le_bytes());
        b.extend(&e.name);
        b.extend((e.content.len() as u64).to_le_bytes());
        b.extend((e.payload.as_ref().map_or(0, |p| p.len()) as u64).to_le_bytes());
        b.extend(e.payload.as_ref().unwrap_or(&e.content));
        v1.update(&e.content);
        v2.update(&crc32fast::hash(&e.content).to_le_bytes());
    }
    b.extend(if version == 1 { v1.finalize() } else { v2.finalize() }.to_le_bytes());
    b
}

/// Where an entry's parts are in a package.
#[derive(Debug)]
struct Layout {
    header: usize,
    name: String,
    sizes: usize,
    stored: u64,
    payload: usize,
    len: usize,
}

fn parse(b: &[u8]) -> Vec<Layout> {
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let mut at = 13;
    let mut out = Vec::new();
    for _ in 0..u32_at(9) {
        let n = u32_at(at);
        let name = String::from_utf8(b[at + 4..at + 4 + n].to_vec()).unwrap();
        let sizes = at + 4 + n;
        let (orig, stored) = (u64_at(sizes), u64_at(sizes + 8));
        let len = if stored > 0 { stored } else { orig } as usize;
        out.push(Layout { header: at, name, sizes, stored, payload: sizes + 16, len });
        at = sizes + 16 + len;
    }
    assert_eq!(at + 4, b.len());
    out
}

/// The tiny store's files, as package entries.
fn tiny_entries(dir: &Path) -> (Model, Vec<Raw>) {
    let src = dir.join("tiny.npk");
    let m = tiny_store(&src);
    let mut names: Vec<String> = files_in(&src).into_iter().filter(|f| f != "numpack.wal").collect();
    names.sort();
    (m, names.iter().map(|n| raw(n, &std::fs::read(src.join(n)).unwrap())).collect())
}

/// Unpacks `bytes` and expects `code` with every piece of `words` in the message, and no
/// target left behind.
fn refused(dir: &Path, bytes: &[u8], code: ErrorCode, words: &[&str]) -> String {
    let pkg = dir.join("case.npkg");
    std::fs::write(&pkg, bytes).unwrap();
    let target = dir.join("case_out").join("t.npk");
    let before = files_in(dir);
    let (got, msg) = err_code(package::unpack(&pkg, &target, false, true, None));
    assert_eq!(got, code, "{msg}");
    for w in words {
        assert!(msg.contains(w), "{msg:?} does not say {w:?}");
    }
    assert!(!target.exists());
    assert_eq!(files_in(target.parent().unwrap()), BTreeSet::new(), "temporary files left");
    assert_eq!(files_in(dir), before);
    msg
}

#[test]
fn zlib_under_the_zstd_flag_and_plain_zstd_frames_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let (want, entries) = tiny_entries(tmp.path());
    let encoders: [fn(&str, &[u8]) -> Raw; 2] = [zlib, zstd_plain];
    for (k, enc) in encoders.iter().enumerate() {
        // Every file compressed, mixed with raw ones.
        let mixed: Vec<Raw> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let n = std::str::from_utf8(&e.name).unwrap();
                if i % 2 == 0 { enc(n, &e.content) } else { raw(n, &e.content) }
            })
            .collect();
        let pkg = tmp.path().join(format!("m{k}.npkg"));
        std::fs::write(&pkg, build(2, 1, &mixed)).unwrap();
        let info = package::unpack(&pkg, &tmp.path().join(format!("m{k}.npk")), false, true, None).unwrap();
        assert_eq!(info.compression_name, "zstd");
        check_unpacked(&tmp.path().join(format!("m{k}.npk")), &want);
    }
}

#[test]
fn version_1_packages_are_read_with_their_footer() {
    let tmp = tempfile::tempdir().unwrap();
    let (want, entries) = tiny_entries(tmp.path());
    let pkg = tmp.path().join("v1.npkg");
    std::fs::write(&pkg, build(1, 0, &entries)).unwrap();
    assert_eq!(package::info(&pkg).unwrap().version, 1);
    package::unpack(&pkg, &tmp.path().join("v1.npk"), false, true, None).unwrap();
    check_unpacked(&tmp.path().join("v1.npk"), &want);
    // A version-2 footer under version 1 fails verification, and passes without it.
    let mut b = build(2, 0, &entries);
    b[4] = 1;
    refused(tmp.path(), &b, ErrorCode::Corrupt, &["checksum mismatch"]);
    std::fs::write(&pkg, &b).unwrap();
    package::unpack(&pkg, &tmp.path().join("v1b.npk"), false, false, None).unwrap();
    check_unpacked(&tmp.path().join("v1b.npk"), &want);
}

#[test]
fn entries_that_are_not_plain_store_file_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, entries) = tiny_entries(tmp.path());
    let escape = ["../x", "/abs", "a/b", "a\\b", "..", ".", "x\0y", "data_a.npkd/../../x", "/etc/passwd", "..\\..\\x"];
    let foreign = ["notes.txt", "numpack.wal", "data_.npkd", "data_a.npkd.bak", "deleted_.npkb", "metadata.npkm.tmp", "data_a.npk", "x\ny"];
    for (names, words) in [(&escape[..], "would escape the target directory"), (&foreign[..], "not a file of a NumPack store")] {
        for bad in names {
            let mut with = vec![raw(bad, b"boo")];
            with.extend(entries.iter().map(|e| Raw { name: e.name.clone(), content: e.content.clone(), payload: None }));
            let msg = refused(tmp.path(), &build(2, 0, &with), ErrorCode::Corrupt, &[words, "case.npkg"]);
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
            assert!(!tmp.path().join("x").exists() && !tmp.path().join("case_out/x").exists());
        }
    }
    // Names with ".." inside a valid array name cannot escape (no separator) and are kept.
    let s = create(&tmp.path().join("dots.npk"));
    s.save("a..b", DType::Int8, &[2], &[1, 2]).unwrap();
    let want = snapshot(&s);
    s.close().unwrap();
    pack_default(&tmp.path().join("dots.npk"), &tmp.path().join("dots.npkg"), true);
    package::unpack(&tmp.path().join("dots.npkg"), &tmp.path().join("dots2.npk"), false, true, None).unwrap();
    check_unpacked(&tmp.path().join("dots2.npk"), &want);
    // Not UTF-8, and duplicates.
    let mut with: Vec<Raw> = entries.iter().map(|e| Raw { name: e.name.clone(), content: e.content.clone(), payload: None }).collect();
    with[0].name = vec![b'd', 0xff, b'x'];
    refused(tmp.path(), &build(2, 0, &with), ErrorCode::Corrupt, &["UTF-8"]);
    let mut with: Vec<Raw> = entries.iter().map(|e| Raw { name: e.name.clone(), content: e.content.clone(), payload: None }).collect();
    with.insert(1, raw(std::str::from_utf8(&entries[0].name).unwrap(), &entries[0].content));
    refused(tmp.path(), &build(2, 0, &with), ErrorCode::Corrupt, &["appears twice"]);
}

#[test]
fn the_catalogue_must_match_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, entries) = tiny_entries(tmp.path());
    let names: Vec<String> = entries.iter().map(|e| String::from_utf8(e.name.clone()).unwrap()).collect();
    let copy = |skip: &str, change: &dyn Fn(&str, &mut Vec<u8>)| -> Vec<Raw> {
        entries
            .iter()
            .zip(&names)
            .filter(|(_, n)| *n != skip)
            .map(|(e, n)| {
                let mut c = e.content.clone();
                change(n, &mut c);
                raw(n, &c)
            })
            .collect()
    };
    let none = |_: &str, _: &mut Vec<u8>| {};
    refused(tmp.path(), &build(2, 0, &copy("metadata.npkm", &none)), ErrorCode::Corrupt, &["holds no metadata.npkm"]);
    refused(tmp.path(), &build(2, 0, &copy("data_b.npkd", &none)), ErrorCode::Corrupt, &["array \"b\" has no data file"]);
    let shorten = |n: &str, c: &mut Vec<u8>| {
        if n == "data_b.npkd" {
            c.pop();
        }
    };
    refused(tmp.path(), &build(2, 0, &copy("", &shorten)), ErrorCode::Corrupt, &["\"data_b.npkd\" has 319 bytes", "needs 320"]);
    let bitmap_size = |n: &str, c: &mut Vec<u8>| {
        if n == "deleted_a.npkb" {
            c.extend([0; 8]);
        }
    };
    refused(tmp.path(), &build(2, 0, &copy("", &bitmap_size)), ErrorCode::Corrupt, &["deleted_a.npkb", "no bitmap"]);
    let bitmap_rows = |n: &str, c: &mut Vec<u8>| {
        if n == "deleted_a.npkb" {
            c[0] = 5;
        }
    };
    refused(tmp.path(), &build(2, 0, &copy("", &bitmap_rows)), ErrorCode::Corrupt, &["deleted_a.npkb", "covers 5 rows"]);
    let bad_meta = |n: &str, c: &mut Vec<u8>| {
        if n == "metadata.npkm" {
            c[0] ^= 1;
        }
    };
    refused(tmp.path(), &build(2, 0, &copy("", &bad_meta)), ErrorCode::Corrupt, &["metadata.npkm", "magic"]);
    // A bitmap of no array (a damaged name, say) would lose its deletions: refused.
    let mut with = copy("", &none);
    with.insert(3, raw("deleted_zz.npkb", &[0; 24]));
    refused(tmp.path(), &build(2, 0, &with), ErrorCode::Corrupt, &["\"deleted_zz.npkb\"", "does not list"]);
    // A longer data file is accepted, as the store accepts it; so are data files of
    // arrays the catalogue does not list (NumPack leaves them after a crash).
    let longer = |n: &str, c: &mut Vec<u8>| {
        if n == "data_b.npkd" {
            c.extend([7; 8]);
        }
    };
    let mut with = copy("", &longer);
    with.insert(0, raw("data_orphan.npkd", b"zz"));
    let p = tmp.path().join("ok.npkg");
    std::fs::write(&p, build(2, 0, &with)).unwrap();
    package::unpack(&p, &tmp.path().join("ok.npk"), false, true, None).unwrap();
    open(&tmp.path().join("ok.npk")).load("b").unwrap();
}

#[test]
fn damaged_headers_and_payloads_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("s.npk");
    tiny_store(&src);
    let pkg = tmp.path().join("s.npkg");
    pack_default(&src, &pkg, true);
    let good = std::fs::read(&pkg).unwrap();
    let lay = parse(&good);
    let d = tmp.path();
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        b
    };
    let put32 = |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put64 = |b: &mut Vec<u8>, at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());

    refused(d, &with(&|b| b[0] = b'X'), ErrorCode::Corrupt, &["case.npkg", "not a .npkg package"]);
    refused(d, b"PK\x03\x04 a zip file", ErrorCode::Corrupt, &["not a .npkg package"]);
    refused(d, b"NP", ErrorCode::Corrupt, &["not a .npkg package"]);
    refused(d, &with(&|b| put32(b, 4, 3)), ErrorCode::Unsupported, &["version 3"]);
    refused(d, &with(&|b| put32(b, 4, u32::MAX)), ErrorCode::Unsupported, &["version"]);
    refused(d, &with(&|b| put32(b, 4, 0)), ErrorCode::Corrupt, &["version 0"]);
    refused(d, &with(&|b| b[8] = 2), ErrorCode::Unsupported, &["compression 2"]);
    refused(d, &with(&|b| b[8] = 0), ErrorCode::Corrupt, &["compressed but the package says it uses no compression"]);
    let n = lay.len() as u32;
    // One file more: its header is read from the footer.
    refused(d, &with(&|b| put32(b, 9, n + 1)), ErrorCode::Corrupt, &[&format!("entry {n} ")]);
    refused(d, &with(&|b| put32(b, 9, n - 1)), ErrorCode::Corrupt, &["bytes follow the last file"]);
    refused(d, &with(&|b| put32(b, 9, u32::MAX)), ErrorCode::Corrupt, &["claims 4294967295 files"]);
    refused(d, &with(&|b| put32(b, 9, 0)), ErrorCode::Corrupt, &["bytes follow the last file"]);
    for e in &lay {
        let name_len = e.name.len() as u32;
        refused(d, &with(&|b| put32(b, e.header, 0)), ErrorCode::Corrupt, &["name of 0 bytes"]);
        refused(d, &with(&|b| put32(b, e.header, 256)), ErrorCode::Corrupt, &["name of 256 bytes"]);
        refused(d, &with(&|b| put32(b, e.header, u32::MAX)), ErrorCode::Corrupt, &["name of 4294967295 bytes"]);
        // A name one byte longer or shorter swallows or leaves a byte: never accepted.
        refused(d, &with(&|b| put32(b, e.header, name_len + 1)), ErrorCode::Corrupt, &[]);
        refused(d, &with(&|b| put32(b, e.header, name_len - 1)), ErrorCode::Corrupt, &[]);
        let orig = u64::from_le_bytes(good[e.sizes..e.sizes + 8].try_into().unwrap());
        for v in [orig + 1, orig.wrapping_sub(1), u64::MAX, 1 << 40] {
            refused(d, &with(&|b| put64(b, e.sizes, v)), ErrorCode::Corrupt, &[&e.name]);
        }
        for v in [e.stored + 1, e.stored.wrapping_sub(1), u64::MAX] {
            let words: &[&str] = if e.stored == 0 && v == 1 { &[] } else { &[&e.name] };
            refused(d, &with(&|b| put64(b, e.sizes + 8, v)), ErrorCode::Corrupt, words);
        }
        if e.len > 0 {
            // The middle byte of the payload: zstd's checksum names the file, raw data the footer.
            let words: &[&str] = if e.stored > 0 { &[&e.name] } else { &["checksum mismatch"] };
            refused(d, &with(&|b| b[e.payload + e.len / 2] ^= 0x40), ErrorCode::Corrupt, words);
        }
        if e.stored > 0 {
            refused(d, &with(&|b| b[e.payload] ^= 0xff), ErrorCode::Corrupt, &[&e.name, "neither a zstd frame nor a zlib stream"]);
        }
    }
    let end = good.len();
    refused(d, &with(&|b| b[end - 2] ^= 1), ErrorCode::Corrupt, &["checksum mismatch"]);
    refused(d, &with(&|b| b.push(0)), ErrorCode::Corrupt, &["5 bytes follow the last file"]);
    // Without verify the footer is not compared.
    let p = d.join("nofooter.npkg");
    std::fs::write(&p, with(&|b| b[end - 2] ^= 1)).unwrap();
    package::unpack(&p, &d.join("nofooter.npk"), false, false, None).unwrap();
    std::fs::remove_dir_all(d.join("nofooter.npk")).unwrap();
    std::fs::remove_file(&p).unwrap();
    // info reads headers only: damaged payloads pass, damaged structure does not.
    std::fs::write(&p, with(&|b| lay.iter().for_each(|e| b[e.payload..e.payload + e.len].fill(0xAA)))).unwrap();
    assert_eq!(package::info(&p).unwrap(), package::info(&pkg).unwrap());
    std::fs::remove_file(&p).unwrap();

    // Truncated anywhere: a clear error and nothing written.
    for cut in 0..good.len() {
        let msg = refused(d, &good[..cut], ErrorCode::Corrupt, &["case.npkg"]);
        assert!(msg.contains("truncated") || msg.contains("not a .npkg package") || msg.contains("bytes follow"), "cut at {cut}: {msg}");
    }
    // Every byte changed: refused, or (a flag byte, say) read equal; never a panic.
    let want = snapshot(&open(&src));
    for at in 0..good.len() {
        let p = d.join("flip.npkg");
        std::fs::write(&p, with(&|b| b[at] ^= 0x01)).unwrap();
        let t = d.join("flip.npk");
        match package::unpack(&p, &t, false, true, None) {
            Err(e) => {
                assert!(matches!(e.code, ErrorCode::Corrupt | ErrorCode::Unsupported), "byte {at}: {e:?}");
                assert!(!t.exists());
            }
            Ok(_) => {
                check_unpacked(&t, &want);
                std::fs::remove_dir_all(&t).unwrap();
            }
        }
    }
}

#[test]
fn trailing_and_oversized_streams_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, entries) = tiny_entries(tmp.path());
    let names: Vec<String> = entries.iter().map(|e| String::from_utf8(e.name.clone()).unwrap()).collect();
    let i = names.iter().position(|n| n == "data_b.npkd").unwrap();
    for enc in [zlib as fn(&str, &[u8]) -> Raw, zstd_plain] {
        let mut with: Vec<Raw> = entries.iter().map(|e| Raw { name: e.name.clone(), content: e.content.clone(), payload: None }).collect();
        with[i] = enc("data_b.npkd", &entries[i].content);
        with[i].payload.as_mut().unwrap().extend(b"junk");
        refused(tmp.path(), &build(2, 1, &with), ErrorCode::Corrupt, &["data_b.npkd"]);
        // The stream holds more or fewer bytes than the entry records.
        let mut more = entries[i].content.clone();
        more.extend([1; 8]);
        with[i] = enc("data_b.npkd", &more);
        with[i].content = entries[i].content.clone();
        refused(tmp.path(), &build(2, 1, &with), ErrorCode::Corrupt, &["data_b.npkd", "more than its recorded 320 bytes"]);
        with[i] = enc("data_b.npkd", &entries[i].content[..300]);
        with[i].content = entries[i].content.clone();
        refused(tmp.path(), &build(2, 1, &with), ErrorCode::Corrupt, &["data_b.npkd", "only 300 of its recorded 320 bytes"]);
        // Cut short inside the stream.
        with[i] = enc("data_b.npkd", &entries[i].content);
        let p = with[i].payload.as_mut().unwrap();
        p.truncate(p.len() - 3);
        refused(tmp.path(), &build(2, 1, &with), ErrorCode::Corrupt, &["data_b.npkd"]);
    }
}
