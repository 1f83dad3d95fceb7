//! Scenario files: the TOML schema, its validation (every error names the file, the key and what was
//! expected) and its expansion into cells. The field-by-field reference is scenarios/README.md.
//!
//! List-valued sweep fields (`data.n`, `cluster.machines`, `network`) expand into cells, in the order
//! n, then network, then machines; every cell runs `repetitions` times.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::cluster::clock::{Clock, CostModel};
use crate::cluster::machines::{MachineModel, Speed};
use crate::cluster::network::{Latency, NetworkModel};
use crate::data::sharding::ShardSizes;
use crate::data::{ColumnExpr, CsvFile};
use crate::distributed::Baseline;
use crate::numeric::em::EmSettings;
use crate::numeric::model::n_free_params;
use crate::reduce::{OutlierPolicy, ReductionSettings};

/// One value or a list of values (a sweep field).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct List<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                Ok(List(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<List<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|x| List(vec![x]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<List<T>, E> {
                T::deserialize(v.into_deserializer()).map(|x| List(vec![x]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<List<T>, E> {
                T::deserialize(v.into_deserializer()).map(|x| List(vec![x]))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<List<T>, E> {
                T::deserialize(v.into_deserializer()).map(|x| List(vec![x]))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<List<T>, E> {
                T::deserialize(v.into_deserializer()).map(|x| List(vec![x]))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Which clock times the machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    /// Thread CPU time of the real work.
    #[default]
    Measured,
    /// The cost model of `[cost_model]`: reproducible bit for bit.
    Model,
}

/// An estimator to run and report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EstimatorName {
    /// The paper's reduction (always run).
    Reduction,
    /// The median local model.
    Median,
    /// The label-aligned average.
    AlignedAverage,
    /// The naive average.
    NaiveAverage,
    /// The pooled M*K mixture.
    Pooled,
    /// EM on all training rows (the reference for accuracy and speedup).
    Global,
}

impl EstimatorName {
    /// The baseline it names, if it is one the server computes.
    pub fn baseline(self) -> Option<Baseline> {
        match self {
            EstimatorName::Median => Some(Baseline::Median),
            EstimatorName::AlignedAverage => Some(Baseline::AlignedAverage),
            EstimatorName::NaiveAverage => Some(Baseline::NaiveAverage),
            EstimatorName::Pooled => Some(Baseline::Pooled),
            EstimatorName::Reduction | EstimatorName::Global => None,
        }
    }
}

fn default_estimators() -> Vec<EstimatorName> {
    use EstimatorName::*;
    vec![Reduction, Median, AlignedAverage, NaiveAverage, Pooled, Global]
}
fn one() -> u64 {
    1
}
fn one_usize() -> usize {
    1
}
fn default_test_fraction() -> f64 {
    0.2
}
fn default_separation() -> f64 {
    1.0
}
fn default_support() -> usize {
    2000
}
fn default_partition() -> String {
    "random".into()
}

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name of the output folder (default: the file name without `.toml`).
    #[serde(default)]
    pub name: Option<String>,
    /// What the scenario shows (free text).
    #[serde(default)]
    pub description: Option<String>,
    /// Seed of every random draw.
    #[serde(default = "one")]
    pub seed: u64,
    /// Repetitions of every cell (new data, starts and network draws each time).
    #[serde(default = "one_usize")]
    pub repetitions: usize,
    /// `measured` or `model`.
    #[serde(default)]
    pub clock: ClockKind,
    /// Worker threads per cluster run (default: the number of cores).
    #[serde(default)]
    pub threads: Option<usize>,
    /// Estimators to report; `reduction` is always run.
    #[serde(default = "default_estimators")]
    pub estimators: Vec<EstimatorName>,
    /// The data.
    pub data: DataSpec,
    /// The fitted model.
    #[serde(default)]
    pub model: ModelSpec,
    /// The cluster.
    pub cluster: ClusterSpec,
    /// One network, or a list of networks to sweep (`[[network]]`).
    #[serde(default = "default_networks")]
    pub network: List<NetworkSpec>,
    /// Machine speeds and failures.
    #[serde(default)]
    pub machines: MachinesSpec,
    /// Local EM settings.
    #[serde(default)]
    pub em: EmSpec,
    /// Reduction settings.
    #[serde(default)]
    pub reduction: ReductionSpec,
    /// Constants of the model clock.
    #[serde(default)]
    pub cost_model: CostModel,
}

fn default_networks() -> List<NetworkSpec> {
    List(vec![NetworkSpec::default()])
}

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DataSpec {
    /// Drawn from a true MoE (the authors' recipe).
    Synthetic {
        /// True components.
        k: usize,
        /// Covariates.
        d: usize,
        /// Rows per data set (train + test); a list sweeps.
        n: List<usize>,
        /// Expert separation (noise variance 3 / s^2).
        #[serde(default = "default_separation")]
        separation: f64,
        /// Seed of the random true model.
        #[serde(default = "one")]
        truth_seed: u64,
        /// A true model file (JSON, e.g. from `dmoe simulate --truth`) instead of a random one;
        /// relative to the scenario file.
        #[serde(default)]
        truth: Option<PathBuf>,
        /// Share of rows held out for testing, in (0, 1).
        #[serde(default = "default_test_fraction")]
        test_fraction: f64,
    },
    /// A CSV file.
    Csv {
        /// The file, relative to the scenario file.
        path: PathBuf,
        /// Response column (`log(col)` allowed).
        target: String,
        /// Feature columns (default: every numeric column but the target and `z`).
        #[serde(default)]
        features: Option<Vec<String>>,
        /// Share of rows held out for testing, in (0, 1).
        #[serde(default = "default_test_fraction")]
        test_fraction: f64,
    },
}

/// The fitted model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Components to fit (default: the true K of synthetic data; required for CSV data).
    #[serde(default)]
    pub k: Option<usize>,
}

/// The cluster's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Machine counts M; a list sweeps. With a column partition, leave it out (one machine per value).
    #[serde(default)]
    pub machines: Option<List<usize>>,
    /// Supporting-sample size S.
    #[serde(default = "default_support")]
    pub support: usize,
    /// `random`, `contiguous`, or a column of the CSV file (one machine per distinct value).
    #[serde(default = "default_partition")]
    pub partition: String,
    /// Seconds after which the server reduces with what has arrived.
    #[serde(default)]
    pub deadline: Option<f64>,
    /// Shard sizes under a random or contiguous partition.
    #[serde(default = "equal_shards")]
    pub shard_sizes: ShardSizes,
}

fn equal_shards() -> ShardSizes {
    ShardSizes::Equal
}

/// One network model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Label in results and plots (default: the latency model).
    #[serde(default)]
    pub name: Option<String>,
    /// Latency distribution.
    #[serde(default = "zero_latency")]
    pub latency: Latency,
    /// Bytes per second (default: unlimited).
    #[serde(default)]
    pub bandwidth: Option<f64>,
    /// Probability that an attempt is lost.
    #[serde(default)]
    pub loss: f64,
    /// Retransmission timeout, seconds.
    #[serde(default = "default_rto")]
    pub retransmit_after: f64,
}

fn zero_latency() -> Latency {
    Latency::Constant { seconds: 0.0 }
}
fn default_rto() -> f64 {
    0.2
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec { name: None, latency: zero_latency(), bandwidth: None, loss: 0.0, retransmit_after: default_rto() }
    }
}

impl NetworkSpec {
    /// The label used in results.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.latency.describe())
    }

    /// The simulator's network model.
    pub fn model(&self) -> NetworkModel {
        NetworkModel {
            latency: self.latency.clone(),
            bandwidth: self.bandwidth,
            loss: self.loss,
            retransmit_after: self.retransmit_after,
        }
    }
}

/// Machine speeds and failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachinesSpec {
    /// Speed distribution.
    #[serde(default = "equal_speed")]
    pub speed: Speed,
    /// Probability that a machine fails.
    #[serde(default)]
    pub failure_probability: f64,
}

fn equal_speed() -> Speed {
    Speed::Equal
}

impl Default for MachinesSpec {
    fn default() -> Self {
        MachinesSpec { speed: Speed::Equal, failure_probability: 0.0 }
    }
}

/// Local EM settings (defaults: those of `dmoe fit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmSpec {
    /// Starts per fit.
    pub restarts: usize,
    /// Warm-up iterations per start.
    pub warmup_iter: usize,
    /// Maximum iterations.
    pub max_iter: usize,
    /// Relative log-likelihood tolerance.
    pub tol: f64,
}

impl Default for EmSpec {
    fn default() -> Self {
        let e = EmSettings::default();
        EmSpec { restarts: e.restarts, warmup_iter: e.warmup_iter, max_iter: e.max_iter, tol: e.tol }
    }
}

/// Reduction settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReductionSpec {
    /// Maximum MM iterations per start.
    pub max_iter: usize,
    /// Relative objective tolerance.
    pub tol: f64,
    /// What to do with outlying local models: `keep` (the paper), `flag`, or `drop`.
    pub outliers: OutlierPolicy,
    /// Robust z above which a machine is flagged.
    pub outlier_threshold: f64,
}

impl Default for ReductionSpec {
    fn default() -> Self {
        let r = ReductionSettings::default();
        ReductionSpec { max_iter: r.max_iter, tol: r.tol, outliers: r.outliers, outlier_threshold: r.outlier_threshold }
    }
}

/// A scenario error: one message naming the file, the key and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ScenarioError {
    /// The scenario file.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

/// One cell of the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Index, in sweep order.
    pub index: usize,
    /// Index into `data.n` (0 for CSV data).
    pub n_index: usize,
    /// Rows of the data set (train + test).
    pub n: usize,
    /// Index into the networks.
    pub network: usize,
    /// Machines M.
    pub machines: usize,
}

/// A validated scenario, ready to run.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The scenario as written (plus overrides).
    pub scenario: Scenario,
    /// The file it came from.
    pub file: PathBuf,
    /// Output folder name.
    pub name: String,
    /// Fitted K.
    pub k: usize,
    /// Features d.
    pub d: usize,
    /// Resolved data file (CSV data).
    pub data_path: Option<PathBuf>,
    /// Resolved truth file (synthetic data with explicit parameters).
    pub truth_path: Option<PathBuf>,
    /// Feature labels.
    pub features: Vec<String>,
    /// Target label.
    pub target: String,
    /// The cells, in sweep order.
    pub cells: Vec<Cell>,
    /// Distinct values of the partition column (column partitions), giving M.
    pub categories: Option<usize>,
}

/// Reads a scenario file and applies `key=value` overrides (TOML values, e.g. `data.n=[2000]`).
pub fn load(path: &Path, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let err = |message: String| ScenarioError { file: file.clone(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read the scenario: {e}")))?;
    let mut doc: toml::Table =
        toml::from_str(&text).map_err(|e| err(format!("not valid TOML: {}", one_line(&e.to_string()))))?;
    for o in overrides {
        apply_override(&mut doc, o).map_err(|m| err(format!("--set {o}: {m}")))?;
    }
    Scenario::deserialize(toml::Value::Table(doc)).map_err(|e| err(one_line(&e.to_string())))
}

/// Folds a multi-line parser message into one line.
fn one_line(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('|')).collect::<Vec<_>>().join(": ")
}

fn apply_override(doc: &mut toml::Table, o: &str) -> Result<(), String> {
    let (key, value) = o.split_once('=').ok_or("expected KEY=VALUE, e.g. data.n=[2000]")?;
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .map_err(|_| format!("`{value}` is not a TOML value (quote strings: key=\"text\")"))?
        .remove("v")
        .expect("parsed above");
    let parts: Vec<&str> = key.trim().split('.').collect();
    let mut table = doc;
    for p in &parts[..parts.len() - 1] {
        table = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` is not a table"))?;
    }
    table.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// Validates a scenario read from `file`: ranges, files and columns, shard sizes. Writes nothing.
pub fn check(scenario: Scenario, file: &Path) -> Result<Checked, ScenarioError> {
    let fname = file.display().to_string();
    let err =
        |key: &str, expected: String| ScenarioError { file: fname.clone(), message: format!("`{key}`: {expected}") };
    let dir = file.parent().unwrap_or(Path::new("."));
    let s = &scenario;
    let name = match &s.name {
        Some(n) if n.is_empty() || n.contains(['/', '\\']) || n.starts_with('.') => {
            return Err(err("name", format!("expected a folder name without `/` or a leading dot, got \"{n}\"")));
        }
        Some(n) => n.clone(),
        None => file.file_stem().and_then(|x| x.to_str()).unwrap_or("scenario").to_string(),
    };
    if s.repetitions == 0 {
        return Err(err("repetitions", "expected at least 1, got 0".into()));
    }
    if s.threads == Some(0) {
        return Err(err("threads", "expected at least 1 worker thread, got 0".into()));
    }
    if !s.estimators.contains(&EstimatorName::Reduction) {
        return Err(err(
            "estimators",
            "expected a list that includes \"reduction\" (the estimator under study)".into(),
        ));
    }
    let fraction_ok = |f: f64| f > 0.0 && f < 1.0;
    let (d, true_k, features, target, data_path, truth_path, ns, csv) = match &s.data {
        DataSpec::Synthetic { k, d, n, separation, truth, test_fraction, .. } => {
            if *k == 0 {
                return Err(err("data.k", "expected at least 1 component, got 0".into()));
            }
            if *d == 0 {
                return Err(err("data.d", "expected at least 1 covariate, got 0".into()));
            }
            if n.0.is_empty() || n.0.contains(&0) {
                return Err(err("data.n", format!("expected row counts >= 1, got {:?}", n.0)));
            }
            if !(separation.is_finite() && *separation > 0.0) {
                return Err(err("data.separation", format!("expected a number > 0, got {separation}")));
            }
            if !fraction_ok(*test_fraction) {
                return Err(err("data.test_fraction", format!("expected a number in (0, 1), got {test_fraction}")));
            }
            let truth_path = truth.as_ref().map(|t| dir.join(t));
            if let Some(tp) = &truth_path {
                let t = crate::numeric::model::Moe::load(tp).map_err(|e| err("data.truth", e.to_string()))?;
                if t.k() != *k || t.d() != *d {
                    return Err(err(
                        "data.truth",
                        format!("the model has K = {}, d = {}; expected K = {k}, d = {d}", t.k(), t.d()),
                    ));
                }
            }
            let features = (1..=*d).map(|j| format!("x{j}")).collect();
            (*d, Some(*k), features, "y".to_string(), None, truth_path, n.0.clone(), None)
        }
        DataSpec::Csv { path, target, features, test_fraction } => {
            if !fraction_ok(*test_fraction) {
                return Err(err("data.test_fraction", format!("expected a number in (0, 1), got {test_fraction}")));
            }
            let p = dir.join(path);
            let csv = CsvFile::open(&p).map_err(|e| err("data.path", e.to_string()))?;
            let t = ColumnExpr::parse(target);
            if !csv.has_column(&t.column) {
                return Err(err(
                    "data.target",
                    format!("no column `{}` in {} (columns: {})", t.column, p.display(), csv.header().join(", ")),
                ));
            }
            let feats: Vec<ColumnExpr> = match features {
                Some(f) => f.iter().map(|c| ColumnExpr::parse(c)).collect(),
                None => csv.default_features(&t),
            };
            if let Some(c) = feats.iter().find(|c| !csv.has_column(&c.column)) {
                return Err(err(
                    "data.features",
                    format!("no column `{}` in {} (columns: {})", c.column, p.display(), csv.header().join(", ")),
                ));
            }
            if feats.is_empty() {
                return Err(err("data.features", "expected at least one feature column".into()));
            }
            let n = csv.count_rows().map_err(|e| err("data.path", e.to_string()))?;
            (
                feats.len(),
                None,
                feats.into_iter().map(|c| c.label).collect(),
                t.label,
                Some(p),
                None,
                vec![n],
                Some(csv),
            )
        }
    };
    let k = match (s.model.k, true_k) {
        (Some(0), _) => return Err(err("model.k", "expected at least 1 component, got 0".into())),
        (Some(k), _) => k,
        (None, Some(k)) => k,
        (None, None) => {
            return Err(err("model.k", "expected the number of components to fit (required for CSV data)".into()));
        }
    };
    let c = &s.cluster;
    if c.support == 0 {
        return Err(err("cluster.support", "expected at least 1 supporting point, got 0".into()));
    }
    if let Some(dl) = c.deadline
        && !(dl.is_finite() && dl > 0.0)
    {
        return Err(err("cluster.deadline", format!("expected a number of seconds > 0, got {dl}")));
    }
    let categories = match c.partition.as_str() {
        "random" | "contiguous" => None,
        column => {
            let Some(csv) = &csv else {
                return Err(err(
                    "cluster.partition",
                    format!("expected \"random\" or \"contiguous\" for synthetic data, got \"{column}\""),
                ));
            };
            if !csv.has_column(column) {
                return Err(err(
                    "cluster.partition",
                    format!(
                        "expected \"random\", \"contiguous\" or a column of the data; no column `{column}` (columns: {})",
                        csv.header().join(", ")
                    ),
                ));
            }
            if c.machines.is_some() {
                return Err(err(
                    "cluster.machines",
                    format!("leave it out with partition = \"{column}\": there is one machine per distinct value"),
                ));
            }
            let values = csv.read_text(column).map_err(|e| err("cluster.partition", e.to_string()))?;
            let mut distinct: Vec<&String> = values.iter().collect();
            distinct.sort();
            distinct.dedup();
            Some(distinct.len())
        }
    };
    let machines: Vec<usize> = match (&c.machines, categories) {
        (_, Some(m)) => vec![m],
        (Some(l), None) => l.0.clone(),
        (None, None) => {
            return Err(err(
                "cluster.machines",
                "expected a machine count or a list of them, e.g. [1, 2, 4, 8]".into(),
            ));
        }
    };
    if machines.is_empty() || machines.contains(&0) {
        return Err(err("cluster.machines", format!("expected machine counts >= 1, got {machines:?}")));
    }
    if let ShardSizes::Lognormal { sigma } = c.shard_sizes
        && !(sigma.is_finite() && sigma >= 0.0)
    {
        return Err(err("cluster.shard_sizes", format!("`sigma` must be a number >= 0, got {sigma}")));
    }
    let need = n_free_params(k, d);
    for (n_index, &n) in ns.iter().enumerate() {
        let n_test = ((n as f64) * test_fraction(&s.data)).round() as usize;
        if n_test == 0 || n_test >= n {
            return Err(err(
                "data.test_fraction",
                format!(
                    "with n = {n} it leaves {n_test} test rows and {} training rows; both must be at least 1",
                    n - n_test.min(n)
                ),
            ));
        }
        let train = n - n_test;
        if let Some(levels) = categories
            && train < need * levels
        {
            return Err(err(
                "cluster.partition",
                format!(
                    "{train} training rows over {levels} machines cannot give each the {need} rows that K = {k} on d = {d} features needs"
                ),
            ));
        }
        for &m in &machines {
            if categories.is_some() {
                continue;
            }
            if m > train / need {
                return Err(err(
                    "cluster.machines",
                    format!(
                        "M = {m} is more machines than the {train} training rows (n = {n}) can give {need} rows each (K = {k} on d = {d} features): at most {}",
                        train / need
                    ),
                ));
            }
            for rep in 0..s.repetitions {
                let smallest = shard_blocks(s, train, m, n_index, rep).iter().map(|r| r.len()).min().unwrap_or(0);
                if smallest < need {
                    return Err(err(
                        "cluster.machines",
                        format!(
                            "M = {m} leaves {smallest} training rows on the smallest machine (n = {n}, repetition {rep}), but K = {k} on d = {d} features needs at least {need}: use fewer machines, a smaller K or more rows"
                        ),
                    ));
                }
            }
        }
    }
    if s.network.0.is_empty() {
        return Err(err("network", "expected at least one network".into()));
    }
    for (i, net) in s.network.0.iter().enumerate() {
        let key = if s.network.0.len() > 1 { format!("network[{i}]") } else { "network".into() };
        net.model().validate().map_err(|m| err(&key, m))?;
    }
    MachineModel { speed: s.machines.speed.clone(), failure_probability: s.machines.failure_probability }
        .validate()
        .map_err(|m| err("machines", m))?;
    em_settings(s, k).validate().map_err(|e| err("em", e.to_string()))?;
    if s.reduction.max_iter == 0 || !(s.reduction.tol.is_finite() && s.reduction.tol >= 0.0) {
        return Err(err(
            "reduction",
            format!("expected max_iter >= 1 and tol >= 0, got {} and {}", s.reduction.max_iter, s.reduction.tol),
        ));
    }
    if !(s.reduction.outlier_threshold.is_finite() && s.reduction.outlier_threshold > 0.0) {
        return Err(err(
            "reduction.outlier_threshold",
            format!("expected a number > 0, got {}", s.reduction.outlier_threshold),
        ));
    }
    s.cost_model.validate().map_err(|m| err("cost_model", m))?;
    let mut cells = Vec::new();
    for (n_index, &n) in ns.iter().enumerate() {
        for network in 0..s.network.0.len() {
            for &m in &machines {
                cells.push(Cell { index: cells.len(), n_index, n, network, machines: m });
            }
        }
    }
    Ok(Checked {
        name,
        k,
        d,
        data_path,
        truth_path,
        features,
        target,
        cells,
        categories,
        file: file.to_path_buf(),
        scenario,
    })
}

fn test_fraction(d: &DataSpec) -> f64 {
    match d {
        DataSpec::Synthetic { test_fraction, .. } | DataSpec::Csv { test_fraction, .. } => *test_fraction,
    }
}

/// The shard ranges of `machines` machines over `n_train` training rows (random or contiguous
/// partitions), drawn from the stream (seed, repetition, n index, M) so that `check` and `run` agree.
pub fn shard_blocks(
    s: &Scenario,
    n_train: usize,
    machines: usize,
    n_index: usize,
    rep: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut rng = crate::numeric::rng::stream(s.seed, &[rep as u64, n_index as u64, machines as u64, 14]);
    crate::data::sharding::blocks(n_train, machines, &s.cluster.shard_sizes, &mut rng)
}

/// The EM settings of a scenario for K components.
pub fn em_settings(s: &Scenario, k: usize) -> EmSettings {
    EmSettings {
        k,
        restarts: s.em.restarts,
        warmup_iter: s.em.warmup_iter,
        max_iter: s.em.max_iter,
        tol: s.em.tol,
        seed: s.seed,
        ..EmSettings::default()
    }
}

/// The reduction settings of a scenario for K components.
pub fn reduction_settings(s: &Scenario, k: usize) -> ReductionSettings {
    ReductionSettings {
        k,
        max_iter: s.reduction.max_iter,
        tol: s.reduction.tol,
        seed: s.seed,
        outliers: s.reduction.outliers,
        outlier_threshold: s.reduction.outlier_threshold,
        ..ReductionSettings::default()
    }
}

/// The clock of a scenario (or of the `--clock` override).
pub fn clock(s: &Scenario) -> Clock {
    match s.clock {
        ClockKind::Measured => Clock::Measured,
        ClockKind::Model => Clock::Model(s.cost_model.clone()),
    }
}

impl Checked {
    /// Test fraction of the data.
    pub fn test_fraction(&self) -> f64 {
        test_fraction(&self.scenario.data)
    }
}
