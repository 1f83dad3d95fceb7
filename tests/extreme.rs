//! Extreme numbers in every numeric scenario key and every numeric flag (issue #11): zero,
//! negatives, subnormals, 1e308, the largest integers, and seeded random magnitudes. Whatever the
//! value, dmoe must either run or refuse it with exit code 2 and a message; it must never panic
//! (exit 101 or 134), hang, write `NaN` or `inf`, or leave a temporary or lock file.
//!
//! `dmoe bench` gets its count flags on a small problem; its `--n` is left out, because it runs as
//! long as it is asked to (`--n 1e8` is a legitimate hour of work), which is its purpose.

mod common;

use common::{listing, workdir};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a tiny run may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(60);

/// Values every key and flag gets.
const FIXED: [&str; 10] = [
    "0",
    "-1",
    "5e-324",
    "1e-300",
    "0.5",
    "0.9999999999",
    "1",
    "1e308",
    "-1.7976931348623157e308",
    "9223372036854775807",
];

/// A small deterministic generator (xorshift64*), so that the random values are the same every run.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A float of random sign and magnitude 10^e, e uniform in [-320, 308], or a random integer.
    fn value(&mut self) -> String {
        let r = self.next();
        if r.is_multiple_of(3) {
            return (self.next() >> (r % 63)).to_string();
        }
        let e = (self.next() % 629) as i32 - 320;
        let sign = if r.is_multiple_of(2) { "" } else { "-" };
        format!("{sign}{}e{e}", 1 + self.next() % 9)
    }
}

fn values(draws: &mut Draws) -> Vec<String> {
    FIXED.iter().map(|s| s.to_string()).chain((0..3).map(|_| draws.value())).collect()
}

/// Runs dmoe in `dir` with a time limit; returns (exit code, stderr).
fn dmoe(dir: &Path, args: &[String]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmoe"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > HANG {
            let _ = child.kill();
            panic!("dmoe {} did not end within {HANG:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Asserts the guarantee for one invocation: exit 0 or 2 with a message, nothing non-finite in the
/// outputs `written` (when it succeeded), nothing beside the expected files of `dir`.
fn assert_clean(dir: &Path, args: &[String], code: Option<i32>, stderr: &str, written: &[&str], keep: &[&str]) {
    let what = format!("dmoe {}", args.join(" "));
    assert!(!stderr.contains("panicked"), "{what}: a panic: {stderr}");
    match code {
        Some(0) => {
            for f in written {
                let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{what}: {f}: {e}"));
                // serde_json writes a NaN as `null`; a model file has no other use for it.
                assert!(
                    !(f.ends_with(".json") && *f != "out/run.json" && text.contains("null")),
                    "{what}: null in {f}"
                );
                for token in text.split([',', '\n', ' ', ':', '[', ']']) {
                    let t = token.trim().to_ascii_lowercase();
                    assert!(!matches!(t.as_str(), "nan" | "inf" | "-inf" | "infinity"), "{what}: `{token}` in {f}");
                }
            }
        }
        Some(2) => assert!(
            stderr.lines().any(|l| l.starts_with("error: ") && l.len() > 10),
            "{what}: exit 2 without a message"
        ),
        other => panic!("{what}: exit {other:?}: {stderr}"),
    }
    let mut left = listing(dir);
    left.retain(|n| !keep.contains(&n.as_str()));
    let allowed: Vec<&str> = written.iter().map(|f| f.split('/').next().unwrap()).collect();
    left.retain(|n| !allowed.contains(&n.as_str()));
    assert!(left.is_empty(), "{what}: left behind: {left:?}");
    for f in &allowed {
        let p = dir.join(f);
        if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p).or(Ok(())) }.unwrap();
    }
}

const BASE: &str = r#"name = "extreme"
clock = "model"

[data]
kind = "synthetic"
k = 2
d = 1
n = 800

[cluster]
machines = [2]
support = 100

[network]
latency = { kind = "constant", seconds = 0.001 }
"#;

/// Every numeric scenario key, as a `--set` template with `V` for the value.
const KEYS: [&str; 41] = [
    "seed=V",
    "repetitions=V",
    "threads=V",
    "data.k=V",
    "data.d=V",
    "data.n=V",
    "data.separation=V",
    "data.truth_seed=V",
    "data.test_fraction=V",
    "model.k=V",
    "cluster.machines=V",
    "cluster.machines=[1, V]",
    "cluster.support=V",
    "cluster.deadline=V",
    "cluster.shard_sizes={ kind = \"lognormal\", sigma = V }",
    "network.latency={ kind = \"constant\", seconds = V }",
    "network.latency={ kind = \"uniform\", min = 0, max = V }",
    "network.latency={ kind = \"exponential\", mean = V }",
    "network.latency={ kind = \"lognormal\", median = V, sigma = 1 }",
    "network.latency={ kind = \"lognormal\", median = 0.01, sigma = V }",
    "network.latency={ kind = \"normal\", mean = V, sd = 1 }",
    "network.latency={ kind = \"normal\", mean = 1, sd = V }",
    "network.bandwidth=V",
    "network.loss=V",
    "network.retransmit_after=V",
    "machines.speed={ kind = \"stragglers\", fraction = V, slowdown = 10 }",
    "machines.speed={ kind = \"stragglers\", fraction = 0.5, slowdown = V }",
    "machines.speed={ kind = \"lognormal\", sigma = V }",
    "machines.failure_probability=V",
    "em.restarts=V",
    "em.warmup_iter=V",
    "em.max_iter=V",
    "em.tol=V",
    "reduction.max_iter=V",
    "reduction.tol=V",
    "reduction.outlier_threshold=V",
    "cost_model.em_per_component=V",
    "cost_model.em_per_coefficient_pair=V",
    "cost_model.mm_per_unit=V",
    "cost_model.pool_per_unit=V",
    "data.n=[800, V]",
];

#[test]
fn extreme_values_in_every_scenario_key_run_or_are_refused_cleanly() {
    let dir = workdir("extreme-keys");
    std::fs::write(dir.join("base.toml"), BASE).unwrap();
    let mut draws = Draws(0x9e37_79b9_7f4a_7c15);
    let (mut ran, mut refused) = (0, 0);
    for key in KEYS {
        for v in values(&mut draws) {
            let set = key.replace('V', &v);
            let args: Vec<String> =
                ["run", "base.toml", "--quiet", "--out", "out", "--set", &set].iter().map(|s| s.to_string()).collect();
            let (code, stderr) = dmoe(&dir, &args);
            let written = ["out/results.csv", "out/run.json"];
            if code == Some(0) {
                ran += 1;
            } else {
                refused += 1;
                assert!(!dir.join("out").exists(), "{set}: refused but wrote output");
            }
            assert_clean(&dir, &args, code, &stderr, &written, &["base.toml"]);
        }
    }
    eprintln!("{ran} runs, {refused} refusals");
    assert!(ran > 50 && refused > 100, "{ran} runs, {refused} refusals: the values no longer probe both sides");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn extreme_values_in_every_numeric_flag_run_or_are_refused_cleanly() {
    let dir = workdir("extreme-flags");
    let sim = ["simulate", "--k", "2", "--d", "1", "--n", "400", "--out", "d.csv"];
    let (code, stderr) = dmoe(&dir, &sim.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(code, Some(0), "{stderr}");
    let fit = ["fit", "--data", "d.csv", "--target", "y", "--k", "2", "--machines", "2", "--out", "m.json"];
    let fit_flags = [
        "--k",
        "--restarts",
        "--warmup",
        "--max-iter",
        "--tol",
        "--seed",
        "--machines",
        "--support",
        "--test-fraction",
    ];
    let one = ["fit", "--data", "d.csv", "--target", "y", "--k", "2", "--out", "m.json"];
    let simulate = ["simulate", "--k", "2", "--d", "1", "--n", "300", "--out", "s.csv"];
    let sim_flags = ["--k", "--d", "--n", "--seed", "--separation"];
    let bench = ["bench", "--n", "2000", "--shape", "2x1", "--iters", "2"];
    let reduction = ["bench", "--reduction", "--n", "2000", "--shape", "2x1", "--machines", "2", "--support", "100"];
    let mut draws = Draws(0x2545_f491_4f6c_dd1d);
    let mut cases = 0;
    let commands: [(&[&str], &[&str], Option<&str>); 5] = [
        (&fit, &fit_flags, Some("m.json")),
        (&one, &["--k", "--restarts", "--tol"], Some("m.json")),
        (&simulate, &sim_flags, Some("s.csv")),
        (&bench, &["--iters"], None),
        (&reduction, &["--machines", "--support"], None),
    ];
    for (base, flags, written) in commands {
        for flag in flags {
            for v in values(&mut draws) {
                // The base command with this flag's value replaced (a flag given twice is refused
                // by the parser, which would test nothing).
                let mut args: Vec<String> = Vec::new();
                let mut rest = base.iter();
                while let Some(a) = rest.next() {
                    match a == flag {
                        true => drop(rest.next()),
                        false => args.push(a.to_string()),
                    }
                }
                args.push(format!("{flag}={v}"));
                let (code, stderr) = dmoe(&dir, &args);
                assert_clean(&dir, &args, code, &stderr, written.as_slice(), &["d.csv"]);
                cases += 1;
            }
        }
    }
    // `run --jobs`, on a tiny scenario.
    std::fs::write(dir.join("base.toml"), BASE).unwrap();
    for v in values(&mut draws) {
        let args: Vec<String> = ["run", "base.toml", "--quiet", "--out", "out", &format!("--jobs={v}")]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (code, stderr) = dmoe(&dir, &args);
        assert_clean(&dir, &args, code, &stderr, &["out/results.csv"], &["d.csv", "base.toml"]);
        cases += 1;
    }
    assert!(cases > 100);
    let _ = std::fs::remove_dir_all(&dir);
}
