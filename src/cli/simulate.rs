//! `dmoe simulate`: a data set drawn from a random true MoE, written as CSV.

use std::path::PathBuf;

use clap::Args;

use crate::data::memory;
use crate::data::synthetic::{Simulator, TruthSpec};
use crate::destination::{self, Destination};
use crate::numeric::rng;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Number of components K of the true model.
    #[arg(long)]
    k: usize,
    /// Number of covariates d.
    #[arg(long)]
    d: usize,
    /// Number of rows to draw.
    #[arg(long)]
    n: usize,
    /// Seed of the true model, the covariate clusters and the rows.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Expert separation s: noise variance 3/s^2 (1 = the authors' setting).
    #[arg(long, default_value_t = 1.0)]
    separation: f64,
    /// Output CSV: columns x1..xd, y, z (z = true component, 1..K).
    #[arg(long)]
    out: PathBuf,
    /// Also write the true model as JSON (the same format as `fit --out`).
    #[arg(long)]
    truth: Option<PathBuf>,
}

pub fn simulate(a: SimulateArgs) -> Result<(), String> {
    if a.n == 0 {
        return Err("--n: expected at least 1 row, got 0".into());
    }
    memory::check_fits(memory::rows_bytes(a.n, a.d), &format!("--n {} rows of --d {} covariates", a.n, a.d))?;
    let out = Destination::file(&a.out, "--out").map_err(|e| e.to_string())?;
    let truth = a.truth.as_deref().map(|p| Destination::file(p, "--truth")).transpose().map_err(|e| e.to_string())?;
    let sim = Simulator::random(&TruthSpec { k: a.k, d: a.d, separation: a.separation, seed: a.seed })
        .map_err(|e| e.to_string())?;
    let data = sim.sample(a.n, &mut rng::stream(a.seed, &[2]));
    let csv = out
        .stage_file(|w| {
            let names: Vec<String> = sim.truth.features.iter().cloned().chain(["y".into(), "z".into()]).collect();
            writeln!(w, "{}", names.join(","))?;
            for ((row, y), z) in data.x.outer_iter().zip(data.y.iter()).zip(&data.z) {
                for v in row {
                    write!(w, "{v},")?;
                }
                writeln!(w, "{y},{}", z + 1)?;
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    let mut staged = vec![csv];
    if let Some(t) = &truth {
        staged.push(t.stage_file(|w| writeln!(w, "{}", sim.truth.to_json())).map_err(|e| e.to_string())?);
    }
    destination::commit(staged).map_err(|e| e.to_string())?;
    // The locks go before anything is printed: a closed stdout must not leave them.
    drop((out, truth));
    say!("wrote {} rows (K = {}, d = {}, seed {}) to {}", a.n, a.k, a.d, a.seed, a.out.display());
    Ok(())
}
