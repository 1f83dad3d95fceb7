//! `dmoe run`, `dmoe check` and `dmoe calibrate`: scenario files and the model clock.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::destination::Destination;
use crate::numeric::range::{MAX_THREADS, within};
use crate::{report, study};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario (TOML; reference: scenarios/README.md).
    file: PathBuf,
    /// Output folder (default: output/<scenario name>): new, empty, or an earlier dmoe output, which
    /// is replaced whole at the end (a folder of other files is refused).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Cluster runs to simulate at a time.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Override the scenario's clock: `measured` (thread CPU time) or `model` (reproducible cost model).
    #[arg(long, value_parser = ["measured", "model"])]
    clock: Option<String>,
    /// Show no progress and print no summary.
    #[arg(long)]
    quiet: bool,
    /// Override a scenario key with a TOML value, e.g. --set data.n=[4000] --set repetitions=1.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The scenario (TOML).
    file: PathBuf,
    /// Override a scenario key with a TOML value, as in `dmoe run`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Override the scenario's clock, as in `dmoe run`.
    #[arg(long, value_parser = ["measured", "model"])]
    clock: Option<String>,
}

/// The checked plan of a scenario file with its `--set` overrides; `--clock` is one more override.
fn load_checked(file: &Path, set: &[String], clock: Option<&str>) -> Result<study::Plan, String> {
    let mut overrides = set.to_vec();
    overrides.extend(clock.map(|c| format!("clock=\"{c}\"")));
    study::load(file, &overrides).map_err(|e| e.to_string())
}

pub fn check(a: CheckArgs) -> Result<(), String> {
    let c = load_checked(&a.file, &a.set, a.clock.as_deref())?;
    let runs = c.cells.len() * c.repetitions;
    warn_all(&study::warnings::before_run(&c));
    say!(
        "{}: ok: {} cells x {} repetition(s) = {runs} cluster runs; K = {}, d = {}; output folder `{}`",
        a.file.display(),
        c.cells.len(),
        c.repetitions,
        c.k,
        c.d,
        c.name
    );
    Ok(())
}

pub fn run(a: RunArgs) -> Result<(), String> {
    use std::io::IsTerminal;
    use std::sync::Arc;
    within(a.jobs, 1, MAX_THREADS).map_err(|e| format!("--jobs: {e}"))?;
    let checked = load_checked(&a.file, &a.set, a.clock.as_deref())?;
    let dest = a.out.clone().unwrap_or_else(|| PathBuf::from("output").join(&checked.name));
    let dest = Destination::folder(&dest, "--out").map_err(|e| e.to_string())?;
    inputs_outside(&checked, &dest)?;
    warn_all(&study::warnings::before_run(&checked));
    let with_global = usize::from(checked.reports(study::Estimator::Global));
    let data_sets = checked.cells.iter().map(|c| c.n_index).max().map_or(0, |m| m + 1) * checked.repetitions;
    let total = checked.cells.len() * checked.repetitions + data_sets * with_global;
    let progress: Arc<dyn study::Progress> = if a.quiet {
        Arc::new(study::Silent)
    } else if std::io::stderr().is_terminal() {
        Arc::new(crate::cli::progress::Bars::new(total))
    } else {
        Arc::new(crate::cli::progress::Lines::new(total))
    };
    let out = study::run(&checked, &study::StudyOptions { jobs: a.jobs, progress })
        .map_err(|e| format!("{}: {e}", a.file.display()))?;
    report::write_study(&dest, &checked, &out, &report::RunMeta { jobs: a.jobs, overrides: a.set.clone() })?;
    // The lock goes before anything is printed: a closed stdout (`| head`) must not leave it.
    let dest = {
        let path = dest.path().to_path_buf();
        drop(dest);
        path
    };
    warn_all(&study::warnings::after_run(&checked, &out));
    if !a.quiet {
        print_summary(&out);
        say!("results, plots and traces in {}/ ({:.1} s)", dest.display(), out.wall_seconds);
    }
    Ok(())
}

/// Prints each warning on stderr.
fn warn_all(warnings: &[String]) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    for w in warnings {
        let _ = writeln!(err, "warning: {w}");
    }
}

/// An error if the scenario file or one of its data files lies inside the output folder, which the
/// run replaces whole.
fn inputs_outside(plan: &study::Plan, dest: &Destination) -> Result<(), String> {
    let Ok(out) = dest.path().canonicalize() else { return Ok(()) };
    let mut inputs = vec![plan.file.clone()];
    match &plan.data {
        study::DataPlan::Csv { path, .. } => inputs.push(path.clone()),
        study::DataPlan::Synthetic { truth, .. } => inputs.extend(truth.clone()),
    }
    match inputs.iter().find(|p| p.canonicalize().is_ok_and(|p| p.starts_with(&out))) {
        Some(p) => Err(format!(
            "--out {}: holds the input {}, which the run would delete with the old output; move it or write elsewhere",
            dest.path().display(),
            p.display()
        )),
        None => Ok(()),
    }
}

/// One line per cell: mean makespan and speedup, and the reduction's RPE next to the global fit's.
fn print_summary(out: &study::StudyOutput) {
    say!(
        "{:>5} {:>5} {:>9} {:<28} {:>11} {:>8} {:>13} {:>10}",
        "cell",
        "M",
        "n",
        "network",
        "makespan_s",
        "speedup",
        "RPE reduction",
        "RPE global"
    );
    let mut cells: Vec<usize> = out.rows.iter().map(|r| r.cell).collect();
    cells.dedup();
    for c in cells {
        let rows: Vec<&study::ResultRow> = out.rows.iter().filter(|r| r.cell == c).collect();
        let mean = |est: &str, f: &dyn Fn(&study::ResultRow) -> Option<f64>| {
            let v: Vec<f64> = rows.iter().filter(|r| r.estimator == est).filter_map(|r| f(r)).collect();
            if v.is_empty() { "-".to_string() } else { format!("{:.4}", v.iter().sum::<f64>() / v.len() as f64) }
        };
        let first = rows[0];
        say!(
            "{c:>5} {:>5} {:>9} {:<28} {:>11} {:>8} {:>13} {:>10}",
            first.machines,
            first.n,
            first.network.chars().take(28).collect::<String>(),
            mean("reduction", &|r| r.makespan_s),
            mean("reduction", &|r| r.speedup),
            mean("reduction", &|r| Some(r.scores.rpe)),
            mean("global", &|r| Some(r.scores.rpe))
        );
    }
}

/// `dmoe calibrate`: measures the model clock's constants and prints them as a scenario table.
pub fn calibrate() -> Result<(), String> {
    let c = crate::cluster::clock::calibrate();
    say!("# model-clock constants measured on this machine; paste into a scenario");
    say!(
        "[cost_model]\nem_per_component = {:e}\nem_per_coefficient_pair = {:e}\nmm_per_unit = {:e}",
        c.em_per_component,
        c.em_per_coefficient_pair,
        c.mm_per_unit
    );
    Ok(())
}
