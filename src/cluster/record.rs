//! What one simulated run leaves behind: every machine's times and bytes, every round's times, the
//! virtual timeline, the estimators' models. Everything here is a function of the inputs and the seed (and, with the
//! measured clock, of the measured CPU times), never of thread scheduling.

use serde::{Deserialize, Serialize};

use crate::numeric::model::Moe;
use crate::reduce::Init;

/// Kind of a timeline event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A machine starts its first-round work (its local fit, in one-shot).
    FitStart,
    /// A machine finishes its first-round work.
    FitEnd,
    /// The server sends a machine a request (a round after the first).
    Request,
    /// A request reaches its machine.
    Receive,
    /// A machine starts the work of a request.
    ComputeStart,
    /// A machine finishes the work of a request.
    ComputeEnd,
    /// A machine sends its answer.
    Send,
    /// An answer reaches the server in time.
    Arrive,
    /// An answer reaches the server after its round closed (left out).
    Late,
    /// A machine fails and never answers again.
    Failed,
    /// The server stops waiting for the round (deadline reached).
    Deadline,
    /// The server starts reducing.
    ReduceStart,
    /// The server has the reduced model.
    ReduceEnd,
    /// The server starts a step of a protocol (other than a reduction).
    StepStart,
    /// The server's step is done.
    StepEnd,
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
    /// The protocol's round (from 1).
    pub round: usize,
}

impl Event {
    /// An event of machine `machine` in round `round`.
    pub fn machine(machine: usize, round: usize, time: f64, kind: EventKind) -> Event {
        Event { time, kind, machine: Some(machine), round }
    }

    /// An event of the server in round `round`.
    pub fn server(round: usize, time: f64, kind: EventKind) -> Event {
        Event { time, kind, machine: None, round }
    }
}

/// One round of a protocol: when it opened, how its time splits, when the server's step ended.
/// `compute_s + network_s + wait_s = step_start_s - open_s` and `end_s = step_start_s + step_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// The round, from 1.
    pub round: usize,
    /// When it opened: 0, or the end of the previous round's step (requests sent).
    pub open_s: f64,
    /// Slowest compute among the answers the step used.
    pub compute_s: f64,
    /// The rest of the time to the last used answer's arrival: requests' and answers' network delays
    /// (and a machine's wait for its own previous work).
    pub network_s: f64,
    /// Time the server then waited for the deadline (answers late or lost, machines failed).
    pub wait_s: f64,
    /// When the server's step started.
    pub step_start_s: f64,
    /// Duration of the server's step on the run's clock (the reduction, a start's fit, an M-step, an
    /// average).
    pub step_s: f64,
    /// When the step ended.
    pub end_s: f64,
    /// Answers the step used.
    pub answers: usize,
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
    /// Whether it failed (in the round `failed_round`; failed in round 1, every later field is empty).
    pub failed: bool,
    /// Virtual compute time of its work, summed over the rounds it answered.
    pub compute_s: Option<f64>,
    /// Network delay of its answers, summed.
    pub network_s: Option<f64>,
    /// Arrival time of its last answer at the server.
    pub arrival_s: Option<f64>,
    /// Attempts needed to get its answers through.
    pub attempts: Option<u32>,
    /// Size of its answers in bytes.
    pub bytes: Option<u64>,
    /// The round it failed in (from 1), if it failed.
    pub failed_round: Option<usize>,
    /// Whether the server's last step used its answer (in one-shot: its report arrived in time).
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

/// A named estimator's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedModel {
    /// `reduction`, `median`, `aligned-average`, `naive-average`, `distributed-em`, `refine`,
    /// `fedavg` or `global`.
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
    /// The protocol's label.
    pub protocol: String,
    /// The protocol's kind: `one-shot`, `distributed-em`, `refine` or `fedavg`.
    pub protocol_kind: String,
    /// Every round of the protocol (one-shot: one).
    pub rounds: Vec<RoundRecord>,
    /// Whether the protocol stopped on its tolerance (exact EM, federated averaging); `None` for
    /// one-shot and refine, which run a fixed number of rounds.
    #[serde(default)]
    pub converged: Option<bool>,
    /// Why the protocol ended before it was done, if it did: every machine failed, or no answer
    /// arrived by a round's deadline (the model is the server's last).
    #[serde(default)]
    pub stopped: Option<String>,
    /// Slowest used machine's compute time, summed over the rounds.
    pub local_compute_max_s: f64,
    /// Network time beyond the slowest compute, summed over the rounds: in each, the last used
    /// answer's arrival minus the round's opening and its `compute_s`.
    pub network_s: f64,
    /// Time the server waited for deadlines (answers late or lost, machines failed), summed over the
    /// rounds; 0 without a deadline.
    pub wait_s: f64,
    /// When the server started its last step (in one-shot: the reduction).
    pub reduce_start_s: f64,
    /// Duration of the server's steps, summed over the rounds (in one-shot: the reduction).
    pub reduce_s: f64,
    /// End of the last step: the distributed learning time.
    pub makespan_s: f64,
    /// Bytes of every message of every round, requests and answers.
    pub bytes_sent: u64,
    /// Machines flagged as outliers by the server's screening.
    pub flagged_machines: Vec<usize>,
    /// Whether the flagged machines were left out of the reduced model.
    pub flagged_dropped: bool,
    /// The reduction's start, when the protocol reduces.
    pub reduction_init: Option<Init>,
    /// MM objective after every assignment step of the retained run (on all supporting points).
    pub objective_trace: Vec<f64>,
    /// MM iterations of every run of the reduction (starts, continuation, refinement, and the runs on
    /// the kept machines after a drop).
    pub mm_iterations: usize,
    /// The protocol's model first (`reduction` in one-shot), then the baselines computed from the same
    /// reports (one-shot) or the reduced model it started from (refine), and the global fit when given.
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

/// What a span of the timeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// A machine's work: its first-round work (`fit-start` to `fit-end`) or a request's
    /// (`compute-start` to `compute-end`).
    Work,
    /// A request in flight to a machine (`request` to `receive`).
    Request,
    /// An answer in flight to the server (`send` to `arrive`, or to `late`).
    Answer { late: bool },
    /// A server step (`reduce-start` to `reduce-end`, or `step-start` to `step-end`).
    Step { reduces: bool },
}

/// An interval of the virtual timeline; `machine` is `None` for the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub machine: Option<usize>,
    pub round: usize,
    pub kind: SpanKind,
    pub start: f64,
    pub end: f64,
}

impl RunRecord {
    /// The timeline's intervals, each from its opening event to its closing one in the same round
    /// (by machine, or the server), in the order they close.
    pub fn spans(&self) -> Vec<Span> {
        use EventKind::*;
        let mut open: Vec<(Option<usize>, usize, u8, f64)> = Vec::new();
        let mut spans = Vec::new();
        for e in &self.events {
            let (slot, opens) = match e.kind {
                FitStart | ComputeStart => (0, true),
                FitEnd | ComputeEnd => (0, false),
                Request => (1, true),
                Receive => (1, false),
                Send => (2, true),
                Arrive | Late => (2, false),
                ReduceStart | StepStart => (3, true),
                ReduceEnd | StepEnd => (3, false),
                Failed | Deadline => continue,
            };
            if opens {
                open.push((e.machine, e.round, slot, e.time));
                continue;
            }
            let Some(i) = open.iter().position(|o| (o.0, o.1, o.2) == (e.machine, e.round, slot)) else { continue };
            let (machine, round, _, start) = open.swap_remove(i);
            let kind = match e.kind {
                FitEnd | ComputeEnd => SpanKind::Work,
                Receive => SpanKind::Request,
                Late => SpanKind::Answer { late: true },
                Arrive => SpanKind::Answer { late: false },
                other => SpanKind::Step { reduces: other == ReduceEnd },
            };
            spans.push(Span { machine, round, kind, start, end: e.time });
        }
        spans
    }
}
