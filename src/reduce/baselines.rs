//! The estimators the paper compares the reduction with (docs/reduction.md, "Baselines"), except the global EM fit
//! (which is `em::fit` on all rows): the median local model, the label-aligned and naive averages, and
//! the pooled M*K mixture.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::numeric::linalg::log_sum_exp_rows;
use crate::numeric::matching::min_cost_assignment;
use crate::numeric::model::Moe;
use crate::numeric::transport::{LargeModel, PoolError, summed_kl_costs};

/// Index of the median local model: the one with the smallest transport divergence from the large
/// model, `R(f_W, f_m) = sum_m' lambda_m' R(f_m', f_m)`, i.e. the smallest size-weighted sum of
/// divergences from the other local models (the objective is linear in the source mixture).
pub fn median_index(large: &LargeModel, locals: &[&Moe]) -> usize {
    (0..locals.len())
        .map(|m| (m, large.divergence_to(locals[m])))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(m, _)| m)
        .expect("at least one local model")
}

fn check_same_k(locals: &[&Moe], sizes: &[usize]) -> Result<usize, PoolError> {
    let first = locals.first().ok_or(PoolError::NoModels)?;
    if sizes.len() != locals.len() {
        return Err(PoolError::Sizes(format!("{} sizes for {} local models", sizes.len(), locals.len())));
    }
    if let Some(m) = locals.iter().position(|m| m.k() != first.k()) {
        return Err(PoolError::Sizes(format!(
            "averaging needs the same K everywhere: local model {} has K = {}, local model 1 has K = {}",
            m + 1,
            locals[m].k(),
            first.k()
        )));
    }
    Ok(first.k())
}

/// Size-weighted coordinate-wise mean of local models, each first relabelled by `perms[m]`
/// (gates re-referenced to the new last component before averaging).
fn weighted_mean(locals: &[&Moe], sizes: &[usize], perms: &[Vec<usize>]) -> Moe {
    let total: usize = sizes.iter().sum();
    let first = locals[0];
    let mut gate = Array2::<f64>::zeros(first.gate.dim());
    let mut experts = Array2::<f64>::zeros(first.experts.dim());
    let mut variances = Array1::<f64>::zeros(first.k());
    for ((m, &n), perm) in locals.iter().zip(sizes).zip(perms) {
        let w = n as f64 / total as f64;
        let p = m.permuted(perm);
        gate.scaled_add(w, &p.gate);
        experts.scaled_add(w, &p.experts);
        variances.scaled_add(w, &p.variances);
    }
    let mut out = Moe::new(first.features.clone(), gate, experts, variances).expect("a mean of valid models is valid");
    out.target = first.target.clone();
    out
}

/// The label-aligned average: every local model relabelled to match the reference (the largest
/// shard) by the Hungarian assignment on the summed KL cost between experts over the supporting
/// points `xt` (with intercept), then the size-weighted coordinate-wise mean.
pub fn aligned_average(locals: &[&Moe], sizes: &[usize], xt: ArrayView2<f64>) -> Result<Moe, PoolError> {
    check_same_k(locals, sizes)?;
    let reference = (0..locals.len()).max_by_key(|&m| (sizes[m], std::cmp::Reverse(m))).expect("non-empty");
    let perms: Vec<Vec<usize>> =
        summed_kl_costs(locals, locals[reference], xt).iter().map(min_cost_assignment).collect();
    Ok(weighted_mean(locals, sizes, &perms))
}

/// The naive average without alignment: the classic failure, kept to show why alignment matters.
pub fn naive_average(locals: &[&Moe], sizes: &[usize]) -> Result<Moe, PoolError> {
    let k = check_same_k(locals, sizes)?;
    let identity: Vec<usize> = (0..k).collect();
    Ok(weighted_mean(locals, sizes, &vec![identity; locals.len()]))
}

/// The pooled mixture `f_W(y|x) = sum_m lambda_m f_m(y|x)`: M*K experts, not a softmax-gated
/// K-component model, so a reference for fit rather than an estimator of the same kind.
#[derive(Debug, Clone)]
pub struct PooledMixture {
    /// The local models.
    pub models: Vec<Moe>,
    /// `lambda_m = N_m / N`.
    pub lambdas: Vec<f64>,
}

impl PooledMixture {
    /// Pools local models with their shard sizes.
    pub fn new(locals: &[&Moe], sizes: &[usize]) -> Result<PooledMixture, PoolError> {
        check_same_k(locals, sizes)?;
        let total: usize = sizes.iter().sum();
        Ok(PooledMixture {
            models: locals.iter().map(|m| (*m).clone()).collect(),
            lambdas: sizes.iter().map(|&n| n as f64 / total as f64).collect(),
        })
    }

    /// Total log-likelihood `sum_i log sum_m lambda_m f_m(y_i|x_i)`.
    pub fn loglik(&self, x: ArrayView2<f64>, y: ArrayView1<f64>) -> f64 {
        let mut per = Array2::<f64>::zeros((y.len(), self.models.len()));
        for (m, (model, lam)) in self.models.iter().zip(&self.lambdas).enumerate() {
            per.column_mut(m).assign(&(model.log_density(x, y) + lam.ln()));
        }
        log_sum_exp_rows(per.view()).sum()
    }

    /// Prediction `sum_m lambda_m yhat_m(x)`.
    pub fn predict(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let mut out = Array1::<f64>::zeros(x.nrows());
        for (model, lam) in self.models.iter().zip(&self.lambdas) {
            out.scaled_add(*lam, &model.predict(x));
        }
        out
    }
}
