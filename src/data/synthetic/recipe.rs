//! Which of the authors' recipes a synthetic data set follows (docs/synthetic.md), with their fixed
//! component shares.

use super::TruthError;
use crate::numeric::range::RangeError;

/// How a synthetic data set is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recipe {
    /// The authors' Figure 5 script: covariates from K clusters of exactly equal size, z-scored with
    /// the sample's moments; z from the true gate; zero intercepts, distinct integer slopes; a truth
    /// drawn until its component shares are balanced.
    #[default]
    Benchmark,
    /// The authors' "official" benchmark: z first with the profile's shares, `x | z ~ N(0.28 mu_z,
    /// I)`, the true gate the exact posterior of z given x.
    Profiles {
        /// The component shares.
        profile: Profile,
    },
    /// `Profiles` data, each machine's shard holding rows of only `experts_per_machine` experts.
    Heterogeneous {
        /// The component shares.
        profile: Profile,
        /// Experts K_m in each machine's shard.
        experts_per_machine: usize,
    },
    /// dmoe's own recipe (before issue #15, and still used by `bench`, `teach` and the tests):
    /// intercepts 4 apart, N(0, 1) cluster means, random cluster sizes, population z-scoring.
    Spread,
}

impl Recipe {
    /// The recipes' names, as scenarios and `dmoe simulate --recipe` spell them.
    pub const NAMES: [&'static str; 4] = ["benchmark", "profiles", "heterogeneous", "spread"];

    /// The recipe with its settings, as run.json records it: `benchmark`, `profiles (moderate)`,
    /// `heterogeneous (balanced, 3 experts per machine)`, `spread`.
    pub fn label(&self) -> String {
        match self {
            Recipe::Benchmark => "benchmark".into(),
            Recipe::Profiles { profile } => format!("profiles ({})", profile.name()),
            Recipe::Heterogeneous { profile, experts_per_machine } => {
                format!("heterogeneous ({}, {experts_per_machine} experts per machine)", profile.name())
            }
            Recipe::Spread => "spread".into(),
        }
    }

    /// The recipe `name` with its profile and K_m (ignored where they do not apply); `None` for an
    /// unknown name.
    pub fn named(name: &str, profile: Profile, experts_per_machine: usize) -> Option<Recipe> {
        Some(match name {
            "benchmark" => Recipe::Benchmark,
            "profiles" => Recipe::Profiles { profile },
            "heterogeneous" => Recipe::Heterogeneous { profile, experts_per_machine },
            "spread" => Recipe::Spread,
            _ => return None,
        })
    }

    /// Whether the recipe called `name` draws z first with a profile's shares (and so takes a profile).
    pub fn takes_profile(name: &str) -> bool {
        matches!(name, "profiles" | "heterogeneous")
    }

    /// K_m, for the heterogeneous recipe.
    pub fn experts_per_machine(&self) -> Option<usize> {
        match self {
            Recipe::Heterogeneous { experts_per_machine, .. } => Some(*experts_per_machine),
            _ => None,
        }
    }
}

/// The component shares of the `profiles` and `heterogeneous` recipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Every share 1/K.
    #[default]
    Balanced,
    /// 0.10, 0.15, 0.20, 0.25, 0.30 (K = 5).
    Moderate,
    /// 0.02, 0.08, 0.20, 0.30, 0.40 (K = 5).
    Severe,
}

impl Profile {
    /// The profiles' names.
    pub const NAMES: [&'static str; 3] = ["balanced", "moderate", "severe"];

    /// The profile `name`, if there is one.
    pub fn named(name: &str) -> Option<Profile> {
        Some(match name {
            "balanced" => Profile::Balanced,
            "moderate" => Profile::Moderate,
            "severe" => Profile::Severe,
            _ => return None,
        })
    }

    /// The name of this profile.
    pub fn name(self) -> &'static str {
        Profile::NAMES[self as usize]
    }

    /// The shares of the K components: the authors defined the unbalanced profiles for K = 5 only.
    pub fn shares(self, k: usize) -> Result<Vec<f64>, TruthError> {
        let fixed: &[f64] = match self {
            Profile::Balanced => return Ok(vec![1.0 / k as f64; k]),
            Profile::Moderate => &[0.10, 0.15, 0.20, 0.25, 0.30],
            Profile::Severe => &[0.02, 0.08, 0.20, 0.30, 0.40],
        };
        if k != fixed.len() {
            let expected = format!("5 (the `{}` profile's shares are defined for K = 5)", self.name());
            return Err(TruthError("k", RangeError { expected, got: k.to_string() }));
        }
        Ok(fixed.to_vec())
    }
}
