//! The in-process cluster simulator (docs/simulator.md), on actix.
//!
//! Every machine is an actor holding a shard (a view into one shared data set) and its state across
//! the rounds of a protocol; its work runs on a bounded worker pool. One scheduler (`events`,
//! `simulate`) advances virtual time from event to event: a machine's work takes its own thread CPU
//! time (or the model clock's cost) times its speed factor, every message arrives after the network
//! delay of its size, and the server (`protocol`) steps when a round's answers are in or its deadline
//! has passed. Real wall time of the simulation plays no part in the figures.

mod actors;
pub mod clock;
mod events;
pub mod machines;
pub mod network;
pub mod protocol;
pub mod record;
mod server;
mod simulate;
pub mod work;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix::prelude::*;

use self::actors::{Compute, Machine, Worker};
use self::clock::Clock;
use self::machines::{Failures, MachineModel, Speed};
use self::network::NetworkModel;
use self::protocol::{Protocol, StepInputs};
use self::record::{NamedModel, RunRecord};
use self::simulate::{FirstRound, Replay, Shared};
use self::work::{Computed, MachineInputs, MachineState, Work};
use crate::data::sharding::ShardedData;
use crate::distributed::{self, Baseline, LocalFitError};
use crate::numeric::cputime::thread_cpu_seconds;
use crate::numeric::em::EmSettings;
use crate::numeric::model::Moe;
use crate::numeric::range::{MAX_THREADS, Range, RangeError, at_least, within};
use crate::reduce::{ReductionError, ReductionSettings};

/// Everything that defines a simulated run besides the data.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// Local EM settings (K, starts, tolerance).
    pub em: EmSettings,
    /// The server's reduction settings.
    pub reduction: ReductionSettings,
    /// Supporting-sample size S (machine m sends about S * N_m / N rows).
    pub support: usize,
    /// The networks the run is replayed under, at least one. The machines do their first round's
    /// work (local fits, moments, samples) once; each replay runs the protocol on the scheduler with
    /// those answers, the same speeds, failures and random draws, so the records differ only by the
    /// network (common random numbers).
    pub networks: Vec<NetworkModel>,
    /// The speed model of each replay, parallel to `networks` (empty: `machines.speed` for every
    /// one). Replays that differ only in speed share the fits and failures too: a straggler sweep
    /// then differs only by its stragglers.
    pub replay_speeds: Vec<Speed>,
    /// The protocol of each replay, parallel to `networks` (empty: one-shot for every one).
    pub protocols: Vec<Protocol>,
    /// Machine speeds and failures.
    pub machines: MachineModel,
    /// The server stops waiting at this virtual time (seconds), if set.
    pub deadline: Option<f64>,
    /// Measured or model clock.
    pub clock: Clock,
    /// Worker threads for the local fits.
    pub threads: usize,
    /// Seed of every random draw of the run.
    pub seed: u64,
    /// Stream path of this run (e.g. cell and repetition), so that runs draw independently.
    pub stream: Vec<u64>,
    /// Baselines the server computes after the reduction (not part of the makespan).
    pub baselines: Vec<Baseline>,
    /// Seed of the local fits: machine m's EM starts use `distributed::machine_seed(fit_seed, m)`.
    /// Keeping it the same across cells gives every M common random numbers.
    pub fit_seed: u64,
}

impl ClusterConfig {
    /// A configuration with an ideal network, equal machines, the measured clock and one worker per
    /// real core.
    pub fn new(em: EmSettings, reduction: ReductionSettings, support: usize, seed: u64) -> ClusterConfig {
        ClusterConfig {
            em,
            reduction,
            support,
            networks: vec![NetworkModel::default()],
            replay_speeds: Vec::new(),
            protocols: Vec::new(),
            machines: MachineModel::default(),
            deadline: None,
            clock: Clock::Measured,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            seed,
            stream: Vec::new(),
            baselines: Baseline::ALL.to_vec(),
            fit_seed: seed,
        }
    }

    /// Checks every setting of the cluster (EM and reduction settings are checked where they are used).
    pub fn validate(&self) -> Result<(), ClusterError> {
        let bad = |name: &'static str| move |e: RangeError| ClusterError::Setting(format!("`{name}`: {e}"));
        within(self.threads, 1, MAX_THREADS).map_err(bad("threads"))?;
        // A machine's compute time is its fit's own thread CPU time: a fit on several threads
        // would be charged the whole process's CPU, the other machines' work included.
        within(self.em.threads, 1, 1).map_err(|mut e| {
            e.expected = "1 (each simulated machine fits on one thread)".into();
            bad("em.threads")(e)
        })?;
        at_least(self.support, 1).map_err(bad("support"))?;
        if let Some(d) = self.deadline {
            Range::POSITIVE_SECONDS.check(d).map_err(bad("deadline"))?;
        }
        if self.networks.is_empty() {
            return Err(ClusterError::Setting("no network to run on: give at least one".into()));
        }
        for net in &self.networks {
            net.validate().map_err(|e| ClusterError::Setting(format!("network: {e}")))?;
        }
        self.machines.validate().map_err(|e| ClusterError::Setting(format!("machines: {e}")))?;
        if !self.replay_speeds.is_empty() && self.replay_speeds.len() != self.networks.len() {
            return Err(ClusterError::Setting(format!(
                "{} replay speed models for {} networks: give one per network, or none",
                self.replay_speeds.len(),
                self.networks.len()
            )));
        }
        if !self.protocols.is_empty() && self.protocols.len() != self.networks.len() {
            return Err(ClusterError::Setting(format!(
                "{} protocols for {} networks: give one per network, or none",
                self.protocols.len(),
                self.networks.len()
            )));
        }
        for speed in &self.replay_speeds {
            let model = MachineModel { speed: speed.clone(), ..self.machines.clone() };
            model.validate().map_err(|e| ClusterError::Setting(format!("replay speed: {e}")))?;
        }
        if let Clock::Model(c) = &self.clock {
            c.validate().map_err(|e| ClusterError::Setting(format!("clock: {e}")))?;
        }
        Ok(())
    }
}

/// The global baseline, fitted outside the cluster (once per data set and repetition).
#[derive(Debug, Clone)]
pub struct GlobalFit {
    /// EM on all training rows.
    pub model: Moe,
    /// Its time on the run's clock.
    pub seconds: f64,
}

/// A finished run: the records, one per network, and the real-time facts about the simulation itself.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The reproducible records, in the order of `ClusterConfig::networks`.
    pub records: Vec<RunRecord>,
    /// Wall seconds of the whole simulated run on this box.
    pub wall_seconds: f64,
    /// Measured CPU seconds of all local fits.
    pub fit_cpu_seconds: f64,
    /// Measured CPU seconds of the server's work (timelines, reductions, baselines) for every network.
    pub server_cpu_seconds: f64,
    /// Measured CPU seconds of the busiest worker thread (its fits, back to back).
    pub busiest_worker_seconds: f64,
}

impl RunRecord {
    /// Adds the global baseline: its model, its time and the speedup `global_s / makespan_s`.
    pub fn attach_global(&mut self, g: &GlobalFit) {
        self.global_s = Some(g.seconds);
        self.speedup = Some(g.seconds / self.makespan_s);
        self.estimators.push(NamedModel { name: "global".into(), model: g.model.clone() });
    }
}

/// ` in round r`, after the first.
fn round_words(round: usize) -> String {
    if round > 1 { format!(" in round {round}") } else { String::new() }
}

/// ` and N arrived after the deadline`, when N > 0.
fn late_words(late: usize) -> String {
    if late > 0 { format!(" and {late} arrived after the deadline") } else { String::new() }
}

/// Why a run could not finish.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClusterError {
    /// A cluster setting is out of range.
    #[error("{0}")]
    Setting(String),
    /// No answer reached the server in time.
    #[error(
        "no machine reported in time{}: {failed} of {machines} machines failed{}",
        round_words(*round),
        late_words(*late)
    )]
    NoReports { machines: usize, failed: usize, late: usize, round: usize },
    /// A local fit failed on its data (e.g. a shard whose column is constant).
    #[error(transparent)]
    LocalFit(#[from] LocalFitError),
    /// The reduction failed.
    #[error(transparent)]
    Reduction(#[from] ReductionError),
    /// With several networks, what failed under one of them (its index in `ClusterConfig::networks`).
    #[error("{source}")]
    UnderNetwork { network: usize, source: Box<ClusterError> },
}

/// Runs one simulated distributed fit of `data` (its shards are the machines) under every network
/// (and protocol) of `config`. `global` adds the global baseline to the records; `on_report` is
/// called once per machine as its first-round work is done (progress).
pub fn run(
    data: Arc<ShardedData>,
    features: Vec<String>,
    target: String,
    config: &ClusterConfig,
    global: Option<GlobalFit>,
    on_report: Option<Arc<dyn Fn() + Send + Sync>>,
) -> Result<RunOutcome, ClusterError> {
    config.validate()?;
    let m = data.shards.len();
    if m == 0 {
        return Err(ClusterError::Setting("the data gives no machine any rows: there is nothing to fit".into()));
    }
    let n = data.n();
    let rows: Vec<usize> = data.shards.iter().map(|r| r.len()).collect();
    let inputs = Arc::new(MachineInputs {
        support: rows.iter().map(|&r| distributed::support_count(config.support, r, n)).collect(),
        data,
        features,
        target,
        em: config.em.clone(),
        seed: config.fit_seed,
        clock: config.clock.clone(),
    });
    let failures = Failures::new(&config.machines, m, config.seed, &config.stream);
    let speeds: Vec<Vec<f64>> = match config.replay_speeds.is_empty() {
        true => vec![config.machines.speeds(m, config.seed, &config.stream); config.networks.len()],
        false => config
            .replay_speeds
            .iter()
            .map(|s| {
                MachineModel { speed: s.clone(), ..config.machines.clone() }.speeds(m, config.seed, &config.stream)
            })
            .collect(),
    };
    let protocols = match config.protocols.is_empty() {
        true => vec![Protocol::default(); config.networks.len()],
        false => config.protocols.clone(),
    };
    let busy = Arc::new(Mutex::new(vec![0.0; config.threads]));
    let busy_in_pool = busy.clone();
    let wall0 = Instant::now();
    let sys = System::new();
    let config = config.clone();
    let outcome = sys.block_on(async move {
        // Whatever the outcome, the system stops, or `sys.run` below would wait for ever.
        let outcome = replays(config, inputs, rows, failures, speeds, protocols, global, on_report, busy_in_pool).await;
        System::current().stop();
        outcome
    });
    sys.run().expect("the actor system shuts down");
    let mut outcome = outcome?;
    outcome.wall_seconds = wall0.elapsed().as_secs_f64();
    outcome.busiest_worker_seconds = busy.lock().expect("workers have stopped").iter().copied().fold(0.0, f64::max);
    Ok(outcome)
}

/// The run inside the actor system: the worker pool, the first round's work once, then every
/// replay on the scheduler.
#[allow(clippy::too_many_arguments)]
async fn replays(
    config: ClusterConfig,
    inputs: Arc<MachineInputs>,
    rows: Vec<usize>,
    failures: Failures,
    speeds: Vec<Vec<f64>>,
    protocols: Vec<Protocol>,
    global: Option<GlobalFit>,
    on_report: Option<Arc<dyn Fn() + Send + Sync>>,
    busy: Arc<Mutex<Vec<f64>>>,
) -> Result<RunOutcome, ClusterError> {
    let (m, threads, d) = (rows.len(), config.threads, inputs.data.x.ncols());
    let slots = std::sync::atomic::AtomicUsize::new(0);
    let pool = SyncArbiter::start(threads, move || Worker {
        slot: slots.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        busy: busy.clone(),
    });
    let spawn = || -> Vec<Addr<Machine>> {
        (0..m)
            .map(|id| {
                let state = Arc::new(Mutex::new(MachineState::new(id, inputs.clone())));
                Machine { id, rows: rows[id], state, pool: pool.clone() }.start()
            })
            .collect()
    };
    let mut round_one = failures.clone();
    let running: Vec<bool> = (0..m).map(|i| !round_one.in_round(i, 1)).collect();
    let mut done: Vec<(Work, Vec<Option<Computed>>)> = Vec::new();
    let mut fit_cpu_seconds = 0.0;
    let cpu0 = thread_cpu_seconds();
    let cx = Arc::new(StepInputs {
        em: config.em.clone(),
        reduction: config.reduction.clone(),
        clock: config.clock.clone(),
        features: inputs.features.clone(),
        target: inputs.target.clone(),
        rows: rows.clone(),
        d,
        fit_seed: config.fit_seed,
        baselines: config.baselines.clone(),
    });
    let shared =
        Shared { cx, deadline: config.deadline, seed: config.seed, stream: &config.stream, failures: &failures };
    let reductions = Rc::new(RefCell::new(Vec::new()));
    let mut records = Vec::with_capacity(protocols.len());
    let several = protocols.len() > 1;
    for (i, protocol) in protocols.iter().enumerate() {
        let works = protocol.kind.first_round();
        for work in &works {
            if done.iter().all(|(w, _)| !same_work(w, work)) {
                // Progress counts machines, once: on the run's first piece of work.
                let progress = if done.is_empty() { on_report.as_deref() } else { None };
                let answers = first_round(&spawn(), &running, work, progress).await?;
                fit_cpu_seconds += answers.iter().flatten().map(|c| c.cpu).sum::<f64>();
                done.push((work.clone(), answers));
            }
        }
        let first: FirstRound = (0..m)
            .map(|i| {
                let parts = works.iter().map(|w| {
                    let (_, answers) = done.iter().find(|(d, _)| same_work(d, w)).expect("computed above");
                    answers[i].as_ref()
                });
                let parts: Option<Vec<&Computed>> = parts.collect();
                parts.map(|p| (p.iter().map(|c| c.answer.clone()).collect(), p.iter().map(|c| c.seconds).sum()))
            })
            .collect();
        let replay = Replay { network: &config.networks[i], speeds: &speeds[i], protocol };
        let replayed = simulate::replay(&replay, &shared, &spawn(), &first, &reductions)
            .await
            .map_err(|e| if several { ClusterError::UnderNetwork { network: i, source: Box::new(e) } } else { e })?;
        fit_cpu_seconds += replayed.machine_cpu;
        let mut record = server::record(replayed, &replay, &rows, config.clock.name());
        if let Some(g) = &global {
            record.attach_global(g);
        }
        records.push(record);
    }
    Ok(RunOutcome {
        records,
        wall_seconds: 0.0,
        fit_cpu_seconds,
        server_cpu_seconds: thread_cpu_seconds() - cpu0,
        busiest_worker_seconds: 0.0,
    })
}

/// Whether two pieces of first-round work are the same (then their answers are shared).
fn same_work(a: &Work, b: &Work) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Every running machine's answer to a piece of first-round work, computed on the pool in parallel
/// (`None` for the machines that fail in round 1). A machine whose work fails ends the run with the
/// error of the lowest such machine.
async fn first_round(
    machines: &[Addr<Machine>],
    running: &[bool],
    work: &Work,
    on_report: Option<&(dyn Fn() + Send + Sync)>,
) -> Result<Vec<Option<Computed>>, ClusterError> {
    let asked: Vec<_> =
        machines.iter().zip(running).map(|(a, &run)| run.then(|| a.send(Compute(work.clone())))).collect();
    let mut answers = Vec::with_capacity(asked.len());
    let mut error: Option<LocalFitError> = None;
    for request in asked {
        if let Some(f) = on_report {
            f();
        }
        let Some(request) = request else {
            answers.push(None);
            continue;
        };
        let result = request.await.map_err(|_| ClusterError::Setting("a machine actor stopped".into()))?;
        match result {
            Ok(c) => answers.push(Some(c)),
            Err(e) => {
                error.get_or_insert(e);
                answers.push(None);
            }
        }
    }
    match error {
        Some(e) => Err(ClusterError::LocalFit(e)),
        None => Ok(answers),
    }
}
