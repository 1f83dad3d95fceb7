//! Federated averaging of EM fits (McMahan et al. 2017, "FedAvg", with EM as the local solver;
//! docs/em.md, "Federated averaging"): each round the server sends the current model; every machine
//! runs `local_iterations` plain EM iterations from it on its own rows and returns the model it
//! reached, with the log-likelihood of the model it was sent; the server averages the returned
//! models' parameters weighted by `N_m / N`. Every machine starts from the same model, so the labels
//! of their components agree and the plain coordinate-wise mean applies (no relabelling).
//!
//! It is not exact EM: a machine's iterations see only its rows, so the average is not the
//! maximiser of the whole likelihood's EM step. It sends models, not statistics, and needs fewer
//! rounds when the shards are alike.

use ndarray::{ArrayView1, ArrayView2};

use super::{EmError, Standardised, rel_change};
use crate::numeric::model::Moe;
use crate::reduce::baselines::naive_average;

/// Settings of federated averaging.
#[derive(Debug, Clone, PartialEq)]
pub struct FedAvgSettings {
    /// EM iterations each machine runs per round.
    pub local_iterations: usize,
    /// Maximum rounds.
    pub rounds: usize,
    /// Stop when the whole log-likelihood of the model sent changes by at most `tol * max(|L|, N)`
    /// from one round to the next (the single-machine EM's test).
    pub tol: f64,
    /// Variance floor, as a fraction of var(y) on each machine.
    pub variance_floor: f64,
}

/// A machine of federated averaging: its rows, checked and standardised once.
pub struct Client {
    data: Standardised,
}

impl Client {
    /// The machine's rows.
    pub fn new(x: ArrayView2<f64>, y: ArrayView1<f64>, features: &[String], target: &str) -> Result<Client, EmError> {
        Ok(Client { data: Standardised::new(x, y, features, target)? })
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.data.rows()
    }

    /// Its answer to `global`: the model after `local_iterations` EM iterations from it (fewer when
    /// a step is not finite), and the log-likelihood of `global` on its rows.
    pub fn answer(&self, global: &Moe, settings: &FedAvgSettings) -> Result<(Moe, f64), EmError> {
        let run = self.data.iterates(global, settings.variance_floor, settings.local_iterations)?;
        let model = run.models.last().expect("the start at least").clone();
        Ok((model, run.logliks[0]))
    }
}

/// The server's step: the machines' models averaged coordinate by coordinate, weighted by their rows.
pub fn average(models: &[Moe], rows: &[usize]) -> Moe {
    let refs: Vec<&Moe> = models.iter().collect();
    naive_average(&refs, rows).expect("models of one shape, started from one model")
}

/// The server of federated averaging: the model it sends, the log-likelihood trace and whether it
/// stopped on the tolerance.
pub struct Server {
    model: Moe,
    trace: Vec<f64>,
    converged: bool,
    max_rounds: usize,
    tol: f64,
}

impl Server {
    /// A server that sends `start` in the first round.
    pub fn new(start: &Moe, settings: &FedAvgSettings) -> Server {
        Server {
            model: start.clone(),
            trace: Vec::new(),
            converged: false,
            max_rounds: settings.rounds,
            tol: settings.tol,
        }
    }

    /// The model to send (after the last round: the result).
    pub fn model(&self) -> &Moe {
        &self.model
    }

    /// Takes the machines' answers to the model sent (their models and the sent model's
    /// log-likelihood on their rows, in machine order, with their rows) and says whether another round
    /// follows. It stops when the whole log-likelihood of the model sent changes by at most
    /// `tol * max(|L|, N)` from the previous round (keeping the model sent), or after `rounds` rounds
    /// (keeping the last average).
    pub fn receive(&mut self, answers: Vec<(Moe, f64)>, rows: &[usize]) -> bool {
        let n: usize = rows.iter().sum();
        self.trace.push(answers.iter().map(|(_, l)| l).sum());
        if self.trace.len() >= 2 && rel_change(&self.trace, n) <= self.tol {
            self.converged = true;
            return false;
        }
        let models: Vec<Moe> = answers.into_iter().map(|(m, _)| m).collect();
        self.model = average(&models, rows);
        self.trace.len() < self.max_rounds
    }

    /// Rounds so far.
    pub fn rounds(&self) -> usize {
        self.trace.len()
    }

    /// Whether it stopped on the tolerance.
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// The whole log-likelihood of the model sent in each round (index 0: the start).
    pub fn trace(&self) -> &[f64] {
        &self.trace
    }
}

/// A finished run of federated averaging.
#[derive(Debug, Clone)]
pub struct FedAvg {
    /// The last average (raw scale).
    pub model: Moe,
    /// The whole log-likelihood of the model sent in each round (index 0: the start).
    pub trace: Vec<f64>,
    /// Rounds taken.
    pub rounds: usize,
    /// Whether it stopped on the tolerance.
    pub converged: bool,
}

/// Federated averaging over the machines `shards` (each its `(x, y)`), in one process, from `start`.
pub fn fit(
    shards: &[(ArrayView2<f64>, ArrayView1<f64>)],
    features: &[String],
    target: &str,
    start: &Moe,
    settings: &FedAvgSettings,
) -> Result<FedAvg, EmError> {
    let clients: Vec<Client> =
        shards.iter().map(|(x, y)| Client::new(*x, *y, features, target)).collect::<Result<_, _>>()?;
    let rows: Vec<usize> = clients.iter().map(Client::rows).collect();
    let mut server = Server::new(start, settings);
    if settings.rounds > 0 {
        loop {
            let answers: Vec<(Moe, f64)> =
                clients.iter().map(|c| c.answer(server.model(), settings)).collect::<Result<_, _>>()?;
            if !server.receive(answers, &rows) {
                break;
            }
        }
    }
    Ok(FedAvg {
        model: server.model().clone(),
        rounds: server.rounds(),
        trace: server.trace().to_vec(),
        converged: server.converged(),
    })
}
