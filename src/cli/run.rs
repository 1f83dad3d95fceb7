//! `dmoe run`, `dmoe check` and `dmoe calibrate`: scenario files and the model clock.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::destination::Destination;
use crate::numeric::range::{MAX_THREADS, Range, field, within};
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
    /// Nats per test row the protocol's model (the reduction, in one-shot) may lose against the
    /// global fit for an M to be recommended.
    #[arg(long, default_value_t = report::recommend::DEFAULT_BUDGET, allow_negative_numbers = true)]
    budget: f64,
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

/// The `--set` overrides, with `--clock` as one more.
fn overrides(set: &[String], clock: Option<&str>) -> Vec<String> {
    let mut overrides = set.to_vec();
    overrides.extend(clock.map(|c| format!("clock=\"{c}\"")));
    overrides
}

/// The checked plan of a scenario file with its overrides.
fn load_checked(file: &Path, set: &[String], clock: Option<&str>) -> Result<study::Plan, String> {
    study::load(file, &overrides(set, clock)).map_err(|e| e.to_string())
}

pub fn check(a: CheckArgs) -> Result<(), String> {
    let c = load_checked(&a.file, &a.set, a.clock.as_deref())?;
    let runs = c.cells.len() * c.repetitions;
    tell_constants(&c);
    warn_all(&study::warnings::before_run(&c));
    say!(
        "{}: ok: {} cells x {} repetition(s) = {runs} cluster runs; {}, d = {}; output folder `output/{}` (or --out)",
        a.file.display(),
        c.cells.len(),
        c.repetitions,
        c.k_label(),
        c.d,
        c.name
    );
    Ok(())
}

pub fn run(a: RunArgs) -> Result<(), String> {
    use std::io::IsTerminal;
    use std::sync::Arc;
    within(a.jobs, 1, MAX_THREADS).map_err(|e| format!("--jobs: {e}"))?;
    field("--budget", Range::NATS_PER_ROW, a.budget)?;
    let views = report::ViewOptions { budget: a.budget, ..report::ViewOptions::default() };
    let checked = load_checked(&a.file, &a.set, a.clock.as_deref())?;
    let dest = a.out.clone().unwrap_or_else(|| PathBuf::from("output").join(&checked.name));
    let dest = Destination::folder(&dest, "--out").map_err(|e| e.to_string())?;
    inputs_outside(&checked, &dest)?;
    // A lesson of `dmoe teach` is not a study's to replace.
    if dest.path().join("steps").is_dir() && !dest.path().join("run.json").exists() {
        return Err(format!(
            "--out {}: holds a lesson of `dmoe teach`; give the study a folder of its own",
            dest.path().display()
        ));
    }
    if !a.quiet {
        tell_constants(&checked);
    }
    let before = study::warnings::before_run(&checked);
    warn_all(&before);
    let with_global = usize::from(checked.reports(study::Estimator::Global));
    let data_sets = checked.cells.iter().map(|c| c.n_index).max().map_or(0, |m| m + 1) * checked.repetitions;
    // One global fit per data set, repetition and K.
    let total = checked.cells.len() * checked.repetitions + data_sets * with_global * checked.k_values().len();
    let progress: Arc<dyn study::Progress> = if a.quiet {
        Arc::new(study::Silent)
    } else if std::io::stderr().is_terminal() {
        Arc::new(crate::cli::progress::Bars::new(total))
    } else {
        Arc::new(crate::cli::progress::Lines::new(total))
    };
    let out = study::run(&checked, &study::StudyOptions { jobs: a.jobs, progress })
        .map_err(|e| format!("{}: {e}", a.file.display()))?;
    let after = study::warnings::after_run(&checked, &out);
    let meta = report::RunMeta {
        jobs: a.jobs,
        overrides: overrides(&a.set, a.clock.as_deref()),
        views: views.clone(),
        warnings: before.into_iter().chain(after.iter().cloned()).collect(),
    };
    report::write_study(&dest, &checked, &out, &meta)?;
    // The lock goes before anything is printed: a closed stdout (`| head`) must not leave it.
    let dest = {
        let path = dest.path().to_path_buf();
        drop(dest);
        path
    };
    warn_all(&after);
    if !a.quiet {
        let cells = report::summary::cells(&checked, &out.rows);
        for line in report::summary::text(&cells, &report::summary::baselines(&checked, &out.rows)) {
            say!("{line}");
        }
        print_recommendations(&report::recommend::recommend(&cells, a.budget), a.budget);
        say!("results, plots and traces in {}/ ({:.1} s)", dest.display(), out.wall_seconds);
    }
    Ok(())
}

/// Prints the recommended M of every sweep group under `budget`, wrapped to 100 columns.
pub(super) fn print_recommendations(list: &[report::recommend::Recommendation], budget: f64) {
    say!("recommended M (the fastest whose model loses at most {budget} nats per test row; --budget):");
    for r in list {
        // Two spaces before the first line and four before the others: 100 columns at most.
        for (i, line) in report::summary::wrap(&format!("{}: {}", r.group, r.reason), 96).iter().enumerate() {
            say!("{}{line}", if i == 0 { "  " } else { "    " });
        }
    }
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

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Also save the constants where later model-clock runs on this machine pick them up
    /// ($DMOE_CALIBRATION, else $XDG_CONFIG_HOME/dmoe/cost-model.toml, else
    /// ~/.config/dmoe/cost-model.toml); a scenario's own [cost_model] keys still win.
    #[arg(long)]
    save: bool,
}

/// `dmoe calibrate`: measures the model clock's constants, prints them as a scenario table, and
/// with `--save` writes them to this machine's calibration file.
pub fn calibrate(a: CalibrateArgs) -> Result<(), String> {
    use crate::study::calibration;
    let target = match a.save {
        true => {
            let p =
                calibration::path().ok_or("--save: DMOE_CALIBRATION is empty and names no file; set it to a path")?;
            // The configuration folder may not exist yet on a fresh machine.
            if let Some(folder) = p.parent().filter(|f| !f.as_os_str().is_empty()) {
                std::fs::create_dir_all(folder).map_err(|e| format!("--save {}: {e}", folder.display()))?;
            }
            Some(Destination::file(&p, "--save").map_err(|e| e.to_string())?)
        }
        false => None,
    };
    // Every timing three times, the median kept: single timings are about 10 % apart.
    let c = crate::cluster::clock::calibrate(3)?;
    if let Some(dest) = &target {
        let saved = calibration::Saved {
            host: calibration::host(),
            calibrated_unix_seconds: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            dmoe_version: env!("CARGO_PKG_VERSION").into(),
            cost_model: c.clone(),
        };
        dest.write(|w| w.write_all(calibration::to_toml(&saved).as_bytes())).map_err(|e| e.to_string())?;
    }
    say!("# model-clock constants measured on this machine; paste into a scenario");
    say!("[cost_model]");
    for (name, value) in crate::cluster::clock::CostModel::NAMES.iter().zip(c.values()) {
        say!("{name} = {value:e}");
    }
    if let Some(dest) = target {
        say!("# saved in {}: model-clock runs on this machine now start from these constants", dest.path().display());
    }
    Ok(())
}

/// Says on stderr which model-clock constants a plan uses and where they came from.
fn tell_constants(plan: &study::Plan) {
    if let (crate::cluster::clock::Clock::Model(c), Some(source)) = (&plan.clock, &plan.cost_source) {
        tell!("model clock: {}; constants from {source}", c.describe());
    }
}
