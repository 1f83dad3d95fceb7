//! Label matching: components of a mixture are only defined up to a permutation (docs/model.md),
//! so fitted and reference models are compared after the cheapest one-to-one assignment.

use ndarray::Array2;

use crate::numeric::model::Moe;

/// Minimum-cost perfect assignment of a square cost matrix (Hungarian algorithm with potentials,
/// O(n^3)). Returns `a` with `a[row] = column`.
///
/// Costs that are not finite (an overflowing KL between extreme models) are clamped to
/// `±f64::MAX / (4 (n + 1))`, so that every sum the algorithm forms stays finite: with an infinite
/// or NaN cost its search for the next column would never find one and would loop for ever.
pub fn min_cost_assignment(cost: &Array2<f64>) -> Vec<usize> {
    let n = cost.nrows();
    assert_eq!(n, cost.ncols(), "the cost matrix must be square");
    let big = f64::MAX / (4.0 * (n + 1) as f64);
    let cost = cost.mapv(|c| if c.is_nan() { big } else { c.clamp(-big, big) });
    // 1-based arrays with a virtual column 0, as in the classic shortest-augmenting-path version.
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; n + 1];
    let mut p = vec![0usize; n + 1]; // p[col] = row assigned to col
    let mut way = vec![0usize; n + 1];
    for row in 1..=n {
        p[0] = row;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost[[i0 - 1, j - 1]] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            assert!(j1 != 0, "finite costs always leave a free column to add");
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut assignment = vec![0; n];
    for j in 1..=n {
        assignment[p[j] - 1] = j - 1;
    }
    assignment
}

/// The relabelling of `fitted` that best matches `reference`: `perm[j]` is the fitted component
/// matched to reference component `j`, minimising the summed squared difference of expert
/// coefficients and log-variances. Use with [`Moe::permuted`].
pub fn best_permutation(fitted: &Moe, reference: &Moe) -> Vec<usize> {
    let k = reference.k();
    assert_eq!(fitted.k(), k, "models to match must have the same K");
    let cost = Array2::from_shape_fn((k, k), |(j, c)| {
        let e: f64 = (&reference.experts.row(j) - &fitted.experts.row(c)).mapv(|v| v * v).sum();
        let lv = reference.variances[j].ln() - fitted.variances[c].ln();
        e + lv * lv
    });
    min_cost_assignment(&cost)
}

/// `fitted` relabelled to match `reference` (gate re-referenced to the new last component).
pub fn align(fitted: &Moe, reference: &Moe) -> Moe {
    fitted.permuted(&best_permutation(fitted, reference))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn hungarian_matches_brute_force() {
        let mut seed = 17u64;
        for n in 1..=6 {
            for _ in 0..20 {
                let cost = Array2::from_shape_fn((n, n), |_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (seed >> 33) as f64 / 1e6
                });
                let a = min_cost_assignment(&cost);
                let total = |perm: &[usize]| perm.iter().enumerate().map(|(r, &c)| cost[[r, c]]).sum::<f64>();
                let mut best = f64::INFINITY;
                permutations(n, &mut |p| best = best.min(total(p)));
                assert!((total(&a) - best).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn non_finite_costs_still_give_an_assignment() {
        let inf = f64::INFINITY;
        let a = min_cost_assignment(&array![[inf, 1.0, inf], [inf, inf, 2.0], [3.0, f64::NAN, inf]]);
        assert_eq!(a, vec![1, 2, 0]);
        let all = Array2::from_elem((3, 3), inf);
        let mut a = min_cost_assignment(&all);
        a.sort_unstable();
        assert_eq!(a, vec![0, 1, 2], "a permutation");
    }

    fn permutations(n: usize, f: &mut dyn FnMut(&[usize])) {
        fn rec(v: &mut Vec<usize>, k: usize, f: &mut dyn FnMut(&[usize])) {
            if k == v.len() {
                f(v);
                return;
            }
            for i in k..v.len() {
                v.swap(k, i);
                rec(v, k + 1, f);
                v.swap(k, i);
            }
        }
        rec(&mut (0..n).collect(), 0, f);
    }

    #[test]
    fn align_undoes_a_permutation() {
        let m = Moe::new(
            vec!["x".into()],
            array![[1.0, 2.0], [0.5, -1.0], [0.0, 0.0]],
            array![[1.0, 1.0], [2.0, -3.0], [-4.0, 0.0]],
            array![1.0, 2.0, 0.5],
        )
        .unwrap();
        let shuffled = m.permuted(&[2, 0, 1]);
        let back = align(&shuffled, &m);
        for (a, b) in back.param_vector().iter().zip(m.param_vector().iter()) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
