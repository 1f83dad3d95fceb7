//! The softmax-gated mixture of Gaussian linear experts (docs/model.md): parameters, density,
//! posterior responsibilities, prediction, label permutation and the JSON file format. Everything is on
//! the raw (unstandardised) scale of x; estimation lives in `em`, not here.

use std::path::Path;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, linalg::general_mat_mul, s};
use serde::{Deserialize, Serialize};

use crate::numeric::linalg::log_sum_exp_rows;
use crate::numeric::softmax;

/// `ln(2 pi)`, used by every Gaussian log-density.
pub const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// What went wrong building or reading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The parameter arrays do not fit together (wrong number of rows or columns).
    #[error("{0}")]
    Shape(String),
    /// A parameter is NaN or infinite, or a variance is not positive.
    #[error("{0}")]
    Value(String),
    /// The model file could not be read or written.
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The model file is not valid model JSON.
    #[error("{path}: not a dmoe model file: {source}")]
    Json { path: String, source: serde_json::Error },
}

/// How a fitted model was obtained; absent for a true model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    /// Total log-likelihood on the fitted rows (natural log, raw scale of y).
    pub loglik: f64,
    /// EM iterations of the retained run (short warm-up iterations included).
    pub iterations: usize,
    /// Whether the relative log-likelihood change fell below the tolerance before the iteration cap.
    pub converged: bool,
    /// CPU time of the whole fit, all restarts included: its thread's, or with `threads > 1` the
    /// process's.
    pub cpu_seconds: f64,
    /// Number of rows the model was fitted on.
    pub n: usize,
    /// Number of initialisations tried.
    pub restarts: usize,
    /// EM iterations summed over every start (warm-ups and the continued run).
    pub total_iterations: usize,
    /// Rows times passes over them summed over every start (a pass is one E-step, with the M-step
    /// before it when there is one; warm-ups pass over at most `subset_rows` rows): the work the fit
    /// did, the unit of the simulator's model clock. 0 in a model file written before it existed.
    #[serde(default)]
    pub row_iterations: u64,
}

/// A K-component mixture of experts on d covariates.
///
/// `f(y|x) = sum_k pi_k(x) N(y; b_k . [1,x], s2_k)`, with
/// `pi_k(x) = exp(a_k . [1,x]) / sum_l exp(a_l . [1,x])` and the last gate row `a_K = 0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "MoeFile", try_from = "MoeFile")]
pub struct Moe {
    /// Covariate names, in column order of x.
    pub features: Vec<String>,
    /// Name of the response, when known.
    pub target: Option<String>,
    /// Gate coefficients, K x (d+1), intercept first; the last row is all zeros.
    pub gate: Array2<f64>,
    /// Expert regression coefficients, K x (d+1), intercept first.
    pub experts: Array2<f64>,
    /// Expert noise variances, K.
    pub variances: Array1<f64>,
    /// Fit diagnostics, when the model was estimated.
    pub fit: Option<FitSummary>,
}

/// The on-disk JSON form of [`Moe`]: plain nested lists so that any language can read it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoeFile {
    k: usize,
    d: usize,
    features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    gate: Vec<Vec<f64>>,
    experts: Vec<Vec<f64>>,
    variances: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fit: Option<FitSummary>,
}

impl Moe {
    /// Builds a model and checks it: K >= 1, d >= 1, shapes K x (d+1), finite values, positive
    /// variances. A gate whose last row is not zero is re-referenced (the same model).
    pub fn new(
        features: Vec<String>,
        gate: Array2<f64>,
        experts: Array2<f64>,
        variances: Array1<f64>,
    ) -> Result<Moe, ModelError> {
        let k = variances.len();
        let d = features.len();
        if k == 0 {
            return Err(ModelError::Shape("a model needs at least one component (K >= 1)".into()));
        }
        if d == 0 {
            return Err(ModelError::Shape("a model needs at least one feature (d >= 1)".into()));
        }
        for (name, m) in [("gate", &gate), ("experts", &experts)] {
            if m.dim() != (k, d + 1) {
                return Err(ModelError::Shape(format!(
                    "`{name}` has {} rows of {} numbers; expected K = {k} rows of d + 1 = {} numbers",
                    m.nrows(),
                    m.ncols(),
                    d + 1
                )));
            }
            if m.iter().any(|v| !v.is_finite()) {
                return Err(ModelError::Value(format!("`{name}` has a NaN or infinite entry")));
            }
        }
        if let Some(v) = variances.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(ModelError::Value(format!("`variances` must be positive and finite; found {v}")));
        }
        let model = Moe { features, target: None, gate, experts, variances, fit: None };
        Ok(model.rereferenced())
    }

    /// Number of components K.
    pub fn k(&self) -> usize {
        self.variances.len()
    }

    /// Number of covariates d.
    pub fn d(&self) -> usize {
        self.features.len()
    }

    /// Number of free parameters: (K-1)(d+1) gate, K(d+1) expert, K variance.
    pub fn n_params(&self) -> usize {
        n_free_params(self.k(), self.d())
    }

    /// Gate logits `a_k . [1,x]`, n x K.
    pub fn gate_logits(&self, x: ArrayView2<f64>) -> Array2<f64> {
        affine(x, &self.gate)
    }

    /// Log gate probabilities `log pi_k(x)`, n x K.
    pub fn log_gate(&self, x: ArrayView2<f64>) -> Array2<f64> {
        log_softmax_rows(self.gate_logits(x))
    }

    /// Expert means `b_k . [1,x]`, n x K.
    pub fn expert_means(&self, x: ArrayView2<f64>) -> Array2<f64> {
        affine(x, &self.experts)
    }

    /// `log pi_k(x_i) + log N(y_i; b_k . [1,x_i], s2_k)`, n x K: the log of each component's share
    /// of the density.
    pub fn log_joint(&self, x: ArrayView2<f64>, y: ArrayView1<f64>) -> Array2<f64> {
        let mut lj = self.log_gate(x);
        let mu = self.expert_means(x);
        add_log_normal(&mut lj, mu.view(), y, self.variances.view());
        lj
    }

    /// Log conditional density `log f(y_i|x_i)` of every row.
    pub fn log_density(&self, x: ArrayView2<f64>, y: ArrayView1<f64>) -> Array1<f64> {
        log_sum_exp_rows(self.log_joint(x, y).view())
    }

    /// Total log-likelihood `sum_i log f(y_i|x_i)` (natural log).
    pub fn loglik(&self, x: ArrayView2<f64>, y: ArrayView1<f64>) -> f64 {
        self.log_density(x, y).sum()
    }

    /// Posterior responsibilities `tau_ik = pi_k N_k / sum_l pi_l N_l`, n x K (computed in log space).
    pub fn posterior(&self, x: ArrayView2<f64>, y: ArrayView1<f64>) -> Array2<f64> {
        let mut lj = self.log_joint(x, y);
        let l = log_sum_exp_rows(lj.view());
        for (mut row, li) in lj.outer_iter_mut().zip(l.iter()) {
            row.mapv_inplace(|v| (v - li).exp());
        }
        lj
    }

    /// Prediction, the mixture mean `yhat(x) = sum_k pi_k(x) b_k . [1,x]`.
    pub fn predict(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let pi = self.log_gate(x).mapv_into(f64::exp);
        (pi * self.expert_means(x)).sum_axis(Axis(1))
    }

    /// Hard cluster by the gate alone (no y needed): `argmax_k pi_k(x)`, 0-based.
    pub fn gate_components(&self, x: ArrayView2<f64>) -> Vec<usize> {
        argmax_rows(self.gate_logits(x).view())
    }

    /// Hard cluster by the posterior (needs y): `argmax_k tau_ik`, 0-based.
    pub fn posterior_components(&self, x: ArrayView2<f64>, y: ArrayView1<f64>) -> Vec<usize> {
        argmax_rows(self.log_joint(x, y).view())
    }

    /// The same model with the gate re-referenced so that its last row is zero
    /// (`a_k <- a_k - a_K`; the softmax is unchanged).
    pub fn rereferenced(mut self) -> Moe {
        let last = self.gate.row(self.k() - 1).to_owned();
        for mut row in self.gate.outer_iter_mut() {
            row -= &last;
        }
        self
    }

    /// The same model with its components relabelled: new component `j` is old component `perm[j]`.
    /// The gate is re-referenced to the new last component.
    pub fn permuted(&self, perm: &[usize]) -> Moe {
        assert_eq!(perm.len(), self.k(), "a permutation must name every component once");
        let mut out = self.clone();
        for (j, &old) in perm.iter().enumerate() {
            out.gate.row_mut(j).assign(&self.gate.row(old));
            out.experts.row_mut(j).assign(&self.experts.row(old));
            out.variances[j] = self.variances[old];
        }
        out.rereferenced()
    }

    /// All free parameters in one vector: gate rows 1..K-1, then expert rows 1..K, then variances.
    pub fn param_vector(&self) -> Array1<f64> {
        let k = self.k();
        let gate = self.gate.slice(s![..k - 1, ..]);
        gate.iter().chain(self.experts.iter()).chain(self.variances.iter()).copied().collect()
    }

    /// Names of the entries of [`Moe::param_vector`], e.g. `gate[1][x2]`, `expert[3][intercept]`,
    /// `variance[2]` (components 1-based).
    pub fn param_names(&self) -> Vec<String> {
        let cols: Vec<String> = std::iter::once("intercept".to_string()).chain(self.features.iter().cloned()).collect();
        let mut names = Vec::with_capacity(self.n_params());
        for k in 0..self.k() - 1 {
            names.extend(cols.iter().map(|c| format!("gate[{}][{c}]", k + 1)));
        }
        for k in 0..self.k() {
            names.extend(cols.iter().map(|c| format!("expert[{}][{c}]", k + 1)));
        }
        names.extend((0..self.k()).map(|k| format!("variance[{}]", k + 1)));
        names
    }

    /// The model as pretty JSON (the documented file format).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a model always serialises")
    }

    /// Parses the JSON file format; `source` names the file in error messages.
    pub fn from_json(text: &str, source: &str) -> Result<Moe, ModelError> {
        let file: MoeFile =
            serde_json::from_str(text).map_err(|e| ModelError::Json { path: source.to_string(), source: e })?;
        Moe::try_from(file).map_err(|e| match e {
            ModelError::Shape(m) => ModelError::Shape(format!("{source}: {m}")),
            ModelError::Value(m) => ModelError::Value(format!("{source}: {m}")),
            other => other,
        })
    }

    /// Writes the model as JSON to `path`.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        std::fs::write(path, self.to_json() + "\n")
            .map_err(|e| ModelError::Io { path: path.display().to_string(), source: e })
    }

    /// Reads a model JSON file.
    pub fn load(path: &Path) -> Result<Moe, ModelError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ModelError::Io { path: path.display().to_string(), source: e })?;
        Moe::from_json(&text, &path.display().to_string())
    }
}

/// Number of free parameters of a K-component model on d covariates: (K-1)(d+1) + K(d+1) + K.
/// Saturates at `usize::MAX` instead of wrapping around, so an absurd K or d reads as "more
/// parameters than any data set has rows", never as a small number.
pub fn n_free_params(k: usize, d: usize) -> usize {
    k.saturating_mul(2).saturating_sub(1).saturating_mul(d.saturating_add(1)).saturating_add(k)
}

/// `[1, x] . coef_k` for every row and component: `x coef[:,1..]' + coef[:,0]`, n x K.
pub fn affine(x: ArrayView2<f64>, coef: &Array2<f64>) -> Array2<f64> {
    let mut out = Array2::zeros((x.nrows(), coef.nrows()));
    affine_into(x, coef, out.view_mut());
    out
}

/// [`affine`] written into `out` (n x K), for a caller that reuses one buffer.
pub fn affine_into(x: ArrayView2<f64>, coef: &Array2<f64>, mut out: ArrayViewMut2<f64>) {
    general_mat_mul(1.0, &x, &coef.slice(s![.., 1..]).t(), 0.0, &mut out);
    out += &coef.column(0);
}

/// Turns logits into log-softmax, row by row (`numeric::softmax`, the softmax EM uses; the
/// probabilities it computes on the way are dropped).
pub fn log_softmax_rows(logits: Array2<f64>) -> Array2<f64> {
    let mut logits = if logits.is_standard_layout() { logits } else { logits.as_standard_layout().into_owned() };
    let mut probs = Array2::zeros(logits.raw_dim());
    softmax::rows(&mut logits, &mut probs, softmax::Output::WithLogs);
    logits
}

/// Adds `log N(y_i; mu_ik, s2_k) = -(ln(2 pi s2_k) + (y_i - mu_ik)^2 / s2_k) / 2` to `acc` (n x K).
pub fn add_log_normal(acc: &mut Array2<f64>, mu: ArrayView2<f64>, y: ArrayView1<f64>, s2: ArrayView1<f64>) {
    let half_log: Vec<f64> = s2.iter().map(|v| 0.5 * (LN_2PI + v.ln())).collect();
    let half_prec: Vec<f64> = s2.iter().map(|v| 0.5 / v).collect();
    for ((mut row, murow), &yi) in acc.outer_iter_mut().zip(mu.outer_iter()).zip(y.iter()) {
        for (k, (a, &m)) in row.iter_mut().zip(murow.iter()).enumerate() {
            let r = yi - m;
            *a -= half_log[k] + half_prec[k] * r * r;
        }
    }
}

/// Index of the largest entry of each row (first one on ties).
pub fn argmax_rows(a: ArrayView2<f64>) -> Vec<usize> {
    a.outer_iter()
        .map(|row| {
            let mut best = 0;
            for (k, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = k;
                }
            }
            best
        })
        .collect()
}

impl From<Moe> for MoeFile {
    fn from(m: Moe) -> MoeFile {
        MoeFile {
            k: m.k(),
            d: m.d(),
            gate: rows(&m.gate),
            experts: rows(&m.experts),
            variances: m.variances.to_vec(),
            features: m.features,
            target: m.target,
            fit: m.fit,
        }
    }
}

impl TryFrom<MoeFile> for Moe {
    type Error = ModelError;

    /// Checks `k` and `d` against the arrays, then every rule of [`Moe::new`].
    fn try_from(file: MoeFile) -> Result<Moe, ModelError> {
        if file.k != file.variances.len() || file.d != file.features.len() {
            return Err(ModelError::Shape(format!(
                "`k` = {} and `d` = {} do not match {} variances and {} features",
                file.k,
                file.d,
                file.variances.len(),
                file.features.len()
            )));
        }
        let gate = matrix(&file.gate, "gate")?;
        let experts = matrix(&file.experts, "experts")?;
        let mut model = Moe::new(file.features, gate, experts, Array1::from(file.variances))?;
        model.target = file.target;
        model.fit = file.fit;
        Ok(model)
    }
}

fn rows(m: &Array2<f64>) -> Vec<Vec<f64>> {
    m.outer_iter().map(|r| r.to_vec()).collect()
}

fn matrix(rows: &[Vec<f64>], name: &str) -> Result<Array2<f64>, ModelError> {
    let ncols = rows.first().map_or(0, Vec::len);
    if rows.iter().any(|r| r.len() != ncols) {
        return Err(ModelError::Shape(format!("`{name}` has rows of different lengths")));
    }
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Array2::from_shape_vec((rows.len(), ncols), flat).map_err(|e| ModelError::Shape(format!("`{name}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn free_parameters_count_experts_variances_and_free_gate_rows() {
        // K = 3, d = 2: 3 x 3 coefficients + 3 variances + 2 x 3 gate entries.
        assert_eq!(n_free_params(3, 2), 18);
        assert_eq!(n_free_params(1, 4), 6);
        assert_eq!(two_component().n_params(), 2 * 2 + 2 + 2);
        assert_eq!(n_free_params(usize::MAX, 3), usize::MAX);
    }

    fn two_component() -> Moe {
        Moe::new(vec!["x1".into()], array![[0.5, 1.0], [0.0, 0.0]], array![[1.0, 2.0], [-1.0, 0.5]], array![0.5, 2.0])
            .unwrap()
    }

    #[test]
    fn density_matches_hand_computation() {
        let m = two_component();
        let x = array![[0.3]];
        let y = array![0.7];
        let a = (0.5f64 + 0.3).exp();
        let (p1, p2) = (a / (a + 1.0), 1.0 / (a + 1.0));
        let n = |y: f64, mu: f64, s2: f64| {
            (-(y - mu) * (y - mu) / (2.0 * s2)).exp() / (2.0 * std::f64::consts::PI * s2).sqrt()
        };
        let f = p1 * n(0.7, 1.6, 0.5) + p2 * n(0.7, -0.85, 2.0);
        assert!((m.loglik(x.view(), y.view()) - f.ln()).abs() < 1e-12);
        let yhat = p1 * 1.6 + p2 * -0.85;
        assert!((m.predict(x.view())[0] - yhat).abs() < 1e-12);
        let tau = m.posterior(x.view(), y.view());
        assert!((tau[[0, 0]] - p1 * n(0.7, 1.6, 0.5) / f).abs() < 1e-12);
    }

    #[test]
    fn permutation_keeps_the_density() {
        let m = two_component();
        let x = array![[0.3], [-2.0], [1.5]];
        let y = array![0.7, -3.0, 2.0];
        let p = m.permuted(&[1, 0]);
        assert_eq!(p.gate.row(1).to_vec(), vec![0.0, 0.0]);
        let (a, b) = (m.log_density(x.view(), y.view()), p.log_density(x.view(), y.view()));
        for (u, v) in a.iter().zip(b.iter()) {
            assert!((u - v).abs() < 1e-12);
        }
    }

    #[test]
    fn new_rejects_bad_shapes_and_values() {
        let e = Moe::new(vec!["x".into()], array![[0.0, 0.0]], array![[0.0, 0.0]], array![-1.0]);
        assert!(e.unwrap_err().to_string().contains("positive"));
        let e = Moe::new(vec!["x".into()], array![[0.0]], array![[0.0, 0.0]], array![1.0]);
        assert!(e.unwrap_err().to_string().contains("`gate` has 1 rows of 1 numbers"));
        let e = Moe::new(vec![], Array2::zeros((0, 1)), Array2::zeros((0, 1)), array![]);
        assert!(e.unwrap_err().to_string().contains("K >= 1"));
    }
}
