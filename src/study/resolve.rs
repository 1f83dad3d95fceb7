//! From a scenario document to a `Plan`: one resolver per section reads its keys with their types and
//! ranges (`Section`), then `data_checks` looks at the data themselves (files, columns, shard sizes).
//! Every problem of the file is collected and reported at once.

use std::path::Path;

use super::calibration::{self, Constants};
use super::data_checks::data_checks;
use super::plan::{DataPlan, Estimator, Network, Plan, Setting};
use super::problems::{Problems, ScenarioError};
use super::section::Section;
use super::source::Source;
use crate::cluster::clock::{Clock, CostModel};
use crate::cluster::machines::{MachineModel, Speed};
use crate::cluster::network::{Latency, NetworkModel};
use crate::cluster::protocol::{Protocol, ProtocolKind};
use crate::data::sharding::{PartitionSpec, ShardSizes};
use crate::data::synthetic::{MAX_TRUE_COMPONENTS, MAX_TRUE_COVARIATES, Profile, Recipe};
use crate::numeric::em::{EmSettings, check_subset_rows};
use crate::numeric::range::{MAX_COMPONENTS, MAX_ITERATIONS, MAX_REPETITIONS, MAX_RESTARTS, MAX_THREADS, Range};
use crate::reduce::{OutlierPolicy, ReductionSettings};

/// Reads, resolves and checks the scenario `file` with `overrides` (`key=value`). A model-clock
/// scenario starts from this machine's saved constants (`calibration`), if any.
pub fn load(file: &Path, overrides: &[String]) -> Result<Plan, ScenarioError> {
    let source = Source::load(file, overrides)?;
    let model_clock = source.doc.get("clock").and_then(toml::Value::as_str) == Some("model");
    let constants = match calibration::constants() {
        Ok(c) => c,
        Err((file, e)) if model_clock => return Err(ScenarioError::single(&file, None, e)),
        Err(_) => Constants { cost_model: CostModel::default(), source: String::new() },
    };
    plan_of(&source, &constants, true)
}

/// The plan of the scenario `text` a run recorded, read as if it were the file `file`, with its
/// overrides, for `dmoe report`: resolved but not checked against the data, which is not read (no
/// d, features, target or cells; the caller takes them from the run's record), and with the
/// built-in model-clock constants (the record has the ones used).
pub fn parse_recorded(file: &Path, text: &str, overrides: &[String]) -> Result<Plan, ScenarioError> {
    let constants = Constants { cost_model: CostModel::default(), source: String::new() };
    plan_of(&Source::parse(file, text, overrides)?, &constants, false)
}

/// The plan of a parsed scenario starting from the model-clock `constants`, checked against the
/// data when `check_data`, or every problem found.
fn plan_of(source: &Source, constants: &Constants, check_data: bool) -> Result<Plan, ScenarioError> {
    let problems = source.problems();
    let (mut plan, pending) = resolve(source, &problems, constants);
    if check_data && !problems.any() {
        data_checks(&mut plan, pending, &problems);
    }
    problems.finish(plan)
}

/// Keys whose meaning depends on the data, kept for `data_checks`.
pub(super) struct Pending {
    /// `data.n` (synthetic data).
    pub(super) ns: Vec<usize>,
    /// `data.target` (CSV data).
    pub(super) target: String,
    /// `data.features` (CSV data).
    pub(super) features: Option<Vec<String>>,
    /// `cluster.machines`.
    pub(super) machines: Option<Vec<usize>>,
}

/// Every section of the document, read into a plan (with placeholders where a key was wrong).
fn resolve(source: &Source, problems: &Problems, constants: &Constants) -> (Plan, Pending) {
    let root = Section::root(&source.doc, problems);
    let file = &source.file;
    let name = resolve_name(&root, file);
    let _description = root.opt_text("description");
    let seed = root.opt_u64("seed").unwrap_or(1);
    let repetitions = root.opt_count_within("repetitions", 1, MAX_REPETITIONS).unwrap_or(1);
    let threads = root.opt_count_within("threads", 1, MAX_THREADS);
    let estimators = resolve_estimators(&root);
    let (data, mut pending, test_fraction) = resolve_data(&root.table("data"), file.parent().unwrap_or(Path::new(".")));
    let data_k = if let DataPlan::Synthetic { k, .. } = data { Some(k) } else { None };
    if data_k.is_none() && estimators.contains(&Estimator::Truth) {
        root.problem("estimators", "\"truth\" needs a true model: synthetic data (data.kind = \"synthetic\")");
    }
    let ks = resolve_ks(&root.table("model"), data_k);
    let cluster = root.table("cluster");
    pending.machines = cluster.opt_counts("machines", 1);
    let supports = cluster.opt_counts("support", 1).unwrap_or_else(|| vec![crate::distributed::DEFAULT_SUPPORT]);
    let partition = PartitionSpec::parse(cluster.opt_text("partition").unwrap_or("random"));
    let deadline = cluster.opt_number("deadline", Range::POSITIVE_SECONDS);
    let shard_sizes = resolve_shard_sizes(&cluster.table("shard_sizes"));
    cluster.finish();
    let networks = resolve_networks(&root);
    let protocols = resolve_protocols(&root);
    let machine_models = resolve_machines(&root.table("machines"));
    let em = resolve_em(&root.table("em"), ks[0], seed);
    let reduction = resolve_reduction(&root.table("reduction"), ks[0], seed);
    let settings = settings(&ks, &supports, &machine_models);
    let (cost_model, cost_source) = resolve_cost_model(&root.table("cost_model"), constants);
    let (clock, cost_source) = match root.choice("clock", &["measured", "model"]) {
        Some("model") => (Clock::Model(cost_model), Some(cost_source)),
        _ => (Clock::Measured, None),
    };
    root.finish();
    let plan = Plan {
        file: file.clone(),
        document: source.doc.clone(),
        text: source.text.clone(),
        name,
        seed,
        repetitions,
        clock,
        cost_source,
        threads,
        estimators,
        data,
        test_fraction,
        d: 0,
        features: Vec::new(),
        target: String::new(),
        partition,
        shard_sizes,
        deadline,
        networks,
        protocols,
        settings,
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

/// `estimators`: names, each once, the reduction among them (default: all but the truth).
fn resolve_estimators(root: &Section) -> Vec<Estimator> {
    let Some(names) = root.opt_texts("estimators") else { return Estimator::DEFAULT.to_vec() };
    let mut out = Vec::new();
    for n in &names {
        match Estimator::parse(n) {
            Some(e) if out.contains(&e) => root.problem("estimators", format!("\"{n}\" is listed twice")),
            Some(e) => out.push(e),
            None => {
                let all: Vec<String> = Estimator::all().map(|e| format!("\"{}\"", e.name())).collect();
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
    let placeholder =
        DataPlan::Synthetic { k: 1, d: 1, separation: 1.0, truth_seed: 1, truth: None, recipe: Recipe::default() };
    if !data.present() {
        data.problem("", "missing: expected a [data] table with kind = \"synthetic\" or \"csv\"");
        return (placeholder, pending, 0.2);
    } else if data.raw("kind").is_none() {
        data.problem("kind", "missing: expected \"synthetic\" or \"csv\"");
        data.ignore_rest();
    }
    let test_fraction = data.number("test_fraction", Range::OpenUnit, 0.2);
    let Some(kind) = data.kind(&["synthetic", "csv"]).filter(|_| data.raw("kind").is_some()) else {
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
        DataPlan::Csv { path: dir.join(path.unwrap_or_default()), file: None }
    } else {
        let k = data.required_count(
            "k",
            1,
            MAX_TRUE_COMPONENTS,
            "the number of true components, a whole number in [1, 1000]",
        );
        let d =
            data.required_count("d", 1, MAX_TRUE_COVARIATES, "the number of covariates, a whole number in [1, 1000]");
        let separation = data.number("separation", Range::SEPARATION, 1.0);
        let truth_seed = data.opt_u64("truth_seed").unwrap_or(1);
        let truth = data.opt_text("truth").map(|t| dir.join(t));
        if data.raw("n").is_none() {
            data.problem("n", "missing: expected the rows per data set, a whole number or a list of them");
        }
        pending.ns = data.opt_counts("n", 1).unwrap_or_default();
        let recipe = resolve_recipe(data, k, truth.is_some());
        DataPlan::Synthetic { k, d, separation, truth_seed, truth, recipe }
    };
    data.finish();
    (plan, pending, test_fraction)
}

/// `data.recipe`, with `profile` and `experts_per_machine` where they apply (a problem where they do
/// not, or where a given `truth` would contradict the recipe's own gate).
fn resolve_recipe(data: &Section, k: usize, truth_given: bool) -> Recipe {
    let name = data.choice("recipe", &Recipe::NAMES).unwrap_or(Recipe::NAMES[0]);
    let by_profile = Recipe::takes_profile(name);
    let only = |key: &str, recipes: &str| {
        if data.raw(key).is_some() {
            data.problem(key, format!("applies only with recipe = {recipes}, not with recipe = \"{name}\""));
        }
    };
    let profile = if by_profile {
        let profile = data.choice("profile", &Profile::NAMES).and_then(Profile::named).unwrap_or_default();
        if profile.shares(k).is_err() {
            data.problem(
                "profile",
                format!(
                    "the \"{}\" profile's shares are defined for K = 5, and data.k is {k}: use \"balanced\" or k = 5",
                    profile.name()
                ),
            );
        }
        if truth_given {
            data.problem("truth", format!("the {name} recipe makes its own true gate (the posterior of z given x): drop `truth` or use recipe = \"benchmark\" or \"spread\""));
        }
        profile
    } else {
        only("profile", "\"profiles\" or \"heterogeneous\"");
        Profile::default()
    };
    let experts_per_machine = if name == "heterogeneous" {
        data.count_within("experts_per_machine", 1, k.max(1), k.div_ceil(2))
    } else {
        only("experts_per_machine", "\"heterogeneous\"");
        0
    };
    Recipe::named(name, profile, experts_per_machine).expect("one of Recipe::NAMES")
}

/// The fitted K (a list sweeps it): `model.k`, or the true K of synthetic data.
fn resolve_ks(model: &Section, data_k: Option<usize>) -> Vec<usize> {
    let ks = match model.raw("k") {
        Some(toml::Value::Array(_)) => {
            model.opt_counts("k", 1).and_then(|ks| match ks.iter().find(|&&k| k > MAX_COMPONENTS) {
                Some(k) => {
                    model.problem("k", format!("lists {k}; at most {MAX_COMPONENTS} components"));
                    None
                }
                None => Some(ks),
            })
        }
        _ => model.opt_count_within("k", 1, MAX_COMPONENTS).map(|k| vec![k]),
    };
    model.finish();
    match (ks, data_k) {
        (Some(ks), _) => ks,
        (None, Some(k)) => vec![k],
        (None, None) if model.raw("k").is_some() => vec![1],
        (None, None) => {
            model.problem("k", "missing: expected the number of components to fit (required for CSV data)");
            vec![1]
        }
    }
}

/// Every combination of the swept K, S and machine models, in that order of nesting.
fn settings(ks: &[usize], supports: &[usize], machines: &[MachineModel]) -> Vec<Setting> {
    let mut out = Vec::new();
    for &k in ks {
        for &support in supports {
            for m in machines {
                out.push(Setting { k, support, machines: m.clone() });
            }
        }
    }
    out
}

/// `cluster.shard_sizes`: `{ kind = "equal" }` or `{ kind = "lognormal", sigma }`.
fn resolve_shard_sizes(t: &Section) -> ShardSizes {
    let sizes = match t.kind(&["equal", "lognormal"]) {
        Some("lognormal") => ShardSizes::Lognormal { sigma: t.required_number("sigma", Range::SPREAD) },
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
    let networks: Vec<Network> = tables
        .iter()
        .map(|t| {
            let name = t.opt_text("name").map(String::from);
            let latency = resolve_latency(&t.table("latency"));
            let model = NetworkModel {
                bandwidth: t.opt_number("bandwidth", Range::BANDWIDTH),
                loss: t.number("loss", Range::ProbabilityBelowOne, 0.0),
                retransmit_after: t.number("retransmit_after", Range::SECONDS, 0.2),
                latency,
            };
            t.finish();
            Network { label: name.unwrap_or_else(|| model.latency.describe()), model }
        })
        .collect();
    for (i, n) in networks.iter().enumerate() {
        if networks[..i].iter().any(|o| o.label == n.label) {
            tables[i].problem(
                "name",
                format!("\"{}\" is the label of an earlier network: every network needs its own name", n.label),
            );
        }
    }
    networks
}

/// `[[protocol]]`: every protocol with its name (default: one-shot alone). Keys by kind:
/// `distributed-em` takes `max_rounds` (default 500), `refine` takes `rounds` (default 3), `fedavg`
/// takes `local_iterations` (default 5) and `rounds` (default 50).
fn resolve_protocols(root: &Section) -> Vec<Protocol> {
    let tables = root.tables("protocol");
    if tables.is_empty() {
        return vec![Protocol::default()];
    }
    let protocols: Vec<Protocol> = tables
        .iter()
        .map(|t| {
            let name = t.opt_text("name").map(String::from);
            if t.raw("kind").is_none() {
                let kinds: Vec<String> = ProtocolKind::NAMES.iter().map(|k| format!("\"{k}\"")).collect();
                t.problem("kind", format!("missing: expected one of {}", kinds.join(", ")));
            }
            let kind = match t.kind(&ProtocolKind::NAMES) {
                Some("distributed-em") => ProtocolKind::DistributedEm { max_rounds: t.count("max_rounds", 1, 500) },
                Some("refine") => ProtocolKind::Refine { rounds: t.count("rounds", 0, 3) },
                Some("fedavg") => ProtocolKind::FedAvg {
                    local_iterations: t.count("local_iterations", 1, 5),
                    rounds: t.count("rounds", 1, 50),
                },
                _ => ProtocolKind::OneShot,
            };
            t.finish();
            Protocol { name: name.unwrap_or_else(|| kind.name().into()), kind }
        })
        .collect();
    for (i, p) in protocols.iter().enumerate() {
        if protocols[..i].iter().any(|o| o.name == p.name) {
            tables[i].problem(
                "name",
                format!("\"{}\" is the name of an earlier protocol: every protocol needs its own name", p.name),
            );
        }
    }
    protocols
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
    let num = |key| t.required_number(key, Range::SECONDS);
    let pos = |key| t.required_number(key, Range::POSITIVE_SECONDS);
    let latency = match t.kind(&kinds) {
        None => Latency::Constant { seconds: 0.0 },
        Some("uniform") => {
            let (min, max) = (num("min"), num("max"));
            if min > max {
                t.problem("min", format!("expected at most `max` ({max}), got {min}"));
            }
            Latency::Uniform { min, max }
        }
        Some("exponential") => Latency::Exponential { mean: pos("mean") },
        Some("lognormal") => {
            Latency::Lognormal { median: pos("median"), sigma: t.required_number("sigma", Range::SPREAD) }
        }
        Some("normal") => Latency::Normal { mean: pos("mean"), sd: num("sd") },
        _ => Latency::Constant { seconds: num("seconds") },
    };
    t.finish();
    latency
}

/// `[machines]`: speeds and failures.
fn resolve_machines(t: &Section) -> Vec<MachineModel> {
    let s = t.table("speed");
    let speeds = match s.kind(&["equal", "stragglers", "lognormal"]) {
        Some("stragglers") => {
            let slowdown = s.required_number("slowdown", Range::SLOWDOWN);
            s.required_numbers("fraction", Range::Probability)
                .into_iter()
                .map(|fraction| Speed::Stragglers { fraction, slowdown })
                .collect()
        }
        Some("lognormal") => vec![Speed::Lognormal { sigma: s.required_number("sigma", Range::SPREAD) }],
        _ => vec![Speed::Equal],
    };
    s.finish();
    let failures = t.opt_numbers("failure_probability", Range::Probability).unwrap_or_else(|| vec![0.0]);
    if failures.contains(&1.0) {
        t.problem(
            "failure_probability",
            "1 means that every machine fails and no model is ever made: give a probability below 1",
        );
    }
    t.finish();
    let mut models = Vec::new();
    for speed in &speeds {
        for &failure_probability in &failures {
            models.push(MachineModel { speed: speed.clone(), failure_probability });
        }
    }
    models
}

/// `[em]`: the local and global fits' settings.
fn resolve_em(t: &Section, k: usize, seed: u64) -> EmSettings {
    let d = EmSettings::default();
    let em = EmSettings {
        k,
        restarts: t.count_within("restarts", 1, MAX_RESTARTS, d.restarts),
        warmup_iter: t.count_within("warmup_iter", 0, MAX_ITERATIONS, d.warmup_iter),
        max_iter: t.count_within("max_iter", 1, MAX_ITERATIONS, d.max_iter),
        tol: t.number("tol", Range::NonNegative, d.tol),
        seed,
        subset_rows: t.count("subset_rows", 0, d.subset_rows),
        accelerate: t.boolean("accelerate", d.accelerate),
        ..d
    };
    if let Err(e) = check_subset_rows(em.subset_rows) {
        t.problem("subset_rows", e.to_string());
    }
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
        max_iter: t.count_within("max_iter", 1, MAX_ITERATIONS, d.max_iter),
        tol: t.number("tol", Range::NonNegative, d.tol),
        seed,
        outliers,
        outlier_threshold: t.number("outlier_threshold", Range::Positive, d.outlier_threshold),
        ..d
    };
    t.finish();
    r
}

/// `[cost_model]`: the model clock's constants, each key given overriding `base` (this machine's
/// saved calibration or the built-in defaults), and where they came from in words.
fn resolve_cost_model(t: &Section, base: &Constants) -> (CostModel, String) {
    let keys = CostModel::NAMES;
    let given: Vec<Option<f64>> = keys.iter().map(|k| t.opt_number(k, Range::UNIT_COST)).collect();
    t.finish();
    let mut values = base.cost_model.values();
    for (v, g) in values.iter_mut().zip(&given) {
        *v = g.unwrap_or(*v);
    }
    let c = CostModel::from_values(values);
    let named: Vec<&str> = keys.iter().zip(&given).filter(|(_, g)| g.is_some()).map(|(k, _)| *k).collect();
    let source = match named.len() {
        0 => base.source.clone(),
        n if n == keys.len() => "the scenario's [cost_model]".to_string(),
        _ => format!("the scenario's [cost_model] for {}; the others: {}", named.join(", "), base.source),
    };
    (c, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan of a scenario text (synthetic data, so no file is read), or its problems as lines.
    fn plan(text: &str) -> Result<Plan, Vec<String>> {
        let source = Source::parse(Path::new("t.toml"), text, &[]).map_err(|e| vec![e.to_string()])?;
        plan_of(&source, &test_constants(), true).map_err(|e| e.problems.iter().map(|p| p.to_string()).collect())
    }

    /// Model-clock constants as a machine's saved calibration would give them.
    fn test_constants() -> Constants {
        Constants { cost_model: CostModel::from_values([1e-7, 1e-9, 1e-8, 1e-9]), source: "a test calibration".into() }
    }

    const DATA: &str = "[data]\nkind = \"synthetic\"\nk = 2\nd = 2\nn = 4000\n[cluster]\nmachines = [1, 4]\n";

    #[test]
    fn listed_settings_make_one_setting_per_combination_in_sweep_order() {
        let text = "[data]\nkind = \"synthetic\"\nk = 2\nd = 2\nn = 4000\n[model]\nk = [2, 3]\n[cluster]\nmachines = [1, 4]\nsupport = [500, 1000]\n[machines]\nspeed = { kind = \"stragglers\", fraction = [0, 0.25], slowdown = 4 }\nfailure_probability = [0, 0.5]\n";
        let p = plan(text).unwrap();
        assert_eq!(p.settings.len(), 16);
        let key = |s: &Setting| (s.k, s.support, s.straggler_fraction().unwrap(), s.machines.failure_probability);
        assert_eq!(key(&p.settings[0]), (2, 500, 0.0, 0.0));
        assert_eq!(key(&p.settings[1]), (2, 500, 0.0, 0.5));
        assert_eq!(key(&p.settings[2]), (2, 500, 0.25, 0.0));
        assert_eq!(key(&p.settings[4]), (2, 1000, 0.0, 0.0));
        assert_eq!(key(&p.settings[8]), (3, 500, 0.0, 0.0));
        // Cells: setting outside network outside M; the shards are checked for the largest K.
        assert_eq!(p.cells.len(), 32);
        assert_eq!((p.cells[1].setting, p.cells[1].machines, p.cells[2].setting), (0, 4, 1));
        assert_eq!(p.setting_label(&p.settings[3]), "K = 2, S = 500, stragglers 25%, failures 50%");
        assert_eq!(p.em_for(&p.settings[8]).k, 3);
        assert_eq!(p.reduction_for(&p.settings[8]).k, 3);
        assert_eq!(p.k_label(), "K = 2, 3");
    }

    #[test]
    fn a_listed_setting_out_of_range_or_twice_is_an_error() {
        let err = plan(&format!("{DATA}[model]\nk = [2, 2000]\n")).unwrap_err();
        assert_eq!(err, vec!["line 9: `model.k`: lists 2000; at most 1000 components"]);
        let err = plan(&format!("{DATA}[machines]\nfailure_probability = [0.1, 0.1]\n")).unwrap_err();
        assert_eq!(err, vec!["line 9: `machines.failure_probability`: lists 0.1 twice; give each value once"]);
        let err = plan(&format!("{DATA}[machines]\nfailure_probability = [0.1, 1.5]\n")).unwrap_err();
        assert!(err[0].contains("`machines.failure_probability`") && err[0].contains("1.5"), "{err:?}");
        let err = plan(&format!("{DATA}[machines]\nfailure_probability = [\"a\"]\n")).unwrap_err();
        assert!(err[0].contains("or a list of them"), "{err:?}");
        let err = plan(&format!("{DATA}[machines]\nfailure_probability = [0, 1]\n")).unwrap_err();
        assert!(err[0].contains("every machine fails and no model is ever made"), "{err:?}");
    }

    #[test]
    fn defaults_fill_every_section() {
        let p = plan(DATA).unwrap();
        assert_eq!((p.settings[0].k, p.d, p.seed, p.repetitions, p.settings[0].support), (2, 2, 1, 1, 2000));
        assert_eq!(p.em, EmSettings { k: 2, ..EmSettings::default() });
        assert_eq!(p.reduction, ReductionSettings { k: 2, ..ReductionSettings::default() });
        assert_eq!(p.clock, Clock::Measured);
        assert_eq!(p.estimators, Estimator::DEFAULT.to_vec());
        assert_eq!(p.networks.len(), 1);
        assert_eq!(p.cells.iter().map(|c| c.machines).collect::<Vec<_>>(), vec![1, 4]);
    }

    #[test]
    fn each_latency_kind_resolves_and_uniform_bounds_are_ordered() {
        let net = |lat: &str| plan(&format!("{DATA}[network]\nlatency = {lat}\n"));
        let model = |lat: &str| net(lat).unwrap().networks[0].model.latency.clone();
        assert_eq!(model("{ kind = \"exponential\", mean = 0.5 }"), Latency::Exponential { mean: 0.5 });
        assert_eq!(
            model("{ kind = \"lognormal\", median = 1, sigma = 0 }"),
            Latency::Lognormal { median: 1.0, sigma: 0.0 }
        );
        assert_eq!(model("{ kind = \"normal\", mean = 1, sd = 2 }"), Latency::Normal { mean: 1.0, sd: 2.0 });
        let err = net("{ kind = \"uniform\", min = 2, max = 1 }").unwrap_err();
        assert_eq!(err, vec!["line 9: `network.latency.min`: expected at most `max` (1), got 2"]);
    }

    #[test]
    fn a_wrong_kind_is_one_problem_and_a_wrong_choice_hides_no_other_key() {
        let err = plan(&format!("{DATA}[machines]\nspeed = {{ kind = \"fast\", sigma = 1 }}\n")).unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].contains("`machines.speed.kind`: expected one of \"equal\", \"stragglers\", \"lognormal\""));
        let err = plan(&format!("clock = \"modle\"\ncolour = \"blue\"\n{DATA}")).unwrap_err();
        assert_eq!(err.len(), 2, "{err:?}");
        assert!(err[0].starts_with("line 1: `clock`: expected one of \"measured\", \"model\""), "{err:?}");
        assert!(err[1].starts_with("line 2: `colour`: unknown key"), "{err:?}");
    }

    #[test]
    fn a_wrong_type_is_reported_once() {
        let err = plan(&format!("{DATA}[model]\nk = 2.5\n")).unwrap_err();
        assert_eq!(err, vec!["line 9: `model.k`: expected a whole number in [1, 1000], got 2.5 (a decimal number)"]);
    }

    #[test]
    fn stragglers_and_the_model_clock_reach_the_plan() {
        let text = format!(
            "clock = \"model\"\n{DATA}[machines]\nspeed = {{ kind = \"stragglers\", fraction = 0.25, slowdown = 4 }}\n[cost_model]\nmm_per_unit = 1e-9\n"
        );
        let p = plan(&text).unwrap();
        assert_eq!(p.settings[0].machines.speed, Speed::Stragglers { fraction: 0.25, slowdown: 4.0 });
        // The scenario's key wins; the others come from the machine's constants.
        assert_eq!(p.clock, Clock::Model(CostModel { mm_per_unit: 1e-9, ..test_constants().cost_model }));
        let source = p.cost_source.unwrap();
        assert_eq!(source, "the scenario's [cost_model] for mm_per_unit; the others: a test calibration");
    }
}
