//! The MPI backend (built with `--features mpi`, run under `mpirun`): the same reduced model as the
//! in-process fit on the same shards, per-rank data files, and a failing rank that ends the job
//! with its message on rank 0 instead of a hang. CI runs these with 4 oversubscribed ranks.
#![cfg(feature = "mpi")]

mod common;

use common::{dmoe, workdir};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `mpirun -np ranks --oversubscribe dmoe ARGS`, allowed to run as root (CI does).
fn mpirun(ranks: usize, args: &[&str]) -> Output {
    Command::new("mpirun")
        .args(["-np", &ranks.to_string(), "--oversubscribe", env!("CARGO_BIN_EXE_dmoe")])
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .expect("mpirun is installed (libopenmpi-dev, openmpi-bin)")
}

fn simulate(dir: &Path, n: usize) -> PathBuf {
    let data = dir.join("data.csv");
    let out = dmoe(&[
        "simulate",
        "--k",
        "3",
        "--d",
        "2",
        "--n",
        &n.to_string(),
        "--seed",
        "3",
        "--out",
        data.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    data
}

fn params(path: &Path) -> Vec<f64> {
    dmoe::numeric::model::Moe::load(path).unwrap().param_vector().to_vec()
}

#[test]
fn mpi_fit_equals_the_in_process_fit_on_the_same_shards() {
    let dir = workdir("mpi_parity");
    let data = simulate(&dir, 24_000);
    let (mpi_out, local_out) = (dir.join("mpi.json"), dir.join("local.json"));
    let d = data.to_str().unwrap();
    let out = mpirun(
        4,
        &[
            "fit",
            "--backend",
            "mpi",
            "--data",
            d,
            "--target",
            "y",
            "--k",
            "3",
            "--seed",
            "5",
            "--out",
            mpi_out.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let timing: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("mpi.timing.json")).unwrap()).unwrap();
    assert_eq!(timing["ranks"].as_array().unwrap().len(), 4);
    for key in ["gather_seconds", "reduction_cpu_seconds", "end_to_end_wall_seconds"] {
        assert!(timing[key].as_f64().is_some_and(|v| v >= 0.0), "{key}");
    }
    let out = dmoe(&[
        "fit",
        "--data",
        d,
        "--target",
        "y",
        "--k",
        "3",
        "--seed",
        "5",
        "--machines",
        "4",
        "--partition",
        "contiguous",
        "--out",
        local_out.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (a, b) = (params(&mpi_out), params(&local_out));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "parameter {i}: MPI {x} vs in-process {y}");
    }
}

/// Exact EM over the ranks (refine from the reduction, distributed-em from the supporting rows)
/// equals the in-process run on the same contiguous shards: rank 0 adds the statistics in rank order.
#[test]
fn mpi_exact_em_equals_the_in_process_run() {
    let dir = workdir("mpi_exact_em");
    let data = simulate(&dir, 24_000);
    let d = data.to_str().unwrap();
    for protocol in ["refine", "distributed-em"] {
        let (mpi_out, local_out) =
            (dir.join(format!("mpi-{protocol}.json")), dir.join(format!("local-{protocol}.json")));
        let common =
            ["fit", "--data", d, "--target", "y", "--k", "3", "--seed", "5", "--protocol", protocol, "--rounds", "4"];
        let out = mpirun(4, &[&common[..], &["--backend", "mpi", "--out", mpi_out.to_str().unwrap()]].concat());
        assert!(out.status.success(), "{protocol}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("{protocol}: 4 iterations of exact EM over the ranks")), "{stdout}");
        let timing: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("mpi-{protocol}.timing.json"))).unwrap()).unwrap();
        assert_eq!(timing["exact_em"]["iterations"], 4, "{timing}");
        let local = ["--machines", "4", "--partition", "contiguous", "--out", local_out.to_str().unwrap()];
        let out = dmoe(&[&common[..], &local[..]].concat());
        assert!(out.status.success(), "{protocol}: {}", String::from_utf8_lossy(&out.stderr));
        let (a, b) = (params(&mpi_out), params(&local_out));
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0), "{protocol}, parameter {i}: MPI {x} vs in-process {y}");
        }
    }
}

fn write_parts(dir: &Path, data: &Path, rows_per_part: &[usize]) {
    let text = std::fs::read_to_string(data).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    for (r, &n) in rows_per_part.iter().enumerate() {
        let body: Vec<&str> = lines.by_ref().take(n).collect();
        std::fs::write(dir.join(format!("part-{r}.csv")), format!("{header}\n{}\n", body.join("\n"))).unwrap();
    }
}

/// Writes `part-R.csv` files with the given row counts, then runs a 4-rank fit on them.
fn fit_parts(dir: &Path, rows_per_part: &[usize], out: &Path) -> Output {
    let data = simulate(dir, 12_000);
    write_parts(dir, &data, rows_per_part);
    let pattern = dir.join("part-{rank}.csv");
    let args = [
        "fit",
        "--backend",
        "mpi",
        "--data",
        pattern.to_str().unwrap(),
        "--target",
        "y",
        "--k",
        "3",
        "--out",
        out.to_str().unwrap(),
    ];
    mpirun(rows_per_part.len(), &args)
}

#[test]
fn mpi_ranks_read_their_own_files() {
    let dir = workdir("mpi_parts");
    let out_path = dir.join("parts.json");
    let out = fit_parts(&dir, &[3000, 3000, 3000, 3000], &out_path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 ranks, 12000 rows"));
    assert_eq!(dmoe::numeric::model::Moe::load(&out_path).unwrap().k(), 3);
}

#[test]
fn a_failing_rank_ends_the_job_with_its_message_on_rank_0() {
    let dir = workdir("mpi_fail");
    let out_path = dir.join("never.json");
    let out = fit_parts(&dir, &[3000, 10, 3000, 3000], &out_path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a rank with 10 rows must fail the job");
    assert!(
        stderr.contains("rank 1 (") && stderr.contains("10 rows, but K = 3 on d = 2 features has 18 free parameters"),
        "{stderr}"
    );
    assert!(!out_path.exists());
    std::fs::remove_file(dir.join("part-2.csv")).unwrap();
    let pattern = dir.join("part-{rank}.csv");
    let out = mpirun(4, &["fit", "--backend", "mpi", "--data", pattern.to_str().unwrap(), "--target", "y", "--k", "3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("rank 2 (") && stderr.contains("No such file"), "{stderr}");
}
