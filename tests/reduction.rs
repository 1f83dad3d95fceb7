//! The server's reduction: the exact MM trace of the shared test vector, non-increasing objective,
//! fixed points (true models, M = 1), label-permutation invariance, consistency, and accuracy next to
//! the global fit and the naive average.

mod common;

use common::{assert_non_increasing, local_reports, problem, reduce_checked};
use dmoe::distributed::{self, Estimate};
use dmoe::numeric::matching::align;
use dmoe::numeric::metrics;
use dmoe::numeric::model::Moe;
use dmoe::numeric::transport::LargeModel;
use dmoe::reduce::{self, ReductionSettings};
use ndarray::{Array1, Array2};
use serde_json::Value;

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
    Array2::from_shape_fn((rows.len(), rows[0].len()), |(i, j)| rows[i][j])
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol * b.abs().max(1.0), "{what}: {a} vs expected {b}");
}

#[test]
fn mm_reproduces_the_exact_trace_of_test_vector_1() {
    let v: Value = serde_json::from_str(include_str!("vectors/mm_reduction_case1.json")).unwrap();
    let locals: Vec<Moe> = v["local_models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let var: Vec<f64> = serde_json::from_value(m["variances"].clone()).unwrap();
            Moe::new(vec!["x1".into()], matrix(&m["gate"]), matrix(&m["experts"]), Array1::from(var)).unwrap()
        })
        .collect();
    let sizes: Vec<usize> = serde_json::from_value(v["sizes"].clone()).unwrap();
    let support = matrix(&v["support_x"]);
    let refs: Vec<&Moe> = locals.iter().collect();
    let large = LargeModel::new(&refs, &sizes, support.view()).unwrap();
    let run = reduce::mm(&large, locals[0].experts.clone(), locals[0].variances.clone(), 100, 1e-12);
    let e = &v["expected"];
    let trace: Vec<f64> = serde_json::from_value(e["objective_trace"].clone()).unwrap();
    assert_eq!(run.trace.len(), trace.len(), "iterations: {:?} vs {:?}", run.trace, trace);
    for (i, (a, b)) in run.trace.iter().zip(&trace).enumerate() {
        close(*a, *b, 1e-10, &format!("objective {i}"));
    }
    assert_non_increasing(&run.trace, "test vector");
    let experts = matrix(&e["experts"]);
    let variances: Vec<f64> = serde_json::from_value(e["variances"].clone()).unwrap();
    for ((a, b), i) in run.coef.iter().zip(experts.iter()).zip(0..) {
        close(*a, *b, 1e-9, &format!("expert entry {i}"));
    }
    for (k, (a, b)) in run.variances.iter().zip(&variances).enumerate() {
        close(*a, *b, 1e-9, &format!("variance {k}"));
    }
    let targets = &run.plan.mass;
    let first3 = matrix(&e["gate_targets_first3"]);
    for ((a, b), i) in targets.slice(ndarray::s![..3, ..]).iter().zip(first3.iter()).zip(0..) {
        close(*a, *b, 1e-9, &format!("gate target {i}"));
    }
    let gate = reduce::fit_gate(&large, &run.plan, 200);
    for ((a, b), i) in gate.iter().zip(matrix(&e["gate"]).iter()).zip(0..) {
        close(*a, *b, 1e-6, &format!("gate entry {i}"));
    }
}

fn assert_same_model(a: &Moe, b: &Moe, tol: f64, what: &str) {
    let a = align(a, b);
    for ((u, v), name) in a.param_vector().iter().zip(b.param_vector().iter()).zip(a.param_names()) {
        assert!((u - v).abs() <= tol * v.abs().max(1.0), "{what}: {name}: {u} vs {v}");
    }
}

#[test]
fn reduction_of_true_models_returns_the_truth() {
    let (sim, data) = problem(3, 2, 2_000, 31);
    let locals = vec![&sim.truth; 4];
    let r = reduce_checked(
        &locals,
        &[500, 700, 300, 500],
        data.x.view(),
        &ReductionSettings { k: 3, ..Default::default() },
    );
    assert!(r.objective_trace.last().unwrap().abs() < 1e-9, "zero transport cost: {:?}", r.objective_trace);
    assert_same_model(&r.model, &sim.truth, 1e-6, "reduced vs truth");
}

#[test]
fn reduction_with_one_machine_returns_the_local_model() {
    let (_, data) = problem(3, 2, 6_000, 32);
    let reports = local_reports(&data, 1, 3, 1_000, 7);
    let r = reduce_checked(
        &[&reports[0].model],
        &[reports[0].n],
        reports[0].support.view(),
        &ReductionSettings { k: 3, ..Default::default() },
    );
    assert_same_model(&r.model, &reports[0].model, 1e-6, "M = 1");
}

#[test]
fn reduction_is_label_permutation_invariant() {
    let (_, data) = problem(3, 2, 16_000, 33);
    let reports = local_reports(&data, 8, 3, 1_000, 8);
    let support =
        ndarray::concatenate(ndarray::Axis(0), &reports.iter().map(|r| r.support.view()).collect::<Vec<_>>()).unwrap();
    let sizes: Vec<usize> = reports.iter().map(|r| r.n).collect();
    let settings = ReductionSettings { k: 3, ..Default::default() };
    let original: Vec<&Moe> = reports.iter().map(|r| &r.model).collect();
    let base = reduce_checked(&original, &sizes, support.view(), &settings);
    let perms = [[2, 0, 1], [1, 0, 2], [0, 2, 1], [2, 1, 0]];
    let permuted: Vec<Moe> = reports.iter().enumerate().map(|(m, r)| r.model.permuted(&perms[m % 4])).collect();
    let refs: Vec<&Moe> = permuted.iter().collect();
    let again = reduce_checked(&refs, &sizes, support.view(), &settings);
    assert_same_model(&again.model, &base.model, 1e-8, "permuted locals");
}

/// Parameter error of the reduction against the truth at N total rows on 8 machines.
fn reduction_error(n: usize, seed: u64) -> f64 {
    let (sim, data) = problem(3, 2, n, seed);
    let reports = local_reports(&data, 8, 3, 2_000, seed);
    let r = distributed::aggregate(&reports, &ReductionSettings { k: 3, ..Default::default() }).unwrap();
    for (init, trace) in &r.runs {
        assert_non_increasing(trace, &format!("{init:?}"));
    }
    metrics::param_mse(&r.model, &sim.truth)
}

#[test]
fn reduction_is_consistent() {
    let small = reduction_error(20_000, 41);
    let large = reduction_error(200_000, 41);
    assert!(large < 0.3 * small, "parameter MSE at N = 2e5 ({large:.5}) is not clearly below N = 2e4 ({small:.5})");
}

#[test]
fn reduction_matches_the_global_fit_and_beats_the_naive_average() {
    let (sim, data) = problem(3, 2, 100_000, 43);
    let (train, test) = dmoe::data::sharding::train_test_split(100_000, 0.2, 43);
    let pick = |rows: &[usize]| dmoe::data::synthetic::SimData {
        x: data.x.select(ndarray::Axis(0), rows),
        y: data.y.select(ndarray::Axis(0), rows),
        z: rows.iter().map(|&r| data.z[r]).collect(),
    };
    let (tr, te) = (pick(&train), pick(&test));
    let reports = local_reports(&tr, 16, 3, 2_000, 43);
    let r = distributed::aggregate(&reports, &ReductionSettings { k: 3, ..Default::default() }).unwrap();
    for (init, trace) in &r.runs {
        assert_non_increasing(trace, &format!("{init:?}"));
    }
    let global = common::fit_checked(
        tr.x.view(),
        tr.y.view(),
        &common::names(2),
        &dmoe::numeric::em::EmSettings { k: 3, ..Default::default() },
    );
    let s = |e: &Estimate| distributed::score(e, te.x.view(), te.y.view(), Some(&te.z), Some(&sim.truth));
    let red = s(&Estimate::Moe(Box::new(r.model.clone())));
    let glob = s(&Estimate::Moe(Box::new(global.model.clone())));
    let naive = distributed::baselines(&reports, &r, &[distributed::Baseline::NaiveAverage])
        .into_iter()
        .find(|(n, _)| *n == "naive-average")
        .unwrap()
        .1;
    let naive = s(&naive);
    assert!((red.rpe - glob.rpe).abs() <= 0.1 * glob.rpe, "reduction RPE {} vs global {}", red.rpe, glob.rpe);
    assert!(red.rpe < naive.rpe, "reduction RPE {} vs naive average {}", red.rpe, naive.rpe);
}

#[test]
fn local_models_too_large_to_combine_are_an_error_not_a_panic() {
    // Two one-component local models whose variances are finite but whose pooled variance
    // (weighted variances plus the spread of the means) overflows.
    let model = |mean: f64| {
        let experts = Array2::from_shape_vec((1, 2), vec![mean, 0.0]).unwrap();
        Moe::new(vec!["x1".into()], Array2::zeros((1, 2)), experts, Array1::from(vec![1e307])).unwrap()
    };
    let (a, b) = (model(-1e154), model(1e154));
    let support = Array2::from_shape_fn((20, 1), |(i, _)| i as f64 / 10.0);
    let e = reduce::reduce(&[&a, &b], &[100, 100], support.view(), &ReductionSettings { k: 1, ..Default::default() })
        .unwrap_err();
    assert!(e.to_string().contains("the reduced model is not finite"), "{e}");
}

#[test]
fn the_pool_of_kept_machines_equals_pooling_them_afresh() {
    // Screening drops machines and pools the rest; taking their columns from the first pool (weights
    // rescaled to the kept rows) must give the pool that LargeModel::new builds from them.
    let (_, data) = problem(3, 2, 12_000, 12);
    let reports = local_reports(&data, 6, 3, 600, 12);
    let support =
        ndarray::concatenate(ndarray::Axis(0), &reports.iter().map(|r| r.support.view()).collect::<Vec<_>>()).unwrap();
    let models: Vec<&Moe> = reports.iter().map(|r| &r.model).collect();
    let sizes: Vec<usize> = (0..6).map(|m| 1_000 + 300 * m).collect();
    let all = LargeModel::new(&models, &sizes, support.view()).unwrap();
    let keep = [0, 2, 3, 5];
    let kept: Vec<&Moe> = keep.iter().map(|&m| models[m]).collect();
    let kept_sizes: Vec<usize> = keep.iter().map(|&m| sizes[m]).collect();
    let fresh = LargeModel::new(&kept, &kept_sizes, support.view()).unwrap();
    let taken = all.keeping(&keep);
    assert_eq!(taken.machine_of, fresh.machine_of);
    assert_eq!((&taken.xt, &taken.variances), (&fresh.xt, &fresh.variances));
    let arrays = [(&taken.weights, &fresh.weights), (&taken.means, &fresh.means), (&taken.experts, &fresh.experts)];
    for (a, b) in arrays {
        assert_eq!(a.dim(), b.dim());
        for (x, y) in a.iter().zip(b.iter()) {
            close(*x, *y, 1e-13, "kept pool");
        }
    }
    for (x, y) in taken.lambdas.iter().zip(&fresh.lambdas) {
        close(*x, *y, 1e-15, "lambda");
    }
    let (taken_sums, fresh_sums) = (taken.gate_log_sums.as_ref().unwrap(), fresh.gate_log_sums.as_ref().unwrap());
    assert_eq!(taken_sums.len(), fresh_sums.len());
    for (x, y) in taken_sums.iter().zip(fresh_sums) {
        close(*x, *y, 1e-12, "sum of pi log pi");
    }
    assert!(taken.at_points(&[0, 1]).gate_log_sums.is_none(), "a pool at some of the points has no log gate sums");
    for s in 0..taken.n_support() {
        close(taken.weights.row(s).sum(), 1.0, 1e-13, "weights sum to 1 at every point");
    }
}

#[test]
fn after_a_drop_the_pool_is_the_kept_machines_and_the_median_still_scores_every_report() {
    // After a drop the reduction's pool holds the 7 kept machines only; the median baseline scores
    // every report, so it is the median of a fresh pool of all 8 (here at all 200 supporting
    // points, fewer than its cap of 500).
    let mut reports = eight_machines(23);
    reports[3].model.experts.mapv_inplace(|b| -4.0 * b + 3.0);
    reports[3].model.variances.mapv_inplace(|v| 30.0 * v);
    let (models, sizes, all) = pooled(&reports);
    let few = all.slice(ndarray::s![..200, ..]);
    let r = reduce_checked(&models, &sizes, few, &ReductionSettings { k: 3, ..Default::default() });
    assert_eq!((r.flagged.clone(), r.dropped), (vec![3], true), "scores {:?}", r.scores);
    assert_eq!((r.large.n_experts(), r.large.lambdas.len(), r.large.n_support()), (21, 7, 200), "the kept pool");
    let every = LargeModel::new(&models, &sizes, few).unwrap();
    let expected = reduce::baselines::median_index(&every, &models);
    // The kept pool would name another median: the test tells the two pools apart.
    assert_ne!(reduce::baselines::median_index(&r.large, &models), expected, "a setting where the pool matters");
    let got = distributed::baselines(&reports, &r, &[distributed::Baseline::Median]);
    let [(name, Estimate::Moe(median))] = got.as_slice() else { panic!("one K-component median") };
    assert_eq!((*name, median.as_ref()), ("median", models[expected]));
}

/// Local reports of 8 machines on 16,000 rows (K = 3, d = 2), 1,000 supporting rows in all.
fn eight_machines(seed: u64) -> Vec<distributed::LocalReport> {
    let (_, data) = problem(3, 2, 16_000, seed);
    local_reports(&data, 8, 3, 1_000, seed)
}

/// The reports' models, sizes and supporting rows, as `reduce` takes them.
fn pooled(reports: &[distributed::LocalReport]) -> (Vec<&Moe>, Vec<usize>, Array2<f64>) {
    let support =
        ndarray::concatenate(ndarray::Axis(0), &reports.iter().map(|r| r.support.view()).collect::<Vec<_>>()).unwrap();
    (reports.iter().map(|r| &r.model).collect(), reports.iter().map(|r| r.n).collect(), support)
}

#[test]
fn the_work_of_a_reduction_counts_every_plan_of_every_run() {
    // With at most START_POINTS supporting points every run is on all of them; with more, the starts
    // (and the best one's continuation) run on START_POINTS points and the last run, the
    // refinement, on all of them. The work is points x large experts x plans (trace length).
    let reports = eight_machines(21);
    let (models, sizes, all) = pooled(&reports);
    let settings = ReductionSettings { k: 3, outliers: reduce::OutlierPolicy::Keep, ..Default::default() };
    let l = 8 * 3;
    let few = all.slice(ndarray::s![..reduce::START_POINTS - 50, ..]);
    let r = reduce_checked(&models, &sizes, few, &settings);
    let plans: usize = r.runs.iter().map(|(_, t)| t.len()).sum();
    assert_eq!(r.work, (few.nrows() * l * plans) as u64);
    assert_eq!(r.pooled, (few.nrows() * l * (few.ncols() + 1)) as u64, "the pool's size: S x L x (d+1)");
    let r = reduce_checked(&models, &sizes, all.view(), &settings);
    let (last, starts) = r.runs.split_last().unwrap();
    assert_eq!(r.objective_trace, last.1, "the retained trace is the refinement on every point");
    let start_plans: usize = starts.iter().map(|(_, t)| t.len()).sum();
    assert_eq!(r.work, (reduce::START_POINTS * l * start_plans + all.nrows() * l * last.1.len()) as u64);
    assert!(starts.len() >= 3, "three starts, then the best one's continuation");
    assert!(starts[..3].iter().all(|(_, t)| t.len() <= reduce::START_ITERATIONS + 1), "starts are capped");
}

#[test]
fn screening_costs_no_mm_work_and_changes_nothing_when_no_machine_is_dropped() {
    // The screening scores the local models against the best start's experts, their gate fitted to
    // their plan on every supporting point, which is the refinement's first plan: with clean
    // machines nothing is dropped and the reduction is, bit for bit, the one without screening.
    let reports = eight_machines(22);
    let (models, sizes, all) = pooled(&reports);
    let settings = |outliers| ReductionSettings { k: 3, outliers, ..Default::default() };
    let plain = reduce_checked(&models, &sizes, all.view(), &settings(reduce::OutlierPolicy::Keep));
    let screened = reduce_checked(&models, &sizes, all.view(), &settings(reduce::OutlierPolicy::Drop));
    assert!(screened.flagged.is_empty() && !screened.dropped, "clean machines: {:?}", screened.scores);
    assert_eq!(screened.scores.len(), 8, "every machine is scored");
    assert_eq!(screened.runs, plain.runs);
    assert_eq!(screened.model, plain.model);
    assert_eq!(screened.work, plain.work, "the same plans");
}

#[test]
fn after_a_drop_mm_goes_on_from_the_best_start_on_the_kept_machines() {
    // Machine 3 reports experts far from everyone's: it is dropped, and MM continues from the best
    // start's experts on the pool of the 7 others (on the start points, then on every point). It
    // ends where a reduction of the 7 alone ends.
    let reports = eight_machines(23);
    let (mut models, sizes, all) = pooled(&reports);
    let mut wild = models[3].clone();
    wild.experts.mapv_inplace(|b| -4.0 * b + 3.0);
    wild.variances.mapv_inplace(|v| 30.0 * v);
    models[3] = &wild;
    let settings = ReductionSettings { k: 3, ..Default::default() };
    let r = reduce_checked(&models, &sizes, all.view(), &settings);
    assert_eq!((r.flagged.clone(), r.dropped), (vec![3], true), "scores {:?}", r.scores);
    let (s, start_points) = (all.nrows(), reduce::START_POINTS);
    let [starts @ .., warm, last] = r.runs.as_slice() else { panic!("starts, then two runs on the kept pool") };
    assert_eq!(r.objective_trace, last.1, "the retained trace is the refinement on the kept pool");
    let start_plans: usize = starts.iter().map(|(_, t)| t.len()).sum();
    let expected = start_points * 24 * start_plans + s * 24 + start_points * 21 * warm.1.len() + s * 21 * last.1.len();
    assert_eq!(r.work, expected as u64, "starts, the screening plan, then the kept pool's two runs");
    let seven: Vec<&Moe> = (0..8).filter(|&m| m != 3).map(|m| models[m]).collect();
    let seven_sizes: Vec<usize> = (0..8).filter(|&m| m != 3).map(|m| sizes[m]).collect();
    let alone = reduce_checked(
        &seven,
        &seven_sizes,
        all.view(),
        &ReductionSettings { outliers: reduce::OutlierPolicy::Keep, ..settings.clone() },
    );
    assert_same_model(&r.model, &alone.model, 1e-6, "dropped vs the 7 alone");
    // With at most START_POINTS supporting points there are no separate start points: the screening
    // uses the best start's own plan and MM goes on once, on all points, for the kept machines.
    let few = all.slice(ndarray::s![..start_points - 50, ..]);
    let r = reduce_checked(&models, &sizes, few, &settings);
    assert_eq!((r.flagged.clone(), r.dropped), (vec![3], true), "few points: scores {:?}", r.scores);
    let [starts @ .., kept] = r.runs.as_slice() else { panic!("starts, then one run on the kept pool") };
    let start_plans: usize = starts.iter().map(|(_, t)| t.len()).sum();
    assert_eq!(r.work, (few.nrows() * (24 * start_plans + 21 * kept.1.len())) as u64);
    assert_eq!(r.objective_trace, kept.1);
    // `flag` screens the same way but reduces with every machine: exactly the `keep` reduction.
    let policy = |outliers| ReductionSettings { outliers, ..settings.clone() };
    let flag = reduce_checked(&models, &sizes, all.view(), &policy(reduce::OutlierPolicy::Flag));
    let keep = reduce_checked(&models, &sizes, all.view(), &policy(reduce::OutlierPolicy::Keep));
    assert_eq!((flag.flagged.clone(), flag.dropped), (vec![3], false));
    assert_eq!(flag.model, keep.model);
    assert_eq!(flag.runs, keep.runs);
}
