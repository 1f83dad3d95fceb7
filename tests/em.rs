//! EM: recovery of a known truth, the reference maximum of the shared test vector, monotone
//! likelihood, determinism, and the gate's Newton derivatives.

mod common;

use common::{fit_checked, names, problem};
use dmoe::numeric::em::EmSettings;
use dmoe::numeric::gate;
use dmoe::numeric::information::standard_errors;
use dmoe::numeric::matching::align;
use dmoe::numeric::model::Moe;
use ndarray::{Array1, Array2, s};

/// K = 3, d = 2, N = 20,000: after label matching, every parameter is within 4.5 standard errors of
/// the truth. The standard errors come from the empirical Fisher information at the fitted model
/// (`information::standard_errors`); the MLE is asymptotically normal around the truth with that
/// spread, so with 18 parameters a Bonferroni bound gives P(any |error| > 4.5 SE) < 18 * 6.8e-6.
#[test]
fn em_recovers_known_truth_within_standard_errors() {
    let (sim, data) = problem(3, 2, 20_000, 11);
    let fit = fit_checked(data.x.view(), data.y.view(), &names(2), &EmSettings { k: 3, ..EmSettings::default() });
    assert!(fit.summary.converged);
    let fitted = align(&fit.model, &sim.truth);
    let se = standard_errors(&fitted, data.x.view(), data.y.view()).expect("information is invertible");
    let (est, truth) = (fitted.param_vector(), sim.truth.param_vector());
    for (j, name) in fitted.param_names().iter().enumerate() {
        let z = (est[j] - truth[j]) / se[j];
        assert!(z.abs() < 4.5, "{name}: estimate {} vs truth {} (se {}, z = {z:.2})", est[j], truth[j], se[j]);
    }
}

fn read_vector_csv() -> (Array2<f64>, Array1<f64>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/em_case1.csv");
    let ds = dmoe::data::load_dataset(std::path::Path::new(path), "y", None).unwrap();
    (ds.x, ds.y)
}

/// The shared test vector: EM with default settings reaches the maximum found by two independent
/// implementations (to 0.01, as the vector's note says) and the same parameters.
#[test]
fn em_reaches_the_reference_maximum_of_test_vector_1() {
    let expected: serde_json::Value = serde_json::from_str(include_str!("vectors/em_case1_expected.json")).unwrap();
    let max = expected["max_loglik"].as_f64().unwrap();
    let (x, y) = read_vector_csv();
    let fit = fit_checked(x.view(), y.view(), &names(2), &EmSettings { k: 3, ..EmSettings::default() });
    let ll = fit.summary.loglik;
    assert!(ll >= max - 0.01, "log-likelihood {ll} is below the reference maximum {max}");
    let mle = &expected["mle_one_labelling"];
    let reference = Moe::from_json(
        &serde_json::json!({"k": 3, "d": 2, "features": mle["features"], "gate": mle["gate"],
            "experts": mle["experts"], "variances": mle["variances"]})
        .to_string(),
        "em_case1_expected.json",
    )
    .unwrap();
    assert!((reference.loglik(x.view(), y.view()) - max).abs() < 0.01, "the vector is self-consistent");
    let fitted = align(&fit.model, &reference);
    for ((a, b), name) in fitted.param_vector().iter().zip(reference.param_vector().iter()).zip(fitted.param_names()) {
        assert!((a - b).abs() < 0.02 * b.abs().max(1.0), "{name}: {a} vs reference {b}");
    }
}

/// Monotone log-likelihood across shapes, including K = 1 and a larger K and d (the check itself is
/// in `fit_checked`, which every EM test uses).
#[test]
fn em_loglik_never_decreases() {
    for (k, d, n, seed) in [(1, 2, 2_000, 1), (2, 1, 3_000, 2), (4, 3, 5_000, 3), (5, 8, 8_000, 4)] {
        let (_, data) = problem(k, d, n, seed);
        let s = EmSettings { k, restarts: 3, max_iter: 300, ..EmSettings::default() };
        let fit = fit_checked(data.x.view(), data.y.view(), &names(d), &s);
        assert!(fit.trace.len() >= 2, "K = {k}: at least one iteration");
    }
}

/// Same data and seed, same model to the last bit; another seed still reaches the same maximum.
#[test]
fn em_is_deterministic_for_a_seed() {
    let (_, data) = problem(3, 2, 4_000, 5);
    let s = EmSettings { k: 3, seed: 42, ..EmSettings::default() };
    let a = fit_checked(data.x.view(), data.y.view(), &names(2), &s);
    let b = fit_checked(data.x.view(), data.y.view(), &names(2), &s);
    assert_eq!(a.model.param_vector(), b.model.param_vector());
    assert_eq!(a.trace, b.trace);
}

/// Hitting the iteration cap is a status, not an error: a model is returned, flagged not converged.
#[test]
fn em_reports_non_convergence_as_a_status() {
    let (_, data) = problem(3, 2, 4_000, 6);
    let s = EmSettings { k: 3, restarts: 1, warmup_iter: 0, max_iter: 2, tol: 0.0, ..EmSettings::default() };
    let fit = fit_checked(data.x.view(), data.y.view(), &names(2), &s);
    let summary = fit.summary;
    assert!(!summary.converged);
    assert_eq!(summary.iterations, 2);
    assert!(summary.loglik.is_finite());
}

/// The gate's analytic gradient and Hessian agree with central finite differences of the objective.
#[test]
fn gate_gradient_and_hessian_match_finite_differences() {
    let (n, p, k) = (200, 3, 4);
    let mut state = 1234567u64;
    let mut unif = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut xt = Array2::from_shape_fn((n, p), |_| unif() * 4.0 - 2.0);
    xt.column_mut(0).fill(1.0);
    let mut targets = Array2::from_shape_fn((n, k), |_| unif());
    for mut r in targets.outer_iter_mut() {
        let sum = r.sum();
        r /= sum;
    }
    let mut a = Array2::from_shape_fn((k, p), |_| unif() - 0.5);
    a.row_mut(k - 1).fill(0.0);
    let free = (k - 1) * p;
    let at = |theta: &Array1<f64>| {
        let mut g = Array2::<f64>::zeros((k, p));
        for i in 0..free {
            g[[i / p, i % p]] = theta[i];
        }
        g
    };
    let theta: Array1<f64> = a.slice(s![..k - 1, ..]).iter().copied().collect();
    let pi = gate::log_probs(xt.view(), &a).mapv(f64::exp);
    let g = gate::gradient(xt.view(), targets.view(), pi.view());
    let h = gate::hessian(xt.view(), pi.view());
    let eps = 1e-5;
    for i in 0..free {
        let (mut up, mut dn) = (theta.clone(), theta.clone());
        up[i] += eps;
        dn[i] -= eps;
        let fd = (gate::objective(xt.view(), targets.view(), &at(&up))
            - gate::objective(xt.view(), targets.view(), &at(&dn)))
            / (2.0 * eps);
        assert!((fd - g[i]).abs() < 1e-5 * g[i].abs().max(1.0), "gradient {i}: {} vs {fd}", g[i]);
        let gu = gate::gradient(xt.view(), targets.view(), gate::log_probs(xt.view(), &at(&up)).mapv(f64::exp).view());
        let gd = gate::gradient(xt.view(), targets.view(), gate::log_probs(xt.view(), &at(&dn)).mapv(f64::exp).view());
        for j in 0..free {
            let fdh = (gu[j] - gd[j]) / (2.0 * eps);
            assert!(
                (fdh - h[[j, i]]).abs() < 1e-5 * h[[j, i]].abs().max(1.0),
                "hessian ({j},{i}): {} vs {fdh}",
                h[[j, i]]
            );
        }
    }
}

/// A Newton step with halving never lowers the gate objective, and repeated steps reach a point
/// where the gradient vanishes.
#[test]
fn gate_newton_converges_to_a_stationary_point() {
    let (sim, data) = problem(3, 2, 3_000, 8);
    let xt = dmoe::numeric::linalg::with_intercept(data.x.view());
    let targets = sim.truth.posterior(data.x.view(), data.y.view());
    let (a, _) = gate::fit(xt.view(), targets.view(), &Array2::zeros((3, 3)), 50, 0.0);
    let pi = gate::log_probs(xt.view(), &a).mapv(f64::exp);
    let g = gate::gradient(xt.view(), targets.view(), pi.view());
    assert!(g.iter().all(|v| v.abs() < 1e-6), "gradient at the fitted gate: {g}");
}

/// With more rows than `subset_rows`, the warm-ups run on a seeded subset and the gate's curvature
/// comes from it: the fit is still reproducible, monotone, and reaches the same maximum as a fit on
/// every row (the gradient is exact, so the fixed points are the same), with or without SQUAREM.
#[test]
fn a_fit_on_a_subset_reaches_the_maximum_of_a_fit_on_every_row() {
    let (_, data) = problem(3, 2, 12_000, 8);
    let base =
        EmSettings { k: 3, restarts: 2, tol: 1e-12, max_iter: 3000, subset_rows: 2_000, ..EmSettings::default() };
    let sub = fit_checked(data.x.view(), data.y.view(), &names(2), &base);
    let again = fit_checked(data.x.view(), data.y.view(), &names(2), &base);
    assert_eq!(sub.model.param_vector(), again.model.param_vector(), "same seed, same subset, same fit");
    let every = fit_checked(data.x.view(), data.y.view(), &names(2), &EmSettings { subset_rows: 0, ..base.clone() });
    let plain = fit_checked(data.x.view(), data.y.view(), &names(2), &EmSettings { accelerate: false, ..base.clone() });
    for (what, other) in [("every row", &every), ("plain EM", &plain)] {
        let gap = (sub.summary.loglik - other.summary.loglik).abs();
        assert!(
            gap < 1e-5 * sub.summary.loglik.abs(),
            "{what}: log-likelihood {} vs {}",
            other.summary.loglik,
            sub.summary.loglik
        );
        let (a, b) = (align(&other.model, &sub.model), &sub.model);
        for (x, y) in a.param_vector().iter().zip(b.param_vector().iter()) {
            assert!((x - y).abs() < 1e-3 * (1.0 + y.abs()), "{what}: parameter {x} vs {y}");
        }
    }
    // The work: 2,000 rows per warm-up pass, 12,000 per pass of the retained run (a pass is an
    // E-step, one per iteration and one at the start of each run).
    let s = EmSettings {
        k: 3,
        restarts: 2,
        warmup_iter: 5,
        max_iter: 8,
        tol: 0.0,
        accelerate: false,
        subset_rows: 2_000,
        ..EmSettings::default()
    };
    let fit = fit_checked(data.x.view(), data.y.view(), &names(2), &s);
    assert_eq!(fit.summary.iterations, 3, "max_iter counts the retained start's 5 warm-up iterations");
    assert_eq!(fit.summary.row_iterations, 2_000 * 2 * (5 + 1) + 12_000 * (3 + 1));
}

/// `threads` splits every pass over the rows across threads, on a fixed partition into blocks whose
/// sums are added in block order: the fit is identical, bit for bit, for any number of threads.
#[test]
fn a_fit_is_the_same_for_any_number_of_threads() {
    let n = 2 * dmoe::numeric::blocks::BLOCK_ROWS + 1_234;
    let (_, data) = problem(3, 2, n, 9);
    let base = EmSettings { k: 3, restarts: 2, subset_rows: 20_000, ..EmSettings::default() };
    let one = fit_checked(data.x.view(), data.y.view(), &names(2), &base);
    for threads in [2, 3, 5] {
        let many = fit_checked(data.x.view(), data.y.view(), &names(2), &EmSettings { threads, ..base.clone() });
        assert_eq!(one.model.param_vector(), many.model.param_vector(), "{threads} threads");
        assert_eq!(one.trace, many.trace, "{threads} threads");
    }
}
