//! The library's front door, in the style of linfa: parameters (`MoeParams`, unchecked, with
//! builder methods) -> checked parameters (`ValidMoeParams`, from `check`) -> `fit` on a `Dataset`
//! -> a fitted model (`FittedMoe`: the model, a non-optional `FitSummary`, the EM traces) that
//! predicts. Errors are typed (`Error`); nothing here prints, reads files or spawns threads.

use crate::data::{DataError, Dataset};
use crate::numeric::em::{self, EmError, EmSettings, FittedMoe};
use crate::numeric::model::ModelError;
use crate::reduce::ReductionError;

/// Any error of the library API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data file or array could not be used.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A setting is out of range, or the data cannot carry the model.
    #[error(transparent)]
    Fit(#[from] EmError),
    /// A model file could not be read or written.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The reduction of local models failed.
    #[error(transparent)]
    Reduction(#[from] ReductionError),
}

/// Settings of an EM fit of a K-component mixture of experts, not yet checked. The defaults are those
/// of `dmoe fit`: 6 starts of 20 warm-up iterations, at most 1000 iterations, relative tolerance
/// 1e-8, variance floor 1e-6 var(y), seed 1.
///
/// ```
/// use dmoe::MoeParams;
///
/// let params = MoeParams::new(3).restarts(4).max_iterations(200).tolerance(1e-6).seed(7);
/// assert!(params.clone().check().is_ok());
/// // A setting out of range is an error that names it, before any data is read.
/// let err = params.restarts(0).check().unwrap_err();
/// assert_eq!(err.to_string(), "setting `restarts`: expected a whole number in [1, 1000], got 0");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MoeParams(EmSettings);

/// Checked settings: every value is in range, so `fit` fails only on the data.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidMoeParams(EmSettings);

impl MoeParams {
    /// Default settings for `k` components.
    pub fn new(k: usize) -> MoeParams {
        MoeParams(EmSettings { k, ..EmSettings::default() })
    }

    /// Number of EM starts (at least 1); each runs the warm-up, then the best continues.
    pub fn restarts(mut self, restarts: usize) -> Self {
        self.0.restarts = restarts;
        self
    }

    /// Warm-up iterations of every start.
    pub fn warmup_iterations(mut self, iterations: usize) -> Self {
        self.0.warmup_iter = iterations;
        self
    }

    /// With more rows than this, the starts' warm-ups and the gate's Newton curvature use a random
    /// subset of this many rows (0: every row for both, otherwise at least 1,000; default 20,000).
    pub fn subset_rows(mut self, rows: usize) -> Self {
        self.0.subset_rows = rows;
        self
    }

    /// Whether the retained run is accelerated by SQUAREM (default `true`; `false`: plain EM steps).
    pub fn accelerate(mut self, on: bool) -> Self {
        self.0.accelerate = on;
        self
    }

    /// Most EM iterations of the retained run (at least 1), warm-up included.
    pub fn max_iterations(mut self, iterations: usize) -> Self {
        self.0.max_iter = iterations;
        self
    }

    /// Stop when the log-likelihood changes by at most `tol` relative (a finite number >= 0).
    pub fn tolerance(mut self, tol: f64) -> Self {
        self.0.tol = tol;
        self
    }

    /// Smallest expert variance, as a fraction of var(y), in (0, 1).
    pub fn variance_floor(mut self, fraction: f64) -> Self {
        self.0.variance_floor = fraction;
        self
    }

    /// Seed of the starts: the same seed gives the same fit.
    pub fn seed(mut self, seed: u64) -> Self {
        self.0.seed = seed;
        self
    }

    /// Checks every setting; the error names the first one out of range.
    pub fn check(self) -> Result<ValidMoeParams, Error> {
        self.0.validate()?;
        Ok(ValidMoeParams(self.0))
    }
}

impl ValidMoeParams {
    /// The settings, as the numeric core takes them.
    pub fn settings(&self) -> &EmSettings {
        &self.0
    }

    /// Fits the model to a data set by EM.
    pub fn fit(&self, data: &Dataset) -> Result<FittedMoe, Error> {
        Ok(em::fit(data.x.view(), data.y.view(), &data.features, &data.target, &self.0)?)
    }
}
