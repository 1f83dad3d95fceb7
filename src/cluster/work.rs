//! The machine side of every protocol: what a simulated machine can be asked to do, what it
//! answers, how many bytes each message carries, and what the work costs on the run's clock. The
//! numbers come from the numeric core (`distributed::local_fit`, `em::over_machines`,
//! `em::fedavg`); this module only says which piece a request runs and what it costs.
//!
//! Message sizes count 8 bytes per number carried (and 8 for the sender's id on every answer, 1
//! per flag). A model of K experts on d features has `(K-1)(d+1) + K(d+1) + K` numbers (gate rows
//! 1..K-1, experts, variances). Model-clock costs, in the constants of `clock::CostModel`
//! (`e(R, K) = R K (em_per_component + em_per_coefficient_pair (d+1)^2)`, the cost of one EM pass
//! over R rows):
//! - a local fit: its EM passes, `Clock::fit_seconds`;
//! - the moments of its R rows: `e(R, 1)` (one pass of (d+1)^2 co-moments);
//! - its share of the supporting sample: free (a copy);
//! - an exact-EM request: `e(R, K)` (the E-step and its statistics), plus `R em_per_component`
//!   once for standardising its rows on the first request;
//! - a federated-averaging request of `L` local iterations: `e(R L, K)`, plus `R em_per_component`
//!   once for standardising its rows.

use std::sync::Arc;

use ndarray::{Array1, Array2, Axis};

use super::clock::{Clock, CostModel};
use crate::data::sharding::ShardedData;
use crate::distributed::{self, LocalFitError, LocalReport};
use crate::numeric::cputime::thread_cpu_seconds;
use crate::numeric::em::fedavg::{Client, FedAvgSettings};
use crate::numeric::em::over_machines::{Moments, Request, Shard, ShardStats};
use crate::numeric::em::{EmError, EmSettings, Scaling};
use crate::numeric::model::Moe;

/// A request to a machine. The first round's work (`Fit`, `Moments`, `Sample`) needs no message:
/// the data and the settings are on the machines before the run starts.
#[derive(Debug, Clone)]
pub enum Work {
    /// Its local EM fit and its share of the supporting sample (covariates only).
    Fit,
    /// The moments `(n, mean, co-moments)` of its rows `(x, y)`.
    Moments,
    /// Its share of the supporting sample with the targets: rows the server fits a start on.
    Sample,
    /// Exact EM: the E-step's sufficient statistics at the request's parameters. The first request
    /// carries the union's standardisation.
    Em { scaling: Option<Arc<Scaling>>, request: Arc<Request> },
    /// Federated averaging: local EM iterations from the model sent.
    FedAvg { model: Arc<Moe>, settings: Arc<FedAvgSettings> },
}

/// A machine's answer to one piece of work.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Its local fit and supporting rows.
    Fit(LocalReport),
    /// The moments of its rows.
    Moments(Moments),
    /// Supporting rows with their targets.
    Sample { x: Array2<f64>, y: Array1<f64> },
    /// The sufficient statistics of an exact-EM request.
    Em(ShardStats),
    /// The model its local iterations reached and the log-likelihood of the model sent on its rows.
    FedAvg { model: Moe, loglik: f64 },
}

/// Numbers in a K-expert model on d features.
fn model_numbers(k: usize, d: usize) -> u64 {
    let (k, p) = (k as u64, d as u64 + 1);
    (k - 1) * p + k * p + k
}

impl Work {
    /// Bytes of the request message for a K-expert model on d features (0 for the first round's
    /// work, which is not sent): the parameters and the verdict flag (and, on the first exact-EM
    /// request, the means and standard deviations of the d features and of y), or the model.
    pub fn bytes(&self, k: usize, d: usize) -> u64 {
        match self {
            Work::Fit | Work::Moments | Work::Sample => 0,
            Work::Em { scaling, .. } => {
                8 * model_numbers(k, d) + 1 + scaling.as_ref().map_or(0, |_| 8 * 2 * (d as u64 + 1))
            }
            Work::FedAvg { .. } => 8 * model_numbers(k, d),
        }
    }
}

impl Answer {
    /// Bytes of a message carrying `parts` (the first round's answer may carry several): 8 for the
    /// machine's id, then each part's.
    pub fn message_bytes(parts: &[Answer]) -> u64 {
        8 + parts.iter().map(Answer::bytes).sum::<u64>()
    }

    /// Bytes of the answer's content.
    fn bytes(&self) -> u64 {
        match self {
            Answer::Fit(report) => report_bytes(report),
            Answer::Moments(m) => 8 * (1 + m.mean.len() + m.comoment.len()) as u64,
            Answer::Sample { x, y } => 8 * (x.len() + y.len()) as u64,
            Answer::Em(s) => {
                let numbers = 2 + s.experts.grams.len() + s.experts.rhs.len() + s.experts.nk.len() + s.y2.len();
                8 * (numbers + s.gradient.len() + s.neg_hessian.len() + 3) as u64
            }
            Answer::FedAvg { model, .. } => 8 * (model_numbers(model.k(), model.d()) + 1),
        }
    }
}

/// Bytes of a report, besides the machine's id: 8 per number for the model, N_m, CPU time and
/// iteration count, the support rows (d numbers each), and 1 for the convergence flag.
fn report_bytes(report: &LocalReport) -> u64 {
    let support = report.support.len() as u64;
    8 * (model_numbers(report.model.k(), report.model.d()) + 3 + support) + 1
}

/// The read-only inputs of a run's machines.
pub struct MachineInputs {
    /// The training data, shard after shard.
    pub data: Arc<ShardedData>,
    /// Feature names.
    pub features: Vec<String>,
    /// Target name.
    pub target: String,
    /// Local EM settings.
    pub em: EmSettings,
    /// Seed of the local fits and of the supporting samples.
    pub seed: u64,
    /// Each machine's share of the supporting sample, in rows.
    pub support: Vec<usize>,
    /// The run's clock.
    pub clock: Clock,
}

/// A piece of work done: the answer, its seconds on the run's clock (before the machine's speed
/// factor) and the thread CPU seconds it really took.
#[derive(Debug, Clone)]
pub struct Computed {
    /// The answer.
    pub answer: Answer,
    /// Seconds on the run's clock.
    pub seconds: f64,
    /// Measured thread CPU seconds.
    pub cpu: f64,
}

/// One machine's state across the rounds of a protocol: its rows standardised for exact EM, or its
/// federated-averaging client, once it has been asked.
pub struct MachineState {
    id: usize,
    inputs: Arc<MachineInputs>,
    shard: Option<Shard>,
    client: Option<Client>,
}

impl MachineState {
    /// Machine `id` before its first request.
    pub fn new(id: usize, inputs: Arc<MachineInputs>) -> MachineState {
        MachineState { id, inputs, shard: None, client: None }
    }

    /// Does `work` on the machine's rows, on the calling thread.
    pub fn answer(&mut self, work: &Work) -> Result<Computed, LocalFitError> {
        let t0 = thread_cpu_seconds();
        let (answer, passes) = self.compute(work)?;
        // A local fit's own EM timing, as in its summary (the supporting rows' copy is left out).
        let cpu = match &answer {
            Answer::Fit(r) => r.summary.cpu_seconds,
            _ => thread_cpu_seconds() - t0,
        };
        let seconds = match (&answer, &self.inputs.clock) {
            (Answer::Fit(r), clock) => clock.fit_seconds(&r.summary, r.model.k(), r.model.d()),
            (_, Clock::Measured) => cpu,
            (_, Clock::Model(c)) => passes.seconds(c, self.inputs.data.x.ncols()),
        };
        Ok(Computed { answer: charged(answer, seconds), seconds, cpu })
    }

    /// The answer and the passes over the rows it took (for the model clock; a local fit is charged
    /// by its own summary instead).
    fn compute(&mut self, work: &Work) -> Result<(Answer, Passes), LocalFitError> {
        let i = &self.inputs;
        let (x, y) = (i.data.shard_x(self.id), i.data.shard_y(self.id));
        let (rows, k) = (y.len() as u64, i.em.k);
        let fail = |source: EmError| LocalFitError { machine: self.id, rows: y.len(), source };
        Ok(match work {
            Work::Fit => {
                let r =
                    distributed::local_fit(self.id, x, y, &i.features, &i.target, &i.em, i.support[self.id], i.seed)?;
                (Answer::Fit(r), Passes::NONE)
            }
            Work::Moments => (Answer::Moments(Moments::of(x, y)), Passes { rows, components: 1, standardised: 0 }),
            Work::Sample => {
                let picked = distributed::support_rows(self.id, y.len(), i.support[self.id], i.seed);
                let answer = Answer::Sample { x: x.select(Axis(0), &picked), y: y.select(Axis(0), &picked) };
                (answer, Passes::NONE)
            }
            Work::Em { scaling, request } => {
                let first = self.shard.is_none();
                if first {
                    let scaling = scaling.as_ref().ok_or_else(|| {
                        fail(EmError::Internal("the first exact-EM request carries no standardisation".into()))
                    })?;
                    self.shard = Some(Shard::new(x, y, scaling));
                }
                let stats = self.shard.as_mut().expect("made above").answer(request);
                (Answer::Em(stats), Passes { rows, components: k, standardised: if first { rows } else { 0 } })
            }
            Work::FedAvg { model, settings } => {
                let first = self.client.is_none();
                if first {
                    self.client = Some(Client::new(x, y, &i.features, &i.target).map_err(fail)?);
                }
                let client = self.client.as_ref().expect("made above");
                let (model, loglik) = client.answer(model, settings).map_err(fail)?;
                let rows_passes = rows * settings.local_iterations as u64;
                let passes = Passes { rows: rows_passes, components: k, standardised: if first { rows } else { 0 } };
                (Answer::FedAvg { model, loglik }, passes)
            }
        })
    }
}

/// The work of a request on the model clock: `rows` rows x passes of an E-step with `components`
/// components, and `standardised` rows z-scored first.
struct Passes {
    rows: u64,
    components: usize,
    standardised: u64,
}

impl Passes {
    /// No work the model clock charges here.
    const NONE: Passes = Passes { rows: 0, components: 1, standardised: 0 };

    /// `e(rows, components) + standardised em_per_component` on d features.
    fn seconds(&self, c: &CostModel, d: usize) -> f64 {
        c.em_seconds(self.rows, self.components, d) + self.standardised as f64 * c.em_per_component
    }
}

/// A local fit's report with its CPU seconds replaced by its seconds on the run's clock (under the
/// model clock nothing measured then enters the record).
fn charged(answer: Answer, seconds: f64) -> Answer {
    match answer {
        Answer::Fit(mut r) => {
            r.summary.cpu_seconds = seconds;
            if let Some(f) = r.model.fit.as_mut() {
                f.cpu_seconds = seconds;
            }
            Answer::Fit(r)
        }
        other => other,
    }
}
