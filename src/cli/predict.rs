//! `dmoe predict`: a saved model applied to a CSV file.

use std::path::PathBuf;

use clap::Args;
use ndarray::{Array1, Array2};

use crate::data;
use crate::destination::Destination;
use crate::numeric::model::{Moe, argmax_rows};

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A model written by `dmoe fit --out` or `dmoe simulate --truth`.
    #[arg(long)]
    model: PathBuf,
    /// CSV with the model's feature columns (and optionally its target).
    #[arg(long)]
    data: PathBuf,
    /// Output CSV: `yhat, gate_component` and, when the target is present, `posterior_component`
    /// (components 1..K).
    #[arg(long)]
    out: PathBuf,
}

pub fn predict(a: PredictArgs) -> Result<(), String> {
    let out = Destination::file(&a.out, "--out")
        .and_then(|d| d.not_an_input(&[("--model", &a.model), ("--data", &a.data)]))
        .map_err(|e| e.to_string())?;
    let model = Moe::load(&a.model).map_err(|e| e.to_string())?;
    let file = data::CsvFile::open(&a.data).map_err(|e| e.to_string())?;
    let feats: Vec<data::ColumnExpr> = model.features.iter().map(|f| data::ColumnExpr::parse(f)).collect();
    let x = file.read(&feats).map_err(|e| e.to_string())?;
    let target = model.target.as_deref().map(data::ColumnExpr::parse).filter(|t| file.has_column(&t.column));
    let y = match &target {
        Some(t) => Some(file.read(std::slice::from_ref(t)).map_err(|e| e.to_string())?.column(0).to_owned()),
        None => None,
    };
    let yhat = model.predict(x.view());
    let joint = y.as_ref().map(|y| model.log_joint(x.view(), y.view()));
    if let Some((row, what)) = first_non_finite(&yhat, joint.as_ref()) {
        let line = file.line_of_row(row).map_or(format!("row {}", row + 1), |l| format!("line {l}"));
        return Err(format!(
            "{}: {line}: {what} is not finite with the model {}: this row's values are too large for its coefficients (a value near 1e308, or a coefficient); nothing was written",
            a.data.display(),
            a.model.display()
        ));
    }
    let gate = model.gate_components(x.view());
    let post = joint.map(|j| argmax_rows(j.view()));
    write_predictions(&out, &yhat, &gate, post.as_deref())?;
    drop(out); // the lock goes before anything is printed
    say!("wrote {} predictions to {}", yhat.len(), a.out.display());
    Ok(())
}

/// The first row whose prediction is not a finite number, or whose posterior cannot be computed
/// because its density under every component is not a positive finite number (0 or overflow), with
/// what failed.
fn first_non_finite(yhat: &Array1<f64>, log_joint: Option<&Array2<f64>>) -> Option<(usize, &'static str)> {
    if let Some(row) = yhat.iter().position(|v| !v.is_finite()) {
        return Some((row, "the prediction"));
    }
    let joint = log_joint?;
    let row = joint.outer_iter().position(|r| r.iter().any(|v| v.is_nan()) || !r.iter().any(|v| v.is_finite()))?;
    Some((row, "the posterior of the target"))
}

fn write_predictions(
    out: &Destination,
    yhat: &Array1<f64>,
    gate: &[usize],
    post: Option<&[usize]>,
) -> Result<(), String> {
    out.write(|w| {
        writeln!(w, "yhat,gate_component{}", if post.is_some() { ",posterior_component" } else { "" })?;
        for (i, (v, g)) in yhat.iter().zip(gate).enumerate() {
            match post {
                Some(p) => writeln!(w, "{v},{},{}", g + 1, p[i] + 1)?,
                None => writeln!(w, "{v},{}", g + 1)?,
            }
        }
        Ok(())
    })
    .map_err(|e| e.to_string())
}
