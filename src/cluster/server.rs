//! The server's work once every machine has reported or failed: charge the fits to the run's clock,
//! then, for every network of the run, lay out the virtual timeline, reduce the reports that arrived
//! in time (sorted by machine, so scheduling order never matters), compute the baselines and write
//! the record.

use super::clock::Clock;
use super::record::{Event, EventKind, MachineRecord, NamedModel, ReductionShare, RunRecord};
use super::schedule::{self, Timing};
use super::{ClusterConfig, ClusterError, GlobalFit, RunOutcome};
use crate::distributed::{self, Baseline, Estimate, LocalReport};
use crate::numeric::cputime::thread_cpu_seconds;
use crate::reduce::Reduction;

/// The server's work on the reports of one run (`None` for a machine that failed), once per network
/// of `config`; machine m has `rows[m]` rows and, under network i, speed factor `speeds[i][m]`. `global` adds the global
/// baseline to the records. A reduction is computed once per distinct set of machines that arrived in
/// time, so networks under which the same reports arrive share it (and its measured time).
pub(super) fn serve(
    mut reports: Vec<Option<LocalReport>>,
    speeds: &[Vec<f64>],
    rows: &[usize],
    config: &ClusterConfig,
    global: Option<&GlobalFit>,
) -> Result<RunOutcome, ClusterError> {
    let cpu0 = thread_cpu_seconds();
    let fit_cpu_seconds = reports.iter().flatten().map(|r| r.summary.cpu_seconds).sum();
    charge_clock(&mut reports, &config.clock);
    let mut reductions = Vec::new();
    let several = config.networks.len() > 1;
    let records = config
        .networks
        .iter()
        .enumerate()
        .map(|(i, network)| {
            let speeds = &speeds[i];
            let timings = schedule::timings(
                &reports,
                speeds,
                &config.clock,
                network,
                config.deadline,
                config.seed,
                &config.stream,
            );
            let reduced = match reduce_in_time(&reports, &timings, config, &mut reductions) {
                Ok(r) => r,
                Err(e) if several => return Err(ClusterError::UnderNetwork { network: i, source: Box::new(e) }),
                Err(e) => return Err(e),
            };
            let estimators = estimators(&reduced, &config.baselines, global);
            let machines = machine_records(&reports, &timings, speeds, rows, &reduced);
            let events = timeline(&timings, config.deadline, &reduced);
            Ok(run_record(&config.clock, &timings, &reduced, machines, events, estimators))
        })
        .collect::<Result<Vec<_>, ClusterError>>()?;
    Ok(RunOutcome {
        records,
        wall_seconds: 0.0,
        fit_cpu_seconds,
        server_cpu_seconds: thread_cpu_seconds() - cpu0,
        busiest_worker_seconds: 0.0,
    })
}

/// Charges every local fit to the run's clock: its CPU seconds, in the report and in the model's fit
/// summary, become `Clock::fit_seconds` (before the speed factor). Under the model clock nothing
/// measured then enters the record; under the measured clock the seconds stay as they were.
fn charge_clock(reports: &mut [Option<LocalReport>], clock: &Clock) {
    for r in reports.iter_mut().flatten() {
        r.summary.cpu_seconds = clock.fit_seconds(&r.summary, r.model.k(), r.model.d());
        if let Some(f) = r.model.fit.as_mut() {
            f.cpu_seconds = r.summary.cpu_seconds;
        }
    }
}

/// The server's reduction: the reports that arrived in time, what it made of them, when it started
/// and how long it took on the run's clock.
struct Reduced {
    /// The reports used, in machine order.
    included: Vec<LocalReport>,
    /// The reduction of `included`.
    reduction: Reduction,
    /// Virtual time the server started reducing.
    start: f64,
    /// Duration of the reduction on the run's clock.
    reduce_s: f64,
}

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

/// Reductions already made in this run: the machines reduced, the reduction and its seconds.
type Reductions = Vec<(Vec<usize>, Reduction, f64)>;

/// Starts the reduction when the schedule says (`schedule::reduce_start`) and reduces the reports
/// that arrived by then (reusing an earlier reduction of the same machines); an error when none did.
fn reduce_in_time(
    reports: &[Option<LocalReport>],
    timings: &[Option<Timing>],
    config: &ClusterConfig,
    done: &mut Reductions,
) -> Result<Reduced, ClusterError> {
    let start = schedule::reduce_start(timings, config.deadline).ok_or(ClusterError::NoReports {
        machines: reports.len(),
        failed: reports.iter().filter(|r| r.is_none()).count(),
        late: timings.iter().flatten().filter(|t| !t.included).count(),
    })?;
    let included: Vec<LocalReport> = reports
        .iter()
        .zip(timings)
        .filter(|(_, t)| t.as_ref().is_some_and(|t| t.included))
        .map(|(r, _)| r.clone().expect("a timing comes from a report"))
        .collect();
    let ids: Vec<usize> = included.iter().map(|r| r.machine).collect();
    if let Some((_, reduction, reduce_s)) = done.iter().find(|(m, _, _)| *m == ids) {
        return Ok(Reduced { included, reduction: reduction.clone(), start, reduce_s: *reduce_s });
    }
    let t0 = thread_cpu_seconds();
    let reduction = distributed::aggregate(&included, &config.reduction)?;
    let reduce_cpu = thread_cpu_seconds() - t0;
    let reduce_s = config.clock.reduction_seconds(reduce_cpu, &reduction, config.reduction.k);
    done.push((ids, reduction.clone(), reduce_s));
    Ok(Reduced { included, reduction, start, reduce_s })
}

/// The estimators of the record and the global fit's seconds: the reduced model, the baselines that
/// are K-component MoEs (the pooled mixture is not), then the global fit when given.
fn estimators(reduced: &Reduced, which: &[Baseline], global: Option<&GlobalFit>) -> (Vec<NamedModel>, Option<f64>) {
    let mut estimators = vec![NamedModel { name: "reduction".into(), model: reduced.reduction.model.clone() }];
    for (name, est) in distributed::baselines(&reduced.included, &reduced.reduction, which) {
        if let Estimate::Moe(model) = est {
            estimators.push(NamedModel { name: name.into(), model: *model });
        }
    }
    let global_s = global.as_ref().map(|g| g.seconds);
    if let Some(g) = global {
        estimators.push(NamedModel { name: "global".into(), model: g.model.clone() });
    }
    (estimators, global_s)
}

/// One record per machine, in machine order.
fn machine_records(
    reports: &[Option<LocalReport>],
    timings: &[Option<Timing>],
    speeds: &[f64],
    rows: &[usize],
    reduced: &Reduced,
) -> Vec<MachineRecord> {
    let shares = reduced.shares(reports.len());
    reports
        .iter()
        .zip(timings)
        .zip(shares)
        .enumerate()
        .map(|(m, ((r, t), share))| match (r, t) {
            (Some(r), Some(t)) => MachineRecord::reported(m, rows[m], speeds[m], r, t, share),
            _ => MachineRecord::failed(m, rows[m], speeds[m]),
        })
        .collect()
}

/// The virtual timeline. Per machine in turn: `fit-start` at 0, `fit-end` and `send` at its compute
/// time, `arrive` (`late` after the deadline) at its arrival; or `failed` at 0. Then the server:
/// `deadline` when it stopped waiting at the deadline, `reduce-start` at its start t0 and
/// `reduce-end` at t0 + reduce_s. Sorted by time, then machine (server last); the sort is stable, so
/// ties keep this order.
fn timeline(timings: &[Option<Timing>], deadline: Option<f64>, reduced: &Reduced) -> Vec<Event> {
    let mut events = Vec::new();
    for (m, t) in timings.iter().enumerate() {
        match t {
            Some(t) => events.extend([
                Event::machine(m, 0.0, EventKind::FitStart),
                Event::machine(m, t.compute, EventKind::FitEnd),
                Event::machine(m, t.compute, EventKind::Send),
                Event::machine(m, t.arrival, if t.included { EventKind::Arrive } else { EventKind::Late }),
            ]),
            None => events.push(Event::machine(m, 0.0, EventKind::Failed)),
        }
    }
    let start = reduced.start;
    if deadline == Some(start) {
        events.push(Event::server(start, EventKind::Deadline));
    }
    events.push(Event::server(start, EventKind::ReduceStart));
    events.push(Event::server(start + reduced.reduce_s, EventKind::ReduceEnd));
    events.sort_by(|a, b| {
        a.time.total_cmp(&b.time).then(a.machine.map_or(usize::MAX, |m| m).cmp(&b.machine.map_or(usize::MAX, |m| m)))
    });
    events
}

/// The run's record: the slowest included compute time `c`, the network time `a - c` to the last
/// used report's arrival `a`, the wait for the deadline `t0 - a`, the reduction from t0 to the
/// makespan `t0 + reduce_s`, the bytes of every report, and `speedup = global_s / makespan`.
fn run_record(
    clock: &Clock,
    timings: &[Option<Timing>],
    reduced: &Reduced,
    machines: Vec<MachineRecord>,
    events: Vec<Event>,
    (estimators, global_s): (Vec<NamedModel>, Option<f64>),
) -> RunRecord {
    let (start, reduce_s) = (reduced.start, reduced.reduce_s);
    let used = || timings.iter().flatten().filter(|t| t.included);
    let local_compute_max_s = used().map(|t| t.compute).fold(0.0, f64::max);
    let last_arrival = used().map(|t| t.arrival).fold(local_compute_max_s, f64::max);
    let makespan_s = start + reduce_s;
    RunRecord {
        clock: clock.name().into(),
        machines,
        events,
        local_compute_max_s,
        network_s: last_arrival - local_compute_max_s,
        wait_s: start - last_arrival,
        reduce_start_s: start,
        reduce_s,
        makespan_s,
        bytes_sent: timings.iter().flatten().map(|t| t.bytes).sum(),
        flagged_dropped: reduced.reduction.dropped,
        flagged_machines: reduced.flagged_machines(),
        reduction_init: reduced.reduction.init,
        objective_trace: reduced.reduction.objective_trace.clone(),
        mm_iterations: reduced.reduction.mm_iterations(),
        estimators,
        global_s,
        speedup: global_s.map(|g| g / makespan_s),
    }
}
