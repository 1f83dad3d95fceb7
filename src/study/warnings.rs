//! Warnings that keep a collapse from hiding behind a good-looking number: shards too small for the
//! model (before anything runs), local fits that stopped before converging, and a reduction whose
//! test log-likelihood falls well below the global fit's although its RPE may look fine.

use std::collections::{BTreeMap, HashMap};

use super::{Plan, ResultRow, StudyOutput};
use crate::numeric::model::n_free_params;

/// Fewer training rows per free parameter than this on a machine, and its local fit is unreliable.
pub const MIN_ROWS_PER_PARAMETER: f64 = 10.0;

/// The reduction's mean test log-likelihood per row may fall this far (nats) below the global
/// fit's before a warning.
pub const LOGLIK_GAP_WARNING: f64 = 0.05;

/// Training rows per machine over free parameters, for a data set of `n` rows on `m` machines
/// fitting `k` components (shards of equal size; unequal shards make some machines smaller).
pub fn rows_per_parameter(plan: &Plan, n: usize, m: usize, k: usize) -> f64 {
    (n - plan.n_test(n)) as f64 / m as f64 / n_free_params(k, plan.d) as f64
}

/// Warnings known before the run: every (n, M, K) whose machines get fewer than
/// [`MIN_ROWS_PER_PARAMETER`] training rows per free parameter.
pub fn before_run(plan: &Plan) -> Vec<String> {
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

/// Warnings about what the run produced: per cell, local fits that stopped at the iteration cap,
/// and a reduction whose mean test log-likelihood per row is more than [`LOGLIK_GAP_WARNING`]
/// below the global fit's.
pub fn after_run(plan: &Plan, out: &StudyOutput) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut fits: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for run in &out.runs {
        let e = fits.entry(run.cell.index).or_default();
        for m in run.record.machines.iter().filter_map(|m| m.converged) {
            e.0 += usize::from(!m);
            e.1 += 1;
        }
    }
    for (cell, (stopped, all)) in fits {
        if stopped > 0 {
            warnings.push(format!(
                "cell {cell}: {stopped} of {all} local fits stopped at em.max_iter before converging; raise em.max_iter or loosen em.tol"
            ));
        }
    }
    let loss = LoglikLoss::new(plan, &out.rows);
    let mut gaps: BTreeMap<usize, (usize, Vec<f64>)> = BTreeMap::new();
    for r in out.rows.iter().filter(|r| r.estimator == "reduction") {
        if let Some(l) = loss.of(r) {
            gaps.entry(r.cell).or_insert((r.machines, Vec::new())).1.push(l);
        }
    }
    for (cell, (m, g)) in gaps {
        let gap = g.iter().sum::<f64>() / g.len() as f64;
        if gap > LOGLIK_GAP_WARNING {
            warnings.push(format!(
                "cell {cell} (M = {m}): the reduction's test log-likelihood is {gap:.3} nats per row below the global fit's (warning level {LOGLIK_GAP_WARNING}), whatever its RPE says"
            ));
        }
    }
    warnings
}
