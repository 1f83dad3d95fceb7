//! Optimal-transport primitives of the reduction (docs/reduction.md): the weighted average of local
//! models ("large model") evaluated at the supporting points, the KL cost between experts, and the
//! transport plan that sends each large expert's weight to its cheapest candidate expert.
//!
//! Cost of moving large expert l onto candidate expert k at x (KL from N(mu_l, s2_l) to N(mu_k, s2_k)):
//! `c_lk(x) = 1/2 [ log(s2_k / s2_l) + s2_l / s2_k + (mu_l(x) - mu_k(x))^2 / s2_k - 1 ]`.
//! Objective of a candidate (no 1/S factor): `J = sum_s sum_l w_l(x_s) min_k c_lk(x_s)`.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use crate::numeric::elementary::{exp_nonpositive, ln_positive};
use crate::numeric::linalg::with_intercept;
use crate::numeric::model::{Moe, affine_into};
use crate::numeric::simd::{Width, widest};

/// Supporting points whose local gate logits are computed at a time when pooling.
const POOL_BLOCK_ROWS: usize = 128;

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
    /// For each expert l, `sum_s pi_l(x_s) log pi_l(x_s)` over the supporting points, `pi_l` its gate
    /// probability in its own local model (terms with `pi_l = 0` count 0): all that
    /// [`LargeModel::joint_divergences`] needs of the log gate probabilities, so that no S x L array
    /// of them is kept. `None` for a pool at some of the points ([`LargeModel::at_points`]).
    pub gate_log_sums: Option<Vec<f64>>,
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
        let mut gates = Array2::<f64>::zeros((l, p));
        let mut variances = Array1::<f64>::zeros(l);
        let mut machine_of = Vec::with_capacity(l);
        let mut columns = Vec::with_capacity(locals.len());
        let mut at = 0;
        for (m, model) in locals.iter().enumerate() {
            let k = model.k();
            experts.slice_mut(ndarray::s![at..at + k, ..]).assign(&model.experts);
            gates.slice_mut(ndarray::s![at..at + k, ..]).assign(&model.gate);
            variances.slice_mut(ndarray::s![at..at + k]).assign(&model.variances);
            machine_of.extend(std::iter::repeat_n(m, k));
            columns.push(at..at + k);
            at += k;
        }
        let mut weights = Array2::<f64>::zeros((support.nrows(), l));
        let mut log_sums = vec![0.0; l];
        pool_gates(Width::widest(), support, &gates, &columns, &lambdas, &mut weights, &mut log_sums);
        let xt = with_intercept(support);
        let means = xt.dot(&experts.t());
        let gate_log_sums = Some(log_sums);
        Ok(LargeModel { xt, weights, means, experts, variances, machine_of, lambdas, gate_log_sums })
    }

    /// The same large model at some of its supporting points (indices into them), without
    /// `gate_log_sums` (they sum over every point).
    pub fn at_points(&self, points: &[usize]) -> LargeModel {
        LargeModel {
            xt: self.xt.select(Axis(0), points),
            weights: self.weights.select(Axis(0), points),
            means: self.means.select(Axis(0), points),
            experts: self.experts.clone(),
            variances: self.variances.clone(),
            machine_of: self.machine_of.clone(),
            lambdas: self.lambdas.clone(),
            gate_log_sums: None,
        }
    }

    /// The large model of the local models `keep` (indices, increasing) alone, at the same points:
    /// their experts, with weights `lambda'_m pi^(m)_k(x_s)` where `lambda'_m = lambda_m / sum of the
    /// kept lambdas` (shares of the kept rows). Equal to pooling the kept models afresh, without
    /// evaluating their gates again; the arrays are compacted where they are, with no copy.
    pub fn keeping(self, keep: &[usize]) -> LargeModel {
        let kept_total: f64 = keep.iter().map(|&m| self.lambdas[m]).sum();
        let columns: Vec<usize> = (0..self.n_experts()).filter(|l| keep.contains(&self.machine_of[*l])).collect();
        LargeModel {
            weights: keep_columns(self.weights, &columns).mapv_into(|w| w / kept_total),
            means: keep_columns(self.means, &columns),
            experts: self.experts.select(Axis(0), &columns),
            variances: self.variances.select(Axis(0), &columns),
            machine_of: columns
                .iter()
                .map(|&l| keep.iter().position(|&m| m == self.machine_of[l]).expect("kept"))
                .collect(),
            lambdas: keep.iter().map(|&m| self.lambdas[m] / kept_total).collect(),
            gate_log_sums: self.gate_log_sums.map(|sums| columns.iter().map(|&l| sums[l]).collect()),
            xt: self.xt,
        }
    }

    /// [`joint_divergence`] of every local model of the pool (`locals[m]` is machine m) from
    /// `reference` (evaluated at the same supporting points), from the pooled gates and means (a
    /// model's gate probabilities are its weights over `lambda_m`) and the pool's `gate_log_sums`
    /// (which a pool at some of the points lacks: a panic). The pooled arrays are read row by row, once for all
    /// models, each reference expert's terms added over the whole row at once. Each pair's cost
    /// `cost_kj = sum_s pi_k [log pi_k - log rho_j + KL(N_k || N'_j)]`, with `KL(N_k || N'_j) =
    /// kl_constant(s2_k, s2'_j) + (mu_k - mu'_j)^2 / (2 s2'_j)`, is `sum_s pi_k log pi_k` plus the
    /// rest summed over the points in order.
    pub fn joint_divergences(&self, locals: &[&Moe], reference: &AtPoints) -> Vec<f64> {
        let gate_log_sums =
            self.gate_log_sums.as_ref().expect("the log gate sums of a pool at all its points (not at_points)");
        let (l_n, k_r) = (self.n_experts(), reference.model.k());
        let scale: Vec<f64> = self.machine_of.iter().map(|&m| 1.0 / self.lambdas[m]).collect();
        let half_prec: Vec<f64> = reference.model.variances.iter().map(|v| 0.5 / v).collect();
        // `constant[j L + l] = kl_constant(s2_l, s2'_j)`, and `cost[j L + l]` its pair's sum.
        let constant: Vec<f64> = (reference.model.variances.iter())
            .flat_map(|&s2j| self.variances.iter().map(move |&s2l| kl_constant(s2l, s2j)))
            .collect();
        let mut cost = vec![0.0; k_r * l_n];
        let pooled = Pooled {
            weights: self.weights.as_slice().expect("standard layout"),
            means: self.means.as_slice().expect("standard layout"),
        };
        pair_costs(Width::widest(), &pooled, reference, &half_prec, &scale, &constant, &mut cost);
        assert_eq!(gate_log_sums.len(), l_n, "one sum per large expert");
        for cost in cost.chunks_exact_mut(l_n) {
            for (c, &own) in cost.iter_mut().zip(gate_log_sums) {
                *c += own;
            }
        }
        debug_assert_eq!(locals.iter().map(|m| m.k()).sum::<usize>(), l_n, "every machine of the pool, in order");
        let mut first = 0;
        locals
            .iter()
            .map(|model| {
                let own = first..first + model.k();
                first = own.end;
                let pair = Array2::from_shape_fn((model.k(), k_r), |(k, j)| cost[j * l_n + own.start + k]);
                pair_divergence(&pair, self.n_support())
            })
            .collect()
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
    /// `argmin_k c_lk(x_s)` (the first such k on ties).
    pub fn plan(&self, coef: &Array2<f64>, variances: ArrayView1<f64>) -> Plan {
        let (s_n, l_n, k_n) = (self.n_support(), self.n_experts(), variances.len());
        let mut plan = Plan {
            target: vec![0u32; s_n * l_n],
            k: k_n,
            mass: Array2::zeros((s_n, k_n)),
            mean_mass: Array2::zeros((s_n, k_n)),
            cost_by_expert: vec![0.0; l_n],
            objective: 0.0,
        };
        self.replan(coef, variances, &mut plan);
        plan
    }

    /// [`LargeModel::plan`] written into an earlier plan of this large model with as many candidates
    /// (its buffers reused: an MM run makes one plan per iteration).
    pub fn replan(&self, coef: &Array2<f64>, variances: ArrayView1<f64>, plan: &mut Plan) {
        let l_n = self.n_experts();
        assert_eq!((plan.target.len(), plan.k), (self.n_support() * l_n, variances.len()), "a plan of this model");
        assert!(plan.k <= u32::MAX as usize, "a candidate's index fits the plan's u32 targets");
        let mu_k = self.xt.dot(&coef.t()); // S x K
        plan.cost_by_expert.fill(0.0);
        let costs = Costs::new(&self.variances, variances);
        assign(
            Width::widest(),
            &costs,
            self.weights.as_slice().expect("standard layout"),
            self.means.as_slice().expect("standard layout"),
            mu_k.as_slice().expect("standard layout"),
            plan,
        );
        plan.objective = plan.cost_by_expert.iter().sum();
    }

    /// Transport objective of a candidate model's experts, divided by S: the expected transport
    /// divergence `R(f_W, g)` estimated on the supporting points (g's gate plays no part).
    pub fn divergence_to(&self, candidate: &Moe) -> f64 {
        self.plan(&candidate.experts, candidate.variances.view()).objective / self.n_support() as f64
    }
}

widest! {
    /// Every local gate at every supporting point: `weights` (S x L, zeros) gets `lambda_m pi^(m)_k`
    /// and `log_sums` (L, zeros) the sums over the points of `pi log pi`, from the stacked gates
    /// (L x (d+1), each model's rows in its range of `columns`).
    ///
    /// The logits are computed [`POOL_BLOCK_ROWS`] points at a time into one buffer that stays in
    /// cache. With `a = max_k v_k` and `e_k = exp(v_k - a)` over a model's columns:
    /// `log pi_k = v_k - a - log sum e` and `w_k = lambda_m e_k / sum e` (one exponential per entry).
    /// Each pass runs over a whole row, the per-model values spread over its columns, so that the
    /// exponentials are vectorised.
    fn pool_gates(
        support: ArrayView2<f64>,
        gates: &Array2<f64>,
        columns: &[std::ops::Range<usize>],
        lambdas: &[f64],
        weights: &mut Array2<f64>,
        log_sums: &mut [f64],
    ) {
        let l = gates.nrows();
        let (mut tops, mut shifts, mut factors) = (vec![0.0; l], vec![0.0; l], vec![0.0; l]);
        // `pi = w / lambda_m`, as the screening reads it back from the weights.
        let mut scale = vec![0.0; l];
        for (range, &lambda) in columns.iter().zip(lambdas) {
            scale[range.clone()].fill(1.0 / lambda);
        }
        let mut logits = Array2::<f64>::zeros((POOL_BLOCK_ROWS.min(support.nrows()), l));
        let blocks = support.axis_chunks_iter(Axis(0), POOL_BLOCK_ROWS).zip(weights.axis_chunks_iter_mut(Axis(0), POOL_BLOCK_ROWS));
        for (x, mut w) in blocks {
            let mut block = logits.slice_mut(ndarray::s![..x.nrows(), ..]);
            affine_into(x, gates, block.view_mut());
            let rows = block.as_slice_mut().expect("standard layout").chunks_exact_mut(l);
            for (row, w_row) in rows.zip(w.as_slice_mut().expect("standard layout").chunks_exact_mut(l)) {
                for range in columns {
                    let top = row[range.clone()].iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
                    tops[range.clone()].fill(top);
                }
                for ((e, &v), &top) in w_row.iter_mut().zip(row.iter()).zip(&tops) {
                    *e = exp_nonpositive(v - top);
                }
                for (range, &lambda) in columns.iter().zip(lambdas) {
                    let total: f64 = w_row[range.clone()].iter().sum();
                    shifts[range.clone()].fill(tops[range.start] + ln_positive(total));
                    factors[range.clone()].fill(lambda / total);
                }
                let terms = row.iter().zip(w_row.iter_mut()).zip(shifts.iter().zip(&factors)).zip(&scale);
                for ((((&v, e), (&shift, &factor)), &scale), sum) in terms.zip(log_sums.iter_mut()) {
                    *e *= factor;
                    let p = *e * scale;
                    // A zero probability adds nothing, even where its log is -inf.
                    *sum += if p > 0.0 { p * (v - shift) } else { 0.0 };
                }
            }
        }
    }
}

/// The pool's weights and means (S x L, row-major).
struct Pooled<'a> {
    weights: &'a [f64],
    means: &'a [f64],
}

widest! {
    /// Adds to `cost[j L + l]` every point's term of [`LargeModel::joint_divergences`]'s pair (l, j)
    /// but `p log pi_l`: `p (constant[j L + l] - log rho_j + half_prec[j] (mu_l - mu'_j)^2)`,
    /// `p = scale_l w_l`, `half_prec[j] = 1 / (2 s2'_j)`.
    ///
    /// Each reference expert's terms are added over a whole row of the pool at once.
    fn pair_costs(
        pool: &Pooled,
        reference: &AtPoints,
        half_prec: &[f64],
        scale: &[f64],
        constant: &[f64],
        cost: &mut [f64],
    ) {
        let (l_n, k_r) = (scale.len(), half_prec.len());
        let rows = pool.weights.chunks_exact(l_n).zip(pool.means.chunks_exact(l_n));
        let (log_pi, mu_r) = (reference.log_pi.as_slice(), reference.mu.as_slice());
        let reference_rows =
            log_pi.expect("standard layout").chunks_exact(k_r).zip(mu_r.expect("standard layout").chunks_exact(k_r));
        for ((w, mu), (lr, mr)) in rows.zip(reference_rows) {
            for j in 0..k_r {
                let (lr, mr, hp) = (lr[j], mr[j], half_prec[j]);
                let (cost, constant) = (&mut cost[j * l_n..(j + 1) * l_n], &constant[j * l_n..(j + 1) * l_n]);
                for l in 0..l_n {
                    let p = w[l] * scale[l];
                    let r = mu[l] - mr;
                    let term = p * (constant[l] - lr + hp * r * r);
                    // A model's zero gate probability adds nothing, even where its log is -inf.
                    cost[l] += if p > 0.0 { term } else { 0.0 };
                }
            }
        }
    }
}

/// The part of `KL(N(m, s2_from) || N(m', s2_to))` that does not depend on the means,
/// `(ln(s2_to / s2_from) + s2_from / s2_to - 1) / 2`; the divergence adds `(m - m')^2 / (2 s2_to)`.
fn kl_constant(s2_from: f64, s2_to: f64) -> f64 {
    0.5 * ((s2_to / s2_from).ln() + s2_from / s2_to - 1.0)
}

/// The columns `columns` (increasing) of a row-major matrix, moved to the front of its own buffer
/// row after row: a row's kept entries never land after where they were read, so nothing is read
/// after it is overwritten. Runs of consecutive columns (a machine's experts) move whole.
fn keep_columns(a: Array2<f64>, columns: &[usize]) -> Array2<f64> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for &c in columns {
        match runs.last_mut() {
            Some(run) if run.end == c => run.end += 1,
            _ => runs.push(c..c + 1),
        }
    }
    let (rows, width) = a.dim();
    let a = if a.is_standard_layout() { a } else { a.as_standard_layout().into_owned() };
    let (mut data, offset) = a.into_raw_vec_and_offset();
    // A standard-layout array's elements are contiguous from its offset on.
    data.drain(..offset.unwrap_or(0));
    let mut to = 0;
    for row in 0..rows {
        for run in &runs {
            let from = row * width + run.start;
            data.copy_within(from..from + run.len(), to);
            to += run.len();
        }
    }
    data.truncate(to);
    Array2::from_shape_vec((rows, columns.len()), data).expect("rows x kept columns")
}

/// The terms of the cost `c_lk(x) = kl_constant(s2_l, s2_k) + half_prec[k] (mu_l(x) - mu_k(x))^2`,
/// `half_prec[k] = 1 / (2 s2_k)`. The constants are stored by group of [`LANES`] large experts, then
/// candidate, then lane: `grouped[(g K + k) LANES + i] = kl_constant(s2_l, s2_k)` for
/// `l = g LANES + i` (0 past the last expert), so that a group's constants for every candidate are
/// one contiguous block.
struct Costs {
    half_prec: Vec<f64>,
    grouped: Vec<f64>,
    l_n: usize,
}

impl Costs {
    /// The terms for large experts of variances `large` (L) and candidates of variances `candidates` (K).
    fn new(large: &Array1<f64>, candidates: ArrayView1<f64>) -> Costs {
        let half_prec = candidates.iter().map(|v| 0.5 / v).collect();
        let (l_n, k_n) = (large.len(), candidates.len());
        let mut grouped = vec![0.0; l_n.div_ceil(LANES) * k_n * LANES];
        for (g, block) in grouped.chunks_exact_mut(k_n * LANES).enumerate() {
            for (row, &s2k) in block.chunks_exact_mut(LANES).zip(&candidates) {
                for (c, &s2l) in row.iter_mut().zip(large.iter().skip(g * LANES)) {
                    *c = kl_constant(s2l, s2k);
                }
            }
        }
        Costs { half_prec, grouped, l_n }
    }

    /// The constants of the group holding large expert `at`, candidate after candidate.
    fn group(&self, at: usize) -> &[f64] {
        let size = self.half_prec.len() * LANES;
        &self.grouped[at / LANES * size..][..size]
    }
}

/// Large experts assigned together: the compiler keeps them in vector registers.
const LANES: usize = 8;

widest! {
    /// Fills `plan.target`, `plan.mass`, `plan.mean_mass` and `plan.cost_by_expert` from the weights
    /// and means (S x L) and the candidates' means (S x K). Every path does the same IEEE operations
    /// in the same order (no fused multiply-add), so on the same inputs the plan is the same bits on
    /// every machine.
    fn assign(costs: &Costs, weights: &[f64], means: &[f64], mu_k: &[f64], plan: &mut Plan) {
        let (l_n, k_n) = (costs.l_n, plan.k);
        let full = l_n - l_n % LANES;
        let mass = plan.mass.as_slice_mut().expect("standard layout");
        let mean_mass = plan.mean_mass.as_slice_mut().expect("standard layout");
        let mut sums = BySlot::new(k_n);
        for (s, mus) in mu_k.chunks_exact(k_n).enumerate() {
            let row = s * l_n..(s + 1) * l_n;
            let (w, mu) = (&weights[row.clone()], &means[row.clone()]);
            let mut point = Point { mus, w, mu, target: &mut plan.target[row] };
            for at in (0..full).step_by(LANES) {
                assign_lanes::<LANES>(costs, &mut point, at, &mut plan.cost_by_expert);
            }
            for at in full..l_n {
                assign_lanes::<1>(costs, &mut point, at, &mut plan.cost_by_expert);
            }
            sums.add_row(point.target, point.w.iter().zip(point.mu).map(|(&w, &mu)| [w, w * mu]));
            sums.take(|k, [m, wm]| {
                mass[s * k_n + k] = m;
                mean_mass[s * k_n + k] = wm;
            });
        }
    }
}

/// One supporting point: the candidates' means at it, the large experts' weights and means at it,
/// and its row of the plan's targets.
struct Point<'a> {
    mus: &'a [f64],
    w: &'a [f64],
    mu: &'a [f64],
    target: &'a mut [u32],
}

/// 2^52: for an integer 0 <= k < 2^32 held in an f64, the low 32 bits of `k + 2^52` are k, which
/// converts lanes to integers without the checks of an `as` cast.
const INTEGER_BIAS: f64 = 4_503_599_627_370_496.0;

/// Assigns the large experts `at..at + W` at one point: the cheapest candidate, the first on ties,
/// and its weighted cost.
#[inline(always)]
fn assign_lanes<const W: usize>(costs: &Costs, point: &mut Point, at: usize, cost_by_expert: &mut [f64]) {
    let w: &[f64; W] = point.w[at..at + W].try_into().expect("W lanes");
    let mu: &[f64; W] = point.mu[at..at + W].try_into().expect("W lanes");
    // The candidate's index is held as f64, like the costs, so that one vector blend selects both.
    let mut best = [f64::INFINITY; W];
    let mut arg = [0.0f64; W];
    // A whole group starts at lane 0 (known when compiling it); a lone expert at its own lane.
    debug_assert!(if W == LANES { at.is_multiple_of(LANES) } else { at % LANES + W <= LANES }, "lanes of one group");
    let lane = if W == LANES { 0 } else { at % LANES };
    let candidates = point.mus.iter().zip(&costs.half_prec).zip(costs.group(at).chunks_exact(LANES));
    for (k, ((&mk, &hp), constant)) in candidates.enumerate() {
        let c0: &[f64; W] = constant[lane..lane + W].try_into().expect("W lanes");
        for j in 0..W {
            let r = mu[j] - mk;
            let c = c0[j] + hp * r * r;
            let better = c < best[j];
            best[j] = if better { c } else { best[j] };
            arg[j] = if better { k as f64 } else { arg[j] };
        }
    }
    // Whole-group slices and one operation per loop, so that these lanes are vectorised too.
    let target: &mut [u32; W] = (&mut point.target[at..at + W]).try_into().expect("W lanes");
    for (t, a) in target.iter_mut().zip(arg) {
        *t = (a + INTEGER_BIAS).to_bits() as u32;
    }
    let weighted: [f64; W] = std::array::from_fn(|j| w[j] * best[j]);
    let cost: &mut [f64; W] = (&mut cost_by_expert[at..at + W]).try_into().expect("W lanes");
    for (c, v) in cost.iter_mut().zip(weighted) {
        *c += v;
    }
}

/// Sums of N values into K slots (the candidate experts), kept as [`PARTS`] partial sums (by the
/// large expert's index mod `PARTS`) so that consecutive additions to one slot do not wait for each
/// other; [`BySlot::take`] adds the parts in a fixed order.
pub struct BySlot<const N: usize> {
    parts: Vec<[f64; N]>,
    k: usize,
}

/// Partial sums per slot in [`BySlot`].
const PARTS: usize = 4;

impl<const N: usize> BySlot<N> {
    /// Empty sums for `k` slots.
    pub fn new(k: usize) -> BySlot<N> {
        BySlot { parts: vec![[0.0; N]; PARTS * k], k }
    }

    /// Adds the values of every large expert l of one point to slot `slots[l]`.
    #[inline(always)]
    pub fn add_row(&mut self, slots: &[u32], values: impl Iterator<Item = [f64; N]>) {
        let k = self.k;
        for (l, (&slot, value)) in slots.iter().zip(values).enumerate() {
            let part = &mut self.parts[(l % PARTS) * k + slot as usize];
            for (p, v) in part.iter_mut().zip(value) {
                *p += v;
            }
        }
    }

    /// Gives `use_sum` every slot's sum, then empties the slots.
    pub fn take(&mut self, mut use_sum: impl FnMut(usize, [f64; N])) {
        let k = self.k;
        for slot in 0..k {
            let mut total = [0.0; N];
            for part in 0..PARTS {
                for (t, v) in total.iter_mut().zip(self.parts[part * k + slot]) {
                    *t += v;
                }
            }
            use_sum(slot, total);
        }
        self.parts.fill([0.0; N]);
    }
}

/// A transport plan: for each (support point, large expert), the candidate expert it goes to.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `target[s * L + l]` = candidate expert of large expert l at point s.
    pub target: Vec<u32>,
    /// Number of candidate experts K.
    pub k: usize,
    /// Mass each candidate receives at every point, `tau_sk = sum_l P_lks`, S x K (rows sum to 1).
    pub mass: Array2<f64>,
    /// The large experts' means weighted by what each candidate receives, `sum_l P_lks mu_l(x_s)`,
    /// S x K.
    pub mean_mass: Array2<f64>,
    /// Each large expert's share of the objective, `sum_s w_l(x_s) c_{l,k*}(x_s)`.
    pub cost_by_expert: Vec<f64>,
    /// `J = sum_{s,l} w_l(x_s) c_{l,k*}(x_s)`.
    pub objective: f64,
}

/// Summed KL cost of moving each expert of every model of `models` onto each expert of `reference`
/// over the points `xt` (with intercept): for each model, `cost[j][k] = sum_s c(model_k ->
/// reference_j; x_s)`, K_ref x K_model. The Hungarian assignment on it aligns the model's labels to
/// `reference`'s. The reference's means are computed once for all models.
pub fn summed_kl_costs(models: &[&Moe], reference: &Moe, xt: ArrayView2<f64>) -> Vec<Array2<f64>> {
    // Means K x S, each expert's values at the points contiguous.
    let mu_r = reference.experts.dot(&xt.t());
    let s = xt.nrows() as f64;
    models
        .iter()
        .map(|model| {
            let mu_m = model.experts.dot(&xt.t());
            // sum_s c = S * (ln(s2_j/s2_k) + s2_k/s2_j - 1) / 2 + sum_s (mu_k - mu_j)^2 / (2 s2_j).
            Array2::from_shape_fn((reference.k(), model.k()), |(j, k)| {
                let (s2k, s2j) = (model.variances[k], reference.variances[j]);
                let squares: f64 = mu_m.row(k).iter().zip(mu_r.row(j).iter()).map(|(a, b)| (a - b) * (a - b)).sum();
                s * kl_constant(s2k, s2j) + squares / (2.0 * s2j)
            })
        })
        .collect()
}

/// Divergence of `model` from `reference` that sees gates as well as experts: the KL divergence of
/// the joint law of (component, y) given x, averaged over the points `x`, after relabelling `model` to
/// match `reference` (Hungarian assignment on the same summed cost):
/// `D = (1/S) sum_s sum_k pi_k(x_s) [log pi_k(x_s) - log rho_{s(k)}(x_s) + KL(N_k(x_s) || N'_{s(k)}(x_s))]`,
/// with `pi`, `N` the model's gate and experts and `rho`, `N'` the reference's. It bounds the KL
/// divergence between the two mixtures from above and is 0 only when they coincide up to labels, so
/// it catches what the transport objective cannot: experts attached to the wrong gates. Computed as
/// the pool of this one model ([`LargeModel::joint_divergences`]); NaN when `x` has no row.
pub fn joint_divergence(model: &Moe, reference: &Moe, x: ArrayView2<f64>) -> f64 {
    match LargeModel::new(&[model], &[1], x) {
        Ok(alone) => alone.joint_divergences(&[model], &AtPoints::new(reference, x))[0],
        Err(_) => f64::NAN, // no points: 0 / 0
    }
}

/// A model's gate log-probabilities and expert means at a set of points (S x K each): what
/// [`joint_divergence`] needs of each model, computed once for a reference that many models are
/// compared with.
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

/// The joint divergence from a model's summed pair costs (`cost[[k, j]]`, k of the model, j of the
/// reference, summed over `points` points): the cost of the best assignment of the model's experts
/// to the reference's (Hungarian), divided by the points.
fn pair_divergence(cost: &Array2<f64>, points: usize) -> f64 {
    let (k_m, k_r) = cost.dim();
    let n = k_m.max(k_r);
    let square = Array2::from_shape_fn((n, n), |(k, j)| if k < k_m && j < k_r { cost[[k, j]] } else { 0.0 });
    let assignment = crate::numeric::matching::min_cost_assignment(&square);
    let total: f64 = (0..k_m).map(|k| if assignment[k] < k_r { cost[[k, assignment[k]]] } else { 0.0 }).sum();
    total / points as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::rng;
    use ndarray::Array2;
    use rand::RngExt;

    /// `count` local models with K = 3 on d = 2, with random gates, experts and variances, and 50
    /// supporting points: L = 3 count large experts.
    fn pool(count: usize) -> (Vec<Moe>, Array2<f64>) {
        pool_at(count, 50)
    }

    /// `count` random local models (K = 3, d = 2) and `points` random supporting points.
    fn pool_at(count: usize, points: usize) -> (Vec<Moe>, Array2<f64>) {
        let mut r = rng::stream(11, &[]);
        let mut draw = |rows: usize, cols: usize, scale: f64| {
            Array2::from_shape_fn((rows, cols), |_| scale * (r.random::<f64>() - 0.5))
        };
        let features = vec!["x1".to_string(), "x2".to_string()];
        let models = (0..count)
            .map(|_| {
                let variances = draw(3, 1, 1.0).column(0).mapv(|v| 0.3 + v * v);
                Moe::new(features.clone(), draw(3, 3, 4.0), draw(3, 3, 10.0), variances).expect("a valid model")
            })
            .collect();
        (models, draw(points, 2, 6.0))
    }

    /// The cost of sending large expert l to candidate k at point s, from the formula.
    fn cost(large: &LargeModel, coef: &Array2<f64>, var: &Array1<f64>, s: usize, l: usize, k: usize) -> f64 {
        let (s2l, s2k) = (large.variances[l], var[k]);
        let mu_k = large.xt.row(s).dot(&coef.row(k));
        let r = large.means[[s, l]] - mu_k;
        0.5 * ((s2k / s2l).ln() + s2l / s2k - 1.0 + r * r / s2k)
    }

    #[test]
    fn the_plan_sends_every_expert_to_its_cheapest_candidate_and_sums_what_each_receives() {
        // 13 models: L = 39, not a multiple of the lanes, so the remainder path runs too.
        let (models, support) = pool(13);
        let refs: Vec<&Moe> = models.iter().collect();
        let large = LargeModel::new(&refs, &[100; 13], support.view()).unwrap();
        let (coef, var) = (models[4].experts.clone(), models[7].variances.clone());
        let plan = large.plan(&coef, var.view());
        let (s_n, l_n) = (large.n_support(), large.n_experts());
        let mut objective = 0.0;
        for s in 0..s_n {
            let (mut mass, mut mean_mass) = ([0.0; 3], [0.0; 3]);
            for l in 0..l_n {
                let costs: Vec<f64> = (0..3).map(|k| cost(&large, &coef, &var, s, l, k)).collect();
                let k = plan.target[s * l_n + l] as usize;
                assert!(costs.iter().all(|&c| costs[k] <= c), "point {s}, expert {l}: {costs:?} -> {k}");
                let w = large.weights[[s, l]];
                mass[k] += w;
                mean_mass[k] += w * large.means[[s, l]];
                objective += w * costs[k];
            }
            for k in 0..3 {
                assert!((plan.mass[[s, k]] - mass[k]).abs() <= 1e-14, "mass at {s}, {k}");
                assert!((plan.mean_mass[[s, k]] - mean_mass[k]).abs() <= 1e-12 * (1.0 + mean_mass[k].abs()));
            }
        }
        assert!((plan.objective - objective).abs() <= 1e-12 * objective, "{} vs {objective}", plan.objective);
        for (s, row) in plan.mass.outer_iter().enumerate() {
            assert!((row.sum() - 1.0).abs() < 1e-12, "the weights sum to 1 at point {s}");
        }
    }

    #[test]
    fn the_plan_is_the_same_bits_with_and_without_vector_instructions() {
        let (models, support) = pool(21);
        let refs: Vec<&Moe> = models.iter().collect();
        let large = LargeModel::new(&refs, &[50; 21], support.view()).unwrap();
        let (coef, var) = (&models[2].experts, &models[3].variances);
        let mu_k = large.xt.dot(&coef.t());
        let costs = Costs::new(&large.variances, var.view());
        let (w, mu, mu_k) =
            (large.weights.as_slice().unwrap(), large.means.as_slice().unwrap(), mu_k.as_slice().unwrap());
        // Each path fills a plan made for other candidates, so that nothing is left over by chance.
        let run = |path: &dyn Fn(&mut Plan)| {
            let mut plan = large.plan(&models[5].experts, models[6].variances.view());
            plan.cost_by_expert.fill(0.0);
            path(&mut plan);
            plan
        };
        let plain = run(&|p: &mut Plan| assign(Width::Baseline, &costs, w, mu, mu_k, p));
        for width in Width::available() {
            let fast = run(&|p: &mut Plan| assign(width, &costs, w, mu, mu_k, p));
            assert_eq!(plain.target, fast.target, "{width:?}");
            assert_eq!(plain.mass, fast.mass, "{width:?}");
            assert_eq!(plain.mean_mass, fast.mean_mass, "{width:?}");
            assert_eq!(plain.cost_by_expert, fast.cost_by_expert, "{width:?}");
        }
        eprintln!("compared the plain plan with the widths this processor has: {:?}", Width::available());
        let dispatched = large.plan(coef, var.view());
        assert_eq!(plain.target, dispatched.target, "the dispatched path gives the plain plan");
    }

    #[test]
    fn pooling_and_screening_are_the_same_bits_at_every_vector_width() {
        // More points than one block of the pooling's logits.
        let (models, support) = pool_at(21, POOL_BLOCK_ROWS + 30);
        let refs: Vec<&Moe> = models.iter().collect();
        let large = LargeModel::new(&refs, &[50; 21], support.view()).unwrap();
        let gates = ndarray::concatenate(Axis(0), &models.iter().map(|m| m.gate.view()).collect::<Vec<_>>()).unwrap();
        let columns: Vec<std::ops::Range<usize>> = (0..21).map(|m| 3 * m..3 * m + 3).collect();
        let softmax = |width| {
            let (mut weights, mut sums) = (Array2::<f64>::zeros(large.weights.dim()), vec![0.0; 63]);
            pool_gates(width, support.view(), &gates, &columns, &large.lambdas, &mut weights, &mut sums);
            (weights, sums)
        };
        let reference = AtPoints::new(&models[4], support.view());
        let pooled = Pooled { weights: large.weights.as_slice().unwrap(), means: large.means.as_slice().unwrap() };
        let (half_prec, scale, constant) = (vec![0.3, 0.7, 1.1], vec![21.0; 63], vec![0.01; 3 * 63]);
        let costs = |width| {
            let mut cost = vec![0.0; 3 * 63];
            pair_costs(width, &pooled, &reference, &half_prec, &scale, &constant, &mut cost);
            cost
        };
        let (plain_softmax, plain_costs) = (softmax(Width::Baseline), costs(Width::Baseline));
        assert_eq!(
            (&plain_softmax.0, &plain_softmax.1),
            (&large.weights, large.gate_log_sums.as_ref().unwrap()),
            "the pool's own softmax"
        );
        assert!(plain_costs.iter().all(|c| c.is_finite() && *c != 0.0));
        for width in Width::available() {
            assert_eq!(softmax(width), plain_softmax, "{width:?}");
            assert_eq!(costs(width), plain_costs, "{width:?}");
        }
    }

    #[test]
    fn ties_go_to_the_first_candidate() {
        let (models, support) = pool(3);
        let refs: Vec<&Moe> = models.iter().collect();
        let large = LargeModel::new(&refs, &[10; 3], support.view()).unwrap();
        // Candidates 1 and 2 are the same expert: every cost ties between them, and 2 never wins.
        let mut coef = models[0].experts.clone();
        let mut var = models[0].variances.clone();
        coef.row_mut(2).assign(&models[0].experts.row(1));
        var[2] = var[1];
        let plan = large.plan(&coef, var.view());
        assert!(plan.target.iter().all(|&k| k != 2), "a tie went to the later candidate");
        assert!(plan.target.contains(&1), "candidate 1 receives something");
    }

    #[test]
    fn pooling_keeps_each_local_gate_and_scores_every_model_as_one_at_a_time() {
        // 300 points: two whole blocks of the pooling's logits and a partial one.
        let (models, support) = pool_at(5, 2 * POOL_BLOCK_ROWS + 44);
        let refs: Vec<&Moe> = models.iter().collect();
        let large = LargeModel::new(&refs, &[10, 20, 30, 40, 50], support.view()).unwrap();
        let log_sums = large.gate_log_sums.as_ref().unwrap();
        for (m, model) in models.iter().enumerate() {
            let fresh = model.log_gate(support.view());
            for ((s, k), &a) in fresh.indexed_iter() {
                let w = large.weights[[s, 3 * m + k]];
                assert!((w - large.lambdas[m] * a.exp()).abs() <= 1e-15, "weight of model {m} at {s}");
            }
            for (k, column) in fresh.columns().into_iter().enumerate() {
                let direct: f64 = column.iter().map(|&a| a.exp() * a).sum();
                let pooled = log_sums[3 * m + k];
                assert!((pooled - direct).abs() <= 1e-12 * (1.0 + direct.abs()), "model {m}: {pooled} vs {direct}");
            }
        }
        let reference = AtPoints::new(&models[1], support.view());
        let pooled = large.joint_divergences(&refs, &reference);
        for (m, model) in models.iter().enumerate() {
            let alone = joint_divergence(model, &models[1], support.view());
            assert!((pooled[m] - alone).abs() <= 1e-12 * (1.0 + alone), "model {m}: {} vs {alone}", pooled[m]);
        }
        assert!(pooled[1].abs() < 1e-12, "a model is at divergence 0 from itself");
        // Against the formula summed directly, the best of the 3! relabellings.
        let (lr, mr, r) = (models[1].log_gate(support.view()), models[1].expert_means(support.view()), &models[1]);
        for (m, model) in models.iter().enumerate() {
            let (lp, mu) = (model.log_gate(support.view()), model.expert_means(support.view()));
            let kl = |s: usize, k: usize, j: usize| {
                let (s2, s2r, d) = (model.variances[k], r.variances[j], mu[[s, k]] - mr[[s, j]]);
                0.5 * ((s2r / s2).ln() + s2 / s2r + d * d / s2r - 1.0)
            };
            let perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
            let direct = perms
                .iter()
                .map(|p| {
                    let total: f64 = (0..support.nrows())
                        .flat_map(|s| (0..3).map(move |k| (s, k)))
                        .map(|(s, k)| lp[[s, k]].exp() * (lp[[s, k]] - lr[[s, p[k]]] + kl(s, k, p[k])))
                        .sum();
                    total / support.nrows() as f64
                })
                .fold(f64::INFINITY, f64::min);
            assert!((pooled[m] - direct).abs() <= 1e-10 * (1.0 + direct), "model {m}: {} vs {direct}", pooled[m]);
        }
    }
}
