//! Bad input never panics and never yields a NaN model: each case returns its own error.

mod common;

use common::{names, problem};
use dmoe::numeric::em::{self, EmError, EmSettings};
use ndarray::{Array1, Array2, s};

fn fit_err(x: &Array2<f64>, y: &Array1<f64>, names: &[String], k: usize) -> EmError {
    em::fit(x.view(), y.view(), names, "y", &EmSettings { k, ..EmSettings::default() })
        .expect_err("bad input must be an error")
}

#[test]
fn fewer_rows_than_parameters_is_an_error() {
    let (_, data) = problem(3, 2, 17, 1);
    let e = fit_err(&data.x, &data.y, &names(2), 3);
    assert_eq!(e, EmError::TooFewRows { rows: 17, k: 3, d: 2, params: 18 });
    assert!(e.to_string().contains("at least 18 rows"), "{e}");
}

#[test]
fn constant_column_is_an_error() {
    let (_, mut data) = problem(2, 3, 500, 2);
    data.x.column_mut(1).fill(2.5);
    assert_eq!(fit_err(&data.x, &data.y, &names(3), 2), EmError::ConstantColumn("x2".into()));
}

#[test]
fn duplicated_column_is_an_error() {
    let (_, mut data) = problem(2, 3, 500, 3);
    let copy = data.x.column(0).mapv(|v| 3.0 * v - 1.0);
    data.x.column_mut(2).assign(&copy);
    match fit_err(&data.x, &data.y, &names(3), 2) {
        EmError::DuplicateColumns(a, b, _) => assert_eq!((a.as_str(), b.as_str()), ("x1", "x3")),
        other => panic!("expected DuplicateColumns, got {other}"),
    }
}

#[test]
fn linear_combination_of_columns_is_an_error() {
    let (_, mut data) = problem(2, 3, 500, 4);
    let sum = &data.x.column(0) + &data.x.column(1);
    data.x.column_mut(2).assign(&sum);
    assert_eq!(fit_err(&data.x, &data.y, &names(3), 2), EmError::CollinearColumn("x3".into()));
}

#[test]
fn nan_value_is_an_error_naming_row_and_column() {
    let (_, mut data) = problem(2, 2, 500, 5);
    data.x[[41, 1]] = f64::NAN;
    let e = fit_err(&data.x, &data.y, &names(2), 2);
    assert!(matches!(&e, EmError::NonFinite { row: 42, column, .. } if column == "x2"), "{e}");
}

#[test]
fn infinite_value_is_an_error_naming_row_and_column() {
    let (_, mut data) = problem(2, 2, 500, 6);
    data.y[7] = f64::INFINITY;
    let e = fit_err(&data.x, &data.y, &names(2), 2);
    assert!(matches!(&e, EmError::NonFinite { row: 8, column, .. } if column == "y"), "{e}");
}

#[test]
fn zero_components_is_an_error() {
    let (_, data) = problem(2, 2, 500, 7);
    assert_eq!(fit_err(&data.x, &data.y, &names(2), 0), EmError::NoComponents);
}

#[test]
fn constant_target_is_an_error() {
    let (_, data) = problem(2, 2, 500, 8);
    assert_eq!(fit_err(&data.x, &Array1::from_elem(500, 4.0), &names(2), 2), EmError::ConstantTarget("y".into()));
}

#[test]
fn no_feature_is_an_error() {
    let (_, data) = problem(2, 2, 500, 9);
    let x = data.x.slice(s![.., ..0]).to_owned();
    assert_eq!(fit_err(&x, &data.y, &[], 2), EmError::NoFeatures);
}

#[test]
fn out_of_range_setting_is_an_error_naming_it() {
    let (_, data) = problem(2, 2, 500, 10);
    let e = em::fit(
        data.x.view(),
        data.y.view(),
        &names(2),
        "y",
        &EmSettings { k: 2, restarts: 0, ..EmSettings::default() },
    )
    .unwrap_err();
    assert!(e.to_string().contains("setting `restarts`: expected a whole number in [1, 1000], got 0"), "{e}");
    let settings = EmSettings { k: 2, max_iter: usize::MAX, ..EmSettings::default() };
    let e = em::fit(data.x.view(), data.y.view(), &names(2), "y", &settings).unwrap_err();
    assert!(e.to_string().contains("setting `max_iter`: expected a whole number in [1, 1000000]"), "{e}");
    let settings = EmSettings { k: 2, subset_rows: 999, ..EmSettings::default() };
    let e = em::fit(data.x.view(), data.y.view(), &names(2), "y", &settings).unwrap_err();
    assert!(
        e.to_string().contains("setting `subset_rows`: expected 0 (every row) or a whole number >= 1000, got 999"),
        "{e}"
    );
}

#[test]
fn values_too_large_to_standardise_are_an_error() {
    let (_, data) = problem(2, 2, 500, 11);
    let y = data.y.mapv(|v| v * 1e160);
    assert_eq!(fit_err(&data.x, &y, &names(2), 2), EmError::TooLarge("y".into()));
    let mut x = data.x.clone();
    x.column_mut(0).mapv_inplace(|v| v * 1e160);
    assert_eq!(fit_err(&x, &data.y, &names(2), 2), EmError::TooLarge("x1".into()));
}
