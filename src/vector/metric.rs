//! The similarity and distance functions, with their names and aliases.

use crate::error::{Result, bail};

/// A similarity (higher is better) or distance (lower is better) between two vectors.
/// The discriminant is the metric's stable code in the C ABI.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Σ aᵢbᵢ (similarity).
    Dot = 0,
    /// Σ aᵢbᵢ, the same value as [`Metric::Dot`] (similarity).
    Inner = 1,
    /// a·b / (|a||b|), 0.0 when either vector is all zeros (similarity).
    Cosine = 2,
    /// √Σ (aᵢ−bᵢ)² (distance).
    L2 = 3,
    /// Σ (aᵢ−bᵢ)² (distance).
    L2sq = 4,
    /// Number of differing bits of packed-bit `uint8` vectors (distance).
    Hamming = 5,
    /// 1 − |a∧b| / |a∨b| over packed-bit `uint8` vectors, 0.0 when both are zero (distance).
    Jaccard = 6,
    /// Kullback–Leibler divergence Σ pᵢ ln(pᵢ/qᵢ) (distance).
    Kl = 7,
    /// Jensen–Shannon divergence ½ KL(p‖m) + ½ KL(q‖m), m = (p+q)/2 (distance).
    Js = 8,
}

impl Metric {
    /// Every metric, in code order.
    pub const ALL: [Metric; 9] = [
        Metric::Dot,
        Metric::Inner,
        Metric::Cosine,
        Metric::L2,
        Metric::L2sq,
        Metric::Hamming,
        Metric::Jaccard,
        Metric::Kl,
        Metric::Js,
    ];

    /// The metric with this code, if any.
    pub fn from_code(code: u32) -> Option<Metric> {
        Metric::ALL.get(code as usize).copied()
    }

    /// The metric's stable code.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The metric named `name` (case-insensitive, canonical name or any alias).
    /// An unknown name is an `InvalidArgument` error that lists the canonical names.
    pub fn parse(name: &str) -> Result<Metric> {
        let lower = name.to_ascii_lowercase();
        match Metric::ALL.into_iter().find(|m| m.aliases().contains(&lower.as_str())) {
            Some(m) => Ok(m),
            None => {
                let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                bail!(InvalidArgument, "unknown metric {name:?} (expected one of: {})", names.join(", "))
            }
        }
    }

    /// The canonical lower-case name.
    pub fn name(self) -> &'static str {
        self.aliases()[0]
    }

    /// Every accepted name, lower-case, the canonical one first.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Metric::Dot => &["dot", "dot_product", "dotproduct"],
            Metric::Inner => &["inner", "inner_product"],
            Metric::Cosine => &["cosine", "cos", "cosine_similarity"],
            Metric::L2 => &["l2", "euclidean", "l2_distance"],
            Metric::L2sq => &["l2sq", "l2_squared", "squared_euclidean"],
            Metric::Hamming => &["hamming"],
            Metric::Jaccard => &["jaccard"],
            Metric::Kl => &["kl", "kl_divergence"],
            Metric::Js => &["js", "js_divergence"],
        }
    }

    /// True for dot, inner and cosine (higher is better); false for the distances.
    pub fn is_similarity(self) -> bool {
        matches!(self, Metric::Dot | Metric::Inner | Metric::Cosine)
    }

    /// True for the metrics defined only on packed bits (`uint8` vectors).
    pub(crate) fn is_bitwise(self) -> bool {
        matches!(self, Metric::Hamming | Metric::Jaccard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for (i, m) in Metric::ALL.iter().enumerate() {
            assert_eq!(m.code() as usize, i);
            assert_eq!(Metric::from_code(m.code()), Some(*m));
            for a in m.aliases() {
                assert!(seen.insert(*a), "alias {a} used twice");
                assert_eq!(Metric::parse(a).unwrap(), *m);
            }
        }
        assert_eq!(Metric::from_code(9), None);
    }
}
