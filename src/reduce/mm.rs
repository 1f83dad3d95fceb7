//! The server's reduction (docs/reduction.md): from M local models, find the K-expert model closest in
//! expected transport divergence to their weighted average, by the MM algorithm, then fit its gate.
//!
//! MM, alternating two exact minimisations so that `J` never increases:
//! - assignment: `k*(l, s) = argmin_k c_lk(x_s)`, `P_lks = w_l(x_s)` on `k*`, else 0 (see `transport`);
//! - update: `b_k = argmin_b sum_{s,l} P_lks (xt_s . b_l - xt_s . b)^2` (weighted least squares onto the
//!   large experts' means), `s2_k = sum_{s,l} P_lks [s2_l + (xt_s . b_l - xt_s . b_k)^2] / sum_{s,l} P_lks`.
//!
//! A reduced expert with no mass is re-seeded from the large expert with the largest cost. Starts:
//! k-means on the large experts, the label-aligned average, and the best of a few local models; the
//! smallest final `J` wins. The number of full MM runs is fixed (not one per machine), so the cost is
//! O(iterations x S x L x K) with L = M K.
//!
//! Screening (not in the paper): a local model stuck in a poor optimum, or with labels mixed up, drags
//! the reduced model. Each local model is scored by its joint divergence from the best start's model
//! (`transport::joint_divergence`, which sees gates as well as experts); scores far above the others by
//! a median/MAD rule are flagged, and with `OutlierPolicy::Drop` MM goes on from the best start without
//! those machines, their weights renormalised over the rest.

use ndarray::{Array1, Array2, Axis, s};

use crate::numeric::gate;
use crate::numeric::kmeans;
use crate::numeric::linalg::{spd_solve, weighted_grams, with_intercept};
use crate::numeric::model::Moe;
use crate::numeric::range::{MAX_ITERATIONS, Range, RangeError, at_least, within};
use crate::numeric::rng;
use crate::numeric::scaling::ColumnScaling;
use crate::numeric::transport::{AtPoints, BySlot, LargeModel, Plan, PoolError};
use crate::reduce::baselines;

/// Relative ridge of the reduced experts' least-squares systems.
const MM_RIDGE: f64 = 1e-12;
/// Lloyd iterations of the k-means start.
const KMEANS_ITERATIONS: usize = 20;

/// How an MM run is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// k-means on the large experts' vectors `(b_l, log s2_l)` (standardised), mass-weighted centers.
    Kmeans,
    /// The label-aligned average of the local models (needs every local model to have K experts).
    AlignedAverage,
    /// The local model with the smallest transport divergence from the large model, among the
    /// `best_local_candidates` largest shards.
    BestLocal,
}

/// What the server does with local models whose transport cost is far above the others'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutlierPolicy {
    /// The paper's method: no screening.
    Keep,
    /// Screen and report flagged machines, but reduce with every model.
    Flag,
    /// Screen, then go on without the flagged machines (weights renormalised).
    #[default]
    Drop,
}

impl OutlierPolicy {
    /// Every policy, by the name used in flags, scenarios and messages.
    pub const ALL: [(&'static str, OutlierPolicy); 3] =
        [("drop", OutlierPolicy::Drop), ("flag", OutlierPolicy::Flag), ("keep", OutlierPolicy::Keep)];

    /// The policy called `name`.
    pub fn parse(name: &str) -> Result<OutlierPolicy, String> {
        OutlierPolicy::ALL.iter().find(|(n, _)| *n == name).map(|(_, p)| *p).ok_or_else(|| {
            let names: Vec<String> = OutlierPolicy::ALL.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            format!("expected one of {}, got \"{name}\"", names.join(", "))
        })
    }
}

/// Settings of the reduction.
#[derive(Debug, Clone, PartialEq)]
pub struct ReductionSettings {
    /// Number of reduced experts K.
    pub k: usize,
    /// Maximum MM iterations per start.
    pub max_iter: usize,
    /// Stop when `|J_t - J_{t-1}| <= tol * J_{t-1}`.
    pub tol: f64,
    /// Starts to try; the smallest final objective wins.
    pub inits: Vec<Init>,
    /// How many local models (largest shards first) the `BestLocal` start considers.
    pub best_local_candidates: usize,
    /// Newton steps of the final gate fit.
    pub gate_max_steps: usize,
    /// Seed of the k-means start.
    pub seed: u64,
    /// Screening of outlying local models.
    pub outliers: OutlierPolicy,
    /// A machine is flagged when its score exceeds the median by more than this many robust
    /// standard deviations (1.4826 MAD) and is more than `OUTLIER_MIN_RATIO` times the median.
    pub outlier_threshold: f64,
}

impl Default for ReductionSettings {
    fn default() -> Self {
        ReductionSettings {
            k: 3,
            max_iter: 500,
            tol: 1e-6,
            inits: vec![Init::Kmeans, Init::AlignedAverage, Init::BestLocal],
            best_local_candidates: 8,
            gate_max_steps: 100,
            seed: 1,
            outliers: OutlierPolicy::Drop,
            outlier_threshold: 10.0,
        }
    }
}

/// Why a reduction could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReductionError {
    /// The local models cannot be pooled.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// An out-of-range setting.
    #[error("reduction setting `{name}`: {error}")]
    Setting { name: &'static str, error: RangeError },
    /// The reduced model overflowed (local models whose values are near the limits of f64).
    #[error(
        "the reduced model is not finite ({0}): the local models' values are too large to combine; rescale the data"
    )]
    NotFinite(String),
}

/// One MM run: the experts it ended with, its objective after every assignment, its final plan.
#[derive(Debug, Clone)]
pub struct MmRun {
    /// Reduced expert coefficients, K x (d+1).
    pub coef: Array2<f64>,
    /// Reduced expert variances, K.
    pub variances: Array1<f64>,
    /// `J` after each assignment step (index 0: the start).
    pub trace: Vec<f64>,
    /// The plan at the end.
    pub plan: Plan,
    /// Whether it stopped on the tolerance (not on the iteration cap).
    pub converged: bool,
}

/// The reduced model and how it was found.
#[derive(Debug, Clone)]
pub struct Reduction {
    /// The K-component reduced MoE (raw scale).
    pub model: Moe,
    /// Objective trace of the retained MM run on every supporting point: when the starts ran on fewer
    /// points, the refinement from the best start's end.
    pub objective_trace: Vec<f64>,
    /// Its start.
    pub init: Init,
    /// Every MM run with its start and objective trace: the starts and the best one's continuation
    /// (on the start points), then the refinement (on every point), or, when screening drops
    /// machines, the run from the best start's experts on the kept machines' start points and its
    /// refinement.
    pub runs: Vec<(Init, Vec<f64>)>,
    /// Work of every MM run: supporting points x large experts x plans (one per iteration and one
    /// for its start), summed, plus the screening's plan on all points when it drops machines and
    /// the starts ran on fewer points: the model clock's unit for MM.
    pub work: u64,
    /// Size of the pool of every local model (before any drop): supporting points x large experts x
    /// (d + 1), the model clock's unit for what scales with it once per reduction (pooling,
    /// screening, the gate fits).
    pub pooled: u64,
    /// The large model the reduced model was fitted to, at every supporting point: of every local
    /// model, or of the kept ones when screening dropped machines (`dropped`).
    pub large: LargeModel,
    /// Each local model's joint divergence from the screening reference (empty with `keep`).
    pub scores: Vec<f64>,
    /// Indices (into the local models) of the machines flagged as outliers.
    pub flagged: Vec<usize>,
    /// Whether the flagged machines were left out of the reduced model.
    pub dropped: bool,
}

impl Reduction {
    /// MM iterations over every run: `sum over runs of (trace length - 1)`.
    pub fn mm_iterations(&self) -> usize {
        self.runs.iter().map(|(_, t)| t.len() - 1).sum()
    }
}

/// Supporting points the starts' MM runs use: an evenly spaced subset of this many when there are
/// more (the full set then only refines the best start).
pub const START_POINTS: usize = 250;

/// The pool of local models at the supporting points, and at the start points when those are fewer.
struct Pool {
    full: LargeModel,
    starts: Option<LargeModel>,
}

impl Pool {
    fn new(full: LargeModel) -> Pool {
        let s = full.n_support();
        let starts = (s > START_POINTS).then(|| {
            let points: Vec<usize> = (0..START_POINTS).map(|i| i * s / START_POINTS).collect();
            full.at_points(&points)
        });
        Pool { full, starts }
    }

    /// Where the starts run.
    fn for_starts(&self) -> &LargeModel {
        self.starts.as_ref().unwrap_or(&self.full)
    }
}

/// Every MM run of a reduction: its start and objective trace, and the work done (points x large
/// experts x plans, summed).
#[derive(Default)]
struct RunLog {
    runs: Vec<(Init, Vec<f64>)>,
    work: u64,
}

impl RunLog {
    /// Adds a run: its plans (its start's and one per iteration) are its work.
    fn record(&mut self, init: Init, large: &LargeModel, run: &MmRun) {
        self.plans(large, run.trace.len());
        self.runs.push((init, run.trace.clone()));
    }

    /// Adds the work of `count` plans on `large`.
    fn plans(&mut self, large: &LargeModel, count: usize) {
        self.work += (large.n_support() * large.n_experts() * count) as u64;
    }
}

/// Reduces `locals` (fitted on shards of sizes `sizes`) to one K-component model using the supporting
/// covariates `support` (S x d, raw scale).
///
/// Every start runs [`START_ITERATIONS`] MM iterations on the start points ([`START_POINTS`] of the
/// S), the best one (smallest objective) continues there to convergence and is then refined by MM on
/// all S points, the gate fitted on all of them. With screening, each local model is first scored on
/// all S points against the best start's experts (their gate fitted on all S points); when machines
/// are dropped, MM goes on from those experts on the pool of the kept machines instead (on the start
/// points to convergence, then refined on all S points): the starts already chose the optimum's
/// basin (docs/reduction.md compares this with starting again).
pub fn reduce(
    locals: &[&Moe],
    sizes: &[usize],
    support: ndarray::ArrayView2<f64>,
    settings: &ReductionSettings,
) -> Result<Reduction, ReductionError> {
    validate(settings)?;
    let pool = Pool::new(LargeModel::new(locals, sizes, support)?);
    let mut log = RunLog::default();
    let (init, run) = best_mm(pool.for_starts(), locals, sizes, settings, &mut log);
    // The joint divergence compares models of the same K; with mixed K there is no screening.
    let screening = settings.outliers != OutlierPolicy::Keep && locals.iter().all(|m| m.k() == settings.k);
    // The refinement's first plan: the best start's experts on every supporting point.
    let first_plan = pool.starts.as_ref().map(|_| pool.full.plan(&run.coef, run.variances.view()));
    let (scores, flagged, reference_gate) = if screening {
        let plan = first_plan.as_ref().unwrap_or(&run.plan);
        let (reference, gate) =
            reduced_model(&pool.full, plan, run.coef.clone(), run.variances.clone(), None, locals, settings)?;
        let scores = pool.full.joint_divergences(locals, &AtPoints::new(&reference, support));
        let flagged = flag_outliers(&scores, settings.outlier_threshold);
        (scores, flagged, Some(gate))
    } else {
        (Vec::new(), Vec::new(), None)
    };
    let dropped = settings.outliers == OutlierPolicy::Drop && !flagged.is_empty() && flagged.len() < locals.len();
    let pooled = (pool.full.n_support() * pool.full.n_experts() * pool.full.xt.ncols()) as u64;
    let ((model, objective_trace), large) = if dropped {
        let keep: Vec<usize> = (0..locals.len()).filter(|m| !flagged.contains(m)).collect();
        let kept: Vec<&Moe> = keep.iter().map(|&m| locals[m]).collect();
        // The screening's plan on every point, which no refinement on this pool will use: freed
        // now, so that the kept pool's plans reuse its memory.
        log.plans(&pool.full, usize::from(first_plan.is_some()));
        drop(first_plan);
        let sub = Pool { starts: pool.starts.map(|s| s.keeping(&keep)), full: pool.full.keeping(&keep) };
        let warm = mm(sub.for_starts(), run.coef, run.variances, settings.max_iter, settings.tol);
        log.record(init, sub.for_starts(), &warm);
        let run = refine(&sub, init, warm, None, settings, &mut log);
        // The reference's gate, on the same points, starts the kept machines' gate fit.
        (finish(&sub.full, run, reference_gate.as_ref(), &kept, settings)?, sub.full)
    } else {
        let run = refine(&pool, init, run, first_plan, settings, &mut log);
        (finish(&pool.full, run, None, locals, settings)?, pool.full)
    };
    let RunLog { runs, work } = log;
    Ok(Reduction { model, objective_trace, init, runs, work, pooled, large, scores, flagged, dropped })
}

/// The best start's run continued by MM on every supporting point to convergence (when it ran on
/// fewer points; otherwise it already ran on all of them), from `first_plan` when it was made already.
fn refine(
    pool: &Pool,
    init: Init,
    run: MmRun,
    first_plan: Option<Plan>,
    settings: &ReductionSettings,
    log: &mut RunLog,
) -> MmRun {
    match &pool.starts {
        Some(_) => {
            let plan = first_plan.unwrap_or_else(|| pool.full.plan(&run.coef, run.variances.view()));
            let refined =
                mm_from(&pool.full, run.coef, run.variances, plan, settings.max_iter, settings.tol, &mut |_, _, _| {});
            log.record(init, &pool.full, &refined);
            refined
        }
        None => run,
    }
}

/// The reduced model of an MM run (its gate fitted to the plan, from `gate_start`, see
/// [`reduced_model`]) and the run's objective trace; an error when an expert or a variance
/// overflowed.
fn finish(
    large: &LargeModel,
    run: MmRun,
    gate_start: Option<&Array2<f64>>,
    locals: &[&Moe],
    settings: &ReductionSettings,
) -> Result<(Moe, Vec<f64>), ReductionError> {
    let (model, _) = reduced_model(large, &run.plan, run.coef, run.variances, gate_start, locals, settings)?;
    Ok((model, run.trace))
}

/// The experts `coef`, `variances` with the gate fitted to `plan` from `gate_start` (coefficients on
/// the standardised supporting points, zeros when `None`), and that gate on the standardised
/// points; an error when they overflowed.
fn reduced_model(
    large: &LargeModel,
    plan: &Plan,
    coef: Array2<f64>,
    variances: Array1<f64>,
    gate_start: Option<&Array2<f64>>,
    locals: &[&Moe],
    settings: &ReductionSettings,
) -> Result<(Moe, Array2<f64>), ReductionError> {
    let (standardised, gate) = fit_gate_from(large, plan, gate_start, settings.gate_max_steps);
    let mut model = Moe::new(locals[0].features.clone(), gate, coef, variances)
        .map_err(|e| ReductionError::NotFinite(e.to_string()))?;
    model.target = locals[0].target.clone();
    Ok((model, standardised))
}

/// MM iterations of every start before the best one is continued.
pub const START_ITERATIONS: usize = 5;

/// Every start's MM run on one pool for at most [`START_ITERATIONS`] iterations, then the one with
/// the smallest objective continued to convergence (every run recorded in `log`); returns that
/// start and its run.
fn best_mm(
    large: &LargeModel,
    locals: &[&Moe],
    sizes: &[usize],
    settings: &ReductionSettings,
    log: &mut RunLog,
) -> (Init, MmRun) {
    let mut best: Option<(Init, MmRun)> = None;
    let warmup = START_ITERATIONS.min(settings.max_iter);
    for &init in &settings.inits {
        let Some((coef, var)) = start_experts(init, large, locals, sizes, settings) else { continue };
        let run = mm(large, coef, var, warmup, settings.tol);
        log.record(init, large, &run);
        if best.as_ref().is_none_or(|(_, b)| run.plan.objective < b.plan.objective) {
            best = Some((init, run));
        }
    }
    let (init, run) = best.expect("the k-means start always applies");
    if run.converged || warmup == settings.max_iter {
        return (init, run); // converged (or capped) within the warm-up
    }
    let continued = mm(large, run.coef, run.variances, settings.max_iter - warmup, settings.tol);
    log.record(init, large, &continued);
    (init, continued)
}

/// A flagged machine's score must also exceed the median score by this factor, so that a tight
/// cluster of equally good machines (tiny MAD) is never split over differences that do not matter.
/// Calibration (K = 3, d = 2, 16 machines of 3,000 rows, 20 trials): clean machines reached at most
/// robust z 5.4 and 2.3 x the median; a machine stuck with two components merged at least z 264 and
/// 44 x the median.
pub const OUTLIER_MIN_RATIO: f64 = 5.0;

/// Indices of outlying scores: above `median + threshold * 1.4826 MAD` and above
/// `OUTLIER_MIN_RATIO` times the median. Fewer than 3 machines: nothing is flagged.
pub fn flag_outliers(scores: &[f64], threshold: f64) -> Vec<usize> {
    if scores.len() < 3 {
        return Vec::new();
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
    };
    let med = median(&mut scores.to_vec());
    let mad = 1.4826 * median(&mut scores.iter().map(|s| (s - med).abs()).collect());
    // The absolute floor (1e-3 nats per point, negligible next to any real disagreement) keeps
    // round-off from deciding when the models agree almost exactly.
    let cut = (med + threshold * mad).max(OUTLIER_MIN_RATIO * med).max(1e-3);
    (0..scores.len()).filter(|&m| scores[m] > cut).collect()
}

fn validate(s: &ReductionSettings) -> Result<(), ReductionError> {
    let bad = |name: &'static str| move |error: RangeError| ReductionError::Setting { name, error };
    at_least(s.k, 1).map_err(bad("k"))?;
    within(s.max_iter, 1, MAX_ITERATIONS).map_err(bad("max_iter"))?;
    Range::NonNegative.check(s.tol).map_err(bad("tol"))?;
    Range::Positive.check(s.outlier_threshold).map_err(bad("outlier_threshold"))?;
    if !s.inits.contains(&Init::Kmeans) {
        let expected = "a list that includes `kmeans` (the start that always applies)".to_string();
        return Err(bad("inits")(RangeError { expected, got: format!("{:?}", s.inits) }));
    }
    Ok(())
}

/// Starting experts for one kind of start, or `None` when it does not apply (an aligned average of
/// local models with a different K).
pub fn start_experts(
    init: Init,
    large: &LargeModel,
    locals: &[&Moe],
    sizes: &[usize],
    settings: &ReductionSettings,
) -> Option<(Array2<f64>, Array1<f64>)> {
    let k = settings.k;
    match init {
        Init::Kmeans => Some(kmeans_start(large, k, settings.seed)),
        Init::AlignedAverage => {
            let avg = baselines::aligned_average(locals, sizes, large.xt.view()).ok()?;
            (avg.k() == k).then_some((avg.experts, avg.variances))
        }
        Init::BestLocal => {
            let mut order: Vec<usize> = (0..locals.len()).filter(|&m| locals[m].k() == k).collect();
            order.sort_by_key(|&m| std::cmp::Reverse(sizes[m]));
            order.truncate(settings.best_local_candidates.max(1));
            let scored: Vec<(usize, f64)> = order.into_iter().map(|m| (m, large.divergence_to(locals[m]))).collect();
            let (best, _) = scored.into_iter().min_by(|a, b| a.1.total_cmp(&b.1))?;
            Some((locals[best].experts.clone(), locals[best].variances.clone()))
        }
    }
}

/// k-means start: cluster the large experts' `(b_l, log s2_l)` (columns standardised; experts listed
/// in a canonical order within each machine so that relabelling a local model changes nothing), then
/// each reduced expert = the mass-weighted mean of its cluster (coefficients and variances).
fn kmeans_start(large: &LargeModel, k: usize, seed: u64) -> (Array2<f64>, Array1<f64>) {
    let (l_n, p) = large.experts.dim();
    let mut order: Vec<usize> = (0..l_n).collect();
    order.sort_by(|&a, &b| {
        large.machine_of[a].cmp(&large.machine_of[b]).then_with(|| {
            let (ra, rb) = (large.experts.row(a), large.experts.row(b));
            ra.iter()
                .zip(rb.iter())
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    });
    let mut pts = Array2::<f64>::zeros((l_n, p + 1));
    for (i, &l) in order.iter().enumerate() {
        pts.slice_mut(s![i, ..p]).assign(&large.experts.row(l));
        pts[[i, p]] = large.variances[l].ln();
    }
    let pts = ColumnScaling::fit_safe(pts.view()).apply(pts.view());
    let mut rng = rng::stream(seed, &[0x4d4d]);
    let labels = kmeans::labels(pts.view(), k, KMEANS_ITERATIONS, l_n, &mut rng);
    let mass = large.weights.sum_axis(Axis(0));
    let mut coef = Array2::<f64>::zeros((k, p));
    let mut var = Array1::<f64>::zeros(k);
    let mut total = vec![0.0; k];
    for (i, &l) in order.iter().enumerate() {
        let c = labels[i];
        let w = mass[l].max(1e-300);
        coef.row_mut(c).scaled_add(w, &large.experts.row(l));
        var[c] += w * large.variances[l];
        total[c] += w;
    }
    for c in 0..k {
        if total[c] > 0.0 {
            coef.row_mut(c).mapv_inplace(|v| v / total[c]);
            var[c] /= total[c];
        } else {
            // More reduced experts than distinct clusters: start it on a large expert; MM re-seeds it.
            let l = order[c % l_n];
            coef.row_mut(c).assign(&large.experts.row(l));
            var[c] = large.variances[l];
        }
    }
    (coef, var)
}

/// Runs MM from the given experts until the relative change of `J` is at most `tol` or `max_iter`
/// updates were made.
pub fn mm(large: &LargeModel, coef: Array2<f64>, var: Array1<f64>, max_iter: usize, tol: f64) -> MmRun {
    mm_observed(large, coef, var, max_iter, tol, &mut |_, _, _| {})
}

/// What [`mm_observed`] calls with the experts, variances and plan of every iteration.
pub type Observer<'a> = dyn FnMut(&Array2<f64>, &Array1<f64>, &Plan) + 'a;

/// [`mm`], calling `observe` with the experts, variances and plan of the start and of every
/// iteration (for `dmoe teach`, which draws each one).
pub fn mm_observed(
    large: &LargeModel,
    coef: Array2<f64>,
    var: Array1<f64>,
    max_iter: usize,
    tol: f64,
    observe: &mut Observer,
) -> MmRun {
    let plan = large.plan(&coef, var.view());
    mm_from(large, coef, var, plan, max_iter, tol, observe)
}

/// [`mm_observed`] from the start's plan, `plan` (of `coef`, `var`).
fn mm_from(
    large: &LargeModel,
    mut coef: Array2<f64>,
    mut var: Array1<f64>,
    mut plan: Plan,
    max_iter: usize,
    tol: f64,
    observe: &mut Observer,
) -> MmRun {
    observe(&coef, &var, &plan);
    let mut trace = vec![plan.objective];
    for _ in 0..max_iter {
        update(large, &plan, &mut coef, &mut var);
        large.replan(&coef, var.view(), &mut plan);
        observe(&coef, &var, &plan);
        let (prev, j) = (trace[trace.len() - 1], plan.objective);
        trace.push(j);
        // Relative test, plus an absolute floor: J at round-off level (a perfect fit) is done.
        if (prev - j).abs() <= tol * prev || j <= 1e-12 * large.n_support() as f64 {
            return MmRun { coef, variances: var, trace, plan, converged: true };
        }
    }
    MmRun { coef, variances: var, trace, plan, converged: false }
}

/// The MM update for a fixed plan: weighted least squares and the exact variance minimiser for every
/// reduced expert with mass; re-seeding for those without.
fn update(large: &LargeModel, plan: &Plan, coef: &mut Array2<f64>, var: &mut Array1<f64>) {
    let (s_n, l_n, k_n) = (large.n_support(), large.n_experts(), plan.k);
    let (mass, wmu) = (&plan.mass, &plan.mean_mass);
    let (weights, means) =
        (large.weights.as_slice().expect("standard layout"), large.means.as_slice().expect("standard layout"));
    let grams = weighted_grams(large.xt.view(), mass.view());
    let rhs = large.xt.t().dot(wmu);
    let totals = mass.sum_axis(Axis(0));
    for k in 0..k_n {
        if totals[k] > 0.0
            && let Some(b) = spd_solve(&grams[k], rhs.column(k), MM_RIDGE)
        {
            coef.row_mut(k).assign(&b);
        }
    }
    let mu_k = large.xt.dot(&coef.t());
    let variances = large.variances.as_slice().expect("contiguous");
    let mut sums = BySlot::<1>::new(k_n);
    for s in 0..s_n {
        let row = s * l_n..(s + 1) * l_n;
        let mus = mu_k.row(s);
        let target = &plan.target[row.clone()];
        let values =
            target.iter().zip(&weights[row.clone()]).zip(&means[row]).zip(variances).map(|(((&k, &w), &mu), &v)| {
                let r = mu - mus[k as usize];
                [w * (v + r * r)]
            });
        sums.add_row(target, values);
    }
    let mut num = vec![0.0; k_n];
    sums.take(|k, [n]| num[k] = n);
    // The large experts by decreasing cost, sorted only when an expert has to be re-seeded.
    let mut costly: Vec<usize> = Vec::new();
    let mut reseeded = 0;
    for k in 0..k_n {
        if totals[k] > 0.0 {
            var[k] = num[k] / totals[k];
        } else {
            if costly.is_empty() {
                costly = (0..l_n).collect();
                costly.sort_by(|&a, &b| plan.cost_by_expert[b].total_cmp(&plan.cost_by_expert[a]));
            }
            let l = costly[reseeded % l_n];
            reseeded += 1;
            coef.row_mut(k).assign(&large.experts.row(l));
            var[k] = large.variances[l];
        }
    }
}

/// The reduced gate: a soft-label multinomial logistic regression of the plan's column sums
/// `tau_sk = sum_l P_lks` on the supporting points (standardised for conditioning, mapped back).
pub fn fit_gate(large: &LargeModel, plan: &Plan, max_steps: usize) -> Array2<f64> {
    fit_gate_from(large, plan, None, max_steps).1
}

/// [`fit_gate`] from `start` (coefficients on the standardised points; zeros when `None`): the gate
/// on the standardised points and on the raw scale. The scaling depends only on the points, so a
/// gate fitted on a pool of the same points is a valid start.
fn fit_gate_from(
    large: &LargeModel,
    plan: &Plan,
    start: Option<&Array2<f64>>,
    max_steps: usize,
) -> (Array2<f64>, Array2<f64>) {
    let x = large.xt.slice(s![.., 1..]);
    let scaling = ColumnScaling::fit_safe(x);
    let xt = with_intercept(scaling.apply(x).view());
    let zeros = Array2::zeros((plan.k, xt.ncols()));
    let (g, _) = gate::fit(xt.view(), plan.mass.view(), start.unwrap_or(&zeros), max_steps, 1e-14);
    let raw = scaling.coefficients_to_raw(&g, 1.0, 0.0);
    (g, raw)
}
