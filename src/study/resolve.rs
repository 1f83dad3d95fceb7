//! From a scenario document to a `Plan`: one resolver per section reads its keys with their types and
//! ranges (`Section`), then `data_checks` looks at the data themselves (files, columns, shard sizes).
//! Every problem of the file is collected and reported at once.

use std::path::Path;

use super::plan::{Cell, DataPlan, Estimator, Network, Plan};
use super::problems::{Problems, ScenarioError};
use super::section::Section;
use super::source::Source;
use crate::cluster::clock::{Clock, CostModel};
use crate::cluster::machines::{MachineModel, Speed};
use crate::cluster::network::{Latency, NetworkModel};
use crate::data::sharding::{PartitionSpec, ShardSizes};
use crate::data::{ColumnExpr, CsvFile, load_dataset};
use crate::numeric::em::EmSettings;
use crate::numeric::model::{Moe, n_free_params};
use crate::numeric::range::Range;
use crate::reduce::{OutlierPolicy, ReductionSettings};

/// Reads, resolves and checks the scenario `file` with `overrides` (`key=value`).
pub fn load(file: &Path, overrides: &[String]) -> Result<Plan, ScenarioError> {
    let source = Source::load(file, overrides)?;
    let problems = source.problems();
    let (mut plan, pending) = resolve(&source, &problems);
    if !problems.any() {
        data_checks(&mut plan, pending, &problems);
    }
    problems.finish(plan)
}

/// Keys whose meaning depends on the data, kept for `data_checks`.
struct Pending {
    /// `data.n` (synthetic data).
    ns: Vec<usize>,
    /// `data.target` (CSV data).
    target: String,
    /// `data.features` (CSV data).
    features: Option<Vec<String>>,
    /// `cluster.machines`.
    machines: Option<Vec<usize>>,
}

/// Every section of the document, read into a plan (with placeholders where a key was wrong).
fn resolve(source: &Source, problems: &Problems) -> (Plan, Pending) {
    let root = Section::root(&source.doc, problems);
    let file = &source.file;
    let name = resolve_name(&root, file);
    let _description = root.opt_text("description");
    let seed = root.opt_u64("seed").unwrap_or(1);
    let repetitions = root.count("repetitions", 1, 1);
    let threads = root.opt_count("threads", 1);
    let estimators = resolve_estimators(&root);
    let (data, mut pending, test_fraction) = resolve_data(&root.table("data"), file.parent().unwrap_or(Path::new(".")));
    let data_k = if let DataPlan::Synthetic { k, .. } = data { Some(k) } else { None };
    let k = resolve_k(&root.table("model"), data_k);
    let cluster = root.table("cluster");
    pending.machines = cluster.opt_counts("machines", 1);
    let support = cluster.count("support", 1, 2000);
    let partition = PartitionSpec::parse(cluster.opt_text("partition").unwrap_or("random"));
    let deadline = cluster.opt_number("deadline", Range::Positive);
    let shard_sizes = resolve_shard_sizes(&cluster.table("shard_sizes"));
    cluster.finish();
    let networks = resolve_networks(&root);
    let machine_model = resolve_machines(&root.table("machines"));
    let em = resolve_em(&root.table("em"), k, seed);
    let reduction = resolve_reduction(&root.table("reduction"), k, seed);
    let clock = match root.choice("clock", &["measured", "model"]) {
        Some("model") => Clock::Model(resolve_cost_model(&root.table("cost_model"))),
        _ => {
            resolve_cost_model(&root.table("cost_model"));
            Clock::Measured
        }
    };
    root.finish();
    let plan = Plan {
        file: file.clone(),
        document: source.doc.clone(),
        name,
        seed,
        repetitions,
        clock,
        threads,
        estimators,
        data,
        test_fraction,
        k,
        d: 0,
        features: Vec::new(),
        target: String::new(),
        partition,
        shard_sizes,
        support,
        deadline,
        networks,
        machines: machine_model,
        em,
        reduction,
        cells: Vec::new(),
    };
    (plan, pending)
}

/// `name` (a folder name), or the file name without `.toml`.
fn resolve_name(root: &Section, file: &Path) -> String {
    match root.opt_text("name") {
        Some(n) if n.is_empty() || n.contains(['/', '\\']) || n.starts_with('.') => {
            root.problem("name", format!("expected a folder name without `/` or a leading dot, got \"{n}\""));
            "scenario".into()
        }
        Some(n) => n.to_string(),
        None => file.file_stem().and_then(|x| x.to_str()).unwrap_or("scenario").to_string(),
    }
}

/// `estimators`: names, each once, the reduction among them (default: all six).
fn resolve_estimators(root: &Section) -> Vec<Estimator> {
    let Some(names) = root.opt_texts("estimators") else { return Estimator::ALL.to_vec() };
    let mut out = Vec::new();
    for n in &names {
        match Estimator::parse(n) {
            Some(e) if out.contains(&e) => root.problem("estimators", format!("\"{n}\" is listed twice")),
            Some(e) => out.push(e),
            None => {
                let all: Vec<String> = Estimator::ALL.iter().map(|e| format!("\"{}\"", e.name())).collect();
                root.problem("estimators", format!("unknown estimator \"{n}\"; expected some of {}", all.join(", ")));
            }
        }
    }
    if !names.iter().any(|n| n == "reduction") {
        root.problem("estimators", "expected a list that includes \"reduction\" (the estimator under study)");
    }
    out
}

/// `[data]`: the plan, the keys that `data_checks` needs, and the test fraction.
fn resolve_data(data: &Section, dir: &Path) -> (DataPlan, Pending, f64) {
    let mut pending = Pending { ns: Vec::new(), target: "y".into(), features: None, machines: None };
    let placeholder = DataPlan::Synthetic { k: 1, d: 1, separation: 1.0, truth_seed: 1, truth: None };
    if !data.present() {
        data.problem("", "missing: expected a [data] table with kind = \"synthetic\" or \"csv\"");
        return (placeholder, pending, 0.2);
    } else if data.raw("kind").is_none() {
        data.problem("kind", "missing: expected \"synthetic\" or \"csv\"");
        data.ignore_rest();
    }
    let test_fraction = data.number("test_fraction", Range::OpenUnit, 0.2);
    let Some(kind) = data.choice("kind", &["synthetic", "csv"]).filter(|_| data.raw("kind").is_some()) else {
        return (placeholder, pending, test_fraction);
    };
    let plan = if kind == "csv" {
        let path = data.opt_text("path");
        if path.is_none() {
            data.problem("path", "missing: expected the CSV file, relative to the scenario");
        }
        match data.opt_text("target") {
            Some(t) => pending.target = t.to_string(),
            None => data.problem("target", "missing: expected the response column, e.g. \"y\" or \"log(price)\""),
        }
        pending.features = data.opt_texts("features");
        DataPlan::Csv { path: dir.join(path.unwrap_or_default()) }
    } else {
        let k = data.required_count("k", 1, "the number of true components, a whole number >= 1");
        let d = data.required_count("d", 1, "the number of covariates, a whole number >= 1");
        let separation = data.number("separation", Range::Positive, 1.0);
        let truth_seed = data.opt_u64("truth_seed").unwrap_or(1);
        let truth = data.opt_text("truth").map(|t| dir.join(t));
        if data.raw("n").is_none() {
            data.problem("n", "missing: expected the rows per data set, a whole number or a list of them");
        }
        pending.ns = data.opt_counts("n", 1).unwrap_or_default();
        DataPlan::Synthetic { k, d, separation, truth_seed, truth }
    };
    data.finish();
    (plan, pending, test_fraction)
}

/// The fitted K: `model.k`, or the true K of synthetic data.
fn resolve_k(model: &Section, data_k: Option<usize>) -> usize {
    let k = model.opt_count("k", 1);
    model.finish();
    match (k, data_k) {
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) => {
            model.problem("k", "missing: expected the number of components to fit (required for CSV data)");
            1
        }
    }
}

/// `cluster.shard_sizes`: `{ kind = "equal" }` or `{ kind = "lognormal", sigma }`.
fn resolve_shard_sizes(t: &Section) -> ShardSizes {
    let sizes = match t.choice("kind", &["equal", "lognormal"]) {
        Some("lognormal") => ShardSizes::Lognormal { sigma: t.required_number("sigma", Range::NonNegative) },
        _ => ShardSizes::Equal,
    };
    t.finish();
    sizes
}

/// `[network]` or `[[network]]`: every network with its label (default: an ideal network).
fn resolve_networks(root: &Section) -> Vec<Network> {
    let tables = root.tables("network");
    if tables.is_empty() {
        return vec![Network { label: Latency::Constant { seconds: 0.0 }.describe(), model: NetworkModel::default() }];
    }
    tables
        .into_iter()
        .map(|t| {
            let name = t.opt_text("name").map(String::from);
            let latency = resolve_latency(&t.table("latency"));
            let model = NetworkModel {
                bandwidth: t.opt_number("bandwidth", Range::Positive),
                loss: t.number("loss", Range::ProbabilityBelowOne, 0.0),
                retransmit_after: t.number("retransmit_after", Range::NonNegative, 0.2),
                latency,
            };
            t.finish();
            Network { label: name.unwrap_or_else(|| model.latency.describe()), model }
        })
        .collect()
}

/// A latency table: `kind` and the parameters of that kind (default: constant 0).
fn resolve_latency(t: &Section) -> Latency {
    if !t.present() {
        return Latency::Constant { seconds: 0.0 };
    }
    let kinds = ["constant", "uniform", "exponential", "lognormal", "normal"];
    if t.raw("kind").is_none() {
        t.problem(
            "kind",
            "missing: expected one of \"constant\", \"uniform\", \"exponential\", \"lognormal\", \"normal\"",
        );
    }
    let num = |key| t.required_number(key, Range::NonNegative);
    let pos = |key| t.required_number(key, Range::Positive);
    let latency = match t.choice("kind", &kinds) {
        None => Latency::Constant { seconds: 0.0 },
        Some("uniform") => {
            let (min, max) = (num("min"), num("max"));
            if min > max {
                t.problem("min", format!("expected at most `max` ({max}), got {min}"));
            }
            Latency::Uniform { min, max }
        }
        Some("exponential") => Latency::Exponential { mean: pos("mean") },
        Some("lognormal") => Latency::Lognormal { median: pos("median"), sigma: num("sigma") },
        Some("normal") => Latency::Normal { mean: pos("mean"), sd: num("sd") },
        _ => Latency::Constant { seconds: num("seconds") },
    };
    t.finish();
    latency
}

/// `[machines]`: speeds and failures.
fn resolve_machines(t: &Section) -> MachineModel {
    let s = t.table("speed");
    let speed = match s.choice("kind", &["equal", "stragglers", "lognormal"]) {
        Some("stragglers") => Speed::Stragglers {
            fraction: s.required_number("fraction", Range::Probability),
            slowdown: s.required_number("slowdown", Range::AtLeast(1.0)),
        },
        Some("lognormal") => Speed::Lognormal { sigma: s.required_number("sigma", Range::NonNegative) },
        _ => Speed::Equal,
    };
    s.finish();
    let failure_probability = t.number("failure_probability", Range::Probability, 0.0);
    t.finish();
    MachineModel { speed, failure_probability }
}

/// `[em]`: the local and global fits' settings.
fn resolve_em(t: &Section, k: usize, seed: u64) -> EmSettings {
    let d = EmSettings::default();
    let em = EmSettings {
        k,
        restarts: t.count("restarts", 1, d.restarts),
        warmup_iter: t.count("warmup_iter", 0, d.warmup_iter),
        max_iter: t.count("max_iter", 1, d.max_iter),
        tol: t.number("tol", Range::NonNegative, d.tol),
        seed,
        ..d
    };
    t.finish();
    em
}

/// `[reduction]`: the server's settings.
fn resolve_reduction(t: &Section, k: usize, seed: u64) -> ReductionSettings {
    let d = ReductionSettings::default();
    let names = OutlierPolicy::ALL.map(|(n, _)| n);
    let outliers = t.choice("outliers", &names).and_then(|n| OutlierPolicy::parse(n).ok()).unwrap_or_default();
    let r = ReductionSettings {
        k,
        max_iter: t.count("max_iter", 1, d.max_iter),
        tol: t.number("tol", Range::NonNegative, d.tol),
        seed,
        outliers,
        outlier_threshold: t.number("outlier_threshold", Range::Positive, d.outlier_threshold),
        ..d
    };
    t.finish();
    r
}

/// `[cost_model]`: the model clock's constants (defaults: `CostModel::default`).
fn resolve_cost_model(t: &Section) -> CostModel {
    let d = CostModel::default();
    let c = CostModel {
        em_per_component: t.number("em_per_component", Range::Positive, d.em_per_component),
        em_per_coefficient_pair: t.number("em_per_coefficient_pair", Range::Positive, d.em_per_coefficient_pair),
        mm_per_unit: t.number("mm_per_unit", Range::Positive, d.mm_per_unit),
    };
    t.finish();
    c
}

/// Checks that need the data, then the cells. Synthetic data: the truth file. CSV data: the columns,
/// every value of the used columns (as `run` will read them), the partition column. Then every
/// machine of every cell must get at least as many training rows as the model has free parameters.
fn data_checks(plan: &mut Plan, pending: Pending, problems: &Problems) {
    let ns = match plan.data.clone() {
        DataPlan::Synthetic { k, d, truth, .. } => {
            check_truth(truth.as_deref(), k, d, problems);
            plan.d = d;
            plan.features = (1..=d).map(|j| format!("x{j}")).collect();
            plan.target = "y".into();
            pending.ns
        }
        DataPlan::Csv { path } => match check_csv(plan, &path, &pending, problems) {
            Some(n) => vec![n],
            None => return,
        },
    };
    let Some(machines) = machine_counts(plan, pending.machines, problems) else { return };
    if check_shards(plan, &ns, &machines, problems) {
        plan.cells = cells(&ns, plan.networks.len(), &machines);
    }
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
fn check_csv(plan: &mut Plan, path: &Path, pending: &Pending, problems: &Problems) -> Option<usize> {
    let csv = CsvFile::open(path).map_err(|e| problems.add("data.path", e.to_string())).ok()?;
    let columns = || csv.header().join(", ");
    let target = ColumnExpr::parse(&pending.target);
    if !csv.has_column(&target.column) {
        problems.add(
            "data.target",
            format!("no column `{}` in {} (columns: {})", target.column, path.display(), columns()),
        );
        return None;
    }
    let features: Vec<ColumnExpr> = match &pending.features {
        Some(f) => f.iter().map(|c| ColumnExpr::parse(c)).collect(),
        None => csv.default_features(&target),
    };
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
    let data = load_dataset(path, &plan.target, Some(&plan.features));
    let n = data.map_err(|e| problems.add("data.path", e.to_string())).ok()?.y.len();
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
    Some(n)
}

/// The machine counts to sweep: `cluster.machines`, or one machine per value of the partition column.
fn machine_counts(plan: &Plan, machines: Option<Vec<usize>>, problems: &Problems) -> Option<Vec<usize>> {
    let column = match (&plan.partition, &plan.data) {
        (PartitionSpec::Column(c), DataPlan::Csv { .. }) => c,
        (PartitionSpec::Column(c), DataPlan::Synthetic { .. }) => {
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
            return machines;
        }
    };
    if machines.is_some() {
        problems.add(
            "cluster.machines",
            format!("leave it out with partition = \"{column}\": there is one machine per distinct value"),
        );
        return None;
    }
    let DataPlan::Csv { path } = &plan.data else { return None };
    let values = CsvFile::open(path).and_then(|f| f.read_text(column));
    let mut values = values.map_err(|e| problems.add("cluster.partition", e.to_string())).ok()?;
    values.sort();
    values.dedup();
    Some(vec![values.len()])
}

/// Every machine of every cell gets at least as many training rows as the model has free parameters
/// (for lognormal shard sizes, in every repetition). Returns whether all is well.
fn check_shards(plan: &Plan, ns: &[usize], machines: &[usize], problems: &Problems) -> bool {
    let (k, d) = (plan.k, plan.d);
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

/// The cells in sweep order: n, then network, then M.
fn cells(ns: &[usize], networks: usize, machines: &[usize]) -> Vec<Cell> {
    let mut cells = Vec::new();
    for (n_index, &n) in ns.iter().enumerate() {
        for network in 0..networks {
            for &m in machines {
                cells.push(Cell { index: cells.len(), n_index, n, network, machines: m });
            }
        }
    }
    cells
}
