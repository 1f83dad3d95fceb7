//! The server side of every protocol: what it asks the machines in each round and what it does
//! with their answers (docs/simulator.md, "Protocols"). A protocol is a state machine driven by
//! the scheduler (`simulate`): the machines start on their own at time 0 with the protocol's
//! first-round work; every time a round closes (all expected answers in, or the deadline), the
//! server takes one step on the answers that arrived and either asks the next round or is done.
//!
//! - `one-shot` (the paper): local fits, then the reduction. One round.
//! - `distributed-em`: exact EM over the machines (`em::over_machines`). Round 1 gathers the
//!   moments of every shard (the union's standardisation) and the supporting sample with its
//!   targets; the server fits the start on that sample with the local EM settings; then one round
//!   per E-step (and per step halving of the gate).
//! - `refine`: the one-shot reduction, then `rounds` iterations of exact EM started from it (the
//!   moments travel with the local fits).
//! - `fedavg`: round 1 gathers the supporting sample and fits the start on it, as
//!   `distributed-em`; then every round each machine runs `local_iterations` EM iterations from
//!   the model sent and the server averages the models, weighted by rows (`em::fedavg`).
//!
//! In a round that closes at a deadline, the server uses the answers that arrived: sums of
//! statistics and row-weighted averages then cover those machines only (their weights renormalise).
//! The server's step is charged to the run's clock: its thread CPU time, or on the model clock
//! `e(M + d + 1, K)` for summing M answers and solving (`work` has `e`), plus a start's EM fit
//! (`Clock::fit_seconds`) or the reduction (`Clock::reduction_seconds`).

use std::sync::Arc;

use ndarray::{Array1, Array2};

use super::ClusterError;
use super::clock::{Clock, CostModel};
use super::record::NamedModel;
use super::work::{Answer, Work};
use crate::distributed::pipeline::ExactEm;
use crate::distributed::{self, Baseline, Estimate, LocalReport};
use crate::numeric::cputime::thread_cpu_seconds;
use crate::numeric::em::fedavg::{self, FedAvgSettings};
use crate::numeric::em::over_machines::{self, Moments, Next};
use crate::numeric::em::{EmError, EmSettings};
use crate::numeric::model::Moe;
use crate::reduce::{Reduction, ReductionSettings};

/// A protocol and its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProtocolKind {
    /// Local fits and one reduction.
    OneShot,
    /// Exact EM over the machines, at most `max_rounds` rounds after the first.
    DistributedEm { max_rounds: usize },
    /// The one-shot reduction, then `rounds` iterations of exact EM from it.
    Refine { rounds: usize },
    /// Federated averaging: `local_iterations` EM iterations per machine and round, at most `rounds`
    /// rounds after the first.
    FedAvg { local_iterations: usize, rounds: usize },
}

impl ProtocolKind {
    /// Every kind's name, in the order of the variants.
    pub const NAMES: [&'static str; 4] = ["one-shot", "distributed-em", "refine", "fedavg"];

    /// The estimator name of a protocol other than one-shot, if `name` is one (`distributed-em`,
    /// `refine`, `fedavg`).
    pub fn estimator_named(name: &str) -> Option<&'static str> {
        Self::NAMES[1..].iter().copied().find(|n| *n == name)
    }

    /// The kind's name in scenarios and results: `one-shot`, `distributed-em`, `refine`, `fedavg`.
    pub fn name(&self) -> &'static str {
        match self {
            ProtocolKind::OneShot => "one-shot",
            ProtocolKind::DistributedEm { .. } => "distributed-em",
            ProtocolKind::Refine { .. } => "refine",
            ProtocolKind::FedAvg { .. } => "fedavg",
        }
    }

    /// The most rounds the protocol can take, step halvings of the gate aside: 1 for one-shot, the
    /// first round and the cap after it otherwise. Refine takes its start's E-step and one round
    /// per iteration; with `accelerate`, at worst every SQUAREM jump loses, which costs three rounds
    /// for each cycle of two iterations that is followed by another: `2 + R + 3 floor((R - 1) / 2)`.
    pub fn most_rounds(&self, accelerate: bool) -> usize {
        match *self {
            ProtocolKind::OneShot | ProtocolKind::Refine { rounds: 0 } => 1,
            ProtocolKind::DistributedEm { max_rounds } => 1 + max_rounds,
            ProtocolKind::Refine { rounds } if accelerate => 2 + rounds + 3 * ((rounds - 1) / 2),
            ProtocolKind::Refine { rounds } => 2 + rounds,
            ProtocolKind::FedAvg { rounds, .. } => 1 + rounds,
        }
    }

    /// What the machines do at time 0, before any message: the parts of their first answer.
    pub fn first_round(&self) -> Vec<Work> {
        match self {
            ProtocolKind::OneShot | ProtocolKind::Refine { rounds: 0 } => vec![Work::Fit],
            ProtocolKind::Refine { .. } => vec![Work::Fit, Work::Moments],
            ProtocolKind::DistributedEm { .. } => vec![Work::Moments, Work::Sample],
            ProtocolKind::FedAvg { .. } => vec![Work::Sample],
        }
    }

    /// The name of the estimator the protocol produces in results: `reduction` for one-shot (and
    /// refine without rounds, which is one-shot), otherwise the kind's name.
    pub fn estimator(&self) -> &'static str {
        match self {
            ProtocolKind::OneShot | ProtocolKind::Refine { rounds: 0 } => "reduction",
            other => other.name(),
        }
    }
}

/// A protocol of a run: its label and kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Protocol {
    /// Label in results and plots.
    pub name: String,
    /// What it does.
    pub kind: ProtocolKind,
}

impl Default for Protocol {
    /// The paper's one-shot protocol.
    fn default() -> Self {
        Protocol { name: "one-shot".into(), kind: ProtocolKind::OneShot }
    }
}

/// The answers of a closed round: each machine that answered, with its answer's parts, in machine
/// order.
pub(super) type Answers = Vec<(usize, Vec<Answer>)>;

/// Reductions already made in a run: the machines reduced, the reduction and its seconds. Replays
/// under which the same reports arrive share one (and its measured time).
pub(super) type Reductions = Vec<(Vec<usize>, Reduction, f64)>;

/// What every step may read: the run's settings and the shard sizes.
pub(super) struct StepInputs {
    pub em: EmSettings,
    pub reduction: ReductionSettings,
    pub clock: Clock,
    pub features: Vec<String>,
    pub target: String,
    pub rows: Vec<usize>,
    pub d: usize,
    pub fit_seed: u64,
    pub baselines: Vec<Baseline>,
}

/// The reduction a protocol made: the reports it used, in machine order, and the result.
pub(super) struct Reduced {
    pub included: Vec<LocalReport>,
    pub reduction: Reduction,
}

/// What the server does after a step.
pub(super) struct Step {
    /// The next round's request to every machine still running, or `None` when the protocol is done.
    pub ask: Option<Work>,
    /// The step's seconds on the run's clock.
    pub seconds: f64,
    /// Whether the step is the reduction (for the timeline's names).
    pub reduces: bool,
}

/// The server's state in one replay.
pub(super) enum Server {
    OneShot { reduced: Option<Reduced> },
    Em { kind: ProtocolKind, reduced: Option<Reduced>, em: Option<(Box<over_machines::Server>, usize)> },
    FedAvg { settings: Arc<FedAvgSettings>, server: Option<fedavg::Server> },
}

impl Server {
    /// The server of `kind` before its first step.
    pub fn new(kind: &ProtocolKind, em: &EmSettings) -> Server {
        match *kind {
            ProtocolKind::OneShot | ProtocolKind::Refine { rounds: 0 } => Server::OneShot { reduced: None },
            ProtocolKind::DistributedEm { .. } | ProtocolKind::Refine { .. } => {
                Server::Em { kind: *kind, reduced: None, em: None }
            }
            ProtocolKind::FedAvg { local_iterations, rounds } => Server::FedAvg {
                settings: Arc::new(FedAvgSettings {
                    local_iterations,
                    rounds,
                    tol: em.tol,
                    variance_floor: em.variance_floor,
                }),
                server: None,
            },
        }
    }

    /// One step on the answers of a closed round (machine, its answer's parts), in machine order.
    pub fn step(
        &mut self,
        answers: Answers,
        cx: &StepInputs,
        reductions: &mut Reductions,
    ) -> Result<Step, ClusterError> {
        let m = answers.len();
        let k = cx.em.k;
        let summing = move |c: &CostModel| c.em_seconds((m + cx.d + 1) as u64, k, cx.d);
        match self {
            Server::OneShot { reduced } => {
                let (r, seconds) = reduce(answers, cx, reductions)?;
                *reduced = Some(r);
                Ok(Step { ask: None, seconds, reduces: true })
            }
            Server::Em { kind, reduced, em } => {
                let Some((server, max_rounds)) = em else {
                    // The first step: the start (the reduction, or EM on the gathered sample) and the
                    // union's standardisation.
                    let (moments, answers) = take_moments(answers);
                    let t0 = thread_cpu_seconds();
                    let scaling =
                        Moments::combine(&moments).scaling(&cx.features, &cx.target, k).map_err(server_error)?;
                    let mut seconds = cx.clock.charge(thread_cpu_seconds() - t0, summing);
                    let (start, exact, max_rounds) = match *kind {
                        ProtocolKind::Refine { rounds } => {
                            let (r, s) = reduce(answers, cx, reductions)?;
                            seconds += s;
                            let start = r.reduction.model.clone();
                            *reduced = Some(r);
                            (start, ExactEm::Refine { iterations: rounds }, usize::MAX)
                        }
                        ProtocolKind::DistributedEm { max_rounds } => {
                            let (start, s) = fit_start(answers, cx)?;
                            seconds += s;
                            (start, ExactEm::DistributedEm { max_iterations: max_rounds }, max_rounds)
                        }
                        _ => unreachable!("an EM server runs distributed-em or refine"),
                    };
                    let settings = exact.settings(&cx.em);
                    let (server, request) = over_machines::Server::new(&start, scaling.clone(), &settings);
                    *em = Some((Box::new(server), max_rounds));
                    let ask = Work::Em { scaling: Some(Arc::new(scaling)), request: Arc::new(request) };
                    // Refine's first step is its reduction (and the standardisation).
                    return Ok(Step { ask: Some(ask), seconds, reduces: reduced.is_some() });
                };
                let stats = answers
                    .into_iter()
                    .map(|(_, parts)| match parts.into_iter().next() {
                        Some(Answer::Em(s)) => s,
                        _ => unreachable!("exact-EM rounds are answered with statistics"),
                    })
                    .collect();
                let t0 = thread_cpu_seconds();
                let next = server.receive(stats);
                let seconds = cx.clock.charge(thread_cpu_seconds() - t0, summing);
                let ask = match next {
                    Next::Ask(request) if server.rounds() < *max_rounds => {
                        Some(Work::Em { scaling: None, request: Arc::new(request) })
                    }
                    _ => None,
                };
                Ok(Step { ask, seconds, reduces: false })
            }
            Server::FedAvg { settings, server } => {
                let Some(server) = server else {
                    let (start, seconds) = fit_start(answers, cx)?;
                    let first = fedavg::Server::new(&start, settings);
                    let ask = (settings.rounds > 0)
                        .then(|| Work::FedAvg { model: Arc::new(first.model().clone()), settings: settings.clone() });
                    *server = Some(first);
                    return Ok(Step { ask, seconds, reduces: false });
                };
                let rows: Vec<usize> = answers.iter().map(|(m, _)| cx.rows[*m]).collect();
                let models = answers
                    .into_iter()
                    .map(|(_, parts)| match parts.into_iter().next() {
                        Some(Answer::FedAvg { model, loglik }) => (model, loglik),
                        _ => unreachable!("federated-averaging rounds are answered with models"),
                    })
                    .collect();
                let t0 = thread_cpu_seconds();
                let more = server.receive(models, &rows);
                let seconds = cx.clock.charge(thread_cpu_seconds() - t0, summing);
                let ask =
                    more.then(|| Work::FedAvg { model: Arc::new(server.model().clone()), settings: settings.clone() });
                Ok(Step { ask, seconds, reduces: false })
            }
        }
    }

    /// Whether the protocol stopped on its tolerance (`None` when it runs a fixed number of rounds).
    pub fn converged(&self) -> Option<bool> {
        match self {
            Server::Em { kind: ProtocolKind::DistributedEm { .. }, em: Some((s, _)), .. } => Some(s.converged()),
            Server::FedAvg { server: Some(s), .. } => Some(s.converged()),
            _ => None,
        }
    }

    /// The protocol's estimators once it is done: its model first (named by
    /// [`ProtocolKind::estimator`]), then, where a reduction was made, the reduced model (for refine)
    /// or the baselines (for one-shot) from the same reports. Also gives up the reduction.
    pub fn finish(self, cx: &StepInputs) -> Result<(Vec<NamedModel>, Option<Reduced>), ClusterError> {
        let named = |name: &str, model: Moe| NamedModel { name: name.into(), model };
        Ok(match self {
            Server::OneShot { reduced } => {
                let r = reduced.expect("one-shot reduces in its only step");
                let mut out = vec![named("reduction", r.reduction.model.clone())];
                for (name, est) in distributed::baselines(&r.included, &r.reduction, &cx.baselines) {
                    if let Estimate::Moe(model) = est {
                        out.push(named(name, *model));
                    }
                }
                (out, Some(r))
            }
            Server::Em { kind, reduced, em } => {
                let (server, _) = em.expect("exact EM has taken its first step");
                let mut out = vec![named(kind.estimator(), server.model().map_err(server_error)?)];
                if let Some(r) = &reduced {
                    out.push(named("reduction", r.reduction.model.clone()));
                }
                (out, reduced)
            }
            Server::FedAvg { server, .. } => {
                let server = server.expect("federated averaging has taken its first step");
                (vec![named("fedavg", server.model().clone())], None)
            }
        })
    }
}

/// An error of the server's own numbers (a standardisation or a start that cannot be computed).
fn server_error(e: EmError) -> ClusterError {
    ClusterError::Setting(format!("the server's step: {e}"))
}

/// The reduction of the answers' local fits (reusing an earlier one of the same machines) and its
/// seconds on the run's clock.
fn reduce(answers: Answers, cx: &StepInputs, done: &mut Reductions) -> Result<(Reduced, f64), ClusterError> {
    let included: Vec<LocalReport> = answers
        .into_iter()
        .filter_map(|(_, parts)| {
            parts.into_iter().find_map(|p| match p {
                Answer::Fit(r) => Some(r),
                _ => None,
            })
        })
        .collect();
    let ids: Vec<usize> = included.iter().map(|r| r.machine).collect();
    if let Some((_, reduction, seconds)) = done.iter().find(|(m, _, _)| *m == ids) {
        return Ok((Reduced { included, reduction: reduction.clone() }, *seconds));
    }
    let t0 = thread_cpu_seconds();
    let reduction = distributed::aggregate(&included, &cx.reduction)?;
    let cpu = thread_cpu_seconds() - t0;
    let seconds = cx.clock.reduction_seconds(cpu, &reduction, cx.reduction.k);
    done.push((ids, reduction.clone(), seconds));
    Ok((Reduced { included, reduction }, seconds))
}

/// The answers' moments, and the answers without them.
fn take_moments(answers: Answers) -> (Vec<Moments>, Answers) {
    let mut moments = Vec::new();
    let rest = answers
        .into_iter()
        .map(|(m, parts)| {
            let mut others = Vec::new();
            for p in parts {
                match p {
                    Answer::Moments(x) => moments.push(x),
                    other => others.push(other),
                }
            }
            (m, others)
        })
        .collect();
    (moments, rest)
}

/// The start of exact EM and of federated averaging: `distributed::sample_start` on the supporting
/// rows the machines sent with their targets, and its seconds on the run's clock.
fn fit_start(answers: Answers, cx: &StepInputs) -> Result<(Moe, f64), ClusterError> {
    let samples: Vec<(Array2<f64>, Array1<f64>)> = answers
        .into_iter()
        .flat_map(|(_, parts)| parts)
        .filter_map(|p| match p {
            Answer::Sample { x, y } => Some((x, y)),
            _ => None,
        })
        .collect();
    let views: Vec<_> = samples.iter().map(|(x, y)| (x.view(), y.view())).collect();
    let rows: usize = samples.iter().map(|(_, y)| y.len()).sum();
    let fit = distributed::sample_start(&views, &cx.features, &cx.target, &cx.em, cx.fit_seed)
        .map_err(|e| ClusterError::Setting(format!("the start fitted on the {rows} supporting rows: {e}")))?;
    let seconds = cx.clock.fit_seconds(&fit.summary, cx.em.k, cx.d);
    Ok((fit.model, seconds))
}
