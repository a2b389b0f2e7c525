//! Exact (brute-force) similarity search: scores and top-k of query vectors against
//! candidate vectors in memory ([`top_k_into`], [`score_matrix_into`], ...) or in an
//! array of a [`Store`](crate::Store) ([`store_top_k_into`], ...).
//!
//! # Metrics
//! [`Metric`] names are case-insensitive, with aliases (`Metric::parse`).
//! - `dot`, `inner` = Σ aᵢbᵢ (similarities: higher is better).
//! - `cosine` = a·b / (|a||b|), 0.0 when either vector is all zeros (similarity).
//! - `l2sq` = Σ (aᵢ−bᵢ)²; `l2` = √l2sq (distances: lower is better, as are all below).
//! - `hamming`: the number of differing bits; `jaccard` = 1 − |a∧b| / |a∨b|, 0.0 when both
//!   vectors are zero. Both read uint8 vectors as packed bits, and only uint8 vectors:
//!   any other dtype is `DtypeMismatch`.
//! - `kl` = Σ pᵢ ln(pᵢ/qᵢ), a term with pᵢ = 0 counting 0 and one with pᵢ > 0 = qᵢ giving
//!   +inf; inputs are not checked to be distributions (negative values give NaN).
//! - `js` = ½ KL(p‖m) + ½ KL(q‖m) with m = (p+q)/2: the divergence, not its square root.
//!
//! # Element types and precision
//! Vectors are float32, float64, float16, int8 or uint8, native byte order, aligned to
//! the element size. float32 and float16 (widened to f32 exactly) are computed in f32
//! with several independent accumulators, float64 in f64, int8 and uint8 exactly in
//! integers (dot, cosine's parts, l2sq). Cosine and l2 finish in f64; kl and js compute
//! every term and the sum in f64. Scores are returned as f64. Results are identical on
//! every instruction set (the kernels use no fused multiply-add and a fixed summation
//! order) and between one query and many (see below).
//!
//! # Mixed element types
//! When the query's dtype differs from the candidates', the query is converted to the
//! candidates' type if that is float16, float32 or float64 (rounding to nearest when
//! narrowing); int8 and uint8 candidates need a query of the same dtype, else
//! `DtypeMismatch`. A stored array's dtype is the candidates' type.
//!
//! # Shapes and k
//! Candidates and queries must have the same number of elements per vector, else
//! `ShapeMismatch`. A stored array of shape (N,) is N vectors of 1 element, (N, d) is N
//! vectors of d, and (N, d₁, d₂, ...) N vectors of d₁·d₂·…. Top-k returns
//! kk = min(k, N) entries per query, without padding: k = 0 or N = 0 give kk = 0 and
//! write nothing, as do zero queries.
//!
//! # Ranking
//! Similarities descending, distances ascending; equal scores rank the lower index first;
//! NaN ranks after every number, NaNs among themselves by index; -0.0 ties with 0.0.
//! NumPy reproduces it as `np.lexsort((idx, c))` with c = −score for similarities and
//! c = score for distances (NumPy sorts NaN last, and its sorts are stable).
//!
//! # How
//! One query: candidates in cache-sized blocks spread over the cores (rayon), each block
//! scored into a small buffer and offered to a per-task top-k that rejects most
//! candidates with one compare; tasks merge at the end. Many queries (8 or more) with
//! dot, inner, cosine, l2 or l2sq over float vectors: blocks of queries × blocks of
//! candidates as a matrix multiply (`matrixmultiply`, AVX2/FMA when present) fused with
//! the selection, then the kept candidates are rescored with the single-query kernel and
//! the result proven equal to the single-query search's (module `gemm`). Other cases:
//! the single-query loop with every query scored against each block while it is in cache.

mod direct;
mod gemm;
mod kernels;
mod metric;
mod search;
mod source;
mod store_search;
mod topk;
mod vectors;

pub use metric::Metric;
pub use search::{capabilities, distance, score_matrix_into, scores_into, top_k, top_k_into};
pub use store_search::{store_scores_into, store_top_k, store_top_k_into};
pub use vectors::Vectors;

/// Results of a top-k search: `queries` rows of `k` entries each (k = min(requested k,
/// candidates)), best first. Entry `j` of query `q` is at `q * k + j`.
#[derive(Clone, Debug, PartialEq)]
pub struct TopK {
    /// Number of queries.
    pub queries: usize,
    /// Entries per query: min(requested k, number of candidates).
    pub k: usize,
    /// Candidate indices (logical rows for a stored array).
    pub indices: Vec<u64>,
    /// Their scores.
    pub scores: Vec<f64>,
}
