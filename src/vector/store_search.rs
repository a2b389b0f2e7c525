//! Search over an array of a store, read in place through its memory map: the data file
//! is never copied, deleted rows are skipped and indices are logical rows.

use half::f16;

use crate::dtype::DType;
use crate::error::{Result, bail};
use crate::store::Store;
use crate::vector::TopK;
use crate::vector::metric::Metric;
use crate::vector::search::{by_dtype, check, check_top_k_out, scores_over, top_k_over};
use crate::vector::source::Source;
use crate::vector::vectors::{Vectors, is_vector_dtype};
use crate::view::View;

/// The stored array as candidates: its element type, vector length (the product of the
/// trailing dimensions; 1 for a 1-D array) and, checked against the query, its rows.
struct Stored<'v> {
    view: &'v View,
    dim: usize,
    subject: String,
}

impl<'v> Stored<'v> {
    fn new(view: &'v View, name: &str) -> Result<Stored<'v>> {
        if !is_vector_dtype(view.dtype()) {
            bail!(
                DtypeMismatch,
                "array {name:?} holds {} elements; vector search works on float32, float64, float16, int8 and uint8",
                view.dtype().numpy_name()
            );
        }
        if view.shape().is_empty() {
            bail!(ShapeMismatch, "array {name:?} is 0-dimensional and has no rows");
        }
        let dim = view.shape()[1..].iter().product::<u64>() as usize;
        Ok(Stored { view, dim, subject: format!("array {name:?} has") })
    }

    /// Checks the query against the array and returns the physical rows.
    fn candidates(&self, metric: Metric, queries: &Vectors) -> Result<Vectors<'v>> {
        check(metric, queries, self.view.dtype(), self.dim, &self.subject)?;
        // The mapping is page-aligned and holds whole rows, so this cannot fail.
        Vectors::new(self.view.dtype(), self.dim, self.view.bytes())
    }

    /// Live rows.
    fn len(&self) -> usize {
        self.view.rows() as usize
    }
}

fn source<'v, T: crate::vector::source::Scored>(c: &Vectors<'v>, view: &'v View) -> Source<'v, T> {
    Source::new(c.elements::<T>(), c.dim(), view.row_map())
}

/// Top-k of each query over the live rows of array `name`, as [`crate::vector::top_k_into`]
/// with the array as candidates; indices are logical rows (deleted rows skipped).
/// Errors: no such array is `NotFound`; an element type other than the five is
/// `DtypeMismatch`, as are the dtype rules of the in-memory search.
pub fn store_top_k_into(store: &Store, name: &str, metric: Metric, queries: Vectors, k: usize, out_indices: &mut [u64], out_scores: &mut [f64]) -> Result<usize> {
    let view = store.view(name, false)?;
    let stored = Stored::new(&view, name)?;
    let candidates = stored.candidates(metric, &queries)?;
    let kk = k.min(stored.len());
    check_top_k_out(queries.rows(), kk, out_indices.len(), out_scores.len())?;
    by_dtype!(view.dtype(), T => top_k_over::<T>(metric, &queries, source(&candidates, &view), k, out_indices, out_scores));
    Ok(kk)
}

/// [`store_top_k_into`] into newly allocated buffers.
pub fn store_top_k(store: &Store, name: &str, metric: Metric, queries: Vectors, k: usize) -> Result<TopK> {
    let view = store.view(name, false)?;
    let stored = Stored::new(&view, name)?;
    let candidates = stored.candidates(metric, &queries)?;
    let kk = k.min(stored.len());
    let mut indices = vec![0; queries.rows() * kk];
    let mut scores = vec![0.0; queries.rows() * kk];
    by_dtype!(view.dtype(), T => top_k_over::<T>(metric, &queries, source(&candidates, &view), k, &mut indices, &mut scores));
    Ok(TopK { queries: queries.rows(), k: kk, indices, scores })
}

/// The scores of every query against every live row of array `name`: `out[q * N + i]`
/// for query `q` and logical row `i`, where N, the number of live rows, is returned.
/// `out` may be longer than queries × N (the rest is left alone); shorter is `BufferSize`.
pub fn store_scores_into(store: &Store, name: &str, metric: Metric, queries: Vectors, out: &mut [f64]) -> Result<usize> {
    let view = store.view(name, false)?;
    let stored = Stored::new(&view, name)?;
    let candidates = stored.candidates(metric, &queries)?;
    let n = stored.len();
    let need = queries.rows() * n;
    if out.len() < need {
        bail!(BufferSize, "{} queries × {n} rows of array {name:?} need {need} scores but out has {}", queries.rows(), out.len());
    }
    by_dtype!(view.dtype(), T => scores_over::<T>(metric, &queries, source(&candidates, &view), &mut out[..need]));
    Ok(n)
}
