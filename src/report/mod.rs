//! Outputs of `dmoe run`: results.csv, run.json, the run records, Chrome traces of the virtual
//! timelines, and the plots. Everything is written into one folder, which appears whole
//! (`write_study`).

mod page;
pub mod plots;
pub mod recommend;
pub mod reload;
pub mod summary;
pub mod teach;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::cluster::clock::CostModel;
use crate::cluster::record::{EventKind, RunRecord, SpanKind};
use crate::destination::{self, Destination};
use crate::study::Plan;
use crate::study::{ResultRow, StudyOutput};

/// What the views of a study show: the accuracy metrics plotted (from `plots::METRICS`), the run of
/// the timeline, and the log-likelihood budget of the recommended M.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewOptions {
    pub metrics: Vec<String>,
    /// `(cell, repetition)`; `None` for the largest cluster of repetition 0.
    pub timeline: Option<(usize, usize)>,
    /// Nats per test row the protocol's model may lose against the global fit (`recommend`).
    pub budget: f64,
}

impl Default for ViewOptions {
    fn default() -> ViewOptions {
        ViewOptions {
            metrics: plots::DEFAULT_METRICS.iter().map(|m| m.to_string()).collect(),
            timeline: None,
            budget: recommend::DEFAULT_BUDGET,
        }
    }
}

/// Column names of results.csv, in order.
pub const RESULT_COLUMNS: [&str; 33] = [
    "scenario",
    "cell",
    "machines",
    "n",
    "network",
    "protocol",
    "protocol_kind",
    "k",
    "support",
    "straggler_fraction",
    "failure_probability",
    "rep",
    "estimator",
    "rpe",
    "test_loglik",
    "correlation",
    "param_mse",
    "transport_to_truth",
    "transport_to_truth_sum",
    "ari",
    "clustering_error",
    "local_compute_max_s",
    "network_s",
    "wait_s",
    "reduce_s",
    "makespan_s",
    "speedup",
    "rounds",
    "bytes_sent",
    "machines_included",
    "machines_flagged",
    "local_converged",
    "rows_per_parameter",
];

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

/// A number in its shortest exact form: positional for ordinary magnitudes (as before), scientific
/// below 1e-7 and from 1e16 on (so 1e-300 is not written with 300 zeros).
fn number(v: f64) -> String {
    match v != 0.0 && (v.abs() < 1e-7 || v.abs() >= 1e16) {
        true => format!("{v:e}"),
        false => v.to_string(),
    }
}

fn opt_number(v: Option<f64>) -> String {
    v.map_or(String::new(), number)
}

/// results.csv as bytes: one row per cell x repetition x estimator, with the cell's network and
/// protocol and its settings (K, S, straggler fraction, failure probability), empty where a metric
/// does not apply.
/// `transport_to_truth_sum` is the authors' convention: the divergence summed over the test rows
/// (`transport_to_truth` x the number of test rows) instead of averaged. Numbers are
/// written in their shortest exact form ([`number`]), so the file is reproducible byte for byte.
pub fn results_csv(plan: &Plan, rows: &[ResultRow]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(RESULT_COLUMNS).expect("writing to memory");
    for r in rows {
        let s = &r.scores;
        let setting = plan.setting(&plan.cells[r.cell]);
        w.write_record([
            plan.name.clone(),
            r.cell.to_string(),
            r.machines.to_string(),
            r.n.to_string(),
            r.network.clone(),
            r.protocol.clone(),
            r.protocol_kind.to_string(),
            setting.k.to_string(),
            setting.support.to_string(),
            opt_number(setting.straggler_fraction()),
            number(setting.machines.failure_probability),
            r.rep.to_string(),
            r.estimator.to_string(),
            number(s.rpe),
            number(s.test_loglik),
            number(s.correlation),
            opt_number(s.param_mse),
            opt_number(s.transport_to_truth),
            opt_number(s.transport_to_truth.map(|t| t * plan.n_test(r.n) as f64)),
            opt_number(s.ari),
            opt_number(s.clustering_error),
            opt_number(r.local_compute_max_s),
            opt_number(r.network_s),
            opt_number(r.wait_s),
            opt_number(r.reduce_s),
            opt_number(r.makespan_s),
            opt_number(r.speedup),
            opt(r.rounds),
            opt(r.bytes_sent),
            opt(r.machines_included),
            opt(r.machines_flagged),
            opt(r.local_converged),
            opt_number(r.rows_per_parameter),
        ])
        .expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}

/// A Chrome trace (open in Perfetto or chrome://tracing) of one run's virtual timeline: one track per
/// machine (its work and its messages in flight, round by round), one for the server (its steps:
/// the reduction in one-shot), markers for failures and deadlines. Times in microseconds of
/// virtual time.
pub fn chrome_trace(record: &RunRecord) -> serde_json::Value {
    let us = |s: f64| s * 1e6;
    let server = record.machines.len();
    let mut events =
        vec![json!({"name": "thread_name", "ph": "M", "pid": 1, "tid": server, "args": {"name": "server"}})];
    for m in &record.machines {
        events.push(json!({"name": "thread_name", "ph": "M", "pid": 1, "tid": m.machine, "args": {"name": format!("machine {}", m.machine)}}));
    }
    for sp in record.spans() {
        let tid = sp.machine.unwrap_or(server);
        let machine = sp.machine.map(|i| &record.machines[i]);
        let (name, mut args) = match (sp.kind, sp.round) {
            (SpanKind::Work, 1) if machine.is_some_and(|m| m.iterations.is_some()) => {
                let m = machine.expect("a machine's span");
                (
                    "local EM fit",
                    json!({"rows": m.rows, "speed": m.speed, "iterations": m.iterations, "converged": m.converged}),
                )
            }
            (SpanKind::Work, _) => ("machine work", json!({})),
            (SpanKind::Request, _) => ("request in flight", json!({})),
            (SpanKind::Answer { late }, 1) => {
                (if late { "report in flight (late)" } else { "report in flight" }, json!({}))
            }
            (SpanKind::Answer { late }, _) => {
                (if late { "answer in flight (late)" } else { "answer in flight" }, json!({}))
            }
            (SpanKind::Step { reduces: true }, _) => (
                "reduction",
                json!({"start": format!("{:?}", record.reduction_init), "mm_iterations": record.mm_iterations}),
            ),
            (SpanKind::Step { reduces: false }, _) => ("server step", json!({})),
        };
        args["round"] = json!(sp.round);
        events.push(json!({"name": name, "ph": "X", "ts": us(sp.start), "dur": us(sp.end - sp.start), "pid": 1, "tid": tid, "args": args}));
    }
    for e in &record.events {
        let name = match e.kind {
            EventKind::Failed => "failed",
            EventKind::Deadline => "deadline",
            _ => continue,
        };
        let (tid, scope) = (e.machine.unwrap_or(server), if e.machine.is_some() { "t" } else { "g" });
        events.push(json!({"name": name, "ph": "i", "s": scope, "ts": us(e.time), "pid": 1, "tid": tid, "args": {"round": e.round}}));
    }
    json!({"traceEvents": events, "displayTimeUnit": "ms"})
}

/// Facts about the run that are not reproducible (wall time, this machine), for run.json.
pub struct RunMeta {
    /// `--jobs`.
    pub jobs: usize,
    /// Overrides given with `--set` (and `--clock`, as `clock="..."`).
    pub overrides: Vec<String>,
    /// What the plots and the page show.
    pub views: ViewOptions,
    /// The run's warnings (`study::warnings`: before the run, then after it).
    pub warnings: Vec<String>,
}

/// run.json: the scenario as run, the crate version, the seed, the machine, and the measured
/// wall-clock facts of every cluster run (which therefore stay out of results.csv).
pub fn run_json(checked: &Plan, out: &StudyOutput, meta: &RunMeta) -> serde_json::Value {
    let runs: Vec<serde_json::Value> = out
        .runs
        .iter()
        .map(|r| {
            json!({"cell": r.cell.index, "rep": r.rep, "fits_from_cell": r.fits_from_cell, "wall_seconds": r.wall_seconds,
            "fit_cpu_seconds": r.fit_cpu_seconds, "server_cpu_seconds": r.server_cpu_seconds})
        })
        .collect();
    json!({
        "scenario": checked.document,
        "scenario_file": checked.file.display().to_string(),
        "scenario_path": std::path::absolute(&checked.file).unwrap_or_else(|_| checked.file.clone()).display().to_string(),
        "scenario_text": checked.text,
        "overrides": meta.overrides,
        "dmoe_version": env!("CARGO_PKG_VERSION"),
        "seed": checked.seed,
        "data_recipe": match &checked.data {
            crate::study::DataPlan::Synthetic { recipe, .. } => json!(recipe.label()),
            crate::study::DataPlan::Csv { .. } => serde_json::Value::Null,
        },
        "d": checked.d,
        "features": checked.features,
        "target": checked.target,
        "sweep_cells": checked.cells,
        "budget": meta.views.budget,
        "clock": checked.clock.name(),
        "cost_model": cost_model(checked),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "jobs": meta.jobs,
        "cells": checked.cells.len(),
        "repetitions": checked.repetitions,
        "wall_seconds": out.wall_seconds,
        "finished_unix_seconds": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "runs": runs,
        "warnings": meta.warnings,
    })
}

/// The model clock's constants and where they came from; `null` with the measured clock.
fn cost_model(checked: &Plan) -> serde_json::Value {
    match (&checked.clock, &checked.cost_source) {
        (crate::cluster::clock::Clock::Model(c), Some(source)) => {
            let mut constants: serde_json::Map<String, serde_json::Value> =
                CostModel::NAMES.iter().zip(c.values()).map(|(n, v)| (n.to_string(), json!(v))).collect();
            constants.insert("source".into(), json!(source));
            serde_json::Value::Object(constants)
        }
        _ => serde_json::Value::Null,
    }
}

/// Writes every output into `dir`, which must exist and be empty. Subfolders are made with
/// `create_dir`, never `create_dir_all`, so a writer cannot recreate `dir` after an interrupt
/// deleted it.
pub fn write_all(dir: &Path, checked: &Plan, out: &StudyOutput, meta: &RunMeta) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let write = |p: PathBuf, bytes: &[u8]| std::fs::write(&p, bytes).map_err(|e| io(&p, e));
    write(dir.join("results.csv"), &results_csv(checked, &out.rows))?;
    let pretty = |v: &serde_json::Value| serde_json::to_vec_pretty(v).expect("JSON values serialise");
    let run = run_json(checked, out, meta);
    write(dir.join("run.json"), &pretty(&run))?;
    for sub in ["traces", "records"] {
        std::fs::create_dir(dir.join(sub)).map_err(|e| io(&dir.join(sub), e))?;
    }
    for r in &out.runs {
        let stem = format!("cell-{}-rep-{}", r.cell.index, r.rep);
        write(dir.join("traces").join(format!("{stem}.json")), &pretty(&chrome_trace(&r.record)))?;
        let rec = serde_json::to_vec_pretty(&r.record).expect("records serialise");
        write(dir.join("records").join(format!("{stem}.json")), &rec)?;
    }
    write_views(dir, checked, out, &run, &meta.views)?;
    let mut readme = std::fs::File::create(dir.join("README.txt")).map_err(|e| io(dir, e))?;
    writeln!(
        readme,
        "dmoe run of {} ({} cells x {} repetition(s)).\nresults.csv: one row per cell x repetition x estimator (see scenarios/README.md for the columns).\nindex.html: the report (warnings, summary, every figure, the scenario); redraw it with `dmoe report`.\nrun.json: the scenario as run and the wall-clock facts.\nrecords/: every run's full record (models, per-machine times, events).\ntraces/: Chrome traces of the virtual timelines (open in https://ui.perfetto.dev).\nplots/: PNG and SVG figures.",
        checked.file.display(),
        checked.cells.len(),
        checked.repetitions
    )
    .map_err(|e| io(dir, e))?;
    Ok(())
}

/// Draws the views of a study into `dir`: the figures into `plots/` (a new folder) and the page
/// `index.html` that shows them.
pub fn write_views(
    dir: &Path,
    checked: &Plan,
    out: &StudyOutput,
    run: &serde_json::Value,
    opts: &ViewOptions,
) -> Result<(), String> {
    let plots = dir.join("plots");
    std::fs::create_dir(&plots).map_err(|e| format!("{}: {e}", plots.display()))?;
    let stems = plots::write_all(&plots, checked, out, opts)?;
    let html = page::index_html(checked, out, run, &plots, &stems, opts.budget)?;
    let index = dir.join("index.html");
    std::fs::write(&index, html).map_err(|e| format!("{}: {e}", index.display()))
}

/// `dmoe report`: draws the views of the output folder `dest` again from what it holds (results.csv,
/// run.json, records/) with `opts`, without running anything; the recommendation's budget is
/// `budget`, or the run's own; an error when a metric in `asked` has nothing to plot. The folder is
/// staged and swapped in whole, like a run's: its other files are hard links (or copies) of the old
/// ones. Returns the figures' count, the budget used and the recommendation under it.
pub fn redraw(
    dest: &Destination,
    opts: &ViewOptions,
    budget: Option<f64>,
    asked: &[String],
) -> Result<(usize, f64, Vec<recommend::Recommendation>), String> {
    let loaded = reload::reload(dest.path())?;
    let recorded = loaded.run["budget"].as_f64().unwrap_or(recommend::DEFAULT_BUDGET);
    let opts = &ViewOptions { budget: budget.unwrap_or(recorded), ..opts.clone() };
    if let Some((cell, rep)) = opts.timeline
        && !loaded.out.runs.iter().any(|r| r.cell.index == cell && r.rep == rep)
    {
        return Err(format!(
            "--timeline {cell} --rep {rep}: {} has no such run (cells 0-{}, repetitions 0-{})",
            dest.path().display(),
            loaded.plan.cells.len() - 1,
            loaded.plan.repetitions - 1
        ));
    }
    let staged = dest.stage().map_err(|e| e.to_string())?;
    link_tree(dest.path(), staged.path(), &["plots", "index.html", destination::OUTPUT_MARKER])?;
    write_views(staged.path(), &loaded.plan, &loaded.out, &loaded.run, opts)?;
    let drawn: Vec<String> = std::fs::read_dir(staged.path().join("plots"))
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".svg").map(String::from))
        .collect();
    if let Some(m) = asked
        .iter()
        .find(|m| !drawn.iter().any(|d| d == &format!("accuracy-{m}") || d.starts_with(&format!("accuracy-{m}-"))))
    {
        return Err(format!(
            "--metric {m}: this run has no values to plot for it (param-mse and transport need a true model, ari and clustering-error true labels: synthetic data or a `z` column)"
        ));
    }
    let figures = drawn.len();
    destination::commit(vec![staged]).map_err(|e| e.to_string())?;
    let cells = summary::cells(&loaded.plan, &loaded.out.rows);
    Ok((figures, opts.budget, recommend::recommend(&cells, opts.budget)))
}

/// Hard-links (or, across file systems, copies) every file under `from` into `to`, folders made
/// anew, except the top-level names in `skip`.
fn link_tree(from: &Path, to: &Path, skip: &[&str]) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    for entry in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let entry = entry.map_err(|e| io(from, e))?;
        let name = entry.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().map_err(|e| io(&src, e))?.is_dir() {
            std::fs::create_dir(&dst).map_err(|e| io(&dst, e))?;
            link_tree(&src, &dst, &[])?;
        } else if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(|e| io(&src, e))?;
        }
    }
    Ok(())
}

/// Writes every output of a study into the claimed folder `dest`: staged in a temporary sibling,
/// then swapped in whole (see `destination`), so an interrupted or failed run leaves the previous
/// content of `dest` untouched and no temporary behind.
pub fn write_study(dest: &Destination, checked: &Plan, out: &StudyOutput, meta: &RunMeta) -> Result<(), String> {
    let staged = dest.stage().map_err(|e| e.to_string())?;
    write_all(staged.path(), checked, out, meta)?;
    destination::commit(vec![staged]).map_err(|e| e.to_string())
}
