//! The command line: a thin layer that parses flags, calls the library and prints. Every user error
//! ends with a message on stderr and exit code 2, and no partial output file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::data::{self, load_dataset, write_atomically};
use crate::em::{self, EmSettings};
use crate::model::Moe;
use crate::synthetic::{Simulator, TruthSpec};
use crate::{bench, information, rng};

/// dmoe: learn a Mixture of Experts across a (simulated) cluster.
#[derive(Debug, Parser)]
#[command(name = "dmoe", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Draw a data set from a random true MoE (the authors' recipe) and write it as CSV.
    Simulate(SimulateArgs),
    /// Fit a MoE by EM on every row of a CSV file and write the model as JSON.
    Fit(FitArgs),
    /// Predict with a saved model: mixture mean and most likely component of every row.
    Predict(PredictArgs),
    /// Time EM iterations on synthetic data (N x K x d grid) and print the throughput.
    Bench(bench::BenchArgs),
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
    /// Also print standard errors (empirical Fisher information).
    #[arg(long)]
    stderr: bool,
    /// Where to write the fitted model (JSON).
    #[arg(long)]
    out: Option<PathBuf>,
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
        Command::Simulate(a) => simulate(a),
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

fn fit(a: FitArgs) -> Result<(), String> {
    let ds = load_dataset(&a.data, &a.target, a.features.as_deref()).map_err(|e| e.to_string())?;
    if a.features.is_none() && data::CsvFile::open(&a.data).map_err(|e| e.to_string())?.has_column(data::TRUTH_COLUMN) {
        eprintln!(
            "note: column `z` is taken as the true component and not used as a feature (name it in --features to use it)"
        );
    }
    let settings = EmSettings {
        k: a.k,
        restarts: a.restarts,
        warmup_iter: a.warmup,
        max_iter: a.max_iter,
        tol: a.tol,
        seed: a.seed,
        ..EmSettings::default()
    };
    let fitted = em::fit(ds.x.view(), ds.y.view(), &ds.features, &ds.target, &settings)
        .map_err(|e| format!("{}: {e}", a.data.display()))?;
    let model = &fitted.model;
    let s = model.fit.as_ref().expect("a fitted model has a summary");
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
    print_parameters(model, se.as_ref());
    if let Some(out) = &a.out {
        model.save(out).map_err(|e| e.to_string())?;
        println!("model written to {}", out.display());
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
