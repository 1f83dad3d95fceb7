//! Exact EM over machines (docs/em.md, "EM over machines"): the data stay on the machines, and the
//! server takes exactly the single-machine EM steps (plain, [`super::iterates`], or SQUAREM's) from the
//! sums of what every machine computes on its own rows.
//!
//! Rounds, each a request from the server and one answer per machine:
//! - standardisation: every machine sends the [`Moments`] of its `(x, y)`; the server combines them
//!   (Chan, Golub & LeVeque) into the union's means and standard deviations;
//! - iterations: the server sends parameters; each machine runs the E-step on its shard and returns
//!   the sufficient statistics of the M-step ([`ShardStats`]): the experts' weighted Gram matrices
//!   `G_k`, right-hand sides `r_k`, weights `n_k` and `sum_i tau_ik y_i^2`, the gate's gradient and
//!   Hessian, `Q = sum tau log pi` and the log-likelihood. From their sums the server solves the
//!   experts `b_k = G_k^-1 r_k`, the variances from the residual sums expanded as
//!   `ss_k = sum tau y^2 - 2 b_k . r_k + b_k' G_k b_k`, and the gate's Newton direction.
//! - The gate's step halving needs `Q` of the old responsibilities at the candidate gate, which only
//!   the machines can compute: each request carries a candidate, and each machine returns that
//!   `Q` with the E-step at the candidate (speculatively). When the server accepts the candidate, that
//!   E-step is the next iteration's and the round was one iteration; when it rejects it, the next
//!   request carries the halved step (one more round), and the machines forget their speculative
//!   responsibilities.
//!
//! - With `accelerate` (the default, as in the single-machine fit), the server runs SQUAREM's cycle
//!   (Varadhan & Roland 2008, scheme S3, with the monotone safeguard): two plain steps, the jump
//!   from their three points (computed by the server alone), one round for the E-step at the jump,
//!   the stabilising step from it, kept only when its log-likelihood is at least that of the
//!   second plain point. A cycle whose jump is kept takes three iterations in four rounds; a cycle
//!   whose jump loses takes two iterations in five (the jump's E-step, the stabilising step's, and
//!   the second point's E-step asked again, since the machines no longer hold it).
//!
//! Up to the order of summation (per machine, then over machines, instead of per row block), every
//! iterate equals the single-machine EM's from the same start (plain `super::iterates`, or
//! accelerated `Standardised::accelerated`), with the exact Hessian on every row
//! (tests/over_machines.rs checks 1e-9 relative per iteration, both ways).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use super::{
    EmError, EmSettings, ExpertSums, Params, Scaling, check_correlation, check_finite, e_step, expert_means,
    rel_change, to_raw_model, to_raw_trace, to_standard,
};
use crate::numeric::cputime::thread_cpu_seconds;
use crate::numeric::gate;
use crate::numeric::linalg::with_intercept;
use crate::numeric::model::{Moe, n_free_params};
use crate::numeric::scaling::ColumnScaling;

/// Rows, column means and co-moments `C = sum_i (z_i - mean)(z_i - mean)'` of `z = (x, y)`: what a
/// machine sends for the standardisation (the target is the last column).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Moments {
    /// Rows.
    pub n: usize,
    /// Column means, d + 1.
    pub mean: Array1<f64>,
    /// Co-moments, (d + 1) x (d + 1).
    pub comoment: Array2<f64>,
}

impl Moments {
    /// The moments of `(x, y)`, in two passes: means, then centred products (zeros without rows).
    pub fn of(x: ArrayView2<f64>, y: ArrayView1<f64>) -> Moments {
        let width = x.ncols() + 1;
        if x.nrows() == 0 {
            return Moments { n: 0, mean: Array1::zeros(width), comoment: Array2::zeros((width, width)) };
        }
        let z = ndarray::concatenate(Axis(1), &[x, y.insert_axis(Axis(1))]).expect("one y per row");
        let mean = z.mean_axis(Axis(0)).expect("at least one row");
        let centred = &z - &mean;
        Moments { n: z.nrows(), comoment: centred.t().dot(&centred), mean }
    }

    /// The moments of the union of the parts' rows, combined pairwise in order (Chan, Golub & LeVeque
    /// 1979): `n = n_a + n_b`, `delta = mean_b - mean_a`, `mean = mean_a + delta n_b / n`,
    /// `C = C_a + C_b + delta delta' n_a n_b / n`.
    pub fn combine(parts: &[Moments]) -> Moments {
        let mut parts = parts.iter();
        let first = parts.next().expect("at least one machine").clone();
        parts.fold(first, |a, b| {
            if a.n == 0 || b.n == 0 {
                return if a.n == 0 { b.clone() } else { a };
            }
            let n = a.n + b.n;
            let delta = &b.mean - &a.mean;
            let outer = delta.view().insert_axis(Axis(1)).dot(&delta.view().insert_axis(Axis(0)));
            Moments {
                n,
                mean: &a.mean + &(&delta * (b.n as f64 / n as f64)),
                comoment: a.comoment + &b.comoment + outer * (a.n as f64 * b.n as f64 / n as f64),
            }
        })
    }

    /// The standardisation of the rows these moments describe (population standard deviations
    /// `sqrt(C_jj / n)`), with the checks of the single-machine fit: finite, no constant column, no
    /// duplicated or collinear features (from the correlations `C_ab / (n s_a s_b)`), enough rows.
    pub fn scaling(&self, features: &[String], target: &str, k: usize) -> Result<Scaling, EmError> {
        let d = features.len();
        let n = self.n as f64;
        let params = n_free_params(k, d);
        if self.n < params {
            return Err(EmError::TooFewRows { rows: self.n, k, d, params });
        }
        let sd = (0..=d).map(|j| (self.comoment[[j, j]] / n).sqrt()).collect::<Vec<f64>>();
        let x =
            ColumnScaling { mean: self.mean.slice(ndarray::s![..d]).to_owned(), sd: Array1::from(sd[..d].to_vec()) };
        let scaling = Scaling::checked(x, self.mean[d], sd[d], features, target)?;
        let r = Array2::from_shape_fn((d, d), |(a, b)| self.comoment[[a, b]] / (n * sd[a] * sd[b]));
        check_correlation(&r, features)?;
        Ok(scaling)
    }
}

/// What the server tells the machines about the previous request's candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Verdict {
    /// There was none: the parameters are the start.
    First,
    /// It was taken: its E-step is now the current one.
    Accepted,
    /// It was not: its E-step is forgotten.
    Rejected,
}

/// A request of the iterations: the candidate parameters (standardised scale) and the verdict on the
/// previous candidate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// The parameters to evaluate.
    pub params: Params,
    /// What became of the previous request's parameters.
    pub verdict: Verdict,
}

/// A machine's answer: the sufficient statistics of its rows at the requested parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShardStats {
    /// Rows.
    pub rows: usize,
    /// Log-likelihood of its rows (standardised scale).
    pub loglik: f64,
    /// The experts' sums `G_k`, `r_k`, `n_k` at the new responsibilities.
    pub experts: ExpertSums,
    /// `sum_i tau_ik y_i^2`, K.
    pub y2: Array1<f64>,
    /// The gate's gradient `g_k = xt'(tau_k - pi_k)`, (K-1)(d+1).
    pub gradient: Array1<f64>,
    /// The gate's negated Hessian, (K-1)(d+1) square.
    pub neg_hessian: Array2<f64>,
    /// `Q = sum_ik tau_ik log pi_ik` of the new responsibilities at the requested gate.
    pub q: f64,
    /// `Q` of the current (previously accepted) responsibilities at the requested gate: the step
    /// halving's test (0 for the first request).
    pub trial_q: f64,
    /// `Q` of the current responsibilities at the current gate (0 for the first request): what
    /// `trial_q` must beat, summed over the same machines as `trial_q`.
    pub current_q: f64,
}

impl ShardStats {
    /// The sum of `parts` (one per machine), added in order.
    pub fn total(parts: Vec<ShardStats>) -> ShardStats {
        let mut parts = parts.into_iter();
        let first = parts.next().expect("at least one machine");
        parts.fold(first, |a, b| ShardStats {
            rows: a.rows + b.rows,
            loglik: a.loglik + b.loglik,
            experts: a.experts + b.experts,
            y2: a.y2 + b.y2,
            gradient: a.gradient + b.gradient,
            neg_hessian: a.neg_hessian + b.neg_hessian,
            q: a.q + b.q,
            trial_q: a.trial_q + b.trial_q,
            current_q: a.current_q + b.current_q,
        })
    }
}

/// A machine of exact EM: its rows on the union's standardised scale and the responsibilities of
/// the current parameters (and of the candidate under test).
pub struct Shard {
    xt: Array2<f64>,
    y: Array1<f64>,
    /// `y_i^2`, for the sums `sum_i tau_ik y_i^2`.
    y_squared: Array1<f64>,
    tau: Option<Array2<f64>>,
    trial: Option<Array2<f64>>,
    /// `Q` of `tau` at the current gate, and of `trial` at the candidate's gate.
    q: f64,
    trial_q: f64,
}

impl Shard {
    /// The machine's rows `(x, y)` standardised by the union's `scaling`.
    pub fn new(x: ArrayView2<f64>, y: ArrayView1<f64>, scaling: &Scaling) -> Shard {
        let (xs, y) = scaling.apply(x, y);
        Shard {
            xt: with_intercept(xs.view()),
            y_squared: y.mapv(|v| v * v),
            y,
            tau: None,
            trial: None,
            q: 0.0,
            trial_q: 0.0,
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// Answers a request: the step halving's `Q` of the current responsibilities at the requested
    /// gate, then the E-step at the requested parameters and its sufficient statistics (the new
    /// responsibilities are kept as the candidate's until the verdict).
    pub fn answer(&mut self, request: &Request) -> ShardStats {
        match request.verdict {
            Verdict::First => (self.tau, self.trial, self.q) = (None, None, 0.0),
            Verdict::Accepted => {
                if let Some(t) = self.trial.take() {
                    (self.tau, self.q) = (Some(t), self.trial_q);
                }
            }
            Verdict::Rejected => self.trial = None,
        }
        let p = &request.params;
        let (xt, y) = (self.xt.view(), self.y.view());
        let probs = gate::probs_on(xt, &p.gate, 1);
        let trial_q = self.tau.as_ref().map_or(0.0, |t| gate::objective_on(t.view(), probs.log_pi.view(), 1));
        let e = e_step(xt, y, p, probs, expert_means(xt, &p.experts, 1).view(), 1);
        let tau = e.tau.view();
        let k = p.gate.nrows();
        let (gradient, neg_hessian) = if k < 2 {
            (Array1::zeros(0), Array2::zeros((0, 0)))
        } else {
            (gate::gradient_on(xt, tau, e.gate.pi.view(), 1), -gate::hessian_on(xt, e.gate.pi.view(), 1))
        };
        let stats = ShardStats {
            rows: self.rows(),
            loglik: e.loglik,
            experts: ExpertSums::of(xt, y, tau),
            y2: tau.t().dot(&self.y_squared),
            gradient,
            neg_hessian,
            q: gate::objective_on(tau, e.gate.log_pi.view(), 1),
            trial_q,
            current_q: self.q,
        };
        match self.tau {
            None => (self.tau, self.q) = (Some(e.tau), stats.q),
            Some(_) => (self.trial, self.trial_q) = (Some(e.tau), stats.q),
        }
        stats
    }
}

/// The candidate under test: its parameters and how its gate was stepped.
struct Trial {
    params: Params,
    /// The Newton direction, `None` when the gate is kept (K = 1, or no direction).
    delta: Option<Array1<f64>>,
    step: f64,
    halvings: usize,
}

/// What the rounds of a run went to, besides one per iteration and the first E-step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Gate steps halved (one round each).
    pub halvings: usize,
    /// SQUAREM jumps whose stabilising step was kept (one round each: the jump's E-step).
    pub jumps_kept: usize,
    /// Jumps that lost to the cycle's second point, or whose log-likelihood was not finite.
    pub jumps_lost: usize,
}

/// What the last request asked the machines for.
enum Asked {
    /// The E-step at the start (or again at the second point of a SQUAREM cycle whose jump lost).
    EStep,
    /// The E-step at a candidate of the M-step, with the step halving's test.
    Candidate(Trial),
    /// The E-step at a SQUAREM jump.
    Jump(Params),
}

/// What the server does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Send this request to every machine.
    Ask(Request),
    /// The fit is over.
    Done,
}

/// The server of exact EM: the parameters whose E-step the machines hold (`base`) with the summed
/// statistics at them, the pending request and the log-likelihood trace, whose last point is `base`
/// except while a SQUAREM jump is tried (then it is the `fallback`).
///
/// With `accelerate`, the server runs the single-machine SQUAREM cycle (`super::iterate_squarem`)
/// round by round: two plain steps `p0 -> p1 -> p2`, the jump `px` (no round: the server has every
/// point), a round for the E-step at `px`, the stabilising step `p3 = M(px)` (its E-step rounds),
/// and `p3` kept only when its log-likelihood is at least `p2`'s. When it is not, the machines
/// hold `px`'s responsibilities, so one more round asks for `p2`'s E-step again.
pub struct Server {
    scaling: Scaling,
    features: Vec<String>,
    target: Option<String>,
    floor: f64,
    tol: f64,
    max_iter: usize,
    accelerate: bool,
    base: Params,
    stats: Option<ShardStats>,
    asked: Asked,
    /// The plain points of the current SQUAREM cycle (`p0`, then `p1`, `p2`).
    cycle: Vec<Params>,
    /// While a jump is tried: the cycle's `p2` and its statistics, to fall back on.
    fallback: Option<(Params, ShardStats)>,
    trace: Vec<f64>,
    rows: usize,
    rounds: usize,
    tally: Tally,
    converged: bool,
}

impl Server {
    /// A server that starts from the raw-scale model `start`, on the union's `scaling`; `settings`
    /// gives the variance floor, the tolerance, the iteration cap and whether to accelerate.
    /// Returns the first request.
    pub fn new(start: &Moe, scaling: Scaling, settings: &EmSettings) -> (Server, Request) {
        let params = to_standard(start, &scaling);
        let request = Request { params: params.clone(), verdict: Verdict::First };
        let server = Server {
            scaling,
            features: start.features.clone(),
            target: start.target.clone(),
            floor: settings.variance_floor,
            tol: settings.tol,
            max_iter: settings.max_iter,
            accelerate: settings.accelerate,
            cycle: vec![params.clone()],
            base: params,
            stats: None,
            asked: Asked::EStep,
            fallback: None,
            trace: Vec::new(),
            rows: 0,
            rounds: 0,
            tally: Tally::default(),
            converged: false,
        };
        (server, request)
    }

    /// Takes the machines' answers to the last request (in machine order) and says what comes next.
    /// A candidate is accepted when the summed `trial_q` passes [`gate::accepts`] against the summed
    /// `current_q` of the same machines (or when its gate is the current one); a run stops on the
    /// tolerance (judged on plain steps), on the iteration cap, or when a plain step's
    /// log-likelihood is not finite (keeping the last finite parameters), like
    /// [`super::iterates`] and the single-machine SQUAREM.
    pub fn receive(&mut self, answers: Vec<ShardStats>) -> Next {
        let total = ShardStats::total(answers);
        self.rounds += 1;
        self.rows = total.rows;
        match std::mem::replace(&mut self.asked, Asked::EStep) {
            Asked::EStep => {
                if self.trace.is_empty() {
                    self.trace.push(total.loglik);
                    if !total.loglik.is_finite() {
                        return Next::Done;
                    }
                }
                self.stats = Some(total);
                self.propose(Verdict::Accepted)
            }
            Asked::Jump(px) => {
                if !total.loglik.is_finite() {
                    // No stabilising step from a non-finite jump: the cycle goes on from p2, whose
                    // responsibilities the machines still hold as their current ones.
                    let (p2, s2) = self.fallback.take().expect("a jump under test");
                    self.tally.jumps_lost += 1;
                    (self.base, self.stats, self.cycle) = (p2.clone(), Some(s2), vec![p2]);
                    return self.propose(Verdict::Rejected);
                }
                (self.base, self.stats) = (px, Some(total));
                self.propose(Verdict::Accepted)
            }
            Asked::Candidate(trial) => self.judge(trial, total),
        }
    }

    /// The answers to a candidate: halve its gate step when `Q` dropped, else take it as the next
    /// point (a plain step, or a jump's stabilising step).
    fn judge(&mut self, mut trial: Trial, total: ShardStats) -> Next {
        let accepted = trial.delta.is_none() || gate::accepts(total.trial_q, total.current_q);
        if !accepted {
            trial.halvings += 1;
            self.tally.halvings += 1;
            trial.step *= 0.5;
            if trial.halvings == gate::MAX_HALVINGS {
                // No step improved Q: the gate is kept, as in the single-machine step.
                trial.delta = None;
                trial.params.gate = self.base.gate.clone();
            } else {
                let delta = trial.delta.as_ref().expect("a stepped gate");
                trial.params.gate = gate::stepped(&self.base.gate, delta, trial.step);
            }
            let request = Request { params: trial.params.clone(), verdict: Verdict::Rejected };
            self.asked = Asked::Candidate(trial);
            return Next::Ask(request);
        }
        if let Some((p2, s2)) = self.fallback.take() {
            return self.stabilised(trial.params, total, p2, s2);
        }
        if !total.loglik.is_finite() {
            return Next::Done;
        }
        self.take(trial.params, total);
        if rel_change(&self.trace, self.rows) <= self.tol {
            self.converged = true;
            return Next::Done;
        }
        if self.iterations() >= self.max_iter {
            return Next::Done;
        }
        if self.accelerate {
            self.cycle.push(self.base.clone());
            if self.cycle.len() == 3 {
                let p2 = self.cycle.pop().expect("three points");
                if let Some(px) = super::squarem_jump(&self.cycle[0], &self.cycle[1], &p2, self.floor) {
                    let s2 = self.stats.clone().expect("statistics at p2");
                    self.fallback = Some((p2, s2));
                    self.cycle.clear();
                    self.asked = Asked::Jump(px.clone());
                    return Next::Ask(Request { params: px, verdict: Verdict::Accepted });
                }
                self.cycle = vec![p2];
            }
        }
        self.propose(Verdict::Accepted)
    }

    /// The stabilising step `p3 = M(px)` of a jump is in: kept as the next point when its
    /// log-likelihood is finite and at least `p2`'s (per row when the two rounds heard from different
    /// rows, as under a deadline or failures), else the cycle ends at `p2` and its E-step is asked
    /// again (the machines hold the jump's responsibilities).
    fn stabilised(&mut self, p3: Params, total: ShardStats, p2: Params, s2: ShardStats) -> Next {
        let no_worse = if total.rows == s2.rows {
            total.loglik >= s2.loglik
        } else {
            total.loglik / total.rows as f64 >= s2.loglik / s2.rows as f64
        };
        if total.loglik.is_finite() && no_worse {
            self.tally.jumps_kept += 1;
            self.take(p3, total);
            self.cycle = vec![self.base.clone()];
            if self.iterations() >= self.max_iter {
                return Next::Done;
            }
            return self.propose(Verdict::Accepted);
        }
        self.tally.jumps_lost += 1;
        (self.base, self.cycle) = (p2.clone(), vec![p2.clone()]);
        self.asked = Asked::EStep;
        Next::Ask(Request { params: p2, verdict: Verdict::First })
    }

    /// `params` becomes the next point of the trace, with `stats` its E-step's sums.
    fn take(&mut self, params: Params, stats: ShardStats) {
        self.trace.push(stats.loglik);
        self.base = params;
        self.stats = Some(stats);
    }

    /// The M-step from the summed statistics at `base`: the experts, the variances, and the gate
    /// one full Newton step away (or kept, for K = 1 or without a direction). `verdict` tells the
    /// machines what became of the previous request's E-step.
    fn propose(&mut self, verdict: Verdict) -> Next {
        let stats = self.stats.as_ref().expect("statistics at the current parameters");
        let mut next = self.base.clone();
        stats.experts.solve(&mut next.experts);
        let ss = stats.experts.residual_sums(&stats.y2, &next.experts);
        stats.experts.update_variances(&ss, &mut next.variances, self.floor);
        let delta = match next.gate.nrows() {
            0 | 1 => None,
            _ => gate::newton_direction(&stats.neg_hessian, &stats.gradient),
        };
        if let Some(d) = &delta {
            next.gate = gate::stepped(&self.base.gate, d, 1.0);
        }
        let request = Request { params: next.clone(), verdict };
        self.asked = Asked::Candidate(Trial { params: next, delta, step: 1.0, halvings: 0 });
        Next::Ask(request)
    }

    /// EM iterations taken (accepted candidates).
    pub fn iterations(&self) -> usize {
        self.trace.len().saturating_sub(1)
    }

    /// Rounds so far (requests answered), the start's E-step, every step halving and every SQUAREM
    /// jump's rounds included.
    pub fn rounds(&self) -> usize {
        self.rounds
    }

    /// What the rounds beyond one per iteration went to.
    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// Whether the run stopped on the tolerance.
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// The last point of the trace on the raw scale (with the start's target name).
    pub fn model(&self) -> Result<Moe, EmError> {
        let last = self.fallback.as_ref().map_or(&self.base, |(p2, _)| p2);
        let mut model = to_raw_model(last, &self.scaling, &self.features)?;
        model.target = self.target.clone();
        Ok(model)
    }

    /// The log-likelihood after every iteration (index 0: the start), raw scale.
    pub fn trace(&self) -> Vec<f64> {
        to_raw_trace(&self.trace, self.rows, self.scaling.y_sd)
    }
}

/// A finished run of exact EM over machines.
#[derive(Debug, Clone)]
pub struct OverMachines {
    /// The model at the start and after each iteration (raw scale, the start's target name).
    pub models: Vec<Moe>,
    /// Log-likelihood of every row after each iteration (index 0: the start), raw scale.
    pub trace: Vec<f64>,
    /// Rounds, the standardisation's included.
    pub rounds: usize,
    /// What the rounds beyond the standardisation, the start's E-step and one per iteration went to.
    pub tally: Tally,
    /// Whether it stopped on the tolerance.
    pub converged: bool,
    /// Thread CPU seconds as a cluster would take them: per round, the slowest machine's answer
    /// (standardising its rows in the first) plus the server's step, summed.
    pub seconds: f64,
}

impl OverMachines {
    /// The last model.
    pub fn model(&self) -> &Moe {
        self.models.last().expect("the start at least")
    }
}

/// Exact EM over the machines `shards` (each its `(x, y)`), in one process: the standardisation
/// round, then rounds until [`Server::receive`] is done, from the raw-scale model `start`.
pub fn fit(
    shards: &[(ArrayView2<f64>, ArrayView1<f64>)],
    features: &[String],
    target: &str,
    start: &Moe,
    settings: &EmSettings,
) -> Result<OverMachines, EmError> {
    settings.validate()?;
    for (x, y) in shards {
        check_finite(*x, *y, features, target)?;
    }
    let mut moments = Vec::new();
    let mut seconds = slowest(shards.iter().map(|(x, y)| move || Moments::of(*x, *y)), &mut moments);
    let t0 = thread_cpu_seconds();
    let scaling = Moments::combine(&moments).scaling(features, target, start.k())?;
    seconds += thread_cpu_seconds() - t0;
    let mut machines = Vec::new();
    seconds += slowest(shards.iter().map(|(x, y)| || Shard::new(*x, *y, &scaling)), &mut machines);
    let (mut server, mut request) = Server::new(start, scaling, settings);
    let mut models = vec![server.model()?];
    loop {
        let mut answers = Vec::with_capacity(machines.len());
        seconds += slowest(machines.iter_mut().map(|m| || m.answer(&request)), &mut answers);
        let t0 = thread_cpu_seconds();
        let next = server.receive(answers);
        seconds += thread_cpu_seconds() - t0;
        if server.iterations() == models.len() {
            models.push(server.model()?);
        }
        match next {
            Next::Ask(r) => request = r,
            Next::Done => break,
        }
    }
    Ok(OverMachines {
        models,
        trace: server.trace(),
        rounds: server.rounds() + 1,
        tally: server.tally(),
        converged: server.converged(),
        seconds,
    })
}

/// Runs every machine's work in turn, collecting the results in `out`; returns the thread CPU
/// seconds of the slowest.
fn slowest<T, F: FnOnce() -> T>(work: impl Iterator<Item = F>, out: &mut Vec<T>) -> f64 {
    let mut most: f64 = 0.0;
    for w in work {
        let t0 = thread_cpu_seconds();
        out.push(w());
        most = most.max(thread_cpu_seconds() - t0);
    }
    most
}
