//! The simulated machines: how fast each one computes relative to this box, and whether it fails.

use rand::RngExt;
use rand::seq::SliceRandom;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::numeric::range::{Range, field};
use crate::numeric::rng::{self, Rng};

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
    /// Probability that a machine fails in a round (independently per machine and round), in [0, 1];
    /// in the one-shot protocol, that it fails before reporting.
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

    /// Every machine's speed factor, drawn from streams under `(seed, path)`.
    pub fn speeds(&self, machines: usize, seed: u64, path: &[u64]) -> Vec<f64> {
        match self.speed {
            Speed::Equal => vec![1.0; machines],
            Speed::Stragglers { fraction, slowdown } => {
                let slow = ((fraction * machines as f64).round() as usize).min(machines);
                let mut ids: Vec<usize> = (0..machines).collect();
                ids.shuffle(&mut rng::substream(seed, path, &[4]));
                let mut s = vec![1.0; machines];
                for &m in &ids[..slow] {
                    s[m] = slowdown;
                }
                s
            }
            Speed::Lognormal { sigma } => (0..machines)
                .map(|m| (sigma * rng::substream(seed, path, &[3, m as u64]).sample::<f64, _>(StandardNormal)).exp())
                .collect(),
        }
    }
}

/// When the machines fail. In every round, a machine still running fails with the model's
/// `failure_probability`, independently of the other machines and rounds: machine m's r-th draw
/// from the stream `(seed, path, 2, m)` decides round r. The draws do not depend on the network or
/// the speeds, so every replay of a run sees the same failures.
#[derive(Debug, Clone)]
pub struct Failures {
    probability: f64,
    streams: Vec<Rng>,
    /// Per machine, the fate of each round drawn so far (`true`: fails in that round).
    drawn: Vec<Vec<bool>>,
}

impl Failures {
    /// The failures of `machines` machines of `model`.
    pub fn new(model: &MachineModel, machines: usize, seed: u64, path: &[u64]) -> Failures {
        Failures {
            probability: model.failure_probability,
            streams: (0..machines).map(|m| rng::substream(seed, path, &[2, m as u64])).collect(),
            drawn: vec![Vec::new(); machines],
        }
    }

    /// Whether machine `machine`, running at the start of round `round` (from 1), fails in it.
    pub fn in_round(&mut self, machine: usize, round: usize) -> bool {
        if self.probability <= 0.0 {
            return false;
        }
        while self.drawn[machine].len() < round {
            let fails = self.streams[machine].random::<f64>() < self.probability;
            self.drawn[machine].push(fails);
        }
        self.drawn[machine][round - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stragglers_are_an_exact_fraction() {
        let m = MachineModel { speed: Speed::Stragglers { fraction: 0.25, slowdown: 4.0 }, failure_probability: 0.0 };
        let s = m.speeds(16, 3, &[0, 0]);
        assert_eq!(s.iter().filter(|&&s| s == 4.0).count(), 4);
        assert_eq!(s, m.speeds(16, 3, &[0, 0]), "same seed, same draw");
        let mut f = Failures::new(&m, 16, 3, &[0, 0]);
        assert!((0..16).all(|i| !f.in_round(i, 1) && !f.in_round(i, 50)));
    }

    #[test]
    fn a_machine_fails_in_each_round_with_the_failure_probability() {
        let m = MachineModel { speed: Speed::Equal, failure_probability: 0.2 };
        let mut f = Failures::new(&m, 2000, 5, &[1]);
        for round in [1, 2, 7] {
            let share = (0..2000).filter(|&i| f.in_round(i, round)).count() as f64 / 2000.0;
            assert!((share - 0.2).abs() < 0.03, "round {round}: {share}");
        }
        let mut again = Failures::new(&m, 2000, 5, &[1]);
        assert!((0..2000).all(|i| again.in_round(i, 7) == f.in_round(i, 7)), "drawn in any order, the same fates");
    }
}
