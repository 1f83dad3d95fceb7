//! The record of one replay: every machine's part, every round's times summed into the run's,
//! and the reduction's facts when the protocol reduced.

use super::protocol::Reduced;
use super::record::{MachineRecord, ReductionShare, RunRecord};
use super::simulate::{MachineFacts, Replay, Replayed};

impl Reduced {
    /// Machines (not indices into `included`) that the screening flagged.
    fn flagged_machines(&self) -> Vec<usize> {
        self.reduction.flagged.iter().map(|&i| self.included[i].machine).collect()
    }

    /// Every machine's share of the reduction, indexed by machine (the default for machines whose
    /// report was not used). `lambda_m = N_m / sum N_m'` over the machines the reduced model kept:
    /// the included ones, less the flagged ones when they were dropped.
    fn shares(&self, machines: usize) -> Vec<ReductionShare> {
        let r = &self.reduction;
        let kept = |i: usize| !(r.dropped && r.flagged.contains(&i));
        let kept_rows: usize = self.included.iter().enumerate().filter(|(i, _)| kept(*i)).map(|(_, x)| x.n).sum();
        let mut shares = vec![ReductionShare::default(); machines];
        for (i, report) in self.included.iter().enumerate() {
            shares[report.machine] = ReductionShare {
                lambda: kept(i).then(|| report.n as f64 / kept_rows as f64),
                outlier_score: r.scores.get(i).copied(),
                flagged: r.flagged.contains(&i),
            };
        }
        shares
    }
}

/// The record of a replay on clock `clock` of machines with `rows` rows. The run's times sum the
/// rounds': `local_compute_max_s + network_s + wait_s + reduce_s = makespan_s`.
pub(super) fn record(replayed: Replayed, replay: &Replay, rows: &[usize], clock: &str) -> RunRecord {
    let Replayed { events, rounds, machines, estimators, reduced, bytes_sent, converged, stopped, .. } = replayed;
    let last_round = rounds.last().expect("a finished protocol has closed a round");
    let shares = reduced.as_ref().map_or_else(|| vec![ReductionShare::default(); rows.len()], |r| r.shares(rows.len()));
    let machines = machines
        .into_iter()
        .zip(shares)
        .enumerate()
        .map(|(m, (f, share))| machine_record(m, rows[m], replay.speeds[m], f, share, last_round.round))
        .collect();
    let sum = |f: fn(&super::record::RoundRecord) -> f64| rounds.iter().map(f).sum::<f64>();
    RunRecord {
        clock: clock.into(),
        protocol: replay.protocol.name.clone(),
        protocol_kind: replay.protocol.kind.name().into(),
        machines,
        events,
        local_compute_max_s: sum(|r| r.compute_s),
        network_s: sum(|r| r.network_s),
        wait_s: sum(|r| r.wait_s),
        reduce_start_s: last_round.step_start_s,
        reduce_s: sum(|r| r.step_s),
        makespan_s: last_round.end_s,
        bytes_sent,
        flagged_dropped: reduced.as_ref().is_some_and(|r| r.reduction.dropped),
        flagged_machines: reduced.as_ref().map_or_else(Vec::new, Reduced::flagged_machines),
        reduction_init: reduced.as_ref().map(|r| r.reduction.init),
        objective_trace: reduced.as_ref().map_or_else(Vec::new, |r| r.reduction.objective_trace.clone()),
        mm_iterations: reduced.as_ref().map_or(0, |r| r.reduction.mm_iterations()),
        rounds,
        converged,
        stopped,
        estimators,
        global_s: None,
        speedup: None,
    }
}

/// Machine `m`'s record: `facts` of its rounds and its `share` of the reduction. A machine that
/// failed in round 1 has every time empty.
fn machine_record(
    machine: usize,
    rows: usize,
    speed: f64,
    f: MachineFacts,
    share: ReductionShare,
    last_round: usize,
) -> MachineRecord {
    let answered = f.arrival.is_some();
    let summary = f.report.as_ref().map(|r| &r.summary);
    MachineRecord {
        machine,
        rows,
        speed,
        failed: f.failed_in.is_some(),
        failed_round: f.failed_in,
        compute_s: answered.then_some(f.compute),
        network_s: answered.then_some(f.network),
        arrival_s: f.arrival,
        attempts: answered.then_some(f.attempts),
        bytes: answered.then_some(f.bytes),
        included: f.used_in == Some(last_round),
        lambda: share.lambda,
        outlier_score: share.outlier_score,
        flagged: share.flagged,
        iterations: summary.map(|s| s.iterations),
        total_iterations: summary.map(|s| s.total_iterations),
        converged: summary.map(|s| s.converged),
        em_trace: f.report.as_ref().map(|r| r.trace.clone()),
        model: f.report.map(|r| r.model),
    }
}
