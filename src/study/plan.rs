//! A checked scenario: only resolved, typed values and the list of cells, so the runner and the
//! report never go back to the file. Built by `resolve`; the field-by-field reference is
//! scenarios/README.md.

use std::ops::Range;
use std::path::PathBuf;

use crate::cluster::clock::Clock;
use crate::cluster::machines::{MachineModel, Speed};
use crate::cluster::network::NetworkModel;
use crate::cluster::protocol::Protocol;
use crate::data::CsvFile;
use crate::data::sharding::{self, PartitionSpec, ShardSizes};
use crate::data::synthetic::Recipe;
use crate::distributed::Baseline;
use crate::numeric::em::EmSettings;
use crate::numeric::rng;
use crate::reduce::ReductionSettings;
use rand::RngExt;

/// A probability as a percentage in its shortest form: `25%`, `12.5%`.
fn percent(p: f64) -> String {
    format!("{}%", (p * 1e6).round() / 1e4)
}

/// An estimator to run and report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimator {
    /// The paper's reduction (always run).
    Reduction,
    /// A baseline the server computes from the same reports.
    Baseline(Baseline),
    /// EM on all training rows (the reference for accuracy and speedup).
    Global,
    /// The true model itself (synthetic data): what the recipe lets any estimator reach, e.g. the
    /// RPE that the noise and the gate's overlap leave.
    Truth,
}

impl Estimator {
    /// The estimators reported when a scenario does not list them, in report order.
    pub const DEFAULT: [Estimator; 6] = [
        Estimator::Reduction,
        Estimator::Baseline(Baseline::Median),
        Estimator::Baseline(Baseline::AlignedAverage),
        Estimator::Baseline(Baseline::NaiveAverage),
        Estimator::Baseline(Baseline::Pooled),
        Estimator::Global,
    ];

    /// Every estimator: the default ones, then the true model.
    pub fn all() -> impl Iterator<Item = Estimator> {
        Estimator::DEFAULT.into_iter().chain([Estimator::Truth])
    }

    /// The name used in scenario files, results.csv and plots.
    pub fn name(self) -> &'static str {
        match self {
            Estimator::Reduction => "reduction",
            Estimator::Baseline(b) => b.name(),
            Estimator::Global => "global",
            Estimator::Truth => "truth",
        }
    }

    /// The estimator called `name`.
    pub fn parse(name: &str) -> Option<Estimator> {
        Estimator::all().find(|e| e.name() == name)
    }
}

/// Where a study's data come from.
#[derive(Debug, Clone, PartialEq)]
pub enum DataPlan {
    /// Drawn from a true MoE by `recipe`: a random one (`truth_seed`, `separation`) or the model in
    /// `truth`.
    Synthetic { k: usize, d: usize, separation: f64, truth_seed: u64, truth: Option<PathBuf>, recipe: Recipe },
    /// A CSV file (the path resolved against the scenario's folder) and, once `check` has read it,
    /// its content: `run` uses the same bytes, so a pipe works and the file cannot change between.
    Csv { path: PathBuf, file: Option<CsvFile> },
}

/// One network of the sweep, with its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Label in results and plots.
    pub label: String,
    /// The simulator's model.
    pub model: NetworkModel,
}

/// What a sweep may vary besides n, the network and M: the fitted K (`model.k`), the
/// supporting-sample size S (`cluster.support`) and the machines (`machines.speed.fraction` of
/// stragglers, `machines.failure_probability`). A plan has one per combination of the swept values.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// Fitted K.
    pub k: usize,
    /// Supporting-sample size S.
    pub support: usize,
    /// Machine speeds and failures.
    pub machines: MachineModel,
}

impl Setting {
    /// The straggler fraction, when the speeds are stragglers.
    pub fn straggler_fraction(&self) -> Option<f64> {
        match self.machines.speed {
            Speed::Stragglers { fraction, .. } => Some(fraction),
            _ => None,
        }
    }
}

/// Which of a plan's setting keys take more than one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Swept {
    pub k: bool,
    pub support: bool,
    pub straggler_fraction: bool,
    pub failure_probability: bool,
}

impl Swept {
    /// Whether any setting key is swept.
    pub fn any(self) -> bool {
        self.k || self.support || self.straggler_fraction || self.failure_probability
    }
}

/// One cell of the sweep.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cell {
    /// Index, in sweep order.
    pub index: usize,
    /// Index into the `n` values (0 for CSV data).
    pub n_index: usize,
    /// Rows of the data set (train + test).
    pub n: usize,
    /// Index into the settings.
    pub setting: usize,
    /// Index into the protocols.
    #[serde(default)]
    pub protocol: usize,
    /// Index into the networks.
    pub network: usize,
    /// Machines M.
    pub machines: usize,
}

/// A checked scenario, ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The scenario file.
    pub file: PathBuf,
    /// The document as run (overrides applied), echoed in run.json.
    pub document: toml::Table,
    /// The scenario file's text as read (comments included; overrides not applied), kept in
    /// run.json so that `dmoe report` can show it and read the plan again.
    pub text: String,
    /// Output folder name.
    pub name: String,
    /// Seed of every random draw.
    pub seed: u64,
    /// Runs of every cell.
    pub repetitions: usize,
    /// How machine compute time is taken.
    pub clock: Clock,
    /// Where the model clock's constants came from, in words (`None` with the measured clock).
    pub cost_source: Option<String>,
    /// Worker threads per cluster run (default: cores / jobs).
    pub threads: Option<usize>,
    /// Estimators to report, in order; the reduction is among them.
    pub estimators: Vec<Estimator>,
    /// The data.
    pub data: DataPlan,
    /// Share of rows held out for testing.
    pub test_fraction: f64,
    /// Features d.
    pub d: usize,
    /// Feature labels.
    pub features: Vec<String>,
    /// Target label.
    pub target: String,
    /// How the training rows are divided among machines.
    pub partition: PartitionSpec,
    /// Shard sizes under a random or contiguous partition.
    pub shard_sizes: ShardSizes,
    /// Seconds after which the server reduces with what has arrived.
    pub deadline: Option<f64>,
    /// The networks of the sweep.
    pub networks: Vec<Network>,
    /// The protocols of the sweep (default: one-shot alone).
    pub protocols: Vec<Protocol>,
    /// The swept combinations of K, S and the machine model, in sweep order (K, then S, then the
    /// straggler fraction, then the failure probability).
    pub settings: Vec<Setting>,
    /// Local (and global) EM settings; `k` is each setting's.
    pub em: EmSettings,
    /// The server's reduction settings; `k` is each setting's.
    pub reduction: ReductionSettings,
    /// The cells, in sweep order (n, then setting, then protocol, then network, then M).
    pub cells: Vec<Cell>,
}

impl Plan {
    /// Distinct data-set sizes, in sweep order.
    pub fn n_values(&self) -> Vec<usize> {
        let mut v: Vec<(usize, usize)> = self.cells.iter().map(|c| (c.n_index, c.n)).collect();
        v.dedup();
        v.into_iter().map(|(_, n)| n).collect()
    }

    /// The setting of `cell`.
    pub fn setting(&self, cell: &Cell) -> &Setting {
        &self.settings[cell.setting]
    }

    /// The EM settings of the fits under `s`.
    pub fn em_for(&self, s: &Setting) -> EmSettings {
        EmSettings { k: s.k, ..self.em.clone() }
    }

    /// The reduction settings under `s`.
    pub fn reduction_for(&self, s: &Setting) -> ReductionSettings {
        ReductionSettings { k: s.k, ..self.reduction.clone() }
    }

    /// The distinct fitted K, in sweep order.
    pub fn k_values(&self) -> Vec<usize> {
        let mut ks: Vec<usize> = Vec::new();
        for s in &self.settings {
            if !ks.contains(&s.k) {
                ks.push(s.k);
            }
        }
        ks
    }

    /// `K = 3`, or `K = 2, 3, 4` when K is swept.
    pub fn k_label(&self) -> String {
        let ks: Vec<String> = self.k_values().iter().map(|k| k.to_string()).collect();
        format!("K = {}", ks.join(", "))
    }

    /// Which setting keys the plan sweeps.
    pub fn swept(&self) -> Swept {
        let varies = |f: &dyn Fn(&Setting) -> Option<f64>| self.settings.iter().any(|s| f(s) != f(&self.settings[0]));
        Swept {
            k: varies(&|s| Some(s.k as f64)),
            support: varies(&|s| Some(s.support as f64)),
            straggler_fraction: varies(&|s| s.straggler_fraction()),
            failure_probability: varies(&|s| Some(s.machines.failure_probability)),
        }
    }

    /// The swept keys' values of setting `s` in words (`K = 3, S = 500, stragglers 25%`), empty
    /// when nothing is swept.
    pub fn setting_label(&self, s: &Setting) -> String {
        self.settings_label(&[s])
    }

    /// The swept keys' values of several settings, each key with its distinct values in order
    /// (`K = 3, stragglers 0%, 25%`).
    pub fn settings_label(&self, settings: &[&Setting]) -> String {
        let swept = self.swept();
        let mut parts = Vec::new();
        let mut add = |on: bool, prefix: &str, values: Vec<String>| {
            let mut distinct: Vec<String> = Vec::new();
            for v in values {
                if !distinct.contains(&v) {
                    distinct.push(v);
                }
            }
            if on && !distinct.is_empty() {
                parts.push(format!("{prefix}{}", distinct.join(", ")));
            }
        };
        add(swept.k, "K = ", settings.iter().map(|s| s.k.to_string()).collect());
        add(swept.support, "S = ", settings.iter().map(|s| s.support.to_string()).collect());
        add(
            swept.straggler_fraction,
            "stragglers ",
            settings.iter().filter_map(|s| s.straggler_fraction()).map(percent).collect(),
        );
        add(
            swept.failure_probability,
            "failures ",
            settings.iter().map(|s| percent(s.machines.failure_probability)).collect(),
        );
        parts.join(", ")
    }

    /// Whether `e` is reported.
    pub fn reports(&self, e: Estimator) -> bool {
        self.estimators.contains(&e)
    }

    /// Baselines the server computes.
    pub fn baselines(&self) -> Vec<Baseline> {
        self.estimators.iter().filter_map(|e| if let Estimator::Baseline(b) = e { Some(*b) } else { None }).collect()
    }

    /// Test rows of a data set of `n` rows: `round(n * test_fraction)`.
    pub fn n_test(&self, n: usize) -> usize {
        ((n as f64) * self.test_fraction).round() as usize
    }

    /// Seed of repetition `rep`'s train/test split and shuffle of CSV rows.
    pub fn split_seed(&self, rep: usize) -> u64 {
        rng::stream(self.seed, &[rep as u64, 20]).random()
    }

    /// The shard ranges of `machines` machines over `n_train` training rows (random or contiguous
    /// partitions), drawn from the stream (seed, repetition, n index, M) so that `check` and `run`
    /// agree.
    pub fn shard_blocks(&self, n_train: usize, machines: usize, n_index: usize, rep: usize) -> Vec<Range<usize>> {
        let mut rng = rng::stream(self.seed, &[rep as u64, n_index as u64, machines as u64, 14]);
        sharding::blocks(n_train, machines, &self.shard_sizes, &mut rng)
    }
}
