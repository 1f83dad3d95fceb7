//! `dmoe fit`: EM on a CSV file, on one machine, on M in-process machines (`--machines`, with a
//! comparison of estimators) or on MPI ranks (`--backend mpi`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::data::sharding;
use crate::data::{self, load_dataset};
use crate::distributed::{self, Estimate};
use crate::numeric::em::{self, EmSettings};
use crate::numeric::model::Moe;
use crate::numeric::range::{Range, at_least};
use crate::numeric::{cputime, information};
use crate::reduce::{OutlierPolicy, ReductionSettings};

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

impl FitArgs {
    /// Whether this process is one MPI rank (`--backend mpi`).
    pub fn uses_mpi(&self) -> bool {
        self.backend == "mpi"
    }

    /// Checks the distributed flags with the same rules as the scenario keys (`numeric::range`),
    /// whether or not the fit is distributed, so that a wrong flag is never silently ignored.
    fn check_ranges(&self) -> Result<(), String> {
        Range::OpenUnit.check(self.test_fraction).map_err(|e| format!("--test-fraction: {e}"))?;
        at_least(self.support, 1).map_err(|e| format!("--support: {e}"))?;
        if let Some(m) = self.machines {
            at_least(m, 1).map_err(|e| format!("--machines: {e}"))?;
        }
        Ok(())
    }
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

pub fn fit(a: FitArgs) -> Result<(), String> {
    a.check_ranges()?;
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
pub fn fit_mpi(a: &FitArgs) -> ExitCode {
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
    if let Err(e) = a.check_ranges() {
        return fail(e);
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
