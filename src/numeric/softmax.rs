//! The row softmax every EM pass takes (gate probabilities and responsibilities), vectorised across
//! rows.
//!
//! For a row `v` of K values: `a = max_k v_k`, `e_k = exp(v_k - a)`, `s = sum_k e_k`, the row's
//! log-normaliser `c = a + ln s = ln sum_k exp(v_k)`, the probabilities `p_k = e_k / s` and, when
//! asked, the log-probabilities `v_k - c`. The rows are stored one after the other (K values each),
//! so a row's K values are too few to fill a vector: the exponentials, the logarithms and the
//! divisions run over [`BLOCK_ROWS`] rows at a time, each row's maximum, normaliser and sum spread
//! over its K entries, with [`crate::numeric::elementary`]'s functions at the processor's widest
//! vectors. A row with a NaN, a +inf or only -inf values comes out NaN (probabilities,
//! log-probabilities, normaliser and the sum of normalisers); a -inf value in a row with a finite
//! maximum is a probability 0 and a log-probability -inf. (The row's maximum skips a NaN, as
//! `f64::max` does, but `exp(NaN - max)` is NaN and so is then the row's sum.)

use ndarray::Array2;

use crate::numeric::elementary::{exp_nonpositive, ln_positive};
use crate::numeric::simd::{Width, widest};

/// Rows per block: the block's work (its values and probabilities, two spread buffers of K values
/// per row and one value per row) stays in the first-level cache for K up to about 8.
const BLOCK_ROWS: usize = 128;

/// What [`rows`] writes.
pub enum Output {
    /// The probabilities only.
    Probabilities,
    /// The probabilities, and the log-probabilities over the input values.
    WithLogs,
}

/// The softmax of every row of `values` (n x K, standard layout): the probabilities into `probs`
/// (same shape), the log-probabilities over `values` when `output` asks for them (else `values` is
/// left as it was). Returns the sum over rows of the log-normalisers `ln sum_k exp(v_k)`, added in
/// row order (NaN when a row comes out NaN, see the module's documentation).
pub fn rows(values: &mut Array2<f64>, probs: &mut Array2<f64>, output: Output) -> f64 {
    let k = values.ncols();
    assert!(k > 0, "at least one column");
    assert_eq!(values.dim(), probs.dim(), "one probability per value");
    let v = values.as_slice_mut().expect("standard layout");
    let p = probs.as_slice_mut().expect("standard layout");
    softmax_blocks(Width::widest(), v, p, k, matches!(output, Output::WithLogs))
}

widest! {
    /// [`rows`] at a given vector width.
    fn softmax_blocks(values: &mut [f64], probs: &mut [f64], k: usize, logs: bool) -> f64 {
        let entries = BLOCK_ROWS * k;
        // Per entry: its row's maximum, then its row's normaliser; its row's sum of exponentials.
        let (mut spread, mut sums) = (vec![0.0; entries], vec![0.0; entries]);
        // Per row: the sum of exponentials, then its logarithm.
        let mut row_sums = vec![0.0; BLOCK_ROWS];
        let mut total = 0.0;
        for (v, p) in values.chunks_mut(entries).zip(probs.chunks_mut(entries)) {
            let n = v.len() / k;
            let (spread, sums, row_sums) = (&mut spread[..v.len()], &mut sums[..v.len()], &mut row_sums[..n]);
            for (row, top) in v.chunks_exact(k).zip(spread.chunks_exact_mut(k)) {
                top.fill(row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b)));
            }
            for ((e, &x), &top) in p.iter_mut().zip(v.iter()).zip(spread.iter()) {
                *e = exp_nonpositive(x - top);
            }
            for (s, e) in row_sums.iter_mut().zip(p.chunks_exact(k)) {
                *s = e.iter().sum();
            }
            for (s, spread_sums) in row_sums.iter().zip(sums.chunks_exact_mut(k)) {
                spread_sums.fill(*s);
            }
            for s in row_sums.iter_mut() {
                *s = ln_positive(*s);
            }
            // The maximum spread over each row is replaced by the row's normaliser.
            for (ln_s, c) in row_sums.iter().zip(spread.chunks_exact_mut(k)) {
                let normaliser = c[0] + ln_s;
                c.fill(normaliser);
                total += normaliser;
            }
            for (e, &s) in p.iter_mut().zip(sums.iter()) {
                *e /= s;
            }
            if logs {
                for (x, &c) in v.iter_mut().zip(spread.iter()) {
                    *x -= c;
                }
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The softmax of one row, by the C library's functions.
    fn reference(row: &[f64]) -> (Vec<f64>, Vec<f64>, f64) {
        let top = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let sum: f64 = row.iter().map(|v| (v - top).exp()).sum();
        let c = top + sum.ln();
        (row.iter().map(|v| (v - top).exp() / sum).collect(), row.iter().map(|v| v - c).collect(), c)
    }

    /// Values spread over about 27 nats, every fifth 40 lower, every 11th 800 lower (an exponential
    /// below the -707 at which `exp_nonpositive` returns 0).
    fn values(n: usize, k: usize) -> Vec<f64> {
        let shift = |i: usize| {
            if i.is_multiple_of(11) {
                800.0
            } else if i.is_multiple_of(5) {
                40.0
            } else {
                0.0
            }
        };
        (0..n * k).map(|i| ((i * 7919) % 1000) as f64 / 37.0 - 13.0 - shift(i)).collect()
    }

    #[test]
    fn it_matches_the_c_library_row_by_row_and_sums_the_normalisers() {
        for k in [1, 2, 3, 5, 9] {
            // Not a whole number of blocks.
            let n = 3 * BLOCK_ROWS + 17;
            let input = values(n, k);
            let (mut v, mut p) = (Array2::from_shape_vec((n, k), input.clone()).unwrap(), Array2::zeros((n, k)));
            let total = rows(&mut v, &mut p, Output::WithLogs);
            let (got_v, got_p) = (v.as_slice().unwrap(), p.as_slice().unwrap());
            let mut want_total = 0.0;
            for i in 0..n {
                let (pr, lr, c) = reference(&input[i * k..(i + 1) * k]);
                want_total += c;
                for j in 0..k {
                    let (got_p, got_l) = (got_p[i * k + j], got_v[i * k + j]);
                    assert!((got_p - pr[j]).abs() <= 4e-16 * pr[j].max(1e-300), "k {k} row {i}: {got_p} vs {}", pr[j]);
                    assert!(
                        (got_l - lr[j]).abs() <= 1e-14 * lr[j].abs().max(1.0),
                        "k {k} row {i}: {got_l} vs {}",
                        lr[j]
                    );
                }
                assert!((got_p[i * k..(i + 1) * k].iter().sum::<f64>() - 1.0).abs() < 1e-15);
            }
            assert!((total - want_total).abs() <= 1e-13 * want_total.abs());
            // Without logs, the values are left as they were and the probabilities are the same bits.
            let (mut v2, mut p2) = (Array2::from_shape_vec((n, k), input.clone()).unwrap(), Array2::zeros((n, k)));
            assert_eq!(rows(&mut v2, &mut p2, Output::Probabilities).to_bits(), total.to_bits());
            assert_eq!(v2.into_raw_vec_and_offset().0, input);
            assert_eq!(p2, p);
        }
    }

    #[test]
    fn every_width_gives_the_same_bits() {
        let (n, k) = (2 * BLOCK_ROWS + 5, 3);
        let input = values(n, k);
        let run = |width| {
            let (mut v, mut p) = (input.clone(), vec![0.0; n * k]);
            let total = softmax_blocks(width, &mut v, &mut p, k, true);
            (v, p, total.to_bits())
        };
        let baseline = run(Width::Baseline);
        for width in Width::available() {
            assert_eq!(run(width), baseline, "{width:?}");
        }
    }

    #[test]
    fn a_row_with_a_non_finite_value_is_nan_and_the_others_are_not_touched() {
        let k = 3;
        let values = vec![0.0, 1.0, 2.0, f64::NAN, 0.0, 1.0, f64::INFINITY, 0.0, 0.0, f64::NEG_INFINITY, 0.0, 0.0];
        // Rows: finite; NaN; +inf; -inf with a finite maximum.
        let (mut v, mut p) = (Array2::from_shape_vec((4, k), values).unwrap(), Array2::zeros((4, k)));
        let total = rows(&mut v, &mut p, Output::WithLogs);
        let (v, p) = (v.as_slice().unwrap(), p.as_slice().unwrap());
        assert!(total.is_nan());
        assert!(p[..3].iter().chain(&v[..3]).all(|x| x.is_finite()));
        assert!(p[3..9].iter().chain(&v[3..9]).all(|x| x.is_nan()), "{p:?} {v:?}");
        // A -inf value is a zero probability in an otherwise finite row.
        assert_eq!(p[9], 0.0);
        assert!((p[10] - 0.5).abs() < 1e-16 && v[9] == f64::NEG_INFINITY);
        let (mut all_minus_inf, mut p1) = (Array2::from_elem((1, k), f64::NEG_INFINITY), Array2::zeros((1, k)));
        assert!(rows(&mut all_minus_inf, &mut p1, Output::Probabilities).is_nan());
        assert!(p1.iter().all(|x| x.is_nan()));
    }
}
