//! Local estimator: EM for the mixture of experts on one machine's data (docs/em.md).
//!
//! Work is done on standardised data (x and y z-scored, then an intercept column), and the result is
//! mapped back to the raw scale. One iteration is a few passes over the data in fixed row blocks:
//! E-step `tau_ik ∝ pi_k(x_i) N(y_i; b_k.xt_i, s2_k)` in log space; experts by weighted least squares
//! `b_k = (Xt' W_k Xt)^-1 Xt' W_k y` (Cholesky) and `s2_k = sum_i tau_ik r_ik^2 / sum_i tau_ik`, floored;
//! the gate by one Newton step with step halving (see `gate`). Every step maximises or does not
//! decrease its part of the expected complete log-likelihood, so the log-likelihood never decreases.
//!
//! Starts: the "short EM" strategy (Biernacki, Celeux & Govaert 2003): `restarts` starts each run for
//! `warmup_iter` iterations, and the one with the best log-likelihood is continued to convergence.
//! Starts alternate between k-means++ + Lloyd on standardised (x, y) and the Voronoi partition of the
//! k-means++ seeds alone (more diverse). Purely random labels are not used: with many rows they give
//! every expert the same global regression, i.e. no start at all.

use crate::numeric::blocks;
use crate::numeric::cputime::{process_cpu_seconds, thread_cpu_seconds};
use crate::numeric::gate;
use crate::numeric::kmeans;
use crate::numeric::linalg::{cholesky_lower, spd_solve, weighted_grams, with_intercept};
use crate::numeric::model::{FitSummary, Moe, add_log_normal, n_free_params};
use crate::numeric::range::{MAX_COMPONENTS, MAX_ITERATIONS, MAX_RESTARTS, MAX_THREADS, Range, RangeError, within};
use crate::numeric::rng;
use crate::numeric::scaling::ColumnScaling;
use crate::numeric::softmax;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, s};
use std::cell::Cell;

pub mod fedavg;
pub mod over_machines;

/// Relative ridge on the experts' weighted Gram matrices (keeps an almost empty expert solvable).
const EXPERT_RIDGE: f64 = 1e-10;
/// Lloyd iterations used by the k-means starts.
const LLOYD_ITERATIONS: usize = 10;
/// Rows that the k-means of a start is computed on (a random subset when there are more).
const KMEANS_MAX_POINTS: usize = 20_000;

/// EM settings. Validate with [`EmSettings::validate`] (done by [`fit`]) before any work.
#[derive(Debug, Clone, PartialEq)]
pub struct EmSettings {
    /// Number of components K (>= 1).
    pub k: usize,
    /// Number of starts (>= 1); the best after the warm-up is continued.
    pub restarts: usize,
    /// Iterations of each start before the best one is chosen.
    pub warmup_iter: usize,
    /// Maximum EM iterations of the retained run, warm-up included.
    pub max_iter: usize,
    /// Stop when `|L_t - L_{t-1}| <= tol * max(|L_{t-1}|, n)` on the standardised scale (the authors
    /// use `tol * |L_{t-1}|` with 1e-6).
    pub tol: f64,
    /// Variance floor, as a fraction of var(y).
    pub variance_floor: f64,
    /// Seed of the starts.
    pub seed: u64,
    /// Size of the random subset of rows that the starts' warm-ups run on, and that the gate's
    /// Newton steps take their curvature from, when the data have more rows (0: every row for both).
    /// At least [`MIN_SUBSET_ROWS`] otherwise.
    pub subset_rows: usize,
    /// Whether the retained run is accelerated by SQUAREM (plain EM steps otherwise); also exact EM
    /// over machines (`over_machines`).
    pub accelerate: bool,
    /// Threads for the passes over the rows (>= 1). The rows are cut into fixed blocks whose sums
    /// are added in block order (`blocks`), so the fit is the same for any number of threads. With
    /// more than one, `cpu_seconds` is the CPU time of the whole process.
    pub threads: usize,
}

/// Smallest non-zero `subset_rows`.
pub const MIN_SUBSET_ROWS: usize = 1000;

/// `subset_rows` is 0 (every row) or at least [`MIN_SUBSET_ROWS`].
pub fn check_subset_rows(rows: usize) -> Result<(), RangeError> {
    if rows == 0 || rows >= MIN_SUBSET_ROWS {
        return Ok(());
    }
    let expected = format!("0 (every row) or a whole number >= {MIN_SUBSET_ROWS}");
    Err(RangeError { expected, got: rows.to_string() })
}

impl Default for EmSettings {
    fn default() -> Self {
        EmSettings {
            k: 3,
            restarts: 6,
            warmup_iter: 20,
            max_iter: 1000,
            tol: 1e-8,
            variance_floor: 1e-6,
            seed: 1,
            subset_rows: 20_000,
            accelerate: true,
            threads: 1,
        }
    }
}

impl EmSettings {
    /// Checks every setting; the error names the setting and the accepted range.
    pub fn validate(&self) -> Result<(), EmError> {
        let bad = |name: &'static str| move |error: RangeError| EmError::Setting { name, error };
        if self.k == 0 {
            return Err(EmError::NoComponents);
        }
        within(self.k, 1, MAX_COMPONENTS).map_err(bad("k"))?;
        within(self.restarts, 1, MAX_RESTARTS).map_err(bad("restarts"))?;
        within(self.warmup_iter, 0, MAX_ITERATIONS).map_err(bad("warmup_iter"))?;
        within(self.max_iter, 1, MAX_ITERATIONS).map_err(bad("max_iter"))?;
        Range::NonNegative.check(self.tol).map_err(bad("tol"))?;
        Range::OpenUnit.check(self.variance_floor).map_err(bad("variance_floor"))?;
        check_subset_rows(self.subset_rows).map_err(bad("subset_rows"))?;
        within(self.threads, 1, MAX_THREADS).map_err(bad("threads"))?;
        Ok(())
    }
}

/// Why a fit could not be made. Every variant says what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmError {
    /// K = 0.
    #[error("K must be at least 1 (got 0)")]
    NoComponents,
    /// No feature columns.
    #[error("the model needs at least one feature column (got none)")]
    NoFeatures,
    /// An out-of-range setting.
    #[error("setting `{name}`: {error}")]
    Setting { name: &'static str, error: RangeError },
    /// Fewer rows than free parameters.
    #[error(
        "{rows} rows are too few for K = {k} components on d = {d} features: the model has {params} free parameters, so at least {params} rows are needed"
    )]
    TooFewRows { rows: usize, k: usize, d: usize, params: usize },
    /// A NaN or infinite value.
    #[error("row {row}, column `{column}`: the value is {value}; every value must be a finite number")]
    NonFinite { row: usize, column: String, value: f64 },
    /// A feature with no variation.
    #[error("column `{0}` is constant: it carries no information (and duplicates the intercept); drop it")]
    ConstantColumn(String),
    /// A response with no variation.
    #[error("the target `{0}` is constant: there is nothing to regress")]
    ConstantTarget(String),
    /// Two features that are affine copies of each other.
    #[error("columns `{0}` and `{1}` are duplicates (correlation {2:.6}): drop one of them")]
    DuplicateColumns(String, String, f64),
    /// A feature that is a linear combination of others.
    #[error("column `{0}` is a linear combination of the columns before it: drop it")]
    CollinearColumn(String),
    /// Values so large that their variance overflows.
    #[error("column `{0}` has values too large to standardise (its variance overflows): rescale it")]
    TooLarge(String),
    /// A bug: the fit panicked (the message says where). Reported instead of aborting a simulation.
    #[error("internal error in the local fit (please report it): {0}")]
    Internal(String),
    /// Every start produced a non-finite likelihood.
    #[error("every one of the {0} EM starts diverged (non-finite log-likelihood)")]
    AllStartsFailed(usize),
}

/// A fitted model with its diagnostics.
#[derive(Debug, Clone)]
pub struct FittedMoe {
    /// The model on the raw scale (its `fit` field holds a copy of `summary`, for the model file).
    pub model: Moe,
    /// How the fit went: log-likelihood, iterations, convergence, CPU time.
    pub summary: FitSummary,
    /// Log-likelihood after each iteration of the retained run on every row, raw scale (index 0: its
    /// start, or with a warm-up subset the best start's warmed-up parameters).
    pub trace: Vec<f64>,
    /// Warm-up traces of every start (raw scale), the retained one included: log-likelihoods of the
    /// warm-up rows (the subset, when there is one, so not comparable with `trace`).
    pub start_traces: Vec<Vec<f64>>,
}

impl FittedMoe {
    /// The mixture mean `yhat(x) = sum_k pi_k(x) b_k . [1, x]` of every row of `x` (n x d, the fitted
    /// features in order).
    pub fn predict(&self, x: ArrayView2<f64>) -> Array1<f64> {
        self.model.predict(x)
    }
}

/// Parameters on the standardised scale (the design has an intercept column).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    /// Gate coefficients, K x (d+1), last row 0.
    pub gate: Array2<f64>,
    /// Expert coefficients, K x (d+1).
    pub experts: Array2<f64>,
    /// Expert variances, K.
    pub variances: Array1<f64>,
}

/// The posterior and gate probabilities at the current parameters.
struct EStep {
    loglik: f64,
    tau: Array2<f64>,
    gate: gate::Probs,
}

/// z-scoring of x and y, kept to map parameters back to the raw scale.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scaling {
    x: ColumnScaling,
    y_mean: f64,
    y_sd: f64,
}

/// Fits a K-component MoE to `(x, y)` by EM with best-of-`restarts` starts.
///
/// `features` names the columns of x (for messages and the model); `target` names y. Bad input
/// (non-finite values, too few rows, constant or collinear columns) is an error, never a NaN model;
/// not converging within `max_iter` is a status in the result, not an error.
pub fn fit(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    features: &[String],
    target: &str,
    settings: &EmSettings,
) -> Result<FittedMoe, EmError> {
    let cpu = if settings.threads > 1 { process_cpu_seconds } else { thread_cpu_seconds };
    let cpu0 = cpu();
    settings.validate()?;
    let (n, d) = x.dim();
    assert_eq!(features.len(), d, "one name per feature column");
    assert_eq!(y.len(), n, "one response per row");
    if d == 0 {
        return Err(EmError::NoFeatures);
    }
    check_finite(x, y, features, target)?;
    let k = settings.k;
    let params = n_free_params(k, d);
    if n < params {
        return Err(EmError::TooFewRows { rows: n, k, d, params });
    }
    let (xs, ys, scaling) = standardise(x, y, features, target)?;
    let xt = with_intercept(xs.view());
    let floor = settings.variance_floor;

    // With many rows, the starts' warm-ups run on a random subset, and the gate's Newton steps on
    // every row take their curvature from that subset.
    let subset = Subset::draw(xt.view(), ys.view(), settings.subset_rows, settings.seed);
    let (warm_passes, full_passes) = (Cell::new(0), Cell::new(0));
    let all_rows = Problem {
        xt: xt.view(),
        y: ys.view(),
        floor,
        curvature: gate::Curvature::AllRows,
        passes: &full_passes,
        threads: settings.threads,
    };
    let (warm, full) = match &subset {
        Some(s) => (
            Problem { xt: s.xt.view(), y: s.y.view(), passes: &warm_passes, ..all_rows },
            Problem { curvature: gate::Curvature::Rows { rows: &s.rows, xt: s.xt.view() }, ..all_rows },
        ),
        None => (all_rows, all_rows),
    };
    let (wx, wy) = (warm.xt, warm.y);
    let m = wy.len();
    let pts = kmeans_points(wx, wy);
    let mut best: Option<(Params, Vec<f64>)> = None;
    let mut start_traces = Vec::with_capacity(settings.restarts);
    let warmup = settings.warmup_iter.min(settings.max_iter);
    for r in 0..settings.restarts {
        let mut rng = rng::stream(settings.seed, &[r as u64]);
        // Even starts: k-means++ then Lloyd; odd starts: the Voronoi cells of the k-means++ seeds.
        let lloyd = if r % 2 == 0 { LLOYD_ITERATIONS } else { 0 };
        let labels = kmeans::labels(pts.view(), k, lloyd, KMEANS_MAX_POINTS, &mut rng);
        let start = params_from_labels(wx, wy, &labels, k, floor);
        let mut trace = Vec::new();
        let (p, _) = iterate(&warm, start, warmup, settings.tol, &mut trace);
        start_traces.push(to_raw_trace(&trace, m, scaling.y_sd));
        let last = *trace.last().expect("a run records its start");
        if last.is_finite() && best.as_ref().is_none_or(|(_, t)| last > *t.last().unwrap()) {
            best = Some((p, trace));
        }
    }
    let (start, mut trace) = best.ok_or(EmError::AllStartsFailed(settings.restarts))?;
    let warmups: usize = start_traces.iter().map(|t| t.len() - 1).sum();
    let warmed = trace.len() - 1;
    let done = if subset.is_some() {
        // The retained run starts afresh on every row; its warm-up was on the subset.
        trace.clear();
        0
    } else {
        warmed
    };
    let (p, converged) = if subset.is_none() && (done < warmup || warmup == settings.max_iter) {
        // Converged (or capped) during the warm-up: the relative change test already decided.
        let conv = trace.len() >= 2 && rel_change(&trace, n) <= settings.tol;
        (start, conv)
    } else {
        // The warm-up iterations of the retained start count against max_iter, on any rows.
        let run = if settings.accelerate { iterate_squarem } else { iterate };
        run(&full, start, settings.max_iter - warmed, settings.tol, &mut trace)
    };
    let iterations = trace.len() - 1;
    let total_iterations = warmups + (iterations - done);
    let row_iterations = (m * warm_passes.get() + n * full_passes.get()) as u64;
    let trace = to_raw_trace(&trace, n, scaling.y_sd);
    let mut model = to_raw_model(&p, &scaling, features)?;
    model.target = Some(target.to_string());
    let summary = FitSummary {
        loglik: *trace.last().unwrap(),
        iterations,
        converged,
        cpu_seconds: cpu() - cpu0,
        n,
        restarts: settings.restarts,
        total_iterations,
        row_iterations,
    };
    model.fit = Some(summary.clone());
    Ok(FittedMoe { model, summary, trace, start_traces })
}

/// Change of the last log-likelihood step relative to `max(|L|, n)`: relative for the usual
/// |L| of order n, and per row when the standardised log-likelihood happens to sit near 0 (where a
/// purely relative test could never pass).
fn rel_change(trace: &[f64], n: usize) -> f64 {
    let (a, b) = (trace[trace.len() - 2], trace[trace.len() - 1]);
    (b - a).abs() / a.abs().max(n as f64)
}

/// Runs up to `max_iter` EM iterations from `p`, appending the log-likelihood at the start and after
/// every iteration to `trace`. Returns the last parameters and whether the tolerance was met. A step
/// whose log-likelihood is not finite is not taken: the run ends with the last finite parameters
/// (a start that is non-finite from the outset is discarded by the caller).
fn iterate(pb: &Problem, mut p: Params, max_iter: usize, tol: f64, trace: &mut Vec<f64>) -> (Params, bool) {
    let n = pb.y.len();
    let mut e = pb.e_step(&p);
    if trace.is_empty() {
        trace.push(e.loglik);
    }
    if !e.loglik.is_finite() {
        return (p, false);
    }
    for _ in 0..max_iter {
        let Some((next, e_next)) = pb.em_step(e, &p) else { return (p, false) };
        (p, e) = (next, e_next);
        trace.push(e.loglik);
        if rel_change(trace, n) <= tol {
            return (p, true);
        }
    }
    (p, false)
}

/// One EM problem on the standardised scale: the design (with intercept), the response, the
/// variance floor, where the gate's Newton step takes its curvature, and a count of the passes over
/// the rows (one per E-step, with or without an M-step before it: the work the model clock charges).
#[derive(Clone, Copy)]
struct Problem<'a> {
    xt: ArrayView2<'a, f64>,
    y: ArrayView1<'a, f64>,
    floor: f64,
    curvature: gate::Curvature<'a>,
    passes: &'a Cell<usize>,
    threads: usize,
}

impl Problem<'_> {
    /// The E-step at `p`, gate probabilities included.
    fn e_step(&self, p: &Params) -> EStep {
        self.passes.set(self.passes.get() + 1);
        let mu = expert_means(self.xt, &p.experts, self.threads);
        e_step(self.xt, self.y, p, gate::probs_on(self.xt, &p.gate, self.threads), mu.view(), self.threads)
    }

    /// One EM step from `p`, whose E-step is `e`: the M-step, then the E-step at the new parameters.
    /// `None` when the new log-likelihood is not finite (the step is not taken).
    fn em_step(&self, e: EStep, p: &Params) -> Option<(Params, EStep)> {
        self.passes.set(self.passes.get() + 1);
        let mut next = p.clone();
        let mu = update_experts(self.xt, self.y, e.tau.view(), &mut next, self.floor, self.threads);
        let (g, _, probs) = gate::newton_step(self.xt, e.tau.view(), &p.gate, e.gate, self.curvature, self.threads);
        next.gate = g;
        let e_next = e_step(self.xt, self.y, &next, probs, mu.view(), self.threads);
        e_next.loglik.is_finite().then_some((next, e_next))
    }
}

/// A random subset of the rows (indices in increasing order) with their design and response.
struct Subset {
    rows: Vec<usize>,
    xt: Array2<f64>,
    y: Array1<f64>,
}

impl Subset {
    /// `size` rows drawn without replacement from the seed's own stream, when there are more than
    /// `size > 0`; `None` when every row is used.
    fn draw(xt: ArrayView2<f64>, y: ArrayView1<f64>, size: usize, seed: u64) -> Option<Subset> {
        let n = y.len();
        if size == 0 || n <= size {
            return None;
        }
        let mut rows = rand::seq::index::sample(&mut rng::stream(seed, &[u64::MAX]), n, size).into_vec();
        rows.sort_unstable();
        Some(Subset { xt: xt.select(Axis(0), &rows), y: y.select(Axis(0), &rows), rows })
    }
}

/// Largest extrapolation factor |alpha| of a SQUAREM step.
const SQUAREM_MAX_STEP: f64 = 100.0;

/// EM accelerated by SQUAREM (Varadhan & Roland 2008, scheme S3) with a monotone safeguard, from
/// `p` for up to `max_iter` more points of `trace`. Each cycle takes two EM steps
/// `p1 = M(p0)`, `p2 = M(p1)`, then jumps to `p0 - 2 a r + a^2 v` with `r = p1 - p0`,
/// `v = p2 - 2 p1 + p0`, `a = -|r| / |v|` (clamped to [-100, -1]; -1 is the plain step to `p2`),
/// in the coordinates of [`squarem_jump`], and takes one EM step from there. The jump is kept only
/// if that step's log-likelihood is at least `p2`'s; otherwise the cycle ends at `p2`. So every point
/// of the trace is at least as likely as the one before, as in plain EM. Convergence is judged on
/// plain EM steps only (`p0 -> p1`, `p1 -> p2`), with the same test as [`iterate`].
fn iterate_squarem(pb: &Problem, p: Params, max_iter: usize, tol: f64, trace: &mut Vec<f64>) -> (Params, bool) {
    let n = pb.y.len();
    let limit = trace.len().max(1) - 1 + max_iter;
    let e = pb.e_step(&p);
    let (mut p0, mut e0) = (p, e);
    if trace.is_empty() {
        trace.push(e0.loglik);
    }
    if !e0.loglik.is_finite() {
        return (p0, false);
    }
    while trace.len() - 1 < limit {
        // Two plain EM steps, each judged by the convergence test.
        let Some((p1, e1)) = pb.em_step(e0, &p0) else { return (p0, false) };
        trace.push(e1.loglik);
        if rel_change(trace, n) <= tol {
            return (p1, true);
        }
        if trace.len() > limit {
            return (p1, false);
        }
        let Some((p2, e2)) = pb.em_step(e1, &p1) else { return (p1, false) };
        trace.push(e2.loglik);
        if rel_change(trace, n) <= tol {
            return (p2, true);
        }
        // The jump, stabilised by one EM step, kept only if it does at least as well as p2.
        let jumped = squarem_jump(&p0, &p1, &p2, pb.floor).and_then(|px| {
            let ex = pb.e_step(&px);
            if !ex.loglik.is_finite() {
                return None;
            }
            pb.em_step(ex, &px).filter(|(_, e3)| e3.loglik >= e2.loglik)
        });
        match jumped {
            Some((p3, e3)) if trace.len() - 1 < limit => {
                trace.push(e3.loglik);
                (p0, e0) = (p3, e3);
            }
            _ => (p0, e0) = (p2, e2),
        }
    }
    (p0, false)
}

/// The SQUAREM point from three successive EM iterates, or `None` when the step length is the
/// plain one (`a = -1`, i.e. `p2` itself) or not a number. Gate rows and expert coefficients are
/// extrapolated as they are, variances on the log scale (then floored), so they stay positive.
fn squarem_jump(p0: &Params, p1: &Params, p2: &Params, floor: f64) -> Option<Params> {
    let coords = |p: &Params| -> Vec<f64> {
        p.gate.iter().chain(p.experts.iter()).copied().chain(p.variances.iter().map(|v| v.ln())).collect()
    };
    let (c0, c1, c2) = (coords(p0), coords(p1), coords(p2));
    let r: Vec<f64> = c1.iter().zip(&c0).map(|(a, b)| a - b).collect();
    let v: Vec<f64> = c2.iter().zip(&c1).zip(&r).map(|((a, b), r)| a - b - r).collect();
    let norm = |x: &[f64]| x.iter().map(|a| a * a).sum::<f64>().sqrt();
    let alpha = -norm(&r) / norm(&v);
    if !alpha.is_finite() || alpha >= -1.0 {
        return None;
    }
    let alpha = alpha.max(-SQUAREM_MAX_STEP);
    let x: Vec<f64> = c0.iter().zip(&r).zip(&v).map(|((c, r), v)| c - 2.0 * alpha * r + alpha * alpha * v).collect();
    let (ng, ne) = (p0.gate.len(), p0.experts.len());
    let mut out = p0.clone();
    out.gate.iter_mut().zip(&x[..ng]).for_each(|(a, b)| *a = *b);
    out.experts.iter_mut().zip(&x[ng..ng + ne]).for_each(|(a, b)| *a = *b);
    out.variances.iter_mut().zip(&x[ng + ne..]).for_each(|(a, b)| *a = b.exp().max(floor));
    Some(out)
}

/// The experts' means `mu_ik = xt_i . b_k` (n x K), block by block on up to `threads` threads.
fn expert_means(xt: ArrayView2<f64>, experts: &Array2<f64>, threads: usize) -> Array2<f64> {
    blocks::stack(blocks::map(xt.nrows(), threads, |r| xt.slice(s![r, ..]).dot(&experts.t())))
}

/// E-step in log space, given the gate probabilities and the experts' means `mu` at `p` (which the
/// previous M-step computed): per row, `l_k = log pi_k + log N(y; mu_k, s2_k)`, the row's
/// log-likelihood `ln sum_k exp(l_k)` and responsibilities `tau_k = exp(l_k) / sum_l exp(l_l)`, by
/// one softmax per row ([`softmax::rows`]: K exponentials and one logarithm). Block by block on up to
/// `threads` threads.
fn e_step(
    xt: ArrayView2<f64>,
    y: ArrayView1<f64>,
    p: &Params,
    gate: gate::Probs,
    mu: ArrayView2<f64>,
    threads: usize,
) -> EStep {
    let parts = blocks::map(xt.nrows(), threads, |r| {
        let mut joint = gate.log_pi.slice(s![r.clone(), ..]).to_owned();
        add_log_normal(&mut joint, mu.slice(s![r.clone(), ..]), y.slice(s![r]), p.variances.view());
        let mut tau = Array2::<f64>::zeros(joint.raw_dim());
        let loglik = softmax::rows(&mut joint, &mut tau, softmax::Output::Probabilities);
        (tau, loglik)
    });
    let (taus, logliks): (Vec<_>, Vec<f64>) = parts.into_iter().unzip();
    EStep { loglik: logliks.into_iter().fold(0.0, |acc, l| acc + l), tau: blocks::stack(taus), gate }
}

/// Weighted least squares for every expert and the floored variance update, with weights `tau`;
/// every sum over rows taken block by block on up to `threads` threads. An expert whose system
/// cannot be solved, or that has no weight, keeps its previous values. Returns the means of the new
/// experts (n x K), from which the variances were updated and on which the next E-step runs.
fn update_experts(
    xt: ArrayView2<f64>,
    y: ArrayView1<f64>,
    tau: ArrayView2<f64>,
    p: &mut Params,
    floor: f64,
    threads: usize,
) -> Array2<f64> {
    let k_n = tau.ncols();
    let rows = |r: &std::ops::Range<usize>| {
        (xt.slice(s![r.clone(), ..]), y.slice(s![r.clone()]), tau.slice(s![r.clone(), ..]))
    };
    let sums = blocks::map(y.len(), threads, |r| {
        let (xb, yb, tb) = rows(&r);
        ExpertSums::of(xb, yb, tb)
    });
    let sums = ExpertSums::total(sums);
    sums.solve(&mut p.experts);
    let mu = expert_means(xt, &p.experts, threads);
    let ss = blocks::map(y.len(), threads, |r| {
        let (_, yb, tb) = rows(&r);
        let mut ss = Array1::<f64>::zeros(k_n);
        for ((trow, murow), &yi) in tb.outer_iter().zip(mu.slice(s![r, ..]).outer_iter()).zip(yb) {
            for ((s, &t), &m) in ss.iter_mut().zip(&trow).zip(&murow) {
                *s += t * (yi - m) * (yi - m);
            }
        }
        ss
    });
    sums.update_variances(&blocks::sum(ss), &mut p.variances, floor);
    mu
}

/// The sums over rows that the experts' M-step needs, for weights `tau`: the K weighted Gram
/// matrices `G_k = sum_i tau_ik xt_i xt_i'` side by side (p x K p), `r_k = sum_i tau_ik y_i xt_i`
/// (p x K) and `n_k = sum_i tau_ik` (K). Sums over row blocks, or over machines, add up.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExpertSums {
    /// `[G_1 .. G_K]`, p x K p.
    pub grams: Array2<f64>,
    /// `[r_1 .. r_K]`, p x K.
    pub rhs: Array2<f64>,
    /// `n_k`, K.
    pub nk: Array1<f64>,
}

impl ExpertSums {
    /// The sums over the rows `xt` (with intercept), `y`, weights `tau`.
    pub fn of(xt: ArrayView2<f64>, y: ArrayView1<f64>, tau: ArrayView2<f64>) -> ExpertSums {
        let grams = weighted_grams(xt, tau);
        let views: Vec<_> = grams.iter().map(|g| g.view()).collect();
        let (p, k) = (xt.ncols(), tau.ncols());
        // r_k and n_k in one pass over the rows, row after row (K (p + 1) products per row).
        let (mut rhs, mut nk) = (vec![0.0; k * p], vec![0.0; k]);
        for ((x, t), &yi) in xt.outer_iter().zip(tau.outer_iter()).zip(y) {
            for ((r, n), &w) in rhs.chunks_exact_mut(p).zip(&mut nk).zip(t) {
                *n += w;
                let wy = w * yi;
                r.iter_mut().zip(x).for_each(|(r, &x)| *r += wy * x);
            }
        }
        ExpertSums {
            grams: ndarray::concatenate(Axis(1), &views).expect("p x p each"),
            rhs: Array2::from_shape_vec((k, p), rhs).expect("K x p").reversed_axes(),
            nk: Array1::from(nk),
        }
    }

    /// The sum of `parts`, added in order.
    pub fn total(parts: Vec<ExpertSums>) -> ExpertSums {
        let mut parts = parts.into_iter();
        let first = parts.next().expect("at least one part");
        parts.fold(first, |acc, p| acc + p)
    }

    /// Weighted least squares for every expert, `b_k = G_k^-1 r_k` (Cholesky, relative ridge
    /// `EXPERT_RIDGE`), written into `experts` (K x p); an expert whose system cannot be solved, or
    /// that has no weight, keeps its row.
    pub fn solve(&self, experts: &mut Array2<f64>) {
        let pp = experts.ncols();
        for k in 0..self.nk.len() {
            if self.nk[k] <= 1e-12 {
                continue;
            }
            let g = self.grams.slice(s![.., k * pp..(k + 1) * pp]).to_owned();
            if let Some(b) = spd_solve(&g, self.rhs.column(k), EXPERT_RIDGE) {
                experts.row_mut(k).assign(&b);
            }
        }
    }

    /// The residual sums `ss_k = sum_i tau_ik (y_i - xt_i . b_k)^2` at the experts `b` (K x p),
    /// expanded as `sum_i tau_ik y_i^2 - 2 b_k . r_k + b_k' G_k b_k` from `y2_k = sum_i tau_ik y_i^2`:
    /// exact up to rounding, from sums alone (EM over machines, where the rows stay on the machines).
    pub fn residual_sums(&self, y2: &Array1<f64>, b: &Array2<f64>) -> Array1<f64> {
        let pp = b.ncols();
        Array1::from_shape_fn(self.nk.len(), |k| {
            let (bk, g) = (b.row(k), self.grams.slice(s![.., k * pp..(k + 1) * pp]));
            y2[k] - 2.0 * bk.dot(&self.rhs.column(k)) + bk.dot(&g.dot(&bk))
        })
    }

    /// The variance update from the residual sums `ss_k = sum_i tau_ik (y_i - xt_i . b_k)^2` at the
    /// new experts: `s2_k = max(ss_k / n_k, floor)`; an expert with no weight keeps its variance.
    pub fn update_variances(&self, ss: &Array1<f64>, variances: &mut Array1<f64>, floor: f64) {
        for k in 0..self.nk.len() {
            if self.nk[k] > 1e-12 {
                variances[k] = (ss[k] / self.nk[k]).max(floor);
            }
        }
    }
}

impl std::ops::Add for ExpertSums {
    type Output = ExpertSums;

    /// The sums over both sets of rows.
    fn add(self, other: ExpertSums) -> ExpertSums {
        ExpertSums { grams: self.grams + other.grams, rhs: self.rhs + other.rhs, nk: self.nk + other.nk }
    }
}

/// Parameters from a hard partition: experts and variances by the M-step with one-hot weights; gate
/// intercepts `log(n_k / n_K)` (counts floored at 1) and zero slopes, i.e. the partition's proportions.
fn params_from_labels(xt: ArrayView2<f64>, y: ArrayView1<f64>, labels: &[usize], k: usize, floor: f64) -> Params {
    let (n, p) = xt.dim();
    let mut tau = Array2::<f64>::zeros((n, k));
    let mut counts = vec![0usize; k];
    for (i, &l) in labels.iter().enumerate() {
        tau[[i, l]] = 1.0;
        counts[l] += 1;
    }
    let mut params = Params { gate: Array2::zeros((k, p)), experts: Array2::zeros((k, p)), variances: Array1::ones(k) };
    update_experts(xt, y, tau.view(), &mut params, floor, 1);
    let last = (counts[k - 1].max(1) as f64).ln();
    for (j, &c) in counts.iter().enumerate() {
        params.gate[[j, 0]] = (c.max(1) as f64).ln() - last;
    }
    params
}

/// The points k-means starts are computed on: standardised `(x, y)`, n x (d+1).
fn kmeans_points(xt: ArrayView2<f64>, y: ArrayView1<f64>) -> Array2<f64> {
    let mut pts = xt.to_owned();
    pts.column_mut(0).assign(&y);
    pts
}

fn check_finite(x: ArrayView2<f64>, y: ArrayView1<f64>, features: &[String], target: &str) -> Result<(), EmError> {
    for (i, (row, &yi)) in x.outer_iter().zip(y.iter()).enumerate() {
        if let Some(j) = row.iter().position(|v| !v.is_finite()) {
            return Err(EmError::NonFinite { row: i + 1, column: features[j].clone(), value: row[j] });
        }
        if !yi.is_finite() {
            return Err(EmError::NonFinite { row: i + 1, column: target.to_string(), value: yi });
        }
    }
    Ok(())
}

/// z-scores x and y (population standard deviation) after checking that no column is constant,
/// duplicated or a linear combination of others.
fn standardise(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    features: &[String],
    target: &str,
) -> Result<(Array2<f64>, Array1<f64>, Scaling), EmError> {
    let n = x.nrows() as f64;
    let xsc = ColumnScaling::fit(x);
    let y_mean = y.sum() / n;
    let y_sd = (y.mapv(|v| (v - y_mean) * (v - y_mean)).sum() / n).sqrt();
    let scaling = Scaling::checked(xsc, y_mean, y_sd, features, target)?;
    let (xs, ys) = scaling.apply(x, y);
    check_collinearity(xs.view(), features)?;
    Ok((xs, ys, scaling))
}

impl Scaling {
    /// `(x, y)` z-scored: `(x_j - m_j) / s_j` column by column, `(y - m_y) / s_y`.
    fn apply(&self, x: ArrayView2<f64>, y: ArrayView1<f64>) -> (Array2<f64>, Array1<f64>) {
        (self.x.apply(x), y.mapv(|v| (v - self.y_mean) / self.y_sd))
    }

    /// The scaling of these column means and standard deviations, after checking that every one is
    /// finite (s_y^2 too: the variance floor and the back-transform use it) and no column is
    /// constant.
    fn checked(
        x: ColumnScaling,
        y_mean: f64,
        y_sd: f64,
        features: &[String],
        target: &str,
    ) -> Result<Scaling, EmError> {
        for (j, (&sd, &m)) in x.sd.iter().zip(x.mean.iter()).enumerate() {
            if !(sd.is_finite() && m.is_finite()) {
                return Err(EmError::TooLarge(features[j].clone()));
            }
            if is_constant(sd, m) {
                return Err(EmError::ConstantColumn(features[j].clone()));
            }
        }
        if !(y_mean.is_finite() && (y_sd * y_sd).is_finite()) {
            return Err(EmError::TooLarge(target.to_string()));
        }
        if is_constant(y_sd, y_mean) {
            return Err(EmError::ConstantTarget(target.to_string()));
        }
        Ok(Scaling { x, y_mean, y_sd })
    }
}

/// A column is constant when its standard deviation is negligible next to its mean (or is NaN from
/// an overflow, which the finiteness check upstream makes rare).
fn is_constant(sd: f64, mean: f64) -> bool {
    sd.partial_cmp(&(1e-12 * mean.abs().max(1e-300))) != Some(std::cmp::Ordering::Greater)
}

/// Errors on duplicated or linearly dependent standardised columns, using the correlation matrix:
/// a pair with |r| > 1 - 1e-10 is a duplicate; otherwise a Cholesky pivot below 1e-10 (the variance of
/// a column left unexplained by the columns before it) marks a linear combination.
fn check_collinearity(xs: ArrayView2<f64>, features: &[String]) -> Result<(), EmError> {
    let n = xs.nrows();
    check_correlation(&(xs.t().dot(&xs) / n as f64), features)
}

/// [`check_collinearity`] on the correlation matrix `r` of the features.
fn check_correlation(r: &Array2<f64>, features: &[String]) -> Result<(), EmError> {
    let d = r.nrows();
    for a in 0..d {
        for b in a + 1..d {
            if r[[a, b]].abs() > 1.0 - 1e-10 {
                return Err(EmError::DuplicateColumns(features[a].clone(), features[b].clone(), r[[a, b]]));
            }
        }
    }
    cholesky_lower(r, 1e-10).map(|_| ()).map_err(|j| EmError::CollinearColumn(features[j].clone()))
}

/// Maps standardised-scale parameters to the raw scale:
/// expert slope `b_j = s_y bs_j / s_j`, intercept `m_y + s_y (bs_0 - sum_j bs_j m_j / s_j)`,
/// variance `s_y^2 vs`; gate slope `as_j / s_j`, intercept `as_0 - sum_j as_j m_j / s_j`.
fn to_raw_model(p: &Params, sc: &Scaling, features: &[String]) -> Result<Moe, EmError> {
    let gate = sc.x.coefficients_to_raw(&p.gate, 1.0, 0.0);
    let experts = sc.x.coefficients_to_raw(&p.experts, sc.y_sd, sc.y_mean);
    let variances = p.variances.mapv(|v| v * sc.y_sd * sc.y_sd);
    Moe::new(features.to_vec(), gate, experts, variances).map_err(|_| EmError::TooLarge(features.join(", ")))
}

/// The inverse of [`to_raw_model`]: a raw-scale model's parameters on the standardised scale of
/// `sc` (gate slope `a_j s_j`, intercept `a_0 + sum_j a_j m_j`; expert slope `b_j s_j / s_y`,
/// intercept `(b_0 - m_y + sum_j b_j m_j) / s_y`; variance `s2 / s_y^2`).
fn to_standard(model: &Moe, sc: &Scaling) -> Params {
    Params {
        gate: sc.x.coefficients_from_raw(&model.gate, 1.0, 0.0),
        experts: sc.x.coefficients_from_raw(&model.experts, sc.y_sd, sc.y_mean),
        variances: model.variances.mapv(|v| v / (sc.y_sd * sc.y_sd)),
    }
}

/// Plain EM from the model `start` on every row of `(x, y)`: no restarts, no subset of rows, no
/// acceleration, the gate's Newton step with the exact Hessian on every row. Returns the model at
/// the start and after each of at most `iterations` iterations (fewer when a step's log-likelihood
/// is not finite); only `variance_floor` is read from `settings`. It is the single-machine run that
/// exact EM over machines ([`over_machines`]) reproduces iteration by iteration.
pub fn iterates(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    features: &[String],
    target: &str,
    start: &Moe,
    settings: &EmSettings,
    iterations: usize,
) -> Result<Vec<Moe>, EmError> {
    Ok(Standardised::new(x, y, features, target)?.iterates(start, settings.variance_floor, iterations)?.models)
}

/// Data checked and standardised once, for EM runs from given models: [`iterates`], and the local
/// iterations of federated averaging ([`fedavg`]), which start from a new model every round.
pub struct Standardised {
    xt: Array2<f64>,
    y: Array1<f64>,
    scaling: Scaling,
    features: Vec<String>,
    target: String,
}

/// Plain EM iterations from a given model: the models and the log-likelihoods of every row.
#[derive(Debug, Clone)]
pub struct Iterates {
    /// The model at the start and after each iteration (raw scale).
    pub models: Vec<Moe>,
    /// The log-likelihood of each (raw scale).
    pub logliks: Vec<f64>,
}

impl Standardised {
    /// `(x, y)` after the checks of [`fit`] (finite values, no constant or collinear column).
    pub fn new(
        x: ArrayView2<f64>,
        y: ArrayView1<f64>,
        features: &[String],
        target: &str,
    ) -> Result<Standardised, EmError> {
        check_finite(x, y, features, target)?;
        let (xs, y, scaling) = standardise(x, y, features, target)?;
        let (features, target) = (features.to_vec(), target.to_string());
        Ok(Standardised { xt: with_intercept(xs.view()), y, scaling, features, target })
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// Plain EM from `start` (see [`iterates`]) with variance floor `floor` (a fraction of var(y)),
    /// for at most `iterations` iterations.
    pub fn iterates(&self, start: &Moe, floor: f64, iterations: usize) -> Result<Iterates, EmError> {
        let passes = Cell::new(0);
        let pb = self.problem(floor, &passes);
        let mut p = to_standard(start, &self.scaling);
        let mut models = vec![self.raw(&p)?];
        let mut e = pb.e_step(&p);
        let mut trace = vec![e.loglik];
        for _ in 0..iterations {
            if !e.loglik.is_finite() {
                break;
            }
            let Some((next, e_next)) = pb.em_step(e, &p) else { break };
            (p, e) = (next, e_next);
            trace.push(e.loglik);
            models.push(self.raw(&p)?);
        }
        Ok(Iterates { models, logliks: to_raw_trace(&trace, self.rows(), self.scaling.y_sd) })
    }

    /// SQUAREM-accelerated EM from `start` (the retained run of [`fit`] with the exact Hessian on
    /// every row and tolerance 0) for at most `iterations` iterations: the last model and the
    /// log-likelihood trace, the start's included (raw scale). Exact EM over machines with `accelerate` reproduces it.
    pub fn accelerated(&self, start: &Moe, floor: f64, iterations: usize) -> Result<(Moe, Vec<f64>), EmError> {
        let passes = Cell::new(0);
        let mut trace = Vec::new();
        let (p, _) = iterate_squarem(
            &self.problem(floor, &passes),
            to_standard(start, &self.scaling),
            iterations,
            0.0,
            &mut trace,
        );
        Ok((self.raw(&p)?, to_raw_trace(&trace, self.rows(), self.scaling.y_sd)))
    }

    /// The EM problem on these rows: one thread, the exact Hessian on every row, passes counted in
    /// `passes`.
    fn problem<'a>(&'a self, floor: f64, passes: &'a Cell<usize>) -> Problem<'a> {
        Problem { xt: self.xt.view(), y: self.y.view(), floor, curvature: gate::Curvature::AllRows, passes, threads: 1 }
    }

    /// Standardised parameters as a raw-scale model with these rows' names.
    fn raw(&self, p: &Params) -> Result<Moe, EmError> {
        let model = to_raw_model(p, &self.scaling, &self.features)?;
        Ok(Moe { target: Some(self.target.clone()), ..model })
    }
}

/// The log-likelihood of standardised y shifted to raw y: `L_raw = L_std - n ln(s_y)`.
fn to_raw_trace(trace: &[f64], n: usize, y_sd: f64) -> Vec<f64> {
    let shift = n as f64 * y_sd.ln();
    trace.iter().map(|l| l - shift).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Parameters at distance `t` along a fixed direction from a fixed point (log-variances too).
    fn along(t: f64) -> Params {
        Params {
            gate: array![[0.5 + t, -1.0 - 2.0 * t], [0.0, 0.0]],
            experts: array![[1.0 - t, 2.0 + 0.5 * t], [-3.0 + 3.0 * t, 0.25]],
            variances: array![(0.1 + t).exp(), (-0.7 - t).exp()],
        }
    }

    #[test]
    fn expert_sums_are_the_weighted_sums_of_their_definition() {
        let (n, k) = (37, 3);
        let xt = Array2::from_shape_fn(
            (n, 3),
            |(i, j)| if j == 0 { 1.0 } else { ((i * 5 + j * 11) % 13) as f64 / 3.0 - 2.0 },
        );
        let y = Array1::from_shape_fn(n, |i| ((i * 7) % 17) as f64 / 4.0 - 2.0);
        let tau = Array2::from_shape_fn((n, k), |(i, c)| ((i + 2 * c) % 5) as f64 / 10.0);
        let sums = ExpertSums::of(xt.view(), y.view(), tau.view());
        for c in 0..k {
            let nk: f64 = (0..n).map(|i| tau[[i, c]]).sum();
            assert!((sums.nk[c] - nk).abs() < 1e-12);
            for a in 0..3 {
                let r: f64 = (0..n).map(|i| tau[[i, c]] * y[i] * xt[[i, a]]).sum();
                assert!((sums.rhs[[a, c]] - r).abs() < 1e-12, "r_{c}[{a}]");
                for b in 0..3 {
                    let g: f64 = (0..n).map(|i| tau[[i, c]] * xt[[i, a]] * xt[[i, b]]).sum();
                    assert!((sums.grams[[a, c * 3 + b]] - g).abs() < 1e-12, "G_{c}[{a}, {b}]");
                }
            }
        }
    }

    #[test]
    fn a_squarem_jump_lands_on_the_fixed_point_of_a_linear_contraction() {
        // EM near its maximum behaves like p_(t+1) - p* = c (p_t - p*): SQUAREM's step length
        // a = -1 / (1 - c) then jumps exactly to p*.
        let c: f64 = 0.9;
        let (p0, p1, p2) = (along(1.0), along(c), along(c * c));
        let jump = squarem_jump(&p0, &p1, &p2, 1e-12).expect("a step longer than the plain one");
        let star = along(0.0);
        for (a, b) in jump.gate.iter().chain(jump.experts.iter()).zip(star.gate.iter().chain(star.experts.iter())) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        for (a, b) in jump.variances.iter().zip(star.variances.iter()) {
            assert!((a - b).abs() < 1e-12 * b, "{a} vs {b}");
        }
        // A contraction of factor 0 (EM already at the maximum) gives a = -1: no jump.
        assert!(squarem_jump(&along(1.0), &along(0.0), &along(0.0), 1e-12).is_none());
    }
}
