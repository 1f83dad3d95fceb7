//! The authors' "official" recipe (docs/synthetic.md): the true component first, with fixed shares,
//! then `x | z ~ N(0.28 mu_z, I)`; the true gate is the exact posterior of z given x.

use ndarray::{Array1, Array2};
use rand::RngExt;
use rand_distr::StandardNormal;

use super::benchmark::{distinct_slopes, integer_means};
use super::{AUTHORS_VARIANCE, TruthError, TruthSpec};
use crate::numeric::model::Moe;
use crate::numeric::rng::Rng;

/// The class means are the integer cluster means times this.
pub const MEAN_SCALE: f64 = 0.28;

/// Classes with shares `pi_k` and means `m_k` (K x d); x given the class is `N(m_k, I)`.
#[derive(Debug, Clone)]
pub struct Classes {
    /// Class means m_k, K x d.
    pub means: Array2<f64>,
    /// Shares pi_k.
    pub shares: Vec<f64>,
}

impl Classes {
    /// n classes drawn iid from the shares, and each row's covariates given its class.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> (Array2<f64>, Vec<usize>) {
        let d = self.means.ncols();
        let mut z = Vec::with_capacity(n);
        let mut x = Array2::<f64>::zeros((n, d));
        for mut row in x.outer_iter_mut() {
            let c = super::categorical(&self.shares, rng.random());
            for (v, m) in row.iter_mut().zip(self.means.row(c)) {
                *v = m + rng.sample::<f64, _>(StandardNormal);
            }
            z.push(c);
        }
        (x, z)
    }

    /// The exact posterior `P(z = k | x)` as a gate (last row the reference): slopes `m_k - m_K`,
    /// intercepts `-|m_k|^2 / 2 + ln pi_k - (-|m_K|^2 / 2 + ln pi_K)`. Shares of 0 are not allowed.
    pub fn posterior_gate(&self) -> Array2<f64> {
        let (k, d) = self.means.dim();
        let last = self.means.row(k - 1);
        let half_sq = |m: ndarray::ArrayView1<f64>| 0.5 * m.dot(&m);
        let mut gate = Array2::<f64>::zeros((k, d + 1));
        for c in 0..k {
            let m = self.means.row(c);
            gate[[c, 0]] = -half_sq(m) + self.shares[c].ln() + half_sq(last) - self.shares[k - 1].ln();
            gate.row_mut(c).slice_mut(ndarray::s![1..]).assign(&(&m - &last));
        }
        gate
    }
}

/// The true model and classes: the benchmark's [`distinct_slopes`] with zero intercepts and variances
/// `3 / s^2`, class means `0.28` times [`integer_means`], and the posterior gate.
pub fn posterior_truth(spec: &TruthSpec, shares: Vec<f64>, rng: &mut Rng) -> Result<(Moe, Classes), TruthError> {
    let (k, d) = (spec.k, spec.d);
    let mut experts = Array2::<f64>::zeros((k, d + 1));
    experts.slice_mut(ndarray::s![.., 1..]).assign(&distinct_slopes(k, d, rng));
    let classes = Classes { means: integer_means(k, d, rng) * MEAN_SCALE, shares };
    let variances = Array1::from_elem(k, AUTHORS_VARIANCE / (spec.separation * spec.separation));
    let truth = super::named_truth(classes.posterior_gate(), experts, variances, spec.separation)?;
    Ok((truth, classes))
}
