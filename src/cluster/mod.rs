//! The in-process cluster simulator (docs/simulator.md), on actix.
//!
//! Every machine is an actor holding a shard (a view into one shared data set); the local fits run on
//! a bounded worker pool; the server actor collects the reports and reduces. Time is virtual: a
//! machine's compute time is its own thread CPU time (or the model clock's cost) times its speed
//! factor, its report arrives after the network delay of its size, and the server reduces at the last
//! arrival or at its deadline. Real wall time of the simulation plays no part in the figures.

mod actors;
pub mod clock;
pub mod machines;
pub mod network;
pub mod record;
pub mod schedule;
mod server;

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use self::actors::{FitInputs, FitWorker, Machine, Server, StartFit};
use self::clock::Clock;
use self::machines::{MachineModel, Speed};
use self::network::NetworkModel;
use self::record::RunRecord;
use crate::data::sharding::ShardedData;
use crate::distributed::{self, Baseline, LocalFitError};
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
    /// The networks the run is replayed under, at least one. The machines fit once; the server's
    /// work (timeline, reduction, baselines) is done once per network, with the same fits, speeds,
    /// failures and random draws, so the records differ only by the network (common random numbers).
    pub networks: Vec<NetworkModel>,
    /// The speed model of each replay, parallel to `networks` (empty: `machines.speed` for every
    /// one). Replays that differ only in speed share the fits and failures too: a straggler sweep
    /// then differs only by its stragglers.
    pub replay_speeds: Vec<Speed>,
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
    /// No report reached the server in time.
    #[error("no machine reported in time: {failed} of {machines} machines failed{}", late_words(*late))]
    NoReports { machines: usize, failed: usize, late: usize },
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

/// Runs one simulated distributed fit of `data` (its shards are the machines) under every network of
/// `config`. `global` adds the global baseline to the records; `on_report` is called once per machine
/// message (progress).
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
    let draws = config.machines.draw(m, config.seed, &config.stream);
    let inputs =
        Arc::new(FitInputs { data: data.clone(), features, target, em: config.em.clone(), seed: config.fit_seed });
    let n = data.n();
    let supports: Vec<usize> =
        data.shards.iter().map(|r| distributed::support_count(config.support, r.len(), n)).collect();
    let finish_config = config.clone();
    // Each replay's speed factors; the failures are `draws`' (failure draws do not depend on speed).
    let speeds: Vec<Vec<f64>> = match config.replay_speeds.is_empty() {
        true => vec![draws.iter().map(|d| d.0).collect(); config.networks.len()],
        false => config
            .replay_speeds
            .iter()
            .map(|s| {
                let model = MachineModel { speed: s.clone(), ..config.machines.clone() };
                model.draw(m, config.seed, &config.stream).iter().map(|d| d.0).collect()
            })
            .collect(),
    };
    let rows: Vec<usize> = data.shards.iter().map(|r| r.len()).collect();
    let finish: actors::Finish =
        Box::new(move |reports| server::serve(reports, &speeds, &rows, &finish_config, global.as_ref()));
    let threads = config.threads;
    let busy = Arc::new(std::sync::Mutex::new(vec![0.0; threads]));
    let busy_out = busy.clone();
    let wall0 = Instant::now();
    let sys = System::new();
    let outcome = sys.block_on(async move {
        let (tx, rx) = oneshot::channel();
        let server =
            Server { reports: vec![None; m], pending: m, error: None, finish: Some(finish), done: Some(tx), on_report }
                .start();
        let slots = std::sync::atomic::AtomicUsize::new(0);
        let busy_in_pool = busy.clone();
        let pool = SyncArbiter::start(threads, move || FitWorker {
            slot: slots.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            busy: busy_in_pool.clone(),
        });
        for (id, (&(_, fails), &support)) in draws.iter().zip(&supports).enumerate() {
            let machine =
                Machine { id, fails, support, inputs: inputs.clone(), pool: pool.clone(), server: server.clone() }
                    .start();
            machine.do_send(StartFit);
        }
        drop(pool);
        let outcome =
            rx.await.unwrap_or_else(|_| Err(ClusterError::Setting("the server stopped without an answer".into())));
        System::current().stop();
        outcome
    });
    sys.run().expect("the actor system shuts down");
    let mut outcome = outcome?;
    outcome.wall_seconds = wall0.elapsed().as_secs_f64();
    outcome.busiest_worker_seconds = busy_out.lock().expect("workers have stopped").iter().copied().fold(0.0, f64::max);
    Ok(outcome)
}
