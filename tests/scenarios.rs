//! Scenario files and `dmoe run`: every shipped scenario is valid, every malformed fixture fails with
//! its own message and writes nothing, quickstart runs end to end, and the model clock makes
//! results.csv byte-identical across reruns and --jobs values.

mod common;

use common::{dmoe, workdir};

use std::path::{Path, PathBuf};
use std::process::Output;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn every_shipped_scenario_passes_check() {
    let scenarios = files(&repo("scenarios"), "toml");
    assert!(
        scenarios.len() >= 7,
        "quickstart, paper-fig5, paper-large, latency, stragglers, failures-deadline, diamonds"
    );
    for s in scenarios {
        let out = dmoe(&["check", s.to_str().unwrap()]);
        assert!(out.status.success(), "{}: {}", s.display(), String::from_utf8_lossy(&out.stderr));
        let text = std::fs::read_to_string(&s).unwrap();
        assert!(text.starts_with('#'), "{}: starts with a comment header saying what it shows", s.display());
    }
}

#[test]
fn malformed_scenarios_fail_with_their_message_and_write_nothing() {
    let fixtures = files(&repo("tests/fixtures/bad"), "toml");
    assert!(fixtures.len() >= 15, "at least 15 malformed scenarios");
    let dir = workdir("bad_scenarios");
    for f in fixtures {
        let text = std::fs::read_to_string(&f).unwrap();
        let expected =
            text.lines().next().and_then(|l| l.strip_prefix("# expect: ")).expect("first line: # expect: ...");
        let out_dir = dir.join(f.file_stem().unwrap());
        let out = dmoe(&["run", f.to_str().unwrap(), "--out", out_dir.to_str().unwrap(), "--quiet"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", f.display());
        assert!(stderr.contains(expected), "{}: expected `{expected}` in: {stderr}", f.display());
        assert!(stderr.contains(f.file_name().unwrap().to_str().unwrap()), "the message names the file: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out_dir.exists(), "{}: an output folder was written", f.display());
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(leftovers.is_empty(), "no temporary folders left behind: {leftovers:?}");
}

fn run_quickstart(out: &Path, extra: &[&str]) -> Output {
    let q = repo("scenarios/quickstart.toml");
    let mut args = vec![
        "run",
        q.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--set",
        "data.n=6000",
        "--set",
        "repetitions=1",
    ];
    args.extend(extra);
    dmoe(&args)
}

#[test]
fn quickstart_runs_end_to_end() {
    let dir = workdir("quickstart");
    let out_dir = dir.join("q");
    let out = run_quickstart(&out_dir, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "--quiet prints nothing");
    let mut r = csv::Reader::from_path(out_dir.join("results.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    for col in [
        "scenario",
        "cell",
        "machines",
        "n",
        "rep",
        "estimator",
        "rpe",
        "test_loglik",
        "param_mse",
        "transport_to_truth",
        "ari",
        "local_compute_max_s",
        "network_s",
        "reduce_s",
        "makespan_s",
        "speedup",
        "bytes_sent",
    ] {
        assert!(header.iter().any(|h| h == col), "results.csv lacks `{col}`");
    }
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 5 * 6, "5 cells x 1 repetition x 6 estimators");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let finite = |row: &csv::StringRecord, name: &str| row[col(name)].parse::<f64>().is_ok_and(f64::is_finite);
    for row in &rows {
        let est = &row[col("estimator")];
        for m in ["rpe", "test_loglik", "correlation"] {
            assert!(finite(row, m), "{est}: {m} = `{}`", &row[col(m)]);
        }
        if est != "pooled" {
            for m in ["param_mse", "transport_to_truth", "ari", "clustering_error"] {
                assert!(finite(row, m), "{est}: {m} = `{}`", &row[col(m)]);
            }
        }
        if est == "reduction" {
            for m in ["local_compute_max_s", "network_s", "reduce_s", "makespan_s", "speedup", "bytes_sent"] {
                assert!(finite(row, m), "reduction: {m} = `{}`", &row[col(m)]);
            }
        }
    }
    for stem in [
        "speedup",
        "time-breakdown",
        "accuracy-rpe",
        "accuracy-param-mse",
        "accuracy-transport",
        "accuracy-loglik",
        "timeline",
        "mm-objective",
    ] {
        for ext in ["png", "svg"] {
            let p = out_dir.join("plots").join(format!("{stem}.{ext}"));
            assert!(std::fs::metadata(&p).is_ok_and(|m| m.len() > 1000), "{} exists", p.display());
        }
        assert_readable(&out_dir.join("plots").join(format!("{stem}.svg")));
    }
    let machines = ["1", "2", "4", "8", "16"];
    for stem in ["speedup", "accuracy-rpe", "accuracy-loglik"] {
        let texts = svg_texts(&out_dir.join("plots").join(format!("{stem}.svg")));
        for m in machines {
            assert!(texts.iter().any(|t| t.text == m && t.anchor == "middle"), "{stem}: no tick at M = {m}");
        }
    }
    let texts = svg_texts(&out_dir.join("plots/mm-objective.svg"));
    for (cell, m) in machines.iter().enumerate() {
        let label = format!("cell {cell}: M = {m}");
        assert!(texts.iter().any(|t| t.text == label), "mm-objective lacks `{label}`");
    }
    for stem in ["speedup", "accuracy-rpe", "mm-objective"] {
        let texts = svg_texts(&out_dir.join("plots").join(format!("{stem}.svg")));
        assert!(texts[0].text.contains("n = 6,000, K = 3, d = 2, 1 repetition"), "{stem} title: {}", texts[0].text);
    }
    let trace: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("traces/cell-4-rep-0.json")).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    assert!(events.iter().any(|e| e["name"] == "reduction" && e["ph"] == "X"));
    assert_eq!(events.iter().filter(|e| e["name"] == "local EM fit").count(), 16);
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["dmoe_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(run["seed"], 1);
    assert!(run["cores"].as_u64().unwrap() >= 1);
    assert_eq!(run["scenario"]["data"]["n"], serde_json::json!(6000), "the scenario as run, overrides applied");
}

#[test]
fn model_clock_results_are_byte_identical_across_reruns_and_jobs() {
    let dir = workdir("reproducible");
    let mut results = Vec::new();
    for (name, jobs) in [("a", "1"), ("b", "1"), ("c", "2")] {
        let out_dir = dir.join(name);
        let out = run_quickstart(&out_dir, &["--clock", "model", "--jobs", jobs]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        results.push(std::fs::read(out_dir.join("results.csv")).unwrap());
    }
    assert!(results[0] == results[1], "results.csv differs between two identical runs");
    assert!(results[0] == results[2], "results.csv differs between --jobs 1 and --jobs 2");
}

#[test]
fn unequal_shards_reach_the_machines() {
    let dir = workdir("unequal");
    let out_dir = dir.join("u");
    let out = run_quickstart(
        &out_dir,
        &[
            "--set",
            "cluster.machines=[8]",
            "--set",
            "cluster.shard_sizes={kind=\"lognormal\",sigma=0.8}",
            "--set",
            "estimators=[\"reduction\"]",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("records/cell-0-rep-0.json")).unwrap()).unwrap();
    let rows: Vec<u64> = rec["machines"].as_array().unwrap().iter().map(|m| m["rows"].as_u64().unwrap()).collect();
    assert_eq!(rows.iter().sum::<u64>(), 4800, "every training row on exactly one machine");
    assert!(rows.iter().max().unwrap() > &(2 * rows.iter().min().unwrap()), "unequal shards: {rows:?}");
    let lambdas: Vec<f64> = rec["machines"].as_array().unwrap().iter().map(|m| m["lambda"].as_f64().unwrap()).collect();
    for (l, r) in lambdas.iter().zip(&rows) {
        assert!((l - *r as f64 / 4800.0).abs() < 1e-12, "lambda_m = N_m / N");
    }
}

#[test]
fn the_scenario_outlier_policy_reaches_the_reduction() {
    let dir = workdir("outlier_policy");
    for (policy, screened) in [("keep", false), ("flag", true)] {
        let out_dir = dir.join(policy);
        let set = format!("reduction.outliers=\"{policy}\"");
        let out = run_quickstart(
            &out_dir,
            &["--set", "cluster.machines=[4]", "--set", &set, "--set", "estimators=[\"reduction\"]"],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let rec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out_dir.join("records/cell-0-rep-0.json")).unwrap()).unwrap();
        let scored = rec["machines"].as_array().unwrap().iter().all(|m| m["outlier_score"].is_f64());
        assert_eq!(scored, screened, "outliers = {policy}: machines scored = {scored}");
    }
}

#[test]
fn every_problem_of_a_scenario_is_reported_at_once_with_its_line_and_key_path() {
    let dir = workdir("many_problems");
    let file = dir.join("many.toml");
    std::fs::write(
        &file,
        r#"seed = "one"
repetitions = 2

[data]
kind = "synthetic"
k = 3
d = 2.5
n = 4000

[cluster]
machines = [2, 4]
suport = 100

[[network]]
name = "lan"
latency = { kind = "constant", seconds = 0.001 }

[[network]]
name = "wan"
latency = { kind = "constant", seconds = -0.08 }
"#,
    )
    .unwrap();
    let out = dmoe(&["check", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for expected in [
        "4 problems",
        "line 1: `seed`: expected a whole number >= 0, got \"one\" (text)",
        "line 7: `data.d`: expected a whole number in [1, 1000], got 2.5 (a decimal number)",
        "line 12: `cluster.suport`: unknown key; known keys here: `deadline`, `machines`, `partition`, `shard_sizes`, `support`",
        "line 20: `network[1].latency.seconds`: expected a number in [0, 1000000], got -0.08",
    ] {
        assert!(stderr.contains(expected), "expected `{expected}` in:\n{stderr}");
    }
    for jargon in ["usize", "u64", "f64", "enum", "invalid type"] {
        assert!(!stderr.contains(jargon), "Rust jargon `{jargon}` in: {stderr}");
    }
    let set = dmoe(&[
        "check",
        file.to_str().unwrap(),
        "--set",
        "seed=7",
        "--set",
        "data.d=2",
        "--set",
        "cluster.machines=two",
    ]);
    let stderr = String::from_utf8_lossy(&set.stderr);
    assert!(stderr.contains("--set cluster.machines=two: `two` is not a TOML value (text goes in double quotes inside single quotes: --set 'cluster.machines=\"two\"')"), "{stderr}");
}

#[test]
fn network_cells_replay_the_same_fits_and_machine_draws() {
    // The latency scenario sweeps four networks at each M. With the model clock, the cells of one
    // (M, repetition) share their shards, fits, stragglers and failures: they must agree on the
    // slowest compute time and on every estimate, and differ only by the network's part.
    let dir = workdir("network_replay");
    let out_dir = dir.join("l");
    let file = repo("scenarios/latency.toml");
    let out = dmoe(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--quiet",
        "--clock",
        "model",
        "--set",
        "data.n=6000",
        "--set",
        "repetitions=2",
        "--set",
        "cluster.machines=[4, 8]",
        "--set",
        "machines.speed={kind=\"stragglers\",fraction=0.25,slowdown=3.0}",
        "--set",
        "machines.failure_probability=0.2",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut r = csv::Reader::from_path(out_dir.join("results.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    let mut groups: std::collections::BTreeMap<(String, String, String), Vec<&csv::StringRecord>> = Default::default();
    for row in &rows {
        let key = (row[col("machines")].to_string(), row[col("rep")].to_string(), row[col("estimator")].to_string());
        groups.entry(key).or_default().push(row);
    }
    assert_eq!(groups.len(), 2 * 2 * 6, "M x repetitions x estimators");
    let same = ["local_compute_max_s", "reduce_s", "test_loglik", "rpe", "param_mse", "machines_included"];
    for ((m, rep, est), cells) in &groups {
        assert_eq!(cells.len(), 4, "four networks");
        for c in &cells[1..] {
            for name in same {
                assert_eq!(&c[col(name)], &cells[0][col(name)], "M = {m}, rep {rep}, {est}: {name}");
            }
        }
        if est == "reduction" {
            let net = |c: &csv::StringRecord| c[col("network_s")].parse::<f64>().unwrap();
            assert!(net(cells[3]) > 10.0 * net(cells[0]), "satellite slower than the rack (M = {m}, rep {rep})");
        }
    }
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap();
    let from: Vec<u64> =
        run["runs"].as_array().unwrap().iter().map(|r| r["fits_from_cell"].as_u64().unwrap()).collect();
    assert!(from.iter().all(|&c| c == 0 || c == 1), "cells of M = 4 replay cell 0's fits, M = 8 cell 1's: {from:?}");
}

#[test]
fn a_network_under_which_nothing_arrives_is_named_with_its_cell() {
    // Two networks replay the same fits; only the slow one misses the deadline. The error names
    // that cell and network, not the whole group, and nothing is written.
    let dir = workdir("network_failure");
    let out_dir = dir.join("d");
    let out = run_quickstart(
        &out_dir,
        &[
            "--set",
            "cluster.machines=[4]",
            "--set",
            "cluster.deadline=2.0",
            "--set",
            "network=[{name=\"rack\",latency={kind=\"constant\",seconds=0.0002}},{name=\"slow\",latency={kind=\"constant\",seconds=10.0}}]",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cell 1 (M = 4, n = 6000, network slow), repetition 0: no machine reported in time"), "{err}");
    assert!(!out_dir.exists(), "no partial output");
}

/// Failures that leave a protocol of several rounds with few machines are warned about twice: before
/// the run as a worst case over its round cap, after it with how few machines its last step heard.
#[test]
fn a_protocol_left_with_few_machines_is_warned_about() {
    let dir = workdir("few_machines");
    let out_dir = dir.join("d");
    let scenario = repo("scenarios/protocols.toml");
    let args = [
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--set",
        "cluster.machines=[8]",
        "--set",
        "data.n=8000",
        "--set",
        "machines.failure_probability=0.4",
        "--set",
        "network=[{name=\"rack\",latency={kind=\"constant\",seconds=0.0001}}]",
        "--set",
        "protocol=[{name=\"fedavg 1x\",kind=\"fedavg\",local_iterations=1,rounds=6}]",
    ];
    let out = dmoe(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("should it run all of its up to 7 rounds (the worst case"), "{err}");
    assert!(err.contains("protocol fedavg 1x's last step used the answers of fewer than half the machines"), "{err}");
}

/// A text element of an SVG drawn by plotters: position, anchor, font size, rotation, content.
#[derive(Debug)]
struct SvgText {
    x: f64,
    y: f64,
    anchor: String,
    size: f64,
    rotated: bool,
    text: String,
}

fn svg_texts(path: &Path) -> Vec<SvgText> {
    parse_svg_texts(&std::fs::read_to_string(path).unwrap())
}

fn parse_svg_texts(svg: &str) -> Vec<SvgText> {
    svg.split("<text ")
        .skip(1)
        .map(|chunk| {
            let (head, rest) = chunk.split_once('>').unwrap();
            let attr = |name: &str| {
                let start = head.find(&format!("{name}=\"")).map(|i| i + name.len() + 2)?;
                Some(head[start..].split('"').next().unwrap().to_string())
            };
            let number = |name: &str| attr(name).unwrap().parse::<f64>().unwrap();
            SvgText {
                x: number("x"),
                y: number("y"),
                anchor: attr("text-anchor").unwrap_or_else(|| "start".into()),
                size: number("font-size"),
                rotated: attr("transform").is_some(),
                text: rest.split("</text>").next().unwrap().trim().to_string(),
            }
        })
        .collect()
}

/// Fails on a duplicate or overlapping label, or text running off the image: labels centred on one
/// baseline (x axes, bar labels) must not touch (width estimated at 0.64 em per character), and
/// numeric ones must be distinct; labels right-aligned at one x (y axes) must be distinct and at
/// least a line apart; no text may reach past the image's edges (at 0.58 em per character, about
/// DejaVu Sans' average).
fn assert_readable(path: &Path) {
    let svg = std::fs::read_to_string(path).unwrap();
    let width: f64 = svg.split("width=\"").nth(1).and_then(|w| w.split('"').next()).unwrap().parse().unwrap();
    assert_readable_svg(&path.display().to_string(), &svg, width);
}

fn assert_readable_svg(name: &str, svg: &str, image_width: f64) {
    let texts: Vec<SvgText> = parse_svg_texts(svg).into_iter().filter(|t| !t.rotated && !t.text.is_empty()).collect();
    for t in &texts {
        let w = t.text.chars().count() as f64 * 0.58 * t.size;
        let (left, right) = match t.anchor.as_str() {
            "middle" => (t.x - w / 2.0, t.x + w / 2.0),
            "end" => (t.x - w, t.x),
            _ => (t.x, t.x + w),
        };
        assert!(left >= -1.0 && right <= image_width + 1.0, "{name}: `{}` runs off the image", t.text);
    }
    let numeric = |t: &SvgText| t.text.parse::<f64>().is_ok();
    let groups = |anchor: &str, key: &dyn Fn(&SvgText) -> f64| {
        let mut g: Vec<(f64, Vec<&SvgText>)> = Vec::new();
        for t in texts.iter().filter(|t| t.anchor == anchor) {
            match g.iter_mut().find(|(k, _)| (*k - key(t)).abs() < 0.5) {
                Some((_, v)) => v.push(t),
                None => g.push((key(t), vec![t])),
            }
        }
        g
    };
    for (_, row) in groups("middle", &|t| t.y) {
        for (i, a) in row.iter().enumerate() {
            for b in &row[i + 1..] {
                assert!(!numeric(a) || a.text != b.text, "{name}: tick label `{}` twice on one axis", a.text);
                let half = |t: &SvgText| t.text.chars().count() as f64 * 0.64 * t.size / 2.0;
                assert!((a.x - b.x).abs() >= half(a) + half(b), "{name}: `{}` and `{}` overlap", a.text, b.text);
            }
        }
    }
    for (_, column) in groups("end", &|t| t.x) {
        for (i, a) in column.iter().enumerate() {
            for b in &column[i + 1..] {
                assert!(a.text != b.text, "{name}: tick label `{}` twice on one axis", a.text);
                assert!((a.y - b.y).abs() >= a.size, "{name}: `{}` and `{}` overlap", a.text, b.text);
            }
        }
    }
}

#[test]
fn small_shards_and_unconverged_fits_are_warned_about() {
    let q = repo("scenarios/quickstart.toml");
    let out = dmoe(&["check", q.to_str().unwrap(), "--set", "cluster.machines=[16,512]", "--set", "data.n=20000"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: M = 512 (n = 20000): about 31 training rows per machine for 18 free parameters"),
        "{stderr}"
    );
    assert!(!stderr.contains("M = 16 "), "16 machines get 62 rows per parameter: {stderr}");
    // A run whose every machine fails stops the study: said before it starts.
    let out = dmoe(&[
        "check",
        q.to_str().unwrap(),
        "--set",
        "machines.failure_probability=0.5",
        "--set",
        "cluster.machines=[1,16]",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "warning: M = 1 with failure probability 0.5: every machine of a run fails with probability 5.00e-1"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("M = 16 with failure"), "0.5^16 = 1.5e-5 per run: {stderr}");
    let dir = workdir("warnings");
    let out_dir = dir.join("w");
    let out = run_quickstart(&out_dir, &["--set", "em.max_iter=3", "--set", "cluster.machines=[4]"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: cell 0: 4 of 4 local fits stopped at em.max_iter"), "{stderr}");
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap();
    let warnings = run["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().starts_with("cell 0: 4 of 4 local fits")), "{warnings:?}");
    assert!(
        stderr.contains("warning: the global fit (n = 6000, K = 3, repetition 0) stopped at em.max_iter"),
        "the reference itself did not converge: {stderr}"
    );
    // 75 rows per machine: the reduction collapses in its parameters (a variance in the thousands)
    // while its RPE and log-likelihood gap stay small; the parameter MSE warning says so.
    let out = run_quickstart(&dir.join("c"), &["--set", "cluster.machines=[1,64]"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: cell 1 (M = 64): the reduction's parameter MSE against the truth is"),
        "{stderr}"
    );
    // The check without the truth, for real data: an inflated reduced variance.
    assert!(stderr.contains("warning: cell 1 (M = 64): a reduced expert's variance is"), "{stderr}");
    assert!(!stderr.contains("warning: cell 0 "), "M = 1 is the global fit itself: {stderr}");
    // The em.max_iter = 3 run's results.csv says the same per row: no local fit converged; 6,000 x
    // 0.8 / 4 rows for 18 parameters.
    let csv = std::fs::read_to_string(out_dir.join("results.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for line in csv.lines().skip(1).filter(|l| l.contains(",reduction,")) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[col("local_converged")], "0", "{line}");
        assert!((f[col("rows_per_parameter")].parse::<f64>().unwrap() - 1_200.0 / 18.0).abs() < 1e-9, "{line}");
    }
}

#[test]
fn the_readability_check_catches_overlap_duplicates_and_overflow() {
    let text = |x: f64, y: f64, anchor: &str, s: &str| {
        format!("<text x=\"{x}\" y=\"{y}\" text-anchor=\"{anchor}\" font-size=\"12\">\n{s}\n</text>")
    };
    let check = |svg: String| std::panic::catch_unwind(|| assert_readable_svg("t", &svg, 800.0)).is_err();
    assert!(!check(text(100.0, 500.0, "middle", "9") + &text(160.0, 500.0, "middle", "10")), "a clean axis passes");
    assert!(check(text(100.0, 500.0, "middle", "9.0") + &text(110.0, 500.0, "middle", "10.0")), "overlap");
    assert!(check(text(100.0, 500.0, "middle", "10") + &text(300.0, 500.0, "middle", "10")), "duplicate");
    assert!(check(text(40.0, 100.0, "end", "1") + &text(40.0, 105.0, "end", "2")), "y labels a line apart");
    assert!(check(text(780.0, 20.0, "start", "a legend label that is far too long")), "overflow");
}

#[test]
fn plots_of_a_sweep_over_n_networks_and_m_stay_readable() {
    let dir = workdir("plots");
    let out_dir = dir.join("p");
    let f = repo("tests/fixtures/plots.toml");
    let out = dmoe(&["run", f.to_str().unwrap(), "--out", out_dir.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svgs = files(&out_dir.join("plots"), "svg");
    assert!(svgs.len() >= 10, "{svgs:?}");
    for svg in &svgs {
        assert_readable(svg);
    }
    // The two networks give the same fits: one set of accuracy plots per n, titled with both.
    let names: Vec<String> = svgs.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for stem in ["accuracy-rpe-0", "accuracy-rpe-2", "accuracy-loglik-0", "accuracy-loglik-2"] {
        assert!(names.contains(&format!("{stem}.svg")), "{stem}: {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("accuracy-rpe-1") || n.starts_with("accuracy-rpe-3")), "{names:?}");
    let title = &svg_texts(&out_dir.join("plots/accuracy-rpe-0.svg"))[0].text;
    assert!(title.contains("n = 3,000, networks rack, wan (same results)"), "{title}");
    // Every M is ticked; every cell of repetition 0 is in mm-objective's legend (shared traces merged).
    let texts = svg_texts(&out_dir.join("plots/speedup.svg"));
    for m in ["1", "2", "4", "8", "16", "32"] {
        assert!(texts.iter().any(|t| t.text == m && t.anchor == "middle"), "speedup: no tick at M = {m}");
    }
    let legend: String =
        svg_texts(&out_dir.join("plots/mm-objective.svg")).iter().map(|t| t.text.clone() + "\n").collect();
    for cell in 0..24 {
        assert!(
            legend.contains(&format!(" {cell},")) || legend.contains(&format!(" {cell}:")),
            "cell {cell}: {legend}"
        );
    }
}

#[test]
fn report_redraws_the_same_views_and_takes_a_metric_and_a_timeline() {
    let dir = workdir("report");
    let out_dir = dir.join("r");
    let out = run_quickstart(&out_dir, &["--clock", "model", "--set", "cluster.machines=[1,4,8]"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = common::snapshot(&out_dir);
    assert!(before.contains_key(Path::new("index.html")));
    // Without options: every file as it was, byte for byte (the figures come from results.csv and
    // the records, which read back exactly).
    let out = dmoe(&["report", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("8 figures and index.html redrawn"));
    assert!(common::snapshot(&out_dir) == before, "report without options changed the folder");
    // Another metric and another run's timeline.
    let out = dmoe(&["report", out_dir.to_str().unwrap(), "--metric", "ari", "--timeline", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = common::snapshot(&out_dir);
    assert!(after.contains_key(Path::new("plots/accuracy-ari.svg")), "the metric asked for");
    assert!(after.contains_key(Path::new("plots/accuracy-rpe.svg")), "besides the default ones");
    assert_eq!(after[Path::new("results.csv")], before[Path::new("results.csv")]);
    let title = &svg_texts(&out_dir.join("plots/timeline.svg"))[0].text;
    assert!(title.starts_with("Virtual timeline of cell 1, repetition 0: M = 4"), "{title}");
    let html = String::from_utf8_lossy(&after[Path::new("index.html")]).into_owned();
    assert!(html.contains("id=\"fig-accuracy-ari\"") && html.contains("id=\"fig-accuracy-rpe\""));
    assert!(html.contains("--set data.n=6000") && html.contains("clock=&quot;model&quot;"), "overrides shown");
    // The recommended M on the page follows --budget: with 0, only M = 1 (the global problem itself,
    // a gap of round-off) qualifies, and it is no faster than the global fit: stay on one machine.
    assert!(html.contains("<h2 id=\"recommendation\">Recommended M</h2>"), "{html}");
    let out = dmoe(&["report", out_dir.to_str().unwrap(), "--metric", "ari", "--timeline", "1", "--budget", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let strict = std::fs::read_to_string(out_dir.join("index.html")).unwrap();
    assert!(
        strict.contains("<li><b>lan</b>: stay on one machine, if the data can be gathered there: the fastest within the budget (M = 1,"),
        "{strict}"
    );
    let after = common::snapshot(&out_dir);
    // Errors: exit 2, one message, the folder untouched, nothing left beside it.
    for (args, needle) in [
        (vec!["--budget=-1"], "`--budget`: "),
        (vec!["--timeline", "7"], "--timeline 7 --rep 0: "),
        (vec!["--metric", "nonsense"], "invalid value 'nonsense'"),
    ] {
        let mut all = vec!["report", out_dir.to_str().unwrap()];
        all.extend(args);
        let out = dmoe(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert!(common::snapshot(&out_dir) == after);
    }
    assert_eq!(common::listing(&dir), ["r"]);
    let out = dmoe(&["report", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run.json here"));
}

#[test]
fn calibrate_save_is_used_by_later_model_clock_runs_on_this_host_only() {
    let dir = workdir("calibrate");
    let saved = dir.join("config/cost-model.toml");
    let with_saved = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dmoe"))
            .args(args)
            .env("DMOE_CALIBRATION", &saved)
            .output()
            .unwrap()
    };
    let q = repo("scenarios/quickstart.toml");
    let check = |extra: &[&str]| {
        let mut args = vec!["check", q.to_str().unwrap(), "--clock", "model"];
        args.extend(extra);
        let out = with_saved(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(check(&[]).contains("constants from the built-in defaults"), "{}", check(&[]));
    let out = with_saved(&["calibrate", "--save"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&saved).unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    let mm = printed.lines().find(|l| l.starts_with("mm_per_unit = ")).unwrap();
    assert!(check(&[]).contains("constants from this machine's calibration"), "{}", check(&[]));
    assert!(check(&[]).contains(mm), "the saved {mm} is used");
    // A scenario's own key wins over the saved one.
    let own = check(&["--set", "cost_model.mm_per_unit=1e-9"]);
    assert!(own.contains("mm_per_unit = 1e-9, pool_per_unit = "), "{own}");
    assert!(
        own.contains("; constants from the scenario's [cost_model] for mm_per_unit; the others: this machine's"),
        "{own}"
    );
    // Saved on another host: not used, and said so.
    let host = text.lines().find(|l| l.starts_with("host = ")).unwrap();
    std::fs::write(&saved, text.replace(host, "host = \"another-box\"")).unwrap();
    assert!(check(&[]).contains("was measured on host another-box"), "{}", check(&[]));
    // A broken file is an error naming it, for the model clock only.
    std::fs::write(&saved, "host = 3\n").unwrap();
    let out = with_saved(&["check", q.to_str().unwrap(), "--clock", "model"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cost-model.toml: not a dmoe calibration"), "{err}");
    assert_eq!(err.matches("cost-model.toml").count(), 1, "the file is named once: {err}");
    assert!(with_saved(&["check", q.to_str().unwrap()]).status.success(), "the measured clock does not read it");
}

#[test]
fn a_sweep_over_k_stragglers_and_failures_shares_every_random_number() {
    let dir = workdir("settings-sweep");
    let file = dir.join("s.toml");
    std::fs::write(
        &file,
        "name = \"s\"\nclock = \"model\"\n[data]\nkind = \"synthetic\"\nrecipe = \"spread\"\nk = 3\nd = 2\nn = 6000\n[model]\nk = [2, 3]\n\
         [cluster]\nmachines = [2, 4]\n[machines]\nspeed = { kind = \"stragglers\", fraction = [0, 0.5], slowdown = 4 }\n\
         failure_probability = [0, 0.3]\n",
    )
    .unwrap();
    let out_dir = dir.join("out");
    let out = dmoe(&["run", file.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // One recommendation per setting (2 K x 2 fractions x 2 failure probabilities), named by it.
    // With half the machines 4 times slower, 4 machines are slower than one: stay on one.
    assert!(stdout.contains("  K = 3, stragglers 50%, failures 30%: stay on one machine"), "{stdout}");
    assert!(stdout.contains("  K = 2, stragglers 0%, failures 0%: M = 4: "), "{stdout}");
    let mut r = csv::Reader::from_path(out_dir.join("results.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.iter().map(|r| r[col("cell")].to_string()).collect::<std::collections::BTreeSet<_>>().len(), 16);
    let find = |k: &str, m: &str, fraction: &str, failure: &str, est: &str| {
        rows.iter()
            .find(|r| {
                (&r[col("k")], &r[col("machines")], &r[col("straggler_fraction")], &r[col("failure_probability")])
                    == (k, m, fraction, failure)
                    && &r[col("estimator")] == est
            })
            .unwrap_or_else(|| panic!("no row K = {k}, M = {m}, fraction {fraction}, failures {failure}, {est}"))
    };
    let num = |r: &csv::StringRecord, c: &str| r[col(c)].parse::<f64>().unwrap();
    for k in ["2", "3"] {
        for failure in ["0", "0.3"] {
            // Stragglers change the time, not the fits: the same shards, starts and failures.
            let (fast, slow) = (find(k, "4", "0", failure, "reduction"), find(k, "4", "0.5", failure, "reduction"));
            assert_eq!(num(fast, "test_loglik"), num(slow, "test_loglik"), "K = {k}, failures {failure}");
            assert!(num(slow, "makespan_s") > 2.0 * num(fast, "local_compute_max_s"), "K = {k}: 2 of 4 are 4x slower");
        }
        // Without failures every machine enters the reduction.
        assert_eq!(&find(k, "4", "0", "0", "reduction")[col("machines_included")], "4");
    }
    // The straggler cells replay the fraction-0 cell's fits (run.json: fits_from_cell).
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("run.json")).unwrap()).unwrap();
    let cell_of =
        |k: &str, fraction: &str| find(k, "4", fraction, "0", "reduction")[col("cell")].parse::<u64>().unwrap();
    let slow_cell = cell_of("3", "0.5");
    let replayed = run["runs"].as_array().unwrap().iter().find(|r| r["cell"] == slow_cell).unwrap();
    assert_eq!(replayed["fits_from_cell"], cell_of("3", "0"), "{replayed}");
    // Each K has its own global fit, and the reduction is compared with the fit of its own K.
    let (g2, g3) = (find("2", "2", "0", "0", "global"), find("3", "2", "0", "0", "global"));
    assert!(num(g3, "test_loglik") > num(g2, "test_loglik"), "the true K fits the test rows better");
    assert_eq!(&g2[col("k")], "2");
    // Accuracy plots: groups that differ only by the straggler fraction are drawn once.
    let titles: Vec<String> = files(&out_dir.join("plots"), "svg")
        .iter()
        .filter_map(|p| svg_texts(p).first().map(|t| t.text.clone()))
        .collect();
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("Test RPE: n = 6,000, K = 2, stragglers 0%, 50%, failures 0% (same results)")),
        "{titles:?}"
    );
    for svg in files(&out_dir.join("plots"), "svg") {
        assert_readable(&svg);
    }
}

#[test]
fn teach_draws_every_step_of_the_reduction_on_a_page_without_script() {
    let dir = workdir("teach");
    let out_dir = dir.join("t");
    let out = dmoe(&["teach", "--out", out_dir.to_str().unwrap(), "--k", "2", "--machines", "3", "--n", "1500"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(out_dir.join("index.html")).unwrap();
    for external in ["<script", "<link", "src=\"http", "href=\"http"] {
        assert!(!html.contains(external), "not self-contained: {external}");
    }
    let sections = html.matches("<section class=\"step\"").count();
    // Data, local fits, pooled, the start and every MM iteration, the result.
    let mm: usize = stdout.split(" MM iterations").next().unwrap().rsplit('(').next().unwrap().parse().unwrap();
    assert_eq!(sections, 3 + (mm + 1) + 1, "{stdout}");
    assert!(stdout.starts_with(&format!("{sections} steps")), "{stdout}");
    for i in 1..=sections {
        assert!(html.contains(&format!("id=\"step-{i}\"")), "step {i}");
        assert_eq!(html.contains(&format!("href=\"#step-{}\"", i + 1)), i < sections, "next link of step {i}");
    }
    let svgs = files(&out_dir.join("steps"), "svg");
    assert_eq!(svgs.len(), sections);
    // The readability check assumes one chart per image; the local fits are a grid of charts that
    // repeat their tick labels by design.
    for svg in svgs.iter().filter(|p| !p.ends_with("step-02-local-fits.svg")) {
        assert_readable(svg);
    }
    assert!(html.contains("dmoe teach --k 2 --machines 3 --n 1500 --seed 1"), "the page says how to redraw it");
    // The last step's words follow what happened: with two experts on three machines the naive
    // average mixes labels; with one machine there is nothing to mix.
    assert!(html.contains("machines numbered their experts independently: parameter error"), "{html}");
    let one = dir.join("one");
    let out = dmoe(&["teach", "--out", one.to_str().unwrap(), "--k", "2", "--machines", "1", "--n", "600"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(one.join("index.html")).unwrap();
    assert!(html.contains("With one machine it already has K experts") && html.contains("no labels to mix up"));
    std::fs::remove_dir_all(&one).unwrap();
    // A study's folder is not replaced by a lesson.
    let study = dir.join("study");
    std::fs::create_dir(&study).unwrap();
    std::fs::write(study.join("run.json"), "{}").unwrap();
    let out = dmoe(&["teach", "--out", study.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds the results of a `dmoe run`"));
    std::fs::remove_dir_all(&study).unwrap();
    // Flags out of range: exit 2, nothing written.
    let out = dmoe(&["teach", "--out", dir.join("u").to_str().unwrap(), "--machines", "40"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--machines: "), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(common::listing(&dir), ["t"]);
}

#[test]
fn recipe_settings_that_do_not_apply_are_named_with_their_line() {
    let dir = workdir("recipe-check");
    let file = dir.join("r.toml");
    let scenario = |data: &str| {
        format!("name = \"r\"\n[data]\nkind = \"synthetic\"\nk = 3\nd = 2\nn = 6000\n{data}[cluster]\nmachines = [2]\n")
    };
    for (data, expected) in [
        (
            "recipe = \"profiles\"\nprofile = \"severe\"\n",
            "`data.profile`: the \"severe\" profile's shares are defined for K = 5",
        ),
        (
            "profile = \"moderate\"\n",
            "`data.profile`: applies only with recipe = \"profiles\" or \"heterogeneous\", not with recipe = \"benchmark\"",
        ),
        (
            "recipe = \"spread\"\nexperts_per_machine = 2\n",
            "`data.experts_per_machine`: applies only with recipe = \"heterogeneous\"",
        ),
        (
            "recipe = \"heterogeneous\"\nexperts_per_machine = 1\n",
            "`data.experts_per_machine`: with M = 2 and 1 of the 3 experts on each machine, no machine holds expert 3",
        ),
        (
            "recipe = \"mixture\"\n",
            "`data.recipe`: expected one of \"benchmark\", \"profiles\", \"heterogeneous\", \"spread\"",
        ),
    ] {
        std::fs::write(&file, scenario(data)).unwrap();
        let out = dmoe(&["check", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{data}: {stderr}");
        assert!(stderr.contains(expected), "expected `{expected}` in:\n{stderr}");
    }
    std::fs::write(&file, scenario("recipe = \"heterogeneous\"\n")).unwrap();
    let out = dmoe(&["check", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_true_model_is_scored_like_an_estimator_when_listed() {
    let dir = workdir("truth-estimator");
    let file = dir.join("t.toml");
    std::fs::write(
        &file,
        "name = \"t\"\nclock = \"model\"\nestimators = [\"reduction\", \"global\", \"truth\"]\n[data]\nkind = \"synthetic\"\n\
         recipe = \"profiles\"\nk = 3\nd = 2\nn = 6000\n[cluster]\nmachines = [2]\n",
    )
    .unwrap();
    let out_dir = dir.join("out");
    let out = dmoe(&["run", file.to_str().unwrap(), "--quiet", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut r = csv::Reader::from_path(out_dir.join("results.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    let truth: Vec<&csv::StringRecord> = rows.iter().filter(|r| &r[col("estimator")] == "truth").collect();
    assert_eq!(truth.len(), 1, "one truth row per cell and repetition");
    assert_eq!(&truth[0][col("param_mse")], "0");
    assert_eq!(&truth[0][col("transport_to_truth_sum")], "0");
    // The authors' unit: the divergence summed over the 1,200 test rows instead of averaged.
    let reduction = rows.iter().find(|r| &r[col("estimator")] == "reduction").unwrap();
    let (mean, sum) = (
        reduction[col("transport_to_truth")].parse::<f64>().unwrap(),
        reduction[col("transport_to_truth_sum")].parse::<f64>().unwrap(),
    );
    assert!(mean > 0.0 && (sum - 1200.0 * mean).abs() <= 1e-12 * sum, "{sum} vs 1200 x {mean}");
    let rpe =
        |est: &str| rows.iter().find(|r| &r[col("estimator")] == est).unwrap()[col("rpe")].parse::<f64>().unwrap();
    assert!(rpe("truth") > 0.05, "the noise leaves the true model an RPE well above 0: {}", rpe("truth"));
    assert!((rpe("global") - rpe("truth")).abs() < 0.02, "the global fit is close to the truth");
    // Real data have no true model to score.
    let csv_scenario = dir.join("c.toml");
    std::fs::write(&csv_scenario, "name = \"c\"\nestimators = [\"reduction\", \"truth\"]\n[data]\nkind = \"csv\"\npath = \"d.csv\"\ntarget = \"y\"\n[cluster]\nmachines = [2]\n").unwrap();
    let out = dmoe(&["check", csv_scenario.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("`estimators`: \"truth\" needs a true model: synthetic data"), "{stderr}");
}

#[test]
fn heterogeneous_data_give_each_machine_rows_of_its_experts_only() {
    let dir = workdir("heterogeneous");
    // dmoe simulate writes the machine of every row: machine m holds experts m, m+1 (mod 3).
    let (data, truth) = (dir.join("h.csv"), dir.join("h.json"));
    let args = ["simulate", "--k", "3", "--d", "2", "--n", "3000", "--recipe", "heterogeneous", "--machines", "3"];
    let out = dmoe(
        &[
            &args[..],
            &["--experts-per-machine", "2", "--out", data.to_str().unwrap(), "--truth", truth.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut r = csv::Reader::from_path(&data).unwrap();
    assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), ["x1", "x2", "y", "z", "machine"]);
    let mut held = vec![std::collections::BTreeSet::new(); 3];
    for row in r.records().map(|x| x.unwrap()) {
        held[row[4].parse::<usize>().unwrap() - 1].insert(row[3].parse::<usize>().unwrap());
    }
    assert_eq!(held, [[1, 2].into(), [2, 3].into(), [3, 1].into()], "machines' experts (1-based)");
    // The partition column is not a feature: the distributed fit on it uses x1, x2 and the truth.
    let fit = ["fit", "--data", data.to_str().unwrap(), "--target", "y", "--k", "3", "--partition", "machine"];
    let out = dmoe(&[&fit[..], &["--truth", truth.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A profile does not apply to the benchmark recipe: refused, no file.
    let refused = dir.join("r.csv");
    let out = dmoe(&[
        "simulate",
        "--k",
        "5",
        "--d",
        "2",
        "--n",
        "10",
        "--profile",
        "severe",
        "--out",
        refused.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--profile: expected only with --recipe profiles or heterogeneous")
    );
    assert!(!refused.exists());
    // A heterogeneous study: every training row on one machine, shards of unequal size.
    let file = dir.join("s.toml");
    std::fs::write(
        &file,
        "name = \"s\"\nclock = \"model\"\n[data]\nkind = \"synthetic\"\nrecipe = \"heterogeneous\"\nexperts_per_machine = 2\nk = 3\nd = 2\nn = 6000\n[cluster]\nmachines = [3]\n",
    )
    .unwrap();
    let out_dir = dir.join("out");
    let out = dmoe(&["run", file.to_str().unwrap(), "--quiet", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("records/cell-0-rep-0.json")).unwrap()).unwrap();
    let rows: Vec<u64> = record["machines"].as_array().unwrap().iter().map(|m| m["rows"].as_u64().unwrap()).collect();
    assert_eq!(rows.iter().sum::<u64>(), 4800, "every training row once: {rows:?}");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["data_recipe"], "heterogeneous (balanced, 2 experts per machine)");
}

/// The shipped protocols scenario, made small: every protocol under every network, a trade-off plot,
/// and results.csv byte-identical across reruns and --jobs 1 vs 2 with the model clock.
#[test]
fn protocol_results_are_byte_identical_across_reruns_and_jobs() {
    let dir = workdir("protocols-reproducible");
    let scenario = repo("scenarios/protocols.toml");
    let mut results = Vec::new();
    for (name, jobs) in [("a", "1"), ("b", "1"), ("c", "2")] {
        let out_dir = dir.join(name);
        let args = [
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
            "--jobs",
            jobs,
            "--set",
            "cluster.machines=[4, 16]",
            "--set",
            "data.n=12000",
        ];
        let out = dmoe(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        results.push(std::fs::read(out_dir.join("results.csv")).unwrap());
    }
    assert!(results[0] == results[1], "results.csv differs between two identical runs");
    assert!(results[0] == results[2], "results.csv differs between --jobs 1 and --jobs 2");
    let text = String::from_utf8(results[0].clone()).unwrap();
    for (protocol, kind, estimator) in [
        ("one-shot", "one-shot", "reduction"),
        ("exact EM", "distributed-em", "distributed-em"),
        ("one-shot + 3 iterations", "refine", "refine"),
        ("fedavg 5x", "fedavg", "fedavg"),
    ] {
        for network in ["rack", "lan", "wan"] {
            let needle = format!(",{network},{protocol},{kind},");
            let row = text.lines().find(|l| l.contains(&needle) && l.contains(&format!(",{estimator},")));
            assert!(row.is_some(), "no {estimator} row for {protocol} under {network}");
        }
    }
    assert!(dir.join("a/plots/tradeoff.png").exists(), "the trade-off plot is drawn");
}
