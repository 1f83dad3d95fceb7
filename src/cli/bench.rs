//! `dmoe bench`: single-threaded timings in thread CPU time, on synthetic data.
//! - EM throughput: one start run for a fixed number of plain EM iterations on every row (tolerance
//!   0, no acceleration), so seconds per iteration compare across sizes and versions; the start and standardisation are timed separately.
//! - `--cluster`: the actor simulator's overhead: wall time of a run minus the local fits' CPU time
//!   divided by the worker threads, minus the server's CPU time; and the process's peak memory
//!   against the size of the data set.
//! - `--reduction`: the server's reduction against the supporting-sample size S and the number of
//!   local experts M*K, next to the CPU time of the local fits it aggregates (real EM fits on shards of
//!   N / max(M) rows).

use clap::Args;

use crate::data::memory;
use crate::data::synthetic::{Simulator, TruthSpec};
use crate::numeric::cputime::thread_cpu_seconds;
use crate::numeric::em::{self, EmSettings};
use crate::numeric::range::{MAX_ITERATIONS, MAX_THREADS, within};
use crate::numeric::rng;

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
    /// Time the reduction instead of EM (median of 5 per M and S) and one transport plan (uses the first --n and --shape).
    #[arg(long)]
    reduction: bool,
    /// Time the cluster simulator instead of EM (uses the first --n and --shape).
    #[arg(long)]
    cluster: bool,
    /// Worker threads for --cluster (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Measure how often a default fit gets stuck: fits on seeded shards (K = 3, d = 2,
    /// 6,250 rows; K = 5, d = 20, 7,800 rows) and on larger data sets whose starts are warmed up
    /// on a 20,000-row subset (K = 3, d = 2, 100,000 rows; K = 5, d = 20, 50,000 rows) against the
    /// best of 20 restarts on the same rows.
    #[arg(long)]
    stuck: bool,
    /// With --stuck: data sets per setting, as K3,K5,K3-large,K5-large (default 200,50,20,10).
    #[arg(long, value_delimiter = ',', default_values_t = [200usize, 50, 20, 10])]
    trials: Vec<usize>,
    /// With --reduction or --cluster: comma-separated machine counts M.
    #[arg(long, value_delimiter = ',', default_values_t = [16usize, 32, 64, 128])]
    machines: Vec<usize>,
    /// With --reduction: comma-separated supporting-sample sizes S.
    #[arg(long, value_delimiter = ',', default_values_t = [500usize, 1000, 2000, 4000])]
    support: Vec<usize>,
}

/// Most shards per setting of `--stuck`.
const MAX_TRIALS: usize = 100_000;

/// Every `--n` with every `--shape` is a problem this machine can hold (`data::memory`), and the
/// counts are in range.
fn check_sizes(a: &BenchArgs) -> Result<(), String> {
    within(a.iters, 1, MAX_ITERATIONS - 1).map_err(|e| format!("--iters: {e}"))?;
    if let Some(t) = a.threads {
        within(t, 1, MAX_THREADS).map_err(|e| format!("--threads: {e}"))?;
    }
    if let Some(t) = a.trials.iter().find(|&&t| !(1..=MAX_TRIALS).contains(&t)) {
        return Err(format!("--trials: expected whole numbers in [1, {MAX_TRIALS}], got {t}"));
    }
    if a.n.contains(&0) {
        return Err("--n: expected whole numbers >= 1, got 0".into());
    }
    let n0 = a.n.first().copied().unwrap_or(0);
    if let Some(s) = a.support.iter().find(|&&s| a.reduction && s > n0) {
        return Err(format!(
            "--support {s}: at most the first --n ({n0}): the supporting sample is drawn from the rows"
        ));
    }
    for shape in &a.shape {
        let (k, d) = parse_shape(shape)?;
        for &n in &a.n {
            memory::check_fits(memory::fit_bytes(n, k, d), &format!("--n {n} with --shape {shape}"))?;
        }
    }
    Ok(())
}

fn parse_shape(s: &str) -> Result<(usize, usize), String> {
    let (k, d) = s.split_once('x').ok_or_else(|| format!("--shape: expected KxD such as 5x20, got `{s}`"))?;
    let k = k.parse().map_err(|_| format!("--shape: K in `{s}` is not a whole number"))?;
    let d = d.parse().map_err(|_| format!("--shape: d in `{s}` is not a whole number"))?;
    Ok((k, d))
}

/// Runs the benchmark grid and prints one line per case.
pub fn run(a: &BenchArgs) -> Result<(), String> {
    check_sizes(a)?;
    if a.reduction {
        return run_reduction(a);
    }
    if a.cluster {
        return run_cluster(a);
    }
    if a.stuck {
        return run_stuck(a);
    }
    say!("{:>9} {:>3} {:>3} {:>6} {:>10} {:>10} {:>14}", "N", "K", "d", "iters", "setup_s", "s/iter", "sample-it/s");
    for shape in &a.shape {
        let (k, d) = parse_shape(shape)?;
        let sim = Simulator::random(&TruthSpec { k, d, separation: 1.0, seed: 1 }).map_err(|e| e.to_string())?;
        for &n in &a.n {
            let data = sim.sample(n, &mut rng::stream(1, &[n as u64]));
            let names: Vec<String> = sim.truth.features.clone();
            let one = |iters: usize| {
                // Plain EM steps on every row (no warm-up, no acceleration), so that a second is
                // one iteration's work.
                let settings = EmSettings {
                    k,
                    restarts: 1,
                    warmup_iter: 0,
                    max_iter: iters,
                    tol: 0.0,
                    accelerate: false,
                    ..EmSettings::default()
                };
                let t0 = thread_cpu_seconds();
                em::fit(data.x.view(), data.y.view(), &names, "y", &settings).map_err(|e| e.to_string())?;
                Ok::<f64, String>(thread_cpu_seconds() - t0)
            };
            // Setup (standardise, k-means start, first E-step) = a 1-iteration fit minus one iteration.
            let t1 = one(1)?;
            let tn = one(a.iters + 1)?;
            let per_iter = (tn - t1) / a.iters as f64;
            let setup = t1 - per_iter;
            say!("{n:>9} {k:>3} {d:>3} {:>6} {setup:>10.3} {per_iter:>10.4} {:>14.3e}", a.iters, n as f64 / per_iter);
        }
    }
    Ok(())
}

/// Fits max(M) shards of N / max(M) rows, then times the reduction of the first M local models for
/// every (M, S) (median of [`REDUCTION_REPEATS`]), with the supporting sample drawn from the
/// covariate distribution, and one transport plan on its own.
fn run_reduction(a: &BenchArgs) -> Result<(), String> {
    let (k, d) = parse_shape(a.shape.first().ok_or("--shape: give one KxD")?)?;
    let n = *a.n.first().ok_or("--n: give one sample size")?;
    let m_max = *a.machines.iter().max().ok_or("--machines: give at least one count")?;
    if a.machines.contains(&0) || a.support.contains(&0) || n / m_max == 0 {
        return Err("--machines and --support must be >= 1, and N / max(M) at least 1 row".into());
    }
    let sim = Simulator::random(&TruthSpec { k, d, separation: 1.0, seed: 1 }).map_err(|e| e.to_string())?;
    let shard = n / m_max;
    let names = sim.truth.features.clone();
    let settings = EmSettings { k, ..EmSettings::default() };
    tell!("fitting {m_max} local models on {shard} rows each (K = {k}, d = {d}) ...");
    let mut locals = Vec::with_capacity(m_max);
    let mut fit_cpu = Vec::with_capacity(m_max);
    for m in 0..m_max {
        let data = sim.sample(shard, &mut rng::stream(1, &[7, m as u64]));
        let r = crate::distributed::local_fit(m, data.x.view(), data.y.view(), &names, "y", &settings, 1, 1)
            .map_err(|e| e.to_string())?;
        fit_cpu.push(r.summary.cpu_seconds);
        locals.push(r.model);
    }
    let mut sorted = fit_cpu.clone();
    sorted.sort_by(f64::total_cmp);
    let median_fit = sorted[m_max / 2];
    say!("local EM fit on {shard} rows: median CPU {median_fit:.4} s, max {:.4} s", sorted[m_max - 1]);
    say!(
        "{:>5} {:>6} {:>6} {:>11} {:>9} {:>15} {:>12} {:>14} {:>8}",
        "M",
        "M*K",
        "S",
        "reduce_s",
        "MM_iters",
        "start",
        "/ median fit",
        "/ slowest fit",
        "flagged"
    );
    let rs = crate::reduce::ReductionSettings { k, ..Default::default() };
    for &m in &a.machines {
        let refs: Vec<&crate::numeric::model::Moe> = locals[..m].iter().collect();
        let sizes = vec![shard; m];
        for &s in &a.support {
            let support = sim.covariates.sample(s, &mut rng::stream(2, &[s as u64]));
            let mut times = Vec::with_capacity(REDUCTION_REPEATS);
            let mut reduction = None;
            for _ in 0..REDUCTION_REPEATS {
                let t0 = thread_cpu_seconds();
                let r = crate::reduce::reduce(&refs, &sizes, support.view(), &rs).map_err(|e| e.to_string())?;
                times.push(thread_cpu_seconds() - t0);
                reduction = Some(r);
            }
            let r = reduction.expect("at least one repeat");
            times.sort_by(f64::total_cmp);
            let t = times[REDUCTION_REPEATS / 2];
            let iters = r.mm_iterations();
            // The slowest of the M machines reduced: the simulator's local_compute_max_s.
            let slowest = fit_cpu[..m].iter().copied().fold(0.0, f64::max);
            say!(
                "{m:>5} {:>6} {s:>6} {t:>11.4} {iters:>9} {:>15} {:>12.3} {:>14.3} {:>8}",
                m * k,
                format!("{:?}", r.init),
                t / median_fit,
                t / slowest,
                r.flagged.len()
            );
            say!("      one plan: {}", time_plan(&r.large, &r.model));
        }
    }
    Ok(())
}

/// Reductions timed per (M, S); the median is reported.
const REDUCTION_REPEATS: usize = 5;

/// CPU time of one transport plan (the MM step the reduction repeats) on the large model, median of
/// 21, in milliseconds and in nanoseconds per cost `c_lk(x_s)`.
fn time_plan(large: &crate::numeric::transport::LargeModel, reduced: &crate::numeric::model::Moe) -> String {
    let mut times: Vec<f64> = (0..21)
        .map(|_| {
            let t0 = thread_cpu_seconds();
            std::hint::black_box(large.plan(&reduced.experts, reduced.variances.view()));
            thread_cpu_seconds() - t0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let costs = (large.n_support() * large.n_experts() * reduced.k()) as f64;
    format!("{:.2} ms, {:.3} ns per cost", 1e3 * times[10], 1e9 * times[10] / costs)
}

/// A number from /proc/self/status (e.g. `VmHWM` in kB, `Threads`), where the kernel provides it.
fn proc_status(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs the simulator (measured clock, ideal network) for every M on N synthetic rows.
fn run_cluster(a: &BenchArgs) -> Result<(), String> {
    use crate::cluster::{self, ClusterConfig};
    let (k, d) = parse_shape(a.shape.first().ok_or("--shape: give one KxD")?)?;
    let n = *a.n.first().ok_or("--n: give one sample size")?;
    let sim = Simulator::random(&TruthSpec { k, d, separation: 1.0, seed: 1 }).map_err(|e| e.to_string())?;
    let data = sim.sample(n, &mut rng::stream(1, &[3]));
    let data_bytes = (data.x.len() + data.y.len()) * 8 + data.z.len() * 8;
    let (x, y) = (data.x, data.y);
    let mut config = ClusterConfig::new(
        EmSettings { k, ..EmSettings::default() },
        crate::reduce::ReductionSettings { k, ..Default::default() },
        2000,
        1,
    );
    if let Some(t) = a.threads {
        config.threads = t;
    }
    config.baselines.clear(); // the server's time is then the reduction's alone
    let data = crate::data::sharding::ShardedData::new(x, y, None, Vec::new());
    say!("N = {n}, K = {k}, d = {d}, {} worker threads, data set {:.1} MB", config.threads, data_bytes as f64 / 1e6);
    say!("overhead = wall - fit_cpu/threads - server; of which packing = busiest worker - fit_cpu/threads,");
    say!("messaging = wall - busiest worker - server (the actors' own cost)");
    say!(
        "{:>6} {:>9} {:>11} {:>12} {:>10} {:>9} {:>9} {:>10} {:>8} {:>10}",
        "M",
        "wall_s",
        "fit_cpu_s",
        "fit/threads",
        "server_s",
        "overhead",
        "packing",
        "messaging",
        "threads",
        "peak_MB"
    );
    for &m in &a.machines {
        let blocks = crate::data::sharding::equal_blocks(n, m);
        crate::distributed::check_shard_sizes(&blocks.iter().map(|r| r.len()).collect::<Vec<_>>(), k, d)
            .map_err(|e| e.to_string())?;
        let shared = std::sync::Arc::new(data.with_shards(blocks));
        let out = cluster::run(shared, sim.truth.features.clone(), "y".into(), &config, None, None)
            .map_err(|e| e.to_string())?;
        let ideal = out.fit_cpu_seconds / config.threads as f64;
        let pct = |v: f64| 100.0 * v / out.wall_seconds;
        let overhead = out.wall_seconds - ideal - out.server_cpu_seconds;
        let packing = out.busiest_worker_seconds - ideal;
        let messaging = out.wall_seconds - out.busiest_worker_seconds - out.server_cpu_seconds;
        say!(
            "{m:>6} {:>9.3} {:>11.3} {:>12.3} {:>10.3} {:>8.2}% {:>8.2}% {:>9.2}% {:>8} {:>10.1}",
            out.wall_seconds,
            out.fit_cpu_seconds,
            ideal,
            out.server_cpu_seconds,
            pct(overhead),
            pct(packing),
            pct(messaging),
            proc_status("Threads:").unwrap_or(0),
            proc_status("VmHWM:").unwrap_or(0) as f64 / 1e3
        );
    }
    Ok(())
}

/// Share of default local fits whose log-likelihood per row is more than 0.02 below the best of 20
/// restarts on the same shard (a fit "stuck" in a poor optimum).
fn run_stuck(a: &BenchArgs) -> Result<(), String> {
    let settings = [(3usize, 2usize, 6250usize), (5, 20, 7800), (3, 2, 100_000), (5, 20, 50_000)];
    say!(
        "{:>3} {:>3} {:>6} {:>7} {:>7} {:>9} {:>12} {:>12}",
        "K",
        "d",
        "rows",
        "shards",
        "stuck",
        "stuck_%",
        "worst_gap",
        "median_cpu_s"
    );
    for (&(k, d, rows), &trials) in settings.iter().zip(a.trials.iter().chain(std::iter::repeat(&0))) {
        if trials == 0 {
            continue;
        }
        let mut stuck = 0;
        let mut worst: f64 = 0.0;
        let mut cpu = Vec::with_capacity(trials);
        for t in 0..trials {
            let sim = Simulator::random(&TruthSpec { k, d, separation: 1.0, seed: 1000 + t as u64 })
                .map_err(|e| e.to_string())?;
            let data = sim.sample(rows, &mut rng::stream(2000 + t as u64, &[]));
            let names = sim.truth.features.clone();
            let fit = |s: EmSettings| em::fit(data.x.view(), data.y.view(), &names, "y", &s).map_err(|e| e.to_string());
            let default = fit(EmSettings { k, seed: t as u64, ..EmSettings::default() })?;
            let best = fit(EmSettings { k, seed: t as u64, restarts: 20, ..EmSettings::default() })?;
            let per_row = |f: &em::FittedMoe| f.summary.loglik / rows as f64;
            let gap = per_row(&best) - per_row(&default);
            worst = worst.max(gap);
            if gap > 0.02 {
                stuck += 1;
            }
            cpu.push(default.summary.cpu_seconds);
        }
        cpu.sort_by(f64::total_cmp);
        say!(
            "{k:>3} {d:>3} {rows:>6} {trials:>7} {stuck:>7} {:>8.1}% {worst:>12.4} {:>12.4}",
            100.0 * stuck as f64 / trials as f64,
            cpu[trials / 2]
        );
    }
    Ok(())
}
