//! Interrupted and concurrent runs (`destination`): a SIGINT or SIGTERM at any moment of `dmoe run`
//! leaves the output folder with its complete old content or the complete new one and nothing beside
//! it; a second run to the same folder is refused while the first one runs.

mod common;

use common::{listing, snapshot, workdir};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A small study (3 cells, a second or two of work, a few hundred milliseconds of writing).
fn start_run(out: &Path, seed: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dmoe"))
        .args(["run", "scenarios/quickstart.toml", "--quiet", "--set", "data.n=6000", "--set", "repetitions=1"])
        .args(["--set", "cluster.machines=[1,2,4]", "--set", &format!("seed={seed}"), "--out"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dmoe starts")
}

/// When to send the signal.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// This long after the start (while the fits run).
    After(Duration),
    /// This long after the temporary output folder appears (while the output is written).
    Writing(Duration),
}

fn wait_for_staging(parent: &Path, child: &mut Child) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(120) {
        if listing(parent).iter().any(|n| n.contains(".partial-")) || child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_micros(300));
    }
    panic!("the run never started writing");
}

#[test]
fn a_signal_at_any_moment_leaves_the_old_or_the_new_output_whole() {
    let dir = workdir("interrupt-signals");
    let out = dir.join("study");
    assert!(start_run(&out, 1).wait().unwrap().success());
    let old = snapshot(&out);
    assert!(old.len() > 10 && old.contains_key(Path::new("results.csv")), "{:?}", old.keys());
    let ms = Duration::from_millis;
    let moments = [
        (libc::SIGINT, Moment::After(ms(150))),
        (libc::SIGTERM, Moment::After(ms(600))),
        (libc::SIGINT, Moment::Writing(ms(0))),
        (libc::SIGTERM, Moment::Writing(ms(0))),
        (libc::SIGINT, Moment::Writing(ms(3))),
        (libc::SIGTERM, Moment::Writing(ms(10))),
        (libc::SIGINT, Moment::Writing(ms(30))),
        (libc::SIGTERM, Moment::Writing(ms(1000))),
    ];
    let mut interrupted_while_writing = 0;
    for (i, &(sig, moment)) in moments.iter().enumerate() {
        let before = snapshot(&out);
        let mut child = start_run(&out, 2 + i as u64);
        let writing = match moment {
            Moment::After(d) => {
                std::thread::sleep(d);
                false
            }
            Moment::Writing(d) => {
                wait_for_staging(&dir, &mut child);
                std::thread::sleep(d);
                true
            }
        };
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait_with_output().unwrap();
        let code = status.status.code();
        let after = snapshot(&out);
        let what = format!("signal {sig} at {moment:?}: exit {code:?}");
        eprintln!("{what}: {}", if after == before { "old output kept" } else { "new output complete" });
        assert_eq!(listing(&dir), ["study"], "{what}: something was left beside the output");
        match code {
            Some(0) => assert_ne!(after, before, "{what}: finished but the output did not change"),
            Some(c) if c == 128 + sig => {
                let stderr = String::from_utf8_lossy(&status.stderr);
                assert!(stderr.contains("interrupted by SIG"), "{what}: {stderr}");
                if after == before {
                    assert!(stderr.trim_end().ends_with(": nothing written"), "{what}: old output kept, but {stderr}");
                    interrupted_while_writing += usize::from(writing);
                    continue;
                }
                assert!(stderr.contains("complete before the signal"), "{what}: new output, but {stderr}");
            }
            _ => panic!("{what}: unexpected exit"),
        }
        // The new output, whole: the same files as any complete run, results of the new seed.
        let keys = |m: &BTreeMap<PathBuf, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&after), keys(&old), "{what}: a partial output");
        assert_ne!(after[Path::new("results.csv")], before[Path::new("results.csv")], "{what}");
    }
    assert!(interrupted_while_writing >= 2, "only {interrupted_while_writing} signals hit the writing phase");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_run_to_the_same_folder_is_refused_while_the_first_runs() {
    let dir = workdir("interrupt-concurrent");
    let out = dir.join("study");
    let mut first = start_run(&out, 1);
    let t0 = Instant::now();
    while !dir.join(".study.lock").exists() {
        assert!(t0.elapsed() < Duration::from_secs(60), "no lock taken");
        std::thread::sleep(Duration::from_millis(1));
    }
    let second = start_run(&out, 2).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("another dmoe run (process {}) is writing to it", first.id())), "{stderr}");
    assert!(first.wait().unwrap().success());
    assert_eq!(listing(&dir), ["study"]);
    assert!(out.join("results.csv").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}
