//! k-means, used to start EM (on standardised (x, y)) and the reduction (on local expert vectors).

use ndarray::{Array2, ArrayView1, ArrayView2};
use rand::RngExt;

use crate::rng::Rng;

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

/// Lloyd's algorithm from `centers` for at most `iterations` steps (0 = the Voronoi cells of the
/// starting centers). Returns each point's label. A cluster that empties keeps its old center.
pub fn lloyd(pts: ArrayView2<f64>, mut centers: Array2<f64>, iterations: usize) -> Vec<usize> {
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
    labels
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
    fn lloyd_separates_two_obvious_groups() {
        let pts = array![[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.1, 10.0], [0.0, 0.1]];
        let mut rng = crate::rng::stream(3, &[]);
        let seeds = super::plus_plus_seeds(pts.view(), 2, &mut rng);
        let l = super::lloyd(pts.view(), seeds, 10);
        assert_eq!(l[0], l[1]);
        assert_eq!(l[0], l[4]);
        assert_eq!(l[2], l[3]);
        assert_ne!(l[0], l[2]);
    }
}
