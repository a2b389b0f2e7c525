//! Exact top-10 vector search, float32, 128 dimensions, beside the machine's memory
//! bandwidth measured in the same run (absolute times drift on shared machines: compare
//! ratios).
//!
//! Goals (from /work/shared/ANCHORS.md, "Vector search"):
//!   1 query × 1,000,000 vectors      ≤ 30 ms dot and l2sq, ≤ 32 ms cosine
//!                                    (memory-bandwidth bound: 512 MB read once)
//!   100 queries × 200,000 vectors    ≤ 100 ms dot and l2sq, ≤ 110 ms cosine
//!   store-backed, file in the page cache: within 1.1 × of the in-memory search
//!   ("store"; "store_deleted" is the same array with every 100th row deleted)
//!
//! Baselines: reading the 512 MB once on all cores (summing it) and on one core, and
//! copying it (memcpy) into a buffer already faulted in.
//!
//! Run: `cargo bench --bench vector` (add `-- <filter>` to pick benchmarks).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use numpack::vector::{self, Metric, Vectors};
use numpack::{DType, OpenOptions, Store};
use rayon::prelude::*;

const DIM: usize = 128;
const ROWS: usize = 1_000_000;
const MANY_QUERIES: usize = 100;
const MANY_ROWS: usize = 200_000;
const K: usize = 10;
const METRICS: [Metric; 3] = [Metric::Dot, Metric::L2sq, Metric::Cosine];

/// Uniform floats in [-1, 1) from splitmix64.
fn random_f32(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn as_bytes(v: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding; the bytes are initialised.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), size_of_val(v)) }
}

fn vectors(v: &[f32]) -> Vectors<'_> {
    Vectors::new(DType::Float32, DIM, as_bytes(v)).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    data: Vec<f32>,
    queries: Vec<f32>,
}

impl Fixture {
    fn new() -> Fixture {
        let data = random_f32(ROWS * DIM, 1);
        let queries = random_f32(MANY_QUERIES * DIM, 2);
        let dir = tempfile::Builder::new().prefix("numpack-bench-").tempdir().unwrap();
        let store = Store::open(dir.path().join("vectors.npk"), OpenOptions { create: true, ..Default::default() }).unwrap();
        store.save("big", DType::Float32, &[ROWS as u64, DIM as u64], as_bytes(&data)).unwrap();
        store.save("many", DType::Float32, &[MANY_ROWS as u64, DIM as u64], as_bytes(&data[..MANY_ROWS * DIM])).unwrap();
        for (name, rows) in [("big", ROWS), ("many", MANY_ROWS)] {
            let deleted = format!("{name}_deleted");
            store.save(&deleted, DType::Float32, &[rows as u64, DIM as u64], as_bytes(&data[..rows * DIM])).unwrap();
            store.delete_rows(&deleted, &(0..rows as i64).step_by(100).collect::<Vec<_>>()).unwrap();
        }
        // Pull the data files into the page cache.
        for name in ["big", "many", "big_deleted", "many_deleted"] {
            let view = store.view(name, false).unwrap();
            black_box(view.bytes().iter().step_by(4096).map(|&b| b as u64).sum::<u64>());
        }
        Fixture { _dir: dir, store, data, queries }
    }
}

fn configure() -> Criterion {
    Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).configure_from_args()
}

/// Reads every 4-byte word (integer adds, which vectorise), on the given threads.
fn sum_words(v: &[f32]) -> u32 {
    v.iter().fold(0u32, |a, x| a.wrapping_add(x.to_bits()))
}

fn bench_bandwidth(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("bandwidth_512MB");
    g.throughput(Throughput::Bytes(size_of_val(&fx.data[..]) as u64));
    g.bench_function("read_all_cores", |b| {
        b.iter(|| fx.data.par_chunks(1 << 16).map(sum_words).reduce(|| 0, u32::wrapping_add))
    });
    g.bench_function("read_one_core", |b| b.iter(|| sum_words(&fx.data)));
    let mut copy = vec![0f32; fx.data.len()];
    g.bench_function("memcpy_one_core", |b| {
        b.iter(|| {
            copy.copy_from_slice(&fx.data);
            black_box(&copy);
        })
    });
    g.finish();
}

fn bench_single_query(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("top10_1_query_x_1M");
    g.throughput(Throughput::Bytes(size_of_val(&fx.data[..]) as u64));
    let q = vectors(&fx.queries[..DIM]);
    for m in METRICS {
        g.bench_with_input(BenchmarkId::new("memory", m.name()), &m, |b, &m| b.iter(|| vector::top_k(m, q, vectors(&fx.data), K).unwrap()));
        g.bench_with_input(BenchmarkId::new("store", m.name()), &m, |b, &m| b.iter(|| vector::store_top_k(&fx.store, "big", m, q, K).unwrap()));
        g.bench_with_input(BenchmarkId::new("store_deleted", m.name()), &m, |b, &m| b.iter(|| vector::store_top_k(&fx.store, "big_deleted", m, q, K).unwrap()));
    }
    g.finish();
}

fn bench_many_queries(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("top10_100_queries_x_200k");
    g.throughput(Throughput::Elements((MANY_QUERIES * MANY_ROWS) as u64));
    let q = vectors(&fx.queries);
    let cands = vectors(&fx.data[..MANY_ROWS * DIM]);
    for m in METRICS {
        g.bench_with_input(BenchmarkId::new("memory", m.name()), &m, |b, &m| b.iter(|| vector::top_k(m, q, cands, K).unwrap()));
        g.bench_with_input(BenchmarkId::new("store", m.name()), &m, |b, &m| b.iter(|| vector::store_top_k(&fx.store, "many", m, q, K).unwrap()));
        g.bench_with_input(BenchmarkId::new("store_deleted", m.name()), &m, |b, &m| b.iter(|| vector::store_top_k(&fx.store, "many_deleted", m, q, K).unwrap()));
    }
    g.finish();
}

fn vector_search(c: &mut Criterion) {
    let fx = Fixture::new();
    eprintln!("{}", vector::capabilities());
    bench_bandwidth(c, &fx);
    bench_single_query(c, &fx);
    bench_many_queries(c, &fx);
    fx.store.clone().close().unwrap();
}

criterion_group! {
    name = benches;
    config = configure();
    targets = vector_search
}
criterion_main!(benches);
