//! The in-memory entry points, and the checks and dispatch they share with the
//! store-backed ones.

use half::f16;

use crate::dtype::DType;
use crate::error::{Result, bail};
use crate::vector::kernels::{self, Table};
use crate::vector::metric::Metric;
use crate::vector::source::{Queries, Scored, Source};
use crate::vector::topk::Entry;
use crate::vector::vectors::Vectors;
use crate::vector::{TopK, direct, gemm};

/// Runs `$body` with the type alias `$T` set to the Rust type of `$dtype`, one of the
/// five vector element types.
macro_rules! by_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            DType::Float32 => {
                type $T = f32;
                $body
            }
            DType::Float64 => {
                type $T = f64;
                $body
            }
            DType::Float16 => {
                type $T = f16;
                $body
            }
            DType::Int8 => {
                type $T = i8;
                $body
            }
            DType::Uint8 => {
                type $T = u8;
                $body
            }
            other => unreachable!("{other:?} passed the dtype checks"),
        }
    };
}
pub(crate) use by_dtype;

/// Candidate element types, with the search each uses for many queries.
pub(crate) trait Searched: Scored {
    fn top_k(t: &Table, m: Metric, qs: &Queries<'_, Self::C>, src: &Source<'_, Self>, k: usize) -> Vec<Vec<Entry>>;
}

macro_rules! searched {
    (gemm: $($t:ty),*; direct: $($d:ty),*) => {
        $(impl Searched for $t {
            fn top_k(t: &Table, m: Metric, qs: &Queries<'_, Self::C>, src: &Source<'_, Self>, k: usize) -> Vec<Vec<Entry>> {
                if gemm::applies(m, qs.len()) { gemm::top_k(t, m, qs, src, k) } else { direct::top_k(t, m, &qs.all(), src, k) }
            }
        })*
        $(impl Searched for $d {
            fn top_k(t: &Table, m: Metric, qs: &Queries<'_, Self::C>, src: &Source<'_, Self>, k: usize) -> Vec<Vec<Entry>> {
                direct::top_k(t, m, &qs.all(), src, k)
            }
        })*
    };
}
searched!(gemm: f32, f64, f16; direct: i8, u8);

fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::Float32 | DType::Float64 | DType::Float16)
}

/// Checks that `query` can be scored against candidates of `dtype` and `dim` with
/// `metric`. `subject` names the candidates with their verb ("the candidates have").
pub(crate) fn check(metric: Metric, query: &Vectors, dtype: DType, dim: usize, subject: &str) -> Result<()> {
    if metric.is_bitwise() {
        for d in [query.dtype(), dtype] {
            if d != DType::Uint8 {
                bail!(DtypeMismatch, "{} works on packed bits in uint8 vectors, not {}", metric.name(), d.numpy_name());
            }
        }
    }
    if query.dtype() != dtype && !is_float(dtype) {
        bail!(
            DtypeMismatch,
            "the query is {} but {subject} {} elements: integer candidates need a query of the same dtype",
            query.dtype().numpy_name(),
            dtype.numpy_name()
        );
    }
    if query.dim() != dim {
        bail!(ShapeMismatch, "query has {} elements per vector but {subject} {dim}", query.dim());
    }
    Ok(())
}

/// Checks the two top-k output buffers hold `queries × kk` entries.
pub(crate) fn check_top_k_out(queries: usize, kk: usize, indices: usize, scores: usize) -> Result<()> {
    let need = queries * kk;
    for (what, len) in [("out_indices", indices), ("out_scores", scores)] {
        if len < need {
            bail!(BufferSize, "top-k needs {need} entries ({queries} queries × {kk}) but {what} has {len}");
        }
    }
    Ok(())
}

/// Top-k of `queries` over `src` into the output buffers (checked), row stride min(k, N).
pub(crate) fn top_k_over<T: Searched>(m: Metric, queries: &Vectors, src: Source<'_, T>, k: usize, out_indices: &mut [u64], out_scores: &mut [f64]) {
    let t = kernels::table();
    let kk = k.min(src.len());
    if kk == 0 || queries.rows() == 0 {
        return;
    }
    let qs = Queries::new::<T>(t, queries);
    let results = T::top_k(t, m, &qs, &src, kk);
    for (qi, row) in results.iter().enumerate() {
        debug_assert_eq!(row.len(), kk);
        for (j, e) in row.iter().enumerate() {
            out_indices[qi * kk + j] = e.index();
            out_scores[qi * kk + j] = e.score;
        }
    }
}

/// Scores of every query against every candidate of `src` into `out` (queries × N).
pub(crate) fn scores_over<T: Scored>(m: Metric, queries: &Vectors, src: Source<'_, T>, out: &mut [f64]) {
    let t = kernels::table();
    if queries.rows() == 0 || src.len() == 0 {
        return;
    }
    let qs = Queries::new::<T>(t, queries);
    direct::scores(t, m, &qs.all(), &src, out);
}

fn source<'a, T: Scored>(c: &Vectors<'a>) -> Source<'a, T> {
    Source::new(c.elements::<T>(), c.dim(), None)
}

/// The CPU features that matter to the kernels and which kernels run, e.g.
/// `"x86_64: AVX2, FMA, F16C (kernels: avx2)"`, `"aarch64: NEON (kernels: neon)"`.
pub fn capabilities() -> &'static str {
    kernels::capabilities()
}

/// The metric between two vectors: `a` (the query) and `b` hold one row each.
pub fn distance(metric: Metric, a: Vectors, b: Vectors) -> Result<f64> {
    for (name, v) in [("a", &a), ("b", &b)] {
        if v.rows() != 1 {
            bail!(ShapeMismatch, "distance takes one vector in {name}, got {}", v.rows());
        }
    }
    let mut out = [0.0];
    scores_into(metric, a, b, &mut out)?;
    Ok(out[0])
}

/// The scores of one query against every candidate: `out[i]` for candidate `i`.
/// `out.len()` must equal `candidates.rows()` (else `BufferSize`).
pub fn scores_into(metric: Metric, query: Vectors, candidates: Vectors, out: &mut [f64]) -> Result<()> {
    if query.rows() != 1 {
        bail!(ShapeMismatch, "scores_into takes one query vector, got {} (score_matrix_into takes many)", query.rows());
    }
    score_matrix_into(metric, query, candidates, out)
}

/// The scores of every query against every candidate: `out[q * N + i]` for query `q` and
/// candidate `i`. `out.len()` must equal `queries.rows() * candidates.rows()`.
pub fn score_matrix_into(metric: Metric, queries: Vectors, candidates: Vectors, out: &mut [f64]) -> Result<()> {
    check(metric, &queries, candidates.dtype(), candidates.dim(), "the candidates have")?;
    let need = queries.rows() * candidates.rows();
    if out.len() != need {
        bail!(BufferSize, "{} queries × {} candidates need {need} scores but out has {}", queries.rows(), candidates.rows(), out.len());
    }
    by_dtype!(candidates.dtype(), T => scores_over::<T>(metric, &queries, source(&candidates), out));
    Ok(())
}

/// Top-k for each query row. Writes `queries.rows() * kk` entries compactly (row stride
/// kk) where kk = min(k, N) is returned. `out_indices.len()` and `out_scores.len()` must
/// be >= queries.rows() * min(k, N) (`BufferSize` otherwise).
pub fn top_k_into(metric: Metric, queries: Vectors, candidates: Vectors, k: usize, out_indices: &mut [u64], out_scores: &mut [f64]) -> Result<usize> {
    check(metric, &queries, candidates.dtype(), candidates.dim(), "the candidates have")?;
    let kk = k.min(candidates.rows());
    check_top_k_out(queries.rows(), kk, out_indices.len(), out_scores.len())?;
    by_dtype!(candidates.dtype(), T => top_k_over::<T>(metric, &queries, source(&candidates), k, out_indices, out_scores));
    Ok(kk)
}

/// [`top_k_into`] into newly allocated buffers.
pub fn top_k(metric: Metric, queries: Vectors, candidates: Vectors, k: usize) -> Result<TopK> {
    let kk = k.min(candidates.rows());
    let mut indices = vec![0; queries.rows() * kk];
    let mut scores = vec![0.0; queries.rows() * kk];
    let kk = top_k_into(metric, queries, candidates, k, &mut indices, &mut scores)?;
    Ok(TopK { queries: queries.rows(), k: kk, indices, scores })
}
