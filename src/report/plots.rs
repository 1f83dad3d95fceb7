//! The figures of a study, each drawn once per backend (PNG and SVG, 1040 x 600 with the legend in
//! a panel on the right): speedup vs M with the ideal line (bars per network when M is fixed); the
//! time breakdown per cell; accuracy vs M per estimator with the global fit as a reference; the
//! test log-likelihood lost against the global fit; one cluster's virtual timeline as a Gantt
//! chart; the MM objective's convergence in every cell. Titles carry n, K, d and the repetitions.
//! Text uses DejaVu Sans embedded in the binary, so PNGs render on machines without fonts.

mod axes;
mod figures;
mod style;

use std::collections::BTreeMap;
use std::path::Path;

use self::figures::{Accuracy, Bar, Breakdown, EXCESS_FLOOR, Gantt, Objective, Speedup, mean, render};
use self::style::{Look, Marker, PALETTE, estimator_look};
use crate::study::warnings::LOGLIK_GAP_WARNING;
use crate::study::{Cell, Plan};
use crate::study::{CellRun, ResultRow, StudyOutput};

/// A sweep group: the cells sharing n and network (so M varies along them).
fn group_label(checked: &Plan, n: usize, network: &str) -> String {
    let many_n = checked.cells.iter().any(|c| c.n != checked.cells[0].n);
    let many_net = checked.networks.len() > 1;
    match (many_n, many_net) {
        (true, true) => format!("n = {n}, {network}"),
        (true, false) => format!("n = {n}"),
        (false, true) => network.to_string(),
        (false, false) => "reduction".to_string(),
    }
}

/// `values[(group label)][M]` = per-repetition values of `f` for rows of `estimator`.
fn by_group_and_m(
    checked: &Plan,
    rows: &[ResultRow],
    estimator: &str,
    f: impl Fn(&ResultRow) -> Option<f64>,
) -> Vec<(String, BTreeMap<usize, Vec<f64>>)> {
    let mut out: Vec<(String, BTreeMap<usize, Vec<f64>>)> = Vec::new();
    for r in rows.iter().filter(|r| r.estimator == estimator) {
        let Some(v) = f(r).filter(|v| v.is_finite()) else { continue };
        let label = group_label(checked, r.n, &r.network);
        let pos = out.iter().position(|(l, _)| *l == label).unwrap_or_else(|| {
            out.push((label, BTreeMap::new()));
            out.len() - 1
        });
        out[pos].1.entry(r.machines).or_default().push(v);
    }
    out
}

/// An accuracy plot's file stem, title, y-axis label, log scale, and the metric it reads.
type AccuracyMetric = (&'static str, &'static str, &'static str, bool, fn(&ResultRow) -> Option<f64>);

/// The accuracy plots: test RPE `sum (y - yhat)^2 / sum y^2`, parameter MSE against the truth (after
/// label matching) and the transport divergence to the true model.
const ACCURACY: [AccuracyMetric; 3] = [
    ("rpe", "Test RPE", "RPE = sum (y - yhat)^2 / sum y^2", false, |r| Some(r.scores.rpe)),
    ("param-mse", "Parameter error after label matching", "parameter MSE against the truth", true, |r| {
        r.scores.param_mse
    }),
    ("transport", "Transport divergence to the truth", "transport divergence (nats per point)", true, |r| {
        r.scores.transport_to_truth
    }),
];

/// The estimators of the accuracy plots, in legend order (the global fit is the reference line).
const ACCURACY_ESTIMATORS: [&str; 5] = ["reduction", "median", "aligned-average", "naive-average", "pooled"];

/// Smallest log-likelihood loss drawn: losses at or below it, gains included, are drawn at it.
const LOSS_FLOOR: f64 = 1e-4;

/// What every title ends with: the data's size, K, d and the repetitions.
fn facts(checked: &Plan) -> String {
    let ns: Vec<usize> = checked.cells.iter().map(|c| c.n).collect();
    let (lo, hi) = (ns.iter().min().copied().unwrap_or(0), ns.iter().max().copied().unwrap_or(0));
    let n = if lo == hi { thousands(lo) } else { format!("{}-{}", thousands(lo), thousands(hi)) };
    let reps = checked.repetitions;
    format!("n = {n}, K = {}, d = {}, {reps} repetition{}", checked.k, checked.d, if reps == 1 { "" } else { "s" })
}

/// `60000` as `60,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Draws every figure that the study's results support into `dir`: speedup, time breakdown,
/// accuracy and log-likelihood loss per sweep group, the timeline of the largest cluster and the MM
/// objective of every cell (both of repetition 0).
pub fn write_all(dir: &Path, checked: &Plan, out: &StudyOutput) -> Result<(), String> {
    let facts = facts(checked);
    let speedup = by_group_and_m(checked, &out.rows, "reduction", |r| r.speedup);
    if !speedup.is_empty() {
        render(dir, "speedup", &Speedup { title: format!("Speedup: {facts}"), groups: speedup })?;
    }
    let title = format!("Distributed learning time: {facts}");
    render(dir, "time-breakdown", &Breakdown { title, bars: breakdown_bars(checked, &out.rows) })?;
    write_accuracy(dir, checked, &out.rows, &facts)?;
    let first_rep = out.runs.iter().filter(|r| r.rep == 0);
    if let Some(run) = first_rep.clone().max_by_key(|r| (r.record.machines.len(), r.cell.index)) {
        let (m, n) = (run.record.machines.len(), thousands(run.cell.n));
        let title = format!("Virtual timeline of cell {}: M = {m}, n = {n}, repetition {}", run.cell.index, run.rep);
        render(dir, "timeline", &Gantt { title, run })?;
    }
    let traces: Vec<(String, Vec<f64>)> = first_rep.map(|r| objective_excess(checked, r)).collect();
    if !traces.is_empty() {
        let title = format!("Convergence of the reduction's MM, repetition 0: {facts}");
        render(dir, "mm-objective", &Objective { title, traces })?;
    }
    Ok(())
}

/// A cell's MM objective trace as its excess over the final value per supporting point,
/// `(J_t - J_final) / S`, floored at [`EXCESS_FLOOR`], with the cell's legend label.
fn objective_excess(checked: &Plan, run: &CellRun) -> (String, Vec<f64>) {
    let t = &run.record.objective_trace;
    let last = t.last().copied().unwrap_or(0.0);
    let s = checked.support.max(1) as f64;
    let excess = t.iter().map(|&j| ((j - last) / s).max(EXCESS_FLOOR)).collect();
    let mut label = format!("cell {}: M = {}", run.cell.index, run.record.machines.len());
    if checked.networks.len() > 1 {
        label.push_str(&format!(", {}", short_network(&checked.networks[run.cell.network].label)));
    }
    (label, excess)
}

/// A network's label up to any parenthesis.
fn short_network(label: &str) -> String {
    label.split(" (").next().unwrap_or(label).to_string()
}

/// One bar per cell: the reduced model's mean slowest local fit, network wait and reduction over the
/// repetitions, and the global fit's mean time when it ran.
fn breakdown_bars(checked: &Plan, rows: &[ResultRow]) -> Vec<Bar> {
    let varies = |f: &dyn Fn(&Cell) -> usize| checked.cells.iter().any(|c| f(c) != f(&checked.cells[0]));
    let vary = (varies(&|c| c.machines), varies(&|c| c.n), varies(&|c| c.network));
    checked
        .cells
        .iter()
        .map(|c| {
            let cell_rows: Vec<&ResultRow> = rows.iter().filter(|r| r.cell == c.index).collect();
            let red: Vec<&&ResultRow> = cell_rows.iter().filter(|r| r.estimator == "reduction").collect();
            let avg =
                |f: &dyn Fn(&ResultRow) -> Option<f64>| mean(&red.iter().filter_map(|r| f(r)).collect::<Vec<_>>());
            let glob: Vec<f64> =
                cell_rows.iter().filter(|r| r.estimator == "global").filter_map(|r| r.makespan_s).collect();
            let m = red.first().map_or(c.machines, |r| r.machines);
            (
                bar_label(checked, c, m, vary),
                avg(&|r| r.local_compute_max_s),
                avg(&|r| r.network_s),
                avg(&|r| r.reduce_s),
                (!glob.is_empty()).then(|| mean(&glob)),
            )
        })
        .collect()
}

/// A bar's label names only what varies across cells, `(M, n, network)`: M (also when nothing
/// varies), n, and a network by its name up to any parenthesis.
fn bar_label(checked: &Plan, c: &Cell, m: usize, (vary_m, vary_n, vary_net): (bool, bool, bool)) -> String {
    let net = checked.networks[c.network].label.clone();
    let mut parts = Vec::new();
    if vary_m || !(vary_n || vary_net) {
        parts.push(format!("M={m}"));
    }
    if vary_n {
        parts.push(format!("n={}", c.n));
    }
    if vary_net {
        parts.push(short_network(&net));
    }
    parts.join(" ")
}

/// The accuracy plots, one set per sweep group (consecutive cells sharing n and network, so M varies
/// along the x axis); with several groups, file names end in `-<group>` and titles name the group.
fn write_accuracy(dir: &Path, checked: &Plan, rows: &[ResultRow], facts: &str) -> Result<(), String> {
    let mut groups: Vec<(usize, usize)> = checked.cells.iter().map(|c| (c.n, c.network)).collect();
    groups.dedup();
    for (gi, &(n, net)) in groups.iter().enumerate() {
        let suffix = if groups.len() > 1 { format!("-{gi}") } else { String::new() };
        let network = checked.networks[net].label.clone();
        let group_rows: Vec<&ResultRow> = rows.iter().filter(|r| r.n == n && r.network == network).collect();
        let context = match groups.len() > 1 {
            true => {
                let reps = checked.repetitions;
                let s = if reps == 1 { "" } else { "s" };
                let (k, d) = (checked.k, checked.d);
                format!("n = {}, {}, K = {k}, d = {d}, {reps} repetition{s}", thousands(n), short_network(&network))
            }
            false => facts.to_string(),
        };
        for metric in ACCURACY {
            if let Some(fig) = accuracy_figure(&group_rows, metric, &context) {
                render(dir, &format!("accuracy-{}{suffix}", metric.0), &fig)?;
            }
        }
        if let Some(fig) = loglik_loss_figure(checked, &group_rows, &context) {
            render(dir, &format!("accuracy-loglik{suffix}"), &fig)?;
        }
    }
    Ok(())
}

/// The estimators of a group's rows with, for each, `f`'s finite values (positive ones on a log
/// axis) by M; estimators in legend order, none without a value.
fn estimator_series(
    rows: &[&ResultRow],
    log_y: bool,
    f: impl Fn(&ResultRow) -> Option<f64>,
) -> Vec<(String, BTreeMap<usize, Vec<f64>>)> {
    let mut series = Vec::new();
    for est in ACCURACY_ESTIMATORS {
        let mut g: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.estimator == est) {
            if let Some(v) = f(r).filter(|v| v.is_finite() && (!log_y || *v > 0.0)) {
                g.entry(r.machines).or_default().push(v);
            }
        }
        if !g.is_empty() {
            series.push((est.to_string(), g));
        }
    }
    series
}

/// One metric's accuracy plot on a group's rows, with the global fit's mean as the reference; `None`
/// when no estimator has a value.
fn accuracy_figure(
    rows: &[&ResultRow],
    (_, title, y_desc, log_y, f): AccuracyMetric,
    context: &str,
) -> Option<Accuracy> {
    let series = estimator_series(rows, log_y, f);
    if series.is_empty() {
        return None;
    }
    let global: Vec<f64> = rows.iter().filter(|r| r.estimator == "global").filter_map(|r| f(r)).collect();
    let reference = (!global.is_empty()).then(|| ("global fit".to_string(), mean(&global), estimator_look("global")));
    Some(Accuracy { title: format!("{title}: {context}"), y_desc: y_desc.into(), log_y, series, reference })
}

/// The test log-likelihood per row that each estimator loses against the global fit of the same
/// cell and repetition, `(l_global - l_estimator) / n_test` (log axis, losses below [`LOSS_FLOOR`]
/// drawn at it), with the warning level as the reference; `None` without a global fit.
fn loglik_loss_figure(checked: &Plan, rows: &[&ResultRow], context: &str) -> Option<Accuracy> {
    let global = |r: &ResultRow| {
        rows.iter()
            .find(|g| g.estimator == "global" && g.cell == r.cell && g.rep == r.rep)
            .map(|g| g.scores.test_loglik)
    };
    let series = estimator_series(rows, true, |r| {
        let per_row = checked.n_test(r.n).max(1) as f64;
        global(r).map(|g| ((g - r.scores.test_loglik) / per_row).max(LOSS_FLOOR))
    });
    if series.is_empty() {
        return None;
    }
    let warning = Look { color: PALETTE[7], marker: Marker::None, dashed: true, width: 2 };
    Some(Accuracy {
        title: format!("Test log-likelihood lost against the global fit: {context}"),
        y_desc: format!("nats per test row (at most {} drawn at it)", axes::log_label(LOSS_FLOOR)),
        log_y: true,
        series,
        reference: Some((format!("warning level {LOGLIK_GAP_WARNING}"), LOGLIK_GAP_WARNING, warning)),
    })
}
