//! Results pinned across refactorings: with the model clock, `results.csv` of the shipped
//! `quickstart` and `failures-deadline` scenarios must equal the copies in `tests/fixtures/pinned/`.
//! A change that moves a single bit of any estimate, score or virtual time fails here. The copies
//! were written by commit 2f40fb6 (before the restructuring of issue #10) and re-written twice in
//! issue #12: by the fused E-step (every number moved by at most 2.5e-11 relative), then by the
//! SQUAREM acceleration of EM, which changes the fits (fewer iterations, slightly higher
//! log-likelihoods) and so the model clock's times: quickstart's mean speedup at M = 16 went from
//! 9.50 to 12.52 with the same RPE (0.1487); in failures-deadline the global fit got faster while
//! the 0.4 s deadline did not, so its speedup went from 8.7 to 4.5. A third re-write came with the
//! warm-ups on a 20,000-row subset and the fits shared by the network cells of one M: only fits on
//! more than 20,000 rows changed (the global fits, and quickstart's M = 1 and M = 2), by at most
//! 0.7 nats of test log-likelihood, and the machine draws came from the stream (n index, M,
//! repetition) instead of (cell, repetition). A fourth came with the gate's curvature from the
//! 20,000-row subset (test log-likelihoods moved by at most 0.05 nats), a fifth with the reduction's
//! starts on 250 supporting points (estimates within 1e-13), a sixth with screening on all points.
//! The seventh re-measured the model clock: EM is charged per pass (E-step) instead of per trace
//! point, the reduction per MM plan, and the default constants are `dmoe calibrate`'s on the
//! development box (about 2x the EM and 4x the MM constants before). Quickstart's mean speedup at
//! M = 16 is now 7.94 (same estimates); in failures-deadline the fixed 0.4 s deadline now leaves out
//! more machines (10-13 of 16 included instead of 14-15), moving its test log-likelihoods by up to
//! 2.6 nats. The eighth came with EM's passes over fixed row blocks (`dmoe fit --threads`): fits on
//! more than 16,384 rows sum in another order, which moved estimates by at most 3e-10 relative and
//! no time. The ninth came with the screening's reference taken after 3 MM iterations on all points
//! (the refinement continues only when it had not converged and no machine is dropped): the same
//! machines flagged and the same estimates; reduce_s unchanged where nothing is dropped and up to
//! 25 % lower where machines are (failures-deadline at M = 16). The tenth (issue #14) added the
//! columns `wait_s`, `local_converged` and `rows_per_parameter` and changed two meanings, no
//! estimate: `network_s` now ends at the last used report's arrival, the wait for the deadline
//! after it is `wait_s` (failures-deadline's `network_s` went from 0.009-0.12 s to 0.0004-0.003 s,
//! the rest is wait), and `machines_included` no longer counts a machine the screening dropped (one
//! row: 28 -> 27). Every other field of every row is unchanged. The eleventh added the columns of
//! the swept settings (`k`, `support`, `straggler_fraction`, `failure_probability`) after
//! `network`; every other field of every row is unchanged. The twelfth came with the faster reduction
//! of issue #12 (vectorised plan, pooled gates in one product) and its default `tol` going from 1e-10 to
//! 1e-6: the code changes alone moved estimates by at most 7e-11 relative; the tolerance moved test
//! log-likelihoods by at most 0.003 nats, RPE by at most 2e-8 relative and parameter MSE by at most
//! 2.3e-4 relative, and lowered the model clock's `reduce_s` by up to 43 % (quickstart's speedup at
//! M = 16 in repetition 1: 7.35 -> 7.73). The thirteenth came with pooling's softmax taking one
//! exponential per entry and the screening reading the pooled gate probabilities: estimates moved by
//! at most 1e-13 relative, times not at all. The fourteenth came with the model clock's two-term
//! reduction cost (`mm_per_unit` 8.0e-9 -> 3.4e-9 per MM unit, plus `pool_per_unit` 8.8e-10 per
//! pooled value, re-measured after the vectorised plan): no estimate moved; `reduce_s` fell by up to
//! 57 % (quickstart's speedup at M = 16, repetition 0: 8.70 -> 9.08). The fifteenth came with the
//! screening's reference taken from the best start (its plan on all points, which the refinement
//! then starts from) and MM going on from it after a drop instead of every start again: quickstart
//! (nothing dropped) is unchanged; in failures-deadline the one row with a dropped machine (M = 32,
//! repetition 0) moved its scores by 1.4e-7 relative (RPE) to 1e-3 relative (parameter MSE
//! 1.9234e-3 -> 1.9248e-3, transport to truth), its test log-likelihood by 0.002 nats, and its
//! `reduce_s` fell by 38 %. The sixteenth (issue #15)
//! added the column `transport_to_truth_sum` after `transport_to_truth`; the shipped scenarios now say
//! `recipe = "spread"` (the default became the authors' benchmark recipe), so every other field of
//! every row is unchanged. The seventeenth (issue #13) came with the step halving's test of the
//! gate's Newton step allowing 1e-12 relative round-off (`gate::ACCEPT_SLACK`, so that EM over
//! machines takes the same steps as EM on one machine): estimates moved by at most 1.2e-10
//! relative (parameter MSE), test log-likelihoods by 4e-14 relative; no time moved. The eighteenth
//! (issue #13) came with the event-driven scheduler that replaced the timeline computed after the
//! fact: it added the columns `protocol`, `protocol_kind` (after `network`) and `rounds` (before
//! `bytes_sent`); every other field of every row is unchanged, byte for byte. The nineteenth (issue
//! #12) came with pooling's own vectorised exponential (`numeric::exp`, now `numeric::elementary`, within 2 ulp of the C
//! library's) and, after a drop, the final gate fit started from the screening reference's gate:
//! estimates and scores moved by at most 1.2e-13 relative, no time and no flagged machine moved.
//! The twentieth (issue #12) came with the reduction's starts warmed up for 5 MM iterations instead
//! of 10: quickstart is unchanged; in failures-deadline one row (M = 32, repetition 0) has one MM plan
//! fewer on its 250 start points, net (shorter warm-ups, a longer continuation), so its `reduce_s`
//! fell by 1.9 % (0.01137 -> 0.01116 s); every estimate is unchanged. The twenty-first (issue #12)
//! came with the model clock's reduction constants scaled to the faster pooling and plans
//! (`mm_per_unit` 3.4e-9 -> 2.7e-9, `pool_per_unit` 8.8e-10 -> 3.8e-10): only `reduce_s`,
//! `makespan_s` and `speedup` moved (quickstart's speedup at M = 16, repetition 0: 9.08 -> 9.16);
//! every estimate, score and included machine is unchanged. The twenty-second (issue #12) came with
//! EM's row softmax (gate probabilities and responsibilities) vectorised, with its own exponential and
//! logarithm (`numeric::elementary`, within 2 and 1 ulp of the C library's), and narrow designs' weighted
//! Gram matrices summed row by row instead of by matrix products: estimates and scores moved by at
//! most 1.5e-9 relative (parameter MSE), test log-likelihoods by 1.2e-12 relative; no time, iteration
//! count or included machine moved. The twenty-third (issue #12) came with the model clock's
//! `em_per_component` scaled to the faster EM (7.5e-8 -> 4.7e-8), the model's log gate and the
//! pooling's normalisers taking the same softmax and logarithm: quickstart's `local_compute_max_s`
//! and every global fit's makespan fell by 36 % (quickstart's speedup at M = 16, repetition 0: 9.16
//! -> 8.98, since the global fit got cheaper too); quickstart's estimates moved by at most 4e-16
//! relative. In failures-deadline more machines now answer before the 0.4 s deadline (M = 16:
//! 10, 13, 12 -> 14, 15, 12; M = 32: 27, 30, 29 -> 28, 30, 30), so where they do a slower machine is
//! the slowest used (`local_compute_max_s` fell by 14-28 % there) and those rows' estimates and
//! scores moved (the reduction's test log-likelihood by at most 2.6 nats, the baselines' more: the
//! naive average's by up to 9,905 nats); its speedups fell from 3.4-3.6 to 2.2-2.3 (the makespan
//! waits for the deadline, the global fit is cheaper). The twenty-fourth (issue #12) came with the
//! new experts' means computed once per iteration, by one product per row block that both the
//! variance update and the next E-step read, instead of a dot product per row and component in the
//! variance update: estimates moved by at most 7.2e-10 relative (parameter MSE), test
//! log-likelihoods by 1.4e-12 relative; no time, iteration count or included machine moved.
//!
//! The copies were written on x86-64 with AVX2 and FMA, where ndarray's matrix products take the FMA
//! kernel. On such a CPU the comparison is byte for byte. Elsewhere the products round differently,
//! so the test compares every number to 1e-6 relative instead (and every text field exactly).

mod common;

use common::{dmoe, workdir};
use std::path::Path;

fn byte_exact_cpu() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Runs a shipped scenario with the model clock and compares its results.csv with the pinned copy.
fn assert_pinned(scenario: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = workdir(&format!("pinned-{scenario}")).join("out");
    let file = root.join(format!("scenarios/{scenario}.toml"));
    let out = dmoe(&["run", file.to_str().unwrap(), "--clock", "model", "--quiet", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{scenario}: {}", String::from_utf8_lossy(&out.stderr));
    let got = std::fs::read_to_string(out_dir.join("results.csv")).unwrap();
    let want = std::fs::read_to_string(root.join(format!("tests/fixtures/pinned/{scenario}-model-clock.csv"))).unwrap();
    if byte_exact_cpu() {
        assert!(got == want, "{scenario}: results.csv is not byte-identical to the pinned copy");
        return;
    }
    let (got, want): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    assert_eq!(got.len(), want.len(), "{scenario}: row count");
    for (line, (g, w)) in got.iter().zip(&want).enumerate() {
        let (g, w): (Vec<&str>, Vec<&str>) = (g.split(',').collect(), w.split(',').collect());
        assert_eq!(g.len(), w.len(), "{scenario}, line {}: field count", line + 1);
        for (a, b) in g.iter().zip(&w) {
            match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => assert!(
                    (x - y).abs() <= 1e-6 * y.abs().max(1e-12),
                    "{scenario}, line {}: {x} vs pinned {y}",
                    line + 1
                ),
                _ => assert_eq!(a, b, "{scenario}, line {}", line + 1),
            }
        }
    }
}

#[test]
fn quickstart_results_match_the_pinned_copy() {
    assert_pinned("quickstart");
}

#[test]
fn failures_deadline_results_match_the_pinned_copy() {
    assert_pinned("failures-deadline");
}
