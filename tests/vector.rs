//! Vector search against an independent reference written here in f64: every metric on
//! every element type, many k and query counts (40 queries take the matrix-multiply
//! path), the ranking rule with ties and NaN, every error, and the store-backed search
//! over arrays with deleted and appended rows.
//!
//! Most data are multiples of 1/8 in [-8, 8], so that dot products and l2 sums are exact
//! in f32 and f16 too: the library must then return exactly the reference's indices and
//! scores, ties included. Other tests use continuous data with a tolerance.

use std::cmp::Ordering;

use half::f16;
use numpack::vector::{self, Metric, TopK, Vectors};
use numpack::{DType, ErrorCode, OpenOptions, Store};

const DTYPES: [DType; 5] = [DType::Float32, DType::Float64, DType::Float16, DType::Int8, DType::Uint8];

/// splitmix64.
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
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// Typed, aligned element storage.
#[derive(Clone)]
enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    F16(Vec<f16>),
    I8(Vec<i8>),
    U8(Vec<u8>),
}

impl Data {
    /// `values` as `dtype` (values must be representable when exactness matters).
    fn new(dtype: DType, values: &[f64]) -> Data {
        match dtype {
            DType::Float32 => Data::F32(values.iter().map(|&x| x as f32).collect()),
            DType::Float64 => Data::F64(values.to_vec()),
            DType::Float16 => Data::F16(values.iter().map(|&x| f16::from_f64(x)).collect()),
            DType::Int8 => Data::I8(values.iter().map(|&x| x as i8).collect()),
            DType::Uint8 => Data::U8(values.iter().map(|&x| x as u8).collect()),
            d => panic!("no test data of {d:?}"),
        }
    }

    fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::Float32,
            Data::F64(_) => DType::Float64,
            Data::F16(_) => DType::Float16,
            Data::I8(_) => DType::Int8,
            Data::U8(_) => DType::Uint8,
        }
    }

    /// The stored values, as the library reads them.
    fn values(&self) -> Vec<f64> {
        match self {
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
            Data::F16(v) => v.iter().map(|&x| x.to_f64()).collect(),
            Data::I8(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U8(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    fn bytes(&self) -> &[u8] {
        fn raw<T>(v: &[T]) -> &[u8] {
            // SAFETY: plain numbers without padding, viewed as the bytes they occupy.
            unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
        }
        match self {
            Data::F32(v) => raw(v),
            Data::F64(v) => raw(v),
            Data::F16(v) => raw(v),
            Data::I8(v) => raw(v),
            Data::U8(v) => raw(v),
        }
    }

    fn vectors(&self, dim: usize) -> Vectors<'_> {
        Vectors::new(self.dtype(), dim, self.bytes()).unwrap()
    }
}

/// Values for `metric` on `dtype`, exact in every float type: multiples of 1/8 in
/// [-8, 8] (non-negative, with zeros, for kl and js), full-range integers.
fn exact_values(dtype: DType, metric: Metric, n: usize, rng: &mut Rng) -> Vec<f64> {
    let divergence = matches!(metric, Metric::Kl | Metric::Js);
    (0..n)
        .map(|_| match dtype {
            DType::Int8 if divergence => rng.below(128) as f64,
            DType::Int8 => rng.below(256) as f64 - 128.0,
            DType::Uint8 => rng.below(256) as f64,
            _ if divergence => rng.below(16) as f64 / 8.0,
            _ => (rng.below(129) as f64 - 64.0) / 8.0,
        })
        .collect()
}

fn valid_metrics(dtype: DType) -> Vec<Metric> {
    Metric::ALL.into_iter().filter(|m| dtype == DType::Uint8 || !matches!(m, Metric::Hamming | Metric::Jaccard)).collect()
}

/// The metric in f64, straight from its definition.
fn reference(m: Metric, a: &[f64], b: &[f64]) -> f64 {
    let kl = |p: f64, q: f64| if p == 0.0 { 0.0 } else { p * (p / q).ln() };
    let bits = |f: fn(u8, u8) -> u8| a.iter().zip(b).map(|(&x, &y)| f(x as u8, y as u8).count_ones() as f64).sum::<f64>();
    match m {
        Metric::Dot | Metric::Inner => a.iter().zip(b).map(|(x, y)| x * y).sum(),
        Metric::Cosine => {
            let ab: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let aa: f64 = a.iter().map(|x| x * x).sum();
            let bb: f64 = b.iter().map(|x| x * x).sum();
            if aa == 0.0 || bb == 0.0 { 0.0 } else { ab / (aa.sqrt() * bb.sqrt()) }
        }
        Metric::L2sq => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum(),
        Metric::L2 => reference(Metric::L2sq, a, b).sqrt(),
        Metric::Hamming => bits(|x, y| x ^ y),
        Metric::Jaccard => {
            let union = bits(|x, y| x | y);
            if union == 0.0 { 0.0 } else { 1.0 - bits(|x, y| x & y) / union }
        }
        Metric::Kl => a.iter().zip(b).map(|(&p, &q)| kl(p, q)).sum(),
        Metric::Js => a
            .iter()
            .zip(b)
            .map(|(&p, &q)| {
                let m = 0.5 * (p + q);
                0.5 * kl(p, m) + 0.5 * kl(q, m)
            })
            .sum(),
    }
}

/// Candidate indices best first: what `np.lexsort((idx, c))` gives, c = ∓score.
fn ranking(m: Metric, scores: &[f64]) -> Vec<usize> {
    let cost = |s: f64| if m.is_similarity() { -s } else { s };
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| {
        let (x, y) = (cost(scores[a]), cost(scores[b]));
        let by_cost = match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => x.partial_cmp(&y).unwrap(),
        };
        by_cost.then(a.cmp(&b))
    });
    idx
}

/// Equal indices and bit-identical scores (NaN included).
fn assert_identical(got: &TopK, want: &TopK, what: &str) {
    assert_eq!((got.queries, got.k, &got.indices), (want.queries, want.k, &want.indices), "{what}");
    assert_eq!(bits(&got.scores), bits(&want.scores), "{what}");
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn same(a: f64, b: f64, rel: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}

/// Checks `got` against the reference top-k. `rel` = 0 demands exact indices and
/// scores; otherwise scores within `rel` and each returned index must score like the
/// reference's at that rank (near-ties may swap).
#[allow(clippy::too_many_arguments)]
fn check_top_k(m: Metric, queries: &[f64], cands: &[f64], dim: usize, k: usize, got: &TopK, rel: f64, what: &str) {
    let (nq, n) = (queries.len() / dim, cands.len() / dim);
    let kk = k.min(n);
    assert_eq!((got.queries, got.k, got.indices.len(), got.scores.len()), (nq, kk, nq * kk, nq * kk), "{what}");
    for (qi, q) in queries.chunks(dim).enumerate() {
        let scores: Vec<f64> = cands.chunks(dim).map(|c| reference(m, q, c)).collect();
        let want = &ranking(m, &scores)[..kk];
        let row = qi * kk..(qi + 1) * kk;
        let (gi, gs) = (&got.indices[row.clone()], &got.scores[row]);
        for j in 0..kk {
            let i = gi[j] as usize;
            if rel == 0.0 {
                assert_eq!(i, want[j], "{what}: query {qi} rank {j}: index");
                assert!(same(gs[j], scores[i], 0.0), "{what}: query {qi} rank {j}: score {} vs {}", gs[j], scores[i]);
            } else {
                assert!(same(gs[j], scores[i], rel), "{what}: query {qi} rank {j}: score {} vs reference {}", gs[j], scores[i]);
                assert!(same(scores[i], scores[want[j]], rel), "{what}: query {qi} rank {j}: index {i} is not the reference's {}", want[j]);
            }
        }
    }
}

#[test]
fn every_metric_dtype_k_and_query_count_equals_the_reference_exactly() {
    let dim = 37;
    let mut rng = Rng(1);
    for dtype in DTYPES {
        for m in valid_metrics(dtype) {
            for (nq, n) in [(1, 500), (3, 300), (40, 200)] {
                let cands = Data::new(dtype, &exact_values(dtype, m, n * dim, &mut rng));
                let queries = Data::new(dtype, &exact_values(dtype, m, nq * dim, &mut rng));
                for k in [0, 1, 7, n, n + 5] {
                    let got = vector::top_k(m, queries.vectors(dim), cands.vectors(dim), k).unwrap();
                    let what = format!("{} {:?} Q={nq} N={n} k={k}", m.name(), dtype);
                    check_top_k(m, &queries.values(), &cands.values(), dim, k, &got, 0.0, &what);
                }
            }
        }
    }
}

#[test]
fn continuous_data_matches_the_reference_within_rounding() {
    let dim = 24;
    let mut rng = Rng(2);
    for dtype in [DType::Float32, DType::Float64, DType::Float16] {
        for m in valid_metrics(dtype) {
            let positive = matches!(m, Metric::Kl | Metric::Js);
            let mut values = |len| (0..len).map(|_| if positive { rng.unit().abs() + 0.01 } else { rng.unit() }).collect::<Vec<f64>>();
            for nq in [1, 40] {
                let cands = Data::new(dtype, &values(900 * dim));
                let queries = Data::new(dtype, &values(nq * dim));
                let got = vector::top_k(m, queries.vectors(dim), cands.vectors(dim), 10).unwrap();
                let rel = if dtype == DType::Float64 { 1e-12 } else { 1e-5 };
                check_top_k(m, &queries.values(), &cands.values(), dim, 10, &got, rel, &format!("{} {dtype:?} Q={nq}", m.name()));
            }
        }
    }
}

#[test]
fn many_queries_give_exactly_the_single_query_results() {
    let dim = 50;
    let mut rng = Rng(3);
    for dtype in [DType::Float32, DType::Float64, DType::Float16] {
        let cands = Data::new(dtype, &(0..1500 * dim).map(|_| rng.unit()).collect::<Vec<_>>());
        let queries = Data::new(dtype, &(0..40 * dim).map(|_| rng.unit()).collect::<Vec<_>>());
        for m in [Metric::Dot, Metric::Inner, Metric::Cosine, Metric::L2, Metric::L2sq] {
            for k in [1, 10, 200] {
                let all = vector::top_k(m, queries.vectors(dim), cands.vectors(dim), k).unwrap();
                let size = dtype.size() * dim;
                for qi in 0..40 {
                    let one = Vectors::new(dtype, dim, &queries.bytes()[qi * size..(qi + 1) * size]).unwrap();
                    let single = vector::top_k(m, one, cands.vectors(dim), k).unwrap();
                    assert_eq!(single.indices, all.indices[qi * k..(qi + 1) * k], "{} {dtype:?} k={k} query {qi}", m.name());
                    assert_eq!(bits(&single.scores), bits(&all.scores[qi * k..(qi + 1) * k]), "{} {dtype:?} k={k} query {qi}", m.name());
                }
            }
        }
    }
}

#[test]
fn duplicate_candidates_rank_lower_index_first() {
    let dim = 16;
    let mut rng = Rng(4);
    let base: Vec<f64> = (0..20 * dim).map(|_| rng.unit()).collect();
    // Candidates: the 20 rows three times over, so every score appears three times.
    let values: Vec<f64> = base.iter().chain(&base).chain(&base).copied().collect();
    for dtype in [DType::Float32, DType::Float64] {
        let cands = Data::new(dtype, &values);
        let queries = Data::new(dtype, &(0..40 * dim).map(|_| rng.unit()).collect::<Vec<_>>());
        for m in [Metric::Dot, Metric::Cosine, Metric::L2sq, Metric::L2] {
            for nq in [1, 40] {
                let q = Vectors::new(dtype, dim, &queries.bytes()[..nq * dim * dtype.size()]).unwrap();
                let got = vector::top_k(m, q, cands.vectors(dim), 9).unwrap();
                for r in got.indices.chunks(9) {
                    // Three groups of one row at indices i, i + 20, i + 40.
                    for g in r.chunks(3) {
                        assert_eq!(g, [g[0], g[0] + 20, g[0] + 40], "{} Q={nq}: {r:?}", m.name());
                    }
                }
                check_top_k(m, &queries.values()[..nq * dim], &cands.values(), dim, 9, &got, 1e-5, "duplicates");
            }
        }
    }
}

/// Each query of `queries` searched alone must give the rows of the many-query search.
fn assert_many_equal_single(m: Metric, queries: &Data, cands: &Data, dim: usize, k: usize) {
    let all = vector::top_k(m, queries.vectors(dim), cands.vectors(dim), k).unwrap();
    let size = queries.dtype().size() * dim;
    for qi in 0..all.queries {
        let one = Vectors::new(queries.dtype(), dim, &queries.bytes()[qi * size..(qi + 1) * size]).unwrap();
        let single = vector::top_k(m, one, cands.vectors(dim), k).unwrap();
        let row = qi * all.k..(qi + 1) * all.k;
        assert_eq!(single.indices, all.indices[row.clone()], "{} k={k} query {qi}", m.name());
        assert_eq!(bits(&single.scores), bits(&all.scores[row]), "{} k={k} query {qi}", m.name());
    }
}

#[test]
fn many_queries_equal_single_queries_through_ties_and_infinities() {
    let dim = 8;
    let mut rng = Rng(8);
    // 60 copies of one row, then 40 others: the matrix-multiply path cannot prove its
    // cut among so many equal scores and must search those queries again directly.
    let row: Vec<f64> = (0..dim).map(|_| rng.unit()).collect();
    let mut values: Vec<f64> = row.iter().copied().cycle().take(60 * dim).collect();
    values.extend((0..40 * dim).map(|_| rng.unit() * 0.1));
    let queries = Data::new(DType::Float32, &(0..40 * dim).map(|_| rng.unit()).collect::<Vec<_>>());
    for m in [Metric::Dot, Metric::Cosine, Metric::L2, Metric::L2sq] {
        for k in [5, 70] {
            assert_many_equal_single(m, &queries, &Data::new(DType::Float32, &values), dim, k);
        }
    }
    // Infinite and NaN candidates: no error bound, every query searched directly.
    values[3] = f64::INFINITY;
    values[8 * dim + 1] = f64::NAN;
    values[70 * dim] = -f64::INFINITY;
    for m in [Metric::Dot, Metric::Cosine, Metric::L2sq] {
        assert_many_equal_single(m, &queries, &Data::new(DType::Float32, &values), dim, 10);
    }
    // Values whose products overflow f32 in a matrix multiply.
    let huge: Vec<f64> = (0..100 * dim).map(|_| rng.unit() * 1e19).collect();
    assert_many_equal_single(Metric::Dot, &queries, &Data::new(DType::Float32, &huge), dim, 10);
    let big_queries = Data::new(DType::Float32, &(0..40 * dim).map(|_| rng.unit() * 1e19).collect::<Vec<_>>());
    assert_many_equal_single(Metric::L2, &big_queries, &Data::new(DType::Float32, &huge), dim, 10);
}

#[test]
fn nan_scores_rank_after_every_number_ties_by_index() {
    let nan = f64::NAN;
    // Candidates 1 and 3 contain NaN, 4 has an infinity.
    let cands = Data::new(DType::Float32, &[1.0, 0.0, nan, 0.0, 3.0, 0.0, nan, 1.0, f64::INFINITY, 0.0, -2.0, 0.0]);
    let query = Data::new(DType::Float32, &[1.0, 0.0]);
    let got = vector::top_k(Metric::Dot, query.vectors(2), cands.vectors(2), 10).unwrap();
    assert_eq!(got.indices, [4, 2, 0, 5, 1, 3]);
    assert_eq!(&got.scores[..4], [f64::INFINITY, 3.0, 1.0, -2.0]);
    assert!(got.scores[4].is_nan() && got.scores[5].is_nan());
    let got = vector::top_k(Metric::L2sq, query.vectors(2), cands.vectors(2), 10).unwrap();
    assert_eq!(got.indices, [0, 2, 5, 4, 1, 3]);
    let got = vector::top_k(Metric::L2sq, query.vectors(2), cands.vectors(2), 4).unwrap();
    assert_eq!(got.indices, [0, 2, 5, 4]);
    let got = vector::top_k(Metric::L2sq, query.vectors(2), cands.vectors(2), 5).unwrap();
    assert_eq!(got.indices, [0, 2, 5, 4, 1]);
}

#[test]
fn zero_vectors_have_cosine_zero() {
    let cands = Data::new(DType::Float32, &[0.0, 0.0, 1.0, 1.0, -1.0, 0.0]);
    let zero = Data::new(DType::Float32, &[0.0, 0.0]);
    let mut out = [9.0; 3];
    vector::scores_into(Metric::Cosine, zero.vectors(2), cands.vectors(2), &mut out).unwrap();
    assert_eq!(out, [0.0, 0.0, 0.0]);
    let q = Data::new(DType::Float32, &[2.0, 0.0]);
    vector::scores_into(Metric::Cosine, q.vectors(2), cands.vectors(2), &mut out).unwrap();
    assert_eq!(out[0], 0.0);
    assert!((out[1] - 0.5f64.sqrt()).abs() < 1e-7 && out[2] == -1.0, "{out:?}");
    let i = Data::new(DType::Int8, &[0.0, 0.0]);
    assert_eq!(vector::distance(Metric::Cosine, i.vectors(2), i.vectors(2)).unwrap(), 0.0);
}

#[test]
fn distance_of_known_vectors() {
    let a = Data::new(DType::Float64, &[1.0, 2.0, 3.0, 0.0]);
    let b = Data::new(DType::Float64, &[4.0, 0.0, 3.0, 1.0]);
    let d = |m| vector::distance(m, a.vectors(4), b.vectors(4)).unwrap();
    assert_eq!(d(Metric::Dot), 13.0);
    assert_eq!(d(Metric::Inner), 13.0);
    assert_eq!(d(Metric::L2sq), 9.0 + 4.0 + 1.0);
    assert_eq!(d(Metric::L2), 14f64.sqrt());
    assert!((d(Metric::Cosine) - 13.0 / (14f64.sqrt() * 26f64.sqrt())).abs() < 1e-15);
    // kl: a term with p = 0 is 0, p > 0 = q is +inf.
    assert_eq!(d(Metric::Kl), f64::INFINITY);
    let p = Data::new(DType::Float64, &[0.5, 0.5, 0.0]);
    let q = Data::new(DType::Float64, &[0.25, 0.25, 0.5]);
    let kl = vector::distance(Metric::Kl, p.vectors(3), q.vectors(3)).unwrap();
    assert!((kl - 2f64.ln()).abs() < 1e-15, "{kl}");
    let js = vector::distance(Metric::Js, p.vectors(3), q.vectors(3)).unwrap();
    let want = 0.5 * (2.0 * 0.5 * (0.5f64 / 0.375).ln()) + 0.5 * (2.0 * 0.25 * (0.25f64 / 0.375).ln() + 0.5 * 2f64.ln());
    assert!((js - want).abs() < 1e-15, "{js} vs {want}");
    let x = Data::new(DType::Uint8, &[0b1011_0000 as f64, 0xFF as f64]);
    let y = Data::new(DType::Uint8, &[0b0011_0001 as f64, 0x0F as f64]);
    assert_eq!(vector::distance(Metric::Hamming, x.vectors(2), y.vectors(2)).unwrap(), 2.0 + 4.0);
    assert_eq!(vector::distance(Metric::Jaccard, x.vectors(2), y.vectors(2)).unwrap(), 1.0 - 6.0 / 12.0);
    let z = Data::new(DType::Uint8, &[0.0, 0.0]);
    assert_eq!(vector::distance(Metric::Jaccard, z.vectors(2), z.vectors(2)).unwrap(), 0.0);
    let two = Data::new(DType::Float64, &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(vector::distance(Metric::Dot, two.vectors(2), b.vectors(2)).unwrap_err().code, ErrorCode::ShapeMismatch);
}

#[test]
fn score_matrix_equals_the_reference() {
    let dim = 9;
    let mut rng = Rng(5);
    for dtype in DTYPES {
        for m in valid_metrics(dtype) {
            let cands = Data::new(dtype, &exact_values(dtype, m, 700 * dim, &mut rng));
            let queries = Data::new(dtype, &exact_values(dtype, m, 3 * dim, &mut rng));
            let mut out = vec![0.0; 3 * 700];
            vector::score_matrix_into(m, queries.vectors(dim), cands.vectors(dim), &mut out).unwrap();
            let mut one = vec![0.0; 700];
            vector::scores_into(m, Vectors::new(dtype, dim, &queries.bytes()[..dim * dtype.size()]).unwrap(), cands.vectors(dim), &mut one).unwrap();
            assert_eq!(bits(&one), bits(&out[..700]));
            let (qv, cv) = (queries.values(), cands.values());
            for (qi, q) in qv.chunks(dim).enumerate() {
                for (i, c) in cv.chunks(dim).enumerate() {
                    let want = reference(m, q, c);
                    assert!(same(out[qi * 700 + i], want, 0.0), "{} {dtype:?} [{qi}, {i}]: {} vs {want}", m.name(), out[qi * 700 + i]);
                }
            }
        }
    }
}

#[test]
fn mixed_dtypes_convert_the_query_to_float_candidates_only() {
    let mut rng = Rng(6);
    let dim = 5;
    let values: Vec<f64> = (0..50 * dim).map(|_| (rng.below(33) as f64 - 16.0) / 4.0).collect();
    let qvals: Vec<f64> = (0..2 * dim).map(|_| (rng.below(33) as f64 - 16.0) / 4.0).collect();
    for cand in [DType::Float32, DType::Float64, DType::Float16] {
        let cands = Data::new(cand, &values);
        let want = vector::top_k(Metric::L2, Data::new(cand, &qvals).vectors(dim), cands.vectors(dim), 5).unwrap();
        for q in [DType::Float32, DType::Float64, DType::Float16] {
            let got = vector::top_k(Metric::L2, Data::new(q, &qvals).vectors(dim), cands.vectors(dim), 5).unwrap();
            assert_eq!(got, want, "{q:?} query on {cand:?}");
        }
        let ints: Vec<f64> = qvals.iter().map(|x| x.round()).collect();
        let got = vector::top_k(Metric::Dot, Data::new(DType::Int8, &ints).vectors(dim), cands.vectors(dim), 5).unwrap();
        assert_eq!(got, vector::top_k(Metric::Dot, Data::new(cand, &ints).vectors(dim), cands.vectors(dim), 5).unwrap());
    }
    // A float64 query is rounded to float16 when the candidates are float16.
    let c = Data::new(DType::Float16, &[1.0]);
    let q = Data::new(DType::Float64, &[1.0 + 1e-4]);
    assert_eq!(vector::distance(Metric::Dot, q.vectors(1), c.vectors(1)).unwrap(), 1.0);
    // Integer candidates take only their own dtype.
    let i8s = Data::new(DType::Int8, &[1.0, 2.0]);
    for q in [DType::Float32, DType::Uint8] {
        let e = vector::distance(Metric::Dot, Data::new(q, &[1.0, 2.0]).vectors(2), i8s.vectors(2)).unwrap_err();
        assert_eq!(e.code, ErrorCode::DtypeMismatch, "{e}");
        assert!(e.message.contains(q.numpy_name()) && e.message.contains("int8"), "{e}");
    }
}

#[test]
fn bitwise_metrics_need_uint8() {
    let f = Data::new(DType::Float32, &[1.0, 0.0]);
    let u = Data::new(DType::Uint8, &[1.0, 0.0]);
    for m in [Metric::Hamming, Metric::Jaccard] {
        let e = vector::distance(m, f.vectors(2), f.vectors(2)).unwrap_err();
        assert_eq!(e.code, ErrorCode::DtypeMismatch);
        assert_eq!(e.message, format!("{} works on packed bits in uint8 vectors, not float32", m.name()));
        assert_eq!(vector::distance(m, f.vectors(2), u.vectors(2)).unwrap_err().code, ErrorCode::DtypeMismatch);
        assert_eq!(vector::distance(m, u.vectors(2), f.vectors(2)).unwrap_err().code, ErrorCode::DtypeMismatch);
        assert_eq!(vector::distance(m, u.vectors(2), u.vectors(2)).unwrap(), 0.0);
    }
}

#[test]
fn metric_names_aliases_and_codes() {
    let cases = [
        ("DOT", Metric::Dot),
        ("Dot_Product", Metric::Dot),
        ("dotproduct", Metric::Dot),
        ("inner_product", Metric::Inner),
        ("COS", Metric::Cosine),
        ("cosine_similarity", Metric::Cosine),
        ("Euclidean", Metric::L2),
        ("l2_distance", Metric::L2),
        ("L2_SQUARED", Metric::L2sq),
        ("squared_euclidean", Metric::L2sq),
        ("Hamming", Metric::Hamming),
        ("jaccard", Metric::Jaccard),
        ("KL_divergence", Metric::Kl),
        ("js_divergence", Metric::Js),
    ];
    for (name, m) in cases {
        assert_eq!(Metric::parse(name).unwrap(), m, "{name}");
    }
    let e = Metric::parse("xyz").unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert_eq!(e.message, r#"unknown metric "xyz" (expected one of: dot, inner, cosine, l2, l2sq, hamming, jaccard, kl, js)"#);
    assert_eq!(Metric::parse("").unwrap_err().code, ErrorCode::InvalidArgument);
    let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(names, ["dot", "inner", "cosine", "l2", "l2sq", "hamming", "jaccard", "kl", "js"]);
    for (i, m) in Metric::ALL.iter().enumerate() {
        assert_eq!((m.code(), Metric::from_code(i as u32)), (i as u32, Some(*m)));
        assert_eq!(m.aliases()[0], m.name());
        assert_eq!(m.is_similarity(), i < 3);
    }
    assert_eq!(Metric::from_code(9), None);
}

#[test]
fn vectors_are_validated() {
    let words = [0u64; 4];
    // SAFETY: 32 bytes of an initialised u64 array.
    let bytes: &[u8] = unsafe { std::slice::from_raw_parts(words.as_ptr().cast(), 32) };
    let v = Vectors::new(DType::Float32, 4, bytes).unwrap();
    assert_eq!((v.dtype(), v.dim(), v.rows(), v.bytes().len()), (DType::Float32, 4, 2, 32));
    assert_eq!(Vectors::new(DType::Float64, 3, &bytes[..24]).unwrap().rows(), 1);
    assert_eq!(Vectors::new(DType::Float32, 3, &[]).unwrap().rows(), 0);
    for d in [DType::Bool, DType::Int32, DType::Complex64, DType::Uint16] {
        let e = Vectors::new(d, 1, bytes).unwrap_err();
        assert_eq!(e.code, ErrorCode::DtypeMismatch);
        assert!(e.message.contains(d.numpy_name()), "{e}");
    }
    assert_eq!(Vectors::new(DType::Float32, 0, bytes).unwrap_err().code, ErrorCode::InvalidArgument);
    assert_eq!(Vectors::new(DType::Float32, 3, bytes).unwrap_err().code, ErrorCode::BufferSize);
    let e = Vectors::new(DType::Float32, 1, &bytes[1..29]).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert_eq!(e.message, "vector data must be aligned to 4 bytes");
    assert!(Vectors::new(DType::Uint8, 1, &bytes[1..29]).is_ok());
}

#[test]
fn shapes_k_and_empty_inputs() {
    let c = Data::new(DType::Float32, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let q = Data::new(DType::Float32, &[1.0, 0.0, 0.0, 1.0]);
    let e = vector::top_k(Metric::Dot, Data::new(DType::Float32, &[1.0, 2.0, 3.0]).vectors(3), c.vectors(2), 1).unwrap_err();
    assert_eq!(e.code, ErrorCode::ShapeMismatch);
    assert_eq!(e.message, "query has 3 elements per vector but the candidates have 2");
    // k = 0, k > N, N = 0, Q = 0.
    let got = vector::top_k(Metric::Dot, q.vectors(2), c.vectors(2), 0).unwrap();
    assert_eq!((got.queries, got.k, got.indices.len()), (2, 0, 0));
    let got = vector::top_k(Metric::Dot, q.vectors(2), c.vectors(2), 100).unwrap();
    assert_eq!(got.k, 3);
    assert_eq!(got.indices, [2, 1, 0, 2, 1, 0]);
    assert_eq!(got.scores, [5.0, 3.0, 1.0, 6.0, 4.0, 2.0]);
    // k near usize::MAX is clamped before any arithmetic on it, with one query (direct
    // path) and with enough queries for the blocked (gemm) path.
    for queries in [1, 64] {
        let many = Data::new(DType::Float32, &(0..queries * 2).map(|i| (i % 5) as f64).collect::<Vec<_>>());
        for metric in [Metric::Dot, Metric::L2sq, Metric::Cosine] {
            let huge = vector::top_k(metric, many.vectors(2), c.vectors(2), usize::MAX).unwrap();
            let exact = vector::top_k(metric, many.vectors(2), c.vectors(2), 3).unwrap();
            assert_eq!((huge.k, &huge.indices), (3, &exact.indices), "{metric:?} with {queries} queries");
        }
    }
    let empty = Data::new(DType::Float32, &[]);
    let got = vector::top_k(Metric::L2, q.vectors(2), empty.vectors(2), 5).unwrap();
    assert_eq!((got.queries, got.k, got.indices.len()), (2, 0, 0));
    let got = vector::top_k(Metric::L2, empty.vectors(2), c.vectors(2), 5).unwrap();
    assert_eq!((got.queries, got.k, got.indices.len()), (0, 3, 0));
    let mut none: [f64; 0] = [];
    vector::scores_into(Metric::Dot, Data::new(DType::Float32, &[1.0, 1.0]).vectors(2), empty.vectors(2), &mut none).unwrap();
    vector::score_matrix_into(Metric::Dot, empty.vectors(2), c.vectors(2), &mut none).unwrap();
    // Output buffers.
    let (mut idx, mut sc) = (vec![0u64; 3], vec![0.0; 4]);
    let e = vector::top_k_into(Metric::Dot, q.vectors(2), c.vectors(2), 2, &mut idx, &mut sc).unwrap_err();
    assert_eq!(e.code, ErrorCode::BufferSize);
    assert!(e.message.contains("out_indices has 3"), "{e}");
    let mut idx = vec![7u64; 6];
    assert_eq!(vector::top_k_into(Metric::Dot, q.vectors(2), c.vectors(2), 2, &mut idx, &mut sc).unwrap(), 2);
    assert_eq!(idx, [2, 1, 2, 1, 7, 7]);
    assert_eq!(vector::top_k_into(Metric::Dot, q.vectors(2), c.vectors(2), 9, &mut idx, &mut [0.0; 5]).unwrap_err().code, ErrorCode::BufferSize);
    let mut out = [0.0; 4];
    let one = Data::new(DType::Float32, &[1.0, 0.0]);
    assert_eq!(vector::scores_into(Metric::Dot, one.vectors(2), c.vectors(2), &mut out).unwrap_err().code, ErrorCode::BufferSize);
    assert_eq!(vector::scores_into(Metric::Dot, q.vectors(2), c.vectors(2), &mut out[..3]).unwrap_err().code, ErrorCode::ShapeMismatch);
    assert_eq!(vector::score_matrix_into(Metric::Dot, q.vectors(2), c.vectors(2), &mut out).unwrap_err().code, ErrorCode::BufferSize);
}

#[test]
fn capabilities_name_the_kernels() {
    let c = vector::capabilities();
    assert!(c.contains("(kernels: "), "{c}");
}

// ---- store-backed search ----

fn new_store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let s = Store::open(tmp.path().join("v.npk"), OpenOptions { create: true, ..Default::default() }).unwrap();
    (tmp, s)
}

/// Rows `live` of `values` (rows of `dim`), in order.
fn rows_of(values: &[f64], dim: usize, live: &[usize]) -> Vec<f64> {
    live.iter().flat_map(|&r| values[r * dim..(r + 1) * dim].iter().copied()).collect()
}

#[test]
fn store_search_equals_in_memory_search_over_the_live_rows() {
    let (_t, s) = new_store();
    let dim = 12;
    let mut rng = Rng(7);
    for dtype in DTYPES {
        let name = dtype.numpy_name();
        let metric_values = |rng: &mut Rng, n| exact_values(dtype, Metric::L2, n * dim, rng);
        let first = metric_values(&mut rng, 300);
        s.save(name, dtype, &[300, dim as u64], Data::new(dtype, &first).bytes()).unwrap();
        let gone: Vec<i64> = [0, 3, 4, 5, 99, 100, 101, 102, 299].into_iter().chain(200..231).collect();
        s.delete_rows(name, &gone).unwrap();
        let more = metric_values(&mut rng, 60);
        s.append(name, dtype, &[60, dim as u64], Data::new(dtype, &more).bytes()).unwrap();
        let physical: Vec<f64> = first.iter().chain(&more).copied().collect();
        let live: Vec<usize> = (0..360).filter(|r| !gone.contains(&(*r as i64))).collect();
        let live_values = Data::new(dtype, &rows_of(&physical, dim, &live));
        assert_eq!(live.len(), 320);

        for m in valid_metrics(dtype) {
            for (nq, ks) in [(1, &[1, 10, 320, 400][..]), (40, &[10, 400])] {
                let queries = Data::new(dtype, &metric_values(&mut rng, nq));
                for &k in ks {
                    let got = vector::store_top_k(&s, name, m, queries.vectors(dim), k).unwrap();
                    let want = vector::top_k(m, queries.vectors(dim), live_values.vectors(dim), k).unwrap();
                    let what = format!("{} {dtype:?} Q={nq} k={k}", m.name());
                    assert_identical(&got, &want, &what);
                    let (mut gi, mut gs) = (vec![0; nq * 400], vec![0.0; nq * 400]);
                    let kk = vector::store_top_k_into(&s, name, m, queries.vectors(dim), k, &mut gi, &mut gs).unwrap();
                    assert_eq!((kk, &gi[..nq * kk]), (want.k, &want.indices[..]), "{what}");
                    assert_eq!(bits(&gs[..nq * kk]), bits(&want.scores), "{what}");
                }
                let mut got = vec![0.0; nq * 320 + 3];
                assert_eq!(vector::store_scores_into(&s, name, m, queries.vectors(dim), &mut got).unwrap(), 320);
                let mut want = vec![0.0; nq * 320];
                vector::score_matrix_into(m, queries.vectors(dim), live_values.vectors(dim), &mut want).unwrap();
                assert_eq!(bits(&got[..nq * 320]), bits(&want), "{} {dtype:?} Q={nq}", m.name());
                assert_eq!(&got[nq * 320..], [0.0; 3]);
            }
        }
    }
}

#[test]
fn store_search_shapes_and_errors() {
    let (_t, s) = new_store();
    let one_d = Data::new(DType::Float64, &[3.0, -1.0, 2.0, 5.0]);
    s.save("x", DType::Float64, &[4], one_d.bytes()).unwrap();
    let q = Data::new(DType::Float64, &[1.0]);
    let got = vector::store_top_k(&s, "x", Metric::Dot, q.vectors(1), 2).unwrap();
    assert_eq!((got.indices, got.scores), (vec![3, 0], vec![5.0, 3.0]));
    // (N, 2, 3) is N vectors of 6.
    let values: Vec<f64> = (0..24).map(|x| x as f64).collect();
    s.save("cube", DType::Float32, &[4, 2, 3], Data::new(DType::Float32, &values).bytes()).unwrap();
    let q6 = Data::new(DType::Float32, &values[18..24]);
    let got = vector::store_top_k(&s, "cube", Metric::L2sq, q6.vectors(6), 1).unwrap();
    assert_eq!((got.indices, got.scores), (vec![3], vec![0.0]));
    let e = vector::store_top_k(&s, "cube", Metric::L2sq, q.vectors(1), 1).unwrap_err();
    assert_eq!(e.code, ErrorCode::ShapeMismatch);
    assert_eq!(e.message, r#"query has 1 elements per vector but array "cube" has 6"#);

    let e = vector::store_top_k(&s, "nope", Metric::Dot, q.vectors(1), 1).unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
    s.save("ints", DType::Int32, &[2, 1], &[0u8; 8]).unwrap();
    let e = vector::store_top_k(&s, "ints", Metric::Dot, q.vectors(1), 1).unwrap_err();
    assert_eq!(e.code, ErrorCode::DtypeMismatch);
    assert!(e.message.contains("int32") && e.message.contains("\"ints\""), "{e}");
    s.save("bytes", DType::Int8, &[2, 1], &[1, 2]).unwrap();
    assert_eq!(vector::store_top_k(&s, "bytes", Metric::Dot, q.vectors(1), 1).unwrap_err().code, ErrorCode::DtypeMismatch);
    assert_eq!(vector::store_top_k(&s, "x", Metric::Hamming, q.vectors(1), 1).unwrap_err().code, ErrorCode::DtypeMismatch);

    let mut small = [0.0; 3];
    let e = vector::store_scores_into(&s, "x", Metric::Dot, q.vectors(1), &mut small).unwrap_err();
    assert_eq!(e.code, ErrorCode::BufferSize);
    let (mut i, mut sc) = ([0u64; 1], [0.0; 1]);
    assert_eq!(vector::store_top_k_into(&s, "x", Metric::Dot, q.vectors(1), 2, &mut i, &mut sc).unwrap_err().code, ErrorCode::BufferSize);

    // Every row deleted: no candidates.
    s.delete_rows("x", &[0, 1, 2, 3]).unwrap();
    let got = vector::store_top_k(&s, "x", Metric::Dot, q.vectors(1), 2).unwrap();
    assert_eq!((got.k, got.indices.len()), (0, 0));
    assert_eq!(vector::store_scores_into(&s, "x", Metric::Dot, q.vectors(1), &mut small).unwrap(), 0);
}
