//! Robust aggregation: one stuck local model among 16 is flagged every time, a clean machine never;
//! dropping it recovers the clean reduction, keeping it (the paper's method) visibly damages the
//! reduced model.
//!
//! The stuck model is what EM returns from a poor start that merged two true components: a K = 2 fit
//! of the machine's shard with one component split into two identical copies (half the gate weight
//! each). It has exactly the K = 2 fit's density and is a stationary point of the K = 3 likelihood.

mod common;

use common::{assert_non_increasing, local_reports, problem};
use dmoe::numeric::model::Moe;
use dmoe::reduce::{self, OutlierPolicy, ReductionSettings};

const MACHINES: usize = 16;

struct Trial {
    clean: f64,
    dropped: f64,
    kept: f64,
    flagged_dirty: Vec<usize>,
    flagged_clean: Vec<usize>,
    bad: usize,
    scores: Vec<f64>,
}

/// Machine `bad`'s shard fitted with K = 2, then its first component split in two: a K = 3 model
/// stuck with two true components merged.
fn stuck_fit(train: &dmoe::data::synthetic::SimData, bad: usize) -> Moe {
    let r = dmoe::data::sharding::equal_blocks(train.y.len(), MACHINES)[bad].clone();
    let x = train.x.slice(ndarray::s![r.clone(), ..]);
    let y = train.y.slice(ndarray::s![r]);
    let k2 =
        common::fit_checked(x, y, &common::names(2), &dmoe::numeric::em::EmSettings { k: 2, ..Default::default() })
            .model;
    let mut half = k2.gate.row(0).to_owned();
    half[0] += 0.5f64.ln();
    let gate = ndarray::stack![ndarray::Axis(0), half, half, k2.gate.row(1)];
    let experts = ndarray::stack![ndarray::Axis(0), k2.experts.row(0), k2.experts.row(0), k2.experts.row(1)];
    let variances = ndarray::arr1(&[k2.variances[0], k2.variances[0], k2.variances[1]]);
    let stuck = Moe::new(k2.features.clone(), gate, experts, variances).unwrap();
    let (a, b) = (stuck.loglik(x, y), k2.loglik(x, y));
    assert!((a - b).abs() < 1e-8 * b.abs(), "the split model has the K = 2 fit's density: {a} vs {b}");
    stuck
}

fn trial(seed: u64) -> Trial {
    let (_, all) = problem(3, 2, MACHINES * 3_000 + 10_000, 100 + seed);
    let n_train = MACHINES * 3_000;
    let pick = |r: std::ops::Range<usize>| dmoe::data::synthetic::SimData {
        x: all.x.slice(ndarray::s![r.clone(), ..]).to_owned(),
        y: all.y.slice(ndarray::s![r.clone()]).to_owned(),
        z: all.z[r].to_vec(),
    };
    let (train, test) = (pick(0..n_train), pick(n_train..all.y.len()));
    let reports = local_reports(&train, MACHINES, 3, 2_000, seed);
    let sizes: Vec<usize> = reports.iter().map(|r| r.n).collect();
    let views: Vec<_> = reports.iter().map(|r| r.support.view()).collect();
    let support = ndarray::concatenate(ndarray::Axis(0), &views).unwrap();
    let bad = (seed as usize * 7) % MACHINES;
    let corrupted = stuck_fit(&train, bad);
    let clean: Vec<&Moe> = reports.iter().map(|r| &r.model).collect();
    let mut dirty = clean.clone();
    dirty[bad] = &corrupted;
    let reduce = |locals: &[&Moe], outliers: OutlierPolicy| {
        let r =
            reduce::reduce(locals, &sizes, support.view(), &ReductionSettings { k: 3, outliers, ..Default::default() })
                .unwrap();
        for (init, t) in &r.runs {
            assert_non_increasing(t, &format!("{init:?}"));
        }
        r
    };
    let per_row = |m: &Moe| m.loglik(test.x.view(), test.y.view()) / test.y.len() as f64;
    let c = reduce(&clean, OutlierPolicy::Drop);
    let d = reduce(&dirty, OutlierPolicy::Drop);
    let k = reduce(&dirty, OutlierPolicy::Keep);
    assert!(k.flagged.is_empty() && k.scores.is_empty(), "keep does not screen");
    Trial {
        clean: per_row(&c.model),
        dropped: per_row(&d.model),
        kept: per_row(&k.model),
        flagged_dirty: d.flagged,
        flagged_clean: c.flagged,
        bad,
        scores: d.scores,
    }
}

#[test]
fn a_corrupted_machine_is_flagged_and_dropped_over_20_trials() {
    let mut worst_drop_gap: f64 = 0.0;
    let mut damage = Vec::new();
    for seed in 0..20 {
        let t = trial(seed);
        assert_eq!(
            t.flagged_dirty,
            vec![t.bad],
            "trial {seed}: the detector must flag exactly the corrupted machine; scores {:?}",
            t.scores
        );
        assert!(t.flagged_clean.is_empty(), "trial {seed}: clean machines flagged: {:?}", t.flagged_clean);
        worst_drop_gap = worst_drop_gap.max((t.clean - t.dropped).abs());
        assert!(
            (t.clean - t.dropped).abs() < 0.005,
            "trial {seed}: drop {} vs clean {} nats per row",
            t.dropped,
            t.clean
        );
        damage.push(t.clean - t.kept);
    }
    let mean_damage = damage.iter().sum::<f64>() / damage.len() as f64;
    assert!(
        mean_damage > 0.01,
        "keeping the corrupted model should visibly hurt: mean loss {mean_damage} nats per row"
    );
    assert!(
        mean_damage > 5.0 * worst_drop_gap.max(1e-4),
        "keep's damage {mean_damage} vs drop's worst gap {worst_drop_gap}"
    );
}

#[test]
fn flag_outliers_uses_a_robust_rule() {
    let scores = [0.05, 0.06, 0.055, 0.07, 0.05, 2.0, 0.065];
    assert_eq!(reduce::flag_outliers(&scores, 10.0), vec![5]);
    let tight = [0.1, 0.1000001, 0.1000002, 0.0999999, 0.3];
    assert!(reduce::flag_outliers(&tight, 10.0).is_empty(), "3 x the median of a tight cluster is not an outlier");
    assert!(reduce::flag_outliers(&[0.1, 5.0], 10.0).is_empty(), "two machines: no majority to compare with");
}

#[test]
fn joint_divergence_is_zero_up_to_labels_and_sees_experts_on_the_wrong_gates() {
    let (sim, data) = problem(3, 2, 2_000, 12);
    let (t, x) = (&sim.truth, data.x.view());
    let d = dmoe::numeric::transport::joint_divergence;
    assert!(d(t, t, x).abs() < 1e-12, "a model does not diverge from itself");
    assert!(d(&t.permuted(&[2, 0, 1]), t, x).abs() < 1e-12, "relabelling changes nothing");
    let mut swapped = t.clone();
    let (e0, e1) = (swapped.experts.row(0).to_owned(), swapped.experts.row(2).to_owned());
    swapped.experts.row_mut(0).assign(&e1);
    swapped.experts.row_mut(2).assign(&e0);
    let gap = d(&swapped, t, x);
    assert!(gap > 1e-3, "experts attached to the wrong gates must cost something: {gap}");
    // The transport objective alone cannot see it: the same set of experts transports at no cost.
    let pool_swapped = dmoe::numeric::transport::LargeModel::new(&[&swapped], &[1], x).unwrap();
    assert!(pool_swapped.divergence_to(t).abs() < 1e-12, "the transport plan ignores the gates");
}
