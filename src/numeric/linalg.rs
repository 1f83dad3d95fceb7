//! Small dense linear algebra for the numeric core: weighted Gram matrices by blocked matrix
//! products (ndarray's `dot`, i.e. matrixmultiply) and symmetric positive-definite solves by Cholesky
//! (nalgebra). Nothing here allocates per sample.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, linalg::general_mat_mul, s};

/// Rows per block in [`weighted_grams`]: large enough for an efficient matrix product, small enough
/// that the weighted copy of a block stays in cache-friendly memory.
const GRAM_BLOCK_ROWS: usize = 2048;

/// Weighted Gram matrices `G_j = X' diag(w_.j) X` for every column `j` of `w` (n x m), where `x` is
/// n x p. Returns m matrices of size p x p. Two ways, the same sums up to rounding:
/// - narrow designs (p up to [`DIRECT_MAX_COLUMNS`]): one pass over the rows adding
///   `w_ij x_ia x_ib` to the upper triangle only (`m p (p + 1) / 2` products per row), then mirrored;
///   a matrix product would spend more time packing its operands than multiplying them;
/// - wider designs: block by block, one matrix product `X_b' [w_.1 * X_b | ... | w_.m * X_b]`, so the
///   data are read once for all m weight vectors.
pub fn weighted_grams(x: ArrayView2<f64>, w: ArrayView2<f64>) -> Vec<Array2<f64>> {
    assert_eq!(w.nrows(), x.nrows(), "weights and design must have the same rows");
    let x = x.as_standard_layout();
    let w = w.as_standard_layout();
    let (xs, ws) = (x.as_slice().expect("standard layout"), w.as_slice().expect("standard layout"));
    let (n, p, m) = (x.nrows(), x.ncols(), w.ncols());
    if p <= DIRECT_MAX_COLUMNS { grams_by_rows(xs, ws, p, m) } else { grams_by_products(xs, ws, n, p, m) }
}

/// Widest design (columns, intercept included) whose Gram matrices are summed row by row: measured
/// faster than the matrix products at 3 and 6 columns, slower at 8 (`dmoe bench`, N = 200,000; 7
/// was not measured).
const DIRECT_MAX_COLUMNS: usize = 6;

/// [`weighted_grams`] by one pass over the rows (`xs` n x p and `ws` n x m, row-major), upper
/// triangles only; compiled for each p (a compile-time `P`), so that the loops over a row unroll.
fn grams_by_rows(xs: &[f64], ws: &[f64], p: usize, m: usize) -> Vec<Array2<f64>> {
    match p {
        0 => vec![Array2::zeros((0, 0)); m],
        1 => grams_by_rows_of::<1>(xs, ws, m),
        2 => grams_by_rows_of::<2>(xs, ws, m),
        3 => grams_by_rows_of::<3>(xs, ws, m),
        4 => grams_by_rows_of::<4>(xs, ws, m),
        5 => grams_by_rows_of::<5>(xs, ws, m),
        6 => grams_by_rows_of::<6>(xs, ws, m),
        _ => unreachable!("at most DIRECT_MAX_COLUMNS columns"),
    }
}

/// [`grams_by_rows`] for `P` columns.
fn grams_by_rows_of<const P: usize>(xs: &[f64], ws: &[f64], m: usize) -> Vec<Array2<f64>> {
    let mut acc = vec![[[0.0; P]; P]; m];
    for (x, wrow) in xs.chunks_exact(P).zip(ws.chunks_exact(m)) {
        let x: &[f64; P] = x.try_into().expect("P columns");
        for (g, &w) in acc.iter_mut().zip(wrow) {
            for a in 0..P {
                let wa = w * x[a];
                for b in a..P {
                    g[a][b] += wa * x[b];
                }
            }
        }
    }
    acc.iter().map(|g| Array2::from_shape_fn((P, P), |(a, b)| if a <= b { g[a][b] } else { g[b][a] })).collect()
}

/// [`weighted_grams`] by one matrix product per block of [`GRAM_BLOCK_ROWS`] rows.
fn grams_by_products(xs: &[f64], ws: &[f64], n: usize, p: usize, m: usize) -> Vec<Array2<f64>> {
    let x = ArrayView2::from_shape((n, p), xs).expect("n x p");
    let width = m * p;
    let mut acc = Array2::<f64>::zeros((p, width));
    let mut scaled = vec![0.0; GRAM_BLOCK_ROWS.min(n) * width];
    let mut start = 0;
    while start < n {
        let end = (start + GRAM_BLOCK_ROWS).min(n);
        let rows = end - start;
        for (r, dst) in scaled.chunks_exact_mut(width).take(rows).enumerate() {
            let i = start + r;
            let xrow = &xs[i * p..(i + 1) * p];
            for (block, &wj) in dst.chunks_exact_mut(p).zip(&ws[i * m..(i + 1) * m]) {
                for (d, &v) in block.iter_mut().zip(xrow) {
                    *d = wj * v;
                }
            }
        }
        let sb = ArrayView2::from_shape((rows, width), &scaled[..rows * width]).expect("block shape");
        general_mat_mul(1.0, &x.slice(s![start..end, ..]).t(), &sb, 1.0, &mut acc);
        start = end;
    }
    (0..m).map(|j| acc.slice(s![.., j * p..(j + 1) * p]).to_owned()).collect()
}

/// Solves `a z = b` for a symmetric positive semi-definite `a` by Cholesky, after adding a ridge of
/// `rel_ridge * mean(diag(a))` (plus a tiny absolute floor) to the diagonal so that a nearly singular
/// system (an expert with almost no weight) still has a finite, small-norm solution. Returns `None`
/// when the matrix is not positive definite even with the ridge, or has non-finite entries.
pub fn spd_solve(a: &Array2<f64>, b: ArrayView1<f64>, rel_ridge: f64) -> Option<Array1<f64>> {
    let p = a.nrows();
    if p == 0 {
        return Some(Array1::zeros(0));
    }
    let scale = a.diag().sum() / p as f64;
    if !scale.is_finite() {
        return None;
    }
    let ridge = rel_ridge * scale.abs() + 1e-300;
    let m = nalgebra::DMatrix::from_fn(p, p, |i, j| a[[i, j]] + if i == j { ridge } else { 0.0 });
    let chol = nalgebra::Cholesky::new(m)?;
    let rhs = nalgebra::DVector::from_iterator(p, b.iter().copied());
    let z = chol.solve(&rhs);
    if z.iter().all(|v| v.is_finite()) { Some(Array1::from_iter(z.iter().copied())) } else { None }
}

/// Lower Cholesky factor L of a symmetric matrix `a` (`a = L L'`), column by column:
/// `L_jj = sqrt(a_jj - sum_{m<j} L_jm^2)` and `L_ij = (a_ij - sum_{m<j} L_im L_jm) / L_jj` for i > j.
/// The pivot `a_jj - sum_{m<j} L_jm^2` is the variance of column j left unexplained by the columns
/// before it; `Err(j)` for the first j whose pivot is below `min_pivot`.
pub fn cholesky_lower(a: &Array2<f64>, min_pivot: f64) -> Result<Array2<f64>, usize> {
    let d = a.nrows();
    let mut l = Array2::<f64>::zeros((d, d));
    for j in 0..d {
        let pivot = a[[j, j]] - (0..j).map(|m| l[[j, m]] * l[[j, m]]).sum::<f64>();
        if pivot < min_pivot {
            return Err(j);
        }
        l[[j, j]] = pivot.sqrt();
        for i in j + 1..d {
            l[[i, j]] = (a[[i, j]] - (0..j).map(|m| l[[i, m]] * l[[j, m]]).sum::<f64>()) / l[[j, j]];
        }
    }
    Ok(l)
}

/// Prepends a column of ones: `[1, x]`, the design of the model's affine gates and experts.
pub fn with_intercept(x: ArrayView2<f64>) -> Array2<f64> {
    let (n, d) = x.dim();
    let mut xt = Array2::<f64>::ones((n, d + 1));
    xt.slice_mut(s![.., 1..]).assign(&x);
    xt
}

/// Row-wise log-sum-exp of an n x k matrix, stable for very negative entries.
pub fn log_sum_exp_rows(a: ArrayView2<f64>) -> Array1<f64> {
    a.map_axis(Axis(1), |row| {
        let m = row.fold(f64::NEG_INFINITY, |acc, &v| acc.max(v));
        if !m.is_finite() {
            return m;
        }
        m + row.iter().map(|&v| (v - m).exp()).sum::<f64>().ln()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn weighted_grams_match_direct_sum_on_narrow_and_wide_designs() {
        // Up to DIRECT_MAX_COLUMNS columns take the row-by-row sums, more the matrix products.
        for (p, m) in [(1, 2), (3, 1), (3, 2), (DIRECT_MAX_COLUMNS, 3), (DIRECT_MAX_COLUMNS + 1, 2), (12, 2)] {
            let x = Array2::from_shape_fn((5000, p), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
            let w = Array2::from_shape_fn((5000, m), |(i, j)| ((i + j) % 5) as f64 / 4.0);
            let g = weighted_grams(x.view(), w.view());
            for (j, gj) in g.iter().enumerate() {
                for a in 0..p {
                    for b in 0..p {
                        let direct: f64 = (0..5000).map(|i| w[[i, j]] * x[[i, a]] * x[[i, b]]).sum();
                        assert!((gj[[a, b]] - direct).abs() <= 1e-9 * direct.abs().max(1.0), "p {p}");
                    }
                }
            }
        }
    }

    #[test]
    fn spd_solve_solves_and_rejects_indefinite() {
        let a = array![[4.0, 1.0], [1.0, 3.0]];
        let z = spd_solve(&a, array![1.0, 2.0].view(), 0.0).unwrap();
        assert!((4.0 * z[0] + z[1] - 1.0).abs() < 1e-12 && (z[0] + 3.0 * z[1] - 2.0).abs() < 1e-12);
        assert!(spd_solve(&array![[1.0, 2.0], [2.0, 1.0]], array![1.0, 1.0].view(), 0.0).is_none());
    }

    #[test]
    fn cholesky_lower_factors_and_finds_the_first_small_pivot() {
        let a = array![[4.0, 2.0, 0.0], [2.0, 5.0, 1.0], [0.0, 1.0, 2.0]];
        let l = cholesky_lower(&a, 1e-10).unwrap();
        assert!((l.dot(&l.t()) - &a).iter().all(|v| v.abs() < 1e-12));
        assert!(l[[0, 1]] == 0.0 && l[[0, 2]] == 0.0 && l[[1, 2]] == 0.0);
        // Column 2 = column 0 + column 1: nothing of it is left unexplained.
        let b = array![[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 2.0]];
        assert_eq!(cholesky_lower(&b, 1e-10), Err(2));
    }

    #[test]
    fn log_sum_exp_is_stable() {
        let a = array![[-1000.0, -1000.0], [0.0, f64::NEG_INFINITY]];
        let l = log_sum_exp_rows(a.view());
        assert!((l[0] - (-1000.0 + 2f64.ln())).abs() < 1e-12);
        assert!(l[1].abs() < 1e-15);
    }
}
