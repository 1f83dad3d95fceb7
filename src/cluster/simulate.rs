//! One replay of a run on the scheduler (`events::Agenda`): the protocol's rounds, message by
//! message, in virtual time.
//!
//! Round 1 opens at time 0: every machine that does not fail starts its first-round work on its own
//! (no message: data and settings are already there) and sends its answer when done. Every later
//! round opens when the server's step ends: the server sends its request to every machine still
//! running. Each message arrives after its network delay (links are first-in first-out: a message
//! never overtakes an earlier one on the same link); a machine computes when its request has
//! arrived and it is free, for its work's seconds on the run's clock times its speed factor. A
//! round closes when every answer the server waits for has arrived (a failure is noticed at once),
//! or at its deadline (`deadline` seconds after it opened; the server cannot tell a failed machine
//! from a slow one then); the server steps on the answers in hand, sorted by machine. Answers of a
//! closed round are late and left out. A machine that fails in round r receives that round's
//! request and never answers; it is not asked again.
//!
//! The numbers a machine computes do not depend on virtual time, so its work is started on the
//! worker pool as soon as the request is sent and collected when the request arrives: local work
//! runs in parallel on the real cores while the scheduler keeps one order of events.

use std::collections::VecDeque;

use actix::dev::Request;
use actix::prelude::*;

use super::ClusterError;
use super::actors::{Close, Compute, Finish, Finished, Machine, ServerActor};
use super::events::{Agenda, Ranked};
use super::machines::Failures;
use super::network::{Delivery, NetworkModel};
use super::protocol::{Answers, Protocol, Reduced, Reductions, Server, StepInputs};
use super::record::{Event, EventKind, NamedModel, RoundRecord};
use super::work::{Answer, Computed, Work};
use crate::distributed::LocalReport;
use crate::numeric::rng::{self, Rng};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// What a replay runs under.
pub(super) struct Replay<'a> {
    pub network: &'a NetworkModel,
    pub speeds: &'a [f64],
    pub protocol: &'a Protocol,
}

/// What every replay of a run shares.
pub(super) struct Shared<'a> {
    pub cx: Arc<StepInputs>,
    pub deadline: Option<f64>,
    pub seed: u64,
    pub stream: &'a [u64],
    pub failures: &'a Failures,
}

/// One machine's part of a replay, summed over its rounds.
#[derive(Debug, Clone, Default)]
pub(super) struct MachineFacts {
    /// Compute seconds (speed factor applied).
    pub compute: f64,
    /// Network seconds of its answers.
    pub network: f64,
    /// Arrival of its last answer at the server.
    pub arrival: Option<f64>,
    /// Attempts its answers needed.
    pub attempts: u32,
    /// Bytes of its answers.
    pub bytes: u64,
    /// The round it failed in.
    pub failed_in: Option<usize>,
    /// The last round whose step used its answer.
    pub used_in: Option<usize>,
    /// Its local fit, when the protocol has one.
    pub report: Option<LocalReport>,
}

/// What a replay leaves behind.
pub(super) struct Replayed {
    pub events: Vec<Event>,
    pub rounds: Vec<RoundRecord>,
    pub machines: Vec<MachineFacts>,
    pub estimators: Vec<NamedModel>,
    pub reduced: Option<Reduced>,
    /// Bytes of every message, requests and answers.
    pub bytes_sent: u64,
    /// Measured thread CPU seconds of the machines' work after the first round.
    pub machine_cpu: f64,
    /// Whether the protocol stopped on its tolerance (`Server::converged`).
    pub converged: Option<bool>,
    /// Why it ended early, if it did.
    pub stopped: Option<String>,
}

/// The first round's answers of every machine (`None`: it fails in round 1), shared by the replays.
pub(super) type FirstRound = Vec<Option<(Vec<Answer>, f64)>>;

/// An event of the scheduler.
enum Ev {
    /// Machine `m` has done its work of `round` and sends the answer.
    Done { m: usize, round: usize, parts: Vec<Answer>, compute: f64 },
    /// An answer reaches the server.
    Arrive { m: usize, round: usize, parts: Vec<Answer>, compute: f64 },
    /// A request reaches machine `m`.
    Receive { m: usize, round: usize },
    /// The deadline of `round`.
    Deadline { round: usize },
    /// The server's step has ended.
    Stepped { ask: Option<Work>, reduces: bool },
}

impl Ranked for Ev {
    /// A deadline comes after everything else of its time: an answer arriving exactly at the
    /// deadline is in time.
    fn rank(&self) -> u8 {
        match self {
            Ev::Deadline { .. } => 1,
            _ => 0,
        }
    }
}

/// A first-in first-out link: its network draws, from its own stream, and its last arrival.
struct Link {
    rng: Rng,
    last: f64,
}

impl Link {
    /// The link of stream `(seed, path, tag, machine)`.
    fn new(seed: u64, path: &[u64], tag: u64, machine: usize) -> Link {
        Link { rng: rng::substream(seed, path, &[tag, machine as u64]), last: 0.0 }
    }

    /// Sends `bytes` at `now`: the arrival (never before the link's previous one) and the delivery.
    fn send(&mut self, network: &NetworkModel, now: f64, bytes: u64) -> (f64, Delivery) {
        let delivery = network.deliver(bytes, &mut self.rng);
        let arrival = (now + delivery.seconds).max(self.last);
        self.last = arrival;
        (arrival, delivery)
    }
}

/// The round in progress.
struct Round {
    number: usize,
    open: f64,
    /// Answers the server waits for.
    expected: usize,
    answers: Answers,
    /// Slowest compute among the answers in hand.
    compute: f64,
    last_arrival: f64,
    closed: bool,
}

impl Round {
    fn new(number: usize, open: f64, expected: usize) -> Round {
        Round {
            number,
            open,
            expected,
            answers: Vec::new(),
            compute: 0.0,
            last_arrival: f64::NEG_INFINITY,
            closed: false,
        }
    }
}

/// Runs one replay: `machines` are fresh actors of the run's machines, `first` their first-round
/// answers.
pub(super) async fn replay(
    replay: &Replay<'_>,
    shared: &Shared<'_>,
    machines: &[Addr<Machine>],
    first: &FirstRound,
    reductions: &Rc<RefCell<Reductions>>,
) -> Result<Replayed, ClusterError> {
    let n_machines = machines.len();
    let cx = &shared.cx;
    let (k, d) = (cx.em.k, cx.d);
    let mut failures = shared.failures.clone();
    let server = ServerActor {
        server: Some(Server::new(&replay.protocol.kind, &cx.em)),
        inputs: cx.clone(),
        reductions: reductions.clone(),
    }
    .start();
    let mut agenda = Agenda::new();
    let mut events = Vec::new();
    let mut rounds = Vec::new();
    let mut facts = vec![MachineFacts::default(); n_machines];
    let mut up: Vec<Link> = (0..n_machines).map(|m| Link::new(shared.seed, shared.stream, 1, m)).collect();
    let mut down: Vec<Link> = (0..n_machines).map(|m| Link::new(shared.seed, shared.stream, 5, m)).collect();
    let mut pending: Vec<VecDeque<Request<Machine, Compute>>> = (0..n_machines).map(|_| VecDeque::new()).collect();
    let mut free_at = vec![0.0; n_machines];
    let mut bytes_sent = 0;
    let mut machine_cpu = 0.0;
    let mut done = false;
    let mut stopped = None;

    for (m, answer) in first.iter().enumerate() {
        match answer {
            None => {
                facts[m].failed_in = Some(1);
                events.push(Event::machine(m, 1, 0.0, EventKind::Failed));
            }
            Some((parts, seconds)) => {
                let compute = seconds * replay.speeds[m];
                facts[m].report = parts.iter().find_map(|p| match p {
                    Answer::Fit(r) => Some(r.clone()),
                    _ => None,
                });
                events.push(Event::machine(m, 1, 0.0, EventKind::FitStart));
                free_at[m] = compute;
                agenda.at(compute, Ev::Done { m, round: 1, parts: parts.clone(), compute });
            }
        }
    }
    let running = first.iter().filter(|a| a.is_some()).count();
    let mut round = Round::new(1, 0.0, if shared.deadline.is_some() { n_machines } else { running });
    if let Some(t) = shared.deadline {
        agenda.at(t, Ev::Deadline { round: 1 });
    }
    if round.expected == 0 {
        return Err(no_reports(&facts, &round));
    }

    while let Some((now, ev)) = agenda.pop() {
        let mut closes = false;
        match ev {
            Ev::Done { m, round: r, parts, compute } => {
                events.push(Event::machine(m, r, now, if r == 1 { EventKind::FitEnd } else { EventKind::ComputeEnd }));
                events.push(Event::machine(m, r, now, EventKind::Send));
                let bytes = Answer::message_bytes(&parts);
                let (arrival, delivery) = up[m].send(replay.network, now, bytes);
                let f = &mut facts[m];
                f.compute += compute;
                f.network += delivery.seconds;
                f.attempts += delivery.attempts;
                f.bytes += bytes;
                f.arrival = Some(arrival);
                bytes_sent += bytes;
                agenda.at(arrival, Ev::Arrive { m, round: r, parts, compute });
            }
            Ev::Arrive { m, round: r, parts, compute } => {
                if r != round.number || round.closed {
                    events.push(Event::machine(m, r, now, EventKind::Late));
                    continue;
                }
                events.push(Event::machine(m, r, now, EventKind::Arrive));
                round.answers.push((m, parts));
                round.compute = round.compute.max(compute);
                round.last_arrival = round.last_arrival.max(now);
                // The round closes (below) with its last expected answer.
                closes = round.answers.len() == round.expected;
            }
            Ev::Receive { m, round: r } => {
                events.push(Event::machine(m, r, now, EventKind::Receive));
                if facts[m].failed_in == Some(r) {
                    events.push(Event::machine(m, r, now, EventKind::Failed));
                    continue;
                }
                let computed: Computed = pending[m]
                    .pop_front()
                    .expect("a request's work was started when it was sent")
                    .await
                    .map_err(|_| stopped_actor("machine"))??;
                machine_cpu += computed.cpu;
                let start = now.max(free_at[m]);
                let compute = computed.seconds * replay.speeds[m];
                free_at[m] = start + compute;
                events.push(Event::machine(m, r, start, EventKind::ComputeStart));
                agenda.at(start + compute, Ev::Done { m, round: r, parts: vec![computed.answer], compute });
            }
            Ev::Deadline { round: r } => {
                if r == round.number && !round.closed {
                    events.push(Event::server(r, now, EventKind::Deadline));
                    closes = true;
                }
            }
            Ev::Stepped { ask, reduces } => {
                let r = round.number;
                events.push(Event::server(r, now, if reduces { EventKind::ReduceEnd } else { EventKind::StepEnd }));
                let Some(work) = ask else {
                    done = true;
                    continue;
                };
                let next = r + 1;
                let bytes = work.bytes(k, d);
                let mut running = 0;
                let mut expected = 0;
                for m in 0..n_machines {
                    if facts[m].failed_in.is_some() {
                        continue;
                    }
                    running += 1;
                    let (arrival, _) = down[m].send(replay.network, now, bytes);
                    bytes_sent += bytes;
                    events.push(Event::machine(m, next, now, EventKind::Request));
                    // Its fate in this round is drawn now: a machine that fails in it is not asked
                    // again, even if this request is still in flight when the next round opens.
                    match failures.in_round(m, next) {
                        true => facts[m].failed_in = Some(next),
                        false => {
                            expected += 1;
                            pending[m].push_back(machines[m].send(Compute(work.clone())));
                        }
                    }
                    agenda.at(arrival, Ev::Receive { m, round: next });
                }
                round = Round::new(next, now, if shared.deadline.is_some() { running } else { expected });
                if round.expected == 0 {
                    // Every machine has failed: the protocol ends with the server's last model.
                    stopped = Some(format!("every machine had failed by round {next}"));
                    round.closed = true;
                    done = true;
                    continue;
                }
                if let Some(t) = shared.deadline {
                    agenda.at(now + t, Ev::Deadline { round: next });
                }
            }
        }
        if closes {
            match close(&mut round, &mut facts)? {
                None => {
                    // The server waited for the round's deadline in vain: that wait is part of the
                    // run, and the protocol ends with the server's last model.
                    let r = round.number;
                    stopped = Some(match facts.iter().all(|f| f.failed_in.is_some()) {
                        true => format!("every machine had failed by round {r} (the server waited for its deadline)"),
                        false => format!("no answer arrived by the deadline of round {r}"),
                    });
                    rounds.push(round_record(&round, now, 0.0, 0));
                    done = true;
                }
                Some(answers) => {
                    let used = answers.len();
                    let step = server.send(Close(answers)).await.map_err(|_| stopped_actor("server"))??;
                    rounds.push(round_record(&round, now, step.seconds, used));
                    let kind = if step.reduces { EventKind::ReduceStart } else { EventKind::StepStart };
                    events.push(Event::server(round.number, now, kind));
                    agenda.at(now + step.seconds, Ev::Stepped { ask: step.ask, reduces: step.reduces });
                }
            }
        }
    }
    assert!(done, "the agenda ran out before the protocol was done");
    let Finished { estimators, reduced, converged } =
        server.send(Finish).await.map_err(|_| stopped_actor("server"))??;
    events.sort_by(|a, b| {
        a.time.total_cmp(&b.time).then(a.machine.map_or(usize::MAX, |m| m).cmp(&b.machine.map_or(usize::MAX, |m| m)))
    });
    Ok(Replayed { events, rounds, machines: facts, estimators, reduced, bytes_sent, machine_cpu, converged, stopped })
}

/// Closes the round: its answers, sorted by machine, for the server's step (their machines marked
/// as used in it); `None` when no answer is in after the first round (the protocol then ends with the
/// server's last model); an error when none is in the first.
fn close(round: &mut Round, facts: &mut [MachineFacts]) -> Result<Option<Answers>, ClusterError> {
    round.closed = true;
    if round.answers.is_empty() {
        return if round.number == 1 { Err(no_reports(facts, round)) } else { Ok(None) };
    }
    let mut answers = std::mem::take(&mut round.answers);
    answers.sort_by_key(|(m, _)| *m);
    for (m, _) in &answers {
        facts[*m].used_in = Some(round.number);
    }
    Ok(Some(answers))
}

/// The record of a round closed at `now` whose step, on `answers` answers, takes `step_s`: its
/// compute (the slowest used answer's), network (the rest up to the last used arrival), wait and step.
fn round_record(round: &Round, now: f64, step_s: f64, answers: usize) -> RoundRecord {
    let last = round.last_arrival.max(round.open + round.compute);
    RoundRecord {
        round: round.number,
        open_s: round.open,
        compute_s: round.compute,
        network_s: (last - round.open) - round.compute,
        wait_s: now - last,
        step_start_s: now,
        step_s,
        end_s: now + step_s,
        answers,
    }
}

/// The error of an actor that stopped (it never does while the run needs it).
fn stopped_actor(which: &str) -> ClusterError {
    ClusterError::Setting(format!("the {which} actor stopped"))
}

/// The error of a round that closed without an answer.
fn no_reports(facts: &[MachineFacts], round: &Round) -> ClusterError {
    let failed = facts.iter().filter(|f| f.failed_in.is_some()).count();
    ClusterError::NoReports { machines: facts.len(), failed, late: facts.len() - failed, round: round.number }
}
