//! `dmoe bench`: EM throughput on synthetic data, single-threaded, measured in thread CPU time.
//! Each case runs one start for a fixed number of iterations (tolerance 0), so seconds per iteration
//! is comparable across sizes; the k-means start and standardisation are timed separately.

use clap::Args;

use crate::cputime::thread_cpu_seconds;
use crate::em::{self, EmSettings};
use crate::rng;
use crate::synthetic::{Simulator, TruthSpec};

/// Options of `dmoe bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Comma-separated sample sizes.
    #[arg(long, value_delimiter = ',', default_values_t = [100_000usize, 1_000_000])]
    n: Vec<usize>,
    /// Comma-separated model shapes KxD.
    #[arg(long, value_delimiter = ',', default_values_t = ["3x2".to_string(), "5x20".to_string()])]
    shape: Vec<String>,
    /// EM iterations per case.
    #[arg(long, default_value_t = 10)]
    iters: usize,
}

fn parse_shape(s: &str) -> Result<(usize, usize), String> {
    let (k, d) = s.split_once('x').ok_or_else(|| format!("--shape: expected KxD such as 5x20, got `{s}`"))?;
    let k = k.parse().map_err(|_| format!("--shape: K in `{s}` is not a whole number"))?;
    let d = d.parse().map_err(|_| format!("--shape: d in `{s}` is not a whole number"))?;
    Ok((k, d))
}

/// Runs the benchmark grid and prints one line per case.
pub fn run(a: &BenchArgs) -> Result<(), String> {
    if a.iters == 0 {
        return Err("--iters: expected at least 1".into());
    }
    println!(
        "{:>9} {:>3} {:>3} {:>6} {:>10} {:>10} {:>14}",
        "N", "K", "d", "iters", "setup_s", "s/iter", "sample-it/s"
    );
    for shape in &a.shape {
        let (k, d) = parse_shape(shape)?;
        let sim = Simulator::random(&TruthSpec { k, d, separation: 1.0, seed: 1 })?;
        for &n in &a.n {
            let data = sim.sample(n, &mut rng::stream(1, &[n as u64]));
            let names: Vec<String> = sim.truth.features.clone();
            let one = |iters: usize| {
                let settings =
                    EmSettings { k, restarts: 1, warmup_iter: 0, max_iter: iters, tol: 0.0, ..EmSettings::default() };
                let t0 = thread_cpu_seconds();
                em::fit(data.x.view(), data.y.view(), &names, "y", &settings).map_err(|e| e.to_string())?;
                Ok::<f64, String>(thread_cpu_seconds() - t0)
            };
            // Setup (standardise, k-means start, first E-step) = a 1-iteration fit minus one iteration.
            let t1 = one(1)?;
            let tn = one(a.iters + 1)?;
            let per_iter = (tn - t1) / a.iters as f64;
            let setup = t1 - per_iter;
            println!(
                "{n:>9} {k:>3} {d:>3} {:>6} {setup:>10.3} {per_iter:>10.4} {:>14.3e}",
                a.iters,
                n as f64 / per_iter
            );
        }
    }
    Ok(())
}
