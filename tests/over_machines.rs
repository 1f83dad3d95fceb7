//! Exact EM over machines (`em::over_machines`): the same iterates as the single-machine EM from the
//! same start, plain or SQUAREM-accelerated, whatever the number of machines; the standardisation
//! from combined moments; the round accounting; bad input. Federated averaging (`em::fedavg`): one
//! machine is plain EM, equal shards average to their common model, and the rounds stop on the
//! tolerance.

mod common;

use common::{names, problem};
use dmoe::numeric::em::fedavg::{self, FedAvgSettings};
use dmoe::numeric::em::over_machines::{self, Moments};
use dmoe::numeric::em::{self, EmError, EmSettings};
use dmoe::numeric::model::Moe;
use ndarray::{Array1, Array2, s};

/// A rough start: 2 EM iterations of one start on the first 10 % of the rows, so that the
/// iterations compared below still move the parameters a lot.
fn rough_start(x: &Array2<f64>, y: &Array1<f64>, k: usize) -> Moe {
    let m = x.nrows() / 10;
    let settings = EmSettings { k, restarts: 1, warmup_iter: 0, max_iter: 2, seed: 3, ..EmSettings::default() };
    em::fit(x.slice(s![..m, ..]), y.slice(s![..m]), &names(x.ncols()), "y", &settings).expect("a start").model
}

/// The largest relative difference between two models' parameters, each block (gate, experts,
/// variances) relative to its largest entry.
fn relative_gap(a: &Moe, b: &Moe) -> f64 {
    let block = |x: ndarray::ArrayViewD<f64>, y: ndarray::ArrayViewD<f64>| {
        let scale = y.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
        x.iter().zip(y.iter()).map(|(p, q)| (p - q).abs() / scale).fold(0.0, f64::max)
    };
    block(a.gate.view().into_dyn(), b.gate.view().into_dyn())
        .max(block(a.experts.view().into_dyn(), b.experts.view().into_dyn()))
        .max(block(a.variances.view().into_dyn(), b.variances.view().into_dyn()))
}

/// Exact EM over `machines` contiguous shards for `settings.max_iter` iterations: the model after
/// each (index 0: the start).
fn over_machines_iterates(
    x: &Array2<f64>,
    y: &Array1<f64>,
    machines: usize,
    start: &Moe,
    settings: &EmSettings,
) -> Vec<Moe> {
    let n = x.nrows();
    let cuts: Vec<usize> = (0..=machines).map(|m| m * n / machines).collect();
    let shards: Vec<_> = cuts.windows(2).map(|w| (x.slice(s![w[0]..w[1], ..]), y.slice(s![w[0]..w[1]]))).collect();
    over_machines::fit(&shards, &names(x.ncols()), "y", start, settings).expect("valid data").models
}

/// For K = 3, d = 2 and K = 5, d = 20, on M = 1, 4 and 16 machines: every iterate of plain exact EM
/// over machines (`accelerate: false`) equals the single-machine plain EM's (`em::iterates`, with
/// the exact Hessian) from the same start, within 1e-9 relative.
#[test]
fn em_over_machines_equals_single_machine_em_iteration_by_iteration() {
    for (k, d, n, iterations) in [(3, 2, 4_000, 25), (5, 20, 8_000, 12)] {
        let (_, data) = problem(k, d, n, 21);
        let start = rough_start(&data.x, &data.y, k);
        let settings = EmSettings { k, tol: 0.0, max_iter: iterations, accelerate: false, ..EmSettings::default() };
        let single = em::iterates(data.x.view(), data.y.view(), &names(d), "y", &start, &settings, iterations).unwrap();
        assert_eq!(single.len(), iterations + 1, "K = {k}: every single-machine step is finite");
        let moved = relative_gap(&single[iterations], &single[0]);
        assert!(moved > 1e-2, "K = {k}: the iterations move the parameters ({moved:.2e})");
        for machines in [1, 4, 16] {
            let models = over_machines_iterates(&data.x, &data.y, machines, &start, &settings);
            assert_eq!(models.len(), single.len(), "K = {k}, M = {machines}: as many iterates");
            for (t, (a, b)) in models.iter().zip(&single).enumerate() {
                let gap = relative_gap(a, b);
                assert!(gap <= 1e-9, "K = {k}, M = {machines}, iteration {t}: relative gap {gap:.2e}");
            }
        }
    }
}

/// With acceleration, exact EM over machines runs the single-machine SQUAREM cycle
/// (`Standardised::accelerated`): capped at every t, its last model equals the single-machine one
/// within 1e-9 relative, with as many points on its trace; the jumps make it differ from plain EM.
/// Its rounds are the standardisation, the start's E-step, one per iteration and per halving, one
/// per kept jump and three per lost one; the K = 5 run both keeps and loses jumps, so the fallback
/// is covered.
#[test]
fn accelerated_em_over_machines_equals_single_machine_squarem() {
    for (k, d, n, iterations) in [(3, 2, 4_000, 12), (5, 20, 8_000, 10)] {
        let (_, data) = problem(k, d, n, 21);
        let start = rough_start(&data.x, &data.y, k);
        let single = em::Standardised::new(data.x.view(), data.y.view(), &names(d), "y").unwrap();
        let floor = EmSettings::default().variance_floor;
        for machines in [1, 4, 16] {
            for t in 1..=iterations {
                let settings = EmSettings { k, tol: 0.0, max_iter: t, accelerate: true, ..EmSettings::default() };
                let models = over_machines_iterates(&data.x, &data.y, machines, &start, &settings);
                let (expected, trace) = single.accelerated(&start, floor, t).unwrap();
                let gap = relative_gap(models.last().unwrap(), &expected);
                assert!(gap <= 1e-9, "K = {k}, M = {machines}, cap {t}: relative gap {gap:.2e}");
                assert_eq!(models.len(), trace.len(), "K = {k}, M = {machines}, cap {t}: as many points");
            }
        }
        let settings = EmSettings { k, tol: 0.0, max_iter: iterations, ..EmSettings::default() };
        let shards: Vec<_> = (0..4)
            .map(|m| (data.x.slice(s![m * n / 4..(m + 1) * n / 4, ..]), data.y.slice(s![m * n / 4..(m + 1) * n / 4])))
            .collect();
        let run = over_machines::fit(&shards, &names(d), "y", &start, &settings).unwrap();
        let t = run.tally;
        let expected_rounds = 2 + iterations + t.halvings + t.jumps_kept + 3 * t.jumps_lost;
        assert_eq!(run.rounds, expected_rounds, "K = {k}: rounds of {t:?}");
        assert!(t.jumps_kept >= 1, "K = {k}: a jump is kept ({t:?})");
        if k == 5 {
            assert!(t.jumps_lost >= 1, "K = 5: a jump loses ({t:?})");
        }
        let plain = em::iterates(data.x.view(), data.y.view(), &names(d), "y", &start, &settings, iterations).unwrap();
        let apart = relative_gap(run.model(), plain.last().unwrap());
        assert!(apart > 1e-6, "K = {k}: SQUAREM's jumps leave plain EM's path ({apart:.2e})");
    }
}

/// The driver `over_machines::fit` stops on the tolerance like the single-machine EM and its trace
/// never decreases; its log-likelihood is that of its model on all the rows.
#[test]
fn em_over_machines_converges_with_a_monotone_trace() {
    let (_, data) = problem(3, 2, 3_000, 5);
    let start = rough_start(&data.x, &data.y, 3);
    let settings = EmSettings { k: 3, tol: 1e-8, max_iter: 500, ..EmSettings::default() };
    let shards: Vec<_> = (0..5)
        .map(|m| (data.x.slice(s![m * 600..(m + 1) * 600, ..]), data.y.slice(s![m * 600..(m + 1) * 600])))
        .collect();
    let fit = over_machines::fit(&shards, &names(2), "y", &start, &settings).unwrap();
    assert!(fit.converged, "converges within 500 iterations");
    common::assert_monotone(&fit.trace, "EM over machines");
    let ll = fit.model().loglik(data.x.view(), data.y.view());
    let last = *fit.trace.last().unwrap();
    assert!((ll - last).abs() <= 1e-8 * last.abs(), "trace {last} vs the model's log-likelihood {ll}");
}

/// Moments combined over shards equal the moments of the union (Chan et al.'s update is exact up
/// to rounding), empty shards included.
#[test]
fn combined_moments_equal_the_moments_of_the_union() {
    let (_, data) = problem(2, 3, 1_000, 8);
    let whole = Moments::of(data.x.view(), data.y.view());
    let cuts = [0, 0, 7, 300, 301, 1_000, 1_000];
    let parts: Vec<Moments> =
        cuts.windows(2).map(|w| Moments::of(data.x.slice(s![w[0]..w[1], ..]), data.y.slice(s![w[0]..w[1]]))).collect();
    let combined = Moments::combine(&parts);
    assert_eq!(combined.n, whole.n);
    for (a, b) in
        combined.mean.iter().chain(combined.comoment.iter()).zip(whole.mean.iter().chain(whole.comoment.iter()))
    {
        assert!((a - b).abs() <= 1e-10 * b.abs().max(1.0), "{a} vs {b}");
    }
}

/// A column that is constant over the union (though not on every shard's own scale) is the same
/// error as for the single-machine fit, and so are too few rows.
#[test]
fn bad_data_over_machines_gives_the_single_machine_error() {
    let (_, mut data) = problem(2, 2, 400, 4);
    data.x.column_mut(1).fill(3.0);
    let start = Moe::new(names(2), Array2::zeros((2, 3)), Array2::ones((2, 3)), Array1::ones(2)).unwrap();
    let shards = [
        (data.x.slice(s![..200, ..]), data.y.slice(s![..200])),
        (data.x.slice(s![200.., ..]), data.y.slice(s![200..])),
    ];
    let err = over_machines::fit(&shards, &names(2), "y", &start, &EmSettings::default()).unwrap_err();
    assert_eq!(err, EmError::ConstantColumn("x2".into()));
    let few = [(data.x.slice(s![..5, ..]), data.y.slice(s![..5]))];
    let err = over_machines::fit(&few, &names(2), "y", &start, &EmSettings::default()).unwrap_err();
    assert!(matches!(err, EmError::TooFewRows { rows: 5, .. }), "{err:?}");
}

/// One machine: a round of federated averaging is `local_iterations` plain EM iterations, bit for
/// bit. Four machines holding the same rows: the average is each one's model (1e-12), so the rounds
/// are plain EM too, and the run stops on the tolerance.
#[test]
fn federated_averaging_of_one_machine_or_of_equal_shards_is_plain_em() {
    let (_, data) = problem(3, 2, 2_000, 9);
    let start = rough_start(&data.x, &data.y, 3);
    let settings = FedAvgSettings { local_iterations: 5, rounds: 1, tol: 0.0, variance_floor: 1e-6 };
    let one = [(data.x.view(), data.y.view())];
    let fit = fedavg::fit(&one, &names(2), "y", &start, &settings).unwrap();
    let em_settings = EmSettings { variance_floor: 1e-6, ..EmSettings::default() };
    let plain = em::iterates(data.x.view(), data.y.view(), &names(2), "y", &start, &em_settings, 5).unwrap();
    assert_eq!(fit.model, plain[5], "one machine, one round: five EM iterations");
    let same = vec![(data.x.view(), data.y.view()); 4];
    let fit4 = fedavg::fit(&same, &names(2), "y", &start, &settings).unwrap();
    assert!(relative_gap(&fit4.model, &plain[5]) <= 1e-12, "equal shards average to their model");
    let long = FedAvgSettings { rounds: 200, tol: 1e-8, ..settings };
    let run = fedavg::fit(&same, &names(2), "y", &start, &long).unwrap();
    assert!(run.converged && run.rounds < 200, "{} rounds", run.rounds);
    common::assert_monotone(&run.trace, "federated averaging of equal shards");
}
