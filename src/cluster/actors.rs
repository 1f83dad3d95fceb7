//! The actors: a `Machine` per simulated machine, which holds its state across the rounds and does
//! its work on a bounded pool of `Worker` threads (as many as real cores by default, so 128
//! machines compute two at a time on a 2-core box). The server's side and the scheduler are in
//! `simulate`; the numbers come from `work` and `protocol`.

use std::sync::{Arc, Mutex};

use actix::prelude::*;

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
