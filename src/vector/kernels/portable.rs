//! The kernels, written once as portable code with explicit lanes of independent
//! accumulators. Every function here is `#[inline(always)]` so that each instantiation in
//! `super` is compiled for its own instruction set, where LLVM turns the lanes into SIMD
//! registers. No fused multiply-add and no reassociation: every instruction set computes
//! bit-identical results.

use std::ops::{Add, Mul, Sub};

use crate::vector::metric::Metric;

/// f32 and f64.
pub(super) trait Float: Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Into<f64> {
    const ZERO: Self;
}

impl Float for f32 {
    const ZERO: f32 = 0.0;
}
impl Float for f64 {
    const ZERO: f64 = 0.0;
}

/// i8 and u8: products fit an i32, sums are exact.
pub(super) trait Int: Copy + Into<i32> + Into<f64> {}

impl Int for i8 {}
impl Int for u8 {}

/// Scores of each row of `rows` (row-major, `q.len()` elements each) against `q`, whose
/// squared norm is `qq` (used by cosine only).
#[inline(always)]
pub(super) fn score_float<T: Float, const L: usize>(m: Metric, q: &[T], qq: f64, rows: &[T], out: &mut [f64]) {
    let pairs = rows.chunks_exact(q.len()).zip(out.iter_mut());
    match m {
        Metric::Dot | Metric::Inner => pairs.for_each(|(r, o)| *o = dot::<T, L>(q, r).into()),
        Metric::Cosine => pairs.for_each(|(r, o)| {
            let (ab, bb) = dot_and_norm::<T, L>(q, r);
            *o = cosine(ab.into(), qq, bb.into());
        }),
        Metric::L2sq => pairs.for_each(|(r, o)| *o = l2sq::<T, L>(q, r).into()),
        Metric::L2 => pairs.for_each(|(r, o)| *o = Into::<f64>::into(l2sq::<T, L>(q, r)).sqrt()),
        Metric::Kl => pairs.for_each(|(r, o)| *o = kl(q, r)),
        Metric::Js => pairs.for_each(|(r, o)| *o = js(q, r)),
        Metric::Hamming | Metric::Jaccard => unreachable!("bitwise metrics are rejected for float vectors"),
    }
}

/// Squared norm of each row.
#[inline(always)]
pub(super) fn norms_float<T: Float, const L: usize>(rows: &[T], dim: usize, out: &mut [f64]) {
    for (r, o) in rows.chunks_exact(dim).zip(out.iter_mut()) {
        *o = dot::<T, L>(r, r).into();
    }
}

/// Like [`score_float`] for int8 and uint8 (dot, cosine and l2 exact in integers).
#[inline(always)]
pub(super) fn score_int<T: Int>(m: Metric, q: &[T], qq: f64, rows: &[T], out: &mut [f64]) {
    let pairs = rows.chunks_exact(q.len()).zip(out.iter_mut());
    match m {
        Metric::Dot | Metric::Inner => pairs.for_each(|(r, o)| *o = dot_int(q, r) as f64),
        Metric::Cosine => pairs.for_each(|(r, o)| *o = cosine(dot_int(q, r) as f64, qq, dot_int(r, r) as f64)),
        Metric::L2sq => pairs.for_each(|(r, o)| *o = l2sq_int(q, r) as f64),
        Metric::L2 => pairs.for_each(|(r, o)| *o = (l2sq_int(q, r) as f64).sqrt()),
        Metric::Kl => pairs.for_each(|(r, o)| *o = kl(q, r)),
        Metric::Js => pairs.for_each(|(r, o)| *o = js(q, r)),
        Metric::Hamming | Metric::Jaccard => unreachable!("bitwise metrics are handled by score_u8"),
    }
}

/// uint8: the integer metrics, plus hamming and jaccard on packed bits.
#[inline(always)]
pub(super) fn score_u8(m: Metric, q: &[u8], qq: f64, rows: &[u8], out: &mut [f64]) {
    let pairs = rows.chunks_exact(q.len()).zip(out.iter_mut());
    match m {
        Metric::Hamming => pairs.for_each(|(r, o)| *o = hamming(q, r) as f64),
        Metric::Jaccard => pairs.for_each(|(r, o)| *o = jaccard(q, r)),
        _ => score_int(m, q, qq, rows, out),
    }
}

#[inline(always)]
pub(super) fn norms_int<T: Int>(rows: &[T], dim: usize, out: &mut [f64]) {
    for (r, o) in rows.chunks_exact(dim).zip(out.iter_mut()) {
        *o = dot_int(r, r) as f64;
    }
}

/// a·b / (|a||b|) from the dot product and squared norms; 0.0 when either norm is zero.
#[inline(always)]
fn cosine(ab: f64, aa: f64, bb: f64) -> f64 {
    if aa == 0.0 || bb == 0.0 { 0.0 } else { ab / (aa.sqrt() * bb.sqrt()) }
}

/// `s` as whole arrays of `L` elements, and the rest (what `<[T]>::as_chunks` does,
/// which is newer than this crate's minimum Rust).
#[inline(always)]
fn chunks<T, const L: usize>(s: &[T]) -> (impl Iterator<Item = &[T; L]>, &[T]) {
    let exact = s.chunks_exact(L);
    let rest = exact.remainder();
    (exact.map(|c| c.try_into().expect("chunks_exact yields whole chunks")), rest)
}

/// Adds lane `i + n` into lane `i`, halving until one lane is left (`L` a power of two).
#[inline(always)]
fn sum_lanes<T: Float, const L: usize>(mut acc: [T; L]) -> T {
    let mut n = L;
    while n > 1 {
        n /= 2;
        for i in 0..n {
            acc[i] = acc[i] + acc[i + n];
        }
    }
    acc[0]
}

#[inline(always)]
fn dot<T: Float, const L: usize>(a: &[T], b: &[T]) -> T {
    let (ac, at) = chunks::<_, L>(a);
    let (bc, bt) = chunks::<_, L>(b);
    let mut acc = [T::ZERO; L];
    for (x, y) in ac.zip(bc) {
        for i in 0..L {
            acc[i] = acc[i] + x[i] * y[i];
        }
    }
    let mut tail = T::ZERO;
    for (&x, &y) in at.iter().zip(bt) {
        tail = tail + x * y;
    }
    sum_lanes(acc) + tail
}

/// (a·b, b·b) in one pass; b·b is bit-identical to `dot(b, b)`.
#[inline(always)]
fn dot_and_norm<T: Float, const L: usize>(a: &[T], b: &[T]) -> (T, T) {
    let (ac, at) = chunks::<_, L>(a);
    let (bc, bt) = chunks::<_, L>(b);
    let mut ab = [T::ZERO; L];
    let mut bb = [T::ZERO; L];
    for (x, y) in ac.zip(bc) {
        for i in 0..L {
            ab[i] = ab[i] + x[i] * y[i];
            bb[i] = bb[i] + y[i] * y[i];
        }
    }
    let (mut ab_tail, mut bb_tail) = (T::ZERO, T::ZERO);
    for (&x, &y) in at.iter().zip(bt) {
        ab_tail = ab_tail + x * y;
        bb_tail = bb_tail + y * y;
    }
    (sum_lanes(ab) + ab_tail, sum_lanes(bb) + bb_tail)
}

#[inline(always)]
fn l2sq<T: Float, const L: usize>(a: &[T], b: &[T]) -> T {
    let (ac, at) = chunks::<_, L>(a);
    let (bc, bt) = chunks::<_, L>(b);
    let mut acc = [T::ZERO; L];
    for (x, y) in ac.zip(bc) {
        for i in 0..L {
            let d = x[i] - y[i];
            acc[i] = acc[i] + d * d;
        }
    }
    let mut tail = T::ZERO;
    for (&x, &y) in at.iter().zip(bt) {
        let d = x - y;
        tail = tail + d * d;
    }
    sum_lanes(acc) + tail
}

/// Integer lanes: 32 × i32.
const INT_LANES: usize = 32;
/// Elements summed in i32 lanes before widening: each lane then adds at most 2,048
/// products of at most 255² = 65,025, far below i32::MAX.
const INT_CHUNK: usize = 1 << 16;

#[inline(always)]
fn dot_int<T: Int>(a: &[T], b: &[T]) -> i64 {
    int_sum(a, b, |x, y| x * y)
}

#[inline(always)]
fn l2sq_int<T: Int>(a: &[T], b: &[T]) -> i64 {
    int_sum(a, b, |x, y| (x - y) * (x - y))
}

/// Σ f(aᵢ, bᵢ) in i32 lanes, widened to i64 every `INT_CHUNK` elements.
#[inline(always)]
fn int_sum<T: Int>(a: &[T], b: &[T], f: impl Fn(i32, i32) -> i32) -> i64 {
    let mut total = 0i64;
    for (ca, cb) in a.chunks(INT_CHUNK).zip(b.chunks(INT_CHUNK)) {
        let (ac, at) = chunks::<_, INT_LANES>(ca);
        let (bc, bt) = chunks::<_, INT_LANES>(cb);
        let mut acc = [0i32; INT_LANES];
        for (x, y) in ac.zip(bc) {
            for i in 0..INT_LANES {
                acc[i] += f(x[i].into(), y[i].into());
            }
        }
        total += acc.iter().map(|&v| v as i64).sum::<i64>();
        total += at.iter().zip(bt).map(|(&x, &y)| f(x.into(), y.into()) as i64).sum::<i64>();
    }
    total
}

/// Σ popcount(f(aᵢ, bᵢ)) over the bytes, 8 at a time.
#[inline(always)]
fn popcount_sum(a: &[u8], b: &[u8], f: impl Fn(u64, u64) -> u64) -> u64 {
    let (ac, at) = chunks::<_, 8>(a);
    let (bc, bt) = chunks::<_, 8>(b);
    let words: u64 = ac.zip(bc).map(|(x, y)| f(u64::from_ne_bytes(*x), u64::from_ne_bytes(*y)).count_ones() as u64).sum();
    let bytes: u64 = at.iter().zip(bt).map(|(&x, &y)| f(x as u64, y as u64).count_ones() as u64).sum();
    words + bytes
}

#[inline(always)]
fn hamming(a: &[u8], b: &[u8]) -> u64 {
    popcount_sum(a, b, |x, y| x ^ y)
}

#[inline(always)]
fn jaccard(a: &[u8], b: &[u8]) -> f64 {
    let union = popcount_sum(a, b, |x, y| x | y);
    if union == 0 {
        return 0.0;
    }
    1.0 - popcount_sum(a, b, |x, y| x & y) as f64 / union as f64
}

/// One term p ln(p/q): 0 when p = 0, +inf when p > 0 = q.
#[inline(always)]
fn kl_term(p: f64, q: f64) -> f64 {
    if p == 0.0 { 0.0 } else { p * (p / q).ln() }
}

/// Σ pᵢ ln(pᵢ/qᵢ), every term and the sum in f64.
#[inline(always)]
fn kl<T: Copy + Into<f64>>(p: &[T], q: &[T]) -> f64 {
    p.iter().zip(q).map(|(&p, &q)| kl_term(p.into(), q.into())).sum()
}

/// ½ KL(p‖m) + ½ KL(q‖m) with m = (p+q)/2, every term and the sum in f64.
#[inline(always)]
fn js<T: Copy + Into<f64>>(p: &[T], q: &[T]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(&p, &q)| {
            let (p, q): (f64, f64) = (p.into(), q.into());
            let m = 0.5 * (p + q);
            0.5 * kl_term(p, m) + 0.5 * kl_term(q, m)
        })
        .sum()
}
