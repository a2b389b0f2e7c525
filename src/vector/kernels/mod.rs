//! Run-time dispatch of the scoring kernels: the portable code of [`portable`] compiled
//! once per instruction set, and one table of function pointers chosen at first use.

mod portable;

use std::sync::OnceLock;

use crate::vector::metric::Metric;
use crate::vector::vectors::Element;

/// Scores of rows against one query: `(metric, query, query's squared norm, rows, out)`.
type ScoreFn<T> = unsafe fn(Metric, &[T], f64, &[T], &mut [f64]);
/// Squared norm of each row: `(rows, dim, out)`.
type NormsFn<T> = unsafe fn(&[T], usize, &mut [f64]);

/// The kernels of one element type.
pub(crate) struct Fns<T> {
    score: ScoreFn<T>,
    norms: NormsFn<T>,
}

/// The kernels compiled for one instruction set. Tables exist only as the constants
/// below, and only [`table`] hands out one that needs more than the baseline, after
/// checking the CPU: that is what makes calling through them sound.
pub(crate) struct Table {
    pub(crate) name: &'static str,
    f32: Fns<f32>,
    f64: Fns<f64>,
    i8: Fns<i8>,
    u8: Fns<u8>,
}

/// Element types with kernels of their own (float16 is converted to f32 first).
pub(crate) trait Native: Element {
    fn fns(table: &Table) -> &Fns<Self>;
}

impl Native for f32 {
    fn fns(t: &Table) -> &Fns<f32> {
        &t.f32
    }
}
impl Native for f64 {
    fn fns(t: &Table) -> &Fns<f64> {
        &t.f64
    }
}
impl Native for i8 {
    fn fns(t: &Table) -> &Fns<i8> {
        &t.i8
    }
}
impl Native for u8 {
    fn fns(t: &Table) -> &Fns<u8> {
        &t.u8
    }
}

impl Table {
    /// Scores of each row of `rows` against `q` into `out` (`rows.len() == out.len() * q.len()`).
    /// `qq` is the query's squared norm from [`Table::norms`] (read by cosine only).
    /// Bitwise metrics are valid for `u8` only.
    #[inline]
    pub(crate) fn score<T: Native>(&self, m: Metric, q: &[T], qq: f64, rows: &[T], out: &mut [f64]) {
        assert!(!q.is_empty() && rows.len() == out.len() * q.len());
        // SAFETY: see `Table`: the CPU has the features this table was compiled for.
        unsafe { (T::fns(self).score)(m, q, qq, rows, out) }
    }

    /// Squared norm of each row of `rows` (`dim` elements each) into `out`.
    #[inline]
    pub(crate) fn norms<T: Native>(&self, rows: &[T], dim: usize, out: &mut [f64]) {
        assert!(dim > 0 && rows.len() == out.len() * dim);
        // SAFETY: as in `score`.
        unsafe { (T::fns(self).norms)(rows, dim, out) }
    }
}

/// Instantiates the portable kernels in a module `$isa` whose functions are compiled with
/// `#[target_feature(enable = $features)]`, and a `TABLE` of them named `$name`.
macro_rules! instantiate {
    ($isa:ident, $name:literal, $features:literal) => {
        mod $isa {
            use super::portable as p;
            use super::{Fns, Table};
            use crate::vector::metric::Metric;

            #[target_feature(enable = $features)]
            fn score_f32(m: Metric, q: &[f32], qq: f64, rows: &[f32], out: &mut [f64]) {
                p::score_float::<f32, 32>(m, q, qq, rows, out)
            }
            #[target_feature(enable = $features)]
            fn norms_f32(rows: &[f32], dim: usize, out: &mut [f64]) {
                p::norms_float::<f32, 32>(rows, dim, out)
            }
            #[target_feature(enable = $features)]
            fn score_f64(m: Metric, q: &[f64], qq: f64, rows: &[f64], out: &mut [f64]) {
                p::score_float::<f64, 16>(m, q, qq, rows, out)
            }
            #[target_feature(enable = $features)]
            fn norms_f64(rows: &[f64], dim: usize, out: &mut [f64]) {
                p::norms_float::<f64, 16>(rows, dim, out)
            }
            #[target_feature(enable = $features)]
            fn score_i8(m: Metric, q: &[i8], qq: f64, rows: &[i8], out: &mut [f64]) {
                p::score_int(m, q, qq, rows, out)
            }
            #[target_feature(enable = $features)]
            fn norms_i8(rows: &[i8], dim: usize, out: &mut [f64]) {
                p::norms_int(rows, dim, out)
            }
            #[target_feature(enable = $features)]
            fn score_u8(m: Metric, q: &[u8], qq: f64, rows: &[u8], out: &mut [f64]) {
                p::score_u8(m, q, qq, rows, out)
            }
            #[target_feature(enable = $features)]
            fn norms_u8(rows: &[u8], dim: usize, out: &mut [f64]) {
                p::norms_int(rows, dim, out)
            }

            pub(super) const TABLE: Table = Table {
                name: $name,
                f32: Fns { score: score_f32, norms: norms_f32 },
                f64: Fns { score: score_f64, norms: norms_f64 },
                i8: Fns { score: score_i8, norms: norms_i8 },
                u8: Fns { score: score_u8, norms: norms_u8 },
            };
        }
    };
}

#[cfg(target_arch = "x86_64")]
instantiate!(avx512, "avx512", "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,popcnt");
#[cfg(target_arch = "x86_64")]
instantiate!(avx2, "avx2", "avx2,fma,popcnt");

/// The baseline of the target (SSE2 on x86_64, NEON on aarch64), which every CPU of the
/// target architecture has.
pub(crate) const PORTABLE: Table = Table {
    name: if cfg!(target_arch = "x86_64") {
        "sse2"
    } else if cfg!(target_arch = "aarch64") {
        "neon"
    } else {
        "scalar"
    },
    f32: Fns { score: portable::score_float::<f32, 32>, norms: portable::norms_float::<f32, 32> },
    f64: Fns { score: portable::score_float::<f64, 16>, norms: portable::norms_float::<f64, 16> },
    i8: Fns { score: portable::score_int::<i8>, norms: portable::norms_int::<i8> },
    u8: Fns { score: portable::score_u8, norms: portable::norms_int::<u8> },
};

/// The best table for this CPU, chosen once.
pub(crate) fn table() -> &'static Table {
    static CHOSEN: OnceLock<&'static Table> = OnceLock::new();
    CHOSEN.get_or_init(detect)
}

fn detect() -> &'static Table {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512dq") && has!("avx2") && has!("fma") && has!("popcnt") {
            return &avx512::TABLE;
        }
        if has!("avx2") && has!("fma") && has!("popcnt") {
            return &avx2::TABLE;
        }
    }
    &PORTABLE
}

/// The CPU features that matter here and the kernels in use, e.g.
/// `"x86_64: AVX2, FMA, F16C (kernels: avx2)"`.
pub(crate) fn capabilities() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let features = cpu_features();
        let arch = std::env::consts::ARCH;
        let kernels = table().name;
        if features.is_empty() { format!("{arch} (kernels: {kernels})") } else { format!("{arch}: {} (kernels: {kernels})", features.join(", ")) }
    })
}

fn cpu_features() -> Vec<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let all = [
            ("AVX-512F", has!("avx512f")),
            ("AVX-512BW", has!("avx512bw")),
            ("AVX-512VL", has!("avx512vl")),
            ("AVX-512DQ", has!("avx512dq")),
            ("AVX2", has!("avx2")),
            ("FMA", has!("fma")),
            ("F16C", has!("f16c")),
        ];
        all.iter().filter(|f| f.1).map(|f| f.0).collect()
    }
    #[cfg(target_arch = "aarch64")]
    {
        let mut v = vec!["NEON"];
        if std::arch::is_aarch64_feature_detected!("fp16") {
            v.push("FP16");
        }
        v
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64, for test data.
    fn rng(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn check<T: Native + std::fmt::Debug>(dispatched: &Table, make: impl Fn(u64) -> T, metrics: &[Metric]) {
        let mut seed = 7;
        // Odd and even dims, below and above the lane counts and the integer chunk.
        for dim in [1, 3, 8, 31, 32, 33, 100, 128, 257, 70_000] {
            let rows = if dim > 1000 { 2 } else { 9 };
            let q: Vec<T> = (0..dim).map(|_| make(rng(&mut seed))).collect();
            let data: Vec<T> = (0..dim * rows).map(|_| make(rng(&mut seed))).collect();
            let mut qq = [0.0; 1];
            let mut qq_base = [0.0; 1];
            dispatched.norms(&q, dim, &mut qq);
            PORTABLE.norms(&q, dim, &mut qq_base);
            assert_eq!(qq[0].to_bits(), qq_base[0].to_bits());
            let (mut a, mut b) = (vec![0.0; rows], vec![0.0; rows]);
            dispatched.norms(&data, dim, &mut a);
            PORTABLE.norms(&data, dim, &mut b);
            assert_eq!(a, b, "norms, dim {dim}");
            for &m in metrics {
                dispatched.score(m, &q, qq[0], &data, &mut a);
                PORTABLE.score(m, &q, qq[0], &data, &mut b);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{} on {:?}, dim {dim}: {} vs {}", m.name(), T::DTYPE, dispatched.name, PORTABLE.name);
            }
        }
    }

    #[test]
    fn dispatched_table_equals_the_portable_one_bit_for_bit() {
        let float_metrics: Vec<Metric> = Metric::ALL.into_iter().filter(|m| !m.is_bitwise()).collect();
        let t = table();
        // Positive values so that kl and js are finite.
        check(t, |r| (r >> 40) as f32 / (1u64 << 24) as f32 + 0.01, &float_metrics);
        check(t, |r| (r >> 11) as f64 / (1u64 << 53) as f64 - 0.5, &float_metrics);
        check(t, |r| r as i8, &float_metrics);
        check(t, |r| r as u8, &Metric::ALL);
        #[cfg(target_arch = "x86_64")]
        for other in [&avx2::TABLE, &avx512::TABLE] {
            if std::ptr::eq(other, t) {
                continue;
            }
            // Tables this CPU can run but that were not chosen (avx2 on an AVX-512 machine).
            let usable = match other.name {
                "avx2" => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("popcnt"),
                _ => false,
            };
            if usable {
                check(other, |r| (r >> 40) as f32 / (1u64 << 24) as f32 + 0.01, &float_metrics);
                check(other, |r| r as u8, &Metric::ALL);
            }
        }
    }

    #[test]
    fn capabilities_name_the_kernels() {
        let c = capabilities();
        assert!(c.starts_with(std::env::consts::ARCH), "{c}");
        assert!(c.ends_with(&format!("(kernels: {})", table().name)), "{c}");
    }
}
