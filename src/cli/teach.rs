//! `dmoe teach --out DIR`: the one-shot reduction step by step on one covariate, as figures and a
//! page that steps through them.

use std::path::PathBuf;

use clap::Args;

use crate::destination::{self, Destination};
use crate::report::teach::{self, TeachSettings};

#[derive(Debug, Args)]
pub struct TeachArgs {
    /// Output folder (new, empty, or an earlier dmoe output, replaced whole).
    #[arg(long)]
    out: PathBuf,
    /// Experts K (1 to 8).
    #[arg(long, default_value_t = TeachSettings::default().k)]
    k: usize,
    /// Machines M (1 to 9, one panel each).
    #[arg(long, default_value_t = TeachSettings::default().machines)]
    machines: usize,
    /// Rows n, split evenly over the machines.
    #[arg(long, default_value_t = TeachSettings::default().n)]
    n: usize,
    /// Seed of the true model, the data and the fits.
    #[arg(long, default_value_t = TeachSettings::default().seed)]
    seed: u64,
}

pub fn teach(a: TeachArgs) -> Result<(), String> {
    let started = std::time::Instant::now();
    let settings = TeachSettings { k: a.k, machines: a.machines, n: a.n, seed: a.seed };
    teach::check(&settings)?;
    // A study's results are not a lesson's to replace.
    if a.out.join("results.csv").exists() || a.out.join("run.json").exists() {
        return Err(format!(
            "--out {}: holds the results of a `dmoe run`; give the lesson a folder of its own",
            a.out.display()
        ));
    }
    let dest = Destination::folder(&a.out, "--out").map_err(|e| e.to_string())?;
    let lesson = teach::lesson(&settings)?;
    let staged = dest.stage().map_err(|e| e.to_string())?;
    teach::write(staged.path(), &lesson)?;
    destination::commit(vec![staged]).map_err(|e| e.to_string())?;
    drop(dest);
    let iterations = lesson.steps.last().map_or(0, |s| s.iteration);
    let shown = match lesson.steps.len() - 1 == iterations {
        true => String::new(),
        false => format!(", {} of them shown", lesson.steps.len() - 1),
    };
    say!(
        "{} steps ({iterations} MM iterations{shown}) in {}/index.html ({:.1} s)",
        teach::steps(&lesson).len(),
        a.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
