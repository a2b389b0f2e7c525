//! Crash consistency under SIGKILL.
//!
//! The test binary runs itself as a child (`crash_child`), which opens the store, reads it
//! into a model, and performs a pseudo-random sequence of operations that depends only on
//! a seed and that model, appending the index of each finished operation to a progress
//! file. The parent, which keeps the same model, kills the child at a random instant (while
//! it starts, right after it is ready, or 0-30 ms into its operations), reads how many
//! operations `k` finished, and checks that the whole store (names, dtypes, logical shapes,
//! physical row counts and bytes) equals the model after `k` operations or after `k + 1`
//! (the one in flight). It looks through a freshly opened writable handle, a read-only one,
//! or a long-lived handle open since the start (`refresh()` and automatic catch-up) -
//! whichever looks first does the recovery - and after a clean close checks that
//! `metadata.npkm` and the bitmaps alone describe the same store. Some kills are not
//! checked at once: the next child then opens a store that needs recovery (and may be
//! killed while recovering), and the parent simulates it from both possible states. One
//! child in forty only rewrites a 4 MiB array, to get its log past the 64 MiB checkpoint
//! threshold. The next cycle continues on the same store with a new seed.
//!
//! Reproduce a failure with `NUMPACK_CRASH_SEED=<master seed>` (printed with the failure,
//! with the cycle's operations; the kill instants vary between runs, the operations do not).
//! `NUMPACK_CRASH_CYCLES` changes the number of kill cycles.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use numpack::{DType, OpenOptions, Store};

const NAMES: [&str; 8] = ["a", "b", "c", "d", "e", "f", "big.1", "ünï"];
/// Above this many logical bytes the generator only drops arrays.
const BUDGET: usize = 16 << 20;
/// Operations per child; most children are killed long before.
const OPS_PER_CHILD: u64 = 400;

const ENV_STORE: &str = "NPK_CRASH_STORE";
const ENV_SEED: &str = "NPK_CRASH_SEED";
const ENV_PROGRESS: &str = "NPK_CRASH_PROGRESS";

// ---------------------------------------------------------------------------------------
// Operations, their generator (a function of the seed and the model only), their effect on
// the model, and their execution on a store.

enum Step {
    Save { name: String, dtype: DType, shape: Vec<u64>, data: Vec<u8> },
    Append { name: String, dtype: DType, shape: Vec<u64>, data: Vec<u8> },
    ReplaceRows { name: String, dtype: DType, idx: Vec<i64>, data: Vec<u8> },
    ReplaceRange { name: String, dtype: DType, start: u64, rows: u64, data: Vec<u8> },
    Delete { name: String, idx: Vec<i64> },
    Compact { name: String },
    Drop { name: String },
    Clone { src: String, dst: String },
    Rename { from: String, to: String },
    Reset,
    Sync,
    Reopen,
    // compressed arrays: a save with zstd at `level` (then every change to the array
    // goes through its chunks)
    SaveZ { name: String, dtype: DType, shape: Vec<u64>, data: Vec<u8>, level: i32 },
}

fn short_idx(idx: &[i64]) -> String {
    if idx.len() <= 6 {
        format!("{idx:?}")
    } else {
        format!("[{}, {}, {}, ... {} indices]", idx[0], idx[1], idx[2], idx.len())
    }
}

impl Step {
    fn kind(&self) -> &'static str {
        match self {
            Step::Save { .. } => "save",
            Step::Append { .. } => "append",
            Step::ReplaceRows { .. } => "replace_rows",
            Step::ReplaceRange { .. } => "replace_range",
            Step::Delete { .. } => "delete",
            Step::Compact { .. } => "compact",
            Step::Drop { .. } => "drop",
            Step::Clone { .. } => "clone",
            Step::Rename { .. } => "rename",
            Step::Reset => "reset",
            Step::Sync => "sync",
            Step::Reopen => "reopen",
            Step::SaveZ { .. } => "save_compressed",
        }
    }

    fn describe(&self) -> String {
        match self {
            Step::Save { name, dtype, shape, data } => {
                format!("save {name:?} {}{shape:?} ({} bytes)", dtype.numpy_name(), data.len())
            }
            Step::Append { name, shape, .. } => format!("append {name:?} {shape:?}"),
            Step::ReplaceRows { name, idx, .. } => format!("replace_rows {name:?} {}", short_idx(idx)),
            Step::ReplaceRange { name, start, rows, .. } => format!("replace_range {name:?} {start}..{}", start + rows),
            Step::Delete { name, idx } => format!("delete_rows {name:?} {}", short_idx(idx)),
            Step::Compact { name } => format!("compact {name:?}"),
            Step::Drop { name } => format!("drop {name:?}"),
            Step::Clone { src, dst } => format!("clone {src:?} -> {dst:?}"),
            Step::Rename { from, to } => format!("rename {from:?} -> {to:?}"),
            Step::Reset => "reset".into(),
            Step::Sync => "sync".into(),
            Step::Reopen => "close + reopen".into(),
            Step::SaveZ { name, dtype, shape, data, level } => {
                format!("save {name:?} {}{shape:?} ({} bytes) compressed at level {level}", dtype.numpy_name(), data.len())
            }
        }
    }
}

fn free_names(m: &Model) -> Vec<&'static str> {
    NAMES.iter().copied().filter(|n| !m.contains_key(*n)).collect()
}

fn pick_existing(rng: &mut Rng, m: &Model, want: impl Fn(&Arr) -> bool) -> Option<String> {
    let names: Vec<&String> = m.iter().filter(|(_, a)| want(a)).map(|(n, _)| n).collect();
    if names.is_empty() { None } else { Some(rng.pick(&names).to_string()) }
}

/// A row count whose payload is about `class` sized, for rows of `rb` bytes.
fn rows_for(rng: &mut Rng, rb: usize, tiny: u64, small: u64, large: u64) -> u64 {
    let r = rng.below(100);
    if rb == 0 {
        return rng.below(100);
    }
    let bytes = if r < tiny {
        rng.below(1024)
    } else if r < tiny + small {
        rng.range(1024, 64 << 10)
    } else if r < tiny + small + large {
        rng.range(1 << 20, 4 << 20)
    } else {
        rng.range(64 << 10, 1 << 20)
    };
    (bytes / rb as u64).max(1)
}

fn gen_save(rng: &mut Rng, m: &Model) -> Step {
    let free = free_names(m);
    let name = if !free.is_empty() && (m.is_empty() || rng.chance(600)) {
        rng.pick(&free).to_string()
    } else {
        pick_existing(rng, m, |_| true).unwrap()
    };
    let dtype = *rng.pick(&DType::ALL);
    let ndim = match rng.below(10) {
        0..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    let mut shape = vec![0u64];
    match ndim {
        1 => {}
        2 => shape.push(if rng.chance(20) { 0 } else { rng.range(1, 64) }),
        _ => shape.extend([rng.range(1, 12), rng.range(1, 12)]),
    }
    let rb = shape[1..].iter().product::<u64>() as usize * dtype.size();
    shape[0] = if rng.chance(50) { 0 } else { rows_for(rng, rb, 40, 35, 25) };
    let len = shape.iter().product::<u64>() as usize * dtype.size();
    // compressed arrays: one save in three, of data that compresses (rows of zero bytes
    // cannot be stored compressed)
    if rb > 0 && rng.chance(333) {
        let mut data = random_bytes(rng, len);
        data.iter_mut().for_each(|b| *b &= 3);
        let level = rng.range(1, 6) as i32;
        return Step::SaveZ { name, dtype, data, shape, level };
    }
    Step::Save { name, dtype, data: random_bytes(rng, len), shape }
}

/// Logical indices, some negative, some repeated.
fn gen_indices(rng: &mut Rng, rows: u64, count: u64) -> Vec<i64> {
    let mut idx: Vec<i64> = Vec::with_capacity(count as usize);
    for i in 0..count {
        if i > 0 && rng.chance(150) {
            let again = idx[rng.below(i) as usize];
            idx.push(again);
            continue;
        }
        let j = rng.below(rows) as i64;
        idx.push(if rng.chance(300) { j - rows as i64 } else { j });
    }
    idx
}

/// One child in forty rewrites a 4 MiB array over and over without syncing or reopening,
/// so that its log grows past the 64 MiB checkpoint threshold while it runs. (Rare: in
/// debug builds checksumming such a log takes about half a second per open.)
fn log_heavy(seed: u64) -> bool {
    seed % 40 == 0
}

fn next_step(rng: &mut Rng, m: &Model, heavy: bool) -> Step {
    if m.is_empty() {
        return gen_save(rng, m);
    }
    let total: usize = m.values().map(|a| a.data.len()).sum();
    if total > BUDGET {
        return if rng.chance(30) { Step::Reset } else { Step::Drop { name: pick_existing(rng, m, |_| true).unwrap() } };
    }
    if heavy && rng.chance(800) {
        return match pick_existing(rng, m, |a| a.data.len() >= 4 << 20) {
            Some(name) => {
                let a = &m[&name];
                let data = random_bytes(rng, a.data.len());
                Step::ReplaceRange { name, dtype: a.dtype, start: 0, rows: a.rows(), data }
            }
            None => {
                let name = rng.pick(&NAMES).to_string();
                let shape = vec![1 << 20];
                let data = random_bytes(rng, shape[0] as usize * 4);
                Step::Save { name, dtype: DType::Int32, shape, data }
            }
        };
    }
    loop {
        let step = match rng.below(1000) {
            0..120 => Some(gen_save(rng, m)),
            120..280 => pick_existing(rng, m, |_| true).map(|name| {
                let a = &m[&name];
                let rows = if rng.chance(20) { 0 } else { rows_for(rng, a.row_bytes(), 50, 35, 2) };
                let mut shape = a.shape.clone();
                shape[0] = rows;
                let data = random_bytes(rng, rows as usize * a.row_bytes());
                Step::Append { name, dtype: a.dtype, shape, data }
            }),
            280..410 => pick_existing(rng, m, |a| a.rows() > 0).map(|name| {
                let a = &m[&name];
                let rb = a.row_bytes().max(1) as u64;
                let cap = match rng.below(10) {
                    0..=5 => 8,
                    6..=8 => 256,
                    _ => 2048.min((2 << 20) / rb).max(1),
                };
                let count = rng.range(1, cap);
                let idx = gen_indices(rng, a.rows(), count);
                let data = random_bytes(rng, idx.len() * a.row_bytes());
                Step::ReplaceRows { name, dtype: a.dtype, idx, data }
            }),
            410..510 => pick_existing(rng, m, |a| a.rows() > 0).map(|name| {
                let a = &m[&name];
                let (start, rows) = match rng.below(10) {
                    0..=4 => {
                        let s = rng.below(a.rows());
                        (s, rng.range(0, (a.rows() - s).min(8)))
                    }
                    5..=8 => {
                        let s = rng.below(a.rows());
                        (s, rng.range(0, a.rows() - s))
                    }
                    _ => (0, a.rows()),
                };
                let data = random_bytes(rng, rows as usize * a.row_bytes());
                Step::ReplaceRange { name, dtype: a.dtype, start, rows, data }
            }),
            510..640 => pick_existing(rng, m, |a| a.rows() > 0).map(|name| {
                let rows = m[&name].rows();
                let idx = match rng.below(100) {
                    0..=59 => {
                        let n = rng.range(1, 4);
                        gen_indices(rng, rows, n)
                    }
                    60..=94 => {
                        let n = rng.range(1, rows.min(1024));
                        gen_indices(rng, rows, n)
                    }
                    _ if rows <= 4096 => (0..rows as i64).map(|i| if i % 3 == 0 { i - rows as i64 } else { i }).collect(),
                    _ => gen_indices(rng, rows, 4096),
                };
                Step::Delete { name, idx }
            }),
            640..700 => pick_existing(rng, m, |_| true).map(|name| Step::Compact { name }),
            700..750 => pick_existing(rng, m, |_| true).map(|name| Step::Drop { name }),
            750..800 => {
                let free = free_names(m);
                if free.is_empty() {
                    None
                } else {
                    let src = pick_existing(rng, m, |_| true).unwrap();
                    Some(Step::Clone { src, dst: rng.pick(&free).to_string() })
                }
            }
            800..860 => {
                let free = free_names(m);
                if free.is_empty() {
                    None
                } else {
                    let from = pick_existing(rng, m, |_| true).unwrap();
                    Some(Step::Rename { from, to: rng.pick(&free).to_string() })
                }
            }
            860..865 => Some(Step::Reset),
            865..885 if !heavy => Some(Step::Sync),
            885..925 if !heavy => Some(Step::Reopen),
            _ => None,
        };
        if let Some(s) = step {
            return s;
        }
    }
}

fn resolve(i: i64, rows: u64) -> usize {
    (if i < 0 { i + rows as i64 } else { i }) as usize
}

/// The operation's effect on the logical contents.
fn apply(m: &mut Model, step: Step) {
    match step {
        Step::Save { name, dtype, shape, data } | Step::SaveZ { name, dtype, shape, data, .. } => {
            m.insert(name, Arr { dtype, phys: shape[0], shape, data: Arc::new(data) });
        }
        Step::Append { name, shape, data, .. } => {
            let a = m.get_mut(&name).unwrap();
            a.shape[0] += shape[0];
            a.phys += shape[0];
            Arc::make_mut(&mut a.data).extend_from_slice(&data);
        }
        Step::ReplaceRows { name, idx, data, .. } => {
            let a = m.get_mut(&name).unwrap();
            let (rb, rows) = (a.row_bytes(), a.rows());
            let dst = Arc::make_mut(&mut a.data);
            for (k, &i) in idx.iter().enumerate() {
                let j = resolve(i, rows);
                dst[j * rb..(j + 1) * rb].copy_from_slice(&data[k * rb..(k + 1) * rb]);
            }
        }
        Step::ReplaceRange { name, start, data, .. } => {
            let a = m.get_mut(&name).unwrap();
            let at = start as usize * a.row_bytes();
            Arc::make_mut(&mut a.data)[at..at + data.len()].copy_from_slice(&data);
        }
        Step::Delete { name, idx } => {
            let a = m.get_mut(&name).unwrap();
            let (rb, rows) = (a.row_bytes(), a.rows());
            let mut gone: Vec<usize> = idx.iter().map(|&i| resolve(i, rows)).collect();
            gone.sort_unstable();
            gone.dedup();
            let mut data = Vec::with_capacity(a.data.len() - gone.len() * rb);
            let mut from = 0;
            for &g in &gone {
                data.extend_from_slice(&a.data[from * rb..g * rb]);
                from = g + 1;
            }
            data.extend_from_slice(&a.data[from * rb..]);
            a.data = Arc::new(data);
            a.shape[0] -= gone.len() as u64;
        }
        Step::Compact { name } => {
            let a = m.get_mut(&name).unwrap();
            a.phys = a.rows();
        }
        Step::Sync | Step::Reopen => {}
        Step::Drop { name } => {
            m.remove(&name);
        }
        Step::Clone { src, dst } => {
            let mut a = m[&src].clone();
            a.phys = a.rows();
            m.insert(dst, a);
        }
        Step::Rename { from, to } => {
            let a = m.remove(&from).unwrap();
            m.insert(to, a);
        }
        Step::Reset => m.clear(),
    }
}

fn exec(store: &mut Option<Store>, path: &Path, step: &Step) -> numpack::Result<()> {
    if let Step::Reopen = step {
        store.take().unwrap().close()?;
        *store = Some(Store::open(path, OpenOptions::default())?);
        return Ok(());
    }
    let s = store.as_ref().unwrap();
    match step {
        Step::Save { name, dtype, shape, data } => s.save(name, *dtype, shape, data),
        Step::Append { name, dtype, shape, data } => s.append(name, *dtype, shape, data),
        Step::ReplaceRows { name, dtype, idx, data } => s.replace_rows(name, *dtype, idx, data),
        Step::ReplaceRange { name, dtype, start, rows, data } => s.replace_range(name, *dtype, *start, *rows, data),
        Step::Delete { name, idx } => s.delete_rows(name, idx),
        Step::Compact { name } => s.compact(name),
        Step::Drop { name } => s.drop_array(name),
        Step::Clone { src, dst } => s.clone_array(src, dst),
        Step::Rename { from, to } => s.rename(from, to),
        Step::Reset => s.reset(),
        Step::Sync => s.sync(),
        Step::Reopen => unreachable!(),
        Step::SaveZ { name, dtype, shape, data, level } => {
            let opts = numpack::SaveOptions { compression: Some(numpack::Compression { level: *level }) };
            s.save_with(name, *dtype, shape, data, &opts)
        }
    }
}

// ---------------------------------------------------------------------------------------
// The child.

#[test]
#[ignore = "child process of crash_consistency; does nothing when run on its own"]
fn crash_child() {
    let Ok(path) = std::env::var(ENV_STORE) else { return };
    let path = PathBuf::from(path);
    let seed = env_u64(ENV_SEED, 0);
    let progress = std::env::var(ENV_PROGRESS).unwrap();
    let mut store = Some(Store::open(&path, OpenOptions::default()).expect("child: cannot open the store"));
    let mut model = snapshot(store.as_ref().unwrap());
    let mut rng = Rng::new(seed);
    let mut prog = fs::OpenOptions::new().create(true).append(true).open(progress).unwrap();
    // The store is open (and recovered, if this open had to) and read.
    prog.write_all(b"start\n").unwrap();
    announce(READY, "");
    for i in 0..OPS_PER_CHILD {
        let step = next_step(&mut rng, &model, log_heavy(seed));
        if let Err(e) = exec(&mut store, &path, &step) {
            panic!("child seed {seed:#x}: operation {i} ({}) failed: {e}", step.describe());
        }
        apply(&mut model, step);
        // One write(2) per operation: a SIGKILL cannot tear it, and the page cache keeps it.
        prog.write_all(format!("{i}\n").as_bytes()).unwrap();
    }
    store.take().unwrap().close().unwrap();
}

// ---------------------------------------------------------------------------------------
// The parent.

/// Whether the child opened and read the store, and how many operations it finished.
fn read_progress(path: &Path) -> (bool, u64) {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.split_terminator('\n');
    let Some(first) = lines.next() else { return (false, 0) };
    assert_eq!(first, "start", "bad progress file {text:?}");
    let mut k = 0;
    for line in lines {
        assert_eq!(line.parse::<u64>().ok(), Some(k), "progress file out of order: {text:?}");
        k += 1;
    }
    (true, k)
}

/// Models after `k` and after `k + 1` operations of the child with `seed`, and the log.
struct Simulated {
    before: Model,
    after: Model,
    log: Vec<String>,
    in_flight: &'static str,
}

fn simulate(start: &Model, seed: u64, k: u64) -> Simulated {
    let mut rng = Rng::new(seed);
    let mut m = start.clone();
    let mut log = Vec::new();
    for i in 0..k {
        let s = next_step(&mut rng, &m, log_heavy(seed));
        log.push(format!("  {i:3}: {}", s.describe()));
        apply(&mut m, s);
    }
    if k >= OPS_PER_CHILD {
        log.push("  (all operations done; final close in flight)".into());
        return Simulated { after: m.clone(), before: m, log, in_flight: "final close" };
    }
    let s = next_step(&mut rng, &m, log_heavy(seed));
    log.push(format!("  {k:3}: {}   <- in flight", s.describe()));
    let in_flight = s.kind();
    let mut after = m.clone();
    apply(&mut after, s);
    Simulated { before: m, after, log, in_flight }
}

/// The log's generation: it moves at every checkpoint.
fn wal_generation(path: &Path) -> u64 {
    let mut h = [0u8; 24];
    let f = fs::File::open(path.join(numpack::wal::FILE_NAME)).unwrap();
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut h, 0).unwrap();
    u64::from_le_bytes(h[16..24].try_into().unwrap())
}

/// Names, sizes and contents of every file under `dir`.
fn dir_state(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.insert(p.clone(), fs::read(&p).unwrap_or_default());
        }
    }
    out
}

fn ro() -> OpenOptions {
    OpenOptions { read_only: true, ..Default::default() }
}

/// Files that do not belong to any array (orphans of killed operations).
fn stray_files(path: &Path, m: &Model) -> Vec<String> {
    let mut ok: Vec<String> = vec![numpack::metadata::FILE_NAME.into(), numpack::wal::FILE_NAME.into()];
    for n in m.keys() {
        ok.push(numpack::name::data_file(n));
        ok.push(numpack::name::bitmap_file(n));
        ok.push(numpack::compress::file_name(n)); // compressed arrays
    }
    let mut strays: Vec<String> = fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !ok.contains(n))
        .collect();
    strays.sort();
    strays
}

/// After a clean close: `metadata.npkm` decodes and, with the bitmaps, describes `m`; the
/// log is empty. Returns whether some data file is longer than its catalogue entry.
fn check_catalogue(path: &Path, m: &Model) -> Result<bool, String> {
    let bytes = fs::read(path.join(numpack::metadata::FILE_NAME)).map_err(|e| e.to_string())?;
    let cat = numpack::metadata::decode(&bytes).map_err(|e| format!("metadata.npkm does not decode: {e}"))?;
    let names: Vec<&String> = cat.keys().collect();
    if names != m.keys().collect::<Vec<_>>() {
        return Err(format!("metadata.npkm lists {names:?}, the store holds {:?}", m.keys().collect::<Vec<_>>()));
    }
    let mut longer = false;
    for (name, e) in &cat {
        let a = &m[name];
        if e.dtype != a.dtype || e.shape.len() != a.shape.len() || e.shape[1..] != a.shape[1..] || e.shape[0] != a.phys {
            return Err(format!("metadata.npkm has {name:?} as {:?}{:?}, the store as {a:?}", e.dtype, e.shape));
        }
        let zpath = path.join(numpack::compress::file_name(name));
        if zpath.exists() {
            // compressed arrays: the file's header and index must agree with the catalogue,
            // and no plain data file may be left beside it
            numpack::compress::ZFile::open(&zpath, name, false, Some((e.dtype, e.row_bytes(), e.physical_rows()))).map_err(|e| e.to_string())?;
            if path.join(numpack::name::data_file(name)).exists() {
                return Err(format!("{name:?} has both a compressed and a plain data file"));
            }
        }
        let flen = if zpath.exists() {
            e.nbytes()
        } else {
            fs::metadata(path.join(numpack::name::data_file(name))).map_err(|e| format!("{name:?}: {e}"))?.len()
        };
        if flen < e.nbytes() {
            return Err(format!("data file of {name:?} has {flen} bytes, the catalogue says {}", e.nbytes()));
        }
        longer |= flen > e.nbytes();
        let live = match fs::read(path.join(numpack::name::bitmap_file(name))) {
            Ok(b) => numpack::bitmap::Bitmap::decode(&b, a.phys).map_err(|e| format!("bitmap of {name:?}: {e}"))?.live(),
            Err(_) => a.phys,
        };
        if live != a.rows() {
            return Err(format!("{name:?}: catalogue + bitmap give {live} live rows of {}, the store {}", a.phys, a.rows()));
        }
    }
    let wal = numpack::wal::Wal::open(path, false).map_err(|e| e.to_string())?;
    let hdr = wal.read_header().map_err(|e| e.to_string())?;
    if hdr.end != numpack::wal::HEADER_LEN || hdr.applied_end != hdr.end {
        return Err(format!("the log still has records after a clean close (end {}, applied {})", hdr.end, hdr.applied_end));
    }
    let wal_len = wal.file_len().map_err(|e| e.to_string())?;
    if wal_len > numpack::wal::KEEP_LEN {
        return Err(format!("the log file is {wal_len} bytes after a clean close"));
    }
    Ok(longer)
}

#[derive(Default)]
struct Tally {
    k: u64,
    k1: u64,
    same: u64,
}

#[derive(Default)]
struct Stats {
    kills: u64,
    completed: u64,
    /// Killed before its first operation finished.
    no_op_finished: u64,
    /// Killed before it had even read the store (starting, opening, recovering).
    not_started: u64,
    deferred: u64,
    /// Log-heavy children, and those during which the log was checkpointed for its size.
    heavy: u64,
    heavy_checkpointed: u64,
    ops_verified: u64,
    k: u64,
    k1: u64,
    same: u64,
    by_kind: BTreeMap<&'static str, Tally>,
    longer_files: u64,
    recovered_by: BTreeMap<&'static str, u64>,
}

/// A state the store may be in after a kill.
struct Cand {
    model: Model,
    /// "k", "k+1", or "start" when the child died before it read the store.
    label: &'static str,
    in_flight: &'static str,
    /// The in-flight operation has no logical effect (k and k+1 are the same state).
    same: bool,
}

struct Ctx {
    master: u64,
    cycle: u64,
    seed: u64,
    delay_us: u64,
    k: u64,
    start: String,
    log: Vec<String>,
    cands: Vec<Cand>,
}

impl Ctx {
    fn fail(&self, msg: &str) -> ! {
        let cands: Vec<String> =
            self.cands.iter().enumerate().map(|(i, c)| format!("candidate {i} (state {}): {}", c.label, describe(&c.model))).collect();
        panic!(
            "CRASH CONSISTENCY FAILURE: {msg}\n\
             reproduce with NUMPACK_CRASH_SEED={:#x} (cycle {}, child seed {:#x}, killed {} us after it was ready or spawned, k = {})\n\
             store before the cycle: {}\n\
             operations of this cycle:\n{}\n{}",
            self.master,
            self.cycle,
            self.seed,
            self.delay_us,
            self.k,
            self.start,
            self.log.join("\n"),
            cands.join("\n"),
        )
    }

    /// Which candidate state `got` is; fails if none.
    fn classify(&self, got: &Model, through: &str) -> usize {
        if let Some(i) = self.cands.iter().position(|c| c.model == *got) {
            return i;
        }
        let diffs: Vec<String> =
            self.cands.iter().enumerate().map(|(i, c)| format!("differences from candidate {i}:\n{}", diff(got, &c.model))).collect();
        self.fail(&format!("the store read through {through} matches none of the states it may be in\n{}", diffs.join("\n")))
    }

    fn same(&self, got: &Model, want: &Model, through: &str) {
        if got != want {
            self.fail(&format!("{through} reads a different store than the first handle:\n{}", diff(got, want)));
        }
    }
}

#[test]
fn crash_consistency() {
    let master = env_u64("NUMPACK_CRASH_SEED", 0x5EED_C4A5);
    let cycles = env_u64("NUMPACK_CRASH_CYCLES", 260);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("store");
    let progress = tmp.path().join("progress");
    Store::open(&path, OpenOptions { create: true, ..Default::default() }).unwrap().close().unwrap();
    // Open all along: it must follow every cycle, recovering when it is the first to look.
    let long_lived = Store::open(&path, OpenOptions::default()).unwrap();
    // The states the store may be in now: one after a check, two when the parent did not
    // look after the last kill (the next child then recovers, and may be killed doing so).
    let mut starts: Vec<Model> = vec![Model::new()];
    let mut mrng = Rng::new(master);
    let mut stats = Stats::default();
    let t0 = Instant::now();
    let mut child_time = Duration::ZERO;

    for cycle in 0..cycles {
        let seed = mrng.next_u64();
        let _ = fs::remove_file(&progress);
        // 10%: kill while the child is still starting (opening, recovering, loading);
        // 10%: right after it is ready; otherwise 0-30 ms into its operations (0-250 ms
        // for a log-heavy child, so that it gets past a checkpoint).
        let mode = mrng.below(100);
        let delay_us = match mode {
            0..10 => mrng.below(3000),
            10..20 => 0,
            _ if log_heavy(seed) => mrng.range(500_000, 900_000),
            _ => mrng.below(30_000),
        };
        let generation = wal_generation(&path);
        let tc = Instant::now();
        let mut child = spawn_child(
            "crash_child",
            &[
                (ENV_STORE, path.display().to_string()),
                (ENV_SEED, seed.to_string()),
                (ENV_PROGRESS, progress.display().to_string()),
            ],
        );
        if mode >= 10 && !child.wait_ready() {
            let st = child.child.wait().unwrap();
            panic!("NUMPACK_CRASH_SEED={master:#x} cycle {cycle}: child (seed {seed:#x}) died before it was ready: {st}");
        }
        if delay_us > 0 {
            std::thread::sleep(Duration::from_micros(delay_us));
        }
        child.sigkill();
        let status = child.child.wait().unwrap();
        child_time += tc.elapsed();
        let killed = status.signal() == Some(libc::SIGKILL);
        let (started, k) = read_progress(&progress);
        if log_heavy(seed) && started {
            stats.heavy += 1;
            stats.heavy_checkpointed += (wal_generation(&path) > generation) as u64;
        }

        // The candidate states: after k or k + 1 operations from whichever state the child
        // found (simulated from each possible start), or, if it never read the store, the
        // possible starts themselves.
        let start = match &starts[..] {
            [one] => describe(one),
            many => format!("unknown, one of:\n{}", many.iter().map(|m| format!("    {}", describe(m))).collect::<Vec<_>>().join("\n")),
        };
        let mut log = Vec::new();
        let mut cands = Vec::new();
        let several = starts.len() > 1;
        for (i, s) in std::mem::take(&mut starts).into_iter().enumerate() {
            if !started {
                cands.push(Cand { model: s, label: "start", in_flight: "start", same: true });
                continue;
            }
            let sim = simulate(&s, seed, k);
            if several {
                log.push(format!("  from possible start {i}:"));
            }
            log.extend(sim.log);
            let same = sim.before == sim.after;
            cands.push(Cand { model: sim.before, label: "k", in_flight: sim.in_flight, same });
            cands.push(Cand { model: sim.after, label: "k+1", in_flight: sim.in_flight, same });
        }
        if !started {
            log.push("  (the child died before it had read the store)".into());
        }
        let ctx = Ctx { master, cycle, seed, delay_us, k, start, log, cands };
        if !killed && !status.success() {
            ctx.fail(&format!("the child failed on its own: {status} (its panic message is above)"));
        }
        if killed {
            stats.kills += 1;
            stats.no_op_finished += (k == 0) as u64;
            stats.not_started += !started as u64;
        } else {
            stats.completed += 1;
        }
        // check (cli branch): straight after the kill, before anything recovers, the only
        // error check may report is that the store needs recovery.
        match numpack::check::check(&path) {
            Ok(r) => {
                let bad: Vec<_> = r
                    .findings
                    .iter()
                    .filter(|f| f.severity == numpack::check::Severity::Error && f.id != numpack::check::ids::NEEDS_RECOVERY)
                    .collect();
                if !bad.is_empty() {
                    ctx.fail(&format!("check before recovery reports errors besides needs-recovery: {bad:#?}"));
                }
            }
            Err(e) => ctx.fail(&format!("check before recovery: {e}")),
        }
        // end check (cli branch)

        // Sometimes do not look: the next child opens the store as it was left.
        if cycle + 1 < cycles && mrng.chance(150) && !log_heavy(seed) {
            stats.deferred += 1;
            starts = ctx.cands.into_iter().map(|c| c.model).collect();
            starts.dedup();
            continue;
        }

        // Look at the store three ways; the first handle to look does the recovery.
        // After a log-heavy child, close a writable handle so that the long log is folded.
        let how = if log_heavy(seed) { 0 } else { mrng.below(10) };
        let (snap, which) = match how {
            0..=3 => {
                *stats.recovered_by.entry("fresh writable open").or_default() += 1;
                let w = Store::open(&path, OpenOptions::default()).unwrap_or_else(|e| ctx.fail(&format!("writable open: {e}")));
                let snap = snapshot(&w);
                let which = ctx.classify(&snap, "a fresh writable handle");
                let strays = stray_files(&path, &snap);
                if !strays.is_empty() {
                    ctx.fail(&format!("files left behind after recovery: {strays:?}"));
                }
                // check (cli branch): a killed writer never leaves a store that check, run
                // after recovery, finds an error in (trailing bytes of an append are a warning).
                match numpack::check::check(&path) {
                    Ok(r) if r.is_ok() => {}
                    Ok(r) => ctx.fail(&format!("check after recovery reports errors: {:#?}", r.findings)),
                    Err(e) => ctx.fail(&format!("check after recovery: {e}")),
                }
                // end check (cli branch)
                let r = Store::open(&path, ro()).unwrap_or_else(|e| ctx.fail(&format!("read-only open: {e}")));
                ctx.same(&snapshot(&r), &snap, "a read-only handle");
                drop(r);
                ctx.same(&snapshot(&long_lived), &snap, "the long-lived handle (auto-refresh)");
                w.close().unwrap_or_else(|e| ctx.fail(&format!("close: {e}")));
                match check_catalogue(&path, &snap) {
                    Ok(longer) => stats.longer_files += longer as u64,
                    Err(e) => ctx.fail(&format!("after a clean close: {e}")),
                }
                (snap, which)
            }
            4..=6 => {
                let files_before = dir_state(&path);
                let r = match Store::open(&path, ro()) {
                    Ok(r) => {
                        *stats.recovered_by.entry("fresh read-only open").or_default() += 1;
                        r
                    }
                    Err(e) if e.code == numpack::ErrorCode::NeedsRecovery => {
                        // A read-only open repairs nothing: it says so and leaves every
                        // file as it was; the long-lived writable handle recovers.
                        if dir_state(&path) != files_before {
                            ctx.fail("a read-only open that needs recovery changed files");
                        }
                        *stats.recovered_by.entry("read-only open refused (needs recovery), then refresh()").or_default() += 1;
                        long_lived.refresh().unwrap_or_else(|e| ctx.fail(&format!("refresh: {e}")));
                        Store::open(&path, ro()).unwrap_or_else(|e| ctx.fail(&format!("read-only open after recovery: {e}")))
                    }
                    Err(e) => ctx.fail(&format!("read-only open: {e}")),
                };
                let snap = snapshot(&r);
                let which = ctx.classify(&snap, "a fresh read-only handle");
                drop(r);
                ctx.same(&snapshot(&long_lived), &snap, "the long-lived handle (auto-refresh)");
                (snap, which)
            }
            _ => {
                *stats.recovered_by.entry("long-lived handle refresh()").or_default() += 1;
                long_lived.refresh().unwrap_or_else(|e| ctx.fail(&format!("refresh: {e}")));
                let snap = snapshot(&long_lived);
                let which = ctx.classify(&snap, "the long-lived handle after refresh()");
                let r = Store::open(&path, ro()).unwrap_or_else(|e| ctx.fail(&format!("read-only open: {e}")));
                ctx.same(&snapshot(&r), &snap, "a read-only handle");
                (snap, which)
            }
        };
        let c = &ctx.cands[which];
        if c.label != "start" {
            let tally = stats.by_kind.entry(c.in_flight).or_default();
            let advanced = c.label == "k+1";
            if c.same {
                stats.same += 1;
                tally.same += 1;
            } else if advanced {
                stats.k1 += 1;
                tally.k1 += 1;
            } else {
                stats.k += 1;
                tally.k += 1;
            }
            stats.ops_verified += k + (advanced && !c.same) as u64;
        }
        starts = vec![snap];
    }

    // A clean close of the last handle folds everything into metadata.npkm.
    let [model] = &starts[..] else { unreachable!("the last cycle always checks") };
    long_lived.close().unwrap();
    let last = Store::open(&path, OpenOptions::default()).unwrap();
    let snap = snapshot(&last);
    assert!(snap == *model, "final reopen differs:\n{}", diff(&snap, model));
    last.close().unwrap();
    if let Err(e) = check_catalogue(&path, model) {
        panic!("NUMPACK_CRASH_SEED={master:#x}: after the final clean close: {e}");
    }
    let r = Store::open(&path, ro()).unwrap();
    assert!(snapshot(&r) == *model);

    let kinds: Vec<String> = stats.by_kind.iter().map(|(n, t)| format!("{n} {}/{}/{}", t.k, t.k1, t.same)).collect();
    println!(
        "crash summary: seed {master:#x}, {cycles} cycles in {:.1?} (children {:.1?}): {} kills, {} children finished on their own; \
         {} kills before any operation finished ({} before the child had read the store); \
         {} kills left for the next child to recover; {} log-heavy children, {} past a size-triggered checkpoint; {} operations verified; \
         state k: {}, state k+1: {}, in-flight op with no logical effect: {}; \
         data files longer than their catalogue entry after close: {}; recovery by {:?}",
        t0.elapsed(),
        child_time,
        stats.kills,
        stats.completed,
        stats.no_op_finished,
        stats.not_started,
        stats.deferred,
        stats.heavy,
        stats.heavy_checkpointed,
        stats.ops_verified,
        stats.k,
        stats.k1,
        stats.same,
        stats.longer_files,
        stats.recovered_by,
    );
    println!("crash summary by in-flight operation (k / k+1 / no logical effect): {}", kinds.join(", "));
}

// ---------------------------------------------------------------------------------------
// Failures the harness found, reduced to deterministic tests.

/// A process killed after an append's record is committed but before it rewrote the
/// array's bitmap leaves the old bitmap file (16-byte header + `n` words). When the append
/// grows the bitmap to exactly `n + 2` words, that file has the length of a header-less
/// (legacy) bitmap of the new row count; the redo used to read the header as words 0 and 1,
/// so rows 0..128 got the old row count and deleted count as their live bits (fixed in
/// ea87e71, "Redo bitmaps by layout, not by size alone").
#[test]
fn redo_of_append_keeps_old_bitmap_header_out_of_the_words() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s");
    let s = Store::open(&path, OpenOptions { create: true, ..Default::default() }).unwrap();
    let rows: Vec<u8> = (0..64).collect();
    s.save("x", DType::Uint8, &[64], &rows).unwrap();
    s.delete_rows("x", &[5]).unwrap(); // bitmap of 64 rows: 16 + 8 bytes
    let bitmap = path.join(numpack::name::bitmap_file("x"));
    let old_bitmap = fs::read(&bitmap).unwrap();
    let before = applied_end(&path);
    let more: Vec<u8> = (100..200).collect();
    s.append("x", DType::Uint8, &[100], &more).unwrap(); // 164 rows: 3 words = 24 bytes
    // Put the files back as a kill right after the append's commit would have left them:
    // the old bitmap, and `applied_end` before the append's record (which stays committed).
    std::mem::forget(s);
    fs::write(&bitmap, &old_bitmap).unwrap();
    set_applied_end(&path, before);

    let s = Store::open(&path, OpenOptions::default()).unwrap();
    let (info, data) = s.load("x").unwrap();
    let mut want: Vec<u8> = (0..64).filter(|&r| r != 5).collect();
    want.extend(100..200);
    assert_eq!(info.shape, vec![163]);
    assert_eq!(data, want);
}
