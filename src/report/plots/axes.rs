//! Tick positions and tick labels of the plots' axes, chosen here rather than by plotters so that
//! they read at a glance: the swept M values on the machines axis (thinned only where labels would
//! touch), 1-2-5 ticks with short labels on log axes, "nice" steps on linear axes, and never two
//! ticks with the same label.

/// Approximate width of a tick label's character, in pixels per point of font size (DejaVu Sans
/// digits are 0.64 em wide).
const CHAR_EM: f64 = 0.64;
/// Least free space between two neighbouring labels, in pixels.
const LABEL_GAP: f64 = 8.0;

/// Approximate width in pixels of `text` drawn at `size` points.
pub(super) fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * CHAR_EM * size
}

/// The machine counts to label on a log axis from `lo` to `hi` that is `width` pixels long: every
/// value of `ms` (sorted, distinct) whose label does not touch the one before it, the largest always
/// kept (the last swept M is usually the one a reader looks for).
pub(super) fn machine_ticks(ms: &[usize], lo: f64, hi: f64, width: f64, size: f64) -> Vec<f64> {
    let pixel = |m: usize| (m as f64 / lo).ln() / (hi / lo).ln() * width;
    let half = |m: usize| text_width(&m.to_string(), size) / 2.0;
    let mut kept: Vec<usize> = Vec::new();
    for (i, &m) in ms.iter().enumerate() {
        let last = i + 1 == ms.len();
        let clear = |k: usize| pixel(m) - pixel(k) >= half(m) + half(k) + LABEL_GAP;
        if let Some(&prev) = kept.last()
            && !clear(prev)
        {
            if !last {
                continue;
            }
            kept.pop(); // the largest M replaces its crowded neighbour
            if kept.last().is_some_and(|&k| !clear(k)) {
                kept.pop();
            }
        }
        kept.push(m);
    }
    kept.into_iter().map(|m| m as f64).collect()
}

/// Ticks of a log axis from `lo` to `hi` (0 < lo < hi): 1, 2 and 5 times the powers of ten inside
/// the range when they are at most `max` ticks (and 3 times them too when 1-2-5 gives fewer than 4), else the powers of ten alone (every second, third,
/// ... power when even those are too many). Never empty: a range holding one 1-2-5 value gets it
/// alone, a range inside one 1-2-5 step its two ends.
pub(super) fn log_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    let (e_lo, e_hi) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let within = |v: &f64| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9);
    let decade = |e: i32| 10f64.powi(e);
    let all: Vec<f64> = (e_lo..=e_hi).flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * decade(e))).filter(within).collect();
    // A short range (little more than a decade) also gets 3 times the powers of ten, so that data
    // between 2 and 5 (speedups of 3.2-3.5) have a tick near them.
    let finer: Vec<f64> =
        (e_lo..=e_hi).flat_map(|e| [1.0, 2.0, 3.0, 5.0].map(|m| m * decade(e))).filter(within).collect();
    if all.len() < 4 && finer.len() > all.len().max(1) && finer.len() <= max {
        return finer;
    }
    if all.len() >= 2 && all.len() <= max {
        return all;
    }
    let powers: Vec<i32> = (e_lo..=e_hi).filter(|&e| within(&decade(e))).collect();
    if powers.len() >= 2 {
        let every = powers.len().div_ceil(max.max(1));
        return powers.iter().filter(|&&e| (e - powers[0]) % every as i32 == 0).map(|&e| decade(e)).collect();
    }
    match all.len() {
        0 => vec![lo, hi],
        1 => all,
        _ => all.into_iter().step_by(2).collect(),
    }
}

/// A short label for a positive log-axis value: `0.002`, `5`, `2000` from 1e-3 to below 1e4, `2e-6`
/// and `5e4` outside, with as few digits as the value needs (at most 3 significant).
pub(super) fn log_label(v: f64) -> String {
    let e = v.log10().floor() as i32;
    let mantissa = round_sig(v / 10f64.powi(e), 3);
    if (-3..=3).contains(&e) {
        trim(&format!("{:.*}", (2 - e).max(0) as usize, round_sig(v, 3)))
    } else {
        format!("{}e{e}", trim(&format!("{mantissa:.2}")))
    }
}

/// Ticks of a linear axis from `lo` to `hi`: the multiples of a 1-2-5 step inside the range, at
/// most `max` of them (at least 2 when the range is not empty).
pub(super) fn linear_ticks(lo: f64, hi: f64, max: usize) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if span <= 0.0 || !span.is_finite() {
        return (vec![lo], 1.0);
    }
    let raw = span / max.max(2) as f64;
    let base = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * base).find(|s| span / s <= max as f64).unwrap_or(10.0 * base);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    ((first..=last).map(|i| i as f64 * step).collect(), step)
}

/// A linear-axis label for a multiple of `step`, with the decimals the step needs (so neighbouring
/// ticks never share a label); scientific for very large or small magnitudes.
pub(super) fn linear_label(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    let big = v.abs().max(step);
    if big >= 1e6 || step < 1e-4 {
        let digits = ((big.log10().floor() - step.log10().floor()).max(0.0) as usize).min(15);
        return format!("{v:.digits$e}");
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

fn round_sig(v: f64, digits: i32) -> f64 {
    if v == 0.0 {
        return 0.0;
    }
    let scale = 10f64.powi(digits - 1 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

/// Removes trailing zeros (and a trailing point) from a decimal.
fn trim(s: &str) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ticks_are_the_swept_values_when_they_fit() {
        let ms = [1, 2, 4, 8, 16];
        assert_eq!(machine_ticks(&ms, 1.0 / 1.3, 16.0 * 1.3, 650.0, 15.0), vec![1.0, 2.0, 4.0, 8.0, 16.0]);
    }

    #[test]
    fn crowded_machine_ticks_are_thinned_but_keep_the_largest() {
        let ms: Vec<usize> = (60..=64).collect();
        let t = machine_ticks(&ms, 60.0 / 1.3, 64.0 * 1.3, 650.0, 15.0);
        assert_eq!(*t.last().unwrap(), 64.0);
        assert!(t.len() < ms.len(), "{t:?}");
        let ms = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1024];
        let t = machine_ticks(&ms, 1.0 / 1.3, 1024.0 * 1.3, 650.0, 15.0);
        assert_eq!(*t.last().unwrap(), 1024.0);
        assert!(!t.contains(&1000.0));
    }

    #[test]
    fn log_ticks_are_one_two_five_or_powers_of_ten() {
        assert_eq!(log_ticks(0.9, 11.0, 12), vec![1.0, 2.0, 5.0, 10.0]);
        let wide = log_ticks(1e-30, 1e3, 12);
        assert!(wide.len() <= 12 && wide.len() >= 2, "{wide:?}");
        assert!(wide.iter().all(|v| (v.log10() - v.log10().round()).abs() < 1e-9));
        assert_eq!(log_ticks(3.0, 4.0, 12), vec![3.0, 4.0]);
        // Speedups of 3.2-3.5 under an ideal line to 32: 3 joins 1-2-5.
        assert_eq!(log_ticks(2.1, 48.0, 12), vec![3.0, 5.0, 10.0, 20.0, 30.0]);
        assert_eq!(log_ticks(6.67e-13, 1.5e-12, 12), vec![1e-12]);
    }

    #[test]
    fn log_labels_are_short_and_distinct() {
        let labels: Vec<String> = [1e-7, 2e-6, 0.001, 0.002, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 2000.0, 5e4, 1e8]
            .iter()
            .map(|&v| log_label(v))
            .collect();
        assert_eq!(labels, ["1e-7", "2e-6", "0.001", "0.002", "0.5", "1", "2", "5", "10", "20", "2000", "5e4", "1e8"]);
        assert_eq!(log_label(1.0000000000000002e-6), "1e-6");
    }

    #[test]
    fn linear_labels_never_repeat() {
        for (lo, hi) in [(0.14, 0.152), (0.0, 1.0), (-3.0, 250.0), (1e6, 3e7)] {
            let (ticks, step) = linear_ticks(lo, hi, 8);
            assert!(ticks.len() >= 2 && ticks.len() <= 8, "{lo} {hi}: {ticks:?}");
            let labels: Vec<String> = ticks.iter().map(|&v| linear_label(v, step)).collect();
            let mut distinct = labels.clone();
            distinct.dedup();
            assert_eq!(distinct, labels, "{lo} {hi}");
            assert!(labels.iter().all(|l| l.len() <= 12), "{labels:?}");
        }
    }
}
