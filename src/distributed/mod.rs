//! One distributed fit as plain functions: what a machine does (`local_fit`), what the server does
//! (`aggregate`, `baselines`), and how estimators are scored (`score`). The in-process `dmoe fit
//! --machines`, the actor simulator and a real-cluster backend all call these, so they compute the
//! same numbers from the same inputs.

#[cfg(feature = "mpi")]
pub mod mpi;
pub mod pipeline;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, concatenate};
use rand::RngExt;

use crate::numeric::em::{self, EmError, EmSettings};
use crate::numeric::metrics;
use crate::numeric::model::{FitSummary, Moe};
use crate::numeric::rng;
use crate::numeric::transport::PoolError;
use crate::reduce::baselines::{self, PooledMixture};
use crate::reduce::{self, Reduction, ReductionError, ReductionSettings};

/// Supporting-sample size S when none is given (a scenario's `cluster.support`, `fit --support`).
pub const DEFAULT_SUPPORT: usize = 2000;

/// What a machine sends to the server after its fit. It serialises (the MPI backend sends it as
/// JSON) without its diagnostic trace.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LocalReport {
    /// Machine index (0-based).
    pub machine: usize,
    /// The local model.
    pub model: Moe,
    /// Rows the machine fitted, N_m.
    pub n: usize,
    /// The machine's share of the supporting sample: some of its own covariate rows.
    pub support: Array2<f64>,
    /// How the local fit went: its log-likelihood, iterations, convergence and CPU seconds (on the
    /// simulator's model clock, its modelled seconds).
    pub summary: FitSummary,
    /// Log-likelihood after each EM iteration of the retained run (diagnostics; not sent over the
    /// network in a real cluster).
    #[serde(skip)]
    pub trace: Vec<f64>,
}

/// A local fit that failed, with the machine it happened on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("machine {} ({rows} rows): {source}", machine + 1)]
pub struct LocalFitError {
    /// Machine index (0-based).
    pub machine: usize,
    /// Rows in its shard.
    pub rows: usize,
    /// What went wrong.
    pub source: EmError,
}

/// A machine's share of a supporting sample of total size `total` when it holds `n_m` of `n` rows:
/// `round(total * n_m / n)`, at least 1 and at most `n_m`.
pub fn support_count(total: usize, n_m: usize, n: usize) -> usize {
    (((total as f64) * n_m as f64 / n as f64).round() as usize).clamp(1, n_m.max(1))
}

/// A shard smaller than the model's number of free parameters (machines numbered from 1).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "machine {machine} gets {rows} rows, but K = {k} on d = {d} features has {need} free parameters: use fewer machines, a smaller K or more data"
)]
pub struct ShardTooSmall {
    /// The machine, from 1.
    pub machine: usize,
    /// Its rows.
    pub rows: usize,
    /// Components.
    pub k: usize,
    /// Features.
    pub d: usize,
    /// Free parameters of the model.
    pub need: usize,
}

/// Checks, before any fit, that every shard has at least as many rows as a K-component model on d
/// features has free parameters; the error names the first machine that is too small.
pub fn check_shard_sizes(sizes: &[usize], k: usize, d: usize) -> Result<(), ShardTooSmall> {
    let need = crate::numeric::model::n_free_params(k, d);
    match sizes.iter().position(|&n| n < need) {
        Some(m) => Err(ShardTooSmall { machine: m + 1, rows: sizes[m], k, d, need }),
        None => Ok(()),
    }
}

/// The seed of machine `machine`'s EM starts, derived from the run's seed.
pub fn machine_seed(seed: u64, machine: usize) -> u64 {
    rng::stream(seed, &[1, machine as u64]).random()
}

/// A machine's work: EM on its shard (seeded from `(seed, machine)`), then `support` of its own
/// covariate rows drawn without replacement (from the stream `(seed, 2, machine)`).
///
/// A whole one-shot distributed fit: four machines fit their shards, the server reduces.
///
/// ```
/// use dmoe::data::synthetic::{Simulator, TruthSpec};
/// use dmoe::distributed::{aggregate, local_fit, support_count};
/// use dmoe::numeric::{em::EmSettings, rng};
/// use dmoe::ReductionSettings;
///
/// let sim = Simulator::random(&TruthSpec { k: 2, d: 1, separation: 1.0, seed: 3 })?;
/// let rows = sim.sample(8_000, &mut rng::stream(3, &[]));
/// let names = vec!["x1".to_string()];
/// let em = EmSettings { k: 2, ..EmSettings::default() };
/// let mut reports = Vec::new();
/// for m in 0..4 {
///     let (x, y) = (rows.x.slice(ndarray::s![m * 2000..(m + 1) * 2000, ..]), rows.y.slice(ndarray::s![m * 2000..(m + 1) * 2000]));
///     reports.push(local_fit(m, x, y, &names, "y", &em, support_count(1000, 2000, 8000), 1)?);
/// }
/// let reduced = aggregate(&reports, &ReductionSettings { k: 2, ..ReductionSettings::default() })?;
/// assert_eq!(reduced.model.k(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn local_fit(
    machine: usize,
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    features: &[String],
    target: &str,
    em_settings: &EmSettings,
    support: usize,
    seed: u64,
) -> Result<LocalReport, LocalFitError> {
    let settings = EmSettings { seed: machine_seed(seed, machine), ..em_settings.clone() };
    let fit = em::fit(x, y, features, target, &settings).map_err(|source| LocalFitError {
        machine,
        rows: y.len(),
        source,
    })?;
    let rows = support_rows(machine, y.len(), support, seed);
    let summary = fit.summary;
    Ok(LocalReport {
        machine,
        support: x.select(Axis(0), &rows),
        n: y.len(),
        summary,
        model: fit.model,
        trace: fit.trace,
    })
}

/// The rows of machine `machine`'s share of the supporting sample: `support` of its `rows` rows
/// (all of them when it has fewer), drawn without replacement from the stream `(seed, 2, machine)`.
pub fn support_rows(machine: usize, rows: usize, support: usize, seed: u64) -> Vec<usize> {
    rand::seq::index::sample(&mut rng::stream(seed, &[2, machine as u64]), rows, support.min(rows)).into_vec()
}

/// The start of exact EM over machines without a reduced model: EM with the local settings `em` (its
/// starts seeded as machine 0's, from `seed`) on the machines' supporting rows with their targets,
/// `samples`, stacked in machine order.
pub fn sample_start(
    samples: &[(ArrayView2<f64>, ArrayView1<f64>)],
    features: &[String],
    target: &str,
    em_settings: &EmSettings,
    seed: u64,
) -> Result<em::FittedMoe, EmError> {
    let xs: Vec<ArrayView2<f64>> = samples.iter().map(|s| s.0).collect();
    let ys: Vec<ArrayView1<f64>> = samples.iter().map(|s| s.1).collect();
    let x = concatenate(Axis(0), &xs).expect("samples share the feature count");
    let y = concatenate(Axis(0), &ys).expect("samples are columns");
    let settings = EmSettings { seed: machine_seed(seed, 0), threads: 1, ..em_settings.clone() };
    em::fit(x.view(), y.view(), features, target, &settings)
}

/// The server's reduction of the reports that arrived (lambda_m renormalised over them).
pub fn aggregate(reports: &[LocalReport], settings: &ReductionSettings) -> Result<Reduction, ReductionError> {
    if reports.is_empty() {
        return Err(PoolError::NoModels.into());
    }
    let locals: Vec<&Moe> = reports.iter().map(|r| &r.model).collect();
    let sizes: Vec<usize> = reports.iter().map(|r| r.n).collect();
    let views: Vec<ArrayView2<f64>> = reports.iter().map(|r| r.support.view()).collect();
    let support = concatenate(Axis(0), &views).expect("support rows share the feature count");
    reduce::reduce(&locals, &sizes, support.view(), settings)
}

/// A fitted estimator to compare.
#[derive(Debug, Clone)]
pub enum Estimate {
    /// A K-component MoE (boxed: a model is much larger than the pooled mixture's handle).
    Moe(Box<Moe>),
    /// The pooled M*K mixture.
    Pooled(PooledMixture),
}

impl Estimate {
    fn loglik(&self, x: ArrayView2<f64>, y: ArrayView1<f64>) -> f64 {
        match self {
            Estimate::Moe(m) => m.loglik(x, y),
            Estimate::Pooled(p) => p.loglik(x, y),
        }
    }

    fn predict(&self, x: ArrayView2<f64>) -> Array1<f64> {
        match self {
            Estimate::Moe(m) => m.predict(x),
            Estimate::Pooled(p) => p.predict(x),
        }
    }
}

/// A baseline the server can compute from the same reports as the reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Baseline {
    /// The local model closest to the pool (see `baselines::median_index`).
    Median,
    /// Local models relabelled to match, then averaged.
    AlignedAverage,
    /// Local models averaged as they come (the classic failure).
    NaiveAverage,
    /// The pooled M*K mixture (not a K-component model).
    Pooled,
}

impl Baseline {
    /// Every baseline, in table order.
    pub const ALL: [Baseline; 4] =
        [Baseline::Median, Baseline::AlignedAverage, Baseline::NaiveAverage, Baseline::Pooled];

    /// The name used in tables, records and scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::Median => "median",
            Baseline::AlignedAverage => "aligned-average",
            Baseline::NaiveAverage => "naive-average",
            Baseline::Pooled => "pooled",
        }
    }
}

/// Supporting points the median baseline scores candidates on (evenly spaced among the S points):
/// scoring every local model against the pool costs O(M^2 S K^2), so S is capped for this baseline.
const MEDIAN_SUPPORT: usize = 500;

/// The requested baselines, computed from the same reports as the reduction. The averages and the
/// pooled mixture need every local K equal; they are left out otherwise.
pub fn baselines(reports: &[LocalReport], reduction: &Reduction, which: &[Baseline]) -> Vec<(&'static str, Estimate)> {
    let locals: Vec<&Moe> = reports.iter().map(|r| &r.model).collect();
    let sizes: Vec<usize> = reports.iter().map(|r| r.n).collect();
    let mut out = Vec::new();
    for &b in which {
        let est = match b {
            Baseline::Median => {
                // Every report is a candidate, so the pool is of every local model (the reduction's
                // holds only the kept ones when screening dropped machines).
                let xt = &reduction.large.xt;
                let (s, n) = (xt.nrows(), MEDIAN_SUPPORT.min(xt.nrows()));
                let rows: Vec<usize> = (0..n).map(|i| i * s / n).collect();
                let x = xt.select(Axis(0), &rows);
                let all = crate::numeric::transport::LargeModel::new(&locals, &sizes, x.slice(ndarray::s![.., 1..]))
                    .expect("the models the reduction pooled pool again");
                Some(Estimate::Moe(Box::new(locals[baselines::median_index(&all, &locals)].clone())))
            }
            Baseline::AlignedAverage => baselines::aligned_average(&locals, &sizes, reduction.large.xt.view())
                .ok()
                .map(|m| Estimate::Moe(Box::new(m))),
            Baseline::NaiveAverage => {
                baselines::naive_average(&locals, &sizes).ok().map(|m| Estimate::Moe(Box::new(m)))
            }
            Baseline::Pooled => PooledMixture::new(&locals, &sizes).ok().map(Estimate::Pooled),
        };
        out.extend(est.map(|e| (b.name(), e)));
    }
    out
}

/// Accuracy of one estimator on held-out rows. Metrics that need a truth, true labels or a
/// K-component model are `None` where they do not apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// Total log-likelihood of the test rows.
    pub test_loglik: f64,
    /// Relative prediction error on the test rows.
    pub rpe: f64,
    /// Correlation of y and the prediction on the test rows.
    pub correlation: f64,
    /// Parameter MSE against the true model.
    pub param_mse: Option<f64>,
    /// Transport divergence from the estimate to the true model, on the test covariates.
    pub transport_to_truth: Option<f64>,
    /// Adjusted Rand index of the posterior clustering (argmax tau, uses y) against the true labels.
    pub ari: Option<f64>,
    /// Clustering error of the same clustering.
    pub clustering_error: Option<f64>,
}

impl Scores {
    /// The scores by results.csv column name (`None` where a score does not apply).
    pub fn named(&self) -> [(&'static str, Option<f64>); 7] {
        [
            ("rpe", Some(self.rpe)),
            ("test_loglik", Some(self.test_loglik)),
            ("correlation", Some(self.correlation)),
            ("param_mse", self.param_mse),
            ("transport_to_truth", self.transport_to_truth),
            ("ari", self.ari),
            ("clustering_error", self.clustering_error),
        ]
    }

    /// The first score that is not a finite number, with its name.
    pub fn first_non_finite(&self) -> Option<(&'static str, f64)> {
        self.named().into_iter().find_map(|(c, v)| v.filter(|v| !v.is_finite()).map(|v| (c, v)))
    }
}

/// Scores an estimate on test rows; `labels` are true components of those rows, `truth` the true model.
pub fn score(
    estimate: &Estimate,
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    labels: Option<&[usize]>,
    truth: Option<&Moe>,
) -> Scores {
    let yhat = estimate.predict(x);
    let moe = match estimate {
        Estimate::Moe(m) => Some(m.as_ref()),
        Estimate::Pooled(_) => None,
    };
    let with_truth = moe.zip(truth).filter(|(m, t)| m.k() == t.k());
    let clusters = moe.zip(labels).map(|(m, l)| (m.posterior_components(x, y), l));
    Scores {
        test_loglik: estimate.loglik(x, y),
        rpe: metrics::rpe(y, yhat.view()),
        correlation: metrics::correlation(y, yhat.view()),
        param_mse: with_truth.map(|(m, t)| metrics::param_mse(m, t)),
        transport_to_truth: with_truth.map(|(m, t)| metrics::transport_to_truth(m, t, x)),
        ari: clusters.as_ref().map(|(c, l)| metrics::adjusted_rand_index(l, c)),
        clustering_error: clusters.as_ref().map(|(c, l)| metrics::clustering_error(l, c)),
    }
}
