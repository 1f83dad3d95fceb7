//! The figures of a study, each drawn once per backend (PNG and SVG, 1040 x 600 with the legend in
//! a panel on the right): speedup vs M with the ideal line (bars per network when M is fixed); the
//! time breakdown per cell; accuracy vs M per estimator with the global fit as a reference; the
//! test log-likelihood lost against the global fit; one cluster's virtual timeline as a Gantt
//! chart; the MM objective's convergence in every cell. Titles carry n, K, d and the repetitions.
//! Text uses DejaVu Sans embedded in the binary, so PNGs render on machines without fonts.

mod axes;
mod figures;
pub mod lesson;
mod style;

use std::collections::BTreeMap;
use std::path::Path;

use self::figures::{
    Accuracy, Bar, Breakdown, EXCESS_FLOOR, Gantt, Objective, Series, Speedup, Tradeoff, TradeoffSeries, mean, render,
};
use self::style::{GUIDE, Look, Marker, estimator_look, sequence_look};
use super::ViewOptions;
use crate::study::warnings::{LOGLIK_GAP_WARNING, LoglikLoss};
use crate::study::{Cell, Plan, Setting};
use crate::study::{CellRun, ResultRow, StudyOutput};

/// Whether the study has several data set sizes.
fn many_n(checked: &Plan) -> bool {
    checked.cells.iter().any(|c| c.n != checked.cells[0].n)
}

/// A sweep group: the cells sharing n, setting, protocol and network (so M varies along them), named
/// by what varies between groups; the network in full when it alone varies.
fn group_label(checked: &Plan, cell: &Cell) -> String {
    let network = &checked.networks[cell.network].label;
    let mut parts = Vec::new();
    if many_n(checked) {
        parts.push(format!("n = {}", thousands(cell.n)));
    }
    if checked.swept().any() {
        parts.push(checked.setting_label(checked.setting(cell)));
    }
    if checked.protocols.len() > 1 {
        parts.push(checked.protocols[cell.protocol].name.clone());
    }
    match (parts.is_empty(), checked.networks.len() > 1) {
        (true, true) => network.clone(),
        (true, false) => "reduction".to_string(),
        (false, true) => format!("{}, {}", parts.join(", "), short_network(network)),
        (false, false) => parts.join(", "),
    }
}

/// What the sweep groups differ by, for an axis of one bar per group.
fn group_kind(checked: &Plan) -> String {
    let swept = checked.swept();
    let mut parts = Vec::new();
    if many_n(checked) {
        parts.push("data set size n");
    }
    for (on, what) in [
        (swept.k, "K"),
        (swept.support, "supporting sample S"),
        (swept.straggler_fraction, "straggler fraction"),
        (swept.failure_probability, "failure probability"),
    ] {
        if on {
            parts.push(what);
        }
    }
    if checked.protocols.len() > 1 {
        parts.push("protocol");
    }
    if checked.networks.len() > 1 {
        parts.push("network");
    }
    if parts.is_empty() { "one cell".to_string() } else { parts.join(" and ") }
}

/// `values[(group label)][M]` = per-repetition values of `f` for the protocols' own rows (the
/// reduction's in one-shot cells: the rows with the times).
fn by_group_and_m(
    checked: &Plan,
    rows: &[ResultRow],
    f: impl Fn(&ResultRow) -> Option<f64>,
) -> Vec<(String, BTreeMap<usize, Vec<f64>>)> {
    let mut out: Vec<(String, BTreeMap<usize, Vec<f64>>)> = Vec::new();
    for r in rows.iter().filter(|r| r.rounds.is_some()) {
        let Some(v) = f(r).filter(|v| v.is_finite()) else { continue };
        let label = group_label(checked, &checked.cells[r.cell]);
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

/// The accuracy plots by metric: test RPE `sum (y - yhat)^2 / sum y^2`, parameter MSE against the
/// truth (after label matching), the transport divergence to the true model, the correlation of
/// prediction and response, and the agreement of the gate's clustering with the true components.
/// The test log-likelihood (`loglik`) has its own figure ([`loglik_figure`]).
const ACCURACY: [AccuracyMetric; 6] = [
    ("rpe", "Test RPE", "RPE = sum (y - yhat)^2 / sum y^2", false, |r| Some(r.scores.rpe)),
    ("param-mse", "Parameter error after label matching", "parameter MSE against the truth", true, |r| {
        r.scores.param_mse
    }),
    ("transport", "Transport divergence to the truth", "transport divergence (nats per point)", true, |r| {
        r.scores.transport_to_truth
    }),
    ("correlation", "Correlation of prediction and response", "correlation(y, yhat) on the test rows", false, |r| {
        Some(r.scores.correlation)
    }),
    ("ari", "Clustering agreement with the true components", "adjusted Rand index", false, |r| r.scores.ari),
    ("clustering-error", "Clustering error", "share of test rows in the wrong component", false, |r| {
        r.scores.clustering_error
    }),
];

/// Every metric `dmoe report --metric` accepts, as named in the accuracy plots' file names.
pub const METRICS: [&str; 7] = ["rpe", "loglik", "param-mse", "transport", "correlation", "ari", "clustering-error"];

/// The metrics plotted unless asked otherwise.
pub const DEFAULT_METRICS: [&str; 4] = ["rpe", "loglik", "param-mse", "transport"];

/// The estimators of the accuracy plots, in legend order (the global fit is the reference line).
const ACCURACY_ESTIMATORS: [&str; 8] =
    ["reduction", "refine", "distributed-em", "fedavg", "median", "aligned-average", "naive-average", "pooled"];

/// A linear accuracy axis whose positive values span more than this factor becomes a log axis.
const LOG_SPAN: f64 = 100.0;

/// Smallest log-likelihood loss drawn: losses at or below it, gains included, are drawn at it.
const LOSS_FLOOR: f64 = 1e-6;

/// What every title ends with: `data` (the data's size, and the group when the plot is about one
/// of several), then K (unless swept: the groups name it), d and the repetitions.
fn facts(checked: &Plan, data: &str) -> String {
    let reps = checked.repetitions;
    let k = if checked.swept().k { String::new() } else { format!("{}, ", checked.k_label()) };
    format!("{data}, {k}d = {}, {reps} repetition{}", checked.d, if reps == 1 { "" } else { "s" })
}

/// The sizes of the study's data sets: `n = 60,000` or `n = 6,000-60,000`.
fn sizes(checked: &Plan) -> String {
    let ns = checked.cells.iter().map(|c| c.n);
    let (lo, hi) = (ns.clone().min().unwrap_or(0), ns.max().unwrap_or(0));
    if lo == hi { format!("n = {}", thousands(lo)) } else { format!("n = {}-{}", thousands(lo), thousands(hi)) }
}

/// `60000` as `60,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Draws every figure that the study's results support into `dir`: speedup, time breakdown,
/// accuracy (the metrics of `opts`, from [`METRICS`]) per sweep group, the timeline of one run
/// (`opts.timeline`, or the largest cluster of repetition 0) and the MM objective of every cell of
/// repetition 0. Returns the file stems drawn (each as `.png` and `.svg`), in reading order.
pub fn write_all(dir: &Path, checked: &Plan, out: &StudyOutput, opts: &ViewOptions) -> Result<Vec<String>, String> {
    let mut drawn = Vec::new();
    let facts = facts(checked, &sizes(checked));
    let speedup = by_group_and_m(checked, &out.rows, |r| r.speedup);
    if !speedup.is_empty() {
        let (title, bar_desc) = (format!("Speedup: {facts}"), group_kind(checked));
        let looks = protocol_looks(checked, &out.rows, &speedup);
        drawn.push(render(dir, "speedup", &Speedup { title, groups: speedup, bar_desc, looks })?);
    }
    let (bars, x_desc) = breakdown_bars(checked, &out.rows);
    let title = format!("Distributed learning time: {facts}");
    let rounds = checked.protocols.iter().any(|p| p.kind.most_rounds(checked.em.accelerate) > 1);
    drawn.push(render(dir, "time-breakdown", &Breakdown { title, x_desc, bars, rounds })?);
    drawn.extend(write_tradeoffs(dir, checked, &out.rows)?);
    // Every protocol that reduces (one-shot, refine) reduces the same fits: its reduction is plotted
    // once, from a one-shot protocol's cells when there is one (it is then that protocol's own
    // model), else from the first reducing protocol's.
    let reducing = |r: &&ResultRow| r.estimator == "reduction";
    let own = |r: &&ResultRow| checked.protocols[checked.cells[r.cell].protocol].kind.estimator() == "reduction";
    let reducer = (out.rows.iter().filter(reducing).find(own).or_else(|| out.rows.iter().find(reducing)))
        .map(|r| checked.cells[r.cell].protocol);
    let accuracy_rows: Vec<ResultRow> = out
        .rows
        .iter()
        .filter(|r| r.estimator != "reduction" || Some(checked.cells[r.cell].protocol) == reducer)
        .cloned()
        .collect();
    drawn.extend(write_accuracy(dir, checked, &accuracy_rows, &opts.metrics)?);
    let first_rep: Vec<&CellRun> = out.runs.iter().filter(|r| r.rep == 0).collect();
    let timeline = match opts.timeline {
        Some((cell, rep)) => out.runs.iter().find(|r| r.cell.index == cell && r.rep == rep),
        None => first_rep.iter().copied().max_by_key(|r| (r.record.machines.len(), r.cell.index)),
    };
    if let Some(run) = timeline {
        let m = run.record.machines.len();
        let network = short_network(&checked.networks[run.cell.network].label);
        let setting = checked.setting(&run.cell);
        // The swept settings other than K (which the title gives anyway), e.g. the failures that
        // explain the crosses.
        let swept = checked.setting_label(setting);
        let swept =
            swept.split(", ").filter(|p| !p.is_empty() && !p.starts_with("K = ")).collect::<Vec<_>>().join(", ");
        let swept = if swept.is_empty() { swept } else { format!(", {swept}") };
        let protocol = match checked.protocols.len() {
            1 => String::new(),
            _ => format!(", {}", checked.protocols[run.cell.protocol].name),
        };
        let data = format!("M = {m}, n = {}, {network}{protocol}{swept}", thousands(run.cell.n));
        let title = format!("Virtual timeline of cell {}, repetition {}: {data}", run.cell.index, run.rep);
        let title = format!("{title}, K = {}, d = {}", setting.k, checked.d);
        drawn.push(render(dir, "timeline", &Gantt { title, run })?);
    }
    // The cells whose protocol reduces (one-shot, refine).
    let reducing: Vec<&CellRun> = first_rep.iter().copied().filter(|r| !r.record.objective_trace.is_empty()).collect();
    if !reducing.is_empty() {
        let title = format!("Convergence of the reduction's MM: {facts}");
        drawn.push(render(dir, "mm-objective", &Objective { title, traces: objective_excess(checked, &reducing) })?);
    }
    Ok(drawn)
}

/// The look of a protocol: its kind's estimator look when no two protocols share a kind, otherwise
/// one of a sequence over the protocols.
fn protocol_look(checked: &Plan, protocol: usize) -> Look {
    let kinds: Vec<&str> = checked.protocols.iter().map(|p| p.kind.estimator()).collect();
    match kinds.iter().enumerate().all(|(i, k)| !kinds[..i].contains(k)) {
        true => estimator_look(kinds[protocol]),
        false => sequence_look(protocol, kinds.len()),
    }
}

/// With several protocols, each speedup group's look: its protocol's colour and marker, and a line
/// per network (the first thick, the second dashed, the third thin, and so on); empty otherwise (the
/// groups then take a sequence).
fn protocol_looks(checked: &Plan, rows: &[ResultRow], groups: &[(String, BTreeMap<usize, Vec<f64>>)]) -> Vec<Look> {
    if checked.protocols.len() < 2 {
        return Vec::new();
    }
    groups
        .iter()
        .map(|(label, _)| {
            let row =
                rows.iter().find(|r| r.rounds.is_some() && group_label(checked, &checked.cells[r.cell]) == *label);
            let cell = &checked.cells[row.expect("a group comes from a row").cell];
            let (dashed, width) = [(false, 3), (true, 2), (false, 1)][cell.network % 3];
            Look { dashed, width, ..protocol_look(checked, cell.protocol) }
        })
        .collect()
}

/// The trade-off plots of a study with several protocols: one per data set size and setting (file
/// `tradeoff`, or `tradeoff-<i>` with several), one panel per network, a marker per protocol and M
/// at the mean makespan and the mean test log-likelihood per row lost against the global fit over
/// the repetitions (the global fit's minus the protocol's). None without several protocols or
/// without a global fit.
fn write_tradeoffs(dir: &Path, checked: &Plan, rows: &[ResultRow]) -> Result<Vec<String>, String> {
    let loss = LoglikLoss::new(checked, rows);
    if checked.protocols.len() < 2 || !loss.has_global() {
        return Ok(Vec::new());
    }
    let mut groups: Vec<(usize, usize)> = checked.cells.iter().map(|c| (c.n, c.setting)).collect();
    groups.dedup();
    let mut drawn = Vec::new();
    for (gi, &(n, setting)) in groups.iter().enumerate() {
        let panels = checked
            .networks
            .iter()
            .enumerate()
            .map(|(net, network)| {
                let series: Vec<TradeoffSeries> = checked
                    .protocols
                    .iter()
                    .enumerate()
                    .map(|(p, protocol)| {
                        let mut by_m: BTreeMap<usize, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
                        for r in rows.iter().filter(|r| r.rounds.is_some()) {
                            let c = &checked.cells[r.cell];
                            if (c.n, c.setting, c.network, c.protocol) != (n, setting, net, p) {
                                continue;
                            }
                            if let (Some(t), Some(l)) = (r.makespan_s, loss.of(r)) {
                                let e = by_m.entry(r.machines).or_default();
                                e.0.push(t);
                                e.1.push(l);
                            }
                        }
                        let points = by_m.into_iter().map(|(m, (t, g))| (m, mean(&t), mean(&g))).collect();
                        (protocol.name.clone(), protocol_look(checked, p), points)
                    })
                    .collect();
                (short_network(&network.label), series)
            })
            .collect();
        let data = match groups.len() {
            1 => sizes(checked),
            _ => {
                let swept = checked.setting_label(&checked.settings[setting]);
                let swept = if swept.is_empty() { swept } else { format!(", {swept}") };
                format!("n = {}{swept}", thousands(n))
            }
        };
        let title = format!("Time against accuracy per protocol: {}", facts(checked, &data));
        let stem = if groups.len() > 1 { format!("tradeoff-{gi}") } else { "tradeoff".to_string() };
        drawn.push(render(dir, &stem, &Tradeoff { title, panels, floor: LOSS_FLOOR })?);
    }
    Ok(drawn)
}

/// Every cell's MM objective trace as its excess over the final value per supporting point,
/// `(J_t - J_final) / S`, floored at [`EXCESS_FLOOR`]; cells with the very same trace (cells that
/// differ only by network share their fits) as one line, labelled with all of them.
fn objective_excess(checked: &Plan, runs: &[&CellRun]) -> Vec<(String, Vec<f64>)> {
    let mut distinct: Vec<(Vec<usize>, usize, &[f64])> = Vec::new();
    for run in runs {
        let (t, m) = (run.record.objective_trace.as_slice(), run.record.machines.len());
        match distinct.iter_mut().find(|(_, dm, dt)| *dm == m && *dt == t) {
            Some((cells, _, _)) => cells.push(run.cell.index),
            None => distinct.push((vec![run.cell.index], m, t)),
        }
    }
    distinct
        .into_iter()
        .map(|(cells, m, t)| {
            let s = checked.setting(&checked.cells[cells[0]]).support.max(1) as f64;
            let last = t.last().copied().unwrap_or(0.0);
            let excess = t.iter().map(|&j| ((j - last) / s).max(EXCESS_FLOOR)).collect();
            let names: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
            // The swept settings of the cells, when a sweep varies them (K, S, stragglers, failures).
            let settings: Vec<&Setting> = cells.iter().map(|&c| checked.setting(&checked.cells[c])).collect();
            let swept = checked.settings_label(&settings);
            let swept = if swept.is_empty() { swept } else { format!(", {swept}") };
            let label = match cells.len() {
                1 => format!("cell {}: M = {m}{swept}", names[0]),
                _ => format!("cells {}: M = {m}{swept}", names.join(", ")),
            };
            (label, excess)
        })
        .collect()
}

/// A network's label up to any parenthesis.
fn short_network(label: &str) -> String {
    label.split(" (").next().unwrap_or(label).to_string()
}

/// One bar per cell: the reduced model's mean slowest local fit, network time, wait for the
/// deadline and reduction over the repetitions, and the global fit's mean time when it ran.
/// Also returns what the bars' labels are, for the x axis.
fn breakdown_bars(checked: &Plan, rows: &[ResultRow]) -> (Vec<Bar>, String) {
    let varies = |f: &dyn Fn(&Cell) -> usize| checked.cells.iter().any(|c| f(c) != f(&checked.cells[0]));
    let vary = Varies {
        m: varies(&|c| c.machines),
        n: varies(&|c| c.n),
        setting: varies(&|c| c.setting),
        protocol: varies(&|c| c.protocol),
        network: varies(&|c| c.network),
    };
    // With many bars, when every group of bars sweeps the same M, M is said once under the axis.
    let same_ms = (vary.m && checked.cells.len() > MANY_BARS).then(|| same_machines(checked)).flatten();
    let x_desc = match &same_ms {
        _ if vary == (Varies { m: true, ..Varies::default() }) => "machines M".to_string(),
        Some(ms) => {
            let ms: Vec<String> = ms.iter().map(|m| m.to_string()).collect();
            format!("cell (in each group, M = {})", ms.join(", "))
        }
        None => "cell".to_string(),
    };
    let vary = Varies { m: vary.m && same_ms.is_none(), ..vary };
    let bars = checked
        .cells
        .iter()
        .map(|c| {
            let cell_rows: Vec<&ResultRow> = rows.iter().filter(|r| r.cell == c.index).collect();
            let red: Vec<&&ResultRow> = cell_rows.iter().filter(|r| r.rounds.is_some()).collect();
            let avg =
                |f: &dyn Fn(&ResultRow) -> Option<f64>| mean(&red.iter().filter_map(|r| f(r)).collect::<Vec<_>>());
            let glob: Vec<f64> =
                cell_rows.iter().filter(|r| r.estimator == "global").filter_map(|r| r.makespan_s).collect();
            let m = red.first().map_or(c.machines, |r| r.machines);
            Bar {
                label: bar_label(checked, c, m, vary),
                phases: [
                    avg(&|r| r.local_compute_max_s),
                    avg(&|r| r.network_s),
                    avg(&|r| r.wait_s),
                    avg(&|r| r.reduce_s),
                ],
                global: (!glob.is_empty()).then(|| mean(&glob)),
            }
        })
        .collect();
    (bars, x_desc)
}

/// The machine counts M of every group of consecutive cells alike but for M, when there are several
/// groups and all sweep the same M in the same order.
fn same_machines(checked: &Plan) -> Option<Vec<usize>> {
    let mut groups: Vec<(&Cell, Vec<usize>)> = Vec::new();
    for c in &checked.cells {
        match groups.last_mut() {
            Some((first, ms))
                if (first.n, first.setting, first.protocol, first.network)
                    == (c.n, c.setting, c.protocol, c.network) =>
            {
                ms.push(c.machines)
            }
            _ => groups.push((c, vec![c.machines])),
        }
    }
    (groups.len() > 1 && groups.iter().all(|(_, ms)| *ms == groups[0].1)).then(|| groups.swap_remove(0).1)
}

/// More bars than this in the time breakdown have no room for an M under each.
const MANY_BARS: usize = 16;

/// What varies across the cells of a study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Varies {
    m: bool,
    n: bool,
    setting: bool,
    protocol: bool,
    network: bool,
}

/// A bar's label names only what varies across cells, one per line from the innermost sweep to the
/// outermost: M (also when nothing varies), a network by its name up to any parenthesis, the
/// protocol, each swept setting key (`K=3`, the last swept first), n; just the number M when only M
/// varies.
fn bar_label(checked: &Plan, c: &Cell, m: usize, vary: Varies) -> String {
    if vary == (Varies { m: true, ..Varies::default() }) {
        return m.to_string();
    }
    let net = checked.networks[c.network].label.clone();
    // From the innermost sweep (M) to the outermost (n), as the cells are ordered.
    let mut parts = Vec::new();
    if vary.m || !(vary.n || vary.setting || vary.protocol || vary.network) {
        parts.push(format!("M={m}"));
    }
    if vary.network {
        parts.push(short_network(&net));
    }
    if vary.protocol {
        parts.push(checked.protocols[c.protocol].name.clone());
    }
    if vary.setting {
        let label = checked.setting_label(checked.setting(c));
        let keys: Vec<String> = label.split(", ").map(|p| p.replace(" = ", "=")).collect();
        parts.extend(keys.into_iter().rev());
    }
    if vary.n {
        parts.push(format!("n={}", thousands(c.n)));
    }
    parts.join("\n")
}

/// A sweep group drawn once: its index, its n, its members `(setting, network)` (the groups with the
/// very same rows), and those rows.
type Distinct<'a> = (usize, usize, Vec<(usize, usize)>, Vec<&'a ResultRow>);

/// The accuracy plots, one set per sweep group (consecutive cells sharing n, setting and network, so
/// M varies along the x axis); with several groups, file names end in `-<group>` and titles name
/// the group. Groups whose results are the same row for row (networks that change only the timing:
/// the cells share their fits) get one set, named after the first and titled with every network.
fn write_accuracy(dir: &Path, checked: &Plan, rows: &[ResultRow], metrics: &[String]) -> Result<Vec<String>, String> {
    let mut drawn = Vec::new();
    let mut groups: Vec<(usize, usize, usize)> = checked.cells.iter().map(|c| (c.n, c.setting, c.network)).collect();
    groups.dedup();
    let loss = LoglikLoss::new(checked, rows);
    let same = |a: &[&ResultRow], b: &[&ResultRow]| {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                (x.estimator, x.machines, x.rep, &x.scores) == (y.estimator, y.machines, y.rep, &y.scores)
            })
    };
    let mut distinct: Vec<Distinct> = Vec::new();
    for (gi, &(n, setting, net)) in groups.iter().enumerate() {
        let in_group = |r: &&ResultRow| {
            let c = &checked.cells[r.cell];
            (c.n, c.setting, c.network) == (n, setting, net)
        };
        let group_rows: Vec<&ResultRow> = rows.iter().filter(in_group).collect();
        match distinct.iter_mut().find(|(_, dn, _, dr)| *dn == n && same(dr, &group_rows)) {
            Some((_, _, members, _)) => members.push((setting, net)),
            None => distinct.push((gi, n, vec![(setting, net)], group_rows)),
        }
    }
    for (gi, n, members, group_rows) in &distinct {
        let suffix = if groups.len() > 1 { format!("-{gi}") } else { String::new() };
        let data = if groups.len() > 1 { merged_label(checked, *n, members) } else { sizes(checked) };
        let context = facts(checked, &data);
        for name in metrics {
            let figure = match ACCURACY.into_iter().find(|m| m.0 == name) {
                Some(metric) => accuracy_figure(checked, group_rows, metric, &context),
                None if name == "loglik" => loglik_figure(checked, &loss, group_rows, &context),
                None => return Err(format!("no accuracy metric `{name}` (metrics: {})", METRICS.join(", "))),
            };
            if let Some(fig) = figure {
                drawn.push(render(dir, &format!("accuracy-{name}{suffix}"), &fig)?);
            }
        }
    }
    Ok(drawn)
}

/// The title of sweep groups drawn once because their results are the same row for row (groups that
/// differ only in timing: networks, stragglers): n, then each swept key and the network with every
/// value the groups have, and "(same results)" when there are several groups.
fn merged_label(checked: &Plan, n: usize, members: &[(usize, usize)]) -> String {
    let mut parts = vec![format!("n = {}", thousands(n))];
    let settings: Vec<&Setting> = members.iter().map(|m| &checked.settings[m.0]).collect();
    let swept = checked.settings_label(&settings);
    if !swept.is_empty() {
        parts.push(swept);
    }
    let mut networks: Vec<String> = Vec::new();
    for m in members {
        let name = short_network(&checked.networks[m.1].label);
        if !networks.contains(&name) {
            networks.push(name);
        }
    }
    match networks.len() {
        1 if checked.networks.len() > 1 => parts.push(networks[0].clone()),
        1 => {}
        _ => parts.push(format!("networks {}", networks.join(", "))),
    }
    let same = if members.len() > 1 { " (same results)" } else { "" };
    format!("{}{same}", parts.join(", "))
}

/// The estimators of a group's rows with, for each, its look and `f`'s finite values (positive ones
/// on a log axis) by M; estimators in legend order, none without a value. With several protocols, a
/// protocol's own estimator (distributed-em, refine, fedavg; the reduction of one-shot) is labelled
/// by the protocol's name and drawn in the protocol's look, as in the trade-off and speedup plots;
/// any other estimator that several protocols report is one series per protocol, labelled
/// `median (protocol name)`, each after the first dashed in turn with another marker. The
/// protocols' own series come together, in the scenario's order, where the first of them would be.
fn estimator_series(
    checked: &Plan,
    rows: &[&ResultRow],
    log_y: bool,
    f: impl Fn(&ResultRow) -> Option<f64>,
) -> Vec<Series> {
    let several = checked.protocols.len() > 1;
    let mut series = Vec::new();
    // The protocols' own series by protocol index, and where in `series` they go.
    let mut own: Vec<(usize, Series)> = Vec::new();
    let mut own_at = None;
    for est in ACCURACY_ESTIMATORS {
        let mut protocols: Vec<usize> = Vec::new();
        for r in rows.iter().filter(|r| r.estimator == est) {
            let p = checked.cells[r.cell].protocol;
            if !protocols.contains(&p) {
                protocols.push(p);
            }
        }
        let mut others = 0;
        for &p in &protocols {
            let mut values: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
            for r in rows.iter().filter(|r| r.estimator == est && checked.cells[r.cell].protocol == p) {
                if let Some(v) = f(r).filter(|v| v.is_finite() && (!log_y || *v > 0.0)) {
                    values.entry(r.machines).or_default().push(v);
                }
            }
            if values.is_empty() {
                continue;
            }
            let protocol = &checked.protocols[p];
            if several && protocol.kind.estimator() == est {
                own_at.get_or_insert(series.len());
                own.push((p, Series { label: protocol.name.clone(), look: protocol_look(checked, p), values }));
                continue;
            }
            let label = if protocols.len() > 1 { format!("{est} ({})", protocol.name) } else { est.to_string() };
            let markers = [Marker::Circle, Marker::Square, Marker::Triangle, Marker::Diamond, Marker::Cross];
            let base = estimator_look(est);
            let look = match others {
                0 => base,
                k => {
                    let markers: Vec<Marker> = markers.into_iter().filter(|m| *m != base.marker).collect();
                    Look { dashed: k % 2 == 1, marker: markers[(k - 1) % markers.len()], ..base }
                }
            };
            others += 1;
            series.push(Series { label, look, values });
        }
    }
    own.sort_by_key(|(p, _)| *p);
    let at = own_at.unwrap_or(series.len());
    series.splice(at..at, own.into_iter().map(|(_, s)| s));
    series
}

/// One metric's accuracy plot on a group's rows, with the means of the global fit and of the true
/// model (when the scenario reports it) as references; `None`
/// when no estimator has a value.
fn accuracy_figure(
    checked: &Plan,
    rows: &[&ResultRow],
    (_, title, y_desc, log_y, f): AccuracyMetric,
    context: &str,
) -> Option<Accuracy> {
    let mut series = estimator_series(checked, rows, log_y, f);
    if series.is_empty() {
        return None;
    }
    // A positive metric spanning more than two orders of magnitude (an estimator that broke down)
    // goes on a log axis, so that the others stay readable.
    let values = || series.iter().flat_map(|s| s.values.values().flatten().copied());
    let (lo, hi) = values().fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let log_y = log_y || (lo > 0.0 && hi > LOG_SPAN * lo);
    if log_y {
        series = estimator_series(checked, rows, true, f);
    }
    // The global fit's mean, and the true model's where it is drawable (its parameter error is 0).
    let mean_of = |est: &str| {
        let v: Vec<f64> = rows.iter().filter(|r| r.estimator == est).filter_map(|r| f(r)).collect();
        Some(mean(&v)).filter(|m| !v.is_empty() && m.is_finite() && (!log_y || *m > 0.0))
    };
    let references = [("global", "global fit"), ("truth", "true model")]
        .into_iter()
        .filter_map(|(est, label)| mean_of(est).map(|m| (label.to_string(), m, estimator_look(est))))
        .collect();
    Some(Accuracy {
        title: format!("{title}: {context}"),
        y_desc: y_desc.into(),
        log_y,
        floor: None,
        series,
        references,
    })
}

/// The test log-likelihood per row that each estimator loses against the global fit of the same
/// cell and repetition (`LoglikLoss`; log axis, means and values below [`LOSS_FLOOR`], gains
/// included, drawn at it; the mean over repetitions is taken first),
/// with the warning level as the reference. Without a global fit in the scenario: each estimator's
/// test log-likelihood per row itself. `None` when no estimator has a value.
fn loglik_figure(checked: &Plan, loss: &LoglikLoss, rows: &[&ResultRow], context: &str) -> Option<Accuracy> {
    if !loss.has_global() {
        let per_row = |r: &ResultRow| Some(r.scores.test_loglik / loss.test_rows(r) as f64);
        let series = estimator_series(checked, rows, false, per_row);
        return (!series.is_empty()).then(|| Accuracy {
            title: format!("Test log-likelihood per row (no global fit in this scenario): {context}"),
            y_desc: "test log-likelihood per row (nats)".into(),
            log_y: false,
            floor: None,
            series,
            references: Vec::new(),
        });
    }
    // Gains (negative losses) kept: the mean is taken before the floor.
    let series = estimator_series(checked, rows, false, |r| loss.of(r));
    if series.is_empty() {
        return None;
    }
    Some(Accuracy {
        title: format!("Test log-likelihood lost against the global fit: {context}"),
        y_desc: format!("nats per test row (gains and losses below {} drawn at it)", axes::log_label(LOSS_FLOOR)),
        log_y: true,
        floor: Some(LOSS_FLOOR),
        series,
        references: vec![(format!("warning level {LOGLIK_GAP_WARNING}"), LOGLIK_GAP_WARNING, GUIDE)],
    })
}
