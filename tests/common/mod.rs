//! Helpers shared by the integration tests: every EM run of the suite goes through `fit_checked`,
//! which asserts that each run's log-likelihood trace never decreases.
#![allow(dead_code)] // each test binary uses its own subset

use dmoe::em::{self, EmFit, EmSettings};
use dmoe::rng;
use dmoe::synthetic::{SimData, Simulator, TruthSpec};
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
pub fn fit_checked(x: ArrayView2<f64>, y: ArrayView1<f64>, names: &[String], s: &EmSettings) -> EmFit {
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
