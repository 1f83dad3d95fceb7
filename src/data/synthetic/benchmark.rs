//! The authors' Figure 5 recipe (docs/synthetic.md): a truth with zero intercepts and distinct integer
//! slopes, drawn until its component shares are balanced, and covariates from K clusters of exactly
//! equal size, z-scored with the sample's own moments.

use ndarray::{Array1, Array2, Axis};
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_distr::StandardNormal;

use super::{AUTHORS_VARIANCE, GATE_SLOPE_SCALE, TruthError, TruthSpec};
use crate::numeric::model::Moe;
use crate::numeric::rng::Rng;

/// Consecutive experts' slope vectors are redrawn while closer than this (Euclidean norm).
pub const MIN_SLOPE_DISTANCE: f64 = 2.0;
/// A truth is balanced when every component's share is within this factor of 1/K, above and below
/// (15 % to 25 % at K = 5).
pub const BALANCE_TOLERANCE: f64 = 0.25;
/// Rows on which the shares of a candidate truth are estimated (mean gate probability).
pub const BALANCE_ROWS: usize = 5_000;
/// Candidate truths drawn at most; when none is balanced (large K, where a random gate rarely is),
/// the most balanced of them is kept.
pub const BALANCE_ATTEMPTS: usize = 200;

/// Expert slopes: integers uniform in [-10, 10], each expert's vector redrawn while it is closer than
/// [`MIN_SLOPE_DISTANCE`] to the previous expert's. Returns K x d.
pub fn distinct_slopes(k: usize, d: usize, rng: &mut Rng) -> Array2<f64> {
    let mut slopes = Array2::<f64>::zeros((k, d));
    for c in 0..k {
        loop {
            slopes.row_mut(c).mapv_inplace(|_| rng.random_range(-10i32..=10) as f64);
            let far = c == 0 || {
                let diff = &slopes.row(c) - &slopes.row(c - 1);
                diff.dot(&diff).sqrt() >= MIN_SLOPE_DISTANCE
            };
            if far {
                break;
            }
        }
    }
    slopes
}

/// K cluster means, integers uniform in [-2, 2] per coordinate. Returns K x d.
pub fn integer_means(k: usize, d: usize, rng: &mut Rng) -> Array2<f64> {
    Array2::from_shape_fn((k, d), |_| rng.random_range(-2i32..=2) as f64)
}

/// The benchmark's covariates: K clusters `N(mu_c, Sigma)`, `Sigma_ij = 4^-|i-j|`, of exactly equal
/// size (sizes differ by at most one row when K does not divide n), shuffled, then z-scored with the
/// sample's mean and standard deviation.
#[derive(Debug, Clone)]
pub struct EqualClusters {
    means: Array2<f64>,
    noise: super::ClusterNoise,
}

impl EqualClusters {
    /// Clusters with the given means (K x d).
    pub fn new(means: Array2<f64>) -> EqualClusters {
        let noise = super::ClusterNoise::new(means.ncols());
        EqualClusters { means, noise }
    }

    /// n rows: cluster c gets `n / K` rows (the first `n mod K` clusters one more), in shuffled order,
    /// each column then centred and scaled by its sample mean and standard deviation.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Array2<f64> {
        self.sample_with_clusters(n, rng).0
    }

    /// [`EqualClusters::sample`], with the cluster of every row.
    pub fn sample_with_clusters(&self, n: usize, rng: &mut Rng) -> (Array2<f64>, Vec<usize>) {
        let (k, d) = self.means.dim();
        let mut cluster: Vec<usize> = (0..n).map(|i| i % k).collect();
        cluster.shuffle(rng);
        let mut x = Array2::<f64>::zeros((n, d));
        let mut e = vec![0.0; d];
        for (mut row, &c) in x.outer_iter_mut().zip(&cluster) {
            self.noise.draw(self.means.row(c), &mut row, &mut e, rng);
        }
        z_score(&mut x);
        (x, cluster)
    }
}

/// Centres and scales every column by its sample mean and standard deviation (a column that does not
/// vary is only centred).
fn z_score(x: &mut Array2<f64>) {
    if x.nrows() == 0 {
        return;
    }
    let mean = x.mean_axis(Axis(0)).expect("rows");
    let sd = x.var_axis(Axis(0), 0.0).mapv(f64::sqrt);
    for mut row in x.outer_iter_mut() {
        for ((v, m), s) in row.iter_mut().zip(&mean).zip(&sd) {
            *v = if *s > 0.0 { (*v - m) / s } else { *v - m };
        }
    }
}

/// The benchmark's true model and covariate clusters: zero intercepts, [`distinct_slopes`], variances
/// `3 / s^2`, gate intercepts 0 and slopes `0.45 N(0, 1)` (last row 0), cluster means
/// [`integer_means`]; all redrawn (from the same stream) until every component's share, the mean
/// true gate probability over [`BALANCE_ROWS`] rows, lies within `(1 +- BALANCE_TOLERANCE) / K`
/// (15 % to 25 % at K = 5), or, after [`BALANCE_ATTEMPTS`] draws, the one whose largest relative
/// departure `max_k |K share_k - 1|` is smallest.
pub fn balanced_truth(spec: &TruthSpec, rng: &mut Rng) -> Result<(Moe, EqualClusters), TruthError> {
    let (k, d) = (spec.k, spec.d);
    let variance = AUTHORS_VARIANCE / (spec.separation * spec.separation);
    let mut best: Option<(f64, Moe, EqualClusters)> = None;
    for _ in 0..BALANCE_ATTEMPTS {
        let mut experts = Array2::<f64>::zeros((k, d + 1));
        experts.slice_mut(ndarray::s![.., 1..]).assign(&distinct_slopes(k, d, rng));
        let mut gate = Array2::<f64>::zeros((k, d + 1));
        for mut row in gate.outer_iter_mut().take(k - 1) {
            row.slice_mut(ndarray::s![1..]).mapv_inplace(|_| GATE_SLOPE_SCALE * rng.sample::<f64, _>(StandardNormal));
        }
        let clusters = EqualClusters::new(integer_means(k, d, rng));
        let truth = super::named_truth(gate, experts, Array1::from_elem(k, variance), spec.separation)?;
        let x = clusters.sample(BALANCE_ROWS, rng);
        let shares = truth.log_gate(x.view()).mapv_into(f64::exp).mean_axis(Axis(0)).expect("rows");
        let departure = shares.iter().map(|&p| (k as f64 * p - 1.0).abs()).fold(0.0, f64::max);
        if departure <= BALANCE_TOLERANCE {
            return Ok((truth, clusters));
        }
        if best.as_ref().is_none_or(|(b, _, _)| departure < *b) {
            best = Some((departure, truth, clusters));
        }
    }
    let (_, truth, clusters) = best.expect("at least one draw");
    Ok((truth, clusters))
}
