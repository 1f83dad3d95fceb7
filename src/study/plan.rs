//! A checked scenario: only resolved, typed values and the list of cells, so the runner and the
//! report never go back to the file. Built by `resolve`; the field-by-field reference is
//! scenarios/README.md.

use std::ops::Range;
use std::path::PathBuf;

use crate::cluster::clock::Clock;
use crate::cluster::machines::MachineModel;
use crate::cluster::network::NetworkModel;
use crate::data::CsvFile;
use crate::data::sharding::{self, PartitionSpec, ShardSizes};
use crate::distributed::Baseline;
use crate::numeric::em::EmSettings;
use crate::numeric::rng;
use crate::reduce::ReductionSettings;
use rand::RngExt;

/// An estimator to run and report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimator {
    /// The paper's reduction (always run).
    Reduction,
    /// A baseline the server computes from the same reports.
    Baseline(Baseline),
    /// EM on all training rows (the reference for accuracy and speedup).
    Global,
}

impl Estimator {
    /// Every estimator, in the default report order.
    pub const ALL: [Estimator; 6] = [
        Estimator::Reduction,
        Estimator::Baseline(Baseline::Median),
        Estimator::Baseline(Baseline::AlignedAverage),
        Estimator::Baseline(Baseline::NaiveAverage),
        Estimator::Baseline(Baseline::Pooled),
        Estimator::Global,
    ];

    /// The name used in scenario files, results.csv and plots.
    pub fn name(self) -> &'static str {
        match self {
            Estimator::Reduction => "reduction",
            Estimator::Baseline(b) => b.name(),
            Estimator::Global => "global",
        }
    }

    /// The estimator called `name`.
    pub fn parse(name: &str) -> Option<Estimator> {
        Estimator::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// Where a study's data come from.
#[derive(Debug, Clone, PartialEq)]
pub enum DataPlan {
    /// Drawn from a true MoE: a random one (`truth_seed`, `separation`) or the model in `truth`.
    Synthetic { k: usize, d: usize, separation: f64, truth_seed: u64, truth: Option<PathBuf> },
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

/// One cell of the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Index, in sweep order.
    pub index: usize,
    /// Index into the `n` values (0 for CSV data).
    pub n_index: usize,
    /// Rows of the data set (train + test).
    pub n: usize,
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
    /// Fitted K.
    pub k: usize,
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
    /// Supporting-sample size S.
    pub support: usize,
    /// Seconds after which the server reduces with what has arrived.
    pub deadline: Option<f64>,
    /// The networks of the sweep.
    pub networks: Vec<Network>,
    /// Machine speeds and failures.
    pub machines: MachineModel,
    /// Local (and global) EM settings.
    pub em: EmSettings,
    /// The server's reduction settings.
    pub reduction: ReductionSettings,
    /// The cells, in sweep order (n, then network, then M).
    pub cells: Vec<Cell>,
}

impl Plan {
    /// Distinct data-set sizes, in sweep order.
    pub fn n_values(&self) -> Vec<usize> {
        let mut v: Vec<(usize, usize)> = self.cells.iter().map(|c| (c.n_index, c.n)).collect();
        v.dedup();
        v.into_iter().map(|(_, n)| n).collect()
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
