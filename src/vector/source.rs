//! What the search loops work on: candidate rows (in memory, or a stored array's physical
//! rows with its live-row map), queries converted to the candidates' type, and per
//! element type how a run of rows is scored.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;

use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::vector::kernels::{Native, Table};
use crate::vector::metric::Metric;
use crate::vector::vectors::{Element, Vectors, query_as};

/// Element types of candidates. `C` is the type computed in: the element type itself,
/// except float16, which is converted to f32 first.
pub(crate) trait Scored: Element {
    type C: Native;

    /// The query rows as `C`, converted by the mixed-dtype rule (already validated).
    fn query_data<'a>(q: &Vectors<'a>) -> Cow<'a, [Self::C]>;

    /// Scores of `rows` against `q` into `out`, with the kernels of `t`.
    fn score(t: &Table, m: Metric, q: Query<'_, Self::C>, rows: &[Self], out: &mut [f64]);
}

macro_rules! native_scored {
    ($t:ty, $query:expr) => {
        impl Scored for $t {
            type C = $t;
            fn query_data<'a>(q: &Vectors<'a>) -> Cow<'a, [$t]> {
                $query(q)
            }
            #[inline]
            fn score(t: &Table, m: Metric, q: Query<'_, $t>, rows: &[$t], out: &mut [f64]) {
                t.score(m, q.v, q.qq, rows, out)
            }
        }
    };
}

native_scored!(f32, query_as::<f32>);
native_scored!(f64, query_as::<f64>);
native_scored!(i8, |q: &Vectors<'a>| Cow::Borrowed(q.elements::<i8>()));
native_scored!(u8, |q: &Vectors<'a>| Cow::Borrowed(q.elements::<u8>()));

/// Elements of float16 converted per call, at most this many at a time (128 KiB of f32).
const F16_CHUNK: usize = 32 * 1024;

impl Scored for f16 {
    type C = f32;

    fn query_data<'a>(q: &Vectors<'a>) -> Cow<'a, [f32]> {
        // Rounded to float16 first, as the rule says, then widened exactly.
        let halves = query_as::<f16>(q);
        let mut out = vec![0.0; halves.len()];
        halves.convert_to_f32_slice(&mut out);
        Cow::Owned(out)
    }

    fn score(t: &Table, m: Metric, q: Query<'_, f32>, rows: &[f16], out: &mut [f64]) {
        thread_local!(static BUF: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) });
        let dim = q.v.len();
        let per_chunk = (F16_CHUNK / dim).max(1);
        BUF.with_borrow_mut(|buf| {
            for (rows, out) in rows.chunks(per_chunk * dim).zip(out.chunks_mut(per_chunk)) {
                buf.resize(rows.len(), 0.0);
                rows.convert_to_f32_slice(buf);
                t.score(m, q.v, q.qq, buf, out);
            }
        })
    }
}

/// One query: its elements and squared norm.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Query<'q, C> {
    pub(crate) v: &'q [C],
    pub(crate) qq: f64,
}

/// The query rows, converted to the candidates' compute type, with their squared norms.
pub(crate) struct Queries<'a, C: Clone> {
    data: Cow<'a, [C]>,
    dim: usize,
    norms: Vec<f64>,
}

impl<'a, C: Native> Queries<'a, C> {
    pub(crate) fn new<T: Scored<C = C>>(t: &Table, q: &Vectors<'a>) -> Queries<'a, C> {
        let data = T::query_data(q);
        let mut norms = vec![0.0; q.rows()];
        t.norms(&data, q.dim(), &mut norms);
        Queries { data, dim: q.dim(), norms }
    }

    pub(crate) fn len(&self) -> usize {
        self.norms.len()
    }

    /// Rows `range`, contiguous.
    pub(crate) fn data(&self, range: Range<usize>) -> &[C] {
        &self.data[range.start * self.dim..range.end * self.dim]
    }

    pub(crate) fn get(&self, i: usize) -> Query<'_, C> {
        Query { v: self.data(i..i + 1), qq: self.norms[i] }
    }

    pub(crate) fn all(&self) -> Vec<Query<'_, C>> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }
}

/// Candidate vectors: physical rows, and for a stored array with deleted rows the
/// physical row of each live (logical) row, ascending. Indices given to and returned by
/// the search are logical.
#[derive(Clone, Copy)]
pub(crate) struct Source<'a, T> {
    rows: &'a [T],
    dim: usize,
    live: Option<&'a [u64]>,
}

impl<'a, T: Scored> Source<'a, T> {
    pub(crate) fn new(rows: &'a [T], dim: usize, live: Option<&'a [u64]>) -> Source<'a, T> {
        Source { rows, dim, live }
    }

    /// Number of logical rows.
    pub(crate) fn len(&self) -> usize {
        match self.live {
            Some(map) => map.len(),
            None => self.rows.len() / self.dim,
        }
    }

    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    /// Calls `f(offset, rows)` for each run of consecutive physical rows holding logical
    /// rows `range`, where `offset` is the run's first row relative to `range.start`.
    #[inline]
    pub(crate) fn runs(&self, range: Range<usize>, mut f: impl FnMut(usize, &'a [T])) {
        let dim = self.dim;
        let Some(map) = self.live else {
            return f(0, &self.rows[range.start * dim..range.end * dim]);
        };
        let map = &map[range];
        let mut i = 0;
        while i < map.len() {
            let first = map[i] as usize;
            let mut j = i + 1;
            while j < map.len() && map[j] as usize == first + (j - i) {
                j += 1;
            }
            f(i, &self.rows[first * dim..(first + j - i) * dim]);
            i = j;
        }
    }

    /// Scores of logical rows `range` against `q` into `out` (`range.len()` values).
    #[inline]
    pub(crate) fn score(&self, t: &Table, m: Metric, q: Query<'_, T::C>, range: Range<usize>, out: &mut [f64]) {
        self.runs(range, |off, rows| T::score(t, m, q, rows, &mut out[off..off + rows.len() / self.dim]));
    }
}

/// Rows per block so that a block of candidates is about `bytes` long.
pub(crate) fn block_rows<T>(dim: usize, bytes: usize) -> usize {
    (bytes / (dim * size_of::<T>()).max(1)).max(1)
}
