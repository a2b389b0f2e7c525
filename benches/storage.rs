//! Storage benchmarks on the reference dataset: 1,000,000 × 10 float32 (38.1 MB) in one
//! array, data file in the page cache. Every operation is measured beside a "machine
//! limit" baseline in the same run (same bytes, plain system calls or memcpy), because
//! absolute times drift on shared machines: compare ratios.
//!
//! Goals (from /work/shared/ANCHORS.md, this crate's targets):
//!   full load into a fresh buffer   ≤ 1.1 × plain read of the file into a fresh buffer
//!   save a whole array              ≤ writing the same bytes to a file (what np.save does)
//!   replace 100 contiguous rows     ≤ 3 µs     (baseline: one 4,000-byte pwrite)
//!   append 100 rows                 ≤ 8 µs     (baseline: one 4,000-byte pwrite at EOF)
//!   replace 100 scattered rows      ≤ 150 µs   (baseline: 100 × 40-byte pwrite)
//!   delete 100 scattered rows       ≤ 60 µs
//!   gather 1,000 random rows        ≤ 15 µs    (baselines: the same gather from an in-memory
//!                                               copy and from a mapping of the data file)
//!
//! Run: `cargo bench --bench storage` (add `-- <filter>` to pick benchmarks).

use std::fs::{File, OpenOptions as FsOpenOptions};
use std::hint::black_box;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use numpack::{DType, OpenOptions, Store};

const ROWS: u64 = 1_000_000;
const COLS: u64 = 10;
const ROW_BYTES: usize = (COLS * 4) as usize;
const NBYTES: usize = ROWS as usize * ROW_BYTES;

/// splitmix64: deterministic, dependency-free random numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
    /// `k` distinct values below `n`, in random order.
    fn distinct(&mut self, k: usize, n: u64) -> Vec<i64> {
        let mut seen = std::collections::HashSet::with_capacity(k);
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let v = self.below(n);
            if seen.insert(v) {
                out.push(v as i64);
            }
        }
        out
    }
}

fn dataset() -> Vec<u8> {
    let mut v = Vec::with_capacity(NBYTES);
    for i in 0..ROWS * COLS {
        v.extend_from_slice(&(i as f32 * 0.5).to_le_bytes());
    }
    v
}

fn f32_rows(rows: usize, value: f32) -> Vec<u8> {
    value.to_le_bytes().iter().copied().cycle().take(rows * ROW_BYTES).collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Store,
    data: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::Builder::new().prefix("numpack-bench-").tempdir().unwrap();
        let path = dir.path().join("bench.npk");
        let store = Store::open(&path, OpenOptions { create: true, ..Default::default() }).unwrap();
        let data = dataset();
        store.save("a", DType::Float32, &[ROWS, COLS], &data).unwrap();
        // Pull the data file into the page cache.
        let mut warm = vec![0u8; NBYTES];
        store.load_into("a", &mut warm).unwrap();
        Fixture { _dir: dir, path, store, data }
    }
    fn data_file(&self, name: &str) -> PathBuf {
        self.path.join(format!("data_{name}.npkd"))
    }
    /// (Re)creates array `name` as a copy of the dataset.
    fn reset_array(&self, name: &str) {
        self.store.save(name, DType::Float32, &[ROWS, COLS], &self.data).unwrap();
    }
}

fn configure() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

fn bench_full_load(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("full_load");
    g.sample_size(15).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Bytes(NBYTES as u64));
    g.bench_function("numpack_load_into_new_vec", |b| {
        b.iter(|| {
            let mut out = vec![0u8; NBYTES];
            fx.store.load_into("a", &mut out).unwrap();
            black_box(out)
        })
    });
    let file = File::open(fx.data_file("a")).unwrap();
    g.bench_function("baseline_read_exact_into_new_vec", |b| {
        b.iter(|| {
            let mut out = vec![0u8; NBYTES];
            (&file).seek(SeekFrom::Start(0)).unwrap();
            (&file).read_exact(&mut out).unwrap();
            black_box(out)
        })
    });
    g.bench_function("baseline_memcpy_into_new_vec", |b| {
        b.iter(|| {
            let mut out = vec![0u8; NBYTES];
            out.copy_from_slice(&fx.data);
            black_box(out)
        })
    });
    g.finish();
}

fn bench_save(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("save");
    g.sample_size(15).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Bytes(NBYTES as u64));
    g.bench_function("numpack_save_over_existing", |b| {
        b.iter(|| fx.store.save("saved", DType::Float32, &[ROWS, COLS], &fx.data).unwrap())
    });
    // What np.save does: truncate the file and write it again.
    let path = fx.path.join("baseline.npy");
    g.bench_function("baseline_truncate_and_write", |b| {
        b.iter(|| std::fs::write(&path, &fx.data).unwrap())
    });
    g.finish();
}

fn bench_replace_contiguous(c: &mut Criterion, fx: &Fixture) {
    fx.reset_array("r");
    let mut g = c.benchmark_group("replace_100_contiguous");
    let payload = f32_rows(100, -1.0);
    let mut rng = Rng(1);
    g.bench_function("numpack_replace_range", |b| {
        b.iter(|| {
            let start = rng.below(ROWS - 100);
            fx.store.replace_range("r", DType::Float32, start, 100, &payload).unwrap();
        })
    });
    let file = FsOpenOptions::new().write(true).open(fx.data_file("r")).unwrap();
    g.bench_function("baseline_one_pwrite_4000B", |b| {
        b.iter(|| {
            let start = rng.below(ROWS - 100);
            file.write_all_at(&payload, start * ROW_BYTES as u64).unwrap();
        })
    });
    g.finish();
}

fn bench_replace_scattered(c: &mut Criterion, fx: &Fixture) {
    fx.reset_array("r");
    let mut g = c.benchmark_group("replace_100_scattered");
    let payload = f32_rows(100, -2.0);
    let mut rng = Rng(2);
    let sets: Vec<Vec<i64>> = (0..256).map(|_| rng.distinct(100, ROWS)).collect();
    let mut k = 0;
    g.bench_function("numpack_replace_rows", |b| {
        b.iter(|| {
            k = (k + 1) % sets.len();
            fx.store.replace_rows("r", DType::Float32, &sets[k], &payload).unwrap();
        })
    });
    let file = FsOpenOptions::new().write(true).open(fx.data_file("r")).unwrap();
    g.bench_function("baseline_100_pwrites_40B", |b| {
        b.iter(|| {
            k = (k + 1) % sets.len();
            for (j, &r) in sets[k].iter().enumerate() {
                file.write_all_at(&payload[j * ROW_BYTES..(j + 1) * ROW_BYTES], r as u64 * ROW_BYTES as u64).unwrap();
            }
        })
    });
    g.finish();
}

/// Rows appended to one array before it is recreated (outside the timed region).
const APPEND_LIMIT_ROWS: u64 = 200_000;

fn bench_append(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("append_100");
    let payload = f32_rows(100, 3.0);
    fx.reset_array("app");
    let mut appended = 0u64;
    g.bench_function("numpack_append", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if appended >= APPEND_LIMIT_ROWS {
                    fx.reset_array("app");
                    appended = 0;
                }
                let t = Instant::now();
                fx.store.append("app", DType::Float32, &[100, COLS], &payload).unwrap();
                total += t.elapsed();
                appended += 100;
            }
            total
        })
    });
    // The same on an array with one deleted row (it has a deletion bitmap to extend).
    let reset_with_bitmap = || {
        fx.reset_array("app_bm");
        fx.store.delete_rows("app_bm", &[5]).unwrap();
    };
    reset_with_bitmap();
    let mut appended = 0u64;
    g.bench_function("numpack_append_to_array_with_deleted_rows", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if appended >= APPEND_LIMIT_ROWS {
                    reset_with_bitmap();
                    appended = 0;
                }
                let t = Instant::now();
                fx.store.append("app_bm", DType::Float32, &[100, COLS], &payload).unwrap();
                total += t.elapsed();
                appended += 100;
            }
            total
        })
    });
    fx.store.drop_array("app_bm").unwrap();
    // Baseline: a file of the same size grown by one pwrite at its end.
    let base_path = fx.path.join("baseline_append.bin");
    std::fs::write(&base_path, &fx.data).unwrap();
    let file = FsOpenOptions::new().write(true).open(&base_path).unwrap();
    let mut end = NBYTES as u64;
    g.bench_function("baseline_one_pwrite_4000B_at_eof", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if end >= (NBYTES as u64) + APPEND_LIMIT_ROWS * ROW_BYTES as u64 {
                    file.set_len(NBYTES as u64).unwrap();
                    end = NBYTES as u64;
                }
                let t = Instant::now();
                file.write_all_at(&payload, end).unwrap();
                total += t.elapsed();
                end += payload.len() as u64;
            }
            total
        })
    });
    drop(file);
    let _ = std::fs::remove_file(&base_path);
    fx.store.drop_array("app").unwrap();
    g.finish();
}

/// Rows deleted from one array before it is restored (outside the timed region).
const DELETE_LIMIT_ROWS: u64 = 100_000;

fn bench_delete(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("delete_100_scattered");
    fx.reset_array("del");
    let mut rng = Rng(3);
    let mut live = ROWS;
    g.bench_function("numpack_delete_rows", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if ROWS - live >= DELETE_LIMIT_ROWS {
                    fx.reset_array("del");
                    live = ROWS;
                }
                let idx = rng.distinct(100, live);
                let t = Instant::now();
                fx.store.delete_rows("del", &idx).unwrap();
                total += t.elapsed();
                live -= 100;
            }
            total
        })
    });
    // Baseline: clear 100 bits in an in-memory bitmap and write each changed word (8 B).
    let bpath = fx.path.join("baseline_bitmap.bin");
    let mut words = vec![u64::MAX; ROWS.div_ceil(64) as usize];
    std::fs::write(&bpath, words.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let bfile = FsOpenOptions::new().write(true).open(&bpath).unwrap();
    g.bench_function("baseline_100_bitclears_100_pwrites_8B", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let idx = rng.distinct(100, ROWS);
                let t = Instant::now();
                for &r in &idx {
                    let w = r as usize / 64;
                    words[w] &= !(1u64 << (r % 64));
                    bfile.write_all_at(&words[w].to_le_bytes(), 16 + w as u64 * 8).unwrap();
                }
                total += t.elapsed();
            }
            total
        })
    });
    drop(bfile);
    let _ = std::fs::remove_file(&bpath);
    fx.store.drop_array("del").unwrap();
    g.finish();
}

fn bench_gather(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("gather_random_rows");
    g.sample_size(30);
    let mut rng = Rng(4);
    // The data file mapped read-only: the same bytes, the same 4 KiB pages, as numpack reads.
    let view = fx.store.view("a", false).unwrap();
    let mut warm = vec![0u8; NBYTES];
    warm.copy_from_slice(view.bytes());
    drop(warm);
    for &n in &[100usize, 1_000, 10_000] {
        let sets: Vec<Vec<i64>> = (0..64).map(|_| (0..n).map(|_| rng.below(ROWS) as i64).collect()).collect();
        let mut out = vec![0u8; n * ROW_BYTES];
        let mut k = 0;
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("numpack_read_rows_into", n), &n, |b, _| {
            b.iter(|| {
                k = (k + 1) % sets.len();
                fx.store.read_rows_into("a", &sets[k], &mut out).unwrap();
            })
        });
        for (label, src) in [("baseline_memcpy_gather_from_ram", &fx.data[..]), ("baseline_memcpy_gather_from_file_mmap", view.bytes())] {
            g.bench_with_input(BenchmarkId::new(label, n), &n, |b, _| {
                b.iter(|| {
                    k = (k + 1) % sets.len();
                    for (j, &r) in sets[k].iter().enumerate() {
                        let r = r as usize;
                        out[j * ROW_BYTES..(j + 1) * ROW_BYTES].copy_from_slice(&src[r * ROW_BYTES..(r + 1) * ROW_BYTES]);
                    }
                    black_box(&out);
                })
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("slice_10000_rows");
    let n = 10_000u64;
    let mut out = vec![0u8; n as usize * ROW_BYTES];
    g.throughput(Throughput::Bytes(out.len() as u64));
    g.bench_function("numpack_read_range_into", |b| {
        b.iter(|| {
            let start = rng.below(ROWS - n);
            fx.store.read_range_into("a", start, start + n, &mut out).unwrap();
        })
    });
    let file = File::open(fx.data_file("a")).unwrap();
    g.bench_function("baseline_one_pread_400KB", |b| {
        b.iter(|| {
            let start = rng.below(ROWS - n);
            file.read_exact_at(&mut out, start * ROW_BYTES as u64).unwrap();
        })
    });
    g.bench_function("baseline_memcpy_from_ram_400KB", |b| {
        b.iter(|| {
            let start = rng.below(ROWS - n) as usize * ROW_BYTES;
            let len = out.len();
            out.copy_from_slice(&fx.data[start..start + len]);
            black_box(&out);
        })
    });
    g.finish();
}

fn storage(c: &mut Criterion) {
    let fx = Fixture::new();
    bench_full_load(c, &fx);
    bench_save(c, &fx);
    bench_gather(c, &fx);
    bench_replace_contiguous(c, &fx);
    bench_replace_scattered(c, &fx);
    bench_append(c, &fx);
    bench_delete(c, &fx);
    fx.store.clone().close().unwrap();
}

criterion_group! {
    name = benches;
    config = configure();
    targets = storage
}
criterion_main!(benches);
