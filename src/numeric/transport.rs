//! Optimal-transport primitives of the reduction (docs/reduction.md): the weighted average of local
//! models ("large model") evaluated at the supporting points, the KL cost between experts, and the
//! transport plan that sends each large expert's weight to its cheapest candidate expert.
//!
//! Cost of moving large expert l onto candidate expert k at x (KL from N(mu_l, s2_l) to N(mu_k, s2_k)):
//! `c_lk(x) = 1/2 [ log(s2_k / s2_l) + s2_l / s2_k + (mu_l(x) - mu_k(x))^2 / s2_k - 1 ]`.
//! Objective of a candidate (no 1/S factor): `J = sum_s sum_l w_l(x_s) min_k c_lk(x_s)`.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use crate::numeric::linalg::with_intercept;
use crate::numeric::model::Moe;

/// Why a set of local models cannot be pooled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoolError {
    /// No local model was given.
    #[error("there are no local models to aggregate")]
    NoModels,
    /// Sizes do not match the models, or one is zero.
    #[error("{0}")]
    Sizes(String),
    /// The local models do not share the same features.
    #[error("local model {index} has features [{found}], but local model 1 has [{expected}]")]
    Features { index: usize, found: String, expected: String },
    /// No supporting points.
    #[error("the supporting sample is empty: at least one covariate row is needed")]
    EmptySupport,
}

/// The large model `f_W = sum_m lambda_m f_m`, `lambda_m = N_m / N`, evaluated at S supporting points:
/// L = sum_m K_m experts, each with weight `w_l(x_s) = lambda_m pi^(m)_k(x_s)`, mean `mu_l(x_s)` and
/// variance `s2_l`. `sum_l w_l(x_s) = 1` at every point.
#[derive(Debug, Clone)]
pub struct LargeModel {
    /// Supporting design `[1, x_s]`, S x (d+1), raw scale.
    pub xt: Array2<f64>,
    /// Expert weights at the support points, S x L.
    pub weights: Array2<f64>,
    /// Expert means at the support points, S x L.
    pub means: Array2<f64>,
    /// Expert coefficients, L x (d+1).
    pub experts: Array2<f64>,
    /// Expert variances, L.
    pub variances: Array1<f64>,
    /// Which local model each expert comes from.
    pub machine_of: Vec<usize>,
    /// `lambda_m`, summing to 1.
    pub lambdas: Vec<f64>,
}

impl LargeModel {
    /// Pools `locals` (all on the same features) with sizes `sizes` at the points `support` (S x d).
    pub fn new(locals: &[&Moe], sizes: &[usize], support: ArrayView2<f64>) -> Result<LargeModel, PoolError> {
        let first = locals.first().ok_or(PoolError::NoModels)?;
        if sizes.len() != locals.len() {
            return Err(PoolError::Sizes(format!("{} sizes for {} local models", sizes.len(), locals.len())));
        }
        if let Some(m) = sizes.iter().position(|&n| n == 0) {
            return Err(PoolError::Sizes(format!("local model {} has size 0", m + 1)));
        }
        for (m, model) in locals.iter().enumerate() {
            if model.features != first.features {
                return Err(PoolError::Features {
                    index: m + 1,
                    found: model.features.join(", "),
                    expected: first.features.join(", "),
                });
            }
        }
        if support.nrows() == 0 {
            return Err(PoolError::EmptySupport);
        }
        let total: usize = sizes.iter().sum();
        let lambdas: Vec<f64> = sizes.iter().map(|&n| n as f64 / total as f64).collect();
        let l: usize = locals.iter().map(|m| m.k()).sum();
        let p = first.d() + 1;
        let mut experts = Array2::<f64>::zeros((l, p));
        let mut variances = Array1::<f64>::zeros(l);
        let mut weights = Array2::<f64>::zeros((support.nrows(), l));
        let mut machine_of = Vec::with_capacity(l);
        let mut at = 0;
        for (m, model) in locals.iter().enumerate() {
            let k = model.k();
            experts.slice_mut(ndarray::s![at..at + k, ..]).assign(&model.experts);
            variances.slice_mut(ndarray::s![at..at + k]).assign(&model.variances);
            let pi = model.log_gate(support).mapv_into(|v| lambdas[m] * v.exp());
            weights.slice_mut(ndarray::s![.., at..at + k]).assign(&pi);
            machine_of.extend(std::iter::repeat_n(m, k));
            at += k;
        }
        let xt = with_intercept(support);
        let means = xt.dot(&experts.t());
        Ok(LargeModel { xt, weights, means, experts, variances, machine_of, lambdas })
    }

    /// The same large model at some of its supporting points (indices into them).
    pub fn at_points(&self, points: &[usize]) -> LargeModel {
        LargeModel {
            xt: self.xt.select(Axis(0), points),
            weights: self.weights.select(Axis(0), points),
            means: self.means.select(Axis(0), points),
            experts: self.experts.clone(),
            variances: self.variances.clone(),
            machine_of: self.machine_of.clone(),
            lambdas: self.lambdas.clone(),
        }
    }

    /// The large model of the local models `keep` (indices, increasing) alone, at the same points:
    /// their experts, with weights `lambda'_m pi^(m)_k(x_s)` where `lambda'_m = lambda_m / sum of the
    /// kept lambdas` (shares of the kept rows). Equal to pooling the kept models afresh, without
    /// evaluating their gates again.
    pub fn keeping(&self, keep: &[usize]) -> LargeModel {
        let kept_total: f64 = keep.iter().map(|&m| self.lambdas[m]).sum();
        let columns: Vec<usize> = (0..self.n_experts()).filter(|l| keep.contains(&self.machine_of[*l])).collect();
        LargeModel {
            xt: self.xt.clone(),
            weights: (self.weights.select(Axis(1), &columns) / kept_total).as_standard_layout().into_owned(),
            means: self.means.select(Axis(1), &columns).as_standard_layout().into_owned(),
            experts: self.experts.select(Axis(0), &columns),
            variances: self.variances.select(Axis(0), &columns),
            machine_of: columns
                .iter()
                .map(|&l| keep.iter().position(|&m| m == self.machine_of[l]).expect("kept"))
                .collect(),
            lambdas: keep.iter().map(|&m| self.lambdas[m] / kept_total).collect(),
        }
    }

    /// Number of supporting points S.
    pub fn n_support(&self) -> usize {
        self.xt.nrows()
    }

    /// Number of large experts L.
    pub fn n_experts(&self) -> usize {
        self.variances.len()
    }

    /// The optimal plan onto candidate experts (`coef` K x (d+1), `variances` K): each (s, l) goes to
    /// `argmin_k c_lk(x_s)`.
    pub fn plan(&self, coef: &Array2<f64>, variances: ArrayView1<f64>) -> Plan {
        let (s_n, l_n, k_n) = (self.n_support(), self.n_experts(), variances.len());
        let mu_k = self.xt.dot(&coef.t()); // S x K
        // c_lk = const_lk + (mu_l - mu_k)^2 / (2 s2_k), const_lk = (ln(s2_k/s2_l) + s2_l/s2_k - 1) / 2.
        let half_prec: Vec<f64> = variances.iter().map(|v| 0.5 / v).collect();
        let constant: Vec<f64> = (0..l_n)
            .flat_map(|l| {
                let s2l = self.variances[l];
                variances.iter().map(move |&s2k| 0.5 * ((s2k / s2l).ln() + s2l / s2k - 1.0))
            })
            .collect();
        let mut target = vec![0u32; s_n * l_n];
        let mut cost_by_expert = vec![0.0; l_n];
        let mut objective = 0.0;
        let (weights, means) =
            (self.weights.as_slice().expect("standard layout"), self.means.as_slice().expect("standard layout"));
        for s in 0..s_n {
            let mus = mu_k.row(s);
            let mus = mus.as_slice().expect("standard layout");
            let row = s * l_n..(s + 1) * l_n;
            let (wrow, mrow, trow) = (&weights[row.clone()], &means[row.clone()], &mut target[row]);
            for (l, ((&w, &mu), t)) in wrow.iter().zip(mrow).zip(trow.iter_mut()).enumerate() {
                let cl = &constant[l * k_n..(l + 1) * k_n];
                let mut best = (0usize, f64::INFINITY);
                for (k, ((&c0, &hp), &m)) in cl.iter().zip(&half_prec).zip(mus).enumerate() {
                    let r = mu - m;
                    let c = c0 + hp * r * r;
                    if c < best.1 {
                        best = (k, c);
                    }
                }
                *t = best.0 as u32;
                let contribution = w * best.1;
                cost_by_expert[l] += contribution;
                objective += contribution;
            }
        }
        Plan { target, k: k_n, cost_by_expert, objective }
    }

    /// Column sums of a plan at every support point: `tau_sk = sum_l P_lks`, S x K (rows sum to 1).
    pub fn plan_targets(&self, plan: &Plan) -> Array2<f64> {
        let l_n = self.n_experts();
        let mut t = Array2::<f64>::zeros((self.n_support(), plan.k));
        for (s, mut row) in t.outer_iter_mut().enumerate() {
            for l in 0..l_n {
                row[plan.target[s * l_n + l] as usize] += self.weights[[s, l]];
            }
        }
        t
    }

    /// Transport objective of a candidate model's experts, divided by S: the expected transport
    /// divergence `R(f_W, g)` estimated on the supporting points (g's gate plays no part).
    pub fn divergence_to(&self, candidate: &Moe) -> f64 {
        self.plan(&candidate.experts, candidate.variances.view()).objective / self.n_support() as f64
    }
}

/// A transport plan: for each (support point, large expert), the candidate expert it goes to.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `target[s * L + l]` = candidate expert of large expert l at point s.
    pub target: Vec<u32>,
    /// Number of candidate experts K.
    pub k: usize,
    /// Each large expert's share of the objective, `sum_s w_l(x_s) c_{l,k*}(x_s)`.
    pub cost_by_expert: Vec<f64>,
    /// `J = sum_{s,l} w_l(x_s) c_{l,k*}(x_s)`.
    pub objective: f64,
}

/// Summed KL cost of moving each expert of `model` onto each expert of `reference` over the points
/// `xt` (with intercept): `cost[j][k] = sum_s c(model_k -> reference_j; x_s)`, K_ref x K_model. The
/// Hungarian assignment on it aligns `model`'s labels to `reference`.
pub fn summed_kl_cost(model: &Moe, reference: &Moe, xt: ArrayView2<f64>) -> Array2<f64> {
    let mu_m = xt.dot(&model.experts.t());
    let mu_r = xt.dot(&reference.experts.t());
    let s = xt.nrows() as f64;
    // sum_s c = S * (ln(s2_j/s2_k) + s2_k/s2_j - 1) / 2 + sum_s (mu_k - mu_j)^2 / (2 s2_j).
    Array2::from_shape_fn((reference.k(), model.k()), |(j, k)| {
        let (s2k, s2j) = (model.variances[k], reference.variances[j]);
        let squares: f64 = mu_m.column(k).iter().zip(mu_r.column(j).iter()).map(|(a, b)| (a - b) * (a - b)).sum();
        0.5 * s * ((s2j / s2k).ln() + s2k / s2j - 1.0) + squares / (2.0 * s2j)
    })
}

/// Divergence of `model` from `reference` that sees gates as well as experts: the KL divergence of
/// the joint law of (component, y) given x, averaged over the points `x`, after relabelling `model` to
/// match `reference` (Hungarian assignment on the same summed cost):
/// `D = (1/S) sum_s sum_k pi_k(x_s) [log pi_k(x_s) - log rho_{s(k)}(x_s) + KL(N_k(x_s) || N'_{s(k)}(x_s))]`,
/// with `pi`, `N` the model's gate and experts and `rho`, `N'` the reference's. It bounds the KL
/// divergence between the two mixtures from above and is 0 only when they coincide up to labels, so
/// it catches what the transport objective cannot: experts attached to the wrong gates.
pub fn joint_divergence(model: &Moe, reference: &Moe, x: ArrayView2<f64>) -> f64 {
    joint_divergence_at(&AtPoints::new(model, x), &AtPoints::new(reference, x))
}

/// A model's gate log-probabilities and expert means at a set of points: what [`joint_divergence`]
/// needs of each model, computed once for a reference that many models are compared with.
pub struct AtPoints<'a> {
    model: &'a Moe,
    log_pi: Array2<f64>,
    mu: Array2<f64>,
}

impl<'a> AtPoints<'a> {
    /// `model` evaluated at the points `x` (S x d).
    pub fn new(model: &'a Moe, x: ArrayView2<f64>) -> AtPoints<'a> {
        AtPoints { model, log_pi: model.log_gate(x), mu: model.expert_means(x) }
    }
}

/// [`joint_divergence`] of two models evaluated at the same points.
pub fn joint_divergence_at(m: &AtPoints, r: &AtPoints) -> f64 {
    let (model, reference) = (m.model, r.model);
    let (k_m, k_r) = (model.k(), reference.k());
    let (log_pi, log_rho) = (&m.log_pi, &r.log_pi);
    let (mu_m, mu_r) = (&m.mu, &r.mu);
    let pi = log_pi.mapv(f64::exp);
    let points = log_pi.nrows();
    // KL(N_k || N'_j) = c_kj + (mu_k - mu'_j)^2 / (2 s2'_j): the log of the variances once per pair.
    let cost = Array2::from_shape_fn((k_m, k_r), |(k, j)| {
        let (s2k, s2j) = (model.variances[k], reference.variances[j]);
        let c = 0.5 * ((s2j / s2k).ln() + s2k / s2j - 1.0);
        let half_prec = 0.5 / s2j;
        let mut acc = 0.0;
        for s in 0..points {
            let p = pi[[s, k]];
            if p > 0.0 {
                let r = mu_m[[s, k]] - mu_r[[s, j]];
                acc += p * (log_pi[[s, k]] - log_rho[[s, j]] + c + half_prec * r * r);
            }
        }
        acc
    });
    let square =
        Array2::from_shape_fn(
            (k_m.max(k_r), k_m.max(k_r)),
            |(k, j)| {
                if k < k_m && j < k_r { cost[[k, j]] } else { 0.0 }
            },
        );
    let assignment = crate::numeric::matching::min_cost_assignment(&square);
    let total: f64 = (0..k_m).map(|k| if assignment[k] < k_r { cost[[k, assignment[k]]] } else { 0.0 }).sum();
    total / points as f64
}
