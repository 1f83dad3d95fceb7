//! Warnings that keep a collapse from hiding behind a good-looking number: shards too small for the
//! model (before anything runs), local fits that stopped before converging, and a reduction whose
//! test log-likelihood falls well below the global fit's although its RPE may look fine.

use std::collections::{BTreeMap, HashMap};

use super::{CellRun, Plan, ResultRow, StudyOutput};
use crate::cluster::protocol::ProtocolKind;
use crate::numeric::model::n_free_params;

/// Fewer training rows per free parameter than this on a machine, and its local fit is unreliable.
pub const MIN_ROWS_PER_PARAMETER: f64 = 10.0;

/// The reduction's mean test log-likelihood per row may fall this far (nats) below the global
/// fit's before a warning.
pub const LOGLIK_GAP_WARNING: f64 = 0.05;

/// The reduction's mean parameter MSE against the truth may be this many times the global fit's
/// before a warning: a reduced expert (often a variance) far off the truth can cost little test
/// log-likelihood (at M = 512 with 78 rows per machine: a variance of 7,070 for a true 3, 0.04 nats
/// per row) and almost no RPE.
pub const PARAM_MSE_RATIO_WARNING: f64 = 100.0;

/// A reduced expert's variance may be this many times the largest of the global fit's before a
/// warning: the check of a collapse that needs no truth (real data).
pub const VARIANCE_RATIO_WARNING: f64 = 10.0;

/// Training rows per machine over free parameters, for a data set of `n` rows on `m` machines
/// fitting `k` components (shards of equal size; unequal shards make some machines smaller).
pub fn rows_per_parameter(plan: &Plan, n: usize, m: usize, k: usize) -> f64 {
    (n - plan.n_test(n)) as f64 / m as f64 / n_free_params(k, plan.d) as f64
}

/// A study stops when every machine of one run fails; above this chance over all its runs, a
/// warning says so before it starts.
pub const ALL_FAIL_WARNING: f64 = 1e-3;

/// Warnings known before the run: every (n, M, K) whose machines get fewer than
/// [`MIN_ROWS_PER_PARAMETER`] training rows per free parameter, and every (M, failure probability)
/// whose runs lose all their machines with a chance of [`ALL_FAIL_WARNING`] or more.
pub fn before_run(plan: &Plan) -> Vec<String> {
    let mut warnings = few_rows(plan);
    warnings.extend(failing_rounds(plan));
    let mut seen: Vec<(usize, u64)> = Vec::new();
    for c in &plan.cells {
        let p = plan.setting(c).machines.failure_probability;
        if seen.contains(&(c.machines, p.to_bits())) {
            continue;
        }
        seen.push((c.machines, p.to_bits()));
        // Each repetition's machines fail independently: 1 - (1 - p^M)^repetitions.
        let all_fail = p.powi(c.machines as i32);
        let chance = 1.0 - (1.0 - all_fail).powi(plan.repetitions as i32);
        if chance >= ALL_FAIL_WARNING {
            warnings.push(format!(
                "M = {} with failure probability {p}: every machine of a run fails with probability {all_fail:.2e} ({chance:.2e} that it happens in one of the {} repetitions); such a run makes no model and stops the study: use more machines or a lower probability",
                c.machines, plan.repetitions
            ));
        }
    }
    warnings
}

/// Every (protocol with several rounds, M, failure probability p) whose machines may all fail before
/// the protocol's last round: each survives its at most R rounds with probability `(1-p)^R`, so all M
/// have failed by then with probability `(1 - (1-p)^R)^M`; the protocol then ends early with the
/// server's last model.
fn failing_rounds(plan: &Plan) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut seen: Vec<(usize, usize, u64)> = Vec::new();
    for c in &plan.cells {
        let p = plan.setting(c).machines.failure_probability;
        let protocol = &plan.protocols[c.protocol];
        let rounds = protocol.kind.most_rounds(plan.em.accelerate);
        if rounds < 2 || p <= 0.0 {
            continue;
        }
        if seen.contains(&(c.protocol, c.machines, p.to_bits())) {
            continue;
        }
        seen.push((c.protocol, c.machines, p.to_bits()));
        let survives = (1.0 - p).powi(rounds.min(i32::MAX as usize) as i32);
        let all_fail = (1.0 - survives).powi(c.machines as i32);
        // Refine runs its iterations whatever happens (its worst case is every SQUAREM jump lost);
        // exact EM and fedavg may converge sooner.
        let worst = match protocol.kind {
            ProtocolKind::Refine { .. } if plan.em.accelerate => "the worst case, should every SQUAREM jump lose",
            ProtocolKind::Refine { .. } => "as refine always does, step halvings aside",
            _ => "the worst case; it may converge sooner",
        };
        if all_fail >= ALL_FAIL_WARNING {
            warnings.push(format!(
                "protocol {} at M = {} with failure probability {p} per round: should it run all of its up to {rounds} rounds ({worst}), a machine survives them with probability {survives:.2e}, and every machine has failed by then with probability {all_fail:.2e}: the protocol then ends early with the server's last model (the record and a warning say so)",
                protocol.name, c.machines
            ));
        }
    }
    warnings
}

/// Every (n, M, K) whose machines get fewer than [`MIN_ROWS_PER_PARAMETER`] training rows per free
/// parameter.
fn few_rows(plan: &Plan) -> Vec<String> {
    let mut seen: Vec<(usize, usize, usize)> =
        plan.cells.iter().map(|c| (c.n, c.machines, plan.setting(c).k)).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.into_iter()
        .filter(|&(n, m, k)| rows_per_parameter(plan, n, m, k) < MIN_ROWS_PER_PARAMETER)
        .map(|(n, m, k)| {
            let rows = (n - plan.n_test(n)) / m;
            format!(
                "M = {m} (n = {n}): about {rows} training rows per machine for {} free parameters (K = {k}, d = {}), {:.1} per parameter, below {MIN_ROWS_PER_PARAMETER}: the local fits are unreliable and the reduction can collapse; check the test log-likelihood, not only the RPE",
                n_free_params(k, plan.d),
                plan.d,
                rows_per_parameter(plan, n, m, k)
            )
        })
        .collect()
}

/// The test log-likelihood per row that a result row's estimator loses against the global fit of
/// the same cell and repetition: `(l_global - l_estimator) / n_test`.
pub struct LoglikLoss<'a> {
    plan: &'a Plan,
    global: HashMap<(usize, usize), f64>,
}

impl<'a> LoglikLoss<'a> {
    /// The global fits' test log-likelihoods among `rows`, by (cell, repetition).
    pub fn new(plan: &'a Plan, rows: &[ResultRow]) -> LoglikLoss<'a> {
        let global = rows.iter().filter(|r| r.estimator == "global").map(|r| ((r.cell, r.rep), r.scores.test_loglik));
        LoglikLoss { plan, global: global.collect() }
    }

    /// Whether the run has a global fit to compare with.
    pub fn has_global(&self) -> bool {
        !self.global.is_empty()
    }

    /// The row's loss, `None` without a global fit in its cell and repetition.
    pub fn of(&self, r: &ResultRow) -> Option<f64> {
        let g = self.global.get(&(r.cell, r.rep))?;
        Some((g - r.scores.test_loglik) / self.test_rows(r) as f64)
    }

    /// The test rows the row's scores are over (at least 1).
    pub fn test_rows(&self, r: &ResultRow) -> usize {
        self.plan.n_test(r.n).max(1)
    }
}

/// Warnings about what the run produced, in this order: global fits that did not converge, the
/// smallest of unequal shards short of rows, local fits stopped at the iteration cap, and the
/// reductions that collapsed by one measure or another (log-likelihood gap, variance ratio,
/// parameter error).
pub fn after_run(plan: &Plan, out: &StudyOutput) -> Vec<String> {
    [
        unfinished_protocols,
        unfinished_global_fits,
        short_smallest_shards,
        unconverged_local_fits,
        loglik_gaps,
        inflated_variances,
        parameter_errors,
    ]
    .iter()
    .flat_map(|check| check(plan, out))
    .collect()
}

/// Every (n, K, repetition) whose global fit stopped at `em.max_iter`: the reference of every
/// comparison is then unfinished.
fn unfinished_global_fits(plan: &Plan, out: &StudyOutput) -> Vec<String> {
    let mut seen: Vec<(usize, usize, usize)> = Vec::new();
    for run in &out.runs {
        let global = run.record.estimator("global").and_then(|g| g.fit.as_ref());
        let key = (run.cell.n, plan.setting(&run.cell).k, run.rep);
        if global.is_some_and(|f| !f.converged) && !seen.contains(&key) {
            seen.push(key);
        }
    }
    seen.into_iter()
        .map(|(n, k, rep)| format!(
            "the global fit (n = {n}, K = {k}, repetition {rep}) stopped at em.max_iter before converging: every comparison with it is against an unfinished fit; raise em.max_iter"
        ))
        .collect()
}

/// Cells whose protocol ended early (every machine failed, or no answer by a round's deadline),
/// whose last step of several rounds heard from fewer than half the machines, or that stopped on its
/// round cap before its tolerance (exact EM, federated averaging), counted over the repetitions.
fn unfinished_protocols(plan: &Plan, out: &StudyOutput) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut cells: Vec<usize> = out.runs.iter().map(|r| r.cell.index).collect();
    cells.dedup();
    for cell in cells {
        let runs: Vec<&CellRun> = out.runs.iter().filter(|r| r.cell.index == cell).collect();
        let name = &plan.protocols[plan.cells[cell].protocol].name;
        let m = runs[0].record.machines.len();
        let stopped: Vec<&str> = runs.iter().filter_map(|r| r.record.stopped.as_deref()).collect();
        if let Some(first) = stopped.first() {
            warnings.push(format!(
                "cell {cell} (M = {m}): protocol {name} ended early in {} of {} repetitions ({first}): its model is the server's last",
                stopped.len(),
                runs.len()
            ));
        }
        // A protocol that ended early is warned about above; its last round may have heard nobody.
        let few: Vec<usize> = runs
            .iter()
            .filter(|r| r.record.rounds.len() > 1 && r.record.stopped.is_none())
            .map(|r| r.record.machines.iter().filter(|m| m.included).count())
            .filter(|&used| 2 * used < m)
            .collect();
        if let Some(least) = few.iter().min() {
            warnings.push(format!(
                "cell {cell} (M = {m}): protocol {name}'s last step used the answers of fewer than half the machines in {} of {} repetitions (as few as {least}; failures or the deadline): its model is fitted on their rows only",
                few.len(),
                runs.len()
            ));
        }
        let capped = runs.iter().filter(|r| r.record.stopped.is_none() && r.record.converged == Some(false)).count();
        if capped > 0 {
            warnings.push(format!(
                "cell {cell} (M = {m}): protocol {name} reached its round cap before converging in {capped} of {} repetitions; raise its {}",
                runs.len(),
                match plan.protocols[plan.cells[cell].protocol].kind {
                    ProtocolKind::FedAvg { .. } => "rounds",
                    _ => "max_rounds",
                }
            ));
        }
    }
    warnings
}

/// Cells whose smallest shard is short of rows although the average is not (unequal shards: lognormal
/// sizes, a column partition; the average case is warned about before the run).
fn short_smallest_shards(plan: &Plan, out: &StudyOutput) -> Vec<String> {
    let mut warnings = Vec::new();
    for (cell, (m, _, rows)) in cell_means(out, Of::Protocol, |r| r.rows_per_parameter) {
        let c = &plan.cells[cell];
        let average = rows_per_parameter(plan, c.n, c.machines, plan.setting(c).k);
        if rows < MIN_ROWS_PER_PARAMETER && average >= MIN_ROWS_PER_PARAMETER {
            warnings.push(format!(
                "cell {cell} (M = {m}): the smallest shard has {rows:.1} training rows per free parameter (mean over the repetitions), below {MIN_ROWS_PER_PARAMETER}: its local fit is unreliable"
            ));
        }
    }
    warnings
}

/// Cells with local fits stopped at `em.max_iter`, counted over the repetitions.
fn unconverged_local_fits(_: &Plan, out: &StudyOutput) -> Vec<String> {
    let mut fits: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for run in &out.runs {
        let e = fits.entry(run.cell.index).or_default();
        for m in run.record.machines.iter().filter_map(|m| m.converged) {
            e.0 += usize::from(!m);
            e.1 += 1;
        }
    }
    fits.into_iter()
        .filter(|(_, (stopped, _))| *stopped > 0)
        .map(|(cell, (stopped, all))| format!(
            "cell {cell}: {stopped} of {all} local fits stopped at em.max_iter before converging; raise em.max_iter or loosen em.tol"
        ))
        .collect()
}

/// Cells whose protocol's model (the reduction, in one-shot) loses more than [`LOGLIK_GAP_WARNING`] nats per test row against the
/// global fit (mean over the repetitions).
fn loglik_gaps(plan: &Plan, out: &StudyOutput) -> Vec<String> {
    let loss = LoglikLoss::new(plan, &out.rows);
    cell_means(out, Of::Protocol, |r| loss.of(r))
        .into_iter()
        .filter(|(_, (_, _, gap))| *gap > LOGLIK_GAP_WARNING)
        .map(|(cell, (m, name, gap))| format!(
            "cell {cell} (M = {m}): {}'s test log-likelihood is {gap:.3} nats per row below the global fit's (warning level {LOGLIK_GAP_WARNING}), whatever its RPE says",
            model_of(name)
        ))
        .collect()
}

/// Cells where, in some repetition, the reduction's largest variance is more than
/// [`VARIANCE_RATIO_WARNING`] times the global fit's largest: the check that needs no truth.
fn inflated_variances(_: &Plan, out: &StudyOutput) -> Vec<String> {
    let largest = |r: &crate::cluster::record::RunRecord, name: &str| {
        r.estimator(name).map(|m| m.variances.iter().copied().fold(0.0, f64::max))
    };
    let mut ratios: BTreeMap<usize, (usize, f64)> = BTreeMap::new();
    for run in &out.runs {
        let r = &run.record;
        // The protocol's model is the record's first estimator (the reduction, in one-shot).
        let own = r.estimators.first().map_or("reduction", |e| e.name.as_str());
        if let (Some(reduced), Some(global)) = (largest(r, own), largest(r, "global")) {
            let e = ratios.entry(run.cell.index).or_insert((r.machines.len(), 0.0));
            e.1 = e.1.max(reduced / global);
        }
    }
    ratios
        .into_iter()
        .filter(|(_, (_, ratio))| *ratio > VARIANCE_RATIO_WARNING)
        .map(|(cell, (m, ratio))| format!(
            "cell {cell} (M = {m}): a reduced expert's variance is {} times the largest of the global fit's (warning level {VARIANCE_RATIO_WARNING}x): an expert that explains next to nothing, whatever the RPE says",
            times(ratio)
        ))
        .collect()
}

/// Cells whose protocol's model's parameter MSE against the truth is more than
/// [`PARAM_MSE_RATIO_WARNING`] times the global fit's (means over the repetitions).
fn parameter_errors(_: &Plan, out: &StudyOutput) -> Vec<String> {
    let global = cell_means(out, Of::Named("global"), |r| r.scores.param_mse);
    cell_means(out, Of::Protocol, |r| r.scores.param_mse)
        .into_iter()
        .filter_map(|(cell, (m, name, reduced))| {
            let &(_, _, global) = global.get(&cell)?;
            (reduced > PARAM_MSE_RATIO_WARNING * global).then(|| format!(
                "cell {cell} (M = {m}): {}'s parameter MSE against the truth is {} times the global fit's ({reduced:.3e} vs {global:.3e}; warning level {PARAM_MSE_RATIO_WARNING}x): some expert is far off, whatever its RPE and log-likelihood say",
                model_of(name),
                times(reduced / global)
            ))
        })
        .collect()
}

/// The protocol's model in words: `the reduction` (one-shot), or `the distributed-em model`.
fn model_of(estimator: &str) -> String {
    match estimator {
        "reduction" => "the reduction".into(),
        other => format!("the {other} model"),
    }
}

/// A ratio in words: `474` or `4.7e5`.
fn times(ratio: f64) -> String {
    if ratio < 1e4 { format!("{ratio:.0}") } else { format!("{ratio:.1e}") }
}

/// Which rows of a cell a warning reads.
#[derive(Clone, Copy)]
enum Of {
    /// The protocol's own row (the reduction's in one-shot cells).
    Protocol,
    /// The rows of one estimator.
    Named(&'static str),
}

/// Per cell, its M, the estimator read and the mean of `f` over its rows that have a value.
fn cell_means(
    out: &StudyOutput,
    of: Of,
    f: impl Fn(&ResultRow) -> Option<f64>,
) -> BTreeMap<usize, (usize, &'static str, f64)> {
    let mut values: BTreeMap<usize, (usize, &'static str, Vec<f64>)> = BTreeMap::new();
    let wanted = |r: &&ResultRow| match of {
        Of::Protocol => r.rounds.is_some(),
        Of::Named(name) => r.estimator == name,
    };
    for r in out.rows.iter().filter(wanted) {
        if let Some(v) = f(r) {
            values.entry(r.cell).or_insert((r.machines, r.estimator, Vec::new())).2.push(v);
        }
    }
    values.into_iter().map(|(c, (m, name, v))| (c, (m, name, v.iter().sum::<f64>() / v.len() as f64))).collect()
}
