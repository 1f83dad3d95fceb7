//! The simulated machines: how fast each one computes relative to this box, and whether it fails.

use rand::RngExt;
use rand::seq::SliceRandom;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::numeric::range::{Range, field};
use crate::numeric::rng;

/// Speed distribution: a machine's compute time is its measured (or modelled) time times its factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Speed {
    /// Every machine runs at factor 1.
    Equal,
    /// `round(fraction * M)` machines, chosen at random, are `slowdown` times slower.
    Stragglers { fraction: f64, slowdown: f64 },
    /// Each machine's factor is `exp(sigma Z)`, Z standard normal (median 1).
    Lognormal { sigma: f64 },
}

/// The machines of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineModel {
    /// Speed factors.
    pub speed: Speed,
    /// Probability that a machine fails before reporting (independently per machine), in [0, 1].
    pub failure_probability: f64,
}

impl Default for MachineModel {
    fn default() -> Self {
        MachineModel { speed: Speed::Equal, failure_probability: 0.0 }
    }
}

impl MachineModel {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<(), String> {
        match self.speed {
            Speed::Equal => {}
            Speed::Stragglers { fraction, slowdown } => {
                field("fraction", Range::Probability, fraction)?;
                field("slowdown", Range::SLOWDOWN, slowdown)?;
            }
            Speed::Lognormal { sigma } => field("sigma", Range::SPREAD, sigma)?,
        }
        field("failure_probability", Range::Probability, self.failure_probability)
    }

    /// Speed factor and failure of every machine, drawn from streams under `(seed, path)`.
    pub fn draw(&self, machines: usize, seed: u64, path: &[u64]) -> Vec<(f64, bool)> {
        let sub = |tag: u64, m: Option<usize>| {
            let mut p = path.to_vec();
            p.push(tag);
            p.extend(m.map(|m| m as u64));
            rng::stream(seed, &p)
        };
        let speeds: Vec<f64> = match self.speed {
            Speed::Equal => vec![1.0; machines],
            Speed::Stragglers { fraction, slowdown } => {
                let slow = ((fraction * machines as f64).round() as usize).min(machines);
                let mut ids: Vec<usize> = (0..machines).collect();
                ids.shuffle(&mut sub(4, None));
                let mut s = vec![1.0; machines];
                for &m in &ids[..slow] {
                    s[m] = slowdown;
                }
                s
            }
            Speed::Lognormal { sigma } => {
                (0..machines).map(|m| (sigma * sub(3, Some(m)).sample::<f64, _>(StandardNormal)).exp()).collect()
            }
        };
        speeds
            .into_iter()
            .enumerate()
            .map(|(m, s)| {
                (s, self.failure_probability > 0.0 && sub(2, Some(m)).random::<f64>() < self.failure_probability)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stragglers_are_an_exact_fraction() {
        let m = MachineModel { speed: Speed::Stragglers { fraction: 0.25, slowdown: 4.0 }, failure_probability: 0.0 };
        let d = m.draw(16, 3, &[0, 0]);
        assert_eq!(d.iter().filter(|(s, _)| *s == 4.0).count(), 4);
        assert!(d.iter().all(|(_, f)| !f));
        assert_eq!(d, m.draw(16, 3, &[0, 0]), "same seed, same draw");
    }
}
