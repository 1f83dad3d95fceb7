//! Synthetic data as the authors made it (docs/synthetic.md): covariates from a mixture of K
//! equal-size Gaussian clusters with AR-type covariance `Sigma_ij = 4^-|i-j|`, z-scored; the true
//! component `z ~ Categorical(pi(x))`; `y ~ N(b_z . [1,x], s2_z)`.

use ndarray::{Array1, Array2};
use rand::RngExt;
use rand_distr::StandardNormal;

use crate::numeric::linalg;
use crate::numeric::model::Moe;
use crate::numeric::range::{Range, RangeError, at_least};
use crate::numeric::rng::{self, Rng};

/// Spacing of the true experts' intercepts.
const INTERCEPT_SPACING: f64 = 4.0;
/// The authors' expert noise variance, at separation 1.
const AUTHORS_VARIANCE: f64 = 3.0;
/// The authors' scale of the gate slopes.
const GATE_SLOPE_SCALE: f64 = 0.45;

/// What a random true model is drawn from.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthSpec {
    /// Components K >= 1.
    pub k: usize,
    /// Covariates d >= 1.
    pub d: usize,
    /// Separation s > 0: the experts' noise variance is `3 / s^2` (s = 1 is the authors' setting);
    /// larger s means better separated experts.
    pub separation: f64,
    /// Seed of the truth and of the covariate clusters.
    pub seed: u64,
}

/// The covariate distribution: K equal-weight clusters `N(mu_k, Sigma)`, then centred and scaled by
/// the mixture's exact (population) mean and standard deviation, so data sets of any size come from
/// one fixed distribution.
#[derive(Debug, Clone)]
pub struct CovariateMixture {
    means: Array2<f64>,
    chol: Array2<f64>,
    center: Array1<f64>,
    scale: Array1<f64>,
}

impl CovariateMixture {
    /// The authors' recipe with cluster means drawn iid N(0, 1) per coordinate.
    pub fn authors(k: usize, d: usize, rng: &mut Rng) -> CovariateMixture {
        let means = Array2::from_shape_fn((k, d), |_| rng.sample::<f64, _>(StandardNormal));
        let sigma = Array2::from_shape_fn((d, d), |(i, j)| 4f64.powi(-(i.abs_diff(j) as i32)));
        let chol = linalg::cholesky_lower(&sigma, 0.0).expect("4^-|i-j| is positive definite");
        let center = means.mean_axis(ndarray::Axis(0)).expect("k >= 1");
        let spread = means.var_axis(ndarray::Axis(0), 0.0);
        let scale = (&spread + 1.0).mapv(f64::sqrt); // Sigma_jj = 1
        CovariateMixture { means, chol, center, scale }
    }

    /// n standardised covariate rows.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Array2<f64> {
        let (k, d) = self.means.dim();
        let mut x = Array2::<f64>::zeros((n, d));
        let mut e = vec![0.0; d];
        for mut row in x.outer_iter_mut() {
            let c = rng.random_range(0..k);
            e.iter_mut().for_each(|v| *v = rng.sample(StandardNormal));
            for j in 0..d {
                let noise: f64 = (0..=j).map(|m| self.chol[[j, m]] * e[m]).sum();
                row[j] = (self.means[[c, j]] + noise - self.center[j]) / self.scale[j];
            }
        }
        x
    }
}

/// A data set drawn from a known model.
#[derive(Debug, Clone)]
pub struct SimData {
    /// Covariates, n x d.
    pub x: Array2<f64>,
    /// Responses.
    pub y: Array1<f64>,
    /// True component of each row, 0-based.
    pub z: Vec<usize>,
}

/// A true model together with its covariate distribution: everything needed to draw data.
#[derive(Debug, Clone)]
pub struct Simulator {
    /// The true MoE.
    pub truth: Moe,
    /// Where x comes from.
    pub covariates: CovariateMixture,
}

/// Most components of a random true model (as many as a `z` column may label).
pub const MAX_TRUE_COMPONENTS: usize = crate::data::MAX_LABELS;
/// Most covariates of a random true model.
pub const MAX_TRUE_COVARIATES: usize = 1000;

/// A true-model setting out of range: the setting (`k`, `d`, `separation`) and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("true model: `{0}`: {1}")]
pub struct TruthError(pub &'static str, pub RangeError);

impl Simulator {
    /// A random true model in the authors' style: expert intercepts evenly spread
    /// (`4 (k - (K-1)/2)`), slopes integers uniform in [-10, 10], variances `3 / s^2`, gate intercepts 0
    /// and slopes `0.45 N(0, 1)` (last gate row 0). Features are named x1..xd.
    pub fn random(spec: &TruthSpec) -> Result<Simulator, TruthError> {
        at_least(spec.k, 1).map_err(|e| TruthError("k", e))?;
        at_least(spec.d, 1).map_err(|e| TruthError("d", e))?;
        for (name, value, most) in [("k", spec.k, MAX_TRUE_COMPONENTS), ("d", spec.d, MAX_TRUE_COVARIATES)] {
            if value > most {
                let expected = format!("a whole number <= {most}");
                return Err(TruthError(name, RangeError { expected, got: value.to_string() }));
            }
        }
        Range::SEPARATION.check(spec.separation).map_err(|e| TruthError("separation", e))?;
        let (k, d) = (spec.k, spec.d);
        let mut rng = rng::stream(spec.seed, &[0]);
        let mut experts = Array2::<f64>::zeros((k, d + 1));
        for (c, mut row) in experts.outer_iter_mut().enumerate() {
            row[0] = INTERCEPT_SPACING * (c as f64 - (k as f64 - 1.0) / 2.0);
            for j in 1..=d {
                row[j] = rng.random_range(-10i32..=10) as f64;
            }
        }
        let mut gate = Array2::<f64>::zeros((k, d + 1));
        for mut row in gate.outer_iter_mut().take(k - 1) {
            for j in 1..=d {
                row[j] = GATE_SLOPE_SCALE * rng.sample::<f64, _>(StandardNormal);
            }
        }
        let variances = Array1::from_elem(k, AUTHORS_VARIANCE / (spec.separation * spec.separation));
        let features = (1..=d).map(|j| format!("x{j}")).collect();
        let mut truth = Moe::new(features, gate, experts, variances).map_err(|e| {
            let expected = "a separation that keeps every variance a positive finite number".to_string();
            TruthError("separation", RangeError { expected, got: format!("{} ({e})", spec.separation) })
        })?;
        truth.target = Some("y".into());
        Ok(Simulator::from_truth(truth, spec.seed))
    }

    /// A simulator for a given true model, with covariate clusters drawn from `seed`.
    pub fn from_truth(truth: Moe, seed: u64) -> Simulator {
        let covariates = CovariateMixture::authors(truth.k(), truth.d(), &mut rng::stream(seed, &[1]));
        Simulator { truth, covariates }
    }

    /// Draws n rows: x from the covariate mixture, z from the true gate, y from the true expert z.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> SimData {
        let x = self.covariates.sample(n, rng);
        let pi = self.truth.log_gate(x.view()).mapv_into(f64::exp);
        let mu = self.truth.expert_means(x.view());
        let sd = self.truth.variances.mapv(f64::sqrt);
        let mut y = Array1::<f64>::zeros(n);
        let mut z = Vec::with_capacity(n);
        for i in 0..n {
            let mut u: f64 = rng.random();
            let mut c = self.truth.k() - 1;
            for (j, &p) in pi.row(i).iter().enumerate() {
                u -= p;
                if u <= 0.0 {
                    c = j;
                    break;
                }
            }
            y[i] = mu[[i, c]] + sd[c] * rng.sample::<f64, _>(StandardNormal);
            z.push(c);
        }
        SimData { x, y, z }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covariates_are_standardised_and_correlated() {
        let sim = Simulator::random(&TruthSpec { k: 3, d: 3, separation: 1.0, seed: 5 }).unwrap();
        let x = sim.covariates.sample(200_000, &mut rng::stream(1, &[]));
        let m = x.mean_axis(ndarray::Axis(0)).unwrap();
        let v = x.var_axis(ndarray::Axis(0), 0.0);
        for j in 0..3 {
            assert!(m[j].abs() < 0.01, "mean {}", m[j]);
            assert!((v[j] - 1.0).abs() < 0.02, "variance {}", v[j]);
        }
    }

    #[test]
    fn labels_follow_the_gate() {
        let sim = Simulator::random(&TruthSpec { k: 3, d: 2, separation: 1.0, seed: 9 }).unwrap();
        let data = sim.sample(100_000, &mut rng::stream(2, &[]));
        let pi = sim.truth.log_gate(data.x.view()).mapv_into(f64::exp);
        for c in 0..3 {
            let observed = data.z.iter().filter(|&&z| z == c).count() as f64 / 1e5;
            let expected = pi.column(c).mean().unwrap();
            assert!((observed - expected).abs() < 0.01, "component {c}: {observed} vs {expected}");
        }
    }

    #[test]
    fn same_seed_same_data() {
        let spec = TruthSpec { k: 2, d: 2, separation: 1.0, seed: 4 };
        let a = Simulator::random(&spec).unwrap().sample(50, &mut rng::stream(1, &[]));
        let b = Simulator::random(&spec).unwrap().sample(50, &mut rng::stream(1, &[]));
        assert_eq!(a.y, b.y);
        assert_eq!(a.z, b.z);
    }
}
