//! Helpers shared by the integration tests: every EM run of the suite goes through `fit_checked`,
//! which asserts that each run's log-likelihood trace never decreases.
#![allow(dead_code)] // each test binary uses its own subset

use dmoe::data::synthetic::{SimData, Simulator, TruthSpec};
use dmoe::numeric::em::{self, EmSettings, FittedMoe};
use dmoe::numeric::rng;
use ndarray::{ArrayView1, ArrayView2};

/// Relative slack allowed for round-off when checking that EM's log-likelihood never decreases.
pub const MONOTONE_SLACK: f64 = 1e-9;

/// Panics if the trace decreases anywhere by more than `MONOTONE_SLACK` relative.
pub fn assert_monotone(trace: &[f64], what: &str) {
    for (t, w) in trace.windows(2).enumerate() {
        assert!(
            w[1] >= w[0] - MONOTONE_SLACK * w[0].abs(),
            "{what}: log-likelihood decreased at iteration {}: {} -> {}",
            t + 1,
            w[0],
            w[1]
        );
    }
}

/// `em::fit`, then the monotonicity check on the retained run and on every start's warm-up.
pub fn fit_checked(x: ArrayView2<f64>, y: ArrayView1<f64>, names: &[String], s: &EmSettings) -> FittedMoe {
    let fit = em::fit(x, y, names, "y", s).expect("fit succeeds");
    assert_monotone(&fit.trace, "retained run");
    for (i, t) in fit.start_traces.iter().enumerate() {
        assert_monotone(t, &format!("start {i}"));
    }
    fit
}

/// A seeded synthetic problem: the simulator and n rows drawn from it.
pub fn problem(k: usize, d: usize, n: usize, seed: u64) -> (Simulator, SimData) {
    let sim = Simulator::random(&TruthSpec { k, d, separation: 1.0, seed }).unwrap();
    let data = sim.sample(n, &mut rng::stream(seed, &[99]));
    (sim, data)
}

/// Feature names x1..xd.
pub fn names(d: usize) -> Vec<String> {
    (1..=d).map(|j| format!("x{j}")).collect()
}

/// Panics if an MM objective trace increases anywhere. Slack for round-off: 1e-12 relative, with an
/// absolute floor of 1e-12 (J is a sum of KL costs, so it can sit at round-off level near zero).
pub fn assert_non_increasing(trace: &[f64], what: &str) {
    for (t, w) in trace.windows(2).enumerate() {
        assert!(
            w[1] <= w[0] + 1e-12 * w[0].abs().max(1.0),
            "{what}: MM objective increased at iteration {}: {} -> {}",
            t + 1,
            w[0],
            w[1]
        );
    }
}

/// `reduction::reduce` with the non-increasing check on every MM run it made.
pub fn reduce_checked(
    locals: &[&dmoe::numeric::model::Moe],
    sizes: &[usize],
    support: ArrayView2<f64>,
    settings: &dmoe::reduce::ReductionSettings,
) -> dmoe::reduce::Reduction {
    let r = dmoe::reduce::reduce(locals, sizes, support, settings).expect("reduction succeeds");
    for (init, trace) in &r.runs {
        assert_non_increasing(trace, &format!("{init:?} start"));
    }
    r
}

/// Fits EM on M contiguous shards of `data` (rows are iid, so contiguous = random) and draws
/// `support` covariate rows in total, proportionally from the shards. Returns the reports.
pub fn local_reports(
    data: &SimData,
    m: usize,
    k: usize,
    support: usize,
    seed: u64,
) -> Vec<dmoe::distributed::LocalReport> {
    let n = data.y.len();
    let settings = EmSettings { k, ..EmSettings::default() };
    dmoe::data::sharding::equal_blocks(n, m)
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let x = data.x.slice(ndarray::s![r.clone(), ..]);
            let y = data.y.slice(ndarray::s![r.clone()]);
            let count = dmoe::distributed::support_count(support, r.len(), n);
            let rep =
                dmoe::distributed::local_fit(i, x, y, &names(data.x.ncols()), "y", &settings, count, seed).unwrap();
            assert_monotone(&rep.trace, &format!("machine {i}"));
            rep
        })
        .collect()
}

/// The dmoe binary with `args`, ignoring any model-clock calibration saved on this machine
/// (`DMOE_CALIBRATION` empty), so that model-clock results are the same on every machine.
pub fn dmoe(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dmoe"))
        .args(args)
        .env("DMOE_CALIBRATION", "")
        .output()
        .expect("the binary runs")
}

/// The names in a folder, hidden ones included, sorted: what a command left behind.
pub fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// A fresh folder for one test under cargo's per-target temporary directory.
pub fn workdir(name: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every file under `dir` (hidden ones included) with its bytes, by path relative to `dir`.
pub fn snapshot(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.insert(p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    files
}
