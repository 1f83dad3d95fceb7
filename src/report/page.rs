//! `index.html`: the whole study on one self-contained page (no script, no external file, no web
//! font; the figures are the SVGs themselves, inline): the warnings, the summary table (one row per
//! cell) and the baselines, every figure, the scenario's text and the run's facts.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use super::recommend::{self, Recommendation};
use super::summary::{self, BaselineSummary, CellSummary, short};
use crate::study::{Plan, StudyOutput};

/// Text made safe for HTML.
pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC` (civil date from days, Howard Hinnant's algorithm).
fn utc(secs: u64) -> String {
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rest / 3600, rest % 3600 / 60)
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;font-size:.9em}th,td{padding:.25em .5em;border-bottom:1px solid #ddd;text-align:right}\
th{background:#f3f3f3}td{white-space:nowrap}td.text,th.text{text-align:left;white-space:normal}\
.warnings{background:#fff3f0;border-left:4px solid #c0392b;padding:.5em 1em}.ok{color:#2d7d46}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{font-size:.85em;color:#555}pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{color:#555}dd{margin:0}";

/// The page of a study whose figures (`stems`, each a `.svg` and a `.png` in `plots`) are drawn.
/// `budget` is the log-likelihood budget of the recommended M (`recommend`).
pub fn index_html(
    plan: &Plan,
    out: &StudyOutput,
    run: &Value,
    plots: &Path,
    stems: &[String],
    budget: f64,
) -> Result<String, String> {
    let mut h = String::new();
    let file = run["scenario_file"].as_str().map_or_else(|| plan.file.display().to_string(), String::from);
    let title = format!("dmoe: {}", plan.name);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let _ = writeln!(
        h,
        "<p>{} cells x {} repetition(s) of the scenario <code>{}</code>; {}, d = {}; {} clock. \
         Everything on this page is in <code>results.csv</code> and <code>run.json</code> beside it.</p>",
        plan.cells.len(),
        plan.repetitions,
        escape(&file),
        plan.k_label(),
        plan.d,
        plan.clock.name()
    );
    let has_truth = out.rows.iter().any(|r| r.scores.param_mse.is_some());
    warnings(&mut h, run, out.rows.iter().any(|r| r.estimator == "global"), has_truth);
    let cells = summary::cells(plan, &out.rows);
    recommendations(&mut h, &recommend::recommend(&cells, budget), budget);
    summary_table(&mut h, &cells);
    baselines_table(&mut h, &summary::baselines(plan, &out.rows));
    figures(&mut h, plots, stems)?;
    scenario(&mut h, plan, &file, run);
    facts(&mut h, run);
    h.push_str("</body>\n</html>\n");
    Ok(h)
}

/// The run's warnings, or what was checked when there are none (`has_global`: whether a global fit
/// ran to compare the reduction with; `has_truth`: whether parameter errors could be measured).
fn warnings(h: &mut String, run: &Value, has_global: bool, has_truth: bool) {
    let list: Vec<&str> =
        run["warnings"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    h.push_str("<h2 id=\"warnings\">Warnings</h2>\n");
    if list.is_empty() {
        let compared = match (has_global, has_truth) {
            (true, true) => {
                ", and no reduction fell more than 0.05 nats per test row below the global fit, had a parameter error over 100 times the global fit's or a variance over 10 times its largest"
            }
            (true, false) => {
                ", and no reduction fell more than 0.05 nats per test row below the global fit or had a variance over 10 times its largest (without a true model, no parameter error)"
            }
            (false, _) => "; without a global fit in the scenario, the reduction could not be compared with one",
        };
        let _ =
            writeln!(h, "<p class=\"ok\">None: every shard had enough rows, every local fit converged{compared}.</p>");
        return;
    }
    h.push_str("<div class=\"warnings\"><ul>\n");
    for w in list {
        let _ = writeln!(h, "<li>{}</li>", escape(w));
    }
    h.push_str("</ul></div>\n");
}

/// The recommended M of every sweep group.
fn recommendations(h: &mut String, list: &[Recommendation], budget: f64) {
    let _ = writeln!(
        h,
        "<h2 id=\"recommendation\">Recommended M</h2>\n<p>The M with the shortest makespan whose model (the protocol's; the reduction in one-shot) loses at most {budget} nats per test row against the global fit (<code>dmoe report --budget</code> to change it) and, with a true model, has a parameter error under 100 times the global fit's; none when that M is slower than the global fit on one machine. With several protocols, the first lines apply the same rule over every protocol: which protocol and M to use on each network. Means over the repetitions.</p>\n<ul>"
    );
    for r in list {
        let _ = writeln!(h, "<li><b>{}</b>: {}</li>", escape(&r.group), escape(&r.reason));
    }
    h.push_str("</ul>\n");
}

/// One row per cell: means over the repetitions.
fn summary_table(h: &mut String, cells: &[CellSummary]) {
    // The setting column only when the study sweeps K, S, stragglers or failures.
    let swept = cells.iter().any(|c| !c.label().is_empty());
    let protocols = cells.iter().any(|c| c.protocol.is_some());
    let setting_head = match (swept, protocols) {
        (false, _) => "",
        (true, false) => "<th class=\"text\">setting</th>",
        (true, true) => "<th class=\"text\">setting, protocol (its model)</th>",
    };
    let ours = summary::model_column(cells);
    let _ = writeln!(
        h,
        "<h2 id=\"summary\">Summary</h2>\n<p>Per cell, means over the repetitions. The log-likelihood gap is the test \
         log-likelihood per row the protocol's model (the reduction, in one-shot) loses against the global fit (0.05 and more: a warning); the parameter \
         error is against the true model (when the data have one). Machines included: in one-shot, those whose local models entered the reduced model \
         (not the failed, the late, nor those the screening dropped), in other protocols those whose answers the last step used; \
         local fits converged: among the machines that did not fail (none for protocols without local fits). \
         The RPE and parameter MSE columns marked reduction or protocol are those of the protocol's model (the reduction, in one-shot).</p>\n<table id=\"summary-table\">\n<thead>\n<tr><th>cell</th><th>M</th>\
         <th>n</th>{setting_head}<th class=\"text\">network</th><th>makespan (s)</th><th>speedup</th><th>test RPE<br>{ours}</th>\
         <th>test RPE<br>global</th><th>loglik gap<br>nats/row</th><th>param MSE<br>{ours}</th>\
         <th>param MSE<br>global</th><th>machines<br>included</th><th>machines<br>flagged</th>\
         <th>local fits<br>converged</th></tr>\n</thead>\n<tbody>"
    );
    for c in cells {
        let setting = if swept { format!("<td class=\"text\">{}</td>", escape(&c.label())) } else { String::new() };
        let numbers = [
            c.makespan_s,
            c.speedup,
            c.rpe,
            c.rpe_global,
            c.loglik_gap,
            c.param_mse,
            c.param_mse_global,
            c.machines_included,
            c.machines_flagged,
            c.local_converged,
        ];
        let numbers: String = numbers.iter().map(|v| format!("<td>{}</td>", short(*v))).collect();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td>{setting}<td class=\"text\">{}</td>{numbers}</tr>",
            c.cell,
            c.machines,
            c.n,
            escape(&c.network)
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

/// The baselines' accuracy over every cell.
fn baselines_table(h: &mut String, baselines: &[BaselineSummary]) {
    if baselines.is_empty() {
        return;
    }
    let truth = if baselines.iter().any(|b| b.name == "truth") {
        " The row <code>truth</code> is the true model itself: the floor the data leave to any estimator."
    } else {
        ""
    };
    let _ = write!(
        h,
        "<h2 id=\"baselines\">Baselines</h2>\n<p>Other ways to combine the same local models, at the largest M (means over its cells and repetitions).{truth}</p>\n"
    );
    h.push_str(
        "<table id=\"baselines-table\">\n<thead><tr><th class=\"text\">estimator</th><th>test RPE</th>\
         <th>loglik gap<br>nats/row</th><th>param MSE</th></tr></thead>\n<tbody>\n",
    );
    for b in baselines {
        let _ = writeln!(
            h,
            "<tr><td class=\"text\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            b.name,
            short(b.rpe),
            short(b.loglik_gap),
            short(b.param_mse)
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

/// Every figure inline, with links to its PNG and SVG files.
fn figures(h: &mut String, plots: &Path, stems: &[String]) -> Result<(), String> {
    h.push_str("<h2 id=\"figures\">Figures</h2>\n");
    for stem in stems {
        let path = plots.join(format!("{stem}.svg"));
        let svg = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = writeln!(
            h,
            "<figure id=\"fig-{stem}\">\n{}\n<figcaption><a href=\"plots/{stem}.png\">plots/{stem}.png</a> · <a href=\"plots/{stem}.svg\">svg</a></figcaption>\n</figure>",
            svg.trim()
        );
    }
    Ok(())
}

/// The scenario file's text and the overrides given on the command line.
fn scenario(h: &mut String, plan: &Plan, file: &str, run: &Value) {
    let _ = writeln!(h, "<h2 id=\"scenario\">Scenario</h2>\n<p><code>{}</code></p>", escape(file));
    let overrides: Vec<&str> =
        run["overrides"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    if !overrides.is_empty() {
        let list: Vec<String> = overrides.iter().map(|o| format!("<code>--set {}</code>", escape(o))).collect();
        let _ = writeln!(h, "<p>Overridden on the command line: {}</p>", list.join(", "));
    }
    let _ = writeln!(h, "<pre>{}</pre>", escape(&plan.text));
}

/// The facts of the run that results.csv does not hold.
fn facts(h: &mut String, run: &Value) {
    h.push_str("<h2 id=\"facts\">Run facts</h2>\n<dl>\n");
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        v => v.to_string(),
    };
    let mut fact = |name: &str, value: String| {
        let _ = writeln!(h, "<dt>{name}</dt><dd>{}</dd>", escape(&value));
    };
    fact("dmoe version", text(&run["dmoe_version"]));
    fact("seed", text(&run["seed"]));
    fact("clock", text(&run["clock"]));
    if let Some(c) = run["cost_model"].as_object() {
        let constants: Vec<String> =
            crate::cluster::clock::CostModel::NAMES.iter().map(|k| format!("{k} = {}", text(&c[*k]))).collect();
        fact("model-clock constants", format!("{}; from {}", constants.join(", "), text(&c["source"])));
    }
    fact("cores, --jobs", format!("{}, {}", text(&run["cores"]), text(&run["jobs"])));
    fact("wall time", format!("{:.1} s", run["wall_seconds"].as_f64().unwrap_or(0.0)));
    if let Some(t) = run["finished_unix_seconds"].as_u64() {
        fact("finished", utc(t));
    }
    h.push_str("</dl>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_escapes() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_942_800), "2026-11-29 09:00 UTC");
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
