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

/// The reduction's mean parameter MSE against the truth may be this many times the global fit's
/// before a warning: a reduced expert (often a variance) far off the truth can cost little test
/// log-likelihood (at M = 512 with 78 rows per machine: a variance of 7,070 for a true 3, 0.04 nats
/// per row) and almost no RPE.
pub const PARAM_MSE_RATIO_WARNING: f64 = 100.0;

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

/// Warnings about what the run produced: per cell, local fits that stopped at the iteration cap, a
/// reduction whose mean test log-likelihood per row is more than [`LOGLIK_GAP_WARNING`] below the
/// global fit's, and one whose parameter MSE is more than [`PARAM_MSE_RATIO_WARNING`] times the
/// global fit's.
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
    let gaps = cell_means(out, "reduction", |r| loss.of(r));
    let mse = cell_means(out, "reduction", |r| r.scores.param_mse);
    let global_mse = cell_means(out, "global", |r| r.scores.param_mse);
    for (&cell, &(m, gap)) in &gaps {
        if gap > LOGLIK_GAP_WARNING {
            warnings.push(format!(
                "cell {cell} (M = {m}): the reduction's test log-likelihood is {gap:.3} nats per row below the global fit's (warning level {LOGLIK_GAP_WARNING}), whatever its RPE says"
            ));
        }
    }
    for (&cell, &(m, reduced)) in &mse {
        let Some(&(_, global)) = global_mse.get(&cell) else { continue };
        if reduced > PARAM_MSE_RATIO_WARNING * global {
            warnings.push(format!(
                "cell {cell} (M = {m}): the reduction's parameter MSE against the truth is {:.0} times the global fit's ({reduced:.3e} vs {global:.3e}; warning level {PARAM_MSE_RATIO_WARNING}x): some reduced expert is far off, whatever its RPE and log-likelihood say",
                reduced / global
            ));
        }
    }
    warnings
}

/// Per cell, its M and the mean of `f` over the rows of `estimator` that have a value.
fn cell_means(
    out: &StudyOutput,
    estimator: &str,
    f: impl Fn(&ResultRow) -> Option<f64>,
) -> BTreeMap<usize, (usize, f64)> {
    let mut values: BTreeMap<usize, (usize, Vec<f64>)> = BTreeMap::new();
    for r in out.rows.iter().filter(|r| r.estimator == estimator) {
        if let Some(v) = f(r) {
            values.entry(r.cell).or_insert((r.machines, Vec::new())).1.push(v);
        }
    }
    values.into_iter().map(|(c, (m, v))| (c, (m, v.iter().sum::<f64>() / v.len() as f64))).collect()
}
