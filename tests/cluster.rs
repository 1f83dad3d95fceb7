//! The actor simulator: virtual-time identities under the model clock, latency, deadline with a
//! straggler, failures, and independence from the number of worker threads.

mod common;

use std::sync::Arc;

use common::{assert_monotone, assert_non_increasing, problem};
use dmoe::cluster::clock::{Clock, CostModel};
use dmoe::cluster::machines::Speed;
use dmoe::cluster::network::Latency;
use dmoe::cluster::record::{EventKind, RunRecord};
use dmoe::cluster::{self, ClusterConfig, ClusterError, RunOutcome};
use dmoe::data::sharding::{ShardedData, equal_blocks};
use dmoe::numeric::em::EmSettings;
use dmoe::reduce::ReductionSettings;

fn sharded(n: usize, m: usize, seed: u64) -> Arc<ShardedData> {
    let (_, data) = problem(3, 2, n, seed);
    let order: Vec<usize> = (0..n).collect();
    Arc::new(ShardedData::gather(data.x.view(), data.y.view(), Some(&data.z), &order, equal_blocks(n, m)))
}

fn config(seed: u64) -> ClusterConfig {
    let em = EmSettings { k: 3, restarts: 2, ..EmSettings::default() };
    let mut c = ClusterConfig::new(em, ReductionSettings { k: 3, ..Default::default() }, 500, seed);
    c.clock = Clock::Model(CostModel::default());
    c.threads = 2;
    c
}

fn run(data: &Arc<ShardedData>, c: &ClusterConfig) -> Result<RunOutcome, ClusterError> {
    let out = cluster::run(data.clone(), vec!["x1".into(), "x2".into()], "y".into(), c, None, None);
    if let Ok(o) = &out {
        assert_eq!(o.records.len(), c.networks.len(), "one record per network");
        o.records.iter().for_each(check_record);
    }
    out
}

/// Invariants of every record: every machine's EM trace never decreases, the MM trace never
/// increases, events are sorted, and the lambdas of the included machines sum to 1.
fn check_record(r: &RunRecord) {
    for m in &r.machines {
        if let Some(t) = &m.em_trace {
            assert_monotone(t, &format!("machine {}", m.machine));
        }
    }
    assert_non_increasing(&r.objective_trace, "cluster run");
    assert!(r.events.windows(2).all(|w| w[0].time <= w[1].time), "events sorted by time");
    let lambdas: f64 = r.machines.iter().filter_map(|m| m.lambda).sum();
    assert!((lambdas - 1.0).abs() < 1e-12, "lambdas sum to {lambdas}");
    for m in &r.machines {
        let used = m.included && !(m.flagged && r.flagged_dropped);
        assert_eq!(m.lambda.is_some(), used, "machine {}: weight iff its model is used", m.machine);
    }
}

#[test]
fn model_clock_zero_latency_makespan_is_slowest_compute_plus_reduction() {
    let data = sharded(8_000, 8, 1);
    let r = run(&data, &config(1)).unwrap().records.remove(0);
    let slowest = r.machines.iter().filter_map(|m| m.compute_s).fold(0.0, f64::max);
    assert!(slowest > 0.0 && r.reduce_s > 0.0);
    assert_eq!(r.makespan_s, slowest + r.reduce_s);
    assert_eq!(r.network_s, 0.0);
    let last = r.events.last().unwrap();
    assert_eq!((last.kind, last.machine, last.time), (EventKind::ReduceEnd, None, r.makespan_s));
}

#[test]
fn constant_latency_adds_exactly_l_to_the_makespan() {
    let data = sharded(8_000, 8, 2);
    let base = run(&data, &config(2)).unwrap().records.remove(0);
    let mut c = config(2);
    c.networks[0].latency = Latency::Constant { seconds: 0.25 };
    let late = run(&data, &c).unwrap().records.remove(0);
    assert!((late.makespan_s - base.makespan_s - 0.25).abs() < 1e-12, "{} vs {}", late.makespan_s, base.makespan_s);
    assert_eq!(late.estimators, base.estimators, "latency without a deadline changes no estimate");
}

#[test]
fn deadline_leaves_out_a_straggler_and_reweights_the_others() {
    let data = sharded(8_000, 8, 3);
    let mut c = config(3);
    c.machines.speed = Speed::Stragglers { fraction: 1.0 / 8.0, slowdown: 50.0 };
    let all = run(&data, &c).unwrap().records.remove(0);
    let straggler = all.machines.iter().find(|m| m.speed == 50.0).unwrap().machine;
    let others_max =
        all.machines.iter().filter(|m| m.machine != straggler).filter_map(|m| m.arrival_s).fold(0.0, f64::max);
    let deadline = 2.0 * others_max;
    assert!(all.machines[straggler].arrival_s.unwrap() > deadline, "the straggler misses the deadline");
    c.deadline = Some(deadline);
    let r = run(&data, &c).unwrap().records.remove(0);
    assert!(!r.machines[straggler].included && r.machines[straggler].lambda.is_none());
    assert_eq!(r.machines.iter().filter(|m| m.included).count(), 7);
    assert_eq!(r.reduce_start_s, deadline);
    assert_eq!(r.makespan_s, deadline + r.reduce_s);
    // The wait for the deadline is its own part, not network time: the network part ends at the
    // last used arrival, and the four parts add up to the makespan.
    let last_used = r.machines.iter().filter(|m| m.included).filter_map(|m| m.arrival_s).fold(0.0, f64::max);
    assert_eq!(r.local_compute_max_s + r.network_s, last_used);
    assert!((r.wait_s - (deadline - others_max)).abs() < 1e-12 && r.wait_s > 0.0, "wait {}", r.wait_s);
    assert!((r.local_compute_max_s + r.network_s + r.wait_s + r.reduce_s - r.makespan_s).abs() < 1e-12);
    assert_eq!(all.wait_s, 0.0, "no deadline, no wait");
    assert!(r.events.iter().any(|e| e.kind == EventKind::Late && e.machine == Some(straggler)));
    assert!(r.events.iter().any(|e| e.kind == EventKind::Deadline));
    let equal = 1.0 / 7.0;
    assert!(r.machines.iter().filter_map(|m| m.lambda).all(|l| (l - equal).abs() < 1e-12), "equal shards: 1/7 each");
}

#[test]
fn same_seed_model_clock_gives_identical_records_with_1_and_2_threads() {
    let data = sharded(6_000, 12, 4);
    let mut c = config(4);
    c.networks[0].latency = Latency::Lognormal { median: 0.05, sigma: 1.0 };
    c.networks[0].loss = 0.2;
    c.machines.speed = Speed::Lognormal { sigma: 0.5 };
    c.threads = 1;
    let one = serde_json::to_string(&run(&data, &c).unwrap().records[0]).unwrap();
    c.threads = 2;
    let two = serde_json::to_string(&run(&data, &c).unwrap().records[0]).unwrap();
    assert!(one == two, "records differ between 1 and 2 worker threads");
    let again = serde_json::to_string(&run(&data, &c).unwrap().records[0]).unwrap();
    assert!(two == again, "records differ between two identical runs");
}

#[test]
fn failed_machines_never_enter_the_reduction() {
    let data = sharded(8_000, 8, 5);
    let mut c = config(5);
    c.machines.failure_probability = 0.3;
    let r = run(&data, &c).unwrap().records.remove(0);
    let failed: Vec<usize> = r.machines.iter().filter(|m| m.failed).map(|m| m.machine).collect();
    assert!(!failed.is_empty() && failed.len() < 8, "this seed fails some machines: {failed:?}");
    for &m in &failed {
        assert!(!r.machines[m].included && r.machines[m].model.is_none());
        assert!(r.events.iter().any(|e| e.kind == EventKind::Failed && e.machine == Some(m)));
        assert!(!r.events.iter().any(|e| e.kind == EventKind::Arrive && e.machine == Some(m)));
    }
    c.machines.failure_probability = 1.0;
    match run(&data, &c) {
        Err(e @ ClusterError::NoReports { .. }) => {
            assert_eq!(e.to_string(), "no machine reported in time: 8 of 8 machines failed")
        }
        other => panic!("expected NoReports, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn measured_clock_charges_each_machine_its_own_cpu_time() {
    let data = sharded(6_000, 6, 6);
    let mut c = config(6);
    c.clock = Clock::Measured;
    c.machines.speed = Speed::Stragglers { fraction: 0.5, slowdown: 3.0 };
    let out = run(&data, &c).unwrap();
    for m in &out.records[0].machines {
        let cpu = m.model.as_ref().unwrap().fit.as_ref().unwrap().cpu_seconds;
        assert_eq!(m.compute_s.unwrap(), cpu * m.speed, "machine {}", m.machine);
    }
    let total: f64 =
        out.records[0].machines.iter().map(|m| m.model.as_ref().unwrap().fit.as_ref().unwrap().cpu_seconds).sum();
    assert!((out.fit_cpu_seconds - total).abs() < 1e-12);
}

#[test]
fn lost_messages_cost_the_retransmission_timeout() {
    let data = sharded(6_000, 6, 7);
    let mut c = config(7);
    c.networks[0].latency = Latency::Constant { seconds: 0.01 };
    c.networks[0].loss = 0.5;
    c.networks[0].retransmit_after = 1.0;
    let r = run(&data, &c).unwrap().records.remove(0);
    for m in &r.machines {
        let expected = 0.01 + (m.attempts.unwrap() - 1) as f64;
        assert!((m.network_s.unwrap() - expected).abs() < 1e-12);
        assert!((m.arrival_s.unwrap() - m.compute_s.unwrap() - m.network_s.unwrap()).abs() < 1e-12);
    }
    assert!(r.machines.iter().any(|m| m.attempts.unwrap() > 1), "loss 0.5 over 6 machines loses something");
}

#[test]
fn every_network_replays_the_same_fits_and_draws() {
    // One run under three networks: the machines fit once, so local compute times, speeds,
    // failures and every estimate are the same; only the network's part of the timeline differs.
    let data = sharded(8_000, 8, 8);
    let mut c = config(8);
    c.machines.speed = Speed::Stragglers { fraction: 0.25, slowdown: 4.0 };
    c.machines.failure_probability = 0.1;
    let (mut lan, mut wan) = (c.networks[0].clone(), c.networks[0].clone());
    lan.latency = Latency::Constant { seconds: 0.001 };
    wan.latency = Latency::Lognormal { median: 0.08, sigma: 0.5 };
    c.networks = vec![c.networks[0].clone(), lan, wan];
    let out = run(&data, &c).unwrap();
    let r0 = &out.records[0];
    for r in &out.records[1..] {
        assert_eq!(r.local_compute_max_s, r0.local_compute_max_s);
        assert_eq!(r.reduce_s, r0.reduce_s, "the same machines arrived, so the same reduction");
        for (a, b) in r.machines.iter().zip(&r0.machines) {
            assert_eq!((a.speed, a.failed, a.compute_s), (b.speed, b.failed, b.compute_s), "machine {}", a.machine);
        }
        let models = |r: &RunRecord| serde_json::to_string(&r.estimators).unwrap();
        assert_eq!(models(r), models(r0));
    }
    assert_eq!(r0.network_s, 0.0, "the default network is ideal");
    assert!(out.records[1].network_s >= 0.001 && out.records[2].network_s > out.records[1].network_s);
    // The same configuration with one network gives that network's record exactly.
    let mut one = c.clone();
    one.networks = vec![c.networks[2].clone()];
    let alone = run(&data, &one).unwrap().records.remove(0);
    assert_eq!(serde_json::to_string(&alone).unwrap(), serde_json::to_string(&out.records[2]).unwrap());
}

#[test]
fn replays_under_other_straggler_fractions_share_the_fits_and_failures() {
    // Three replays on one network, with 0, 2 and 4 of 8 machines 4 times slower: the same fits and
    // failures, so the same estimates; the slow machines are nested and their compute is 4x.
    let data = sharded(8_000, 8, 9);
    let mut c = config(9);
    c.machines.failure_probability = 0.1;
    c.networks = vec![c.networks[0].clone(); 3];
    c.replay_speeds = [0.0, 0.25, 0.5].map(|fraction| Speed::Stragglers { fraction, slowdown: 4.0 }).to_vec();
    let out = run(&data, &c).unwrap();
    let models = |r: &RunRecord| serde_json::to_string(&r.estimators).unwrap();
    let slow = |r: &RunRecord| r.machines.iter().filter(|m| m.speed == 4.0).map(|m| m.machine).collect::<Vec<_>>();
    let (r0, r1, r2) = (&out.records[0], &out.records[1], &out.records[2]);
    assert_eq!((slow(r0).len(), slow(r1).len(), slow(r2).len()), (0, 2, 4));
    assert!(slow(r1).iter().all(|m| slow(r2).contains(m)), "nested straggler sets");
    for r in [r1, r2] {
        assert_eq!(models(r), models(r0), "the same fits");
        for (a, b) in r.machines.iter().zip(&r0.machines) {
            assert_eq!(a.failed, b.failed, "the same failures");
            if let (Some(x), Some(y)) = (a.compute_s, b.compute_s) {
                assert!((x - a.speed * y).abs() <= 1e-12 * x, "machine {}: {x} vs {} x {y}", a.machine, a.speed);
            }
        }
    }
    c.replay_speeds.pop();
    let e = run(&data, &c).unwrap_err().to_string();
    assert!(e.contains("2 replay speed models for 3 networks"), "{e}");
}

#[test]
fn simulated_machines_fit_on_one_thread() {
    // A machine's compute time is its fit's own thread CPU time; a multi-threaded fit would be
    // charged the whole process's CPU. The configuration refuses it.
    let data = sharded(4_000, 4, 9);
    let mut c = config(9);
    c.em.threads = 2;
    match run(&data, &c) {
        Err(ClusterError::Setting(e)) => {
            assert!(e.contains("`em.threads`") && e.contains("1 (each simulated machine fits on one thread)"), "{e}")
        }
        other => panic!("expected a setting error, got {:?}", other.map(|_| ())),
    }
}
