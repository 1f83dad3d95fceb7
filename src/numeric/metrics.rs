//! Accuracy metrics of the paper (docs/metrics.md). Each function's doc gives its formula.

use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::numeric::matching::{align, min_cost_assignment};
use crate::numeric::model::Moe;
use crate::numeric::transport::LargeModel;

/// Relative prediction error `RPE = sum_i (y_i - yhat_i)^2 / sum_i y_i^2`.
pub fn rpe(y: ArrayView1<f64>, yhat: ArrayView1<f64>) -> f64 {
    let num: f64 = y.iter().zip(yhat.iter()).map(|(a, b)| (a - b) * (a - b)).sum();
    num / y.iter().map(|a| a * a).sum::<f64>()
}

/// Pearson correlation `cov(y, yhat) / (sd(y) sd(yhat))`.
pub fn correlation(y: ArrayView1<f64>, yhat: ArrayView1<f64>) -> f64 {
    let n = y.len() as f64;
    let (my, mh) = (y.sum() / n, yhat.sum() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in y.iter().zip(yhat.iter()) {
        sxy += (a - my) * (b - mh);
        sxx += (a - my) * (a - my);
        syy += (b - mh) * (b - mh);
    }
    sxy / (sxx * syy).sqrt()
}

/// Parameter MSE against the truth: `mean_j (theta_hat_j - theta_j)^2` over every free parameter
/// ([`Moe::param_vector`]: gates re-referenced to the last component, experts, variances), after
/// relabelling the estimate to best match the truth.
pub fn param_mse(estimate: &Moe, truth: &Moe) -> f64 {
    let a = align(estimate, truth).param_vector();
    let b = truth.param_vector();
    a.iter().zip(b.iter()).map(|(u, v)| (u - v) * (u - v)).sum::<f64>() / a.len() as f64
}

/// Transport divergence from an estimate to the truth at covariates `x` (S x d):
/// `(1/S) sum_s sum_k pi^est_k(x_s) min_j c(est_k -> truth_j; x_s)`, the reduction's objective with the
/// estimate as the source and the true experts as the target.
pub fn transport_to_truth(estimate: &Moe, truth: &Moe, x: ArrayView2<f64>) -> f64 {
    let large = LargeModel::new(&[estimate], &[1], x).expect("one model with its own features");
    large.divergence_to(truth)
}

fn contingency(a: &[usize], b: &[usize]) -> Array2<f64> {
    assert_eq!(a.len(), b.len(), "two labellings of the same rows");
    let (ka, kb) = (a.iter().max().map_or(0, |v| v + 1), b.iter().max().map_or(0, |v| v + 1));
    let mut t = Array2::<f64>::zeros((ka, kb));
    for (&u, &v) in a.iter().zip(b) {
        t[[u, v]] += 1.0;
    }
    t
}

/// Adjusted Rand index (Hubert & Arabie 1985) of two labellings:
/// `(sum_ij C(n_ij,2) - E) / ((sum_i C(a_i,2) + sum_j C(b_j,2)) / 2 - E)`,
/// `E = sum_i C(a_i,2) sum_j C(b_j,2) / C(n,2)`, with `n_ij` the contingency table. 1 = identical
/// partitions up to relabelling, about 0 = chance.
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    let t = contingency(a, b);
    let c2 = |x: f64| x * (x - 1.0) / 2.0;
    let sum_ij: f64 = t.iter().map(|&v| c2(v)).sum();
    let sum_a: f64 = t.rows().into_iter().map(|r| c2(r.sum())).sum();
    let sum_b: f64 = t.columns().into_iter().map(|c| c2(c.sum())).sum();
    let expected = sum_a * sum_b / c2(a.len() as f64);
    let max = (sum_a + sum_b) / 2.0;
    if max == expected {
        return 1.0; // both partitions trivial (one cluster each, or all singletons)
    }
    (sum_ij - expected) / (max - expected)
}

/// Clustering error: the fraction of rows whose predicted label differs from the true one under the
/// best one-to-one relabelling (Hungarian assignment on the contingency table).
pub fn clustering_error(truth: &[usize], predicted: &[usize]) -> f64 {
    let t = contingency(truth, predicted);
    let k = t.nrows().max(t.ncols());
    let mut cost = Array2::<f64>::zeros((k, k));
    for ((i, j), &v) in t.indexed_iter() {
        cost[[i, j]] = -v;
    }
    let best = min_cost_assignment(&cost);
    let agree: f64 = best.iter().enumerate().map(|(i, &j)| -cost[[i, j]]).sum();
    1.0 - agree / truth.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ari_and_clustering_error_on_known_cases() {
        let a = [0, 0, 1, 1, 2, 2];
        assert!((adjusted_rand_index(&a, &[2, 2, 0, 0, 1, 1]) - 1.0).abs() < 1e-12);
        assert_eq!(clustering_error(&a, &[2, 2, 0, 0, 1, 1]), 0.0);
        assert!((clustering_error(&a, &[2, 2, 0, 0, 1, 0]) - 1.0 / 6.0).abs() < 1e-12);
        // A worked example: contingency [[2,1],[0,3]] -> ARI = (4 - 21/15*... ) computed by hand:
        // sum_ij = 1 + 0 + 0 + 3 = 4, sum_a = 3 + 3 = 6, sum_b = 1 + 6 = 7, E = 42/15 = 2.8,
        // max = 6.5, ARI = 1.2 / 3.7.
        let ari = adjusted_rand_index(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 1, 1, 1]);
        assert!((ari - 1.2 / 3.7).abs() < 1e-12, "{ari}");
    }

    #[test]
    fn rpe_and_correlation_on_known_cases() {
        let y = array![1.0, 2.0, 3.0];
        assert_eq!(rpe(y.view(), y.view()), 0.0);
        assert!((rpe(y.view(), array![0.0, 0.0, 0.0].view()) - 1.0).abs() < 1e-15);
        assert!((correlation(y.view(), array![2.0, 4.0, 6.0].view()) - 1.0).abs() < 1e-15);
        assert!((correlation(y.view(), array![3.0, 2.0, 1.0].view()) + 1.0).abs() < 1e-15);
    }
}
