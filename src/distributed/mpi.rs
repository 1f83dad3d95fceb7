//! `dmoe fit --backend mpi`: the distributed fit on a real cluster, one MPI rank per machine.
//!
//! Every rank computes the same shards as `dmoe fit --machines M` in process (the same train/test
//! split and partition, from the seed) and reads only its own rows; or, with `--data 'part-{rank}.csv'`,
//! its own file. It runs `distributed::local_fit` and sends its report to rank 0 in one
//! variable-size gather (JSON, which round-trips every f64 exactly); rank 0 runs
//! `distributed::aggregate`. Same code, same inputs: the reduced model equals the in-process one.
//! A rank that fails still takes part in the gather with its error, so the job ends with every
//! rank's message on rank 0 and a non-zero exit code, never a hang.

use std::path::PathBuf;
use std::time::Instant;

use mpi::datatype::PartitionMut;
use mpi::topology::{Process, SimpleCommunicator};
use mpi::traits::*;
use ndarray::Axis;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::data::sharding::{self, Partition};
use crate::data::{CsvFile, Dataset};
use crate::destination::Destination;
use crate::distributed::{self, LocalReport};
use crate::numeric::cputime::thread_cpu_seconds;
use crate::numeric::em::EmSettings;
use crate::reduce::{Reduction, ReductionSettings};

/// What a `fit --backend mpi` run needs.
pub struct MpiFit {
    /// Data file; `{rank}` in it is replaced by the rank (one file per rank).
    pub data: String,
    /// Target column.
    pub target: String,
    /// Feature columns (default: every numeric column but the target and `z`).
    pub features: Option<Vec<String>>,
    /// Local EM settings.
    pub em: EmSettings,
    /// Reduction settings.
    pub reduction: ReductionSettings,
    /// `contiguous` or `random` (single data file only).
    pub partition: Partition,
    /// Supporting-sample size S.
    pub support: usize,
    /// Seed of the split, the shards, the starts and the support draws.
    pub seed: u64,
    /// Held-out share of rows (single data file only; the in-process split).
    pub test_fraction: f64,
    /// Where rank 0 writes the reduced model (and `<stem>.timing.json` beside it).
    pub out: Option<PathBuf>,
}

/// A rank's message to rank 0: its report, or why it has none.
#[derive(Serialize, Deserialize)]
struct Wire {
    rank: usize,
    result: Result<LocalReport, String>,
    wall_seconds: f64,
}

/// This rank's rows, read from its own file or from its shard of the shared file.
fn my_rows(f: &MpiFit, rank: usize, size: usize) -> Result<Dataset, String> {
    if f.data.contains("{rank}") {
        let path = PathBuf::from(f.data.replace("{rank}", &rank.to_string()));
        return crate::data::load_dataset(&path, &f.target, f.features.as_deref()).map_err(|e| e.to_string());
    }
    let path = PathBuf::from(&f.data);
    let file = CsvFile::open(&path).map_err(|e| e.to_string())?;
    let (target, features) = file.columns(&f.target, f.features.as_deref());
    let n = file.count_rows().map_err(|e| e.to_string())?;
    let (train, _) = sharding::train_test_split(n, f.test_fraction, f.seed);
    let (order, shards) = sharding::shard_rows(&train, &f.partition, size, f.seed);
    let mine: Vec<usize> = order[shards[rank].clone()].to_vec();
    let mut wanted = vec![false; n];
    for &r in &mine {
        wanted[r] = true;
    }
    let mut cols = features.clone();
    cols.push(target.clone());
    let m = file.read_rows(&cols, |r| wanted[r]).map_err(|e| e.to_string())?;
    // Rows come in file order; put them in shard order (the in-process layout) so sums match exactly.
    let mut sorted = mine.clone();
    sorted.sort_unstable();
    let pos: Vec<usize> = mine.iter().map(|r| sorted.binary_search(r).expect("a row of this shard")).collect();
    Ok(Dataset::from_matrix(m.select(Axis(0), &pos), features, target, None))
}

/// Runs this rank's part; rank 0 also reduces and writes. Returns the process exit code.
pub fn fit(f: &MpiFit) -> i32 {
    let Some(universe) = mpi::initialize() else {
        eprintln!("error: MPI could not be initialised (run under mpirun)");
        return 2;
    };
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let root = world.process_at_rank(0);
    let wall0 = Instant::now();
    // 0. Rank 0 claims its output files before anyone works; every rank learns whether it could.
    let outputs = if rank == 0 { claim_outputs(f) } else { Ok(None) };
    let mut claimed = i32::from(outputs.is_ok());
    root.broadcast_into(&mut claimed);
    let outputs = match outputs {
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
        Ok(_) if claimed == 0 => return 2,
        Ok(o) => o,
    };
    // 1. Every rank loads its rows and fits.
    let result = local_part(f, &world, rank, size);
    let wire = Wire { rank, result, wall_seconds: wall0.elapsed().as_secs_f64() };
    let bytes = serde_json::to_vec(&wire).expect("reports serialise");
    // 2. One variable-size gather of the reports to rank 0.
    let gather0 = Instant::now();
    let mut status: i32 = 0;
    if rank == 0 {
        let messages = gather_at_root(&root, &bytes, size);
        let gather_s = gather0.elapsed().as_secs_f64();
        let wires: Vec<Wire> =
            messages.iter().map(|m| serde_json::from_slice(m).expect("ranks send valid reports")).collect();
        status = match finish(f, wires, gather_s, wall0, outputs.as_ref()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{e}");
                2
            }
        };
    } else {
        root.gather_into(&(bytes.len() as i32));
        root.gather_varcount_into(&bytes[..]);
    }
    // 3. Everyone leaves with rank 0's verdict.
    root.broadcast_into(&mut status);
    status
}

/// This rank's report. Row counts N_m are shared first, so that each rank knows N (for its support
/// share) and nobody fits when a rank could not even load its data.
fn local_part(f: &MpiFit, world: &SimpleCommunicator, rank: usize, size: usize) -> Result<LocalReport, String> {
    let rows = my_rows(f, rank, size);
    let n_m: i64 = rows.as_ref().map_or(-1, |r| r.y.len() as i64);
    let mut sizes = vec![0i64; size];
    world.all_gather_into(&n_m, &mut sizes[..]);
    let data = rows?;
    if sizes.contains(&-1) {
        return Err("not fitted: another rank could not load its data".into());
    }
    let n_total: usize = sizes.iter().map(|&s| s as usize).sum();
    fit_rows(f, rank, &data, n_total)
}

/// `local_fit` on this rank's N_m rows with its share `support_count(S, N_m, N)` of the supporting
/// sample; an error when N_m is below the model's number of free parameters.
fn fit_rows(f: &MpiFit, rank: usize, data: &Dataset, n_total: usize) -> Result<LocalReport, String> {
    let Dataset { x, y, features, target, .. } = data;
    let need = crate::numeric::model::n_free_params(f.em.k, features.len());
    if y.len() < need {
        return Err(format!(
            "{} rows, but K = {} on d = {} features has {need} free parameters: use fewer ranks",
            y.len(),
            f.em.k,
            features.len()
        ));
    }
    let count = distributed::support_count(f.support, y.len(), n_total);
    distributed::local_fit(rank, x.view(), y.view(), features, target, &f.em, count, f.seed)
        .map_err(|e| e.source.to_string())
}

/// Rank 0's side of the gather: every rank's message (its length first, then its bytes), in rank
/// order.
fn gather_at_root(root: &Process, bytes: &[u8], size: usize) -> Vec<Vec<u8>> {
    let mut lens = vec![0i32; size];
    root.gather_into_root(&(bytes.len() as i32), &mut lens[..]);
    let displs: Vec<i32> = lens
        .iter()
        .scan(0, |acc, &l| {
            let d = *acc;
            *acc += l;
            Some(d)
        })
        .collect();
    let mut all = vec![0u8; lens.iter().map(|&l| l as usize).sum()];
    {
        let mut part = PartitionMut::new(&mut all[..], &lens[..], &displs[..]);
        root.gather_varcount_into_root(bytes, &mut part);
    }
    lens.iter().zip(&displs).map(|(&l, &d)| all[d as usize..(d + l) as usize].to_vec()).collect()
}

/// Rank 0: report every rank's error, or reduce and write the model and the timing report.
fn finish(
    f: &MpiFit,
    wires: Vec<Wire>,
    gather_s: f64,
    wall0: Instant,
    outputs: Option<&Outputs>,
) -> Result<(), String> {
    rank_errors(f, &wires)?;
    let ranks: Vec<Value> = wires.iter().filter_map(rank_timing).collect();
    let reports: Vec<LocalReport> = wires.into_iter().map(|w| w.result.expect("errors returned above")).collect();
    let cpu0 = thread_cpu_seconds();
    let t0 = Instant::now();
    let reduction = distributed::aggregate(&reports, &f.reduction).map_err(|e| format!("error: reduction: {e}"))?;
    let (reduce_cpu, reduce_wall) = (thread_cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    let max_fit = reports.iter().map(|r| r.summary.cpu_seconds).fold(0.0, f64::max);
    println!(
        "{} ranks, {} rows: slowest local fit {max_fit:.3} s CPU, gather {gather_s:.3} s, reduction {reduce_cpu:.3} s CPU; end to end {:.3} s",
        reports.len(),
        reports.iter().map(|r| r.n).sum::<usize>(),
        wall0.elapsed().as_secs_f64()
    );
    if !reduction.flagged.is_empty() {
        println!("outlier screening flagged ranks {:?} (dropped: {})", reduction.flagged, reduction.dropped);
    }
    let timing = json!({
        "ranks": ranks,
        "gather_seconds": gather_s,
        "reduction_cpu_seconds": reduce_cpu,
        "reduction_wall_seconds": reduce_wall,
        "end_to_end_wall_seconds": wall0.elapsed().as_secs_f64(),
        "flagged_ranks": reduction.flagged,
    });
    write_outputs(outputs, &reduction, &timing)
}

/// Rank 0's output files: the reduced model (`--out`) and its timing report beside it.
struct Outputs {
    model: Destination,
    timing: Destination,
}

/// Claims `--out` and `<stem>.timing.json` (`None` without `--out`).
fn claim_outputs(f: &MpiFit) -> Result<Option<Outputs>, String> {
    let Some(out) = &f.out else { return Ok(None) };
    let model = Destination::file(out, "--out").map_err(|e| e.to_string())?;
    let timing =
        Destination::file(&out.with_extension("timing.json"), "--out (timing report)").map_err(|e| e.to_string())?;
    Ok(Some(Outputs { model, timing }))
}

/// Every rank's error, one line each, naming its rank and data file; `Ok` when no rank failed.
fn rank_errors(f: &MpiFit, wires: &[Wire]) -> Result<(), String> {
    let errors: Vec<String> = wires
        .iter()
        .filter_map(|w| {
            w.result
                .as_ref()
                .err()
                .map(|e| format!("error: rank {} ({}): {e}", w.rank, f.data.replace("{rank}", &w.rank.to_string())))
        })
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(errors.join("\n")) }
}

/// A rank's line of the timing report: rows, CPU seconds of its fit, wall seconds up to its send,
/// EM iterations and convergence (`None` for a rank without a report).
fn rank_timing(w: &Wire) -> Option<Value> {
    let r = w.result.as_ref().ok()?;
    Some(json!({"rank": w.rank, "rows": r.n, "fit_cpu_seconds": r.summary.cpu_seconds, "wall_seconds": w.wall_seconds,
        "iterations": r.summary.iterations, "converged": r.summary.converged}))
}

/// Writes the reduced model and the timing report beside it (`<stem>.timing.json`), or prints the
/// timing report without `--out`.
fn write_outputs(outputs: Option<&Outputs>, reduction: &Reduction, timing: &Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(timing).expect("JSON serialises");
    let Some(o) = outputs else {
        println!("{text}");
        return Ok(());
    };
    let fail = |e: crate::destination::DestinationError| format!("error: {e}");
    let model = o.model.stage_file(|w| writeln!(w, "{}", reduction.model.to_json())).map_err(fail)?;
    let times = o.timing.stage_file(|w| writeln!(w, "{text}")).map_err(fail)?;
    crate::destination::commit(vec![model, times]).map_err(fail)?;
    println!("reduced model written to {}, timing to {}", o.model.path().display(), o.timing.path().display());
    Ok(())
}
