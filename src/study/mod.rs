//! Studies: a scenario file (`scenario`) checked into a plan of cells, and the runner that makes the
//! data, runs every cell's simulated cluster and scores the estimators (`run`).

mod run;
pub mod scenario;

pub use run::{CellRun, Progress, ResultRow, Silent, StudyError, StudyOptions, StudyOutput, run};
