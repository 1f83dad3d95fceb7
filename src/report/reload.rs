//! An output folder of `dmoe run` read back, for `dmoe report`: the plan from the scenario recorded in
//! run.json, the result rows from results.csv, the cluster runs from records/. Numbers in
//! results.csv are written in their shortest exact form, so they read back bit for bit and the
//! re-drawn figures equal the run's own.

use std::path::{Path, PathBuf};

use serde_json::Value;

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

/// The plan of the scenario as run: run.json's `scenario_text` with its `overrides`, read as the
/// file at `scenario_path` (so that paths in it resolve as they did).
fn plan_of(run: &Value, run_path: &Path) -> Result<Plan, String> {
    let field = |key: &str| {
        run[key].as_str().ok_or_else(|| {
            format!(
                "{}: no `{key}` (written by dmoe 0.x before `dmoe report` existed?); run the scenario again",
                run_path.display()
            )
        })
    };
    let (text, path) = (field("scenario_text")?, PathBuf::from(field("scenario_path")?));
    let overrides: Vec<String> = run["overrides"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o.as_str().map(String::from)).collect())
        .unwrap_or_default();
    study::parse(&path, text, &overrides)
        .map_err(|e| format!("{}: the scenario it records no longer checks: {e}", run_path.display()))
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
        let count = |name: &str| opt(name).map(|v| v.map(|v| v as usize));
        let estimator = Estimator::parse(get("estimator"))
            .ok_or_else(|| fail(line, format!("unknown estimator `{}`", get("estimator"))))?
            .name();
        rows.push(ResultRow {
            cell: num("cell")? as usize,
            machines: num("machines")? as usize,
            n: num("n")? as usize,
            network: get("network").to_string(),
            rep: num("rep")? as usize,
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
            bytes_sent: opt("bytes_sent")?.map(|v| v as u64),
            machines_included: count("machines_included")?,
            machines_flagged: count("machines_flagged")?,
            local_converged: count("local_converged")?,
            rows_per_parameter: opt("rows_per_parameter")?,
        });
        if rows.last().is_some_and(|r| r.cell >= plan.cells.len()) {
            return Err(fail(line, format!("cell {} but the scenario has {} cells", get("cell"), plan.cells.len())));
        }
    }
    Ok(rows)
}

/// Every run listed in run.json, with its record from records/.
fn runs_of(dir: &Path, run: &Value, plan: &Plan) -> Result<Vec<CellRun>, String> {
    let empty = Vec::new();
    let listed = run["runs"].as_array().unwrap_or(&empty);
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
