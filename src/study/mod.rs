//! Studies: a scenario file (`source`, read key by key by `section`, with its `problems`) resolved
//! into a `Plan` of cells (`resolve`), and the runner that makes the data, runs every cell's simulated
//! cluster and scores the estimators (`run`).

pub mod calibration;
mod data_checks;
mod plan;
mod problems;
mod resolve;
mod run;
mod section;
mod source;
pub mod warnings;

pub use plan::{Cell, DataPlan, Estimator, Network, Plan, Setting, Swept};
pub use problems::{MAX_REPORTED, Problem, ScenarioError};
pub use resolve::{load, parse_recorded};
pub use run::{CellRun, Progress, ResultRow, Silent, StudyError, StudyOptions, StudyOutput, run};
