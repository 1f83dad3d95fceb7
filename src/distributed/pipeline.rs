//! The whole distributed fit in one process, one machine after another (`dmoe fit --machines`):
//! hold out test rows, shard the training rows, fit every shard (`local_fit`), reduce the reports
//! (`aggregate`), with `refine` go on by iterations of exact EM over the machines from the reduced
//! model (`em::over_machines`), fit the global model on every training row, and score the reduced
//! model, the baselines, the refined model and the global fit on the test rows.
//!
//! Times are thread CPU seconds: the distributed fit takes `max_m t_m + t_reduce` (the slowest local
//! fit, then the reduction; no network), the refined one adds the slowest machine's answer and the
//! server's step of every round, the global fit its own CPU time.
//!
//! The error messages name the settings by the `dmoe fit` flags that set them.

use ndarray::{Array1, Array2, Axis};

use super::{Baseline, Estimate, LocalFitError, LocalReport, Scores};
use crate::data::Dataset;
use crate::data::sharding::{self, Partition, ShardedData};
use crate::numeric::cputime::thread_cpu_seconds;
use crate::numeric::em::over_machines::{self, OverMachines};
use crate::numeric::em::{self, EmError, EmSettings, FittedMoe};
use crate::numeric::model::{self, Moe};
use crate::numeric::range::{Range, RangeError, at_least};
use crate::reduce::{Reduction, ReductionError, ReductionSettings};

/// What an in-process distributed fit needs besides the data.
#[derive(Debug, Clone)]
pub struct InProcessSettings {
    /// EM settings of the local fits and of the global fit.
    pub em: EmSettings,
    /// The server's reduction settings.
    pub reduction: ReductionSettings,
    /// Number of machines M; `None` with a category partition (one machine per value).
    pub machines: Option<usize>,
    /// How the training rows are shared out.
    pub partition: Partition,
    /// The partition's name in messages: `random`, `contiguous` or the category column.
    pub partition_name: String,
    /// Supporting-sample size S: machine m sends `support_count(S, N_m, N)` of its covariate rows.
    pub support: usize,
    /// Share of the rows held out to score the estimators, in (0, 1).
    pub test_fraction: f64,
    /// Seed of the split, the shards, the EM starts and the support draws.
    pub seed: u64,
    /// The true model, when known: adds parameter MSE and transport divergence to the scores.
    pub truth: Option<Moe>,
    /// Exact EM over the machines after the reduction (`dmoe fit --protocol`), if any.
    pub exact_em: Option<ExactEm>,
}

/// Exact EM over the machines (`em::over_machines`): one round per iteration plus one per step
/// halving of the gate, one per kept SQUAREM jump and three per lost one (with `accelerate`), after
/// the standardisation round and the start's E-step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExactEm {
    /// `refine`: this many iterations from the reduced model (tolerance 0).
    Refine { iterations: usize },
    /// `distributed-em`: from the start fitted on the machines' supporting rows with their targets
    /// (`distributed::sample_start`), to EM's tolerance or this many iterations.
    DistributedEm { max_iterations: usize },
}

impl ExactEm {
    /// The estimator's name: `refine` or `distributed-em`.
    pub fn name(self) -> &'static str {
        match self {
            ExactEm::Refine { .. } => "refine",
            ExactEm::DistributedEm { .. } => "distributed-em",
        }
    }

    /// The settings of its EM from the local ones.
    pub fn settings(self, em: &EmSettings) -> EmSettings {
        match self {
            ExactEm::Refine { iterations } => EmSettings { max_iter: iterations, tol: 0.0, ..em.clone() },
            ExactEm::DistributedEm { max_iterations } => EmSettings { max_iter: max_iterations, ..em.clone() },
        }
    }
}

/// Why an in-process distributed fit could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PipelineError {
    /// A setting out of its range (`numeric::range`): the setting's name and the range error.
    #[error("{0}: {1}")]
    Setting(&'static str, RangeError),
    /// The true model is on other features than the fit.
    #[error("--truth: the true model's features [{}] are not the fit's [{}]", truth.join(", "), fit.join(", "))]
    TruthFeatures { truth: Vec<String>, fit: Vec<String> },
    /// The split leaves no test or no training row.
    #[error("--test-fraction {fraction} leaves {test} test and {train} training rows of {n}; both must be at least 1")]
    EmptySplit { fraction: f64, test: usize, train: usize, n: usize },
    /// M machines cannot each get the rows a K-component model on d features needs.
    #[error(
        "--machines {machines}: {train} training rows can give at most {most} machines the {need} rows each that K = {k} on d = {d} features needs"
    )]
    TooManyMachines { machines: usize, train: usize, most: usize, need: usize, k: usize, d: usize },
    /// The category partition gives another number of machines than asked for.
    #[error(
        "--machines {machines} does not match --partition {partition}: its training rows have {values} distinct values (omit --machines)"
    )]
    MachinesMismatch { machines: usize, partition: String, values: usize },
    /// A shard is smaller than the model's number of free parameters.
    #[error(transparent)]
    ShardTooSmall(#[from] super::ShardTooSmall),
    /// A local fit failed on its shard.
    #[error(transparent)]
    LocalFit(#[from] LocalFitError),
    /// The reduction failed.
    #[error(transparent)]
    Reduction(#[from] ReductionError),
    /// The global fit failed.
    #[error("global fit: {0}")]
    GlobalFit(EmError),
    /// EM over the machines from the reduced model failed.
    #[error("exact EM over the machines: {0}")]
    ExactEm(EmError),
}

impl PipelineError {
    /// Whether the error comes from the data's rows (rather than from the settings).
    pub fn is_fit_error(&self) -> bool {
        matches!(
            self,
            PipelineError::LocalFit(_)
                | PipelineError::GlobalFit(_)
                | PipelineError::ExactEm(_)
                | PipelineError::Reduction(ReductionError::NotFinite(_))
        )
    }
}

/// One estimator's accuracy on the test rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredEstimator {
    /// `reduction`, a baseline's name, or `global`.
    pub name: &'static str,
    /// Its scores.
    pub scores: Scores,
    /// Its CPU seconds, for the reduction (distributed time) and the global fit.
    pub seconds: Option<f64>,
}

/// Everything an in-process distributed fit computed.
#[derive(Debug, Clone)]
pub struct InProcessFit {
    /// Rows of each machine, N_m.
    pub shard_sizes: Vec<usize>,
    /// Training rows N (all shards).
    pub training_rows: usize,
    /// Held-out rows (indices into the data, increasing).
    pub test_rows: Vec<usize>,
    /// Every machine's report, in machine order.
    pub reports: Vec<LocalReport>,
    /// The server's reduction of the reports.
    pub reduction: Reduction,
    /// Thread CPU seconds of the reduction.
    pub reduce_cpu_seconds: f64,
    /// EM on every training row.
    pub global: FittedMoe,
    /// Exact EM over the machines (`refine` or `distributed-em`), when asked for, with the thread
    /// CPU seconds of its start (0 for refine, whose start is the reduction, timed on its own; the
    /// sample fit's for distributed-em).
    pub exact_em: Option<(ExactEm, OverMachines, f64)>,
    /// The reduced model, every baseline, the refined model, then the global fit, scored on the
    /// test rows.
    pub scores: Vec<ScoredEstimator>,
}

impl InProcessFit {
    /// CPU seconds of the slowest local fit, `max_m t_m`.
    pub fn slowest_local_seconds(&self) -> f64 {
        self.reports.iter().map(|r| r.summary.cpu_seconds).fold(0.0, f64::max)
    }

    /// The distributed fit's time without network: `max_m t_m + t_reduce`.
    pub fn distributed_seconds(&self) -> f64 {
        self.slowest_local_seconds() + self.reduce_cpu_seconds
    }

    /// The time of exact EM's protocol without network, when it ran: refine runs after the
    /// reduction (`max_m t_m + t_reduce + t_EM`), distributed-em after its start alone
    /// (`t_start + t_EM`); `t_EM` sums each round's slowest machine and server step.
    pub fn exact_em_seconds(&self) -> Option<f64> {
        let (which, run, start_seconds) = self.exact_em.as_ref()?;
        let before = match which {
            ExactEm::Refine { .. } => self.distributed_seconds(),
            ExactEm::DistributedEm { .. } => *start_seconds,
        };
        Some(before + run.seconds)
    }
}

/// The rules for the numbers of a distributed fit, shared by `InProcessSettings::validate` and the
/// flags of `dmoe fit`: test share in (0, 1), S >= 1, M >= 1 when given.
pub fn check_numbers(test_fraction: f64, support: usize, machines: Option<usize>) -> Result<(), PipelineError> {
    let bad = |name| move |e| PipelineError::Setting(name, e);
    Range::OpenUnit.check(test_fraction).map_err(bad("test_fraction"))?;
    at_least(support, 1).map_err(bad("support"))?;
    if let Some(m) = machines {
        at_least(m, 1).map_err(bad("machines"))?;
    }
    Ok(())
}

impl InProcessSettings {
    /// Checks the numbers with the shared range rules: test share in (0, 1), S >= 1, M >= 1 when
    /// given. (`dmoe fit` checks its flags with the same rules first, naming the flags.)
    pub fn validate(&self) -> Result<(), PipelineError> {
        check_numbers(self.test_fraction, self.support, self.machines)
    }
}

/// Everything that can be checked before the shards are made: the settings, the truth's features,
/// a split that leaves rows on both sides, and enough training rows for M machines of
/// `n_free_params(K, d)` rows each.
pub fn check(data: &Dataset, settings: &InProcessSettings) -> Result<(), PipelineError> {
    split(data, settings).map(|_| ())
}

/// Runs the whole in-process distributed fit of `data` (see the module's documentation).
pub fn fit_in_process(data: &Dataset, settings: &InProcessSettings) -> Result<InProcessFit, PipelineError> {
    let (train, test_rows) = split(data, settings)?;
    let sharded = shard(data, &train, settings)?;
    let shard_sizes: Vec<usize> = sharded.shards.iter().map(|r| r.len()).collect();
    let reports = local_fits(data, &sharded, settings)?;
    let t0 = thread_cpu_seconds();
    let reduction = super::aggregate(&reports, &settings.reduction)?;
    let reduce_cpu_seconds = thread_cpu_seconds() - t0;
    let exact_em = match settings.exact_em {
        None => None,
        Some(which) => Some(exact_em(data, &sharded, &reports, &reduction, which, settings)?),
    };
    let global = em::fit(sharded.x.view(), sharded.y.view(), &data.features, &data.target, &settings.em)
        .map_err(PipelineError::GlobalFit)?;
    let mut fit = InProcessFit {
        shard_sizes,
        training_rows: sharded.n(),
        test_rows,
        reports,
        reduction,
        reduce_cpu_seconds,
        global,
        exact_em,
        scores: Vec::new(),
    };
    fit.scores = score_estimators(data, &fit, settings.truth.as_ref());
    Ok(fit)
}

/// Exact EM over the machines of `sharded`: from the reduced model (`refine`; its start costs
/// nothing more), or from EM on the machines' supporting rows with their targets (`distributed-em`,
/// the rows of their reports' supporting samples), with the CPU seconds of that start.
fn exact_em(
    data: &Dataset,
    sharded: &ShardedData,
    reports: &[LocalReport],
    reduction: &Reduction,
    which: ExactEm,
    settings: &InProcessSettings,
) -> Result<(ExactEm, OverMachines, f64), PipelineError> {
    let shards: Vec<_> = (0..sharded.shards.len()).map(|m| (sharded.shard_x(m), sharded.shard_y(m))).collect();
    let (start, start_seconds) = match which {
        ExactEm::Refine { .. } => (reduction.model.clone(), 0.0),
        ExactEm::DistributedEm { .. } => {
            let samples: Vec<(Array2<f64>, Array1<f64>)> = shards
                .iter()
                .zip(reports)
                .enumerate()
                .map(|(m, ((x, y), r))| {
                    let rows = super::support_rows(m, y.len(), r.support.nrows(), settings.seed);
                    (x.select(Axis(0), &rows), y.select(Axis(0), &rows))
                })
                .collect();
            let views: Vec<_> = samples.iter().map(|(x, y)| (x.view(), y.view())).collect();
            let fit = super::sample_start(&views, &data.features, &data.target, &settings.em, settings.seed)
                .map_err(PipelineError::ExactEm)?;
            (fit.model, fit.summary.cpu_seconds)
        }
    };
    let em = which.settings(&settings.em);
    let run = over_machines::fit(&shards, &data.features, &data.target, &start, &em).map_err(PipelineError::ExactEm)?;
    Ok((which, run, start_seconds))
}

/// The checks of [`check`], then the train/test split: `(training rows, test rows)`.
fn split(data: &Dataset, settings: &InProcessSettings) -> Result<(Vec<usize>, Vec<usize>), PipelineError> {
    settings.validate()?;
    if let Some(t) = &settings.truth
        && t.features != data.features
    {
        return Err(PipelineError::TruthFeatures { truth: t.features.clone(), fit: data.features.clone() });
    }
    let n = data.y.len();
    let (train, test) = sharding::train_test_split(n, settings.test_fraction, settings.seed);
    if test.is_empty() || train.is_empty() {
        let (fraction, test, train) = (settings.test_fraction, test.len(), train.len());
        return Err(PipelineError::EmptySplit { fraction, test, train, n });
    }
    let (k, d) = (settings.em.k, data.features.len());
    let need = model::n_free_params(k, d);
    if let Some(machines) = settings.machines.filter(|&m| m > train.len() / need) {
        return Err(PipelineError::TooManyMachines {
            machines,
            train: train.len(),
            most: train.len() / need,
            need,
            k,
            d,
        });
    }
    Ok((train, test))
}

/// The training rows gathered machine by machine; an error when a category partition gives another
/// M than asked for, or a shard has fewer rows than the model's free parameters.
fn shard(data: &Dataset, train: &[usize], settings: &InProcessSettings) -> Result<ShardedData, PipelineError> {
    let machines = settings.machines.unwrap_or(0);
    let (order, shards) = sharding::shard_rows(train, &settings.partition, machines, settings.seed);
    if let Partition::ByCategory(_) = settings.partition
        && settings.machines.is_some_and(|m| m != shards.len())
    {
        let partition = settings.partition_name.clone();
        return Err(PipelineError::MachinesMismatch { machines, partition, values: shards.len() });
    }
    let sizes: Vec<usize> = shards.iter().map(|r| r.len()).collect();
    super::check_shard_sizes(&sizes, settings.em.k, data.features.len())?;
    Ok(ShardedData::gather(data.x.view(), data.y.view(), data.labels.as_deref(), &order, shards))
}

/// Every machine's local fit, one after another.
fn local_fits(
    data: &Dataset,
    sharded: &ShardedData,
    settings: &InProcessSettings,
) -> Result<Vec<LocalReport>, PipelineError> {
    let mut reports = Vec::with_capacity(sharded.shards.len());
    for (m, shard) in sharded.shards.iter().enumerate() {
        let count = super::support_count(settings.support, shard.len(), sharded.n());
        let (x, y) = (sharded.shard_x(m), sharded.shard_y(m));
        let (features, target) = (&data.features, &data.target);
        reports.push(super::local_fit(m, x, y, features, target, &settings.em, count, settings.seed)?);
    }
    Ok(reports)
}

/// The reduced model (timed `max_m t_m + t_reduce`), every baseline, the refined model (timed with its
/// rounds added), and the global fit (timed by its CPU seconds), scored on the test rows (with their
/// true labels and the truth, when known).
fn score_estimators(data: &Dataset, fit: &InProcessFit, truth: Option<&Moe>) -> Vec<ScoredEstimator> {
    let test = &fit.test_rows;
    let xt = data.x.select(Axis(0), test);
    let yt = data.y.select(Axis(0), test);
    let lt: Option<Vec<usize>> = data.labels.as_ref().map(|l| test.iter().map(|&r| l[r]).collect());
    let reduced = Estimate::Moe(Box::new(fit.reduction.model.clone()));
    let mut rows: Vec<(&'static str, Estimate, Option<f64>)> =
        vec![("reduction", reduced, Some(fit.distributed_seconds()))];
    let baselines = super::baselines(&fit.reports, &fit.reduction, &Baseline::ALL);
    rows.extend(baselines.into_iter().map(|(name, e)| (name, e, None)));
    if let Some((which, run, _)) = &fit.exact_em {
        rows.push((which.name(), Estimate::Moe(Box::new(run.model().clone())), fit.exact_em_seconds()));
    }
    let global = Estimate::Moe(Box::new(fit.global.model.clone()));
    rows.push(("global", global, Some(fit.global.summary.cpu_seconds)));
    rows.into_iter()
        .map(|(name, est, seconds)| {
            let scores = super::score(&est, xt.view(), yt.view(), lt.as_deref(), truth);
            ScoredEstimator { name, scores, seconds }
        })
        .collect()
}
