//! Splitting a data set for a distributed fit: a train/test split, then the training rows reordered so
//! that every machine's shard is one contiguous block, so a shard is a view into one shared array,
//! never a copy.

use std::ops::Range;
use std::sync::Arc;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, s};
use rand::seq::SliceRandom;

use crate::numeric::rng;

/// How training rows are divided among machines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Partition {
    /// Shuffled, then cut into M near-equal blocks.
    Random,
    /// In file order, cut into M near-equal blocks (what a cluster that already holds the data in
    /// files does).
    Contiguous,
    /// One machine per distinct value of a column (sorted), e.g. one per clarity grade.
    ByCategory(Vec<String>),
}

/// A partition as a setting (a flag or a scenario key): `random`, `contiguous` or a column name. The
/// column's values are read from the data when the shards are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionSpec {
    /// Shuffled, then cut into M blocks.
    Random,
    /// In file order, cut into M blocks.
    Contiguous,
    /// One machine per distinct value of this column.
    Column(String),
}

impl PartitionSpec {
    /// `random`, `contiguous`, or else a column name.
    pub fn parse(text: &str) -> PartitionSpec {
        match text {
            "random" => PartitionSpec::Random,
            "contiguous" => PartitionSpec::Contiguous,
            column => PartitionSpec::Column(column.to_string()),
        }
    }

    /// The name as written in flags, scenarios and messages.
    pub fn name(&self) -> &str {
        match self {
            PartitionSpec::Random => "random",
            PartitionSpec::Contiguous => "contiguous",
            PartitionSpec::Column(c) => c,
        }
    }
}

/// Rows held out for testing and rows used for training, both in increasing order. The test rows are
/// a uniformly random subset of `round(n * fraction)` rows, drawn from `seed`.
pub fn train_test_split(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let n_test = ((n as f64) * fraction).round() as usize;
    let mut rows: Vec<usize> = (0..n).collect();
    rows.shuffle(&mut rng::stream(seed, &[0x5e11]));
    let (mut test, mut train) = (rows[..n_test].to_vec(), rows[n_test..].to_vec());
    test.sort_unstable();
    train.sort_unstable();
    (train, test)
}

/// Shards of the training rows: returns the training rows reordered machine by machine and each
/// machine's block in that order. `categories` (one per training row) is used by `ByCategory`.
pub fn shard_rows(
    train: &[usize],
    partition: &Partition,
    machines: usize,
    seed: u64,
) -> (Vec<usize>, Vec<Range<usize>>) {
    match partition {
        Partition::Random | Partition::Contiguous => {
            let mut order = train.to_vec();
            if *partition == Partition::Random {
                order.shuffle(&mut rng::stream(seed, &[0x5a4d]));
            }
            (order, equal_blocks(train.len(), machines))
        }
        Partition::ByCategory(values) => {
            let mut levels: Vec<&String> = train.iter().map(|&r| &values[r]).collect();
            levels.sort();
            levels.dedup();
            let mut order = Vec::with_capacity(train.len());
            let mut bounds = Vec::with_capacity(levels.len());
            for level in levels {
                let start = order.len();
                order.extend(train.iter().copied().filter(|&r| &values[r] == level));
                bounds.push(start..order.len());
            }
            (order, bounds)
        }
    }
}

/// The experts whose rows machine `m` of `machines` holds in the heterogeneous recipe: `per_machine`
/// consecutive experts (mod K) from `floor(m K / machines)`, so the windows spread evenly over the K.
pub fn expert_window(m: usize, machines: usize, k: usize, per_machine: usize) -> Vec<usize> {
    let first = m * k / machines;
    (0..per_machine.min(k)).map(|j| (first + j) % k).collect()
}

/// For every expert, the machines whose [`expert_window`] holds it (in increasing order).
pub fn expert_holders(machines: usize, k: usize, per_machine: usize) -> Vec<Vec<usize>> {
    let mut holders: Vec<Vec<usize>> = vec![Vec::new(); k];
    for m in 0..machines {
        for c in expert_window(m, machines, k, per_machine) {
            holders[c].push(m);
        }
    }
    holders
}

/// The first expert that no machine's window holds, if any.
pub fn uncovered_expert(machines: usize, k: usize, per_machine: usize) -> Option<usize> {
    expert_holders(machines, k, per_machine).iter().position(Vec::is_empty)
}

/// Shards of the heterogeneous recipe: the rows of true component c (in order) are dealt in turn to
/// the machines whose [`expert_window`] holds c, so every machine holds rows of its window's experts
/// only and every row goes to one machine. Returns the row order (machine after machine) and each
/// machine's range in it. Every expert must be in some window (see [`uncovered_expert`]).
pub fn by_expert_windows(
    labels: &[usize],
    k: usize,
    machines: usize,
    per_machine: usize,
) -> (Vec<usize>, Vec<Range<usize>>) {
    let holders = expert_holders(machines, k, per_machine);
    assert!(holders.iter().all(|h| !h.is_empty()), "every expert is in some window");
    let mut turn = vec![0usize; k];
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); machines];
    for (r, &c) in labels.iter().enumerate() {
        rows[holders[c][turn[c] % holders[c].len()]].push(r);
        turn[c] += 1;
    }
    let mut order = Vec::with_capacity(labels.len());
    let shards = rows
        .into_iter()
        .map(|own| {
            let start = order.len();
            order.extend(own);
            start..order.len()
        })
        .collect();
    (order, shards)
}

/// How large the machines' shards are (random and contiguous partitions).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ShardSizes {
    /// As equal as possible.
    Equal,
    /// Proportional to `exp(sigma Z_m)`, Z_m standard normal: a few large sites and many small ones.
    Lognormal {
        /// Log-scale spread; 0 gives equal shards.
        sigma: f64,
    },
}

/// Consecutive blocks covering `0..n`, one per machine, sized by `sizes` (lognormal weights drawn
/// from `rng`, rounded by largest remainder so that they add up to n).
pub fn blocks(n: usize, machines: usize, sizes: &ShardSizes, rng: &mut crate::numeric::rng::Rng) -> Vec<Range<usize>> {
    let sigma = match sizes {
        ShardSizes::Equal => return equal_blocks(n, machines),
        ShardSizes::Lognormal { sigma } => *sigma,
    };
    let w: Vec<f64> = (0..machines)
        .map(|_| (sigma * rand::RngExt::sample::<f64, _>(rng, rand_distr::StandardNormal)).exp())
        .collect();
    let total: f64 = w.iter().sum();
    let ideal: Vec<f64> = w.iter().map(|v| n as f64 * v / total).collect();
    let mut size: Vec<usize> = ideal.iter().map(|v| v.floor() as usize).collect();
    let mut order: Vec<usize> = (0..machines).collect();
    order.sort_by(|&a, &b| (ideal[b] - ideal[b].floor()).total_cmp(&(ideal[a] - ideal[a].floor())));
    for &m in order.iter().take(n - size.iter().sum::<usize>()) {
        size[m] += 1;
    }
    let mut start = 0;
    size.iter()
        .map(|&len| {
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

/// `machines` consecutive blocks covering `0..n`, sizes differing by at most one (larger first).
pub fn equal_blocks(n: usize, machines: usize) -> Vec<Range<usize>> {
    let (base, extra) = (n / machines, n % machines);
    let mut start = 0;
    (0..machines)
        .map(|m| {
            let len = base + usize::from(m < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

/// Training data laid out shard after shard, with each shard's range. The arrays are shared
/// (`Arc`), so the same data can be cut into different numbers of shards at no cost.
#[derive(Debug, Clone)]
pub struct ShardedData {
    /// Covariates, rows grouped by shard.
    pub x: Arc<Array2<f64>>,
    /// Responses, same order.
    pub y: Arc<Array1<f64>>,
    /// True components, same order, when known.
    pub labels: Option<Arc<Vec<usize>>>,
    /// Row range of every shard.
    pub shards: Vec<Range<usize>>,
}

impl ShardedData {
    /// Takes owned data already laid out shard after shard (e.g. iid simulated rows, where consecutive
    /// blocks are a random partition): no copy at all.
    pub fn new(x: Array2<f64>, y: Array1<f64>, labels: Option<Vec<usize>>, shards: Vec<Range<usize>>) -> ShardedData {
        assert_eq!(x.nrows(), y.len(), "one response per row");
        assert!(shards.last().is_none_or(|r| r.end <= y.len()), "shards lie inside the data");
        ShardedData { x: Arc::new(x), y: Arc::new(y), labels: labels.map(Arc::new), shards }
    }

    /// The same data cut into other shards (no copy).
    pub fn with_shards(&self, shards: Vec<Range<usize>>) -> ShardedData {
        assert!(shards.last().is_none_or(|r| r.end <= self.y.len()), "shards lie inside the data");
        ShardedData { x: self.x.clone(), y: self.y.clone(), labels: self.labels.clone(), shards }
    }

    /// Gathers `order` (row indices into x, y, labels) once, keeping `shards` as ranges into it.
    pub fn gather(
        x: ArrayView2<f64>,
        y: ArrayView1<f64>,
        labels: Option<&[usize]>,
        order: &[usize],
        shards: Vec<Range<usize>>,
    ) -> ShardedData {
        ShardedData::new(
            x.select(Axis(0), order),
            y.select(Axis(0), order),
            labels.map(|l| order.iter().map(|&r| l[r]).collect()),
            shards,
        )
    }

    /// Machine `m`'s covariates (a view).
    pub fn shard_x(&self, m: usize) -> ArrayView2<'_, f64> {
        self.x.slice(s![self.shards[m].clone(), ..])
    }

    /// Machine `m`'s responses (a view).
    pub fn shard_y(&self, m: usize) -> ArrayView1<'_, f64> {
        self.y.slice(s![self.shards[m].clone()])
    }

    /// Number of training rows.
    pub fn n(&self) -> usize {
        self.y.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_every_row_once() {
        let b = equal_blocks(10, 3);
        assert_eq!(b, vec![0..4, 4..7, 7..10]);
        let (train, test) = train_test_split(100, 0.2, 1);
        assert_eq!((train.len(), test.len()), (80, 20));
        let (order, shards) = shard_rows(&train, &Partition::Random, 3, 1);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, train);
        assert_eq!(shards.last().unwrap().end, 80);
    }

    #[test]
    fn lognormal_blocks_cover_every_row_and_vary() {
        let mut rng = crate::numeric::rng::stream(4, &[]);
        let b = blocks(10_000, 16, &ShardSizes::Lognormal { sigma: 1.0 }, &mut rng);
        assert_eq!(b.len(), 16);
        assert_eq!(b.last().unwrap().end, 10_000);
        assert!(b.windows(2).all(|w| w[0].end == w[1].start));
        let (lo, hi) = (b.iter().map(|r| r.len()).min().unwrap(), b.iter().map(|r| r.len()).max().unwrap());
        assert!(hi > 2 * lo, "sigma = 1 gives clearly unequal shards: {lo}..{hi}");
    }

    #[test]
    fn category_shards_hold_one_level_each() {
        let values: Vec<String> = (0..12).map(|i| ["b", "a", "c"][i % 3].to_string()).collect();
        let train: Vec<usize> = (0..12).collect();
        let (order, shards) = shard_rows(&train, &Partition::ByCategory(values.clone()), 0, 0);
        assert_eq!(shards.len(), 3);
        for (level, r) in ["a", "b", "c"].iter().zip(&shards) {
            assert!(order[r.clone()].iter().all(|&i| values[i] == *level));
        }
    }

    #[test]
    fn heterogeneous_shards_hold_only_their_window_of_experts() {
        let mut rng = crate::numeric::rng::stream(3, &[]);
        let labels: Vec<usize> = (0..10_000).map(|_| rand::RngExt::random_range(&mut rng, 0..5)).collect();
        for machines in [2, 4, 5, 16] {
            let (order, shards) = by_expert_windows(&labels, 5, machines, 3);
            let mut seen = order.clone();
            seen.sort_unstable();
            assert_eq!(seen, (0..10_000).collect::<Vec<_>>(), "M = {machines}: every row once");
            for (m, range) in shards.iter().enumerate() {
                let window = expert_window(m, machines, 5, 3);
                assert_eq!(window.len(), 3);
                let held: std::collections::BTreeSet<usize> = order[range.clone()].iter().map(|&r| labels[r]).collect();
                assert!(
                    held.iter().all(|c| window.contains(c)),
                    "M = {machines}, machine {m}: {held:?} not in {window:?}"
                );
                assert_eq!(held.len(), 3, "M = {machines}, machine {m} holds rows of all 3 of its experts");
            }
        }
        assert_eq!(uncovered_expert(1, 5, 3), Some(3), "one machine with 3 experts leaves experts 4 and 5 out");
        assert_eq!(uncovered_expert(2, 5, 3), None);
    }
}
