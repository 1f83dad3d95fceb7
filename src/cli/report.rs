//! `dmoe report DIR`: draws the plots and index.html of an output folder again from its results,
//! without running anything (other metrics, another run's timeline, a newer dmoe's plots).

use std::path::PathBuf;

use clap::Args;

use crate::destination::Destination;
use crate::numeric::range::{Range, field};
use crate::report::{self, ViewOptions, plots};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// An output folder of `dmoe run` (it holds results.csv, run.json and records/).
    dir: PathBuf,
    /// An accuracy metric to plot besides the default ones (rpe, loglik, param-mse, transport);
    /// repeat for several.
    #[arg(long = "metric", value_name = "METRIC", value_parser = plots::METRICS)]
    metrics: Vec<String>,
    /// The cell whose virtual timeline is drawn (default: the largest cluster).
    #[arg(long, value_name = "CELL")]
    timeline: Option<usize>,
    /// The repetition of that cell's timeline.
    #[arg(long, value_name = "REP", default_value_t = 0, requires = "timeline")]
    rep: usize,
    /// Nats per test row the protocol's model (the reduction, in one-shot) may lose against the
    /// global fit for an M to be recommended
    /// (default: the run's own, 0.01 unless `run --budget` said otherwise).
    #[arg(long, allow_negative_numbers = true)]
    budget: Option<f64>,
}

pub fn report(a: ReportArgs) -> Result<(), String> {
    let started = std::time::Instant::now();
    if !a.dir.join("run.json").is_file() {
        return Err(format!("{}: no run.json here; give an output folder of `dmoe run`", a.dir.display()));
    }
    let dest = Destination::folder(&a.dir, "DIR").map_err(|e| e.to_string())?;
    if let Some(b) = a.budget {
        field("--budget", Range::NATS_PER_ROW, b)?;
    }
    let mut opts = ViewOptions { timeline: a.timeline.map(|c| (c, a.rep)), ..ViewOptions::default() };
    // The defaults, then each metric asked for once, in the order given.
    for m in &a.metrics {
        if !opts.metrics.contains(m) {
            opts.metrics.push(m.clone());
        }
    }
    let (figures, budget, recommendations) = report::redraw(&dest, &opts, a.budget, &a.metrics)?;
    drop(dest);
    say!("{figures} figures and index.html redrawn in {}/ ({:.1} s)", a.dir.display(), started.elapsed().as_secs_f64());
    super::run::print_recommendations(&recommendations, budget);
    Ok(())
}
