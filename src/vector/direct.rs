//! Search with the direct kernels: candidates in blocks that stay in cache while every
//! query is scored against them, blocks spread over the cores with rayon.

use rayon::prelude::*;

use crate::vector::kernels::Table;
use crate::vector::metric::Metric;
use crate::vector::source::{Query, Scored, Source, block_rows};
use crate::vector::topk::{Entry, Selector};

/// Bytes of candidates per block: small enough to stay in L2 while all queries use it.
const BLOCK_BYTES: usize = 128 * 1024;

/// The best `k` candidates for each query, best first (`min(k, N)` each).
pub(crate) fn top_k<T: Scored>(t: &Table, m: Metric, queries: &[Query<'_, T::C>], src: &Source<'_, T>, k: usize) -> Vec<Vec<Entry>> {
    let n = src.len();
    let sim = m.is_similarity();
    if k == 0 || n == 0 {
        return vec![Vec::new(); queries.len()];
    }
    let br = block_rows::<T>(src.dim(), BLOCK_BYTES);
    let fresh = || vec![Selector::new(k, sim); queries.len()];
    let blocks = n.div_ceil(br);
    let selectors = (0..blocks)
        .into_par_iter()
        .with_min_len(min_blocks_per_task(blocks))
        .fold(
            || (fresh(), vec![0.0; br]),
            |(mut sels, mut buf), b| {
                let range = b * br..n.min((b + 1) * br);
                let scores = &mut buf[..range.len()];
                for (q, sel) in queries.iter().zip(&mut sels) {
                    src.score(t, m, *q, range.clone(), scores);
                    sel.push_scores(range.start as u64, scores);
                }
                (sels, buf)
            },
        )
        .map(|(sels, _)| sels)
        .reduce(fresh, merge_all);
    selectors.into_iter().map(Selector::into_sorted).collect()
}

/// Fewest blocks per rayon task: each task starts its selectors afresh and lets through
/// every candidate until its k-th best settles, so splitting finer than a few tasks per
/// core (rayon splits again whenever work is stolen) costs more than it balances.
pub(crate) fn min_blocks_per_task(blocks: usize) -> usize {
    (blocks / (4 * rayon::current_num_threads())).max(1)
}

/// Merges per-query selectors of one part of the candidates into those of another.
pub(crate) fn merge_all(mut a: Vec<Selector>, b: Vec<Selector>) -> Vec<Selector> {
    for (x, y) in a.iter_mut().zip(b) {
        x.merge(y);
    }
    a
}

/// Every score: `out` is queries × N, row-major.
pub(crate) fn scores<T: Scored>(t: &Table, m: Metric, queries: &[Query<'_, T::C>], src: &Source<'_, T>, out: &mut [f64]) {
    let n = src.len();
    assert_eq!(out.len(), queries.len() * n);
    if n == 0 {
        return;
    }
    let br = block_rows::<T>(src.dim(), BLOCK_BYTES);
    // For each block of candidates, the slice of every query's output row it fills.
    let mut blocks: Vec<Vec<&mut [f64]>> = (0..n.div_ceil(br)).map(|_| Vec::with_capacity(queries.len())).collect();
    for row in out.chunks_mut(n) {
        for (b, piece) in row.chunks_mut(br).enumerate() {
            blocks[b].push(piece);
        }
    }
    blocks.into_par_iter().enumerate().for_each(|(b, pieces)| {
        let range = b * br..n.min((b + 1) * br);
        for (q, piece) in queries.iter().zip(pieces) {
            src.score(t, m, *q, range.clone(), piece);
        }
    });
}
