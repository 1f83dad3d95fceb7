//! `dmoe fit --backend mpi`: the distributed fit on a real cluster, one MPI rank per machine.
//!
//! Every rank computes the same shards as `dmoe fit --machines M` in process (the same train/test
//! split and partition, from the seed) and reads only its own rows; or, with `--data 'part-{rank}.csv'`,
//! its own file. It runs `distributed::local_fit` and sends its report to rank 0 in one
//! variable-size gather (JSON, which round-trips every f64 exactly); rank 0 runs
//! `distributed::aggregate`. Same code, same inputs: the reduced model equals the in-process one.
//! A rank that fails still takes part in the gather with its error, so the job ends with every
//! rank's message on rank 0 and a non-zero exit code, never a hang.
//!
//! With `--protocol refine` or `distributed-em`, exact EM over the ranks follows
//! (`em::over_machines`): every rank sends the moments of its rows with its report (and, for
//! distributed-em, the targets of its supporting rows); rank 0 runs the server, and each round
//! broadcasts the request and gathers every rank's sufficient statistics. Rank 0 adds them in rank
//! order, which is the in-process order, so the iterates equal `dmoe fit --machines M --partition
//! contiguous --protocol ...` exactly (an all-reduce would add them in an order MPI chooses).

use std::path::PathBuf;
use std::time::Instant;

use mpi::datatype::PartitionMut;
use mpi::topology::{Process, SimpleCommunicator};
use mpi::traits::*;
use ndarray::{Array1, Axis};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::data::sharding::{self, Partition};
use crate::data::{CsvFile, Dataset};
use crate::destination::Destination;
use crate::distributed::pipeline::ExactEm;
use crate::distributed::{self, LocalReport};
use crate::numeric::cputime::thread_cpu_seconds;
use crate::numeric::em::over_machines::{self, Moments, Next, Request, Shard, ShardStats};
use crate::numeric::em::{EmSettings, Scaling};
use crate::numeric::model::Moe;
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
    /// Where rank 0 writes the protocol's model (and `<stem>.timing.json` beside it).
    pub out: Option<PathBuf>,
    /// Exact EM over the ranks after the reduction (`--protocol refine|distributed-em`), if any.
    pub exact_em: Option<ExactEm>,
}

/// A rank's first message to rank 0: its report, or why it has none.
#[derive(Serialize, Deserialize)]
struct Wire {
    rank: usize,
    result: Result<Part, String>,
    wall_seconds: f64,
}

/// A rank's first answer: its report and, for exact EM, the moments of its rows and the targets of
/// its supporting rows (whose covariates are the report's).
#[derive(Serialize, Deserialize)]
struct Part {
    report: LocalReport,
    moments: Option<Moments>,
    support_y: Option<Array1<f64>>,
}

/// What rank 0 tells every rank in a round of exact EM: the request (with the union's
/// standardisation on the first), or that the fit is over.
#[derive(Serialize, Deserialize)]
enum Command {
    Ask { scaling: Option<Box<Scaling>>, request: Request },
    Stop,
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
    let (data, result) = local_part(f, &world, rank, size);
    let wire = Wire { rank, result, wall_seconds: wall0.elapsed().as_secs_f64() };
    let bytes = serde_json::to_vec(&wire).expect("reports serialise");
    // 2. One variable-size gather of the reports to rank 0, which reduces.
    let gather0 = Instant::now();
    let messages = gather(&root, rank, &bytes, size);
    let reduced = messages.map(|messages| {
        let gather_s = gather0.elapsed().as_secs_f64();
        let wires: Vec<Wire> =
            messages.iter().map(|m| serde_json::from_slice(m).expect("ranks send valid reports")).collect();
        reduce(f, wires, gather_s)
    });
    // 3. Exact EM over the ranks, when asked for (every rank follows rank 0's commands).
    let exact = match f.exact_em {
        Some(which) => over_ranks(f, which, &root, rank, size, data.as_ref(), reduced.as_ref()),
        None => None,
    };
    // 4. Rank 0 writes, and everyone leaves with its verdict.
    let mut status: i32 = 0;
    if let Some(reduced) = reduced {
        let written = reduced.and_then(|r| finish(r, exact.transpose()?, wall0, outputs.as_ref()));
        if let Err(e) = written {
            eprintln!("{e}");
            status = 2;
        }
    }
    root.broadcast_into(&mut status);
    status
}

/// Every rank's `bytes`, in rank order, on rank 0 (`None` on the others): each message's length
/// first, then one variable-size gather.
fn gather(root: &Process, rank: usize, bytes: &[u8], size: usize) -> Option<Vec<Vec<u8>>> {
    if rank == 0 {
        return Some(gather_at_root(root, bytes, size));
    }
    root.gather_into(&(bytes.len() as i32));
    root.gather_varcount_into(bytes);
    None
}

/// Rank 0's `bytes` on every rank: the length first, then the bytes.
fn broadcast(root: &Process, bytes: Option<Vec<u8>>) -> Vec<u8> {
    let mut len = bytes.as_ref().map_or(0, |b| b.len() as u64);
    root.broadcast_into(&mut len);
    let mut buf = bytes.unwrap_or_else(|| vec![0u8; len as usize]);
    root.broadcast_into(&mut buf[..]);
    buf
}

/// What rank 0 has after the reduction: every rank's first answer, the reduction, and the times.
struct Reduced {
    parts: Vec<Part>,
    reduction: Reduction,
    timing: Value,
}

/// Rank 0's exact EM: the model it reached and its line of the timing report.
struct ExactRun {
    model: Moe,
    timing: Value,
}

/// Exact EM over the ranks from rank 0's start (the reduced model, or EM on the supporting rows
/// with their targets): rank 0 runs the server and broadcasts each request; every rank answers with
/// its rows' statistics. Rank 0 gets the run (or why it could not start); the others `None`. When
/// anything failed before, rank 0 stops the ranks at once.
fn over_ranks(
    f: &MpiFit,
    which: ExactEm,
    root: &Process,
    rank: usize,
    size: usize,
    data: Option<&Dataset>,
    reduced: Option<&Result<Reduced, String>>,
) -> Option<Result<ExactRun, String>> {
    let wall0 = Instant::now();
    // Rank 0: the server and its next command (an earlier failure is reported by `reduce`).
    let mut state: Option<Result<(over_machines::Server, Command), String>> =
        reduced.map(|r| r.as_ref().map_err(|_| String::new()).and_then(|r| exact_server(f, which, r)));
    let mut shard: Option<Shard> = None;
    // The standardisation's round is the reports' (the moments travel with them), as in process.
    let mut rounds = 1;
    loop {
        let outgoing = state.as_ref().map(|s| {
            let stop = Command::Stop;
            serde_json::to_vec(s.as_ref().map_or(&stop, |(_, c)| c)).expect("commands serialise")
        });
        let command: Command = serde_json::from_slice(&broadcast(root, outgoing)).expect("rank 0 sends commands");
        let Command::Ask { scaling, request } = command else { break };
        rounds += 1;
        let rows = data.expect("rank 0 stops when a rank has no data");
        let shard = shard.get_or_insert_with(|| {
            Shard::new(rows.x.view(), rows.y.view(), scaling.as_ref().expect("the first request carries it"))
        });
        let stats = serde_json::to_vec(&shard.answer(&request)).expect("statistics serialise");
        let Some(answers) = gather(root, rank, &stats, size) else { continue };
        // JSON has no NaN or infinity: a rank whose statistics are not finite sends `null` there.
        let stats: Result<Vec<ShardStats>, String> = answers
            .iter()
            .enumerate()
            .map(|(r, a)| {
                serde_json::from_slice(a).map_err(|_| {
                    format!("error: exact EM, round {rounds}: rank {r} sent statistics that are not finite numbers")
                })
            })
            .collect();
        let Some(Ok((server, next))) = state.as_mut() else { unreachable!("rank 0 asked, so it has a server") };
        match stats {
            Ok(stats) => {
                *next = match server.receive(stats) {
                    Next::Ask(request) => Command::Ask { scaling: None, request },
                    Next::Done => Command::Stop,
                }
            }
            Err(e) => state = Some(Err(e)),
        }
    }
    let (server, _) = match state? {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    let tally = server.tally();
    let timing = json!({"protocol": which.name(), "iterations": server.iterations(), "rounds": rounds,
        "halvings": tally.halvings, "jumps_kept": tally.jumps_kept, "jumps_lost": tally.jumps_lost,
        "converged": server.converged(), "wall_seconds": wall0.elapsed().as_secs_f64()});
    println!(
        "{}: {} iterations of exact EM over the ranks in {rounds} rounds (the first with the reports), {:.3} s",
        which.name(),
        server.iterations(),
        wall0.elapsed().as_secs_f64()
    );
    Some(server.model().map(|model| ExactRun { model, timing }).map_err(|e| format!("error: exact EM: {e}")))
}

/// Rank 0's server of exact EM and its first command: the union's standardisation from every rank's
/// moments, and the start (the reduced model for refine; for distributed-em, EM on the supporting
/// rows with their targets, as `distributed::sample_start` does in process).
fn exact_server(f: &MpiFit, which: ExactEm, r: &Reduced) -> Result<(over_machines::Server, Command), String> {
    let model = &r.reduction.model;
    let target = model.target.clone().unwrap_or_else(|| f.target.clone());
    let moments: Vec<Moments> = r.parts.iter().map(|p| p.moments.clone().expect("sent for exact EM")).collect();
    let fail = |e: crate::numeric::em::EmError| format!("error: exact EM: {e}");
    let scaling = Moments::combine(&moments).scaling(&model.features, &target, f.em.k).map_err(fail)?;
    let start = match which {
        ExactEm::Refine { .. } => model.clone(),
        ExactEm::DistributedEm { .. } => {
            let samples: Vec<_> = r
                .parts
                .iter()
                .map(|p| (p.report.support.view(), p.support_y.as_ref().expect("sent for distributed-em").view()))
                .collect();
            distributed::sample_start(&samples, &model.features, &target, &f.em, f.seed).map_err(fail)?.model
        }
    };
    let (server, request) = over_machines::Server::new(&start, scaling.clone(), &which.settings(&f.em));
    Ok((server, Command::Ask { scaling: Some(Box::new(scaling)), request }))
}

/// This rank's rows and its first answer. Row counts N_m are shared first, so that each rank knows N
/// (for its support share) and nobody fits when a rank could not even load its data.
fn local_part(
    f: &MpiFit,
    world: &SimpleCommunicator,
    rank: usize,
    size: usize,
) -> (Option<Dataset>, Result<Part, String>) {
    let rows = my_rows(f, rank, size);
    let n_m: i64 = rows.as_ref().map_or(-1, |r| r.y.len() as i64);
    let mut sizes = vec![0i64; size];
    world.all_gather_into(&n_m, &mut sizes[..]);
    let data = match rows {
        Ok(d) => d,
        Err(e) => return (None, Err(e)),
    };
    if sizes.contains(&-1) {
        return (Some(data), Err("not fitted: another rank could not load its data".into()));
    }
    let n_total: usize = sizes.iter().map(|&s| s as usize).sum();
    let part = fit_rows(f, rank, &data, n_total).map(|report| {
        let exact = f.exact_em.is_some();
        let moments = exact.then(|| Moments::of(data.x.view(), data.y.view()));
        let support_y = matches!(f.exact_em, Some(ExactEm::DistributedEm { .. })).then(|| {
            let rows = distributed::support_rows(rank, data.y.len(), report.support.nrows(), f.seed);
            data.y.select(Axis(0), &rows)
        });
        Part { report, moments, support_y }
    });
    (Some(data), part)
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

/// Rank 0: every rank's error, or the reduction of their reports and the timing so far.
fn reduce(f: &MpiFit, wires: Vec<Wire>, gather_s: f64) -> Result<Reduced, String> {
    rank_errors(f, &wires)?;
    let ranks: Vec<Value> = wires.iter().filter_map(rank_timing).collect();
    let parts: Vec<Part> = wires.into_iter().map(|w| w.result.expect("errors returned above")).collect();
    let reports: Vec<LocalReport> = parts.iter().map(|p| p.report.clone()).collect();
    let cpu0 = thread_cpu_seconds();
    let t0 = Instant::now();
    let reduction = distributed::aggregate(&reports, &f.reduction).map_err(|e| format!("error: reduction: {e}"))?;
    let (reduce_cpu, reduce_wall) = (thread_cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    let max_fit = reports.iter().map(|r| r.summary.cpu_seconds).fold(0.0, f64::max);
    println!(
        "{} ranks, {} rows: slowest local fit {max_fit:.3} s CPU, gather {gather_s:.3} s, reduction {reduce_cpu:.3} s CPU",
        reports.len(),
        reports.iter().map(|r| r.n).sum::<usize>(),
    );
    if !reduction.flagged.is_empty() {
        println!("outlier screening flagged ranks {:?} (dropped: {})", reduction.flagged, reduction.dropped);
    }
    let timing = json!({
        "ranks": ranks,
        "gather_seconds": gather_s,
        "reduction_cpu_seconds": reduce_cpu,
        "reduction_wall_seconds": reduce_wall,
        "flagged_ranks": reduction.flagged,
    });
    Ok(Reduced { parts, reduction, timing })
}

/// Rank 0: writes the protocol's model (the exact-EM run's, or the reduced one) and the timing
/// report, with the end-to-end wall time.
fn finish(r: Reduced, exact: Option<ExactRun>, wall0: Instant, outputs: Option<&Outputs>) -> Result<(), String> {
    let mut timing = r.timing;
    timing["end_to_end_wall_seconds"] = json!(wall0.elapsed().as_secs_f64());
    println!("end to end {:.3} s", wall0.elapsed().as_secs_f64());
    let model = match exact {
        Some(run) => {
            timing["exact_em"] = run.timing;
            run.model
        }
        None => r.reduction.model,
    };
    write_outputs(outputs, &model, &timing)
}

/// Rank 0's output files: the protocol's model (`--out`) and its timing report beside it.
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
    let r = &w.result.as_ref().ok()?.report;
    Some(json!({"rank": w.rank, "rows": r.n, "fit_cpu_seconds": r.summary.cpu_seconds, "wall_seconds": w.wall_seconds,
        "iterations": r.summary.iterations, "converged": r.summary.converged}))
}

/// Writes the protocol's model and the timing report beside it (`<stem>.timing.json`), or prints the
/// timing report without `--out`.
fn write_outputs(outputs: Option<&Outputs>, model: &Moe, timing: &Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(timing).expect("JSON serialises");
    let Some(o) = outputs else {
        println!("{text}");
        return Ok(());
    };
    let fail = |e: crate::destination::DestinationError| format!("error: {e}");
    let model = o.model.stage_file(|w| writeln!(w, "{}", model.to_json())).map_err(fail)?;
    let times = o.timing.stage_file(|w| writeln!(w, "{text}")).map_err(fail)?;
    crate::destination::commit(vec![model, times]).map_err(fail)?;
    println!("model written to {}, timing to {}", o.model.path().display(), o.timing.path().display());
    Ok(())
}
