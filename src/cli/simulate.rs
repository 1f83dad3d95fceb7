//! `dmoe simulate`: a data set drawn from a random true MoE by one of the recipes, written as CSV.

use std::path::PathBuf;

use clap::Args;

use crate::data::memory;
use crate::data::sharding;
use crate::data::synthetic::{Profile, Recipe, Simulator, TruthSpec};
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
    /// How the data are made (docs/synthetic.md): the authors' `benchmark` (Figure 5 script),
    /// `profiles` (z first with fixed shares, the gate its exact posterior), `heterogeneous`
    /// (profiles data with a `machine` column: each machine holds rows of only some experts) or
    /// dmoe's `spread` recipe.
    #[arg(long, default_value = "benchmark", value_parser = Recipe::NAMES)]
    recipe: String,
    /// Component shares of `profiles` and `heterogeneous`: balanced (1/K each, the default),
    /// moderate or severe (K = 5 only).
    #[arg(long, value_parser = Profile::NAMES)]
    profile: Option<String>,
    /// With `--recipe heterogeneous`: the machines M of the `machine` column (1..M).
    #[arg(long)]
    machines: Option<usize>,
    /// With `--recipe heterogeneous`: experts in each machine's rows (default: half of K, rounded up).
    #[arg(long)]
    experts_per_machine: Option<usize>,
    /// Output CSV: columns x1..xd, y, z (z = true component, 1..K), and `machine` with `--recipe
    /// heterogeneous`.
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
    let recipe = recipe(&a)?;
    let sim = Simulator::draw(&TruthSpec { k: a.k, d: a.d, separation: a.separation, seed: a.seed }, &recipe)
        .map_err(|e| e.to_string())?;
    let data = sim.sample(a.n, &mut rng::stream(a.seed, &[2]));
    let machine = machine_column(&recipe, &data.z, a.k, a.machines);
    let csv = out
        .stage_file(|w| {
            let mut names: Vec<String> = sim.truth.features.iter().cloned().chain(["y".into(), "z".into()]).collect();
            names.extend(machine.as_ref().map(|_| "machine".to_string()));
            writeln!(w, "{}", names.join(","))?;
            for (i, ((row, y), z)) in data.x.outer_iter().zip(data.y.iter()).zip(&data.z).enumerate() {
                for v in row {
                    write!(w, "{v},")?;
                }
                match &machine {
                    Some(m) => writeln!(w, "{y},{},{}", z + 1, m[i] + 1)?,
                    None => writeln!(w, "{y},{}", z + 1)?,
                }
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
    say!("wrote {} rows (K = {}, d = {}, seed {}, {} recipe) to {}", a.n, a.k, a.d, a.seed, a.recipe, a.out.display());
    Ok(())
}

/// The recipe of the flags, checked: `--machines` and `--experts-per-machine` only with
/// `heterogeneous` (which needs `--machines`), the unbalanced profiles only with K = 5.
fn recipe(a: &SimulateArgs) -> Result<Recipe, String> {
    let heterogeneous = a.recipe == "heterogeneous";
    if a.profile.is_some() && !Recipe::takes_profile(&a.recipe) {
        return Err(format!(
            "--profile: expected only with --recipe profiles or heterogeneous, got --recipe {}",
            a.recipe
        ));
    }
    if !heterogeneous && (a.machines.is_some() || a.experts_per_machine.is_some()) {
        return Err(format!(
            "--machines and --experts-per-machine: expected only with --recipe heterogeneous, got --recipe {}",
            a.recipe
        ));
    }
    let per_machine = a.experts_per_machine.unwrap_or(a.k.div_ceil(2));
    if heterogeneous {
        let Some(m) = a.machines.filter(|&m| m >= 1) else {
            return Err("--machines: expected at least 1 machine with --recipe heterogeneous".into());
        };
        if !(1..=a.k).contains(&per_machine) {
            return Err(format!(
                "--experts-per-machine: expected a whole number in [1, {}] (K), got {per_machine}",
                a.k
            ));
        }
        if let Some(c) = sharding::uncovered_expert(m, a.k, per_machine) {
            return Err(format!(
                "--machines {m} with --experts-per-machine {per_machine}: no machine holds expert {}; use more of either",
                c + 1
            ));
        }
    }
    let profile = a.profile.as_deref().map_or(Profile::Balanced, |p| Profile::named(p).expect("clap checked the name"));
    Ok(Recipe::named(&a.recipe, profile, per_machine).expect("clap checked the name"))
}

/// The machine of every row (0-based) for the heterogeneous recipe: each expert's rows dealt in turn
/// to the machines that hold it.
fn machine_column(recipe: &Recipe, z: &[usize], k: usize, machines: Option<usize>) -> Option<Vec<usize>> {
    let per_machine = recipe.experts_per_machine()?;
    let machines = machines.expect("checked with the recipe");
    let (order, shards) = sharding::by_expert_windows(z, k, machines, per_machine);
    let mut machine = vec![0; z.len()];
    for (m, range) in shards.into_iter().enumerate() {
        order[range].iter().for_each(|&r| machine[r] = m);
    }
    Some(machine)
}
