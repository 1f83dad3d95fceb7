//! The figures of `dmoe teach`, one per step of the lesson, all on the same axes: the data coloured
//! by true component with the true experts; each machine's shard with its local fit; the pooled
//! experts in their machine's colour; every MM iteration (pooled experts in the colour of the reduced
//! expert that absorbs them, reduced experts thick with their +- 2 sd bands); the result against the
//! truth and the naive average.

use std::path::Path;

use plotters::style::RGBColor;

use super::figures::{ExpertLine, Panels, Scene, render};
use super::style::{Entry, Look, Marker, estimator_look, sequence_look};
use crate::numeric::model::Moe;
use crate::report::teach::{Lesson, Step};

/// Grey of data points that belong to no particular colour.
const POINT: RGBColor = RGBColor(150, 150, 150);

/// Data points drawn per figure at most (every k-th row beyond): enough to see the data's shape, few
/// enough for a page of many figures.
const MAX_POINTS: usize = 2500;

/// Colours of the reduced experts, unlike the true components' (the sequential scale), so that a
/// reduced expert is not read as the true expert of the same colour.
const REDUCED: [RGBColor; 8] = [
    RGBColor(230, 85, 13),
    RGBColor(117, 107, 177),
    RGBColor(49, 163, 84),
    RGBColor(231, 41, 138),
    RGBColor(140, 81, 10),
    RGBColor(49, 130, 189),
    RGBColor(99, 99, 99),
    RGBColor(188, 189, 34),
];

/// The colour of component (or machine) `i` of `count`.
fn colour(i: usize, count: usize) -> RGBColor {
    sequence_look(i, count).color
}

/// The colour of reduced expert `k`.
fn reduced(k: usize) -> RGBColor {
    REDUCED[k % REDUCED.len()]
}

/// Every k-th of `rows`, at most [`MAX_POINTS`] of them.
fn thinned(rows: std::ops::Range<usize>) -> impl Iterator<Item = usize> {
    let every = rows.len().div_ceil(MAX_POINTS).max(1);
    rows.step_by(every)
}

/// A thin solid line in `color`.
fn thin(color: RGBColor) -> Look {
    Look { color, marker: Marker::None, dashed: false, width: 1 }
}

/// A model's expert lines in one look each, with bands when `bands`.
fn expert_lines(model: &Moe, look: impl Fn(usize) -> Look, bands: bool) -> Vec<ExpertLine> {
    (0..model.k())
        .map(|k| ExpertLine {
            a: model.experts[[k, 0]],
            b: model.experts[[k, 1]],
            sd: bands.then(|| model.variances[k].sqrt()),
            look: look(k),
            label: None,
        })
        .collect()
}

/// The axis ranges every figure shares: the data's, with 4 % margins.
fn ranges(l: &Lesson) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let span = |v: &[f64]| {
        let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
        let pad = 0.04 * (hi - lo).max(1e-9);
        lo - pad..hi + pad
    };
    (span(&l.x), span(&l.y))
}

/// Draws every step's figure into `dir` as `<stem>.png` and `<stem>.svg`.
pub fn draw_all(dir: &Path, l: &Lesson, steps: &[Step]) -> Result<(), String> {
    let (x, y) = ranges(l);
    let (k, m) = (l.settings.k, l.settings.machines);
    let scene = |title: &str, points, lines, legend| Scene {
        title: title.to_string(),
        x: x.clone(),
        y: y.clone(),
        points,
        lines,
        legend,
    };
    let grey: Vec<(f64, f64, RGBColor)> = thinned(0..l.x.len()).map(|r| (l.x[r], l.y[r], POINT)).collect();
    let truth_look = |c: usize| Look { width: 2, dashed: true, ..thin(colour(c, k)) };
    let title = |i: usize| format!("{}: {}", i + 1, steps[i].title);
    // 1: the data by true component, with the true experts.
    let coloured = thinned(0..l.x.len()).map(|r| (l.x[r], l.y[r], colour(l.z[r], k))).collect();
    let legend = (0..k).map(|c| Entry::line(format!("true expert {}", c + 1), truth_look(c))).collect();
    render(dir, &steps[0].stem, &scene(&title(0), coloured, expert_lines(&l.truth, truth_look, false), legend))?;
    // 2: every machine's shard and its local fit.
    let scenes = l
        .shards
        .iter()
        .zip(&l.locals)
        .enumerate()
        .map(|(i, (rows, local))| {
            let points = thinned(rows.clone()).map(|r| (l.x[r], l.y[r], colour(i, m))).collect();
            let look = |_| Look { width: 2, ..thin(colour(i, m)) };
            // Each expert numbered as its machine numbered it.
            let mut lines = expert_lines(local, look, true);
            for (j, line) in lines.iter_mut().enumerate() {
                line.label = Some((j + 1).to_string());
            }
            scene(&format!("machine {} ({} rows)", i + 1, rows.len()), points, lines, Vec::new())
        })
        .collect();
    let legend = vec![
        Entry::note("each panel: one machine's rows and the K experts it fitted (band: +- 2 sd)"),
        Entry::note("the machines number their experts independently"),
    ];
    render(dir, &steps[1].stem, &Panels { scenes, legend })?;
    // 3: the pooled experts in their machine's colour.
    let pooled = |look: &dyn Fn(usize) -> Look| -> Vec<ExpertLine> {
        (0..l.large.n_experts())
            .map(|e| ExpertLine {
                a: l.large.experts[[e, 0]],
                b: l.large.experts[[e, 1]],
                sd: None,
                look: look(e),
                label: None,
            })
            .collect()
    };
    let by_machine = |e: usize| thin(colour(l.large.machine_of[e], m));
    let legend = (0..m).map(|i| Entry::line(format!("machine {}'s experts", i + 1), thin(colour(i, m)))).collect();
    render(dir, &steps[2].stem, &scene(&title(2), grey.clone(), pooled(&by_machine), legend))?;
    // Then every MM iteration.
    for (t, step) in l.steps.iter().enumerate() {
        let by_target = |e: usize| thin(reduced(step.absorbs[e]));
        let mut lines = pooled(&by_target);
        for c in 0..k {
            let sd = step.variances[c].sqrt();
            let look = Look { width: 4, ..thin(reduced(c)) };
            let label = Some((c + 1).to_string());
            lines.push(ExpertLine { a: step.coef[[c, 0]], b: step.coef[[c, 1]], sd: Some(sd), look, label });
        }
        let mut legend: Vec<Entry> = (0..k)
            .map(|c| Entry::line(format!("reduced expert {}", c + 1), Look { width: 4, ..thin(reduced(c)) }))
            .collect();
        legend
            .push(Entry::note("thin lines: the pooled experts, in the colour of the reduced expert that absorbs them"));
        legend.push(Entry::note(format!("J = {:.5} per point", step.objective)));
        render(dir, &steps[3 + t].stem, &scene(&title(3 + t), grey.clone(), lines, legend))?;
    }
    // Last: the result against the truth and the naive average.
    let last = steps.len() - 1;
    let look = |name: &str| Look { marker: Marker::None, ..estimator_look(name) };
    let truth = Look { width: 2, dashed: true, ..thin(RGBColor(0, 0, 0)) };
    // Drawn in this order: the naive average under the reduction (they coincide with one machine or
    // one expert), the dashed truth on top of both.
    let mut lines = Vec::new();
    let mut legend = vec![Entry::line("reduced model (band: +- 2 sd)", look("reduction"))];
    if let Some(naive) = &l.naive {
        lines.extend(expert_lines(naive, |_| look("naive-average"), false));
        legend.push(Entry::line("naive average", look("naive-average")));
    }
    lines.extend(expert_lines(&l.reduced, |_| look("reduction"), true));
    lines.extend(expert_lines(&l.truth, |_| truth, false));
    legend.push(Entry::line("truth", truth));
    render(dir, &steps[last].stem, &scene(&title(last), grey, lines, legend))?;
    Ok(())
}
