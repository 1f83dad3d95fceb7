//! The gate's M-step: a soft-label multinomial logistic regression (docs/em.md, "One EM iteration"), shared by EM
//! and by the server's reduction (which fits the reduced gate to transport-plan targets).
//!
//! Objective, for targets `t_ik` (each row a distribution over K) and a design `xt = [1, x]`:
//! `Q(a) = sum_i sum_k t_ik log pi_k(x_i)`, concave in the K-1 free gate rows (the last row is 0).
//! Gradient `g_k = xt'(t_.k - pi_.k)`; Hessian blocks `H_kl = -xt' diag(pi_k (delta_kl - pi_l)) xt`.
//!
//! Variant chosen: Newton steps with the exact Hessian (or, in EM on many rows, the Hessian of a
//! fixed subset of rows: `Curvature`) and step halving. In EM we take **one** Newton
//! step per iteration (a generalised EM: the halving keeps `Q` from decreasing beyond round-off,
//! `ACCEPT_SLACK`, so the likelihood stays monotone), because near convergence one Newton step already lands very close to
//! the gate's maximiser, and a full inner solve would pay the Hessian (the dominant cost,
//! (K-1)K/2 weighted Gram matrices) several times per iteration for no gain in the outer rate. The
//! Boehning fixed-curvature bound was rejected: it is cheaper per step but its steps are short
//! (curvature overestimated up to about K-fold), which slows the whole EM for weakly separated gates.

use ndarray::{Array1, Array2, ArrayView2, Axis, linalg::general_mat_mul, s};

use crate::numeric::blocks;
use crate::numeric::linalg::{spd_solve, weighted_grams};
use crate::numeric::model::log_softmax_rows;
use crate::numeric::softmax;

/// Relative ridge added to the negated Hessian before its Cholesky solve.
const NEWTON_RIDGE: f64 = 1e-10;
/// Largest number of halvings tried before a Newton step is given up (the gate is then kept).
pub const MAX_HALVINGS: usize = 30;

/// Gate probabilities of every row, in both forms EM needs.
#[derive(Debug, Clone)]
pub struct Probs {
    /// `log pi_ik`.
    pub log_pi: Array2<f64>,
    /// `pi_ik`.
    pub pi: Array2<f64>,
}

/// The gate probabilities for a design with intercept column `xt` (n x p) and gate coefficients
/// (K x p), by one softmax per row ([`softmax::rows`]): logits `z = xt a'`, `pi_k = exp(z_k) / sum_l
/// exp(z_l)` and `log pi_k = z_k - ln sum_l exp(z_l)` (K exponentials and one logarithm per row).
pub fn probs(xt: ArrayView2<f64>, gate: &Array2<f64>) -> Probs {
    let mut log_pi = Array2::<f64>::zeros((xt.nrows(), gate.nrows()));
    general_mat_mul(1.0, &xt, &gate.t(), 0.0, &mut log_pi);
    let mut pi = Array2::<f64>::zeros(log_pi.raw_dim());
    softmax::rows(&mut log_pi, &mut pi, softmax::Output::WithLogs);
    Probs { log_pi, pi }
}

/// [`probs`] block by block (`blocks`), on up to `threads` threads.
pub fn probs_on(xt: ArrayView2<f64>, gate: &Array2<f64>, threads: usize) -> Probs {
    let parts = blocks::map(xt.nrows(), threads, |r| probs(xt.slice(s![r, ..]), gate));
    let (log_pi, pi): (Vec<_>, Vec<_>) = parts.into_iter().map(|p| (p.log_pi, p.pi)).unzip();
    Probs { log_pi: blocks::stack(log_pi), pi: blocks::stack(pi) }
}

/// Log gate probabilities `log pi_ik` for a design with intercept column `xt` (n x p) and gate
/// coefficients (K x p).
pub fn log_probs(xt: ArrayView2<f64>, gate: &Array2<f64>) -> Array2<f64> {
    log_softmax_rows(xt.dot(&gate.t()))
}

/// `Q = sum_ik t_ik log pi_ik`; a zero target contributes nothing even where `log pi` is -inf.
pub fn objective_from_log_probs(targets: ArrayView2<f64>, log_pi: ArrayView2<f64>) -> f64 {
    assert_eq!(targets.dim(), log_pi.dim(), "one target per probability");
    let (t, l) = (targets.as_standard_layout(), log_pi.as_standard_layout());
    let (t, l) = (t.as_slice().expect("standard layout"), l.as_slice().expect("standard layout"));
    t.iter().zip(l).map(|(&t, &l)| if t == 0.0 { 0.0 } else { t * l }).sum()
}

/// The gate objective `Q(a)` at `gate`.
pub fn objective(xt: ArrayView2<f64>, targets: ArrayView2<f64>, gate: &Array2<f64>) -> f64 {
    objective_from_log_probs(targets, log_probs(xt, gate).view())
}

/// Gradient of `Q` with respect to the K-1 free gate rows, stacked row after row ((K-1) p values):
/// `g_k = xt'(t_.k - pi_.k)`.
pub fn gradient(xt: ArrayView2<f64>, targets: ArrayView2<f64>, pi: ArrayView2<f64>) -> Array1<f64> {
    let k = pi.ncols();
    let resid = &targets.slice(s![.., ..k - 1]) - &pi.slice(s![.., ..k - 1]);
    let g = xt.t().dot(&resid); // p x (K-1)
    g.t().iter().copied().collect()
}

/// [`gradient`] summed block by block (`blocks`), on up to `threads` threads.
pub fn gradient_on(xt: ArrayView2<f64>, targets: ArrayView2<f64>, pi: ArrayView2<f64>, threads: usize) -> Array1<f64> {
    blocks::sum(blocks::map(xt.nrows(), threads, |r| {
        gradient(xt.slice(s![r.clone(), ..]), targets.slice(s![r.clone(), ..]), pi.slice(s![r, ..]))
    }))
}

/// [`hessian`] summed block by block.
pub fn hessian_on(xt: ArrayView2<f64>, pi: ArrayView2<f64>, threads: usize) -> Array2<f64> {
    blocks::sum(blocks::map(xt.nrows(), threads, |r| hessian(xt.slice(s![r.clone(), ..]), pi.slice(s![r, ..]))))
}

/// [`objective_from_log_probs`] summed block by block.
pub fn objective_on(targets: ArrayView2<f64>, log_pi: ArrayView2<f64>, threads: usize) -> f64 {
    let parts = blocks::map(targets.nrows(), threads, |r| {
        objective_from_log_probs(targets.slice(s![r.clone(), ..]), log_pi.slice(s![r, ..]))
    });
    parts.into_iter().fold(0.0, |acc, q| acc + q)
}

/// Hessian of `Q` in the same stacking: blocks `H_kl = -xt' diag(pi_k (delta_kl - pi_l)) xt`.
pub fn hessian(xt: ArrayView2<f64>, pi: ArrayView2<f64>) -> Array2<f64> {
    let (n, p) = xt.dim();
    let free = pi.ncols() - 1;
    let pairs: Vec<(usize, usize)> = (0..free).flat_map(|k| (k..free).map(move |l| (k, l))).collect();
    let mut w = Array2::<f64>::zeros((n, pairs.len()));
    for (mut wrow, prow) in w.outer_iter_mut().zip(pi.outer_iter()) {
        for (j, &(k, l)) in pairs.iter().enumerate() {
            wrow[j] = prow[k] * (if k == l { 1.0 } else { 0.0 } - prow[l]);
        }
    }
    let grams = weighted_grams(xt, w.view());
    let mut h = Array2::<f64>::zeros((free * p, free * p));
    for (g, &(k, l)) in grams.iter().zip(&pairs) {
        h.slice_mut(s![k * p..(k + 1) * p, l * p..(l + 1) * p]).assign(&-g);
        if k != l {
            h.slice_mut(s![l * p..(l + 1) * p, k * p..(k + 1) * p]).assign(&-&g.t());
        }
    }
    h
}

/// Relative slack of the step halving's test: a step is taken when its `Q` is finite and at least
/// `Q0 - ACCEPT_SLACK |Q0|`. Near the maximum a Newton step's true gain is far below the rounding of
/// a sum over rows (about 1e-16 |Q0| per addition), so a strict test would take or halve it at
/// random, and two computations that add the same terms in another order (EM over machines sums per
/// machine) would part there; with the slack both take it. `Q` then decreases by at most 1e-12
/// relative, far inside the round-off allowed to the log-likelihood's monotonicity.
pub const ACCEPT_SLACK: f64 = 1e-12;

/// Whether a candidate gate with objective `q` passes the step halving's test against `q0`.
pub fn accepts(q: f64, q0: f64) -> bool {
    q.is_finite() && q >= q0 - ACCEPT_SLACK * q0.abs()
}

/// The Newton direction `delta = (-H)^-1 g` (ridged Cholesky), or `None` when `-H` is not positive
/// definite even with the ridge.
pub fn newton_direction(neg_h: &Array2<f64>, g: &Array1<f64>) -> Option<Array1<f64>> {
    spd_solve(neg_h, g.view(), NEWTON_RIDGE)
}

/// `gate + step * delta` on the K-1 free rows (`delta` stacked row after row, as [`gradient`]).
pub fn stepped(gate: &Array2<f64>, delta: &Array1<f64>, step: f64) -> Array2<f64> {
    let (k, p) = gate.dim();
    let mut cand = gate.clone();
    for r in 0..k - 1 {
        for c in 0..p {
            cand[[r, c]] += step * delta[r * p + c];
        }
    }
    cand
}

/// Where a Newton step takes its curvature. The gradient is always computed on every row.
#[derive(Debug, Clone, Copy)]
pub enum Curvature<'a> {
    /// The exact Hessian, on every row.
    AllRows,
    /// The Hessian of a fixed subset of the rows (their indices, and the design `xt` restricted to
    /// them), scaled by n / m: a sub-sampled Newton step (Byrd, Chin, Neveitt & Nocedal 2011). Its
    /// fixed points are those of the exact step (the gradient is exact), the step halving keeps `Q`
    /// from decreasing, and it costs m instead of n rows of the (K-1)K/2 weighted Gram matrices,
    /// the dominant work of an EM iteration.
    Rows { rows: &'a [usize], xt: ArrayView2<'a, f64> },
}

/// One Newton step on `Q` from `gate`, halving the step until `Q` does not decrease (beyond the
/// round-off [`ACCEPT_SLACK`]), with the
/// curvature of `curvature`, every pass over the rows done block by block on up to `threads`
/// threads. `at` must be `probs(xt, gate)`. Returns the new gate, its objective and its
/// probabilities (which the next E-step reuses); when no step improves `Q` (already at the maximum,
/// or numerically stuck) the input gate is returned unchanged.
pub fn newton_step(
    xt: ArrayView2<f64>,
    targets: ArrayView2<f64>,
    gate: &Array2<f64>,
    at: Probs,
    curvature: Curvature,
    threads: usize,
) -> (Array2<f64>, f64, Probs) {
    let k = gate.nrows();
    let q0 = objective_on(targets, at.log_pi.view(), threads);
    if k < 2 {
        return (gate.clone(), q0, at);
    }
    let g = gradient_on(xt, targets, at.pi.view(), threads);
    let neg_h = match curvature {
        Curvature::AllRows => -hessian_on(xt, at.pi.view(), threads),
        Curvature::Rows { rows, xt: sub } => {
            hessian_on(sub, at.pi.select(Axis(0), rows).view(), threads) * (-(xt.nrows() as f64) / rows.len() as f64)
        }
    };
    let Some(delta) = newton_direction(&neg_h, &g) else {
        return (gate.clone(), q0, at);
    };
    let mut step = 1.0;
    for _ in 0..MAX_HALVINGS {
        let cand = stepped(gate, &delta, step);
        let next = probs_on(xt, &cand, threads);
        let q = objective_on(targets, next.log_pi.view(), threads);
        if accepts(q, q0) {
            return (cand, q, next);
        }
        step *= 0.5;
    }
    (gate.clone(), q0, at)
}

/// Maximises `Q` by Newton steps from `gate0` until the relative gain falls below `tol` or
/// `max_steps` is reached. Used where the gate is fitted once (the reduction), not inside EM.
pub fn fit(
    xt: ArrayView2<f64>,
    targets: ArrayView2<f64>,
    gate0: &Array2<f64>,
    max_steps: usize,
    tol: f64,
) -> (Array2<f64>, f64) {
    let mut gate = gate0.clone();
    let mut at = probs(xt, &gate);
    let mut q = objective_from_log_probs(targets, at.log_pi.view());
    for _ in 0..max_steps {
        let (next, q_next, next_probs) = newton_step(xt, targets, &gate, at, Curvature::AllRows, 1);
        let gain = q_next - q;
        gate = next;
        at = next_probs;
        q = q_next;
        if gain <= tol * q.abs().max(1e-300) {
            break;
        }
    }
    (gate, q)
}
