//! The server's side of a one-shot distributed fit: the MM reduction of M local models to one
//! K-component model (with its outlier screening), and the baselines the paper compares it with.
//! The formulas are in `docs/reduction.md`.

pub mod baselines;
mod mm;

pub use mm::{
    Init, MmRun, OUTLIER_MIN_RATIO, OutlierPolicy, Reduction, ReductionError, ReductionSettings, START_ITERATIONS,
    START_POINTS, fit_gate, flag_outliers, mm, mm_observed, reduce, start_experts,
};
