//! Running a checked scenario: for every data set (one per `n` and repetition) make the data, fit the
//! global baseline once, run one simulated cluster per M (up to `jobs` at a time) whose fits every
//! network cell of that M replays, and score every estimator on the held-out rows. Results are ordered by (cell, repetition, estimator) whatever the
//! order in which the work finished.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ndarray::{Array1, Array2, Axis};
use rand::RngExt;

use crate::cluster::record::RunRecord;
use crate::cluster::{self, ClusterConfig, GlobalFit};
use crate::data::sharding::{self, Partition, PartitionSpec, ShardedData};
use crate::data::synthetic::{Recipe, Simulator, TruthSpec};
use crate::data::{self, CsvFile};
use crate::distributed::{self, Baseline, Estimate, Scores};
use crate::numeric::em::{self, EmSettings};
use crate::numeric::model::{Moe, n_free_params};
use crate::numeric::rng;
use crate::reduce::baselines::PooledMixture;
use crate::study::plan::{Cell, DataPlan, Estimator, Plan};

/// How progress is shown (shared with the actors, hence `Send + Sync`).
pub trait Progress: Send + Sync {
    /// A unit of work starts: `label` describes it, `machines` is its number of machine reports (0 for
    /// a global fit).
    fn started(&self, task: usize, label: &str, machines: usize);
    /// A machine of task `task` reported.
    fn machine_done(&self, task: usize);
    /// A unit of work finished, with a one-line summary.
    fn finished(&self, task: usize, summary: &str);
}

/// Shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn started(&self, _: usize, _: &str, _: usize) {}
    fn machine_done(&self, _: usize) {}
    fn finished(&self, _: usize, _: &str) {}
}

/// Options of a study run.
pub struct StudyOptions {
    /// Cluster runs at a time.
    pub jobs: usize,
    /// Progress display.
    pub progress: Arc<dyn Progress>,
}

/// Why a study stopped.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The data could not be read.
    #[error(transparent)]
    Data(#[from] data::DataError),
    /// A fit or a cluster run failed.
    #[error("{0}")]
    Run(String),
}

/// One line of results.csv: one estimator in one cell and repetition.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    /// Cell index.
    pub cell: usize,
    /// Machines M.
    pub machines: usize,
    /// Rows of the data set.
    pub n: usize,
    /// Network label.
    pub network: String,
    /// Protocol name.
    pub protocol: String,
    /// Protocol kind: `one-shot`, `distributed-em`, `refine` or `fedavg`.
    pub protocol_kind: &'static str,
    /// Repetition.
    pub rep: usize,
    /// Estimator name.
    pub estimator: &'static str,
    /// Accuracy on the test rows.
    pub scores: Scores,
    /// Rounds of the protocol (its row only).
    pub rounds: Option<usize>,
    /// Slowest included machine's compute time (the protocol's row only; summed over rounds).
    pub local_compute_max_s: Option<f64>,
    /// Network time beyond the slowest compute, up to the last used answer, summed over rounds
    /// (the protocol's row only, as every cluster fact below).
    pub network_s: Option<f64>,
    /// Wait for the deadlines after the last used answers, summed over rounds.
    pub wait_s: Option<f64>,
    /// The server's steps (the reduction, in one-shot), summed over rounds.
    pub reduce_s: Option<f64>,
    /// Learning time: the makespan (the protocol's row) or the global fit's time (global).
    pub makespan_s: Option<f64>,
    /// Global time / makespan (the protocol's row; 1 on the global row).
    pub speedup: Option<f64>,
    /// Bytes of every message, requests and answers.
    pub bytes_sent: Option<u64>,
    /// In one-shot, machines whose local models entered the reduced model (reported in time, not
    /// dropped by the screening); otherwise, machines whose answers the last step used.
    pub machines_included: Option<usize>,
    /// Machines flagged as outliers by the server's screening.
    pub machines_flagged: Option<usize>,
    /// Local fits that converged before em.max_iter, among the machines that did not fail (empty
    /// for protocols without local fits).
    pub local_converged: Option<usize>,
    /// Training rows of the smallest shard per free parameter of the model.
    pub rows_per_parameter: Option<f64>,
}

impl ResultRow {
    /// The row's numbers by results.csv column (`None` where the column is empty).
    pub fn numbers(&self) -> Vec<(&'static str, Option<f64>)> {
        let times = [
            ("local_compute_max_s", self.local_compute_max_s),
            ("network_s", self.network_s),
            ("wait_s", self.wait_s),
            ("reduce_s", self.reduce_s),
            ("makespan_s", self.makespan_s),
            ("speedup", self.speedup),
        ];
        self.scores.named().into_iter().chain(times).collect()
    }

    /// An error naming the first number of the row that is not finite and the scenario's inputs it
    /// is computed from, so that no `NaN` or `inf` is ever written or plotted.
    fn check_finite(&self) -> Result<(), String> {
        let Some((column, value)) =
            self.numbers().into_iter().find_map(|(c, v)| v.filter(|v| !v.is_finite()).map(|v| (c, v)))
        else {
            return Ok(());
        };
        let inputs = match column {
            "rpe" | "test_loglik" | "correlation" => {
                "the estimator's predictions on the test rows: the data's values ([data]), data.separation, model.k"
            }
            "param_mse" | "transport_to_truth" => "the estimate against the true model: data.separation, data.truth",
            "local_compute_max_s" | "reduce_s" => "the clock: clock, [cost_model], [machines] speeds",
            "network_s" | "wait_s" | "makespan_s" => {
                "the network (latency, bandwidth, loss, timeout), cluster.deadline and the clock"
            }
            _ => "the global fit's time and the makespan: the clock, [cost_model], [machines], the network",
        };
        Err(format!(
            "cell {} (M = {}, n = {}, network {}), repetition {}, estimator {}: {column} = {value}, not a finite number; it is computed from {inputs}: change one of them",
            self.cell, self.machines, self.n, self.network, self.rep, self.estimator
        ))
    }
}

/// One finished cluster run.
#[derive(Debug, Clone)]
pub struct CellRun {
    /// The cell.
    pub cell: Cell,
    /// Repetition.
    pub rep: usize,
    /// The reproducible record.
    pub record: RunRecord,
    /// The cell whose simulation fitted the machines (this one, or the first cell with the same data
    /// set and M under another network: that cell's fits are replayed here).
    pub fits_from_cell: usize,
    /// Wall seconds of the simulation (0 when the fits come from another cell).
    pub wall_seconds: f64,
    /// Measured CPU seconds of the local fits (0 when they come from another cell).
    pub fit_cpu_seconds: f64,
    /// Measured CPU seconds of the server for all the cells sharing the fits (0 in all but the first).
    pub server_cpu_seconds: f64,
}

/// Everything a study produced.
#[derive(Debug, Clone)]
pub struct StudyOutput {
    /// results.csv rows, in (cell, rep, estimator) order.
    pub rows: Vec<ResultRow>,
    /// Every cluster run, in (cell, rep) order.
    pub runs: Vec<CellRun>,
    /// Wall seconds of the whole study.
    pub wall_seconds: f64,
}

/// A data set of the study: training rows (sharded later per cell), test rows, the truth if known.
struct DataSet {
    train: ShardedData,
    test_x: Array2<f64>,
    test_y: Array1<f64>,
    test_labels: Option<Vec<usize>>,
    truth: Option<Moe>,
    /// Shards fixed by a category column, if any.
    fixed_shards: Option<Vec<std::ops::Range<usize>>>,
}

/// Runs every cell of a checked scenario.
pub fn run(plan: &Plan, opts: &StudyOptions) -> Result<StudyOutput, StudyError> {
    let wall0 = Instant::now();
    let source = DataSource::open(plan)?;
    let mut rows = Vec::new();
    let mut runs = Vec::new();
    let mut task_base = 0;
    for (n_index, n) in plan.n_values().into_iter().enumerate() {
        for rep in 0..plan.repetitions {
            let ds = source.data_set(plan, n, n_index, rep);
            let cells: Vec<&Cell> = plan.cells.iter().filter(|c| c.n_index == n_index).collect();
            let (mut cell_runs, mut cell_rows) = run_data_set(plan, &ds, &cells, rep, task_base, opts)?;
            task_base += cells.len() + plan.k_values().len();
            runs.append(&mut cell_runs);
            rows.append(&mut cell_rows);
        }
    }
    runs.sort_by_key(|r| (r.cell.index, r.rep));
    rows.sort_by_key(|r| (r.cell, r.rep));
    Ok(StudyOutput { rows, runs, wall_seconds: wall0.elapsed().as_secs_f64() })
}

/// Where a study's data sets come from: a simulator, or a CSV table (with its partition column).
enum DataSource {
    Synthetic(Box<Simulator>),
    Csv { table: data::Dataset, categories: Option<Vec<String>> },
}

impl DataSource {
    /// The simulator of the true model, or the CSV table, read once for the whole study.
    fn open(plan: &Plan) -> Result<DataSource, StudyError> {
        Ok(match &plan.data {
            DataPlan::Synthetic { k, d, separation, truth_seed, truth, recipe } => {
                DataSource::Synthetic(Box::new(match truth {
                    Some(p) => {
                        let truth = Moe::load(p).map_err(|e| StudyError::Run(e.to_string()))?;
                        match recipe {
                            Recipe::Spread => Simulator::from_truth(truth, *truth_seed),
                            _ => Simulator::benchmark_with(truth, *truth_seed),
                        }
                    }
                    None => {
                        let spec = TruthSpec { k: *k, d: *d, separation: *separation, seed: *truth_seed };
                        Simulator::draw(&spec, recipe).map_err(|e| StudyError::Run(e.to_string()))?
                    }
                }))
            }
            DataPlan::Csv { path, file } => {
                let file = match file {
                    Some(f) => f.clone(),
                    None => CsvFile::open(path)?,
                };
                DataSource::Csv {
                    table: file.dataset(&plan.target, Some(&plan.features))?,
                    categories: match &plan.partition {
                        PartitionSpec::Column(c) => Some(file.read_text(c)?),
                        _ => None,
                    },
                }
            }
        })
    }

    /// The data set of (n, repetition).
    fn data_set(&self, plan: &Plan, n: usize, n_index: usize, rep: usize) -> DataSet {
        match self {
            DataSource::Synthetic(sim) => synthetic_data(sim, plan, n, n_index, rep),
            DataSource::Csv { table, categories } => csv_data(table, plan, categories.as_deref(), rep),
        }
    }
}

/// The data set (n, rep) of a simulator. The spread recipe draws the training rows from the stream
/// (seed, rep, n index, 10) and the test rows from (seed, rep, n index, 11); the authors' recipes
/// draw all n rows from the first (the benchmark z-scores them together) and hold out the last
/// `n_test`, which is a random split because the rows come in random order.
fn synthetic_data(sim: &Simulator, plan: &Plan, n: usize, n_index: usize, rep: usize) -> DataSet {
    let n_test = plan.n_test(n);
    let key = [rep as u64, n_index as u64];
    let (train, test) = if matches!(plan.data, DataPlan::Synthetic { recipe: Recipe::Spread, .. }) {
        let train = sim.sample(n - n_test, &mut rng::stream(plan.seed, &[key[0], key[1], 10]));
        (train, sim.sample(n_test, &mut rng::stream(plan.seed, &[key[0], key[1], 11])))
    } else {
        sim.sample(n, &mut rng::stream(plan.seed, &[key[0], key[1], 10])).split(n - n_test)
    };
    DataSet {
        // Rows are iid, so consecutive blocks are a random partition: no shuffle, no copy.
        train: ShardedData::new(train.x, train.y, Some(train.z), Vec::new()),
        test_x: test.x,
        test_y: test.y,
        test_labels: Some(test.z),
        truth: Some(sim.truth.clone()),
        fixed_shards: None,
    }
}

fn csv_data(table: &data::Dataset, plan: &Plan, categories: Option<&[String]>, rep: usize) -> DataSet {
    let n = table.y.len();
    let split_seed = plan.split_seed(rep);
    let (train, test) = sharding::train_test_split(n, plan.test_fraction, split_seed);
    let partition = match (&plan.partition, categories) {
        (PartitionSpec::Contiguous, _) => Partition::Contiguous,
        (_, Some(values)) => Partition::ByCategory(values.to_vec()),
        _ => Partition::Random,
    };
    let (order, shards) = sharding::shard_rows(&train, &partition, 1, split_seed);
    let fixed = matches!(partition, Partition::ByCategory(_)).then_some(shards.clone());
    DataSet {
        train: ShardedData::gather(table.x.view(), table.y.view(), table.labels.as_deref(), &order, shards),
        test_x: table.x.select(Axis(0), &test),
        test_y: table.y.select(Axis(0), &test),
        test_labels: table.labels.as_ref().map(|l| test.iter().map(|&r| l[r]).collect()),
        truth: None,
        fixed_shards: fixed,
    }
}

/// What one task of a data set produced.
enum TaskResult {
    /// The global fit with this K.
    Global(usize, Box<GlobalFit>),
    Cells(Vec<CellRun>),
}

/// The cells of a data set that share their machines (same M, K, S and failure probability), in
/// sweep order: they differ only by the network and the straggler fraction, which change the
/// timing alone, so their machines fit once and every cell replays those fits.
fn fit_groups<'a>(plan: &Plan, cells: &[&'a Cell]) -> Vec<Vec<&'a Cell>> {
    let key = |c: &Cell| {
        let s = plan.setting(c);
        (c.machines, s.k, s.support, s.machines.failure_probability.to_bits())
    };
    let mut groups: Vec<Vec<&Cell>> = Vec::new();
    for &cell in cells {
        match groups.iter_mut().find(|g| key(g[0]) == key(cell)) {
            Some(g) => g.push(cell),
            None => groups.push(vec![cell]),
        }
    }
    groups
}

/// Runs the global fit of every swept K and every group of cells of one data set on a queue of
/// `jobs` workers, then scores.
fn run_data_set(
    plan: &Plan,
    ds: &DataSet,
    cells: &[&Cell],
    rep: usize,
    task_base: usize,
    opts: &StudyOptions,
) -> Result<(Vec<CellRun>, Vec<ResultRow>), StudyError> {
    let ks = if plan.reports(Estimator::Global) { plan.k_values() } else { Vec::new() };
    let groups = fit_groups(plan, cells);
    let n_tasks = ks.len() + groups.len();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<TaskResult, String>>>> = Mutex::new((0..n_tasks).map(|_| None).collect());
    let jobs = opts.jobs.max(1).min(n_tasks);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = plan.threads.unwrap_or((cores / jobs).max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let t = next.fetch_add(1, Ordering::SeqCst);
                    if t >= n_tasks || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let out = match ks.get(t) {
                        Some(&k) => global_task(plan, ds, k, rep, task_base + t, opts)
                            .map(|g| TaskResult::Global(k, Box::new(g))),
                        None => group_task(plan, ds, &groups[t - ks.len()], rep, threads, task_base + t, opts)
                            .map(TaskResult::Cells),
                    };
                    if out.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    results.lock().expect("no worker panics holding the lock")[t] = Some(out);
                }
            });
        }
    });
    let results = results.into_inner().expect("workers have finished");
    if let Some(e) = results.iter().flatten().find_map(|r| r.as_ref().err()) {
        return Err(StudyError::Run(e.clone()));
    }
    let mut globals = Vec::new();
    let mut runs = Vec::new();
    for r in results.into_iter().flatten() {
        match r.expect("errors returned above") {
            TaskResult::Global(k, g) => globals.push((k, *g)),
            TaskResult::Cells(mut c) => runs.append(&mut c),
        }
    }
    let mut rows = Vec::new();
    for run in &mut runs {
        let k = plan.setting(&run.cell).k;
        if let Some((_, g)) = globals.iter().find(|(gk, _)| *gk == k) {
            run.record.attach_global(g);
        }
        rows.extend(score_run(plan, ds, run));
    }
    rows.iter().try_for_each(ResultRow::check_finite).map_err(StudyError::Run)?;
    Ok((runs, rows))
}

/// EM with `k` components on all training rows of a data set: the global baseline of the cells
/// that fit `k`.
fn global_task(
    plan: &Plan,
    ds: &DataSet,
    k: usize,
    rep: usize,
    task: usize,
    opts: &StudyOptions,
) -> Result<GlobalFit, String> {
    let which = if plan.k_values().len() > 1 { format!("K = {k}, rep {rep}") } else { format!("rep {rep}") };
    opts.progress.started(task, &format!("global fit (n = {}, {which})", ds.train.n() + ds.test_y.len()), 0);
    let mut settings = EmSettings { k, ..plan.em.clone() };
    // Machine 0's seed: with one machine the cluster then fits exactly the global problem.
    settings.seed = distributed::machine_seed(fit_seed(plan.seed, rep), 0);
    let fit = em::fit(ds.train.x.view(), ds.train.y.view(), &plan.features, &plan.target, &settings)
        .map_err(|e| format!("global fit: {e}"))?;
    let summary = &fit.summary;
    let seconds = plan.clock.fit_seconds(summary, k, plan.d);
    let mut model = fit.model;
    if let Some(f) = model.fit.as_mut() {
        f.cpu_seconds = seconds; // under the model clock, nothing measured is reported
    }
    opts.progress.finished(task, &format!("global fit ({which}): {seconds:.3} s"));
    Ok(GlobalFit { model, seconds })
}

/// The training rows cut into the machines' shards for `cell`'s M: the category shards of a CSV
/// partition column, the heterogeneous recipe's shards by expert, or blocks.
fn machine_data(plan: &Plan, ds: &DataSet, cell: &Cell, rep: usize) -> ShardedData {
    if let DataPlan::Synthetic { k, recipe: Recipe::Heterogeneous { experts_per_machine, .. }, .. } = plan.data {
        let labels = ds.train.labels.as_ref().expect("synthetic rows carry their components");
        let (order, shards) = sharding::by_expert_windows(labels, k, cell.machines, experts_per_machine);
        let (x, y) = (ds.train.x.view(), ds.train.y.view());
        return ShardedData::gather(x, y, Some(labels), &order, shards);
    }
    ds.train.with_shards(match &ds.fixed_shards {
        Some(f) => f.clone(),
        None => plan.shard_blocks(ds.train.n(), cell.machines, cell.n_index, rep),
    })
}

/// One simulated cluster for the cells of `group` (same data set and M, one network each): the
/// machines fit once and the server replays their reports under every cell's network. Machine
/// draws (speeds, failures) and network draws come from the stream `(seed, n index, M, rep)`, so
/// every network sees the same machines and the same random numbers.
fn group_task(
    plan: &Plan,
    ds: &DataSet,
    group: &[&Cell],
    rep: usize,
    threads: usize,
    task: usize,
    opts: &StudyOptions,
) -> Result<Vec<CellRun>, String> {
    let first = group[0];
    let setting = plan.setting(first);
    let data = Arc::new(machine_data(plan, ds, first, rep));
    let machines = data.shards.len();
    let swept = |settings: &[&crate::study::Setting]| {
        let label = plan.settings_label(settings);
        if label.is_empty() { label } else { format!(", {label}") }
    };
    let labels: Vec<String> = group
        .iter()
        .map(|c| {
            let own = swept(&[plan.setting(c)]);
            let protocol = match plan.protocols.len() {
                1 => String::new(),
                _ => format!(", {}", plan.protocols[c.protocol].name),
            };
            let network = &plan.networks[c.network].label;
            format!("cell {} rep {rep}: M = {machines}, n = {}{own}{protocol}, {network}", c.index, c.n)
        })
        .collect();
    let indices: Vec<String> = group.iter().map(|c| c.index.to_string()).collect();
    let all: Vec<&crate::study::Setting> = group.iter().map(|c| plan.setting(c)).collect();
    let started = format!("cells {} rep {rep}: M = {machines}, n = {}{}", indices.join(", "), first.n, swept(&all));
    opts.progress.started(task, if group.len() == 1 { &labels[0] } else { &started }, machines);
    let config = ClusterConfig {
        em: plan.em_for(setting),
        reduction: plan.reduction_for(setting),
        support: setting.support,
        networks: group.iter().map(|c| plan.networks[c.network].model.clone()).collect(),
        replay_speeds: group.iter().map(|c| plan.setting(c).machines.speed.clone()).collect(),
        protocols: group.iter().map(|c| plan.protocols[c.protocol].clone()).collect(),
        machines: setting.machines.clone(),
        deadline: plan.deadline,
        clock: plan.clock.clone(),
        threads,
        seed: plan.seed,
        stream: vec![first.n_index as u64, machines as u64, rep as u64],
        baselines: plan.baselines(),
        fit_seed: fit_seed(plan.seed, rep),
    };
    let progress = opts.progress.clone();
    let on_report: Arc<dyn Fn() + Send + Sync> = Arc::new(move || progress.machine_done(task));
    let out = cluster::run(data, plan.features.clone(), plan.target.clone(), &config, None, Some(on_report)).map_err(
        |e| {
            // Name the cell whose network failed, or every cell when the fits themselves failed.
            let (cells, network) = match &e {
                cluster::ClusterError::UnderNetwork { network, .. } => {
                    let cell = group[*network];
                    (cell.index.to_string(), format!(", network {}", plan.networks[cell.network].label))
                }
                _ => (indices.join(", "), String::new()),
            };
            let plural = if group.len() > 1 && network.is_empty() { "cells" } else { "cell" };
            format!("{plural} {cells} (M = {machines}, n = {}{network}), repetition {rep}: {e}", first.n)
        },
    )?;
    let mut runs = Vec::with_capacity(group.len());
    for (i, ((&cell, record), label)) in group.iter().zip(out.records).zip(&labels).enumerate() {
        let r = &record;
        opts.progress.finished(
            task,
            &format!(
                "{label}: makespan {:.3} s (compute {:.3}, network {:.3}{}, reduce {:.3})",
                r.makespan_s,
                r.local_compute_max_s,
                r.network_s,
                if r.wait_s > 0.0 { format!(", wait {:.3}", r.wait_s) } else { String::new() },
                r.reduce_s
            ),
        );
        // The simulation's real-time facts belong to the first cell; the others replay its fits.
        let own = |v: f64| if i == 0 { v } else { 0.0 };
        runs.push(CellRun {
            cell: cell.clone(),
            rep,
            record,
            fits_from_cell: first.index,
            wall_seconds: own(out.wall_seconds),
            fit_cpu_seconds: own(out.fit_cpu_seconds),
            server_cpu_seconds: own(out.server_cpu_seconds),
        });
    }
    Ok(runs)
}

/// Seed of the local fits of repetition `rep`: the same in every cell, so the cells of a sweep differ
/// only in what they vary (common random numbers).
fn fit_seed(seed: u64, rep: usize) -> u64 {
    rng::stream(seed, &[rep as u64, 13]).random()
}

/// results.csv rows of one run: the protocol's own estimator first when it is not the reduction,
/// then the scenario's estimators in order (the baselines only in one-shot cells: they are computed
/// from the local fits alone). The protocol's row carries the times, rounds and bytes.
fn score_run(plan: &Plan, ds: &DataSet, run: &CellRun) -> Vec<ResultRow> {
    let r = &run.record;
    let score = |e: &Estimate| {
        distributed::score(e, ds.test_x.view(), ds.test_y.view(), ds.test_labels.as_deref(), ds.truth.as_ref())
    };
    let protocol = &plan.protocols[run.cell.protocol];
    let timed = protocol.kind.estimator();
    let one_shot = timed == Estimator::Reduction.name();
    let model = |name: &str| r.estimator(name).map(|m| Estimate::Moe(Box::new(m.clone())));
    let mut estimates: Vec<(&'static str, Option<Estimate>)> = Vec::new();
    if !one_shot {
        estimates.push((timed, model(timed)));
    }
    for &est in &plan.estimators {
        let estimate = match est {
            Estimator::Truth => ds.truth.clone().map(|t| Estimate::Moe(Box::new(t))),
            Estimator::Baseline(_) if !one_shot => continue,
            Estimator::Baseline(Baseline::Pooled) => {
                let included: Vec<(&Moe, usize)> = r
                    .machines
                    .iter()
                    .filter(|m| m.included)
                    .filter_map(|m| m.model.as_ref().map(|model| (model, m.rows)))
                    .collect();
                let (models, sizes): (Vec<&Moe>, Vec<usize>) = included.into_iter().unzip();
                PooledMixture::new(&models, &sizes).ok().map(Estimate::Pooled)
            }
            _ => model(est.name()),
        };
        estimates.push((est.name(), estimate));
    }
    let net = plan.networks[run.cell.network].label.clone();
    let mut rows = Vec::new();
    for (name, estimate) in estimates {
        let Some(estimate) = estimate else { continue };
        let is_timed = name == timed;
        let is_global = name == Estimator::Global.name();
        let own = |v: f64| is_timed.then_some(v);
        rows.push(ResultRow {
            cell: run.cell.index,
            machines: r.machines.len(),
            n: run.cell.n,
            network: net.clone(),
            protocol: protocol.name.clone(),
            protocol_kind: protocol.kind.name(),
            rep: run.rep,
            estimator: name,
            scores: score(&estimate),
            rounds: is_timed.then_some(r.rounds.len()),
            local_compute_max_s: own(r.local_compute_max_s),
            network_s: own(r.network_s),
            wait_s: own(r.wait_s),
            reduce_s: own(r.reduce_s),
            makespan_s: if is_timed {
                Some(r.makespan_s)
            } else if is_global {
                r.global_s
            } else {
                None
            },
            speedup: if is_timed {
                r.speedup
            } else if is_global {
                Some(1.0)
            } else {
                None
            },
            bytes_sent: is_timed.then_some(r.bytes_sent),
            machines_included: is_timed.then(|| {
                // One-shot: the machines the reduced model kept (the screening may drop some).
                r.machines.iter().filter(|m| if one_shot { m.lambda.is_some() } else { m.included }).count()
            }),
            machines_flagged: is_timed.then_some(r.flagged_machines.len()),
            // Only protocols with local fits (one-shot, refine) have local fits to count.
            local_converged: (is_timed && r.machines.iter().any(|m| m.converged.is_some()))
                .then(|| r.machines.iter().filter(|m| m.converged == Some(true)).count()),
            rows_per_parameter: is_timed.then(|| {
                let smallest = r.machines.iter().map(|m| m.rows).min().unwrap_or(0);
                smallest as f64 / n_free_params(plan.setting(&run.cell).k, plan.d) as f64
            }),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> ResultRow {
        ResultRow {
            cell: 3,
            machines: 16,
            n: 60000,
            network: "lan".into(),
            protocol: "one-shot".into(),
            protocol_kind: "one-shot",
            rep: 1,
            estimator: "reduction",
            scores: Scores {
                test_loglik: -1.0,
                rpe: 0.1,
                correlation: 0.9,
                param_mse: Some(0.01),
                transport_to_truth: Some(0.1),
                ari: Some(0.8),
                clustering_error: Some(0.1),
            },
            rounds: Some(1),
            local_compute_max_s: Some(1.0),
            network_s: Some(0.1),
            wait_s: Some(0.0),
            reduce_s: Some(0.1),
            makespan_s: Some(1.2),
            speedup: Some(8.0),
            bytes_sent: Some(100),
            machines_included: Some(16),
            machines_flagged: Some(0),
            local_converged: Some(16),
            rows_per_parameter: Some(200.0),
        }
    }

    #[test]
    fn a_non_finite_number_is_refused_naming_the_column_and_its_inputs() {
        assert!(row().check_finite().is_ok());
        let mut r = row();
        r.scores.param_mse = Some(f64::INFINITY);
        let e = r.check_finite().unwrap_err();
        assert!(e.starts_with("cell 3 (M = 16, n = 60000, network lan), repetition 1, estimator reduction"), "{e}");
        assert!(e.contains("param_mse = inf") && e.contains("data.separation"), "{e}");
        let mut r = row();
        r.network_s = Some(f64::NAN);
        let e = r.check_finite().unwrap_err();
        assert!(e.contains("network_s = NaN") && e.contains("bandwidth"), "{e}");
        let mut r = row();
        r.speedup = None;
        r.scores.ari = None;
        assert!(r.check_finite().is_ok(), "empty columns are fine");
    }
}
