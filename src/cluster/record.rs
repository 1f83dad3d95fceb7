//! What one simulated run leaves behind: every machine's times and bytes, the virtual timeline, the
//! estimators' models. Everything here is a function of the inputs and the seed (and, with the
//! measured clock, of the measured CPU times), never of thread scheduling.

use serde::{Deserialize, Serialize};

use super::schedule::Timing;
use crate::distributed::LocalReport;
use crate::numeric::model::Moe;
use crate::reduce::Init;

/// Kind of a timeline event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A machine starts its local fit.
    FitStart,
    /// A machine finishes its local fit.
    FitEnd,
    /// A machine sends its report.
    Send,
    /// A report reaches the server in time.
    Arrive,
    /// A report reaches the server after the deadline (left out).
    Late,
    /// A machine fails and never reports.
    Failed,
    /// The server stops waiting (deadline reached).
    Deadline,
    /// The server starts reducing.
    ReduceStart,
    /// The server has the reduced model.
    ReduceEnd,
}

/// One event on the virtual timeline; `machine` is `None` for the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Virtual seconds since the start of the run.
    pub time: f64,
    /// What happened.
    pub kind: EventKind,
    /// Which machine (0-based), or `None` for the server.
    pub machine: Option<usize>,
}

impl Event {
    /// An event of machine `machine`.
    pub fn machine(machine: usize, time: f64, kind: EventKind) -> Event {
        Event { time, kind, machine: Some(machine) }
    }

    /// An event of the server.
    pub fn server(time: f64, kind: EventKind) -> Event {
        Event { time, kind, machine: None }
    }
}

/// A machine's part in the reduction: its weight, its screening score and verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReductionShare {
    /// `lambda_m = N_m / sum_m' N_m'` over the machines the reduced model kept; `None` for the others.
    pub lambda: Option<f64>,
    /// Its joint divergence from the screening's reference (the best start's model), if screened.
    pub outlier_score: Option<f64>,
    /// Whether the screening flagged it.
    pub flagged: bool,
}

/// One machine's part of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineRecord {
    /// Machine index (0-based).
    pub machine: usize,
    /// Rows in its shard.
    pub rows: usize,
    /// Speed factor (compute time multiplier).
    pub speed: f64,
    /// Whether it failed (then every later field is empty).
    pub failed: bool,
    /// Virtual compute time of its fit.
    pub compute_s: Option<f64>,
    /// Network delay of its report.
    pub network_s: Option<f64>,
    /// Arrival time at the server.
    pub arrival_s: Option<f64>,
    /// Attempts needed to get the report through.
    pub attempts: Option<u32>,
    /// Size of its report in bytes.
    pub bytes: Option<u64>,
    /// Whether the server used its report.
    pub included: bool,
    /// Its weight lambda_m in the reduction (renormalised over the included machines).
    pub lambda: Option<f64>,
    /// Its joint divergence from the screening's reference (the best start's model), if screened.
    pub outlier_score: Option<f64>,
    /// Whether the screening flagged it as an outlier.
    pub flagged: bool,
    /// EM iterations of its retained run.
    pub iterations: Option<usize>,
    /// EM iterations over all starts.
    pub total_iterations: Option<usize>,
    /// Whether its EM converged.
    pub converged: Option<bool>,
    /// Log-likelihood after every iteration of its retained EM run.
    pub em_trace: Option<Vec<f64>>,
    /// Its local model.
    pub model: Option<Moe>,
}

impl MachineRecord {
    /// A machine with `rows` rows and speed factor `speed` that failed: every later field is empty.
    pub fn failed(machine: usize, rows: usize, speed: f64) -> MachineRecord {
        MachineRecord {
            machine,
            rows,
            speed,
            failed: true,
            compute_s: None,
            network_s: None,
            arrival_s: None,
            attempts: None,
            bytes: None,
            included: false,
            lambda: None,
            outlier_score: None,
            flagged: false,
            iterations: None,
            total_iterations: None,
            converged: None,
            em_trace: None,
            model: None,
        }
    }

    /// A machine that sent `report`, with its virtual `timing` and its `share` of the reduction.
    pub fn reported(
        machine: usize,
        rows: usize,
        speed: f64,
        report: &LocalReport,
        timing: &Timing,
        share: ReductionShare,
    ) -> MachineRecord {
        MachineRecord {
            failed: false,
            compute_s: Some(timing.compute),
            network_s: Some(timing.delivery.seconds),
            arrival_s: Some(timing.arrival),
            attempts: Some(timing.delivery.attempts),
            bytes: Some(timing.bytes),
            included: timing.included,
            lambda: share.lambda,
            outlier_score: share.outlier_score,
            flagged: share.flagged,
            iterations: Some(report.summary.iterations),
            total_iterations: Some(report.summary.total_iterations),
            converged: Some(report.summary.converged),
            em_trace: Some(report.trace.clone()),
            model: Some(report.model.clone()),
            ..MachineRecord::failed(machine, rows, speed)
        }
    }
}

/// A named estimator's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedModel {
    /// `reduction`, `median`, `aligned-average`, `naive-average` or `global`.
    pub name: String,
    /// The model.
    pub model: Moe,
}

/// The full record of one simulated cluster run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Clock used: `measured` or `model`.
    pub clock: String,
    /// Per machine, in machine order.
    pub machines: Vec<MachineRecord>,
    /// The virtual timeline, sorted by time (then machine, server last).
    pub events: Vec<Event>,
    /// Slowest included machine's compute time.
    pub local_compute_max_s: f64,
    /// Time the reports spent in the network beyond the slowest compute: the last used report's
    /// arrival minus `local_compute_max_s`.
    pub network_s: f64,
    /// Time the server then waited for the deadline (reports late or lost, machines failed): reduce
    /// start minus the last used report's arrival; 0 without a deadline.
    pub wait_s: f64,
    /// When the server started reducing.
    pub reduce_start_s: f64,
    /// Duration of the reduction.
    pub reduce_s: f64,
    /// End of the reduction: the distributed learning time.
    pub makespan_s: f64,
    /// Bytes of every report that was sent.
    pub bytes_sent: u64,
    /// Machines flagged as outliers by the server's screening.
    pub flagged_machines: Vec<usize>,
    /// Whether the flagged machines were left out of the reduced model.
    pub flagged_dropped: bool,
    /// The reduction's start and its MM objective trace.
    pub reduction_init: Init,
    /// MM objective after every assignment step of the retained run (on all supporting points).
    pub objective_trace: Vec<f64>,
    /// MM iterations of every run of the reduction (starts, continuation, refinement, and the runs on
    /// the kept machines after a drop).
    pub mm_iterations: usize,
    /// Reduced model and baselines computed from the same reports (and the global fit, when given).
    pub estimators: Vec<NamedModel>,
    /// Time of the global fit on all training rows, when given.
    pub global_s: Option<f64>,
    /// `global_s / makespan_s`.
    pub speedup: Option<f64>,
}

impl RunRecord {
    /// The model of a named estimator.
    pub fn estimator(&self, name: &str) -> Option<&Moe> {
        self.estimators.iter().find(|e| e.name == name).map(|e| &e.model)
    }
}
