//! Bounded top-k selection under the ranking rule: similarities descending, distances
//! ascending, NaN after every number, equal scores by lower index.
//!
//! Each (score, index) pair is mapped to one `u128` key whose natural order is the
//! ranking: the high 64 bits are the score turned into an order-preserving integer "cost"
//! (negated for similarities, -0.0 folded into +0.0 so they tie, every NaN the largest
//! cost), the low 64 bits the index. Selection keeps a buffer of up to 2k keys plus the
//! key of the current k-th best: most candidates are rejected by one compare, and when the
//! buffer fills, `select_nth_unstable` cuts it back to k in linear time.

/// The ranking cost of `score`: lower is better.
#[inline(always)]
pub(crate) fn cost(score: f64, similarity: bool) -> u64 {
    let c = if similarity { -score } else { score };
    if c.is_nan() {
        return u64::MAX;
    }
    // Adding +0.0 turns -0.0 into +0.0; then the usual float-to-ordered-integer map.
    let bits = (c + 0.0).to_bits();
    if bits >> 63 == 1 { !bits } else { bits | 1 << 63 }
}

/// The worst number in the direction of the ranking.
fn worst(similarity: bool) -> f64 {
    if similarity { f64::NEG_INFINITY } else { f64::INFINITY }
}

#[inline(always)]
fn key(cost: u64, index: u64) -> u128 {
    (cost as u128) << 64 | index as u128
}

/// One selected candidate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Entry {
    key: u128,
    pub(crate) score: f64,
}

impl Entry {
    pub(crate) fn new(index: u64, score: f64, similarity: bool) -> Entry {
        Entry { key: key(cost(score, similarity), index), score }
    }

    pub(crate) fn index(&self) -> u64 {
        self.key as u64
    }
}

/// The best `k` of the (index, score) pairs pushed, each index pushed at most once.
#[derive(Clone, Debug)]
pub(crate) struct Selector {
    k: usize,
    similarity: bool,
    entries: Vec<Entry>,
    /// Key of the k-th best once `k` entries were kept; `u128::MAX` before.
    threshold: u128,
    /// Score of the k-th best, or the worst number (±inf) while there is none or it is NaN:
    /// a score worse than this cannot make the top k.
    bound: f64,
}

impl Selector {
    pub(crate) fn new(k: usize, similarity: bool) -> Selector {
        Selector { k, similarity, entries: Vec::new(), threshold: u128::MAX, bound: worst(similarity) }
    }

    /// Offers candidates `first`, `first + 1`, ... with these scores. Scores are tested
    /// against the k-th best score a chunk at a time, without branches (so the test
    /// vectorises): most chunks hold no candidate for the top k and are skipped whole;
    /// in the others NaN and ties go on to the exact check.
    #[inline]
    pub(crate) fn push_scores(&mut self, first: u64, scores: &[f64]) {
        if self.similarity { self.push_scores_in::<true>(first, scores) } else { self.push_scores_in::<false>(first, scores) }
    }

    #[inline(always)]
    fn push_scores_in<const SIMILARITY: bool>(&mut self, first: u64, scores: &[f64]) {
        const CHUNK: usize = 16;
        // Negated on purpose: a NaN score (or bound) counts as "not worse", so the exact
        // comparison below decides, rather than being skipped here.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        let not_worse = |s: f64, bound: f64| if SIMILARITY { !(s < bound) } else { !(s > bound) };
        for (c, chunk) in scores.chunks(CHUNK).enumerate() {
            let bound = self.bound;
            if !chunk.iter().fold(false, |any, &s| any | not_worse(s, bound)) {
                continue;
            }
            let start = first + (c * CHUNK) as u64;
            for (i, &s) in (start..).zip(chunk) {
                if not_worse(s, self.bound) {
                    self.push(i, s);
                }
            }
        }
    }

    /// Offers a candidate.
    #[inline(always)]
    pub(crate) fn push(&mut self, index: u64, score: f64) {
        let key = key(cost(score, self.similarity), index);
        if key < self.threshold {
            self.entries.push(Entry { key, score });
            if self.entries.len() >= 2 * self.k.max(32) {
                self.shrink();
            }
        }
    }

    /// Keeps the best `k` and sets the threshold to the k-th.
    fn shrink(&mut self) {
        if self.entries.len() > self.k {
            if self.k == 0 {
                self.entries.clear();
                self.threshold = 0;
                return;
            }
            self.entries.select_nth_unstable_by_key(self.k - 1, |e| e.key);
            self.entries.truncate(self.k);
            self.threshold = self.entries[self.k - 1].key;
            let s = self.entries[self.k - 1].score;
            self.bound = if s.is_nan() { worst(self.similarity) } else { s };
        }
    }

    /// Adds every candidate of `other` (same k and direction, disjoint indices).
    pub(crate) fn merge(&mut self, other: Selector) {
        if other.entries.len() > self.entries.len() {
            return other.merge_into(self);
        }
        for e in other.entries {
            if e.key < self.threshold {
                self.entries.push(e);
            }
        }
        self.shrink();
    }

    fn merge_into(mut self, dst: &mut Selector) {
        std::mem::swap(&mut self, dst);
        dst.merge(self);
    }

    /// The best `k` (fewer if fewer were pushed), best first.
    pub(crate) fn into_sorted(mut self) -> Vec<Entry> {
        self.shrink();
        self.entries.sort_unstable_by_key(|e| e.key);
        self.entries
    }
}

/// Sorts `entries` best first under the ranking rule.
pub(crate) fn sort(entries: &mut [Entry]) {
    entries.sort_unstable_by_key(|e| e.key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_orders_like_the_ranking_rule() {
        let ascending = [f64::NEG_INFINITY, -1e300, -1.0, -1e-310, 0.0, 1e-310, 2.5, f64::INFINITY];
        for w in ascending.windows(2) {
            assert!(cost(w[0], false) < cost(w[1], false), "{w:?}");
            assert!(cost(w[0], true) > cost(w[1], true), "{w:?}");
        }
        assert_eq!(cost(-0.0, false), cost(0.0, false));
        assert_eq!(cost(f64::NAN, true), u64::MAX);
        assert!(cost(f64::INFINITY, false) < cost(-f64::NAN, false));
        assert!(cost(f64::NEG_INFINITY, true) < cost(f64::NAN, true));
    }

    #[test]
    fn selector_keeps_the_best_k_with_ties_by_index() {
        for k in [0, 1, 3, 50, 1000] {
            let mut s = Selector::new(k, false);
            let scores: Vec<f64> = (0..500u64).map(|i| ((i * 7919) % 101) as f64).collect();
            for (i, &x) in scores.iter().enumerate() {
                s.push(i as u64, x);
            }
            let got: Vec<u64> = s.into_sorted().iter().map(|e| e.index()).collect();
            let mut want: Vec<u64> = (0..500).collect();
            want.sort_by(|&a, &b| scores[a as usize].total_cmp(&scores[b as usize]).then(a.cmp(&b)));
            want.truncate(k);
            assert_eq!(got, want, "k {k}");
        }
    }

    #[test]
    fn push_scores_equals_pushing_one_by_one() {
        // Runs of ties, NaN, ±0.0 and infinities, over several chunks and partial ones.
        let special = [f64::NAN, -0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY];
        let scores: Vec<f64> = (0..300u64).map(|i| if i % 37 == 5 { special[(i / 37) as usize % 5] } else { ((i * 7919) % 23) as f64 }).collect();
        for similarity in [false, true] {
            for k in [1, 3, 10, 40, 299, 400] {
                let mut one = Selector::new(k, similarity);
                for (i, &x) in scores.iter().enumerate() {
                    one.push(i as u64 + 1000, x);
                }
                let mut runs = Selector::new(k, similarity);
                for (start, run) in [(0, 7), (7, 100), (107, 16), (123, 177)] {
                    runs.push_scores(start as u64 + 1000, &scores[start..start + run]);
                }
                let bits = |s: Selector| s.into_sorted().iter().map(|e| (e.index(), e.score.to_bits())).collect::<Vec<_>>();
                assert_eq!(bits(runs), bits(one), "k {k}, similarity {similarity}");
            }
        }
    }

    #[test]
    fn merge_equals_one_selector() {
        let mut all = Selector::new(5, true);
        let mut a = Selector::new(5, true);
        let mut b = Selector::new(5, true);
        for i in 0..100u64 {
            let x = ((i * 31) % 17) as f64;
            all.push(i, x);
            if i < 40 { a.push(i, x) } else { b.push(i, x) }
        }
        a.merge(b);
        assert_eq!(a.into_sorted(), all.into_sorted());
    }
}
