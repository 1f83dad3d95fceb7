//! The actors: a `Machine` per simulated machine, which holds its state across the rounds and does
//! its work on a bounded pool of `Worker` threads (as many as real cores by default, so 128
//! machines compute two at a time on a 2-core box), and a `ServerActor` per replay, which steps the
//! protocol on each closed round. The scheduler that sends them their messages in virtual time is
//! `simulate`; the numbers come from `work` and `protocol`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use actix::prelude::*;

use super::ClusterError;
use super::protocol::{Answers, Reduced, Reductions, Server, Step, StepInputs};
use super::record::NamedModel;
use super::work::{Computed, MachineState, Work};
use crate::distributed::LocalFitError;
use crate::numeric::cputime::thread_cpu_seconds;
use crate::numeric::em::EmError;

/// Ask a machine to do `Work`.
#[derive(Message)]
#[rtype(result = "Result<Computed, LocalFitError>")]
pub struct Compute(pub Work);

/// A piece of a machine's work for the pool.
#[derive(Message)]
#[rtype(result = "Result<Computed, LocalFitError>")]
struct Job {
    state: Arc<Mutex<MachineState>>,
    machine: usize,
    rows: usize,
    work: Work,
}

/// A worker thread of the pool: runs one machine's work at a time, single-threaded, so its thread
/// CPU time is that work's own. It adds the CPU time of each job to its slot of `busy`.
pub struct Worker {
    /// This worker's slot in `busy`.
    pub slot: usize,
    /// CPU seconds spent on jobs, per worker thread.
    pub busy: Arc<Mutex<Vec<f64>>>,
}

impl Actor for Worker {
    type Context = SyncContext<Self>;
}

impl Handler<Job> for Worker {
    type Result = Result<Computed, LocalFitError>;

    fn handle(&mut self, job: Job, _: &mut SyncContext<Self>) -> Self::Result {
        let t0 = thread_cpu_seconds();
        // A panic must not kill the worker silently (the scheduler would wait for ever): it becomes
        // this machine's error.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            job.state.lock().expect("a machine's state is not poisoned").answer(&job.work)
        }))
        .unwrap_or_else(|panic| {
            let what =
                panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
            Err(LocalFitError {
                machine: job.machine,
                rows: job.rows,
                source: EmError::Internal(what.unwrap_or_else(|| "unknown panic".into())),
            })
        });
        self.busy.lock().expect("no worker panics while holding the lock")[self.slot] += thread_cpu_seconds() - t0;
        result
    }
}

/// One simulated machine: its index, its rows, its state and the pool it computes on. It handles
/// one `Compute` at a time, in the order they were sent.
pub struct Machine {
    /// Index of the machine and of its shard.
    pub id: usize,
    /// Rows of its shard.
    pub rows: usize,
    /// Its state across rounds.
    pub state: Arc<Mutex<MachineState>>,
    /// The worker pool.
    pub pool: Addr<Worker>,
}

impl Actor for Machine {
    type Context = Context<Self>;
}

impl Handler<Compute> for Machine {
    type Result = AtomicResponse<Self, Result<Computed, LocalFitError>>;

    fn handle(&mut self, Compute(work): Compute, _: &mut Context<Self>) -> Self::Result {
        let job = self.pool.send(Job { state: self.state.clone(), machine: self.id, rows: self.rows, work });
        let (machine, rows) = (self.id, self.rows);
        AtomicResponse::new(Box::pin(
            async move {
                job.await.unwrap_or_else(|_| {
                    Err(LocalFitError { machine, rows, source: EmError::Internal("the worker pool stopped".into()) })
                })
            }
            .into_actor(self),
        ))
    }
}

/// Ask the server to step on the answers of a closed round (machine, its answer's parts), in machine
/// order.
#[derive(Message)]
#[rtype(result = "Result<Step, ClusterError>")]
pub(super) struct Close(pub Answers);

/// Ask the server for the protocol's outcome once it is done.
#[derive(Message)]
#[rtype(result = "Result<Finished, ClusterError>")]
pub(super) struct Finish;

/// A finished protocol: its estimators (its model first), the reduction it made if any, and whether it
/// stopped on its tolerance.
pub(super) struct Finished {
    pub estimators: Vec<NamedModel>,
    pub reduced: Option<Reduced>,
    pub converged: Option<bool>,
}

/// The server of one replay: the protocol's state (`protocol::Server`) and what its steps read. Its
/// handlers are the protocol's server side; the scheduler (`simulate`) sends it each closed round.
/// Replays that reduce the same machines' reports share one reduction (`reductions`).
pub(super) struct ServerActor {
    /// The protocol's state; taken by `Finish`.
    pub server: Option<Server>,
    /// The run's settings and shard sizes.
    pub inputs: Arc<StepInputs>,
    /// Reductions made so far in the run, shared by its replays.
    pub reductions: Rc<RefCell<Reductions>>,
}

impl Actor for ServerActor {
    type Context = Context<Self>;
}

impl Handler<Close> for ServerActor {
    type Result = Result<Step, ClusterError>;

    fn handle(&mut self, Close(answers): Close, _: &mut Context<Self>) -> Self::Result {
        let server = self.server.as_mut().expect("a finished server is not asked to step");
        server.step(answers, &self.inputs, &mut self.reductions.borrow_mut())
    }
}

impl Handler<Finish> for ServerActor {
    type Result = Result<Finished, ClusterError>;

    fn handle(&mut self, _: Finish, _: &mut Context<Self>) -> Self::Result {
        let server = self.server.take().expect("a server finishes once");
        let converged = server.converged();
        let (estimators, reduced) = server.finish(&self.inputs)?;
        Ok(Finished { estimators, reduced, converged })
    }
}
