//! An output folder of `dmoe run` read back, for `dmoe report`: the plan from the scenario recorded in
//! run.json, the result rows from results.csv, the cluster runs from records/. Numbers in
//! results.csv are written in their shortest exact form, so they read back bit for bit and the
//! re-drawn figures equal the run's own.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cluster::clock::{Clock, CostModel};
use crate::cluster::protocol::ProtocolKind;
use crate::cluster::record::RunRecord;
use crate::distributed::Scores;
use crate::study::{self, CellRun, Estimator, Plan, ResultRow, StudyOutput};

/// What a run left in its folder.
pub struct Reloaded {
    pub plan: Plan,
    pub out: StudyOutput,
    /// run.json as written.
    pub run: Value,
}

/// Reads the output folder `dir`; an error names the file and what is wrong with it.
pub fn reload(dir: &Path) -> Result<Reloaded, String> {
    let run_path = dir.join("run.json");
    let text = std::fs::read_to_string(&run_path)
        .map_err(|e| format!("{}: {e}; is {} an output folder of `dmoe run`?", run_path.display(), dir.display()))?;
    let run: Value = serde_json::from_str(&text).map_err(|e| format!("{}: not valid JSON: {e}", run_path.display()))?;
    let plan = plan_of(&run, &run_path)?;
    let rows = rows_of(&dir.join("results.csv"), &plan)?;
    let runs = runs_of(dir, &run, &plan)?;
    let wall_seconds = run["wall_seconds"].as_f64().unwrap_or(0.0);
    Ok(Reloaded { plan, out: StudyOutput { rows, runs, wall_seconds }, run })
}

/// The plan of the scenario as run, without reading its data: run.json's `scenario_text` with its
/// `overrides`, read as the file at `scenario_path`, completed by what the run recorded (d, the
/// features and target, the cells, the model clock's constants).
fn plan_of(run: &Value, run_path: &Path) -> Result<Plan, String> {
    let missing = |key: &str| {
        format!(
            "{}: no `{key}`: written by a dmoe from before `dmoe report`; run the scenario again",
            run_path.display()
        )
    };
    let text = |key: &str| run[key].as_str().ok_or_else(|| missing(key));
    let recorded = |key: &str| run.get(key).filter(|v| !v.is_null()).ok_or_else(|| missing(key));
    let (scenario, path) = (text("scenario_text")?, PathBuf::from(text("scenario_path")?));
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|o| o.as_str().map(String::from)).collect()).unwrap_or_default()
    };
    let mut plan = study::parse_recorded(&path, scenario, &strings(&run["overrides"]))
        .map_err(|e| format!("{}: the scenario it records does not read: {e}", run_path.display()))?;
    let bad = |key: &str, e: serde_json::Error| format!("{}: `{key}`: {e}", run_path.display());
    plan.cells = serde_json::from_value(recorded("sweep_cells")?.clone()).map_err(|e| bad("sweep_cells", e))?;
    plan.features = strings(recorded("features")?);
    plan.d = plan.features.len();
    plan.target = text("target")?.to_string();
    if plan.cells.iter().any(|c| c.setting >= plan.settings.len() || c.network >= plan.networks.len()) {
        return Err(format!("{}: `sweep_cells` do not match the scenario it records", run_path.display()));
    }
    if let (Clock::Model(_), Some(c)) = (&plan.clock, run["cost_model"].as_object()) {
        let constant = |k: &str| match c.get(k).and_then(Value::as_f64) {
            Some(v) => Ok(v),
            // Written before the reduction's pool term existed: its times were made without it.
            None if k == "pool_per_unit" => Ok(0.0),
            None => Err(missing(&format!("cost_model.{k}"))),
        };
        let mut values = CostModel::default().values();
        for (v, name) in values.iter_mut().zip(CostModel::NAMES) {
            *v = constant(name)?;
        }
        plan.clock = Clock::Model(CostModel::from_values(values));
        plan.cost_source = c.get("source").and_then(Value::as_str).map(String::from);
    }
    Ok(plan)
}

/// results.csv's rows, by column name.
fn rows_of(path: &Path, plan: &Plan) -> Result<Vec<ResultRow>, String> {
    let fail = |line: usize, what: String| format!("{}, line {line}: {what}", path.display());
    let mut reader = csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let header = reader.headers().map_err(|e| fail(1, e.to_string()))?.clone();
    let col = |name: &str| header.iter().position(|h| h == name).ok_or_else(|| fail(1, format!("no column `{name}`")));
    let columns: Vec<usize> = super::RESULT_COLUMNS.iter().map(|c| col(c)).collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| fail(line, e.to_string()))?;
        let get = |name: &str| {
            let at = super::RESULT_COLUMNS.iter().position(|c| *c == name).expect("a results.csv column");
            record.get(columns[at]).unwrap_or("")
        };
        let opt = |name: &str| -> Result<Option<f64>, String> {
            match get(name) {
                "" => Ok(None),
                v => v.parse().map(Some).map_err(|_| fail(line, format!("{name} = `{v}`, not a number"))),
            }
        };
        let num = |name: &str| opt(name)?.ok_or_else(|| fail(line, format!("{name} is empty")));
        let count = |name: &str| -> Result<Option<usize>, String> {
            match opt(name)? {
                Some(v) if v < 0.0 || v.fract() != 0.0 => Err(fail(line, format!("{name} = {v}, not a count"))),
                v => Ok(v.map(|v| v as usize)),
            }
        };
        let index = |name: &str| count(name)?.ok_or_else(|| fail(line, format!("{name} is empty")));
        let estimator = Estimator::parse(get("estimator"))
            .map(Estimator::name)
            .or_else(|| ProtocolKind::estimator_named(get("estimator")))
            .ok_or_else(|| fail(line, format!("unknown estimator `{}`", get("estimator"))))?;
        let protocol_kind = ProtocolKind::NAMES
            .into_iter()
            .find(|k| *k == get("protocol_kind"))
            .ok_or_else(|| fail(line, format!("unknown protocol kind `{}`", get("protocol_kind"))))?;
        rows.push(ResultRow {
            cell: index("cell")?,
            machines: index("machines")?,
            n: index("n")?,
            network: get("network").to_string(),
            protocol: get("protocol").to_string(),
            protocol_kind,
            rep: index("rep")?,
            estimator,
            scores: Scores {
                test_loglik: num("test_loglik")?,
                rpe: num("rpe")?,
                correlation: num("correlation")?,
                param_mse: opt("param_mse")?,
                transport_to_truth: opt("transport_to_truth")?,
                ari: opt("ari")?,
                clustering_error: opt("clustering_error")?,
            },
            local_compute_max_s: opt("local_compute_max_s")?,
            network_s: opt("network_s")?,
            wait_s: opt("wait_s")?,
            reduce_s: opt("reduce_s")?,
            makespan_s: opt("makespan_s")?,
            speedup: opt("speedup")?,
            rounds: count("rounds")?,
            bytes_sent: opt("bytes_sent")?.map(|v| v as u64),
            machines_included: count("machines_included")?,
            machines_flagged: count("machines_flagged")?,
            local_converged: count("local_converged")?,
            rows_per_parameter: opt("rows_per_parameter")?,
        });
        let row = rows.last().expect("just pushed");
        match plan.cells.get(row.cell) {
            Some(c) if (c.n, c.machines) == (row.n, row.machines) => {}
            Some(c) => {
                let (n, m) = (c.n, c.machines);
                return Err(fail(line, format!("cell {} has n = {n}, M = {m} in run.json, not this row's", row.cell)));
            }
            None => return Err(fail(line, format!("cell {} but run.json lists {} cells", row.cell, plan.cells.len()))),
        }
    }
    Ok(rows)
}

/// Every run listed in run.json, with its record from records/.
fn runs_of(dir: &Path, run: &Value, plan: &Plan) -> Result<Vec<CellRun>, String> {
    let listed = run["runs"].as_array().ok_or_else(|| format!("{}: no `runs`", dir.join("run.json").display()))?;
    listed
        .iter()
        .map(|r| {
            let index = |key: &str| r[key].as_u64().map(|v| v as usize);
            let (Some(cell), Some(rep)) = (index("cell"), index("rep")) else {
                return Err(format!("{}: a run without `cell` and `rep`", dir.join("run.json").display()));
            };
            let cell = plan.cells.get(cell).ok_or_else(|| format!("run.json: cell {cell} is not in the scenario"))?;
            let path = dir.join("records").join(format!("cell-{}-rep-{rep}.json", cell.index));
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let record: RunRecord =
                serde_json::from_str(&text).map_err(|e| format!("{}: not a run record: {e}", path.display()))?;
            let seconds = |key: &str| r[key].as_f64().unwrap_or(0.0);
            Ok(CellRun {
                cell: cell.clone(),
                rep,
                record,
                fits_from_cell: index("fits_from_cell").unwrap_or(cell.index),
                wall_seconds: seconds("wall_seconds"),
                fit_cpu_seconds: seconds("fit_cpu_seconds"),
                server_cpu_seconds: seconds("server_cpu_seconds"),
            })
        })
        .collect()
}
