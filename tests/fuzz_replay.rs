//! Replays every fuzzing corpus input (`tests/fuzz/corpus/<target>/`) and every input a
//! fuzzer found to crash, hang or exhaust memory (`tests/fuzz/regressions/<target>/`)
//! through the same target bodies the fuzzers run (`tests/fuzz/targets.rs`), so that a
//! fixed bug stays fixed. Run the fuzzers themselves with `bash fuzz/run.sh`.

#[path = "fuzz/targets.rs"]
mod targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Regression inputs for findings not fixed yet, as `<target>/<file>`: listed in the
/// test's output but not run, since some abort the whole process (out of memory) rather
/// than panic. A helper fixing one removes its line here, and the test then proves the
/// fix on every run. The first fuzzing run's eleven findings are all fixed.
const KNOWN_OPEN: &[&str] = &[];

fn inputs(kind: &str, target: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz").join(kind).join(target);
    let Ok(rd) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut v: Vec<_> = rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    v.sort();
    v
}

fn replay(kind: &str) -> usize {
    let mut failures = Vec::new();
    let mut total = 0;
    for &(target, body) in targets::TARGETS {
        for path in inputs(kind, target) {
            let key = format!("{target}/{}", path.file_name().unwrap().to_string_lossy());
            if KNOWN_OPEN.contains(&key.as_str()) {
                eprintln!("known open finding, not replayed: {key}");
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            total += 1;
            if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
                failures.push(key);
            }
        }
    }
    assert!(failures.is_empty(), "{} {kind} inputs panic: {failures:?}", failures.len());
    total
}

#[test]
fn corpus_inputs_pass() {
    let n = replay("corpus");
    assert!(n > 0, "no corpus inputs found under tests/fuzz/corpus");
}

#[test]
fn regression_inputs_pass() {
    replay("regressions");
}

#[test]
fn known_open_entries_exist() {
    for key in KNOWN_OPEN {
        let (target, file) = key.split_once('/').unwrap();
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/regressions").join(target).join(file);
        assert!(p.is_file(), "KNOWN_OPEN lists {key}, which is not under tests/fuzz/regressions");
    }
}

/// Writes the seed corpora under `tests/fuzz/corpus/` from the repository's fixtures
/// and from small stores made here (with log records of every common kind, a deletion
/// bitmap and a compressed array). Run by hand, then minimise each target with
/// `bash fuzz/run.sh cmin TARGET`:
/// `cargo test --test fuzz_replay -- --ignored write_seed_corpus`.
#[test]
#[ignore]
fn write_seed_corpus() {
    use numpack::{metadata, wal, DType, OpenOptions, Store};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = root.join("tests/fixtures");
    let corpus = root.join("tests/fuzz/corpus");
    let mut n = 0usize;
    let mut put = |target: &str, name: &str, bytes: &[u8]| {
        let d = corpus.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
        n += 1;
    };
    let section = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    };
    let files = |dir: &Path| -> Vec<std::path::PathBuf> {
        let mut v = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() { stack.push(p) } else { v.push(p) }
            }
        }
        v.sort();
        v
    };
    // The store target's input: flags, then metadata, log, bitmap, data sections.
    let store_seed = |flags: u8, meta: &[u8], log: &[u8], bits: &[u8], data: &[u8]| {
        let mut v = vec![flags];
        section(&mut v, meta);
        section(&mut v, log);
        section(&mut v, bits);
        v.extend_from_slice(data);
        v
    };
    for p in files(&fixtures) {
        let ext = p.extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_default();
        let bytes = std::fs::read(&p).unwrap();
        let tag = p.strip_prefix(&fixtures).unwrap().to_string_lossy().replace('/', "_");
        match ext.as_str() {
            "npy" if bytes.len() <= 4096 => put("npy", &tag, &bytes),
            "npz" => put("npz", &tag, &bytes),
            "npkg" => put("npkg", &tag, &bytes),
            "safetensors" => put("safetensors", &tag, &bytes),
            "npkseg" => put("segments", &tag, &bytes),
            "npkm" => {
                put("catalogue", &tag, &bytes);
                let dir = p.parent().unwrap();
                let Ok(cat) = metadata::decode(&bytes) else { continue };
                // One single-array store per array (the store target names the data
                // file after the first array), and one bitmap seed per bitmap.
                for (name, entry) in cat.iter().filter(|(_, e)| !e.segmented).take(12) {
                    let one: metadata::Catalogue = [(name.clone(), entry.clone())].into_iter().collect();
                    let data = std::fs::read(dir.join(numpack::name::data_file(name))).unwrap_or_default();
                    let bits = std::fs::read(dir.join(numpack::name::bitmap_file(name))).unwrap_or_default();
                    if data.len() <= 4096 {
                        put("store", &format!("{tag}_{name}"), &store_seed(8, &metadata::encode(&one), &[], &bits, &data));
                    }
                    if !bits.is_empty() {
                        let mut b = entry.physical_rows().to_le_bytes().to_vec();
                        b.extend_from_slice(&bits);
                        put("bitmap", &format!("{tag}_{name}"), &b);
                    }
                }
            }
            _ => {}
        }
    }

    // Stores made here: each change leaves a record in the log.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let s = Store::open(&dir, OpenOptions { create: true, ..Default::default() }).unwrap();
    let snapshot = |label: &str, first: &str, z: bool, put: &mut dyn FnMut(&str, &str, &[u8])| {
        let meta = std::fs::read(dir.join("metadata.npkm")).unwrap();
        let mut log = std::fs::read(dir.join(wal::FILE_NAME)).unwrap_or_default();
        if let Ok(h) = wal::Header::decode(&log) {
            log.truncate(h.end as usize);
            let mut pos = wal::HEADER_LEN as usize;
            while pos + 8 <= log.len() {
                let len = u32::from_le_bytes(log[pos..pos + 4].try_into().unwrap()) as usize;
                let mut rec = log[..wal::HEADER_LEN as usize].to_vec();
                rec.extend_from_slice(&log[pos + 8..pos + 8 + len]);
                put("wal", &format!("{label}_{pos}"), &rec);
                pos += 8 + len;
            }
        }
        put("catalogue", label, &meta);
        let bits = std::fs::read(dir.join(numpack::name::bitmap_file(first))).unwrap_or_default();
        let (data, flags) = if z {
            (std::fs::read(dir.join(numpack::compress::file_name(first))).unwrap(), 16)
        } else {
            (std::fs::read(dir.join(numpack::name::data_file(first))).unwrap(), 0)
        };
        if z {
            put("npkz", label, &data);
        }
        put("store", label, &store_seed(flags, &meta, &log, &bits, &data));
        put("store", &format!("{label}_fit"), &store_seed(flags | 3, &meta, &log, &bits, &data));
    };
    let ints: Vec<u8> = (0..8i32).flat_map(|v| v.to_le_bytes()).collect();
    s.save("a", DType::Int32, &[4, 2], &ints).unwrap();
    snapshot("made_save", "a", false, &mut put);
    s.append("a", DType::Int32, &[1, 2], &ints[..8]).unwrap();
    s.replace_rows("a", DType::Int32, &[1], &ints[8..16]).unwrap();
    snapshot("made_append_replace", "a", false, &mut put);
    s.delete_rows("a", &[0, 2]).unwrap();
    snapshot("made_delete", "a", false, &mut put);
    let bits = std::fs::read(dir.join(numpack::name::bitmap_file("a"))).unwrap();
    let mut b = 5u64.to_le_bytes().to_vec();
    b.extend_from_slice(&bits);
    put("bitmap", "made_delete", &b);
    s.rename("a", "b").unwrap();
    s.clone_array("b", "c").unwrap();
    s.compact("c").unwrap();
    s.drop_array("b").unwrap();
    snapshot("made_rename_compact_drop", "c", false, &mut put);
    let floats: Vec<u8> = (0..64u32).flat_map(|v| (v as f32).to_le_bytes()).collect();
    s.reset().unwrap();
    s.save_with("a", DType::Float32, &[16, 4], &floats, &numpack::SaveOptions { compression: Some(Default::default()) }).unwrap();
    snapshot("made_zsave", "a", true, &mut put);
    s.append("a", DType::Float32, &[2, 4], &floats[..32]).unwrap();
    s.delete_rows("a", &[3]).unwrap();
    snapshot("made_zappend", "a", true, &mut put);
    let pkg = tmp.path().join("p.npkg");
    numpack::package::pack(&s, &pkg, &Default::default(), None).unwrap();
    put("npkg", "made", &std::fs::read(&pkg).unwrap());
    let st = tmp.path().join("a.safetensors");
    s.save("b", DType::Int32, &[4, 2], &ints).unwrap();
    numpack::safetensors::export(&s, &st, &Default::default(), None).unwrap();
    put("safetensors", "made", &std::fs::read(&st).unwrap());
    eprintln!("wrote {n} seeds");
}
