//! The simulated network: a latency distribution, a bandwidth and message loss with retransmission.
//! Delay of one message of `b` bytes: for each lost attempt, the retransmission timeout; for the
//! attempt that gets through, one latency draw plus `b / bandwidth`.

use rand::RngExt;
use rand_distr::{Distribution, Exp, LogNormal, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::numeric::range::{Range, field};
use crate::numeric::rng::Rng;

/// Attempts after which a message is delivered regardless (guards against loss close to 1).
const MAX_ATTEMPTS: u32 = 1000;

/// One-way latency distribution, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Latency {
    /// Always `seconds`.
    Constant { seconds: f64 },
    /// Uniform on [min, max].
    Uniform { min: f64, max: f64 },
    /// Exponential with the given mean.
    Exponential { mean: f64 },
    /// Log-normal with the given median and log-scale standard deviation `sigma`.
    Lognormal { median: f64, sigma: f64 },
    /// Normal with mean and sd, truncated at 0 (redrawn while negative).
    Normal { mean: f64, sd: f64 },
}

impl Latency {
    /// Checks the parameters with the shared range rules; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Latency::Constant { seconds } => field("seconds", Range::SECONDS, seconds),
            Latency::Uniform { min, max } => {
                field("min", Range::SECONDS, min)?;
                field("max", Range::SECONDS, max)?;
                if min > max { Err(format!("`min`: expected at most `max` ({max}), got {min}")) } else { Ok(()) }
            }
            Latency::Exponential { mean } => field("mean", Range::POSITIVE_SECONDS, mean),
            Latency::Lognormal { median, sigma } => {
                field("median", Range::POSITIVE_SECONDS, median).and(field("sigma", Range::SPREAD, sigma))
            }
            Latency::Normal { mean, sd } => {
                field("mean", Range::POSITIVE_SECONDS, mean).and(field("sd", Range::SECONDS, sd))
            }
        }
    }

    /// One draw, in seconds (never negative).
    pub fn draw(&self, rng: &mut Rng) -> f64 {
        match *self {
            Latency::Constant { seconds } => seconds,
            Latency::Uniform { min, max } => min + (max - min) * rng.random::<f64>(),
            Latency::Exponential { mean } => Exp::new(1.0 / mean).expect("validated").sample(rng),
            Latency::Lognormal { median, sigma } => LogNormal::new(median.ln(), sigma).expect("validated").sample(rng),
            Latency::Normal { mean, sd } => loop {
                let v = mean + sd * rng.sample::<f64, _>(StandardNormal);
                if v >= 0.0 {
                    break v;
                }
            },
        }
    }

    /// A short human description, e.g. `lognormal(median 0.05 s, sigma 1)`.
    pub fn describe(&self) -> String {
        match *self {
            Latency::Constant { seconds } => format!("constant {seconds} s"),
            Latency::Uniform { min, max } => format!("uniform {min}..{max} s"),
            Latency::Exponential { mean } => format!("exponential(mean {mean} s)"),
            Latency::Lognormal { median, sigma } => format!("lognormal(median {median} s, sigma {sigma})"),
            Latency::Normal { mean, sd } => format!("normal(mean {mean} s, sd {sd}) truncated at 0"),
        }
    }
}

/// The network between the machines and the server.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkModel {
    /// One-way latency of an attempt that gets through.
    pub latency: Latency,
    /// Bytes per second; `None` = unlimited (no transfer time).
    pub bandwidth: Option<f64>,
    /// Probability that one attempt is lost, in [0, 1).
    pub loss: f64,
    /// Seconds before a lost attempt is retried (the retransmission timeout).
    pub retransmit_after: f64,
}

impl Default for NetworkModel {
    /// An ideal network: no latency, unlimited bandwidth, no loss.
    fn default() -> Self {
        NetworkModel { latency: Latency::Constant { seconds: 0.0 }, bandwidth: None, loss: 0.0, retransmit_after: 0.2 }
    }
}

/// How a message got through.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Seconds from send to arrival.
    pub seconds: f64,
    /// Attempts made (1 = no loss).
    pub attempts: u32,
}

impl NetworkModel {
    /// Checks every parameter with the shared range rules.
    pub fn validate(&self) -> Result<(), String> {
        self.latency.validate()?;
        if let Some(b) = self.bandwidth {
            field("bandwidth", Range::BANDWIDTH, b)?;
        }
        field("loss", Range::ProbabilityBelowOne, self.loss)?;
        field("retransmit_after", Range::SECONDS, self.retransmit_after)
    }

    /// The delay of one message of `bytes` bytes.
    pub fn deliver(&self, bytes: u64, rng: &mut Rng) -> Delivery {
        let mut seconds = 0.0;
        let mut attempts = 1;
        while attempts < MAX_ATTEMPTS && self.loss > 0.0 && rng.random::<f64>() < self.loss {
            seconds += self.retransmit_after;
            attempts += 1;
        }
        seconds += self.latency.draw(rng) + self.bandwidth.map_or(0.0, |b| bytes as f64 / b);
        Delivery { seconds, attempts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_draws_have_the_stated_location() {
        let mut rng = crate::numeric::rng::stream(1, &[]);
        let n = 200_000;
        let mean = |l: &Latency, rng: &mut Rng| (0..n).map(|_| l.draw(rng)).sum::<f64>() / n as f64;
        assert!((mean(&Latency::Constant { seconds: 0.3 }, &mut rng) - 0.3).abs() < 1e-9);
        assert!((mean(&Latency::Uniform { min: 0.1, max: 0.3 }, &mut rng) - 0.2).abs() < 0.002);
        assert!((mean(&Latency::Exponential { mean: 0.05 }, &mut rng) - 0.05).abs() < 0.001);
        let mut ln: Vec<f64> = (0..n).map(|_| Latency::Lognormal { median: 0.02, sigma: 1.0 }.draw(&mut rng)).collect();
        ln.sort_by(f64::total_cmp);
        assert!((ln[n / 2] - 0.02).abs() < 0.001);
        assert!((0..1000).all(|_| Latency::Normal { mean: 0.01, sd: 0.05 }.draw(&mut rng) >= 0.0));
    }

    #[test]
    fn loss_adds_timeouts_and_bandwidth_adds_transfer_time() {
        let net = NetworkModel {
            latency: Latency::Constant { seconds: 0.01 },
            bandwidth: Some(1e6),
            loss: 0.5,
            retransmit_after: 1.0,
        };
        let mut rng = crate::numeric::rng::stream(2, &[]);
        let d: Vec<Delivery> = (0..20_000).map(|_| net.deliver(500_000, &mut rng)).collect();
        for x in &d {
            assert!((x.seconds - (0.51 + (x.attempts - 1) as f64)).abs() < 1e-12);
        }
        let mean_attempts = d.iter().map(|x| x.attempts as f64).sum::<f64>() / d.len() as f64;
        assert!((mean_attempts - 2.0).abs() < 0.05, "geometric with p = 0.5: {mean_attempts}");
    }
}
