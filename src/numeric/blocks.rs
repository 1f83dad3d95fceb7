//! Row blocks: the fixed partition of a fit's rows into blocks of [`BLOCK_ROWS`] that every pass of
//! EM over the data uses. A quantity summed over rows is summed within each block, then over the
//! blocks in block order, so it is the same whether one thread or many computed the blocks: with
//! `threads > 1`, consecutive blocks go to scoped threads and the results come back in block order.
//! With at most [`BLOCK_ROWS`] rows there is one block and the sums are those of a plain loop.

use ndarray::{Array, Array2, Axis, Dimension};
use std::ops::Range;

/// Rows per block.
pub const BLOCK_ROWS: usize = 16_384;

/// The blocks of `0..n`, in order (one empty block when `n = 0`).
fn ranges(n: usize) -> Vec<Range<usize>> {
    let blocks = n.div_ceil(BLOCK_ROWS).max(1);
    (0..blocks).map(|b| b * BLOCK_ROWS..((b + 1) * BLOCK_ROWS).min(n)).collect()
}

/// `f` on every block of `0..n`, in block order, computed by up to `threads` threads (each takes a
/// run of consecutive blocks).
pub fn map<T: Send>(n: usize, threads: usize, f: impl Fn(Range<usize>) -> T + Sync) -> Vec<T> {
    let blocks = ranges(n);
    let threads = threads.clamp(1, blocks.len());
    if threads == 1 {
        return blocks.into_iter().map(f).collect();
    }
    let per = blocks.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let f = &f;
        let workers: Vec<_> =
            blocks.chunks(per).map(|run| scope.spawn(move || run.iter().cloned().map(f).collect::<Vec<T>>())).collect();
        workers.into_iter().flat_map(|w| w.join().expect("a block's work does not panic")).collect()
    })
}

/// The sum of `parts` (all of one shape), added in order.
pub fn sum<D: Dimension>(parts: Vec<Array<f64, D>>) -> Array<f64, D> {
    let mut parts = parts.into_iter();
    let first = parts.next().expect("at least one block");
    parts.fold(first, |acc, p| acc + p)
}

/// The rows of `parts`, stacked in order.
pub fn stack(parts: Vec<Array2<f64>>) -> Array2<f64> {
    if parts.len() == 1 {
        return parts.into_iter().next().expect("one block");
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(Axis(0), &views).expect("blocks of one width")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_rows_in_order_whatever_the_threads() {
        let n = 3 * BLOCK_ROWS + 17;
        for threads in [1, 2, 3, 8] {
            let got = map(n, threads, |r| (r.start, r.end));
            let want: Vec<(usize, usize)> = ranges(n).into_iter().map(|r| (r.start, r.end)).collect();
            assert_eq!(got, want, "{threads} threads");
        }
        assert_eq!(ranges(0), vec![0..0]);
        assert_eq!(ranges(BLOCK_ROWS), vec![0..BLOCK_ROWS]);
    }
}
