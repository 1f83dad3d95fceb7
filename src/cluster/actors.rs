//! The actors: a `Machine` per simulated machine, a bounded pool of `FitWorker`s that run the local
//! fits (as many threads as real cores by default, so 128 machines fit two at a time on a 2-core
//! box), and the `Server` that collects reports and, once every machine has reported or failed, builds
//! the virtual timeline and reduces. Actors only move messages; the numbers come from `distributed`
//! and `schedule`.

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{ClusterError, RunOutcome};
use crate::data::sharding::ShardedData;
use crate::distributed::{self, LocalFitError, LocalReport};
use crate::numeric::em::EmSettings;

/// The shared, read-only inputs of a run's machines.
pub struct FitInputs {
    /// The training data, shard after shard.
    pub data: Arc<ShardedData>,
    /// Feature names.
    pub features: Vec<String>,
    /// Target name.
    pub target: String,
    /// Local EM settings.
    pub em: EmSettings,
    /// Seed of the local fits.
    pub seed: u64,
}

/// Fit shard `machine` and send the result to `reply_to`.
#[derive(Message)]
#[rtype(result = "()")]
struct FitJob {
    machine: usize,
    support: usize,
    inputs: Arc<FitInputs>,
    reply_to: Recipient<FitDone>,
}

/// The local fit's result, back at the machine.
#[derive(Message)]
#[rtype(result = "()")]
struct FitDone(Result<LocalReport, LocalFitError>);

/// The server's command to start (data and settings are already on the machines).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartFit;

/// A machine's report (its size is `schedule::report_bytes`), or a local fit that failed on bad data.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Report {
    machine: usize,
    result: Result<LocalReport, LocalFitError>,
}

/// A simulated failure: the machine never reports. Only the simulator's bookkeeping sees this message.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Failure {
    machine: usize,
}

/// A worker thread of the pool: runs one local fit at a time, single-threaded, so its thread CPU
/// time is the fit's own. It adds the CPU time of each job to its slot of `busy`.
pub struct FitWorker {
    /// This worker's slot in `busy`.
    pub slot: usize,
    /// CPU seconds spent on jobs, per worker thread.
    pub busy: Arc<std::sync::Mutex<Vec<f64>>>,
}

impl Actor for FitWorker {
    type Context = SyncContext<Self>;
}

impl Handler<FitJob> for FitWorker {
    type Result = ();

    fn handle(&mut self, job: FitJob, _: &mut SyncContext<Self>) {
        let t0 = crate::numeric::cputime::thread_cpu_seconds();
        let d = &job.inputs;
        // A panic must not kill the worker silently (the server would wait for ever): it becomes
        // this machine's error.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            distributed::local_fit(
                job.machine,
                d.data.shard_x(job.machine),
                d.data.shard_y(job.machine),
                &d.features,
                &d.target,
                &d.em,
                job.support,
                d.seed,
            )
        }))
        .unwrap_or_else(|panic| {
            let what =
                panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
            Err(LocalFitError {
                machine: job.machine,
                rows: d.data.shard_y(job.machine).len(),
                source: crate::numeric::em::EmError::Internal(what.unwrap_or_else(|| "unknown panic".into())),
            })
        });
        let spent = crate::numeric::cputime::thread_cpu_seconds() - t0;
        self.busy.lock().expect("no worker panics while holding the lock")[self.slot] += spent;
        job.reply_to.do_send(FitDone(result));
    }
}

/// One simulated machine: its shard (an index into the shared data), its fate, and where to send.
pub struct Machine {
    /// Index of the machine and of its shard.
    pub id: usize,
    /// Whether it fails before reporting.
    pub fails: bool,
    /// Rows of the supporting sample it sends.
    pub support: usize,
    /// Shared inputs.
    pub inputs: Arc<FitInputs>,
    /// The worker pool.
    pub pool: Addr<FitWorker>,
    /// The server.
    pub server: Addr<Server>,
}

impl Actor for Machine {
    type Context = Context<Self>;
}

impl Handler<StartFit> for Machine {
    type Result = ();

    fn handle(&mut self, _: StartFit, ctx: &mut Context<Self>) {
        if self.fails {
            self.server.do_send(Failure { machine: self.id });
            ctx.stop();
            return;
        }
        self.pool.do_send(FitJob {
            machine: self.id,
            support: self.support,
            inputs: self.inputs.clone(),
            reply_to: ctx.address().recipient(),
        });
    }
}

impl Handler<FitDone> for Machine {
    type Result = ();

    fn handle(&mut self, done: FitDone, ctx: &mut Context<Self>) {
        self.server.do_send(Report { machine: self.id, result: done.0 });
        ctx.stop();
    }
}

/// What the server does once every machine has reported or failed (for every network of the run).
pub type Finish = Box<dyn FnOnce(Vec<Option<LocalReport>>) -> Result<RunOutcome, ClusterError>>;

/// The server: collects one message per machine, then hands the reports to `finish` and the outcome
/// to the driver. `on_report` is called for every message (progress display).
pub struct Server {
    /// Reports so far, by machine (`None`: not yet, or failed).
    pub reports: Vec<Option<LocalReport>>,
    /// Messages still expected.
    pub pending: usize,
    /// First local-fit error, if any (bad data on a shard ends the run).
    pub error: Option<LocalFitError>,
    /// The server's work once all messages are in.
    pub finish: Option<Finish>,
    /// Where the outcome goes.
    pub done: Option<oneshot::Sender<Result<RunOutcome, ClusterError>>>,
    /// Progress callback.
    pub on_report: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Actor for Server {
    type Context = Context<Self>;
}

impl Server {
    fn received(&mut self, ctx: &mut Context<Self>) {
        if let Some(f) = &self.on_report {
            f();
        }
        self.pending -= 1;
        if self.pending > 0 {
            return;
        }
        let outcome = match self.error.take() {
            Some(e) => Err(ClusterError::LocalFit(e)),
            None => (self.finish.take().expect("finish runs once"))(std::mem::take(&mut self.reports)),
        };
        if let Some(tx) = self.done.take() {
            let _ = tx.send(outcome);
        }
        ctx.stop();
    }
}

impl Handler<Report> for Server {
    type Result = ();

    fn handle(&mut self, msg: Report, ctx: &mut Context<Self>) {
        match msg.result {
            Ok(r) => self.reports[msg.machine] = Some(r),
            Err(e) => {
                if self.error.as_ref().is_none_or(|old| e.machine < old.machine) {
                    self.error = Some(e);
                }
            }
        }
        self.received(ctx);
    }
}

impl Handler<Failure> for Server {
    type Result = ();

    fn handle(&mut self, msg: Failure, ctx: &mut Context<Self>) {
        debug_assert!(self.reports[msg.machine].is_none());
        self.received(ctx);
    }
}
