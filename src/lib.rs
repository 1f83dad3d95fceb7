//! dmoe: distributed learning of Mixtures of Experts (Chamroukhi & Pham, arXiv 2312.09877).
//!
//! The crate follows the pipeline of a distributed fit, one folder per stage:
//! - `numeric`: the model, EM, and the mathematics shared by the reduction and the metrics;
//! - `data`: CSV files, synthetic data, train/test split and machine shards;
//! - `reduce`: the server's MM reduction, its outlier screening, and the baselines;
//! - `distributed`: the protocol every front end shares (a machine's local fit, the server's
//!   aggregation, scoring), and the MPI backend;
//! - `cluster`: the actor simulator with its network, machines and clocks;
//! - `study`: scenario files and the runner of their sweeps;
//! - `report`: results.csv, run.json, plots and traces;
//! - `cli`: the command line.
//!
//! Beside them, `destination` writes every output file or folder whole (staged, locked, renamed).
//!
//! Dependencies point one way, down this list. See `docs/README.md` for the map.
//!
//! Without default features (`default-features = false`) the crate is `numeric`, `data`, `reduce`,
//! `distributed` and `destination`; the features `simulator` (cluster, study), `plots` (report) and `cli` add the
//! layers above.
//!
//! # Fitting a model
//!
//! ```
//! use dmoe::{Dataset, MoeParams};
//!
//! // 2,000 rows from a known 2-component MoE on one covariate.
//! let sim = dmoe::data::synthetic::Simulator::random(&dmoe::data::synthetic::TruthSpec {
//!     k: 2, d: 1, separation: 1.0, seed: 7,
//! })?;
//! let rows = sim.sample(2_000, &mut dmoe::numeric::rng::stream(7, &[]));
//! let data = Dataset::new(vec!["x1".into()], "y", rows.x, rows.y)?;
//!
//! let fitted = MoeParams::new(2).seed(3).check()?.fit(&data)?;
//! assert!(fitted.summary.converged);
//! let yhat = fitted.predict(data.x.view());
//! assert_eq!(yhat.len(), 2_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod api;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "simulator")]
pub mod cluster;
pub mod data;
pub mod destination;
pub mod distributed;
pub mod numeric;
pub mod reduce;
#[cfg(feature = "plots")]
pub mod report;
#[cfg(test)]
mod scratch;
#[cfg(feature = "simulator")]
pub mod study;

pub use api::{Error, MoeParams, ValidMoeParams};
pub use data::{Dataset, load_dataset};
pub use numeric::em::FittedMoe;
pub use numeric::model::{FitSummary, Moe};
pub use reduce::{Reduction, ReductionSettings, reduce};
