//! The model file: documented fields, and a round trip that predicts identically.

mod common;

use common::{fit_checked, names, problem};
use dmoe::numeric::em::EmSettings;
use dmoe::numeric::model::Moe;

#[test]
fn model_json_round_trip_predicts_identically() {
    let (_, data) = problem(3, 2, 3_000, 21);
    let fit = fit_checked(data.x.view(), data.y.view(), &names(2), &EmSettings { k: 3, ..EmSettings::default() });
    let back = Moe::from_json(&fit.model.to_json(), "memory").unwrap();
    assert_eq!(back, fit.model);
    assert_eq!(back.predict(data.x.view()), fit.model.predict(data.x.view()));
    assert_eq!(back.posterior(data.x.view(), data.y.view()), fit.model.posterior(data.x.view(), data.y.view()));
}

#[test]
fn model_json_has_the_documented_fields() {
    let (_, data) = problem(3, 2, 3_000, 22);
    let fit = fit_checked(data.x.view(), data.y.view(), &names(2), &EmSettings { k: 3, ..EmSettings::default() });
    let v: serde_json::Value = serde_json::from_str(&fit.model.to_json()).unwrap();
    assert_eq!(v["k"], 3);
    assert_eq!(v["d"], 2);
    assert_eq!(v["features"], serde_json::json!(["x1", "x2"]));
    let gate = v["gate"].as_array().unwrap();
    assert_eq!(gate.len(), 3);
    assert!(gate.iter().all(|r| r.as_array().unwrap().len() == 3));
    assert_eq!(gate[2], serde_json::json!([0.0, 0.0, 0.0]), "last gate row is the zero reference");
    assert_eq!(v["experts"].as_array().unwrap().len(), 3);
    assert_eq!(v["variances"].as_array().unwrap().len(), 3);
    let f = &v["fit"];
    assert!(f["loglik"].as_f64().unwrap().is_finite());
    assert!(f["iterations"].as_u64().unwrap() >= 1);
    assert!(f["converged"].is_boolean());
    assert!(f["cpu_seconds"].as_f64().unwrap() > 0.0);
    // The stored log-likelihood is the model's log-likelihood on the fitted rows.
    let ll = fit.model.loglik(data.x.view(), data.y.view());
    assert!((f["loglik"].as_f64().unwrap() - ll).abs() < 1e-6 * ll.abs());
}

#[test]
fn malformed_model_json_is_an_error() {
    let e = Moe::from_json(
        r#"{"k": 2, "d": 1, "features": ["x"], "gate": [[0,0]], "experts": [[0,0],[1,1]], "variances": [1,1]}"#,
        "m.json",
    )
    .unwrap_err();
    assert!(e.to_string().contains("m.json: `gate` has 1 rows of 2 numbers; expected K = 2 rows"), "{e}");
    let e = Moe::from_json("{\"k\": 2}", "m.json").unwrap_err();
    assert!(e.to_string().starts_with("m.json: not a dmoe model file"), "{e}");
}
