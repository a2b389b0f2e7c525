//! Deletion bitmap (`deleted_<name>.npkb`): bit `r % 64` of word `r / 64` is 1 while
//! physical row `r` is live. File layout: `u64 total_rows | u64 deleted_count | words`.
//! A rank index (live rows before each word) maps logical rows to physical rows.

use std::sync::{Arc, OnceLock};

pub const HEADER_LEN: u64 = 16;

#[derive(Clone, Debug)]
pub struct Bitmap {
    total: u64,
    words: Vec<u64>,
    /// `rank[w]` = live rows in words `0..w`; length `words.len() + 1`.
    rank: Vec<u64>,
    /// [`Bitmap::live_rows`], built once per version of the bits (every change resets
    /// it): each search over a store with deleted rows needs the list, and building it
    /// costs a pass over every row.
    live: OnceLock<Arc<Vec<u64>>>,
}

/// Equal bits are equal bitmaps (the rank index and the cached list derive from them).
impl PartialEq for Bitmap {
    fn eq(&self, other: &Bitmap) -> bool {
        self.total == other.total && self.words == other.words
    }
}

impl Eq for Bitmap {}

fn word_count(total: u64) -> usize {
    total.div_ceil(64) as usize
}

/// Mask of the valid bits of the last word for `total` rows.
fn tail_mask(total: u64) -> u64 {
    match total % 64 {
        0 => u64::MAX,
        r => (1u64 << r) - 1,
    }
}

impl Bitmap {
    pub fn all_live(total: u64) -> Bitmap {
        let mut words = vec![u64::MAX; word_count(total)];
        if let Some(last) = words.last_mut() {
            *last &= tail_mask(total);
        }
        Bitmap::from_words(total, words)
    }

    fn from_words(total: u64, words: Vec<u64>) -> Bitmap {
        let mut b = Bitmap { total, words, rank: Vec::new(), live: OnceLock::new() };
        b.rebuild_rank(0);
        b
    }

    fn rebuild_rank(&mut self, from_word: usize) {
        self.rank.truncate(from_word + 1);
        if self.rank.is_empty() {
            self.rank.push(0);
        }
        let start = self.rank[from_word];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU has the instruction the function is compiled for.
            unsafe { prefix_counts_popcnt(&self.words[from_word..], start, &mut self.rank) };
            return;
        }
        prefix_counts(&self.words[from_word..], start, &mut self.rank);
    }

    /// Physical rows.
    pub fn total(&self) -> u64 {
        self.total
    }
    pub fn live(&self) -> u64 {
        *self.rank.last().unwrap()
    }
    pub fn deleted(&self) -> u64 {
        self.total - self.live()
    }
    pub fn words(&self) -> &[u64] {
        &self.words
    }
    pub fn is_live(&self, row: u64) -> bool {
        row < self.total && self.words[(row / 64) as usize] >> (row % 64) & 1 == 1
    }

    /// Physical row of logical row `i` (`i < live()`).
    pub fn physical(&self, i: u64) -> u64 {
        debug_assert!(i < self.live());
        // Last word whose rank is <= i.
        let w = self.rank.partition_point(|&r| r <= i) - 1;
        let mut word = self.words[w];
        for _ in 0..(i - self.rank[w]) {
            word &= word - 1;
        }
        w as u64 * 64 + word.trailing_zeros() as u64
    }

    /// Physical rows of all live rows, in order; shared, built once per version.
    pub fn live_rows(&self) -> Arc<Vec<u64>> {
        self.live
            .get_or_init(|| {
                let mut out = Vec::with_capacity(self.live() as usize);
                for (w, &word) in self.words.iter().enumerate() {
                    let mut bits = word;
                    while bits != 0 {
                        out.push(w as u64 * 64 + bits.trailing_zeros() as u64);
                        bits &= bits - 1;
                    }
                }
                Arc::new(out)
            })
            .clone()
    }

    /// Runs `(start, len)` of consecutive live physical rows within `[from, to)`.
    pub fn live_runs(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut r = from;
        while r < to {
            let w = (r / 64) as usize;
            let bits = self.words[w] >> (r % 64);
            let span = (64 - r % 64).min(to - r);
            let ones = bits.trailing_ones() as u64;
            if ones > 0 {
                let n = ones.min(span);
                push_run(&mut runs, r, n);
                r += n;
            } else {
                r += (bits.trailing_zeros() as u64).min(span);
            }
        }
        runs
    }

    /// Marks physical rows deleted; returns the indices of the words that changed.
    pub fn delete(&mut self, rows: &[u64]) -> Vec<usize> {
        self.live = OnceLock::new();
        // One entry per cleared bit, so the rank index can be lowered without recounting.
        let mut cleared = Vec::new();
        for &r in rows {
            let w = (r / 64) as usize;
            let bit = 1u64 << (r % 64);
            if self.words[w] & bit != 0 {
                self.words[w] &= !bit;
                cleared.push(w);
            }
        }
        cleared.sort_unstable();
        // rank[i] counts live rows in words 0..i: between two changed words it drops by
        // the bits cleared so far, a constant per stretch.
        let mut drop = 0u64;
        for (j, &w) in cleared.iter().enumerate() {
            drop += 1;
            let end = cleared.get(j + 1).map_or(self.rank.len(), |&n| n + 1);
            if end > w + 1 {
                for r in &mut self.rank[w + 1..end] {
                    *r -= drop;
                }
            }
        }
        cleared.dedup();
        cleared
    }

    /// Grows to `total` rows; the new rows are live. Returns the first changed word.
    pub fn extend(&mut self, total: u64) -> usize {
        self.live = OnceLock::new();
        assert!(total >= self.total);
        let first = (self.total / 64) as usize;
        let old = self.total;
        self.words.resize(word_count(total), 0);
        if old % 64 != 0 {
            // The rest of the old last word.
            self.words[first] |= u64::MAX << (old % 64);
        }
        for w in &mut self.words[old.div_ceil(64) as usize..] {
            *w = u64::MAX;
        }
        if let Some(last) = self.words.last_mut() {
            *last &= tail_mask(total);
        }
        self.total = total;
        self.rebuild_rank(first.min(self.words.len().saturating_sub(1)));
        first
    }

    /// Sets words from a log record (absolute values) and the row count.
    pub fn patch(&mut self, total: u64, words: &[(u64, u64)]) -> Result<(), String> {
        self.live = OnceLock::new();
        self.words.resize(word_count(total), 0);
        self.total = total;
        for &(w, v) in words {
            let slot = self.words.get_mut(w as usize).ok_or_else(|| format!("bitmap word {w} beyond {total} rows"))?;
            *slot = v;
        }
        if let Some(last) = self.words.last_mut() {
            *last &= tail_mask(total);
        }
        self.rebuild_rank(0);
        Ok(())
    }

    pub fn header(&self) -> [u8; HEADER_LEN as usize] {
        let mut h = [0u8; HEADER_LEN as usize];
        h[..8].copy_from_slice(&self.total.to_le_bytes());
        h[8..].copy_from_slice(&self.deleted().to_le_bytes());
        h
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.words.len() * 8);
        self.write_to(&mut out).expect("writing to a Vec cannot fail");
        out
    }

    /// Writes the file's bytes without building them in memory first (a fresh buffer the
    /// size of the bitmap costs a page fault per 4 KB).
    pub fn write_to(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        w.write_all(&self.header())?;
        w.write_all(&words_le_bytes(&self.words))
    }

    /// Parses a bitmap file for an array of `total` physical rows. Accepts NumPack's
    /// legacy header-less word arrays too. Anything inconsistent is an error.
    pub fn decode(bytes: &[u8], total: u64) -> Result<Bitmap, String> {
        let n = word_count(total);
        let (words_bytes, header) = if bytes.len() as u64 == HEADER_LEN + n as u64 * 8 {
            let t = u64::from_le_bytes(bytes[..8].try_into().unwrap());
            let d = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
            (&bytes[16..], Some((t, d)))
        } else if bytes.len() == n * 8 {
            (bytes, None)
        } else {
            return Err(format!(
                "{} bytes do not hold a bitmap of {total} rows ({} bytes expected)",
                bytes.len(),
                HEADER_LEN + n as u64 * 8
            ));
        };
        let words: Vec<u64> = words_bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
        if let Some(&last) = words.last() {
            if last & !tail_mask(total) != 0 {
                return Err("bits are set beyond the last row".into());
            }
        }
        let b = Bitmap::from_words(total, words);
        if let Some((t, d)) = header {
            if t != total {
                return Err(format!("it covers {t} rows but the array has {total}"));
            }
            if d != b.deleted() {
                return Err(format!("its header counts {d} deleted rows but {} bits are clear", b.deleted()));
            }
        }
        Ok(b)
    }
}

/// Words as their little-endian file bytes.
pub fn words_le_bytes(words: &[u64]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        // SAFETY: u64 has no padding and any byte pattern is a valid u8.
        std::borrow::Cow::Borrowed(unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 8) })
    } else {
        std::borrow::Cow::Owned(words.iter().flat_map(|w| w.to_le_bytes()).collect())
    }
}

fn prefix_counts(words: &[u64], mut acc: u64, rank: &mut Vec<u64>) {
    rank.reserve(words.len());
    for w in words {
        acc += w.count_ones() as u64;
        rank.push(acc);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn prefix_counts_popcnt(words: &[u64], acc: u64, rank: &mut Vec<u64>) {
    prefix_counts(words, acc, rank)
}

fn push_run(runs: &mut Vec<(u64, u64)>, start: u64, len: u64) {
    if let Some(last) = runs.last_mut() {
        if last.0 + last.1 == start {
            last.1 += len;
            return;
        }
    }
    runs.push((start, len));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_live_row_list_follows_every_change() {
        let mut b = Bitmap::all_live(130);
        assert_eq!(b.live_rows().len(), 130);
        let before = b.live_rows();
        b.delete(&[1, 64]);
        assert!(!b.live_rows().contains(&1) && !b.live_rows().contains(&64) && b.live_rows().len() == 128);
        assert_eq!(before.len(), 130, "a list handed out earlier keeps its version");
        let shared = b.clone();
        b.extend(140);
        assert_eq!((b.live_rows().len(), *b.live_rows().last().unwrap()), (138, 139));
        assert_eq!(shared.live_rows().len(), 128, "a clone changed on its own");
        b.patch(140, &[(0, 0)]).unwrap();
        assert_eq!(*b.live_rows().first().unwrap(), 65);
        assert_eq!(b.live_rows().len() as u64, b.live());
    }

    #[test]
    fn upstream_example() {
        // 10 rows, rows 1 and 3 dropped: f503000000000000.
        let mut b = Bitmap::all_live(10);
        b.delete(&[1, 3]);
        assert_eq!(b.words(), &[0x3f5]);
        assert_eq!(b.encode().len(), 24);
        assert_eq!(Bitmap::decode(&b.encode(), 10).unwrap(), b);
        assert_eq!(*b.live_rows(), vec![0, 2, 4, 5, 6, 7, 8, 9]);
        assert_eq!(b.physical(1), 2);
        assert_eq!(b.live_runs(0, 10), vec![(0, 1), (2, 1), (4, 6)]);
    }

    #[test]
    fn extend_after_deletes_keeps_them_deleted() {
        let mut b = Bitmap::all_live(10);
        b.delete(&[0, 1, 2, 9]);
        b.extend(200);
        assert_eq!(b.total(), 200);
        assert_eq!(b.deleted(), 4);
        assert!(!b.is_live(9) && b.is_live(10) && b.is_live(199));
        for i in 0..b.live() {
            assert_eq!(b.physical(i), b.live_rows()[i as usize]);
        }
        assert_eq!(b.live_runs(0, 200), vec![(3, 6), (10, 190)]);
    }

    #[test]
    fn rank_stays_exact_under_deletes_and_extends() {
        let mut b = Bitmap::all_live(1000);
        let mut model: Vec<bool> = vec![true; 1000];
        let mut x: u64 = 7;
        for round in 0..50 {
            let rows: Vec<u64> = (0..7)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x % b.total()
                })
                .collect();
            b.delete(&rows);
            for &r in &rows {
                model[r as usize] = false;
            }
            if round % 10 == 0 {
                let t = b.total() + 37;
                b.extend(t);
                model.resize(t as usize, true);
            }
            let live: Vec<u64> = (0..model.len() as u64).filter(|&r| model[r as usize]).collect();
            assert_eq!(*b.live_rows(), live);
            assert_eq!(b.live(), live.len() as u64);
            for (i, &p) in live.iter().enumerate() {
                assert_eq!(b.physical(i as u64), p);
            }
            assert_eq!(Bitmap::decode(&b.encode(), b.total()).unwrap(), b);
        }
    }

    #[test]
    fn decode_rejects_inconsistent_files() {
        let b = Bitmap::all_live(70);
        let mut bytes = b.encode();
        bytes[8] = 5; // wrong deleted count
        assert!(Bitmap::decode(&bytes, 70).is_err());
        assert!(Bitmap::decode(&b.encode(), 71).is_err()); // header says 70 rows
        assert!(Bitmap::decode(&b.encode()[..20], 70).is_err());
        // legacy header-less words
        let legacy: Vec<u8> = b.words().iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(Bitmap::decode(&legacy, 70).unwrap(), b);
    }
}
