//! Protocols on the event-driven simulator: the virtual-time accounting of a two-round run message
//! by message, latency charged once per message, refine equal to exact EM from the reduction,
//! failures per round and deadlines per round.

mod common;

use std::sync::Arc;

use common::problem;
use dmoe::cluster::clock::{Clock, CostModel};
use dmoe::cluster::machines::Speed;
use dmoe::cluster::network::Latency;
use dmoe::cluster::protocol::{Protocol, ProtocolKind};
use dmoe::cluster::record::{EventKind, RunRecord};
use dmoe::cluster::{self, ClusterConfig};
use dmoe::data::sharding::{ShardedData, equal_blocks};
use dmoe::numeric::em::{EmSettings, over_machines};
use dmoe::reduce::ReductionSettings;

const FEATURES: [&str; 2] = ["x1", "x2"];

fn sharded(n: usize, m: usize, seed: u64) -> Arc<ShardedData> {
    let (_, data) = problem(3, 2, n, seed);
    let order: Vec<usize> = (0..n).collect();
    Arc::new(ShardedData::gather(data.x.view(), data.y.view(), Some(&data.z), &order, equal_blocks(n, m)))
}

/// K = 3, the model clock, two worker threads and one protocol.
fn config(seed: u64, kind: ProtocolKind) -> ClusterConfig {
    let em = EmSettings { k: 3, restarts: 2, ..EmSettings::default() };
    let mut c = ClusterConfig::new(em, ReductionSettings { k: 3, ..Default::default() }, 500, seed);
    c.clock = Clock::Model(CostModel::default());
    c.threads = 2;
    c.protocols = vec![Protocol { name: kind.name().into(), kind }];
    c
}

fn run(data: &Arc<ShardedData>, c: &ClusterConfig) -> RunRecord {
    let features = FEATURES.iter().map(|f| f.to_string()).collect();
    let mut out = cluster::run(data.clone(), features, "y".into(), c, None, None).expect("the run finishes");
    let r = out.records.remove(0);
    assert!(r.events.windows(2).all(|w| w[0].time <= w[1].time), "events sorted by time");
    for w in r.rounds.windows(2) {
        assert_eq!(w[1].open_s, w[0].end_s, "a round opens when the previous step ends");
    }
    r
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{what}: {a} vs {b}");
}

/// Federated averaging with one round after the start: round 1 gathers the supporting rows (free
/// to compute) and fits the start; round 2 sends the model, every machine runs 2 EM iterations and
/// answers, the server averages. With a constant latency L and the model clock every time is known.
#[test]
fn a_two_round_run_is_accounted_message_by_message() {
    let latency = 0.05;
    let data = sharded(8_000, 4, 3);
    let mut c = config(3, ProtocolKind::FedAvg { local_iterations: 2, rounds: 1 });
    c.networks[0].latency = Latency::Constant { seconds: latency };
    let r = run(&data, &c);
    let cost = CostModel::default();
    assert_eq!(r.rounds.len(), 2);
    let (first, second) = (&r.rounds[0], &r.rounds[1]);
    assert_eq!((first.open_s, first.compute_s, first.wait_s), (0.0, 0.0, 0.0));
    assert_eq!(first.network_s, latency, "the samples arrive one latency after time 0");
    assert_eq!(first.step_start_s, latency);
    assert!(first.step_s > 0.0, "the start is an EM fit on the gathered rows");
    // Round 2: each of the 2,000-row machines standardises its rows once and runs 2 EM passes.
    let compute = cost.em_seconds(2 * 2000, 3, 2) + 2000.0 * cost.em_per_component;
    close(second.compute_s, compute, "round 2 compute");
    close(second.network_s, 2.0 * latency, "round 2: the request and the answer");
    assert_eq!(second.wait_s, 0.0);
    close(second.step_s, cost.em_seconds(4 + 3, 3, 2), "the average of 4 models");
    close(r.makespan_s, first.step_s + 3.0 * latency + compute + second.step_s, "makespan");
    close(r.network_s, 3.0 * latency, "network time of the run");
    assert_eq!(r.local_compute_max_s, second.compute_s);
    // Bytes: 125 supporting rows of (x1, x2, y) per machine, then a model of 18 numbers each way
    // (the answer with the log-likelihood), 8 bytes per number and per sender id.
    assert_eq!(r.bytes_sent, 4 * ((8 + 8 * 125 * 3) + 8 * 18 + (8 + 8 * 19)));
    for m in 0..4 {
        let at = |kind: EventKind| {
            r.events.iter().find(|e| e.machine == Some(m) && e.round == 2 && e.kind == kind).map(|e| e.time)
        };
        let open = second.open_s;
        assert_eq!(at(EventKind::Request), Some(open));
        close(at(EventKind::Receive).unwrap(), open + latency, "request received");
        close(at(EventKind::ComputeEnd).unwrap(), open + latency + compute, "work done");
        close(at(EventKind::Arrive).unwrap(), open + 2.0 * latency + compute, "answer in");
    }
}

/// Exact EM with a constant latency L against an ideal network: the same estimates, and a makespan
/// longer by L for the first round (answers only) and 2 L for every later round.
#[test]
fn latency_is_charged_once_per_message_of_every_round() {
    let data = sharded(6_000, 4, 4);
    let ideal = run(&data, &config(4, ProtocolKind::DistributedEm { max_rounds: 30 }));
    let mut c = config(4, ProtocolKind::DistributedEm { max_rounds: 30 });
    c.networks[0].latency = Latency::Constant { seconds: 0.08 };
    let wan = run(&data, &c);
    assert_eq!(wan.estimators, ideal.estimators, "latency without a deadline changes no estimate");
    let rounds = wan.rounds.len();
    assert!(rounds > 5, "several rounds of exact EM: {rounds}");
    close(wan.makespan_s - ideal.makespan_s, 0.08 * (2 * rounds - 1) as f64, "added latency");
}

/// Refine on the simulator is the reduction followed by exact EM over the machines: the numeric
/// core's `over_machines::fit` from the record's reduced model gives the same model.
#[test]
fn refine_on_the_simulator_equals_exact_em_from_the_reduction() {
    let data = sharded(8_000, 4, 5);
    let c = config(5, ProtocolKind::Refine { rounds: 4 });
    let r = run(&data, &c);
    let reduced = r.estimator("reduction").expect("refine keeps its reduction");
    let refined = r.estimator("refine").expect("and its refined model");
    let shards: Vec<_> = (0..4).map(|m| (data.shard_x(m), data.shard_y(m))).collect();
    let features: Vec<String> = FEATURES.iter().map(|f| f.to_string()).collect();
    let settings = EmSettings { max_iter: 4, tol: 0.0, ..c.em.clone() };
    let direct = over_machines::fit(&shards, &features, "y", reduced, &settings).unwrap();
    let expected = direct.model();
    for (a, b) in [(&refined.experts, &expected.experts), (&refined.gate, &expected.gate)] {
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-12 * y.abs().max(1.0)), "{a} vs {b}");
    }
    assert_eq!(r.rounds.len(), direct.rounds, "the standardisation round (with the fits), then EM's");
    assert_eq!(r.protocol_kind, "refine");
}

/// The protocols of several rounds, each capped at about six rounds after the first.
fn multi_round_kinds() -> [ProtocolKind; 3] {
    [
        ProtocolKind::FedAvg { local_iterations: 1, rounds: 6 },
        ProtocolKind::DistributedEm { max_rounds: 6 },
        ProtocolKind::Refine { rounds: 5 },
    ]
}

/// Failures per round, for every protocol of several rounds: a machine that fails in round r
/// answers every round before r and none from r on, and each round's step uses exactly the machines
/// still running.
#[test]
fn a_machine_that_fails_in_round_r_stops_contributing_from_round_r() {
    for kind in multi_round_kinds() {
        machines_failing_in_round_r_stop_contributing(kind);
    }
}

fn machines_failing_in_round_r_stop_contributing(kind: ProtocolKind) {
    let data = sharded(8_000, 8, 6);
    let mut c = config(6, kind);
    c.em.tol = 0.0;
    c.machines.failure_probability = 0.12;
    let r = run(&data, &c);
    let failed: Vec<(usize, usize)> =
        r.machines.iter().filter_map(|m| m.failed_round.map(|f| (m.machine, f))).collect();
    let kind = kind.name();
    assert!(failed.iter().any(|&(_, f)| f > 1), "{kind}: a machine fails after round 1: {failed:?}");
    assert!(failed.len() < 8, "{kind}: not every machine fails: {failed:?}");
    let answered = |m: usize, round: usize| {
        r.events.iter().any(|e| e.machine == Some(m) && e.round == round && e.kind == EventKind::Arrive)
    };
    for round in 1..=r.rounds.len() {
        let running: Vec<usize> =
            r.machines.iter().filter(|m| m.failed_round.is_none_or(|f| f > round)).map(|m| m.machine).collect();
        assert_eq!(r.rounds[round - 1].answers, running.len(), "{kind}: round {round}");
        for m in 0..8 {
            assert_eq!(answered(m, round), running.contains(&m), "{kind}: machine {m}, round {round}");
        }
    }
    for &(m, f) in &failed {
        assert!(r.events.iter().any(|e| e.machine == Some(m) && e.round == f && e.kind == EventKind::Failed));
    }
}

/// A deadline per round: two stragglers 50 times slower miss every round after the first (fedavg's
/// first round, the supporting rows, costs nothing); each such round closes at its deadline with
/// the six answers in hand, and the record says so. So do the rounds of exact EM (distributed-em,
/// refine), whose first round, with its moments or local fits, the stragglers may miss too.
#[test]
fn a_round_that_misses_its_deadline_goes_on_with_the_answers_in_hand() {
    let data = sharded(8_000, 8, 7);
    let mut c = config(7, ProtocolKind::FedAvg { local_iterations: 2, rounds: 4 });
    c.em.tol = 0.0;
    c.machines.speed = Speed::Stragglers { fraction: 0.25, slowdown: 50.0 };
    c.deadline = Some(0.005);
    let r = run(&data, &c);
    assert_eq!(r.rounds.len(), 5);
    assert_eq!(r.rounds[0].answers, 8);
    late_rounds_go_on_without_the_stragglers(&r, "fedavg", 0.005);
    for kind in [ProtocolKind::DistributedEm { max_rounds: 6 }, ProtocolKind::Refine { rounds: 4 }] {
        c.protocols = vec![Protocol { name: kind.name().into(), kind }];
        let deadline = if matches!(kind, ProtocolKind::Refine { .. }) { 0.05 } else { 0.005 };
        c.deadline = Some(deadline);
        let r = run(&data, &c);
        assert!(r.rounds.len() >= 4, "{}: {} rounds", kind.name(), r.rounds.len());
        assert!(r.estimator(kind.estimator()).is_some(), "{}: a model", kind.name());
        late_rounds_go_on_without_the_stragglers(&r, kind.name(), deadline);
    }
}

/// Every round after the first of `r` closed at its `deadline` with the six punctual answers, and
/// the two slow machines are not included.
fn late_rounds_go_on_without_the_stragglers(r: &RunRecord, kind: &str, deadline: f64) {
    for round in &r.rounds[1..] {
        assert_eq!(round.answers, 6, "{kind}: round {}", round.round);
        close(round.step_start_s, round.open_s + deadline, "the round closes at its deadline");
        assert!(round.wait_s > 0.0);
        assert!(r.events.iter().any(|e| e.round == round.round && e.kind == EventKind::Deadline));
    }
    let slow: Vec<usize> = r.machines.iter().filter(|m| m.speed == 50.0).map(|m| m.machine).collect();
    assert_eq!(slow.len(), 2);
    for m in &r.machines {
        assert_eq!(m.included, !slow.contains(&m.machine), "{kind}: machine {}", m.machine);
    }
    assert!(r.events.iter().any(|e| e.kind == EventKind::Late && slow.contains(&e.machine.unwrap())));
}

/// When every machine has failed before the protocol is done, it ends with the server's last model
/// and the record says why, instead of failing the run; for every protocol of several rounds.
#[test]
fn a_protocol_whose_machines_all_fail_ends_with_the_servers_last_model() {
    let data = sharded(8_000, 8, 8);
    let kinds = [
        ProtocolKind::FedAvg { local_iterations: 1, rounds: 30 },
        ProtocolKind::DistributedEm { max_rounds: 30 },
        ProtocolKind::Refine { rounds: 30 },
    ];
    for kind in kinds {
        let mut c = config(8, kind);
        c.em.tol = 0.0;
        c.machines.failure_probability = 0.4;
        let r = run(&data, &c);
        let name = kind.name();
        let why = r.stopped.as_deref().expect("every machine fails long before 31 rounds");
        assert!(why.starts_with("every machine had failed by round "), "{name}: {why}");
        assert!(r.rounds.len() < 31, "{name}: {} rounds", r.rounds.len());
        assert!(r.machines.iter().all(|m| m.failed), "{name}: every machine failed");
        assert!(r.estimator(kind.estimator()).is_some(), "{name}: the server's last model is the model");
        let fixed_rounds = matches!(kind, ProtocolKind::Refine { .. });
        assert_eq!(r.converged, (!fixed_rounds).then_some(false), "{name}");
    }
}

/// A later round whose deadline passes with no answer ends the protocol there: the wait counts in
/// the makespan, and the record says why.
#[test]
fn a_round_with_no_answer_by_its_deadline_ends_the_protocol_at_the_deadline() {
    let data = sharded(8_000, 4, 9);
    let mut c = config(9, ProtocolKind::FedAvg { local_iterations: 2, rounds: 5 });
    c.machines.speed = Speed::Stragglers { fraction: 1.0, slowdown: 1000.0 };
    c.deadline = Some(0.005);
    let r = run(&data, &c);
    assert_eq!(r.stopped.as_deref(), Some("no answer arrived by the deadline of round 2"));
    assert_eq!(r.rounds.len(), 2, "the sample round, then the round nobody answered in time");
    let last = &r.rounds[1];
    assert_eq!((last.answers, last.compute_s, last.step_s), (0, 0.0, 0.0));
    close(last.wait_s, 0.005, "the server waited the whole deadline");
    close(r.makespan_s, last.open_s + 0.005, "the makespan ends at that deadline");
    assert!(r.estimator("fedavg").is_some(), "the start is the model");
}
