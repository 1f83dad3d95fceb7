//! Synthetic data drawn from a known MoE (docs/synthetic.md), by one of the authors' recipes
//! ([`Recipe`]): the benchmark (covariates from K equal-size clusters, z from the true gate), the
//! profiles (z first with fixed shares, the gate its exact posterior), or dmoe's own spread recipe.
//! Every row carries its true component z.

mod benchmark;
mod profiles;
mod recipe;

use ndarray::{Array1, Array2};
use rand::RngExt;
use rand_distr::StandardNormal;

pub use benchmark::EqualClusters;
pub use profiles::Classes;
pub use recipe::{Profile, Recipe};

use crate::numeric::linalg;
use crate::numeric::model::Moe;
use crate::numeric::range::{Range, RangeError, at_least};
use crate::numeric::rng::{self, Rng};

/// Spacing of the true experts' intercepts in the spread recipe.
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

/// The spread recipe's covariate distribution: K equal-weight clusters `N(mu_k, Sigma)`, then centred
/// and scaled by the mixture's exact (population) mean and standard deviation, so data sets of any
/// size come from one fixed distribution.
#[derive(Debug, Clone)]
pub struct CovariateMixture {
    means: Array2<f64>,
    noise: ClusterNoise,
    center: Array1<f64>,
    scale: Array1<f64>,
}

/// The clusters' covariance, `Sigma_ij = 4^-|i-j|` (unit diagonal, correlations shrinking by 4 per
/// step), held as its lower Cholesky factor L.
#[derive(Debug, Clone)]
struct ClusterNoise {
    chol: Array2<f64>,
}

impl ClusterNoise {
    fn new(d: usize) -> ClusterNoise {
        let sigma = Array2::from_shape_fn((d, d), |(i, j)| 4f64.powi(-(i.abs_diff(j) as i32)));
        ClusterNoise { chol: linalg::cholesky_lower(&sigma, 0.0).expect("4^-|i-j| is positive definite") }
    }

    /// Writes `mean + L e`, e ~ N(0, I) drawn from `rng` into `e`, into `row`.
    fn draw(
        &self,
        mean: ndarray::ArrayView1<f64>,
        row: &mut ndarray::ArrayViewMut1<f64>,
        e: &mut [f64],
        rng: &mut Rng,
    ) {
        e.iter_mut().for_each(|v| *v = rng.sample(StandardNormal));
        for (j, v) in row.iter_mut().enumerate() {
            let noise: f64 = (0..=j).map(|m| self.chol[[j, m]] * e[m]).sum();
            *v = mean[j] + noise;
        }
    }
}

impl CovariateMixture {
    /// The spread recipe's clusters: means drawn iid N(0, 1) per coordinate.
    pub fn spread(k: usize, d: usize, rng: &mut Rng) -> CovariateMixture {
        let means = Array2::from_shape_fn((k, d), |_| rng.sample::<f64, _>(StandardNormal));
        let center = means.mean_axis(ndarray::Axis(0)).expect("k >= 1");
        let spread = means.var_axis(ndarray::Axis(0), 0.0);
        let scale = (&spread + 1.0).mapv(f64::sqrt); // Sigma_jj = 1
        CovariateMixture { means, noise: ClusterNoise::new(d), center, scale }
    }

    /// n standardised covariate rows.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Array2<f64> {
        let (k, d) = self.means.dim();
        let mut x = Array2::<f64>::zeros((n, d));
        let mut e = vec![0.0; d];
        for mut row in x.outer_iter_mut() {
            let c = rng.random_range(0..k);
            self.noise.draw(self.means.row(c), &mut row, &mut e, rng);
            for ((v, m), s) in row.iter_mut().zip(&self.center).zip(&self.scale) {
                *v = (*v - m) / s;
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

/// Where a recipe's covariates come from.
#[derive(Debug, Clone)]
pub enum Covariates {
    /// The spread recipe's standardised mixture.
    Spread(CovariateMixture),
    /// The benchmark's equal-size clusters, z-scored per sample.
    Clusters(EqualClusters),
    /// The profiles' classes: z first, then x given z.
    Classes(Classes),
}

impl Covariates {
    /// n covariate rows (for the classes, of classes drawn with their shares).
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Array2<f64> {
        match self {
            Covariates::Spread(c) => c.sample(n, rng),
            Covariates::Clusters(c) => c.sample(n, rng),
            Covariates::Classes(c) => c.sample(n, rng).0,
        }
    }
}

impl SimData {
    /// The first `at` rows and the rest.
    pub fn split(self, at: usize) -> (SimData, SimData) {
        let (x, y) = (self.x.view().split_at(ndarray::Axis(0), at), self.y.view().split_at(ndarray::Axis(0), at));
        let (z0, z1) = self.z.split_at(at);
        (
            SimData { x: x.0.to_owned(), y: y.0.to_owned(), z: z0.to_vec() },
            SimData { x: x.1.to_owned(), y: y.1.to_owned(), z: z1.to_vec() },
        )
    }
}

/// A true model together with its covariate distribution: everything needed to draw data.
#[derive(Debug, Clone)]
pub struct Simulator {
    /// The true MoE.
    pub truth: Moe,
    /// Where x comes from.
    pub covariates: Covariates,
}

/// Most components of a random true model (as many as a `z` column may label).
pub const MAX_TRUE_COMPONENTS: usize = crate::data::MAX_LABELS;
/// Most covariates of a random true model.
pub const MAX_TRUE_COVARIATES: usize = 1000;

/// A true-model setting out of range: the setting (`k`, `d`, `separation`) and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("true model: `{0}`: {1}")]
pub struct TruthError(pub &'static str, pub RangeError);

/// Checks K, d and the separation of a spec.
fn check(spec: &TruthSpec) -> Result<(), TruthError> {
    at_least(spec.k, 1).map_err(|e| TruthError("k", e))?;
    at_least(spec.d, 1).map_err(|e| TruthError("d", e))?;
    for (name, value, most) in [("k", spec.k, MAX_TRUE_COMPONENTS), ("d", spec.d, MAX_TRUE_COVARIATES)] {
        if value > most {
            let expected = format!("a whole number <= {most}");
            return Err(TruthError(name, RangeError { expected, got: value.to_string() }));
        }
    }
    Range::SEPARATION.check(spec.separation).map_err(|e| TruthError("separation", e))?;
    Ok(())
}

/// A true model on features x1..xd with target y; an error when a variance is not a positive finite
/// number (an extreme separation).
fn named_truth(
    gate: Array2<f64>,
    experts: Array2<f64>,
    variances: Array1<f64>,
    separation: f64,
) -> Result<Moe, TruthError> {
    let features = (1..=experts.ncols() - 1).map(|j| format!("x{j}")).collect();
    let mut truth = Moe::new(features, gate, experts, variances).map_err(|e| {
        let expected = "a separation that keeps every variance a positive finite number".to_string();
        TruthError("separation", RangeError { expected, got: format!("{separation} ({e})") })
    })?;
    truth.target = Some("y".into());
    Ok(truth)
}

impl Simulator {
    /// A random true model and its covariates by `recipe`, all drawn from the stream `(seed, 0)`
    /// (the spread recipe: the truth from `(seed, 0)`, the clusters from `(seed, 1)`).
    pub fn draw(spec: &TruthSpec, recipe: &Recipe) -> Result<Simulator, TruthError> {
        check(spec)?;
        let rng = &mut rng::stream(spec.seed, &[0]);
        Ok(match recipe {
            Recipe::Spread => Simulator::random(spec)?,
            Recipe::Benchmark => {
                let (truth, clusters) = benchmark::balanced_truth(spec, rng)?;
                Simulator { truth, covariates: Covariates::Clusters(clusters) }
            }
            Recipe::Profiles { profile } | Recipe::Heterogeneous { profile, .. } => {
                let (truth, classes) = profiles::posterior_truth(spec, profile.shares(spec.k)?, rng)?;
                Simulator { truth, covariates: Covariates::Classes(classes) }
            }
        })
    }

    /// A random true model by the spread recipe: expert intercepts evenly spread
    /// (`4 (k - (K-1)/2)`), slopes integers uniform in [-10, 10], variances `3 / s^2`, gate intercepts 0
    /// and slopes `0.45 N(0, 1)` (last gate row 0). Features are named x1..xd.
    pub fn random(spec: &TruthSpec) -> Result<Simulator, TruthError> {
        check(spec)?;
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
        Ok(Simulator::from_truth(named_truth(gate, experts, variances, spec.separation)?, spec.seed))
    }

    /// A simulator for a given true model with the spread recipe's covariate clusters, drawn from
    /// the stream `(seed, 1)`.
    pub fn from_truth(truth: Moe, seed: u64) -> Simulator {
        let covariates = CovariateMixture::spread(truth.k(), truth.d(), &mut rng::stream(seed, &[1]));
        Simulator { truth, covariates: Covariates::Spread(covariates) }
    }

    /// A simulator for a given true model with the benchmark's equal-size clusters (integer means
    /// from the stream `(seed, 1)`).
    pub fn benchmark_with(truth: Moe, seed: u64) -> Simulator {
        let means = benchmark::integer_means(truth.k(), truth.d(), &mut rng::stream(seed, &[1]));
        Simulator { truth, covariates: Covariates::Clusters(EqualClusters::new(means)) }
    }

    /// Draws n rows. By the benchmark and spread recipes: x from the covariates, z from the true
    /// gate, y from the true expert z. By the profiles: z and x given z from the classes, then y.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> SimData {
        let (x, classes) = match &self.covariates {
            Covariates::Classes(classes) => {
                let (x, z) = classes.sample(n, rng);
                (x, Some(z))
            }
            other => (other.sample(n, rng), None),
        };
        let mu = self.truth.expert_means(x.view());
        let sd = self.truth.variances.mapv(f64::sqrt);
        let pi = classes.is_none().then(|| self.truth.log_gate(x.view()).mapv_into(f64::exp));
        let mut y = Array1::<f64>::zeros(n);
        let mut z = Vec::with_capacity(n);
        for i in 0..n {
            let c = match (&classes, &pi) {
                (Some(classes), _) => classes[i],
                (None, Some(pi)) => categorical(pi.row(i).as_slice().expect("standard layout"), rng.random()),
                (None, None) => unreachable!("a gate without classes"),
            };
            y[i] = mu[[i, c]] + sd[c] * rng.sample::<f64, _>(StandardNormal);
            z.push(c);
        }
        SimData { x, y, z }
    }
}

/// A draw from the categorical distribution `p` given a uniform `u`: the first index whose running sum
/// of `p` reaches `u` (the last on round-off).
fn categorical(p: &[f64], mut u: f64) -> usize {
    for (c, pc) in p.iter().enumerate() {
        u -= pc;
        if u <= 0.0 {
            return c;
        }
    }
    p.len() - 1
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

    /// Shares of each component among `z`.
    fn shares(z: &[usize], k: usize) -> Vec<f64> {
        let mut count = vec![0.0; k];
        z.iter().for_each(|&c| count[c] += 1.0);
        count.iter().map(|c| c / z.len() as f64).collect()
    }

    #[test]
    fn the_benchmark_recipe_follows_the_authors_script() {
        let spec = TruthSpec { k: 5, d: 20, separation: 1.0, seed: 7 };
        let sim = Simulator::draw(&spec, &Recipe::Benchmark).unwrap();
        let t = &sim.truth;
        assert!(t.experts.column(0).iter().chain(t.gate.column(0).iter()).all(|&v| v == 0.0), "zero intercepts");
        assert!(t.gate.row(4).iter().all(|&v| v == 0.0), "the last expert is the gate's reference");
        assert!(t.variances.iter().all(|&v| v == 3.0));
        for c in 1..5 {
            let slopes = |c: usize| t.experts.row(c).slice(ndarray::s![1..]).to_owned();
            assert!(slopes(c).iter().all(|&b| b == b.round() && b.abs() <= 10.0), "integer slopes in [-10, 10]");
            let diff = slopes(c) - slopes(c - 1);
            assert!(diff.dot(&diff).sqrt() >= benchmark::MIN_SLOPE_DISTANCE, "experts {c} and {} too close", c - 1);
        }
        let Covariates::Clusters(clusters) = &sim.covariates else { panic!("equal clusters") };
        let (x, cluster) = clusters.sample_with_clusters(10_003, &mut rng::stream(1, &[]));
        let sizes: Vec<usize> = (0..5).map(|c| cluster.iter().filter(|&&v| v == c).count()).collect();
        assert_eq!(sizes, vec![2001, 2001, 2001, 2000, 2000], "exactly equal clusters, the remainder first");
        assert!(cluster.windows(2).any(|w| w[1] < w[0]), "shuffled");
        let (mean, sd) = (x.mean_axis(ndarray::Axis(0)).unwrap(), x.std_axis(ndarray::Axis(0), 0.0));
        assert!(
            mean.iter().all(|m| m.abs() < 1e-12) && sd.iter().all(|s| (s - 1.0).abs() < 1e-12),
            "z-scored by the sample"
        );
        // Balanced: every share within 15-25 % (checked on rows the draw did not see).
        let data = sim.sample(100_000, &mut rng::stream(2, &[]));
        for (c, p) in shares(&data.z, 5).iter().enumerate() {
            assert!((0.145..=0.255).contains(p), "component {c}: share {p}");
        }
    }

    #[test]
    fn the_profiles_recipe_draws_its_shares_and_its_gate_is_the_bayes_posterior() {
        let spec = TruthSpec { k: 5, d: 4, separation: 1.0, seed: 3 };
        for profile in [Profile::Balanced, Profile::Moderate, Profile::Severe] {
            let sim = Simulator::draw(&spec, &Recipe::Profiles { profile }).unwrap();
            let Covariates::Classes(classes) = &sim.covariates else { panic!("classes") };
            let want = profile.shares(5).unwrap();
            assert_eq!(classes.shares, want);
            let n = 200_000;
            let data = sim.sample(n, &mut rng::stream(4, &[]));
            for (c, (got, p)) in shares(&data.z, 5).iter().zip(&want).enumerate() {
                let sd = (p * (1.0 - p) / n as f64).sqrt();
                assert!((got - p).abs() < 4.0 * sd, "{profile:?}, component {c}: {got} vs {p}");
            }
            // x given z is N(0.28 mu_z, I): the class means are 0.28 times integers in [-2, 2].
            for c in 0..5 {
                let m = classes.means.row(c);
                assert!(m.iter().all(|v| (v / profiles::MEAN_SCALE).round() == v / profiles::MEAN_SCALE));
                let rows: Vec<usize> = (0..n).filter(|&i| data.z[i] == c).collect();
                let got = data.x.select(ndarray::Axis(0), &rows).mean_axis(ndarray::Axis(0)).unwrap();
                let tol = 5.0 / (rows.len() as f64).sqrt();
                assert!(got.iter().zip(m).all(|(a, b)| (a - b).abs() < tol), "{profile:?}: mean of class {c}");
            }
            // The true gate is P(z = k | x) = pi_k N(x; m_k, I) / sum_j pi_j N(x; m_j, I), computed directly.
            let x = data.x.slice(ndarray::s![..500, ..]);
            let gate = sim.truth.log_gate(x).mapv(f64::exp);
            for (i, row) in x.outer_iter().enumerate() {
                let dens: Vec<f64> = (0..5)
                    .map(|c| {
                        let r = &row - &classes.means.row(c);
                        want[c] * (-0.5 * r.dot(&r)).exp()
                    })
                    .collect();
                let total: f64 = dens.iter().sum();
                for c in 0..5 {
                    assert!((gate[[i, c]] - dens[c] / total).abs() < 1e-12, "{profile:?}, row {i}, component {c}");
                }
            }
            assert!(sim.truth.experts.column(0).iter().all(|&v| v == 0.0), "zero expert intercepts");
        }
        assert!(Simulator::draw(&TruthSpec { k: 3, ..spec }, &Recipe::Profiles { profile: Profile::Severe }).is_err());
    }
}
