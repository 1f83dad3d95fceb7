//! The command line: a thin layer that parses flags, calls the library and prints. Every user error
//! ends with a message on stderr and exit code 2, and no partial output file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::data::synthetic::{Simulator, TruthSpec};
use crate::data::{self, load_dataset, write_atomically};
use crate::distributed::{self, Estimate};
use crate::numeric::em::{self, EmSettings};
use crate::numeric::model::Moe;
use crate::reduce::{OutlierPolicy, ReductionSettings};
pub mod bench;
pub mod progress;

use crate::data::sharding;
use crate::numeric::{cputime, information, rng};
use crate::{report, study};

/// dmoe: learn a Mixture of Experts across a (simulated) cluster.
#[derive(Debug, Parser)]
#[command(name = "dmoe", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario file: every cell of its sweep, then results.csv, run.json, plots and traces.
    Run(RunArgs),
    /// Validate a scenario file (keys, types, ranges, data files, shard sizes) without running it.
    Check(CheckArgs),
    /// Measure the model clock's constants on this machine and print them as a [cost_model] table.
    Calibrate,
    /// Draw a data set from a random true MoE (the authors' recipe) and write it as CSV.
    Simulate(SimulateArgs),
    /// Fit a MoE by EM to a CSV file and write the model as JSON: on one machine, on M machines
    /// reduced to one model (--machines, with a comparison of estimators), or on MPI ranks (--backend mpi).
    Fit(FitArgs),
    /// Predict with a saved model: mixture mean and most likely component of every row.
    Predict(PredictArgs),
    /// Time EM on synthetic data (or, with a flag: the reduction, the simulator's overhead, stuck fits).
    Bench(bench::BenchArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The scenario (TOML; reference: scenarios/README.md).
    file: PathBuf,
    /// Output folder (default: output/<scenario name>); replaced atomically at the end.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Cluster runs to simulate at a time.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Override the scenario's clock: `measured` (thread CPU time) or `model` (reproducible cost model).
    #[arg(long, value_parser = ["measured", "model"])]
    clock: Option<String>,
    /// Show no progress and print no summary.
    #[arg(long)]
    quiet: bool,
    /// Override a scenario key with a TOML value, e.g. --set data.n=[4000] --set repetitions=1.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The scenario (TOML).
    file: PathBuf,
    /// Override a scenario key with a TOML value, as in `dmoe run`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Number of components K of the true model.
    #[arg(long)]
    k: usize,
    /// Number of covariates d.
    #[arg(long)]
    d: usize,
    /// Number of rows to draw.
    #[arg(long)]
    n: usize,
    /// Seed of the true model, the covariate clusters and the rows.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Expert separation s: noise variance 3/s^2 (1 = the authors' setting).
    #[arg(long, default_value_t = 1.0)]
    separation: f64,
    /// Output CSV: columns x1..xd, y, z (z = true component, 1..K).
    #[arg(long)]
    out: PathBuf,
    /// Also write the true model as JSON (the same format as `fit --out`).
    #[arg(long)]
    truth: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct FitArgs {
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
    /// Maximum EM iterations (warm-up included).
    #[arg(long, default_value_t = EmSettings::default().max_iter)]
    max_iter: usize,
    /// Relative log-likelihood change that counts as converged.
    #[arg(long, default_value_t = EmSettings::default().tol)]
    tol: f64,
    /// Also print standard errors (empirical Fisher information); single-machine fits only.
    #[arg(long)]
    stderr: bool,
    /// Where to write the fitted model (JSON); with --machines, the reduced model.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Fit on M machines and reduce (in process, one machine after another). Without it, one fit on
    /// every row.
    #[arg(long)]
    machines: Option<usize>,
    /// How rows are shared out: `random`, `contiguous` (file order), or a column name (one machine
    /// per distinct value; --machines may then be omitted). Default: random in process, contiguous
    /// with --backend mpi.
    #[arg(long)]
    partition: Option<String>,
    /// `inproc` (default: machines fitted one after another in this process) or `mpi` (one MPI rank
    /// per machine: run under `mpirun -np M`; needs a build with `--features mpi`).
    #[arg(long, default_value = "inproc", value_parser = ["inproc", "mpi"])]
    backend: String,
    /// Supporting-sample size S: each machine sends about S * N_m / N of its covariate rows.
    #[arg(long, default_value_t = 2000)]
    support: usize,
    /// Fraction of rows held out (at random) to score the estimators; in (0, 1).
    #[arg(long, default_value_t = 0.2)]
    test_fraction: f64,
    /// With --machines: screening of outlying local models: `drop` (reduce again without them),
    /// `flag` (report only) or `keep` (no screening: the paper's method).
    #[arg(long, default_value = "drop", value_parser = ["drop", "flag", "keep"])]
    outliers: String,
    /// With --machines: where to write the global fit (JSON).
    #[arg(long)]
    global_out: Option<PathBuf>,
    /// A true model (JSON, e.g. from `simulate --truth`): adds parameter MSE and transport divergence
    /// to the truth to the comparison.
    #[arg(long)]
    truth: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct PredictArgs {
    /// A model written by `dmoe fit --out` or `dmoe simulate --truth`.
    #[arg(long)]
    model: PathBuf,
    /// CSV with the model's feature columns (and optionally its target).
    #[arg(long)]
    data: PathBuf,
    /// Output CSV: `yhat, gate_component` and, when the target is present, `posterior_component`
    /// (components 1..K).
    #[arg(long)]
    out: PathBuf,
}

/// Runs the command line; the binary's `main` is only this.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run(a),
        Command::Check(a) => check(a),
        Command::Calibrate => {
            let c = crate::cluster::clock::calibrate();
            println!("# model-clock constants measured on this machine; paste into a scenario");
            println!(
                "[cost_model]\nem_per_component = {:e}\nem_per_coefficient_pair = {:e}\nmm_per_unit = {:e}",
                c.em_per_component, c.em_per_coefficient_pair, c.mm_per_unit
            );
            Ok(())
        }
        Command::Simulate(a) => simulate(a),
        Command::Fit(a) if a.backend == "mpi" => return fit_mpi(&a),
        Command::Fit(a) => fit(a),
        Command::Predict(a) => predict(a),
        Command::Bench(a) => bench::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// The checked plan of a scenario file with its `--set` overrides; `--clock` is one more override.
fn load_checked(file: &Path, set: &[String], clock: Option<&str>) -> Result<study::Plan, String> {
    let mut overrides = set.to_vec();
    overrides.extend(clock.map(|c| format!("clock=\"{c}\"")));
    study::load(file, &overrides).map_err(|e| e.to_string())
}

fn check(a: CheckArgs) -> Result<(), String> {
    let c = load_checked(&a.file, &a.set, None)?;
    let runs = c.cells.len() * c.repetitions;
    println!(
        "{}: ok: {} cells x {} repetitions = {runs} cluster runs; K = {}, d = {}; output folder `{}`",
        a.file.display(),
        c.cells.len(),
        c.repetitions,
        c.k,
        c.d,
        c.name
    );
    Ok(())
}

fn run(a: RunArgs) -> Result<(), String> {
    use std::io::IsTerminal;
    use std::sync::Arc;
    if a.jobs == 0 {
        return Err("--jobs: expected at least 1, got 0".into());
    }
    let checked = load_checked(&a.file, &a.set, a.clock.as_deref())?;
    let dest = a.out.clone().unwrap_or_else(|| PathBuf::from("output").join(&checked.name));
    let with_global = usize::from(checked.reports(study::Estimator::Global));
    let data_sets = checked.cells.iter().map(|c| c.n_index).max().map_or(0, |m| m + 1) * checked.repetitions;
    let total = checked.cells.len() * checked.repetitions + data_sets * with_global;
    let progress: Arc<dyn study::Progress> = if a.quiet {
        Arc::new(study::Silent)
    } else if std::io::stderr().is_terminal() {
        Arc::new(crate::cli::progress::Bars::new(total))
    } else {
        Arc::new(crate::cli::progress::Lines::new(total))
    };
    let out = study::run(&checked, &study::StudyOptions { jobs: a.jobs, progress })
        .map_err(|e| format!("{}: {e}", a.file.display()))?;
    report::write_study(&dest, &checked, &out, &report::RunMeta { jobs: a.jobs, overrides: a.set.clone() })?;
    if !a.quiet {
        print_summary(&out);
        println!("results, plots and traces in {}/ ({:.1} s)", dest.display(), out.wall_seconds);
    }
    Ok(())
}

/// One line per cell: mean makespan and speedup, and the reduction's RPE next to the global fit's.
fn print_summary(out: &study::StudyOutput) {
    println!(
        "{:>5} {:>5} {:>9} {:<28} {:>11} {:>8} {:>13} {:>10}",
        "cell", "M", "n", "network", "makespan_s", "speedup", "RPE reduction", "RPE global"
    );
    let mut cells: Vec<usize> = out.rows.iter().map(|r| r.cell).collect();
    cells.dedup();
    for c in cells {
        let rows: Vec<&study::ResultRow> = out.rows.iter().filter(|r| r.cell == c).collect();
        let mean = |est: &str, f: &dyn Fn(&study::ResultRow) -> Option<f64>| {
            let v: Vec<f64> = rows.iter().filter(|r| r.estimator == est).filter_map(|r| f(r)).collect();
            if v.is_empty() { "-".to_string() } else { format!("{:.4}", v.iter().sum::<f64>() / v.len() as f64) }
        };
        let first = rows[0];
        println!(
            "{c:>5} {:>5} {:>9} {:<28} {:>11} {:>8} {:>13} {:>10}",
            first.machines,
            first.n,
            first.network.chars().take(28).collect::<String>(),
            mean("reduction", &|r| r.makespan_s),
            mean("reduction", &|r| r.speedup),
            mean("reduction", &|r| Some(r.scores.rpe)),
            mean("global", &|r| Some(r.scores.rpe))
        );
    }
}

fn simulate(a: SimulateArgs) -> Result<(), String> {
    if a.n == 0 {
        return Err("--n: expected at least 1 row, got 0".into());
    }
    let sim = Simulator::random(&TruthSpec { k: a.k, d: a.d, separation: a.separation, seed: a.seed })?;
    let data = sim.sample(a.n, &mut rng::stream(a.seed, &[2]));
    write_atomically(&a.out, |w| {
        let names: Vec<String> = sim.truth.features.iter().cloned().chain(["y".into(), "z".into()]).collect();
        writeln!(w, "{}", names.join(","))?;
        for ((row, y), z) in data.x.outer_iter().zip(data.y.iter()).zip(&data.z) {
            for v in row {
                write!(w, "{v},")?;
            }
            writeln!(w, "{y},{}", z + 1)?;
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    if let Some(path) = &a.truth {
        sim.truth.save(path).map_err(|e| e.to_string())?;
    }
    println!("wrote {} rows (K = {}, d = {}, seed {}) to {}", a.n, a.k, a.d, a.seed, a.out.display());
    Ok(())
}

fn em_settings(a: &FitArgs) -> EmSettings {
    EmSettings {
        k: a.k,
        restarts: a.restarts,
        warmup_iter: a.warmup,
        max_iter: a.max_iter,
        tol: a.tol,
        seed: a.seed,
        ..EmSettings::default()
    }
}

fn fit(a: FitArgs) -> Result<(), String> {
    let file = data::CsvFile::open(&a.data).map_err(|e| e.to_string())?;
    let ds = load_dataset(&a.data, &a.target, a.features.as_deref()).map_err(|e| e.to_string())?;
    if a.features.is_none() && file.has_column(data::TRUTH_COLUMN) {
        eprintln!(
            "note: column `z` is taken as the true component and not used as a feature (name it in --features to use it)"
        );
    }
    let settings = em_settings(&a);
    let partition = a.partition.clone().unwrap_or_else(|| "random".into());
    let distributed = a.machines.is_some() || !matches!(partition.as_str(), "random" | "contiguous");
    if distributed {
        return fit_distributed(&a, &partition, &file, &ds, &settings);
    }
    for (flag, given) in [("--global-out", a.global_out.is_some()), ("--truth", a.truth.is_some())] {
        if given {
            return Err(format!("{flag} needs --machines (it compares distributed estimators)"));
        }
    }
    let fitted = em::fit(ds.x.view(), ds.y.view(), &ds.features, &ds.target, &settings)
        .map_err(|e| format!("{}: {e}", a.data.display()))?;
    let model = &fitted.model;
    let s = &fitted.summary;
    println!("fitted K = {} on {} rows: {} ~ {}", model.k(), s.n, ds.target, ds.features.join(" + "));
    println!("log-likelihood  {:.4} ({:.6} per row)", s.loglik, s.loglik / s.n as f64);
    println!(
        "iterations      {} ({})",
        s.iterations,
        if s.converged { "converged" } else { "NOT converged: raise --max-iter or --tol" }
    );
    println!("CPU time        {:.3} s ({} starts)", s.cpu_seconds, s.restarts);
    let se = if a.stderr { information::standard_errors(model, ds.x.view(), ds.y.view()) } else { None };
    if a.stderr && se.is_none() {
        eprintln!("note: the information matrix is singular; standard errors are not available");
    }
    if let Some(out) = &a.out {
        model.save(out).map_err(|e| e.to_string())?;
    }
    print_parameters(model, se.as_ref());
    if let Some(out) = &a.out {
        println!("model written to {}", out.display());
    }
    Ok(())
}

/// `fit --backend mpi`: this process is one rank; the exit code is rank 0's verdict on every rank.
fn fit_mpi(a: &FitArgs) -> ExitCode {
    let fail = |m: String| {
        eprintln!("error: {m}");
        ExitCode::from(2)
    };
    if a.machines.is_some() {
        return fail(
            "--machines does not apply to --backend mpi: the number of ranks (mpirun -np M) is the number of machines"
                .into(),
        );
    }
    if !(a.test_fraction > 0.0 && a.test_fraction < 1.0) {
        return fail(format!("--test-fraction: expected a number in (0, 1), got {}", a.test_fraction));
    }
    if a.support == 0 {
        return fail("--support: expected at least 1 supporting point, got 0".into());
    }
    let partition = match a.partition.as_deref().unwrap_or("contiguous") {
        "contiguous" => sharding::Partition::Contiguous,
        "random" => sharding::Partition::Random,
        other => return fail(format!("--partition: expected contiguous or random with --backend mpi, got `{other}`")),
    };
    run_mpi(a, partition)
}

#[cfg(feature = "mpi")]
fn run_mpi(a: &FitArgs, partition: sharding::Partition) -> ExitCode {
    let outliers = outlier_policy(&a.outliers);
    let code = crate::distributed::mpi::fit(&crate::distributed::mpi::MpiFit {
        data: a.data.display().to_string(),
        target: a.target.clone(),
        features: a.features.clone(),
        em: em_settings(a),
        reduction: ReductionSettings { k: a.k, seed: a.seed, outliers, ..ReductionSettings::default() },
        partition,
        support: a.support,
        seed: a.seed,
        test_fraction: a.test_fraction,
        out: a.out.clone(),
    });
    ExitCode::from(code as u8)
}

#[cfg(not(feature = "mpi"))]
fn run_mpi(_: &FitArgs, _: sharding::Partition) -> ExitCode {
    eprintln!(
        "error: this dmoe was built without MPI; build it with `cargo build --release --features mpi` (needs the packages libopenmpi-dev, openmpi-bin and libclang-dev)"
    );
    ExitCode::from(2)
}

fn outlier_policy(name: &str) -> OutlierPolicy {
    match name {
        "keep" => OutlierPolicy::Keep,
        "flag" => OutlierPolicy::Flag,
        _ => OutlierPolicy::Drop,
    }
}

/// `fit --machines`: split, fit every shard, reduce, fit the global model, compare on held-out rows.
fn fit_distributed(
    a: &FitArgs,
    partition_name: &str,
    file: &data::CsvFile,
    ds: &data::Dataset,
    em_settings: &EmSettings,
) -> Result<(), String> {
    if a.stderr {
        return Err("--stderr applies to single-machine fits; drop --machines or --stderr".into());
    }
    if !(a.test_fraction > 0.0 && a.test_fraction < 1.0) {
        return Err(format!("--test-fraction: expected a number in (0, 1), got {}", a.test_fraction));
    }
    if a.support == 0 {
        return Err("--support: expected at least 1 supporting point, got 0".into());
    }
    if a.machines == Some(0) {
        return Err("--machines: expected at least 1, got 0".into());
    }
    let truth = a.truth.as_deref().map(Moe::load).transpose().map_err(|e| e.to_string())?;
    if let Some(t) = &truth
        && t.features != ds.features
    {
        return Err(format!(
            "--truth: the true model's features [{}] are not the fit's [{}]",
            t.features.join(", "),
            ds.features.join(", ")
        ));
    }
    let n = ds.y.len();
    let (train, test) = sharding::train_test_split(n, a.test_fraction, a.seed);
    if test.is_empty() || train.is_empty() {
        return Err(format!(
            "--test-fraction {} leaves {} test and {} training rows of {n}; both must be at least 1",
            a.test_fraction,
            test.len(),
            train.len()
        ));
    }
    let need = crate::numeric::model::n_free_params(a.k, ds.features.len());
    if a.machines.is_some_and(|m| m > train.len() / need) {
        return Err(format!(
            "--machines {}: {} training rows can give at most {} machines the {need} rows each that K = {} on d = {} features needs",
            a.machines.unwrap_or(0),
            train.len(),
            train.len() / need,
            a.k,
            ds.features.len()
        ));
    }
    let partition = match partition_name {
        "random" => sharding::Partition::Random,
        "contiguous" => sharding::Partition::Contiguous,
        column => sharding::Partition::ByCategory(file.read_text(column).map_err(|e| e.to_string())?),
    };
    let machines = a.machines.unwrap_or(0);
    let (order, shards) = sharding::shard_rows(&train, &partition, machines, a.seed);
    if let sharding::Partition::ByCategory(_) = partition
        && a.machines.is_some_and(|m| m != shards.len())
    {
        return Err(format!(
            "--machines {machines} does not match --partition {}: its training rows have {} distinct values (omit --machines)",
            partition_name,
            shards.len()
        ));
    }
    let sizes: Vec<usize> = shards.iter().map(|r| r.len()).collect();
    distributed::check_shard_sizes(&sizes, a.k, ds.features.len())?;
    let sharded = sharding::ShardedData::gather(ds.x.view(), ds.y.view(), ds.labels.as_deref(), &order, shards);
    let mut reports = Vec::with_capacity(sizes.len());
    for (m, &size) in sizes.iter().enumerate() {
        let count = distributed::support_count(a.support, size, sharded.n());
        let (x, y) = (sharded.shard_x(m), sharded.shard_y(m));
        let report = distributed::local_fit(m, x, y, &ds.features, &ds.target, em_settings, count, a.seed)
            .map_err(|e| format!("{}: {e}", a.data.display()))?;
        reports.push(report);
    }
    let outliers = outlier_policy(&a.outliers);
    let reduce_settings = ReductionSettings { k: a.k, seed: a.seed, outliers, ..ReductionSettings::default() };
    let t0 = cputime::thread_cpu_seconds();
    let reduction = distributed::aggregate(&reports, &reduce_settings).map_err(|e| e.to_string())?;
    let reduce_cpu = cputime::thread_cpu_seconds() - t0;
    let global = em::fit(sharded.x.view(), sharded.y.view(), &ds.features, &ds.target, em_settings)
        .map_err(|e| format!("{}: global fit: {e}", a.data.display()))?;
    // Files first, so that a closed stdout (`| head`) cannot lose them.
    if let Some(out) = &a.out {
        reduction.model.save(out).map_err(|e| e.to_string())?;
    }
    if let Some(out) = &a.global_out {
        global.model.save(out).map_err(|e| e.to_string())?;
    }

    let max_local = reports.iter().map(|r| r.cpu_seconds).fold(0.0, f64::max);
    let total_local: f64 = reports.iter().map(|r| r.cpu_seconds).sum();
    let converged = reports.iter().filter(|r| r.converged).count();
    let global_cpu = global.summary.cpu_seconds;
    println!(
        "{} machines ({} partition), {} training rows, {} test rows, {} supporting points",
        sizes.len(),
        partition_name,
        sharded.n(),
        test.len(),
        reduction.large.n_support()
    );
    println!(
        "local fits: shard sizes {}..{}, CPU max {max_local:.3} s, total {total_local:.3} s, {converged}/{} converged",
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap(),
        reports.len()
    );
    let trace = &reduction.objective_trace;
    println!(
        "reduction: start {:?}, {} MM iterations, objective {:.6} -> {:.6}, CPU {reduce_cpu:.3} s",
        reduction.init,
        trace.len() - 1,
        trace[0],
        trace[trace.len() - 1]
    );
    match (&reduction.flagged[..], outliers) {
        (_, OutlierPolicy::Keep) => println!("outlier screening: off (--outliers keep)"),
        ([], _) => println!("outlier screening: no machine flagged"),
        (flagged, _) => println!(
            "outlier screening: flagged machine{} {} (joint divergence {}), {}",
            if flagged.len() > 1 { "s" } else { "" },
            flagged.iter().map(|&i| (reports[i].machine + 1).to_string()).collect::<Vec<_>>().join(", "),
            flagged.iter().map(|&i| format!("{:.3}", reduction.scores[i])).collect::<Vec<_>>().join(", "),
            if reduction.dropped { "left out of the reduced model" } else { "kept (--outliers flag)" }
        ),
    }
    println!(
        "time: distributed {:.3} s (slowest local fit + reduction, no network), global {global_cpu:.3} s, speedup {:.2}",
        max_local + reduce_cpu,
        global_cpu / (max_local + reduce_cpu)
    );
    let xt = ds.x.select(ndarray::Axis(0), &test);
    let yt = ds.y.select(ndarray::Axis(0), &test);
    let lt: Option<Vec<usize>> = ds.labels.as_ref().map(|l| test.iter().map(|&r| l[r]).collect());
    let mut rows: Vec<(&str, Estimate, Option<f64>)> =
        vec![("reduction", Estimate::Moe(Box::new(reduction.model.clone())), Some(max_local + reduce_cpu))];
    rows.extend(
        distributed::baselines(&reports, &reduction, &distributed::Baseline::ALL)
            .into_iter()
            .map(|(n, e)| (n, e, None)),
    );
    rows.push(("global", Estimate::Moe(Box::new(global.model.clone())), Some(global_cpu)));
    let show = |v: Option<f64>, prec: usize| v.map_or("-".to_string(), |v| format!("{v:.prec$}"));
    println!();
    println!(
        "{:<16} {:>14} {:>10} {:>8} {:>10} {:>10} {:>7} {:>9} {:>8}",
        "estimator", "test loglik", "RPE", "corr", "param MSE", "transport", "ARI", "clust.err", "time s"
    );
    for (name, est, time) in &rows {
        let s = distributed::score(est, xt.view(), yt.view(), lt.as_deref(), truth.as_ref());
        println!(
            "{name:<16} {:>14.3} {:>10.6} {:>8.4} {:>10} {:>10} {:>7} {:>9} {:>8}",
            s.test_loglik,
            s.rpe,
            s.correlation,
            show(s.param_mse, 5),
            show(s.transport_to_truth, 5),
            show(s.ari, 4),
            show(s.clustering_error.map(|e| 100.0 * e), 2),
            show(*time, 3)
        );
    }
    for (what, path) in [("reduced", &a.out), ("global", &a.global_out)] {
        if let Some(p) = path {
            println!("{what} model written to {}", p.display());
        }
    }
    Ok(())
}

/// Prints the parameter vector, one line per parameter, with standard errors when given.
fn print_parameters(model: &Moe, se: Option<&ndarray::Array1<f64>>) {
    let values = model.param_vector();
    for (i, name) in model.param_names().iter().enumerate() {
        match se {
            Some(se) => println!("  {name:<32} {:>14.6}  (se {:.6})", values[i], se[i]),
            None => println!("  {name:<32} {:>14.6}", values[i]),
        }
    }
}

fn predict(a: PredictArgs) -> Result<(), String> {
    let model = Moe::load(&a.model).map_err(|e| e.to_string())?;
    let file = data::CsvFile::open(&a.data).map_err(|e| e.to_string())?;
    let feats: Vec<data::ColumnExpr> = model.features.iter().map(|f| data::ColumnExpr::parse(f)).collect();
    let x = file.read(&feats).map_err(|e| e.to_string())?;
    let target = model.target.as_deref().map(data::ColumnExpr::parse).filter(|t| file.has_column(&t.column));
    let y = match &target {
        Some(t) => Some(file.read(std::slice::from_ref(t)).map_err(|e| e.to_string())?.column(0).to_owned()),
        None => None,
    };
    let yhat = model.predict(x.view());
    let gate = model.gate_components(x.view());
    let post = y.as_ref().map(|y| model.posterior_components(x.view(), y.view()));
    write_predictions(&a.out, &yhat, &gate, post.as_deref())?;
    println!("wrote {} predictions to {}", yhat.len(), a.out.display());
    Ok(())
}

fn write_predictions(
    out: &Path,
    yhat: &ndarray::Array1<f64>,
    gate: &[usize],
    post: Option<&[usize]>,
) -> Result<(), String> {
    write_atomically(out, |w| {
        writeln!(w, "yhat,gate_component{}", if post.is_some() { ",posterior_component" } else { "" })?;
        for (i, (v, g)) in yhat.iter().zip(gate).enumerate() {
            match post {
                Some(p) => writeln!(w, "{v},{},{}", g + 1, p[i] + 1)?,
                None => writeln!(w, "{v},{}", g + 1)?,
            }
        }
        Ok(())
    })
    .map_err(|e| e.to_string())
}
