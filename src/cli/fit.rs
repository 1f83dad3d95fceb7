//! `dmoe fit`: flags to settings, the library's fit (one machine, in-process machines, or MPI
//! ranks), and what it prints.

use std::process::ExitCode;

use crate::data::sharding::{self, Partition, PartitionSpec};
use crate::data::{self, memory};
use crate::destination::{self, Destination};
use crate::distributed::DEFAULT_SUPPORT;
use crate::distributed::pipeline::{self, InProcessFit, InProcessSettings, ScoredEstimator};
use crate::numeric::em::{self, EmSettings};
use crate::numeric::information;
use crate::numeric::model::Moe;
use crate::numeric::range::{MAX_ITERATIONS, MAX_THREADS, within};
use crate::reduce::{OutlierPolicy, ReductionSettings};
use clap::Args;
use std::path::PathBuf;

/// Where the machines of `dmoe fit` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// In this process, one machine after another.
    Inproc,
    /// One MPI rank per machine.
    Mpi,
}

#[derive(Debug, Args)]
pub struct FitArgs {
    /// Input CSV with a header line.
    #[arg(long)]
    data: PathBuf,
    /// Response column; `log(col)` takes the natural log.
    #[arg(long)]
    target: String,
    /// Number of components K.
    #[arg(long)]
    k: usize,
    /// Comma-separated feature columns (each may be `log(col)`). Default: every numeric column
    /// except the target and `z` (the true component of simulated data).
    #[arg(long, value_delimiter = ',')]
    features: Option<Vec<String>>,
    /// Seed of the EM starts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of EM starts; each runs --warmup iterations, then the best continues.
    #[arg(long, default_value_t = EmSettings::default().restarts)]
    restarts: usize,
    /// Warm-up iterations of every start.
    #[arg(long, default_value_t = EmSettings::default().warmup_iter)]
    warmup: usize,
    /// With more rows than this, the starts' warm-ups run on a random subset of this many rows (the
    /// best start then runs on every row) and the gate's Newton steps take their curvature from it
    /// (0: every row for both).
    #[arg(long, default_value_t = EmSettings::default().subset_rows)]
    subset_rows: usize,
    /// Continue the best start with plain EM steps instead of SQUAREM-accelerated ones (also for the
    /// exact EM of --protocol refine and distributed-em).
    #[arg(long)]
    plain_em: bool,
    /// Threads of a fit on one machine (default: every core). The rows are cut into fixed blocks
    /// whose sums are added in block order, so the model is the same for any thread count. A
    /// distributed fit (--machines) fits its machines one thread each, as the simulator does.
    #[arg(long)]
    threads: Option<usize>,
    /// Maximum EM iterations (warm-up included).
    #[arg(long, default_value_t = EmSettings::default().max_iter)]
    max_iter: usize,
    /// Relative log-likelihood change that counts as converged.
    #[arg(long, default_value_t = EmSettings::default().tol)]
    tol: f64,
    /// Also print standard errors (empirical Fisher information); single-machine fits only.
    #[arg(long)]
    stderr: bool,
    /// Where to write the fitted model (JSON); with --machines or --backend mpi, the protocol's model
    /// (the reduced one for one-shot).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Fit on M machines and reduce (in process, one machine after another). Without it, one fit on
    /// every row.
    #[arg(long)]
    machines: Option<usize>,
    /// How rows are shared out: `random`, `contiguous` (file order), or a column name (one machine
    /// per distinct value; --machines may then be omitted). Default: random in process, contiguous
    /// with --backend mpi.
    #[arg(long, value_parser = |s: &str| Ok::<_, String>(PartitionSpec::parse(s)))]
    partition: Option<PartitionSpec>,
    /// `inproc` (default: machines fitted one after another in this process) or `mpi` (one MPI rank
    /// per machine: run under `mpirun -np M`; needs a build with `--features mpi`).
    #[arg(long, value_enum, default_value_t = Backend::Inproc)]
    backend: Backend,
    /// With --machines: supporting-sample size S (default 2000); each machine sends about
    /// S * N_m / N of its covariate rows.
    #[arg(long)]
    support: Option<usize>,
    /// With --machines: fraction of rows held out (at random) to score the estimators; in (0, 1),
    /// default 0.2.
    #[arg(long)]
    test_fraction: Option<f64>,
    /// With --machines: screening of outlying local models: `drop` (the default: reduce without
    /// them), `flag` (report only) or `keep` (no screening: the paper's method).
    #[arg(long, value_parser = OutlierPolicy::parse)]
    outliers: Option<OutlierPolicy>,
    /// With --machines: where to write the global fit (JSON).
    #[arg(long)]
    global_out: Option<PathBuf>,
    /// A true model (JSON, e.g. from `simulate --truth`): adds parameter MSE and transport divergence
    /// to the truth to the comparison.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// With --machines or --backend mpi: how the machines' work is combined. `one-shot` (the paper:
    /// one reduction of the local fits), `refine` (the reduction, then --rounds iterations of exact
    /// EM over the machines started from it: each round the machines send their E-step's
    /// sufficient statistics and the server takes the M-step) or `distributed-em` (exact EM over the
    /// machines from a start fitted on their supporting rows with the targets, to convergence or
    /// --rounds iterations; the one-shot reduction is still reported beside it). --out gets the
    /// protocol's model.
    #[arg(long, value_enum, default_value_t = Protocol::OneShot)]
    protocol: Protocol,
    /// With --protocol refine: iterations of exact EM over the machines (default 3); with
    /// distributed-em: at most this many (default --max-iter). Each is one round of messages, plus
    /// one per step halving of the gate and, for SQUAREM (not with --plain-em), one per kept jump
    /// and three per lost one; the standardisation and the start's E-step take one round each.
    #[arg(long)]
    rounds: Option<usize>,
}

/// `--rounds` of refine when not given.
const DEFAULT_REFINE_ITERATIONS: usize = 3;

/// How `fit --machines` combines the machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Protocol {
    /// One reduction of the local fits.
    OneShot,
    /// The reduction, then rounds of exact EM over the machines.
    Refine,
    /// Exact EM over the machines from a start fitted on the supporting rows.
    DistributedEm,
}

impl Protocol {
    /// Exact EM after the reduction, if the protocol has it (`rounds`: `--rounds`; `max_iter`:
    /// `--max-iter`).
    fn exact_em(self, rounds: Option<usize>, max_iter: usize) -> Option<pipeline::ExactEm> {
        match self {
            Protocol::OneShot => None,
            Protocol::Refine => {
                Some(pipeline::ExactEm::Refine { iterations: rounds.unwrap_or(DEFAULT_REFINE_ITERATIONS) })
            }
            Protocol::DistributedEm => {
                Some(pipeline::ExactEm::DistributedEm { max_iterations: rounds.unwrap_or(max_iter) })
            }
        }
    }
}

/// `--rounds` needs a protocol with exact EM, and is at least 1.
fn check_rounds(a: &FitArgs) -> Result<(), String> {
    match (a.protocol, a.rounds) {
        (Protocol::OneShot, Some(_)) => {
            Err("--rounds applies to --protocol refine or distributed-em: add one (or drop --rounds)".into())
        }
        (Protocol::Refine, Some(0)) => {
            Err("--rounds: refine with 0 iterations is the one-shot protocol: use --protocol one-shot".into())
        }
        (_, Some(r)) => within(r, 1, MAX_ITERATIONS).map(|_| ()).map_err(|e| format!("--rounds: {e}")),
        _ => Ok(()),
    }
}

impl FitArgs {
    /// `--test-fraction`, 0.2 when not given.
    fn test_fraction(&self) -> f64 {
        self.test_fraction.unwrap_or(0.2)
    }

    /// Whether this process is one MPI rank (`--backend mpi`).
    pub fn uses_mpi(&self) -> bool {
        self.backend == Backend::Mpi
    }

    /// Checks the distributed flags with the same rules as the scenario keys (`numeric::range`),
    /// whether or not the fit is distributed, so that a wrong flag is never silently ignored.
    fn check_ranges(&self) -> Result<(), String> {
        pipeline::check_numbers(self.test_fraction(), self.support.unwrap_or(DEFAULT_SUPPORT), self.machines).map_err(
            |e| match e {
                pipeline::PipelineError::Setting(name, e) => format!("--{}: {e}", name.replace('_', "-")),
                other => other.to_string(),
            },
        )?;
        // The EM settings too, before any file is read, naming the flag.
        em_settings(self).validate().map_err(|e| match e {
            em::EmError::Setting { name, error } => format!("--{}: {error}", name.replace('_', "-")),
            other => format!("--k: {other}"),
        })
    }
}

/// The EM settings from the flags.
fn em_settings(a: &FitArgs) -> EmSettings {
    EmSettings {
        k: a.k,
        restarts: a.restarts,
        warmup_iter: a.warmup,
        max_iter: a.max_iter,
        tol: a.tol,
        seed: a.seed,
        subset_rows: a.subset_rows,
        accelerate: !a.plain_em,
        threads: a.threads.unwrap_or(1),
        ..EmSettings::default()
    }
}

/// `fit`: one EM fit on every row, or the distributed fit with `--machines` or a category partition.
pub fn fit(a: FitArgs) -> Result<(), String> {
    a.check_ranges()?;
    let partition = a.partition.clone().unwrap_or(PartitionSpec::Random);
    let distributed = a.machines.is_some() || matches!(partition, PartitionSpec::Column(_));
    if !distributed {
        let given = [
            ("--global-out", a.global_out.is_some()),
            ("--truth", a.truth.is_some()),
            ("--partition", a.partition.is_some()),
            ("--support", a.support.is_some()),
            ("--outliers", a.outliers.is_some()),
            ("--test-fraction", a.test_fraction.is_some()),
        ];
        let protocol = [("--protocol", a.protocol != Protocol::OneShot), ("--rounds", a.rounds.is_some())];
        let given = [given.as_slice(), &protocol].concat();
        if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
            return Err(format!("{flag} applies to a distributed fit: add --machines M (or drop {flag})"));
        }
    } else if a.threads.is_some() {
        return Err("--threads applies to a fit on one machine: a distributed fit (--machines) fits each machine on one thread; drop --threads".into());
    }
    check_rounds(&a)?;
    let outputs = Outputs::claim(&a)?;
    let file = data::CsvFile::open(&a.data).map_err(|e| e.to_string())?;
    let features = match (&a.features, &partition) {
        (None, PartitionSpec::Column(c)) => Some(file.features_except(&a.target, c)),
        (given, _) => given.clone(),
    };
    let ds = file.dataset(&a.target, features.as_deref()).map_err(|e| e.to_string())?;
    if a.features.is_none() && file.has_column(data::TRUTH_COLUMN) {
        let role = if ds.labels.is_some() { "taken as the true component and " } else { "" };
        tell!("note: column `z` is {role}not used as a feature (name it in --features to use it)");
    }
    let (n, d) = ds.x.dim();
    memory::check_fits(
        memory::fit_bytes(n, a.k, d),
        &format!("{}: {n} rows of {d} features with --k {}", a.data.display(), a.k),
    )?;
    if distributed {
        let settings = in_process_settings(&a, &partition, &file, &ds)?;
        return fit_distributed(&a, &ds, &settings, outputs);
    }
    fit_one(&a, &ds, outputs)
}

/// The model files of `fit`, claimed before any work (`destination`).
struct Outputs {
    out: Option<Destination>,
    global_out: Option<Destination>,
}

impl Outputs {
    fn claim(a: &FitArgs) -> Result<Outputs, String> {
        let mut inputs = vec![("--data", a.data.as_path())];
        inputs.extend(a.truth.as_deref().map(|t| ("--truth", t)));
        let claim = |p: &Option<PathBuf>, flag| {
            p.as_deref().map(|p| Destination::file(p, flag).and_then(|d| d.not_an_input(&inputs))).transpose()
        };
        Ok(Outputs {
            out: claim(&a.out, "--out").map_err(|e| e.to_string())?,
            global_out: claim(&a.global_out, "--global-out").map_err(|e| e.to_string())?,
        })
    }

    /// Writes the reduced (or only) model to `--out` and the global one to `--global-out`, together,
    /// and releases both destinations (before anything is printed: a closed stdout must not leave
    /// their locks).
    fn write(self, model: &Moe, global: Option<&Moe>) -> Result<(), String> {
        let mut staged = Vec::new();
        for (dest, m) in [(&self.out, Some(model)), (&self.global_out, global)] {
            if let (Some(dest), Some(m)) = (dest, m) {
                staged.push(dest.stage_file(|w| writeln!(w, "{}", m.to_json())).map_err(|e| e.to_string())?);
            }
        }
        destination::commit(staged).map_err(|e| e.to_string())
    }
}

/// One EM fit on every row: its summary, its parameters (with standard errors for `--stderr`) and
/// the model file.
fn fit_one(a: &FitArgs, ds: &data::Dataset, outputs: Outputs) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get()).min(MAX_THREADS);
    let settings = EmSettings { threads: a.threads.unwrap_or(cores), ..em_settings(a) };
    let fitted = em::fit(ds.x.view(), ds.y.view(), &ds.features, &ds.target, &settings)
        .map_err(|e| format!("{}: {e}", a.data.display()))?;
    let model = &fitted.model;
    let s = &fitted.summary;
    let se = if a.stderr { information::standard_errors(model, ds.x.view(), ds.y.view()) } else { None };
    // The file first, so that a closed stdout (`| head`) cannot lose it.
    outputs.write(model, None)?;
    say!("fitted K = {} on {} rows: {} ~ {}", model.k(), s.n, ds.target, ds.features.join(" + "));
    say!("log-likelihood  {:.4} ({:.6} per row)", s.loglik, s.loglik / s.n as f64);
    say!(
        "iterations      {} ({})",
        s.iterations,
        if s.converged { "converged" } else { "NOT converged: raise --max-iter or --tol" }
    );
    say!("CPU time        {:.3} s ({} starts)", s.cpu_seconds, s.restarts);
    if a.stderr && se.is_none() {
        tell!("note: the information matrix is singular; standard errors are not available");
    }
    print_parameters(model, se.as_ref());
    if let Some(out) = &a.out {
        say!("model written to {}", out.display());
    }
    Ok(())
}

/// `fit --backend mpi`: this process is one rank; the exit code is rank 0's verdict on every rank.
pub fn fit_mpi(a: &FitArgs) -> ExitCode {
    let fail = |m: String| {
        tell!("error: {m}");
        ExitCode::from(2)
    };
    if a.machines.is_some() {
        return fail(
            "--machines does not apply to --backend mpi: the number of ranks (mpirun -np M) is the number of machines"
                .into(),
        );
    }
    for (flag, given) in
        [("--truth", a.truth.is_some()), ("--global-out", a.global_out.is_some()), ("--stderr", a.stderr)]
    {
        if given {
            return fail(format!("{flag} does not apply to --backend mpi (rank 0 writes only the protocol's model)"));
        }
    }
    if let Err(e) = check_rounds(a).and_then(|_| a.check_ranges()) {
        return fail(e);
    }
    let partition = match a.partition.as_ref().unwrap_or(&PartitionSpec::Contiguous) {
        PartitionSpec::Contiguous => sharding::Partition::Contiguous,
        PartitionSpec::Random => sharding::Partition::Random,
        PartitionSpec::Column(c) => {
            return fail(format!("--partition: expected contiguous or random with --backend mpi, got `{c}`"));
        }
    };
    run_mpi(a, partition)
}

#[cfg(feature = "mpi")]
fn run_mpi(a: &FitArgs, partition: sharding::Partition) -> ExitCode {
    let code = crate::distributed::mpi::fit(&crate::distributed::mpi::MpiFit {
        data: a.data.display().to_string(),
        target: a.target.clone(),
        features: a.features.clone(),
        em: em_settings(a),
        reduction: reduction_settings(a),
        partition,
        support: a.support.unwrap_or(DEFAULT_SUPPORT),
        seed: a.seed,
        test_fraction: a.test_fraction(),
        out: a.out.clone(),
        exact_em: a.protocol.exact_em(a.rounds, em_settings(a).max_iter),
    });
    ExitCode::from(code as u8)
}

#[cfg(not(feature = "mpi"))]
fn run_mpi(_: &FitArgs, _: sharding::Partition) -> ExitCode {
    tell!(
        "error: this dmoe was built without MPI; build it with `cargo build --release --features mpi` (needs the packages libopenmpi-dev, openmpi-bin and libclang-dev)"
    );
    ExitCode::from(2)
}

/// The server's reduction settings from the flags: K, the seed and the outlier policy.
fn reduction_settings(a: &FitArgs) -> ReductionSettings {
    ReductionSettings {
        k: a.k,
        seed: a.seed,
        outliers: a.outliers.unwrap_or(OutlierPolicy::Drop),
        ..ReductionSettings::default()
    }
}

/// `fit --machines`: the in-process distributed fit (`distributed::pipeline`), its model files and
/// its comparison of estimators on the held-out rows.
fn fit_distributed(
    a: &FitArgs,
    ds: &data::Dataset,
    settings: &InProcessSettings,
    outputs: Outputs,
) -> Result<(), String> {
    let fit = pipeline::fit_in_process(ds, settings).map_err(|e| match e.is_fit_error() {
        true => format!("{}: {e}", a.data.display()),
        false => e.to_string(),
    })?;
    for e in &fit.scores {
        if let Some((score, v)) = e.scores.first_non_finite() {
            return Err(format!(
                "{}: the {} estimator's {score} on the held-out rows is {v}, not a finite number: the data's values are too large for it; nothing was written",
                a.data.display(),
                e.name
            ));
        }
    }
    // Files first, so that a closed stdout (`| head`) cannot lose them.
    let model = fit.exact_em.as_ref().map_or(&fit.reduction.model, |(_, run, _)| run.model());
    outputs.write(model, Some(&fit.global.model))?;
    print_local_fits(&fit, &settings.partition_name);
    print_reduction(&fit, settings.reduction.outliers);
    print_exact_em(&fit, ds);
    print_times(&fit);
    print_scores(&fit.scores);
    let what = fit.exact_em.as_ref().map_or("reduced", |(which, _, _)| which.name());
    for (what, path) in [(what, &a.out), ("global", &a.global_out)] {
        if let Some(p) = path {
            say!("{what} model written to {}", p.display());
        }
    }
    Ok(())
}

/// The pipeline's settings from the flags, after a check that they apply (`--stderr` does not).
/// Files are read in the order of the pipeline's checks: the truth once the numbers are in range, the
/// partition column once the split is known to work.
fn in_process_settings(
    a: &FitArgs,
    partition: &PartitionSpec,
    file: &data::CsvFile,
    ds: &data::Dataset,
) -> Result<InProcessSettings, String> {
    if a.stderr {
        return Err("--stderr applies to single-machine fits; drop --machines or --stderr".into());
    }
    let mut settings = InProcessSettings {
        em: em_settings(a),
        reduction: reduction_settings(a),
        machines: a.machines,
        partition: Partition::Random, // set below, once the checks that need no file have passed
        partition_name: partition.name().to_string(),
        support: a.support.unwrap_or(DEFAULT_SUPPORT),
        test_fraction: a.test_fraction(),
        seed: a.seed,
        truth: None,
        exact_em: a.protocol.exact_em(a.rounds, em_settings(a).max_iter),
    };
    settings.validate().map_err(|e| e.to_string())?;
    settings.truth = a.truth.as_deref().map(Moe::load).transpose().map_err(|e| e.to_string())?;
    pipeline::check(ds, &settings).map_err(|e| e.to_string())?;
    settings.partition = match partition {
        PartitionSpec::Random => Partition::Random,
        PartitionSpec::Contiguous => Partition::Contiguous,
        PartitionSpec::Column(column) => Partition::ByCategory(file.read_text(column).map_err(|e| e.to_string())?),
    };
    Ok(settings)
}

/// The data and the local fits: machines, rows, shard sizes, CPU times, convergence.
fn print_local_fits(fit: &InProcessFit, partition_name: &str) {
    let (sizes, reports) = (&fit.shard_sizes, &fit.reports);
    say!(
        "{} machines ({} partition), {} training rows, {} test rows, {} supporting points",
        sizes.len(),
        partition_name,
        fit.training_rows,
        fit.test_rows.len(),
        fit.reduction.large.n_support()
    );
    let max_local = fit.slowest_local_seconds();
    let total_local: f64 = reports.iter().map(|r| r.summary.cpu_seconds).sum();
    let converged = reports.iter().filter(|r| r.summary.converged).count();
    say!(
        "local fits: shard sizes {}..{}, CPU max {max_local:.3} s, total {total_local:.3} s, {converged}/{} converged",
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap(),
        reports.len()
    );
}

/// The reduction (start, MM iterations, objective) and its outlier screening.
fn print_reduction(fit: &InProcessFit, outliers: OutlierPolicy) {
    let (reduction, reports) = (&fit.reduction, &fit.reports);
    let trace = &reduction.objective_trace;
    say!(
        "reduction: start {:?}, {} MM iterations in {} runs; refinement {:.6} -> {:.6} (objective on all {} supporting points), CPU {:.3} s",
        reduction.init,
        reduction.mm_iterations(),
        reduction.runs.len(),
        trace[0],
        trace[trace.len() - 1],
        reduction.large.n_support(),
        fit.reduce_cpu_seconds
    );
    match (&reduction.flagged[..], outliers) {
        (_, OutlierPolicy::Keep) => say!("outlier screening: off (--outliers keep)"),
        ([], _) => say!("outlier screening: no machine flagged"),
        (flagged, _) => say!(
            "outlier screening: flagged machine{} {} (joint divergence {}), {}",
            if flagged.len() > 1 { "s" } else { "" },
            flagged.iter().map(|&i| (reports[i].machine + 1).to_string()).collect::<Vec<_>>().join(", "),
            flagged.iter().map(|&i| format!("{:.3}", reduction.scores[i])).collect::<Vec<_>>().join(", "),
            if reduction.dropped { "left out of the reduced model" } else { "kept (--outliers flag)" }
        ),
    }
}

/// With `--protocol refine` or `distributed-em`: the test log-likelihood per row after each
/// iteration, and the share of the start's gap to the global fit that it closed,
/// `(L_t - L_0) / (L_global - L_0)`.
fn print_exact_em(fit: &InProcessFit, ds: &data::Dataset) {
    let Some((which, r, _)) = &fit.exact_em else { return };
    let x = ds.x.select(ndarray::Axis(0), &fit.test_rows);
    let y = ds.y.select(ndarray::Axis(0), &fit.test_rows);
    let per_row = |m: &Moe| m.loglik(x.view(), y.view()) / y.len() as f64;
    let (start, global) = (per_row(&r.models[0]), per_row(&fit.global.model));
    let t = r.tally;
    say!(
        "{}: {} iterations of exact EM over the machines in {} rounds ({} step halvings of the gate, {} SQUAREM jumps kept, {} lost), CPU {:.3} s (slowest machine per round + server)",
        which.name(),
        r.models.len() - 1,
        r.rounds,
        t.halvings,
        t.jumps_kept,
        t.jumps_lost,
        r.seconds
    );
    say!("  iteration   test log-lik/row   vs global   gap closed");
    for (t, m) in r.models.iter().enumerate() {
        let l = per_row(m);
        let closed =
            if global > start { format!("{:>9.1} %", 100.0 * (l - start) / (global - start)) } else { "-".into() };
        say!("  {t:>9}   {l:>16.5}   {:>8.5}   {closed}", l - global);
    }
}

/// The time of the distributed fit (`max_m t_m + t_reduce`) against the global fit's, and that of
/// exact EM's protocol when it ran.
fn print_times(fit: &InProcessFit) {
    let (distributed_s, global_s) = (fit.distributed_seconds(), fit.global.summary.cpu_seconds);
    say!(
        "time: one-shot {distributed_s:.3} s (slowest local fit + reduction, no network), global {global_s:.3} s, speedup {:.2}",
        global_s / distributed_s
    );
    if let (Some((which, ..)), Some(t)) = (&fit.exact_em, fit.exact_em_seconds()) {
        let parts = match which {
            pipeline::ExactEm::Refine { .. } => "one-shot + exact EM's rounds",
            pipeline::ExactEm::DistributedEm { .. } => "start on the supporting rows + exact EM's rounds",
        };
        say!("time: {} {t:.3} s ({parts}, no network), speedup {:.2}", which.name(), global_s / t);
    }
}

/// The table of every estimator's scores on the held-out rows.
/// A number with `prec` decimals, or in scientific notation when it is too large to read that way.
fn readable(v: f64, prec: usize) -> String {
    if v.abs() < 1e9 { format!("{v:.prec$}") } else { format!("{v:.prec$e}") }
}

fn print_scores(scores: &[ScoredEstimator]) {
    let show = |v: Option<f64>, prec: usize| v.map_or("-".to_string(), |v| readable(v, prec));
    say!();
    say!(
        "{:<16} {:>14} {:>10} {:>8} {:>10} {:>10} {:>7} {:>9} {:>8}",
        "estimator",
        "test loglik",
        "RPE",
        "corr",
        "param MSE",
        "transport",
        "ARI",
        "clust.err",
        "time s"
    );
    for ScoredEstimator { name, scores: s, seconds } in scores {
        say!(
            "{name:<16} {:>14} {:>10} {:>8.4} {:>10} {:>10} {:>7} {:>9} {:>8}",
            readable(s.test_loglik, 3),
            readable(s.rpe, 6),
            s.correlation,
            show(s.param_mse, 5),
            show(s.transport_to_truth, 5),
            show(s.ari, 4),
            show(s.clustering_error.map(|e| 100.0 * e), 2),
            show(*seconds, 3)
        );
    }
}

/// Prints the parameter vector, one line per parameter, with standard errors when given.
fn print_parameters(model: &Moe, se: Option<&ndarray::Array1<f64>>) {
    let values = model.param_vector();
    for (i, name) in model.param_names().iter().enumerate() {
        match se {
            Some(se) => say!("  {name:<32} {:>14}  (se {})", readable(values[i], 6), readable(se[i], 6)),
            None => say!("  {name:<32} {:>14}", readable(values[i], 6)),
        }
    }
}
