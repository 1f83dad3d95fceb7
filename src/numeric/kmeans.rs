//! k-means, used to start EM (on standardised (x, y)) and the reduction (on local expert vectors).

use ndarray::{Array2, ArrayView1, ArrayView2};
use rand::RngExt;

use crate::numeric::rng::Rng;

/// k-means++ seeding (Arthur & Vassilvitskii 2007): the first seed uniformly, each next one with
/// probability proportional to the squared distance to the nearest seed so far. Returns k x dim.
pub fn plus_plus_seeds(pts: ArrayView2<f64>, k: usize, rng: &mut Rng) -> Array2<f64> {
    let n = pts.nrows();
    let mut centers = Array2::<f64>::zeros((k, pts.ncols()));
    centers.row_mut(0).assign(&pts.row(rng.random_range(0..n)));
    let mut d2: Vec<f64> = pts.outer_iter().map(|r| sq_dist(r, centers.row(0))).collect();
    for c in 1..k {
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let mut u = rng.random::<f64>() * total;
            d2.iter()
                .position(|&w| {
                    u -= w;
                    u <= 0.0
                })
                .unwrap_or(n - 1)
        } else {
            rng.random_range(0..n)
        };
        centers.row_mut(c).assign(&pts.row(pick));
        for (i, r) in pts.outer_iter().enumerate() {
            d2[i] = d2[i].min(sq_dist(r, centers.row(c)));
        }
    }
    centers
}

/// Lloyd's algorithm from `centers` for at most `iterations` steps (stopping early when no label
/// changes). Returns the final centers. A cluster that empties keeps its old center.
pub fn lloyd(pts: ArrayView2<f64>, mut centers: Array2<f64>, iterations: usize) -> Array2<f64> {
    let mut labels = assign(pts, &centers);
    for _ in 0..iterations {
        let mut sums = Array2::<f64>::zeros(centers.dim());
        let mut counts = vec![0usize; centers.nrows()];
        for (r, &l) in pts.outer_iter().zip(&labels) {
            let mut s = sums.row_mut(l);
            s += &r;
            counts[l] += 1;
        }
        for (c, &cnt) in counts.iter().enumerate() {
            if cnt > 0 {
                centers.row_mut(c).assign(&(&sums.row(c) / cnt as f64));
            }
        }
        let next = assign(pts, &centers);
        if next == labels {
            break;
        }
        labels = next;
    }
    centers
}

/// k-means++ seeds refined by `iterations` Lloyd steps, computed on at most `max_points` rows drawn
/// without replacement (the centers of a large sample are as good a start as those of all rows, at a
/// fraction of the cost), then every row labelled by its nearest center.
pub fn labels(pts: ArrayView2<f64>, k: usize, iterations: usize, max_points: usize, rng: &mut Rng) -> Vec<usize> {
    let n = pts.nrows();
    let centers = if n > max_points {
        let rows = rand::seq::index::sample(rng, n, max_points).into_vec();
        let sub = pts.select(ndarray::Axis(0), &rows);
        let seeds = plus_plus_seeds(sub.view(), k, rng);
        lloyd(sub.view(), seeds, iterations)
    } else {
        let seeds = plus_plus_seeds(pts, k, rng);
        lloyd(pts, seeds, iterations)
    };
    assign(pts, &centers)
}

/// Index of the nearest center of every point.
pub fn assign(pts: ArrayView2<f64>, centers: &Array2<f64>) -> Vec<usize> {
    pts.outer_iter()
        .map(|r| {
            let mut best = (0, f64::INFINITY);
            for (c, center) in centers.outer_iter().enumerate() {
                let d = sq_dist(r, center);
                if d < best.1 {
                    best = (c, d);
                }
            }
            best.0
        })
        .collect()
}

/// Squared Euclidean distance.
pub fn sq_dist(a: ArrayView1<f64>, b: ArrayView1<f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(u, v)| (u - v) * (u - v)).sum()
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    #[test]
    fn kmeans_separates_two_obvious_groups() {
        let pts = array![[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.1, 10.0], [0.0, 0.1]];
        let mut rng = crate::numeric::rng::stream(3, &[]);
        let l = super::labels(pts.view(), 2, 10, 100, &mut rng);
        assert_eq!(l[0], l[1]);
        assert_eq!(l[0], l[4]);
        assert_eq!(l[2], l[3]);
        assert_ne!(l[0], l[2]);
    }
}

#[cfg(test)]
mod subsample_tests {
    use ndarray::Array2;

    #[test]
    fn subsampled_kmeans_labels_every_row_and_finds_the_groups() {
        let pts = Array2::from_shape_fn(
            (5000, 2),
            |(i, j)| if i % 2 == 0 { 0.0 } else { 10.0 } + ((i * 31 + j) % 7) as f64 * 0.01,
        );
        let mut rng = crate::numeric::rng::stream(5, &[]);
        let l = super::labels(pts.view(), 2, 10, 200, &mut rng);
        assert_eq!(l.len(), 5000);
        assert!(l.iter().step_by(2).all(|&v| v == l[0]));
        assert!(l.iter().skip(1).step_by(2).all(|&v| v == l[1]));
        assert_ne!(l[0], l[1]);
    }
}
