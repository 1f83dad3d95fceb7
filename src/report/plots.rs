//! The figures of a study, each drawn once per backend (PNG and SVG, 800 x 600): speedup vs M with
//! the ideal line; the time breakdown per cell; accuracy vs M per estimator with the global fit as a
//! reference; one cluster's virtual timeline as a Gantt chart; the MM objective per iteration.
//! Text uses DejaVu Sans embedded in the binary, so PNGs render on machines without fonts.

mod figures;

use std::collections::BTreeMap;
use std::path::Path;

use self::figures::{Accuracy, Bar, Breakdown, Gantt, Objective, Speedup, mean, render};
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
    ("rpe", "Test relative prediction error vs M", "RPE = sum (y - yhat)^2 / sum y^2", false, |r| Some(r.scores.rpe)),
    ("param-mse", "Parameter error vs M (after label matching)", "parameter MSE against the truth", true, |r| {
        r.scores.param_mse
    }),
    ("transport", "Transport divergence to the true model vs M", "transport divergence (nats per point)", true, |r| {
        r.scores.transport_to_truth
    }),
];

/// The estimators of the accuracy plots, in legend order (the global fit is the reference line).
const ACCURACY_ESTIMATORS: [&str; 5] = ["reduction", "median", "aligned-average", "naive-average", "pooled"];

/// Draws every figure that the study's results support into `dir`: speedup, time breakdown,
/// accuracy per sweep group, the timeline of the largest cluster and the MM objective (both of
/// repetition 0).
pub fn write_all(dir: &Path, checked: &Plan, out: &StudyOutput) -> Result<(), String> {
    let speedup = by_group_and_m(checked, &out.rows, "reduction", |r| r.speedup);
    if !speedup.is_empty() {
        render(dir, "speedup", &Speedup { groups: speedup })?;
    }
    render(dir, "time-breakdown", &Breakdown { bars: breakdown_bars(checked, &out.rows) })?;
    write_accuracy(dir, checked, &out.rows)?;
    let first_rep = out.runs.iter().filter(|r| r.rep == 0);
    if let Some(run) = first_rep.clone().max_by_key(|r| (r.record.machines.len(), r.cell.index)) {
        render(dir, "timeline", &Gantt { run })?;
    }
    let runs: Vec<&CellRun> = first_rep.take(8).collect();
    if !runs.is_empty() {
        render(dir, "mm-objective", &Objective { runs })?;
    }
    Ok(())
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
        parts.push(net.split(" (").next().unwrap_or(&net).to_string());
    }
    parts.join(" ")
}

/// The accuracy plots, one set per sweep group (consecutive cells sharing n and network, so M varies
/// along the x axis); with several groups, file names end in `-<group>` and titles name the group.
fn write_accuracy(dir: &Path, checked: &Plan, rows: &[ResultRow]) -> Result<(), String> {
    let mut groups: Vec<(usize, usize)> = checked.cells.iter().map(|c| (c.n, c.network)).collect();
    groups.dedup();
    for (gi, &(n, net)) in groups.iter().enumerate() {
        let suffix = if groups.len() > 1 { format!("-{gi}") } else { String::new() };
        let network = checked.networks[net].label.clone();
        let group_rows: Vec<&ResultRow> = rows.iter().filter(|r| r.n == n && r.network == network).collect();
        let group = (groups.len() > 1).then(|| group_label(checked, n, &network));
        for metric in ACCURACY {
            if let Some(fig) = accuracy_figure(&group_rows, metric, group.as_deref()) {
                render(dir, &format!("accuracy-{}{suffix}", metric.0), &fig)?;
            }
        }
    }
    Ok(())
}

/// One metric's accuracy plot on a group's rows: per estimator, its finite values (positive ones on a
/// log axis) by M, and the global fit's mean as the reference; `None` when no estimator has a value.
fn accuracy_figure(
    rows: &[&ResultRow],
    (_, title, y_desc, log_y, f): AccuracyMetric,
    group: Option<&str>,
) -> Option<Accuracy> {
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
    if series.is_empty() {
        return None;
    }
    let global: Vec<f64> = rows.iter().filter(|r| r.estimator == "global").filter_map(|r| f(r)).collect();
    let title = match group {
        Some(group) => format!("{title} ({group})"),
        None => title.to_string(),
    };
    Some(Accuracy { title, y_desc: y_desc.into(), log_y, series, global: (!global.is_empty()).then(|| mean(&global)) })
}
