//! The two clocks of the simulator. `measured`: a machine's compute time is the thread CPU time its
//! own fit took (honest, but it varies from run to run). `model`: compute time is a cost formula in
//! the work done (rows x passes of EM, support points x experts x MM plans), so a run is
//! reproducible bit for bit. The formula's constants come from the scenario; `calibrate` measures
//! them on this machine.
//!
//! Model costs, in seconds:
//! - EM with K components on d features, `R` rows x passes summed over every start
//!   (`FitSummary::row_iterations`): `R * K * (em_per_component + em_per_coefficient_pair * (d+1)^2)`.
//! - Reduction to K experts with MM work `W` (supporting points x large experts x plans summed over
//!   every MM run, `Reduction::work`) and pool size `P` (supporting points x large experts x (d+1),
//!   `Reduction::pooled`): `W * K * mm_per_unit + P * pool_per_unit`.

use serde::{Deserialize, Serialize};

use crate::data::synthetic::{Simulator, TruthSpec};
use crate::numeric::cputime::thread_cpu_seconds;
use crate::numeric::em::{self, EmSettings};
use crate::numeric::model::{FitSummary, Moe};
use crate::numeric::range::{Range, field};
use crate::numeric::rng;
use crate::reduce::{self, Reduction, ReductionSettings};

/// Constants of the model clock (the defaults and where they come from: docs/simulator.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostModel {
    /// Seconds per row x EM pass x component (the E-step's per-component work).
    pub em_per_component: f64,
    /// Seconds per row x EM pass x component x (d+1)^2 (the weighted Gram matrices).
    pub em_per_coefficient_pair: f64,
    /// Seconds per support point x large expert x reduced expert x MM plan.
    pub mm_per_unit: f64,
    /// Seconds per support point x large expert x (d+1), once per reduction: pooling the local
    /// models, screening them and fitting the reduced gate.
    pub pool_per_unit: f64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel::from_values(DEFAULT_CONSTANTS)
    }
}

/// The default constants, in the order of [`CostModel::NAMES`]: `dmoe calibrate` on the 2-core x86-64
/// development machine (median of three runs, November 2026; the reduction's two after the
/// vectorised plan of issue #12, then scaled by the ratio of two calibrations of the code before
/// and after the faster pooling and plans of 2026-11-30, run side by side on another box: 0.79 for
/// `mm_per_unit`, 0.43 for `pool_per_unit`; `em_per_component` scaled the same way, by 0.62, after
/// EM's vectorised softmaxes of the same day).
const DEFAULT_CONSTANTS: Constants = [4.7e-8, 3.4e-10, 2.7e-9, 3.8e-10];

/// The constants of a [`CostModel`] in the order of [`CostModel::NAMES`].
pub type Constants = [f64; 4];

impl CostModel {
    /// The constants' names (their `[cost_model]` keys), in the order of [`CostModel::values`].
    pub const NAMES: [&'static str; 4] =
        ["em_per_component", "em_per_coefficient_pair", "mm_per_unit", "pool_per_unit"];

    /// The constants, in the order of [`CostModel::NAMES`].
    pub fn values(&self) -> Constants {
        [self.em_per_component, self.em_per_coefficient_pair, self.mm_per_unit, self.pool_per_unit]
    }

    /// The constants given in the order of [`CostModel::NAMES`].
    pub fn from_values(
        [em_per_component, em_per_coefficient_pair, mm_per_unit, pool_per_unit]: Constants,
    ) -> CostModel {
        CostModel { em_per_component, em_per_coefficient_pair, mm_per_unit, pool_per_unit }
    }

    /// `name = value` for every constant, comma-separated.
    pub fn describe(&self) -> String {
        let pairs: Vec<String> = Self::NAMES.iter().zip(self.values()).map(|(n, v)| format!("{n} = {v:e}")).collect();
        pairs.join(", ")
    }

    /// Checks that every constant is a positive number.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in Self::NAMES.iter().zip(self.values()) {
            field(name, Range::UNIT_COST, v)?;
        }
        Ok(())
    }

    /// Modelled seconds of an EM fit.
    pub fn em_seconds(&self, row_iterations: u64, k: usize, d: usize) -> f64 {
        let p2 = ((d + 1) * (d + 1)) as f64;
        row_iterations as f64 * k as f64 * (self.em_per_component + self.em_per_coefficient_pair * p2)
    }

    /// Modelled seconds of a reduction: `W K mm_per_unit + P pool_per_unit`.
    pub fn reduction_seconds(&self, work: u64, pooled: u64, k: usize) -> f64 {
        work as f64 * k as f64 * self.mm_per_unit + pooled as f64 * self.pool_per_unit
    }
}

/// Which clock a run uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Clock {
    /// Thread CPU time of the real work.
    Measured,
    /// The cost formula with these constants.
    Model(CostModel),
}

impl Clock {
    /// The clock's name in records: `measured` or `model`.
    pub fn name(&self) -> &'static str {
        match self {
            Clock::Measured => "measured",
            Clock::Model(_) => "model",
        }
    }

    /// Seconds of an EM fit on this clock. Measured: the fit's thread CPU seconds. Model:
    /// `R * K * (em_per_component + em_per_coefficient_pair * (d+1)^2)`, with `R` the fit's rows times
    /// iterations summed over all starts (`row_iterations`).
    pub fn fit_seconds(&self, summary: &FitSummary, k: usize, d: usize) -> f64 {
        match self {
            Clock::Measured => summary.cpu_seconds,
            Clock::Model(c) => c.em_seconds(summary.row_iterations, k, d),
        }
    }

    /// Seconds of a piece of work on this clock. Measured: `measured_cpu`, its thread CPU seconds.
    /// Model: `modelled` of the constants.
    pub fn charge(&self, measured_cpu: f64, modelled: impl FnOnce(&CostModel) -> f64) -> f64 {
        match self {
            Clock::Measured => measured_cpu,
            Clock::Model(c) => modelled(c),
        }
    }

    /// Seconds of a reduction to K experts on this clock. Measured: `measured_cpu`, its thread CPU
    /// seconds. Model: `W * K * mm_per_unit + P * pool_per_unit`, with `W` the reduction's MM work
    /// (supporting points x large experts x MM plans, summed over every MM run: `Reduction::work`)
    /// and `P` the pool's size (supporting points x large experts x (d+1): `Reduction::pooled`).
    pub fn reduction_seconds(&self, measured_cpu: f64, reduction: &Reduction, k: usize) -> f64 {
        match self {
            Clock::Measured => measured_cpu,
            Clock::Model(c) => c.reduction_seconds(reduction.work, reduction.pooled, k),
        }
    }
}

/// Measures the model clock's constants on this machine: EM on two model shapes (to separate the
/// per-component and per-coefficient costs) and two reductions (to separate the MM and the
/// once-per-reduction costs), each timed in thread CPU seconds `runs` times; the median of each
/// timing enters the formulas (single timings are about 10 % apart). An error when the timings give
/// a constant out of range.
pub fn calibrate(runs: usize) -> Result<CostModel, String> {
    let runs = runs.max(1);
    let (small, large) =
        (median((0..runs).map(|_| em_rate(3, 2)).collect()), median((0..runs).map(|_| em_rate(5, 20)).collect()));
    // small = a + 9 b, large = a + 441 b
    let b = ((large - small) / (441.0 - 9.0)).max(1e-15);
    let a = (small - 9.0 * b).max(1e-12);

    // Two reductions whose MM work and pool size differ in proportion (W / P = plans / (d+1)):
    // t = W K mm + P pool for both, solved for the two constants.
    let (small, large) = (reduction_timing(5, 5, 32, 1000, runs), reduction_timing(5, 20, 128, 2000, runs));
    let det = small.0 * large.1 - small.1 * large.0;
    if det.abs() < 0.05 * (small.0 * large.1).abs().max((small.1 * large.0).abs()) {
        return Err(format!(
            "the two calibration reductions did work in nearly the same proportions (W K, P) = ({}, {}) and ({}, {}): \
             their times cannot separate the two reduction constants",
            small.0, small.1, large.0, large.1
        ));
    }
    let mm = ((small.2 * large.1 - large.2 * small.1) / det).max(1e-15);
    let pool = ((small.0 * large.2 - large.0 * small.2) / det).max(1e-15);
    let c = CostModel { em_per_component: a, em_per_coefficient_pair: b, mm_per_unit: mm, pool_per_unit: pool };
    c.validate().map_err(|e| format!("the measured constants are out of range: {e}"))?;
    Ok(c)
}

/// The median of some timings.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds of plain EM per row x pass x component for a K = `k`, d = `d` model: one start and exactly
/// 30 iterations (tolerance 0) on 20,000 synthetic rows, with the exact Hessian as on a shard.
fn em_rate(k: usize, d: usize) -> f64 {
    let sim = Simulator::random(&TruthSpec { k, d, separation: 1.0, seed: 1 }).expect("valid shape");
    let data = sim.sample(20_000, &mut rng::stream(1, &[]));
    let s = EmSettings {
        k,
        restarts: 1,
        warmup_iter: 0,
        max_iter: 30,
        tol: 0.0,
        accelerate: false,
        ..EmSettings::default()
    };
    let t0 = thread_cpu_seconds();
    let fit = em::fit(data.x.view(), data.y.view(), &sim.truth.features, "y", &s).expect("synthetic data fits");
    (thread_cpu_seconds() - t0) / (fit.summary.row_iterations as f64 * k as f64)
}

/// Reduces `m` relabelled copies of a true model (K = `k`, d = `d`) on `s` supporting points, `runs`
/// times: `(W K, P, median thread CPU seconds)`. The work is the same every time (the reduction is
/// deterministic).
fn reduction_timing(k: usize, d: usize, m: usize, s: usize, runs: usize) -> (f64, f64, f64) {
    let sim = Simulator::random(&TruthSpec { k, d, separation: 1.0, seed: 2 }).expect("valid shape");
    let locals: Vec<Moe> = (0..m).map(|i| sim.truth.permuted(&rotation(k, i))).collect();
    let refs: Vec<&Moe> = locals.iter().collect();
    let support = sim.covariates.sample(s, &mut rng::stream(3, &[]));
    let settings = ReductionSettings { k, ..Default::default() };
    let mut work = (0.0, 0.0);
    let times = (0..runs)
        .map(|_| {
            let t0 = thread_cpu_seconds();
            let r = reduce::reduce(&refs, &vec![1; m], support.view(), &settings).expect("valid reduction");
            let secs = thread_cpu_seconds() - t0;
            work = (r.work as f64 * k as f64, r.pooled as f64);
            secs
        })
        .collect();
    (work.0, work.1, median(times))
}

fn rotation(k: usize, by: usize) -> Vec<usize> {
    (0..k).map(|j| (j + by) % k).collect()
}
