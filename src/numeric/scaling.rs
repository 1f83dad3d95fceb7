//! Column z-scoring and the map of affine coefficients back to the raw scale, shared by EM (which
//! fits on standardised data) and the reduction's gate fit (on standardised support points).

use ndarray::{Array1, Array2, ArrayView2, Axis};

/// Per-column mean and population standard deviation of a data matrix.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ColumnScaling {
    /// Column means.
    pub mean: Array1<f64>,
    /// Column standard deviations (population, i.e. divided by n).
    pub sd: Array1<f64>,
}

impl ColumnScaling {
    /// Means and standard deviations of the columns of `x` (n >= 1). A zero sd is kept as is; callers
    /// that divide by it check for constant columns first, or use [`ColumnScaling::fit_safe`].
    pub fn fit(x: ArrayView2<f64>) -> ColumnScaling {
        let n = x.nrows() as f64;
        let mean = x.mean_axis(Axis(0)).expect("at least one row");
        let sd = (&x - &mean).mapv(|v| v * v).sum_axis(Axis(0)).mapv(|v| (v / n).sqrt());
        ColumnScaling { mean, sd }
    }

    /// Like [`ColumnScaling::fit`] but a constant column gets sd 1 (it is only centred), for data
    /// that is not validated (e.g. a supporting sample where a shard's column may not vary).
    pub fn fit_safe(x: ArrayView2<f64>) -> ColumnScaling {
        let mut s = ColumnScaling::fit(x);
        s.sd.mapv_inplace(|v| if v > 0.0 && v.is_finite() { v } else { 1.0 });
        s
    }

    /// `(x - mean) / sd`, column by column.
    pub fn apply(&self, x: ArrayView2<f64>) -> Array2<f64> {
        (&x - &self.mean) / &self.sd
    }

    /// Coefficients on the raw scale from coefficients `c` (rows `[c_0, c_1..c_d]`) fitted on the
    /// standardised scale, for a response scaled by `mul` and shifted by `add`:
    /// slope `mul c_j / sd_j`, intercept `add + mul (c_0 - sum_j c_j mean_j / sd_j)`.
    pub fn coefficients_to_raw(&self, c: &Array2<f64>, mul: f64, add: f64) -> Array2<f64> {
        let mut out = c.clone();
        for (mut row, src) in out.outer_iter_mut().zip(c.outer_iter()) {
            let mut intercept = src[0];
            for j in 0..self.sd.len() {
                let slope = src[j + 1] / self.sd[j];
                row[j + 1] = mul * slope;
                intercept -= slope * self.mean[j];
            }
            row[0] = add + mul * intercept;
        }
        out
    }

    /// The inverse of [`ColumnScaling::coefficients_to_raw`]: standardised-scale coefficients from raw
    /// ones `c`, slope `c_j sd_j / mul`, intercept `(c_0 - add + sum_j c_j mean_j) / mul`.
    pub fn coefficients_from_raw(&self, c: &Array2<f64>, mul: f64, add: f64) -> Array2<f64> {
        let mut out = c.clone();
        for (mut row, src) in out.outer_iter_mut().zip(c.outer_iter()) {
            let mut intercept = src[0] - add;
            for j in 0..self.sd.len() {
                row[j + 1] = src[j + 1] * self.sd[j] / mul;
                intercept += src[j + 1] * self.mean[j];
            }
            row[0] = intercept / mul;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn raw_coefficients_give_the_same_affine_function() {
        let x = array![[1.0, 10.0], [2.0, 30.0], [4.0, 20.0]];
        let s = ColumnScaling::fit(x.view());
        let c = array![[0.5, -1.0, 2.0]];
        let raw = s.coefficients_to_raw(&c, 3.0, 7.0);
        let xs = s.apply(x.view());
        for i in 0..3 {
            let std_val = 7.0 + 3.0 * (c[[0, 0]] + c[[0, 1]] * xs[[i, 0]] + c[[0, 2]] * xs[[i, 1]]);
            let raw_val = raw[[0, 0]] + raw[[0, 1]] * x[[i, 0]] + raw[[0, 2]] * x[[i, 1]];
            assert!((std_val - raw_val).abs() < 1e-12);
        }
        let back = s.coefficients_from_raw(&raw, 3.0, 7.0);
        for (a, b) in back.iter().zip(c.iter()) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }
}
