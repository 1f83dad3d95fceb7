//! `dmoe bench`: single-threaded timings in thread CPU time, on synthetic data.
//! - EM throughput: one start run for a fixed number of iterations (tolerance 0), so seconds per
//!   iteration compare across sizes; the start and standardisation are timed separately.
//! - `--reduction`: the server's reduction against the supporting-sample size S and the number of
//!   local experts M*K, next to the CPU time of the local fits it aggregates (real EM fits on shards of
//!   N / max(M) rows).

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
    /// Time the reduction instead of EM (uses the first --n and --shape).
    #[arg(long)]
    reduction: bool,
    /// With --reduction: comma-separated machine counts M.
    #[arg(long, value_delimiter = ',', default_values_t = [16usize, 32, 64, 128])]
    machines: Vec<usize>,
    /// With --reduction: comma-separated supporting-sample sizes S.
    #[arg(long, value_delimiter = ',', default_values_t = [500usize, 1000, 2000, 4000])]
    support: Vec<usize>,
}

fn parse_shape(s: &str) -> Result<(usize, usize), String> {
    let (k, d) = s.split_once('x').ok_or_else(|| format!("--shape: expected KxD such as 5x20, got `{s}`"))?;
    let k = k.parse().map_err(|_| format!("--shape: K in `{s}` is not a whole number"))?;
    let d = d.parse().map_err(|_| format!("--shape: d in `{s}` is not a whole number"))?;
    Ok((k, d))
}

/// Runs the benchmark grid and prints one line per case.
pub fn run(a: &BenchArgs) -> Result<(), String> {
    if a.reduction {
        return run_reduction(a);
    }
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

/// Fits max(M) shards of N / max(M) rows, then times the reduction of the first M local models for
/// every (M, S), with the supporting sample drawn from the covariate distribution.
fn run_reduction(a: &BenchArgs) -> Result<(), String> {
    let (k, d) = parse_shape(a.shape.first().ok_or("--shape: give one KxD")?)?;
    let n = *a.n.first().ok_or("--n: give one sample size")?;
    let m_max = *a.machines.iter().max().ok_or("--machines: give at least one count")?;
    if a.machines.contains(&0) || a.support.contains(&0) || n / m_max == 0 {
        return Err("--machines and --support must be >= 1, and N / max(M) at least 1 row".into());
    }
    let sim = Simulator::random(&TruthSpec { k, d, separation: 1.0, seed: 1 })?;
    let shard = n / m_max;
    let names = sim.truth.features.clone();
    let settings = EmSettings { k, ..EmSettings::default() };
    eprintln!("fitting {m_max} local models on {shard} rows each (K = {k}, d = {d}) ...");
    let mut locals = Vec::with_capacity(m_max);
    let mut fit_cpu = Vec::with_capacity(m_max);
    for m in 0..m_max {
        let data = sim.sample(shard, &mut rng::stream(1, &[7, m as u64]));
        let r = crate::distributed::local_fit(m, data.x.view(), data.y.view(), &names, "y", &settings, 1, 1)
            .map_err(|e| e.to_string())?;
        fit_cpu.push(r.cpu_seconds);
        locals.push(r.model);
    }
    fit_cpu.sort_by(f64::total_cmp);
    let median_fit = fit_cpu[m_max / 2];
    println!("local EM fit on {shard} rows: median CPU {median_fit:.4} s, max {:.4} s", fit_cpu[m_max - 1]);
    println!(
        "{:>5} {:>6} {:>6} {:>11} {:>9} {:>15} {:>12}",
        "M", "M*K", "S", "reduce_s", "MM_iters", "start", "/ local fit"
    );
    let rs = crate::reduction::ReductionSettings { k, ..Default::default() };
    for &m in &a.machines {
        let refs: Vec<&crate::model::Moe> = locals[..m].iter().collect();
        let sizes = vec![shard; m];
        for &s in &a.support {
            let support = sim.covariates.sample(s, &mut rng::stream(2, &[s as u64]));
            let t0 = thread_cpu_seconds();
            let r = crate::reduction::reduce(&refs, &sizes, support.view(), &rs).map_err(|e| e.to_string())?;
            let t = thread_cpu_seconds() - t0;
            let iters: usize = r.runs.iter().map(|(_, tr)| tr.len() - 1).sum();
            println!(
                "{m:>5} {:>6} {s:>6} {t:>11.4} {iters:>9} {:>15} {:>12.3}",
                m * k,
                format!("{:?}", r.init),
                t / median_fit
            );
        }
    }
    Ok(())
}
