//! Standard errors of a fitted MoE from the empirical Fisher information (outer product of the
//! per-row score vectors, "OPG"): `I = sum_i s_i s_i'`, `SE = sqrt(diag(I^-1))`, in the order of
//! [`Moe::param_vector`]. Asymptotically equal to the observed-information SE at the MLE of a
//! correctly specified model; used to size parameter tolerances in recovery tests and printed by
//! `dmoe fit --stderr`.
//!
//! Per-row scores, with `tau_ik` the posterior, `pi_ik` the gate and `r_ik = y_i - b_k . xt_i`:
//! gate row l < K: `(tau_il - pi_il) xt_i`; expert k: `tau_ik r_ik / s2_k xt_i`;
//! variance k: `tau_ik (r_ik^2 - s2_k) / (2 s2_k^2)`.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, s};

use crate::numeric::linalg::{spd_solve, with_intercept};
use crate::numeric::model::Moe;

/// Rows of scores accumulated at a time (bounds memory for large n).
const BLOCK: usize = 4096;

/// Standard errors of every free parameter, in [`Moe::param_vector`] order. `None` when the
/// information matrix is singular (e.g. a component with no data).
pub fn standard_errors(model: &Moe, x: ArrayView2<f64>, y: ArrayView1<f64>) -> Option<Array1<f64>> {
    let (k, p) = (model.k(), model.d() + 1);
    let np = model.n_params();
    let mut info = Array2::<f64>::zeros((np, np));
    let n = y.len();
    let mut start = 0;
    while start < n {
        let end = (start + BLOCK).min(n);
        let xb = x.slice(s![start..end, ..]);
        let yb = y.slice(s![start..end]);
        let xt = with_intercept(xb);
        let tau = model.posterior(xb, yb);
        let pi = model.log_gate(xb).mapv_into(f64::exp);
        let mu = model.expert_means(xb);
        let mut scores = Array2::<f64>::zeros((end - start, np));
        for i in 0..end - start {
            let mut row = scores.row_mut(i);
            for l in 0..k - 1 {
                let w = tau[[i, l]] - pi[[i, l]];
                for c in 0..p {
                    row[l * p + c] = w * xt[[i, c]];
                }
            }
            let off = (k - 1) * p;
            for c2 in 0..k {
                let s2 = model.variances[c2];
                let r = yb[i] - mu[[i, c2]];
                let w = tau[[i, c2]] * r / s2;
                for c in 0..p {
                    row[off + c2 * p + c] = w * xt[[i, c]];
                }
                row[off + k * p + c2] = tau[[i, c2]] * (r * r - s2) / (2.0 * s2 * s2);
            }
        }
        info += &scores.t().dot(&scores);
        start = end;
    }
    let mut se = Array1::<f64>::zeros(np);
    let mut e = Array1::<f64>::zeros(np);
    for j in 0..np {
        e.fill(0.0);
        e[j] = 1.0;
        let col = spd_solve(&info, e.view(), 0.0)?;
        se[j] = col[j].sqrt();
    }
    Some(se)
}
