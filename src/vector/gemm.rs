//! Many queries over float vectors with dot, inner, cosine, l2 or l2sq, organised as a
//! matrix multiply.
//!
//! For each block of candidates (in parallel) and each tile of queries, `matrixmultiply`
//! computes all the dot products at once; cosine and l2sq are derived from them with the
//! squared norms, and each query keeps its best `k + k/4 + 16` candidates by these
//! approximate scores (the Q × N matrix is never materialised). Then every kept
//! candidate is scored again with the direct kernel the single-query search uses, and
//! re-sorted, so that results are those of the single-query search.
//!
//! That is exact, not just close: the GEMM and the direct kernel sum the same products
//! in different orders, so their scores differ by at most δ, a rounding-error bound
//! (below, with a factor 2 of slack). A candidate that was not kept scores, approximately,
//! no better than the last one kept, hence exactly no better than that plus δ; when that
//! is still strictly worse than the exact k-th score, no dropped candidate can be in the
//! top k. When it is not (near-ties at the cut), that query is searched again with the
//! direct kernels. The bound needs finite inputs without overflow: otherwise every
//! query goes the direct way.

use std::ops::Range;

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use crate::vector::direct;
use crate::vector::kernels::{Native, Table};
use crate::vector::metric::Metric;
use crate::vector::source::{Queries, Scored, Source, block_rows};
use crate::vector::topk::{self, Entry, Selector};

/// Fewest queries for which the matrix multiply beats the direct kernels.
const MIN_QUERIES: usize = 8;
/// Bytes of candidates (as f32/f64) per block.
const BLOCK_BYTES: usize = 256 * 1024;
/// Queries per matrix multiply, which bounds the product block to 128 × block rows.
const QUERY_TILE: usize = 128;

/// True when the matrix-multiply path is worth it for this search.
pub(crate) fn applies(m: Metric, queries: usize) -> bool {
    matches!(m, Metric::Dot | Metric::Inner | Metric::Cosine | Metric::L2 | Metric::L2sq) && queries >= MIN_QUERIES
}

/// f32 and f64, the types `matrixmultiply` works in.
pub(crate) trait Gemm: Native + Default + Into<f64> {
    /// Unit roundoff (half the machine epsilon).
    const UNIT_ROUNDOFF: f64;
    /// Largest |q|·|c| for which no partial dot product can overflow.
    const SAFE_PRODUCT: f64;
    /// `c` (m × n) = `a` (m × k) · `b`ᵀ, `b` being n × k; all row-major.
    fn gemm(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], c: &mut [Self]);
}

impl Gemm for f32 {
    const UNIT_ROUNDOFF: f64 = f32::EPSILON as f64 / 2.0;
    const SAFE_PRODUCT: f64 = 1e36;
    fn gemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        assert!(a.len() == m * k && b.len() == n * k && c.len() == m * n);
        // SAFETY: by the assert, A is m×k with strides (k, 1), Bᵀ is k×n with strides
        // (1, k) over b, C is m×n with strides (n, 1): every access is in bounds.
        unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), 1, k as isize, 0.0, c.as_mut_ptr(), n as isize, 1) }
    }
}

impl Gemm for f64 {
    const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;
    const SAFE_PRODUCT: f64 = 1e300;
    fn gemm(m: usize, k: usize, n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
        assert!(a.len() == m * k && b.len() == n * k && c.len() == m * n);
        // SAFETY: as for f32.
        unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), 1, k as isize, 0.0, c.as_mut_ptr(), n as isize, 1) }
    }
}

/// Candidate element types the matrix multiply works on (float16 through f32).
pub(crate) trait GemmScored: Scored<C: Gemm> {
    /// The rows as compute elements, when they already are.
    fn as_compute(rows: &[Self]) -> Option<&[Self::C]>;
    /// Appends the rows converted to compute elements.
    fn extend_compute(rows: &[Self], out: &mut Vec<Self::C>);
}

impl GemmScored for f32 {
    fn as_compute(rows: &[f32]) -> Option<&[f32]> {
        Some(rows)
    }
    fn extend_compute(rows: &[f32], out: &mut Vec<f32>) {
        out.extend_from_slice(rows)
    }
}

impl GemmScored for f64 {
    fn as_compute(rows: &[f64]) -> Option<&[f64]> {
        Some(rows)
    }
    fn extend_compute(rows: &[f64], out: &mut Vec<f64>) {
        out.extend_from_slice(rows)
    }
}

impl GemmScored for f16 {
    fn as_compute(_: &[f16]) -> Option<&[f32]> {
        None
    }
    fn extend_compute(rows: &[f16], out: &mut Vec<f32>) {
        let start = out.len();
        out.resize(start + rows.len(), 0.0);
        rows.convert_to_f32_slice(&mut out[start..]);
    }
}

/// One task's share: its selectors and what the error bound needs to know.
struct Part {
    sels: Vec<Selector>,
    max_norm2: f64,
    finite: bool,
}

/// Per-task buffers.
struct Scratch<C> {
    rows: Vec<C>,
    products: Vec<C>,
    norms2: Vec<f64>,
    inv_norms: Vec<f64>,
    /// One query's approximate scores of the block.
    scores: Vec<f64>,
}

/// The best `k` candidates for each query, best first: equal to [`direct::top_k`].
pub(crate) fn top_k<T: GemmScored>(t: &Table, m: Metric, qs: &Queries<'_, T::C>, src: &Source<'_, T>, k: usize) -> Vec<Vec<Entry>> {
    let (n, nq, dim) = (src.len(), qs.len(), src.dim());
    if k == 0 || n == 0 {
        return vec![Vec::new(); nq];
    }
    let kept = (k + k / 4 + 16).min(n);
    let br = block_rows::<T::C>(dim, BLOCK_BYTES);
    let q_inv: Vec<f64> = (0..nq).map(|i| inv_norm(qs.get(i).qq)).collect();
    let fresh = || Part { sels: vec![Selector::new(kept, m.is_similarity()); nq], max_norm2: 0.0, finite: true };
    let scratch = || Scratch { rows: Vec::new(), products: vec![T::C::default(); QUERY_TILE.min(nq) * br], norms2: vec![0.0; br], inv_norms: vec![0.0; br], scores: vec![0.0; br] };

    let blocks = n.div_ceil(br);
    let part = (0..blocks)
        .into_par_iter()
        .with_min_len(direct::min_blocks_per_task(blocks))
        .fold(
            || (fresh(), scratch()),
            |(mut part, mut s), b| {
                let range = b * br..n.min((b + 1) * br);
                let len = range.len();
                let rows = compute_rows(src, range.clone(), &mut s.rows);
                let norms2 = &mut s.norms2[..len];
                t.norms(rows, dim, norms2);
                for &x in norms2.iter() {
                    part.finite &= x.is_finite();
                    part.max_norm2 = part.max_norm2.max(x);
                }
                let inv_norms = &mut s.inv_norms[..len];
                if m == Metric::Cosine {
                    inv_norms.iter_mut().zip(norms2.iter()).for_each(|(i, &x)| *i = inv_norm(x));
                }
                for q0 in (0..nq).step_by(QUERY_TILE) {
                    let q1 = nq.min(q0 + QUERY_TILE);
                    let products = &mut s.products[..(q1 - q0) * len];
                    T::C::gemm(q1 - q0, dim, len, qs.data(q0..q1), rows, products);
                    for (qi, dots) in (q0..q1).zip(products.chunks_exact(len)) {
                        let scores = &mut s.scores[..len];
                        match m {
                            Metric::Dot | Metric::Inner => scores.iter_mut().zip(dots).for_each(|(s, &d)| *s = d.into()),
                            Metric::Cosine => {
                                let iq = q_inv[qi];
                                scores.iter_mut().zip(dots.iter().zip(inv_norms.iter())).for_each(|(s, (&d, &ic))| *s = d.into() * iq * ic)
                            }
                            _ => {
                                let qq = qs.get(qi).qq;
                                scores.iter_mut().zip(dots.iter().zip(norms2.iter())).for_each(|(s, (&d, &cc))| *s = qq + cc - 2.0 * d.into())
                            }
                        }
                        part.sels[qi].push_scores(range.start as u64, scores);
                    }
                }
                (part, s)
            },
        )
        .map(|(part, _)| part)
        .reduce(fresh, |mut a, b| {
            a.sels = direct::merge_all(a.sels, b.sels);
            a.max_norm2 = a.max_norm2.max(b.max_norm2);
            a.finite &= b.finite;
            a
        });

    let q_norms2: Vec<f64> = (0..nq).map(|i| qs.get(i).qq).collect();
    let max_q = q_norms2.iter().fold(0.0f64, |a, &b| a.max(b)).sqrt();
    let finite = part.finite && q_norms2.iter().all(|x| x.is_finite());
    if !(finite && max_q * part.max_norm2.sqrt() < T::C::SAFE_PRODUCT) {
        return direct::top_k(t, m, &qs.all(), src, k);
    }

    let sim = m.is_similarity();
    let max_c = part.max_norm2.sqrt();
    let mut results: Vec<(Vec<Entry>, bool)> = part
        .sels
        .into_par_iter()
        .enumerate()
        .map(|(qi, sel)| {
            let approx = sel.into_sorted();
            let q = qs.get(qi);
            let mut exact: Vec<Entry> = approx
                .iter()
                .map(|e| {
                    let i = e.index() as usize;
                    let mut s = [0.0];
                    src.score(t, m, q, i..i + 1, &mut s);
                    Entry::new(e.index(), s[0], sim)
                })
                .collect();
            topk::sort(&mut exact);
            exact.truncate(k);
            let delta = bound::<T::C>(m, dim, q.qq.sqrt(), max_c);
            let sure = approx.len() == n || certain(m, approx[approx.len() - 1].score, exact[k - 1].score, delta);
            (exact, sure)
        })
        .collect();

    let redo: Vec<usize> = (0..nq).filter(|&i| !results[i].1).collect();
    if !redo.is_empty() {
        let queries: Vec<_> = redo.iter().map(|&i| qs.get(i)).collect();
        for (i, r) in redo.into_iter().zip(direct::top_k(t, m, &queries, src, k)) {
            results[i].0 = r;
        }
    }
    results.into_iter().map(|(r, _)| r).collect()
}

fn inv_norm(norm2: f64) -> f64 {
    if norm2 == 0.0 { 0.0 } else { 1.0 / norm2.sqrt() }
}

/// Logical rows `range` of `src` as one contiguous slice of compute elements: borrowed
/// when they are already, else copied or converted into `buf`.
fn compute_rows<'r, T: GemmScored>(src: &Source<'r, T>, range: Range<usize>, buf: &'r mut Vec<T::C>) -> &'r [T::C] {
    let (mut runs, mut first): (usize, &[T]) = (0, &[]);
    src.runs(range.clone(), |_, rows| {
        runs += 1;
        first = rows;
    });
    if runs == 1 {
        if let Some(rows) = T::as_compute(first) {
            return rows;
        }
    }
    buf.clear();
    src.runs(range, |_, rows| T::extend_compute(rows, buf));
    buf
}

/// Bound on |matrix-multiply score − direct-kernel score| (in the l2sq domain for l2):
/// both sum `dim` products, each off the true value by at most γ·|q||c| with
/// γ ≈ (dim + 4)·u; twice that, doubled again for slack. Cosine divides by the norms,
/// l2sq adds |q|² + |c|², bounded by (|q| + |c|)².
fn bound<C: Gemm>(m: Metric, dim: usize, q: f64, max_c: f64) -> f64 {
    let g = 2.0 * (dim as f64 + 4.0) * C::UNIT_ROUNDOFF;
    let scale = match m {
        Metric::Cosine => 1.0,
        Metric::Dot | Metric::Inner => q * max_c,
        _ => (q + max_c) * (q + max_c),
    };
    2.0 * g * scale
}

/// True when no candidate whose approximate score ranks after `last_kept` can beat the
/// exact k-th score `kth`, given scores off by at most `delta` (NaN: false).
fn certain(m: Metric, last_kept: f64, kth: f64, delta: f64) -> bool {
    match m {
        Metric::Dot | Metric::Inner | Metric::Cosine => last_kept + delta < kth,
        Metric::L2sq => last_kept - delta > kth,
        _ => (last_kept - delta).max(0.0).sqrt() > kth,
    }
}
