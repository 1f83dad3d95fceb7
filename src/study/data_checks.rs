//! The checks of a scenario that need its data: the true model file, the CSV columns and values (read
//! as `run` reads them), the partition column, and the shard sizes of every cell; then the cells.

use std::path::Path;

use super::plan::{Cell, DataPlan, Plan};
use super::problems::Problems;
use super::resolve::Pending;
use crate::data::sharding::{self, PartitionSpec, ShardSizes};
use crate::data::synthetic::Recipe;
use crate::data::{CsvFile, DataError, memory};
use crate::numeric::model::{Moe, n_free_params};
use crate::numeric::range::MAX_CLUSTER_RUNS;

/// Checks that need the data, then the cells. Synthetic data: the truth file. CSV data: the columns,
/// every value of the used columns (as `run` will read them), the partition column. Then every
/// machine of every cell must get at least as many training rows as the model has free parameters.
pub(super) fn data_checks(plan: &mut Plan, pending: Pending, problems: &Problems) {
    let (ns, csv) = match plan.data.clone() {
        DataPlan::Synthetic { k, d, truth, .. } => {
            check_truth(truth.as_deref(), k, d, problems);
            plan.d = d;
            plan.features = (1..=d).map(|j| format!("x{j}")).collect();
            plan.target = "y".into();
            if !check_memory(&pending.ns, k, max_k(plan), d, problems) {
                return;
            }
            (pending.ns, None)
        }
        DataPlan::Csv { path, .. } => match check_csv(plan, &path, &pending, problems) {
            Some((n, csv)) => {
                plan.data = DataPlan::Csv { path, file: Some(csv.clone()) };
                if !check_memory(&[n], 0, max_k(plan), plan.features.len(), problems) {
                    return;
                }
                (vec![n], Some(csv))
            }
            None => return,
        },
    };
    let counts = machine_counts(plan, csv.as_ref(), pending.machines, problems);
    let Some((machines, categories)) = counts else { return };
    let settings = plan.settings.len();
    let runs = ns
        .len()
        .saturating_mul(settings)
        .saturating_mul(plan.protocols.len())
        .saturating_mul(plan.networks.len())
        .saturating_mul(machines.len())
        .saturating_mul(plan.repetitions);
    if runs > MAX_CLUSTER_RUNS {
        problems.add("repetitions", format!(
            "{} n x {settings} settings (K, S, stragglers, failures) x {} protocols x {} networks x {} machine counts x {} repetitions = {runs} cluster runs; at most {MAX_CLUSTER_RUNS} (sweep fewer values or repeat less)",
            ns.len(), plan.protocols.len(), plan.networks.len(), machines.len(), plan.repetitions
        ));
        return;
    }
    if check_shards(plan, &ns, &machines, problems)
        && check_expert_windows(plan, &ns, &machines, problems)
        && categories.is_none_or(|values| check_categories(plan, &values, problems))
    {
        plan.cells = cells(&ns, settings, plan.protocols.len(), plan.networks.len(), &machines);
    }
}

/// The largest fitted K of the sweep: the one that needs the most rows and memory.
fn max_k(plan: &Plan) -> usize {
    plan.k_values().into_iter().max().unwrap_or(1)
}

/// The largest data set, with the larger of the true and the fitted K, must fit in the memory this
/// process may use (`data::memory`); the problem is reported at `model.k` when the fitted K makes it
/// so, else at `data.n`.
fn check_memory(ns: &[usize], true_k: usize, k: usize, d: usize, problems: &Problems) -> bool {
    let n = ns.iter().copied().max().unwrap_or(0);
    let what = format!("n = {n} rows on d = {d} covariates with K = {}", true_k.max(k));
    let key = if k > true_k && memory::check_fits(memory::fit_bytes(n, true_k, d), "").is_ok() {
        "model.k"
    } else {
        "data.n"
    };
    memory::check_fits(memory::fit_bytes(n, true_k.max(k), d), &what).map_err(|e| problems.add(key, e)).is_ok()
}

/// The true model file, if any, must load and have `k` components on `d` covariates.
fn check_truth(truth: Option<&Path>, k: usize, d: usize, problems: &Problems) {
    let Some(path) = truth else { return };
    match Moe::load(path) {
        Err(e) => problems.add("data.truth", e.to_string()),
        Ok(t) if t.k() != k || t.d() != d => {
            problems.add("data.truth", format!("the model has K = {}, d = {}; expected K = {k}, d = {d}", t.k(), t.d()))
        }
        Ok(_) => {}
    }
}

/// Resolves the CSV columns into the plan and reads them as `run` will; returns the row count.
fn check_csv(plan: &mut Plan, path: &Path, pending: &Pending, problems: &Problems) -> Option<(usize, CsvFile)> {
    let csv = CsvFile::open(path).map_err(|e| problems.add("data.path", e.to_string())).ok()?;
    let columns = || csv.header().join(", ");
    let defaults = match &plan.partition {
        PartitionSpec::Column(c) if pending.features.is_none() => Some(csv.features_except(&pending.target, c)),
        _ => pending.features.clone(),
    };
    let (target, features) = csv.columns(&pending.target, defaults.as_deref());
    if !csv.has_column(&target.column) {
        problems.add(
            "data.target",
            format!("no column `{}` in {} (columns: {})", target.column, path.display(), columns()),
        );
        return None;
    }
    if let Some(c) = features.iter().find(|c| !csv.has_column(&c.column)) {
        problems
            .add("data.features", format!("no column `{}` in {} (columns: {})", c.column, path.display(), columns()));
        return None;
    }
    if features.is_empty() {
        problems.add("data.features", "expected at least one numeric feature column");
        return None;
    }
    plan.features = features.into_iter().map(|c| c.label).collect();
    plan.target = target.label;
    plan.d = plan.features.len();
    let data = csv.dataset(&plan.target, Some(&plan.features));
    let n = data
        .map_err(|e| {
            // A bad value is the fault of the key that asked for its column.
            let key = match &e {
                DataError::BadValue { column, .. } if *column == target.column => "data.target",
                DataError::BadValue { .. } | DataError::TargetAmongFeatures { .. } => "data.features",
                _ => "data.path",
            };
            problems.add(key, e.to_string())
        })
        .ok()?
        .y
        .len();
    if let PartitionSpec::Column(c) = &plan.partition
        && !csv.has_column(c)
    {
        problems.add(
            "cluster.partition",
            format!(
                "expected \"random\", \"contiguous\" or a column of the data; no column `{c}` (columns: {})",
                columns()
            ),
        );
        return None;
    }
    Some((n, csv))
}

/// The machine counts to sweep: `cluster.machines`, or one machine per value of the partition column.
/// With a column partition, also the column's value on every row (read from `csv`, the data's file,
/// already open).
fn machine_counts(
    plan: &Plan,
    csv: Option<&CsvFile>,
    machines: Option<Vec<usize>>,
    problems: &Problems,
) -> Option<(Vec<usize>, Option<Vec<String>>)> {
    let (column, csv) = match (&plan.partition, csv) {
        (PartitionSpec::Column(c), Some(csv)) => (c, csv),
        (PartitionSpec::Column(c), None) => {
            problems.add(
                "cluster.partition",
                format!("expected \"random\" or \"contiguous\" for synthetic data, got \"{c}\""),
            );
            return None;
        }
        _ => {
            if machines.is_none() {
                problems
                    .add("cluster.machines", "missing: expected a machine count or a list of them, e.g. [1, 2, 4, 8]");
            }
            return machines.map(|m| (m, None));
        }
    };
    if machines.is_some() {
        problems.add(
            "cluster.machines",
            format!("leave it out with partition = \"{column}\": there is one machine per distinct value"),
        );
        return None;
    }
    let values = csv.read_text(column).map_err(|e| problems.add("cluster.partition", e.to_string())).ok()?;
    let mut levels: Vec<&String> = values.iter().collect();
    levels.sort();
    levels.dedup();
    Some((vec![levels.len()], Some(values)))
}

/// Under a column partition, every category must keep at least as many training rows as the model has
/// free parameters, in every repetition's train/test split (drawn as `run` draws it).
fn check_categories(plan: &Plan, values: &[String], problems: &Problems) -> bool {
    let k = max_k(plan);
    let need = n_free_params(k, plan.d);
    let mut levels: Vec<&String> = values.iter().collect();
    levels.sort();
    levels.dedup();
    for rep in 0..plan.repetitions {
        let seed = plan.split_seed(rep);
        let (train, _) = sharding::train_test_split(values.len(), plan.test_fraction, seed);
        let mut rows = vec![0usize; levels.len()];
        for &r in &train {
            rows[levels.binary_search(&&values[r]).expect("a level of the column")] += 1;
        }
        let (smallest, level) = rows.iter().zip(&levels).min_by_key(|(n, _)| **n).expect("at least one level");
        if *smallest < need {
            problems.add("cluster.partition", format!(
                "the machine for value \"{level}\" gets {smallest} training rows (repetition {rep}), but K = {k} on d = {} features needs at least {need}: merge small categories or use a smaller K",
                plan.d
            ));
            return false;
        }
    }
    true
}

/// The heterogeneous recipe: every expert in some machine's window for every M, equal shard sizes
/// not overridden, and every machine's expected rows (its experts' shares of the training rows,
/// each expert's rows dealt evenly over the machines that hold it) at least the model's free
/// parameters. Returns whether all is well.
fn check_expert_windows(plan: &Plan, ns: &[usize], machines: &[usize], problems: &Problems) -> bool {
    let DataPlan::Synthetic { k, recipe: Recipe::Heterogeneous { profile, experts_per_machine: per }, .. } = plan.data
    else {
        return true;
    };
    if plan.shard_sizes != ShardSizes::Equal {
        problems.add(
            "cluster.shard_sizes",
            "the heterogeneous recipe deals the rows out by expert: expected no shard_sizes",
        );
        return false;
    }
    let Ok(shares) = profile.shares(k) else { return false }; // reported with data.profile
    let need = n_free_params(max_k(plan), plan.d);
    for &m in machines {
        if let Some(c) = sharding::uncovered_expert(m, k, per) {
            problems.add("data.experts_per_machine", format!(
                "with M = {m} and {per} of the {k} experts on each machine, no machine holds expert {}: use more experts per machine or more machines",
                c + 1
            ));
            return false;
        }
        let holders = sharding::expert_holders(m, k, per);
        for &n in ns {
            let train = (n - plan.n_test(n)) as f64;
            let smallest = (0..m)
                .map(|i| {
                    let window = sharding::expert_window(i, m, k, per);
                    window.iter().map(|&c| train * shares[c] / holders[c].len() as f64).sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min);
            if smallest < need as f64 {
                problems.add("cluster.machines", format!(
                    "M = {m} leaves about {smallest:.0} training rows on the smallest machine (n = {n}, heterogeneous recipe), but the model needs at least {need}: use fewer machines or more rows"
                ));
                return false;
            }
        }
    }
    true
}

/// Every machine of every cell gets at least as many training rows as the model has free parameters
/// under the largest swept K (for lognormal shard sizes, in every repetition). Returns whether all
/// is well.
fn check_shards(plan: &Plan, ns: &[usize], machines: &[usize], problems: &Problems) -> bool {
    let (k, d) = (max_k(plan), plan.d);
    let need = n_free_params(k, d);
    let by_column = matches!(plan.partition, PartitionSpec::Column(_));
    let reps = if plan.shard_sizes == ShardSizes::Equal { 1 } else { plan.repetitions };
    for (n_index, &n) in ns.iter().enumerate() {
        let n_test = plan.n_test(n);
        if n_test == 0 || n_test >= n {
            problems.add(
                "data.test_fraction",
                format!(
                    "with n = {n} it leaves {n_test} test rows and {} training rows; both must be at least 1",
                    n - n_test.min(n)
                ),
            );
            return false;
        }
        let train = n - n_test;
        for &m in machines {
            if by_column && train < need * m {
                problems.add("cluster.partition", format!(
                    "{train} training rows over {m} machines cannot give each the {need} rows that K = {k} on d = {d} features needs"
                ));
                return false;
            }
            if by_column {
                continue;
            }
            if m > train / need {
                problems.add("cluster.machines", format!(
                    "M = {m} is more machines than the {train} training rows (n = {n}) can give {need} rows each (K = {k} on d = {d} features): at most {}",
                    train / need
                ));
                return false;
            }
            for rep in 0..reps {
                let smallest = plan.shard_blocks(train, m, n_index, rep).iter().map(|r| r.len()).min().unwrap_or(0);
                if smallest < need {
                    problems.add("cluster.machines", format!(
                        "M = {m} leaves {smallest} training rows on the smallest machine (n = {n}, repetition {rep}), but K = {k} on d = {d} features needs at least {need}: use fewer machines, a smaller K or more rows"
                    ));
                    return false;
                }
            }
        }
    }
    true
}

/// The cells in sweep order: n, then setting, then protocol, then network, then M.
fn cells(ns: &[usize], settings: usize, protocols: usize, networks: usize, machines: &[usize]) -> Vec<Cell> {
    let mut cells = Vec::new();
    for (n_index, &n) in ns.iter().enumerate() {
        for setting in 0..settings {
            for protocol in 0..protocols {
                for network in 0..networks {
                    for &m in machines {
                        cells.push(Cell { index: cells.len(), n_index, n, setting, protocol, network, machines: m });
                    }
                }
            }
        }
    }
    cells
}
