//! How each figure of a study is drawn: the shared frame (size, font, title, axes, the legend panel
//! beside the chart), the backends (PNG and SVG), and one `Figure` per kind of plot. What goes into
//! them is chosen in `plots.rs`; tick positions and labels come from `axes`, colours, markers and
//! the legend from `style`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::element::ErrorBarOrientV;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axes::{linear_label, linear_ticks, log_label, log_ticks, machine_ticks, text_width};
use super::style::{
    CHAR_EM, Entry, FAILURE, GUIDE, IN_FLIGHT, LATE, LEGEND_WIDTH, LOCAL_FIT, Look, Marker, REDUCTION, REQUEST,
    SERVER_STEP, WAIT, draw_legend, estimator_look, marker_at, sequence_look,
};
use crate::cluster::record::{Event, EventKind, Span, SpanKind};
use crate::study::CellRun;

/// Width and height of every figure, legend panel included.
pub(super) const SIZE: (u32, u32) = (1040, 600);
pub(super) const FONT: &str = "sans-serif";
/// Font sizes of tick labels and axis descriptions.
const TICK_SIZE: u32 = 15;
const DESC_SIZE: u32 = 16;
/// Pixels around the chart and for the tick labels and axis descriptions.
const MARGIN: u32 = 15;
const X_AREA: u32 = 55;
const Y_AREA: u32 = 80;
/// Most ticks on a value axis.
const MAX_TICKS: usize = 10;

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans is a valid font"));
    });
}

/// A figure that can be drawn on any backend: it draws its chart in `area` and returns its legend.
pub(super) trait Figure {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<Vec<Entry>, String>;
}

pub(super) fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing a plot: {e:?}")
}

/// Writes `stem.png` and `stem.svg`: the chart on the left, its legend in a panel on the right.
/// Returns `stem`.
pub(super) fn render(dir: &Path, stem: &str, fig: &impl Figure) -> Result<String, String> {
    register_font();
    fn frame<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, fig: &impl Figure) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let (chart, side) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        let entries = fig.draw(&chart)?;
        draw_legend(&side, &entries)?;
        root.present().map_err(err)
    }
    let png = dir.join(format!("{stem}.png"));
    frame(BitMapBackend::new(&png, SIZE).into_drawing_area(), fig).map_err(|e| format!("{}: {e}", png.display()))?;
    let svg = dir.join(format!("{stem}.svg"));
    frame(SVGBackend::new(&svg, SIZE).into_drawing_area(), fig).map_err(|e| format!("{}: {e}", svg.display()))?;
    Ok(stem.to_string())
}

/// A chart builder in the shared look: the title, margins and label areas (`x_area` pixels below
/// the chart).
fn chart_builder<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    x_area: u32,
) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(area);
    // Shrunk (down to 11 points) so that a long title stays inside the chart's width.
    let fits = (area.dim_in_pixel().0 as f64 - 20.0) / (CHAR_EM * title.chars().count().max(1) as f64);
    b.caption(title, (FONT, fits.clamp(11.0, 19.0))).margin(MARGIN).x_label_area_size(x_area).y_label_area_size(Y_AREA);
    b
}

/// Pixels along the x axis of a chart drawn by [`chart_builder`] in `area`.
fn x_pixels<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> f64 {
    (area.dim_in_pixel().0 - 2 * MARGIN - Y_AREA) as f64
}

/// A plotters axis (`inner`) ticked at our positions rather than plotters' own.
pub(super) struct Ticked<R> {
    inner: R,
    ticks: Vec<f64>,
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// An axis description and the formatter of its tick labels.
type Labelled<'f> = (&'f str, &'f dyn Fn(&f64) -> String);

/// The mesh with our ticks: `x_fmt` and `y_fmt` label the axes' key points; grid lines only at
/// them (none across a categorical x axis).
fn mesh<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    (x_desc, x_fmt): Labelled,
    (y_desc, y_fmt): Labelled,
    x_grid: bool,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut style = chart.configure_mesh();
    if !x_grid {
        // Categorical: no grid across the bars, no tick marks into their labels.
        style.disable_x_mesh().set_tick_mark_size(LabelAreaPosition::Bottom, 0);
    }
    style
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.12))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(x_fmt)
        .y_label_formatter(y_fmt)
        .label_style((FONT, TICK_SIZE))
        .axis_desc_style((FONT, DESC_SIZE))
        .draw()
        .map_err(err)
}

/// A log x axis over the machine counts `ms`, ticked at the swept values that fit.
fn machines_axis(ms: &[usize], width: f64) -> Ticked<LogCoord<f64>> {
    let mut ms = ms.to_vec();
    ms.sort_unstable();
    ms.dedup();
    let (lo, hi) = (ms[0] as f64 / 1.3, *ms.last().expect("one M at least") as f64 * 1.3);
    let ticks = machine_ticks(&ms, lo, hi, width, TICK_SIZE as f64);
    Ticked { inner: (lo..hi).log_scale().into(), ticks }
}

/// A log value axis from `lo` to `hi` with 1-2-5 ticks.
fn log_axis(lo: f64, hi: f64) -> Ticked<LogCoord<f64>> {
    Ticked { inner: (lo..hi).log_scale().into(), ticks: log_ticks(lo, hi, MAX_TICKS) }
}

/// A linear value axis over `r` with "nice" ticks, and their step (for the labels).
fn linear_axis(r: std::ops::Range<f64>) -> (Ticked<RangedCoordf64>, f64) {
    let (ticks, step) = linear_ticks(r.start, r.end, MAX_TICKS);
    (Ticked { inner: r.into(), ticks }, step)
}

fn machine_label(m: &f64) -> String {
    format!("{}", m.round() as u64)
}

/// Mean of the values (finite by the study's check).
pub(super) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The largest magnitude an axis reaches, and the largest ratio between the ends of a log axis. The
/// study refuses non-finite results before anything is drawn (`study::run`); this is the last
/// guard, because a tick search never ends on an infinite range, nor on a log range whose ends'
/// ratio overflows (1e-300 to 1e300), and padding a value near 1e308 makes it infinite.
const AXIS_LIMIT: f64 = 1e300;

/// Log-scale bounds padded by a factor, for the positive finite values among `values`.
fn log_bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| *v > 0.0 && v.is_finite()).fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.1, 10.0);
    }
    let hi = (hi * 1.5).min(AXIS_LIMIT);
    ((lo / 1.5).max(hi / AXIS_LIMIT), hi)
}

/// Linear bounds padded by a tenth of the span, for the finite values among `values`.
fn linear_bounds(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .map(|v| v.clamp(-AXIS_LIMIT, AXIS_LIMIT))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.1).max(1e-12 * lo.abs().max(1.0));
    (lo - pad).max(-AXIS_LIMIT * 1.5)..(hi + pad).min(AXIS_LIMIT * 1.5)
}

/// The top of an axis from 0 with headroom, for the finite values among `values`.
fn headroom(values: impl Iterator<Item = f64>, factor: f64) -> f64 {
    let top = values.filter(|v| v.is_finite()).fold(0.0, f64::max).min(AXIS_LIMIT);
    (top * factor).max(1e-9)
}

/// A line through `points` in `look` (solid or dashed; no markers).
fn draw_line<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    points: Vec<(f64, f64)>,
    look: Look,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let style = look.color.stroke_width(look.width);
    match look.dashed {
        true => chart.draw_series(DashedLineSeries::new(points, 9, 5, style)).map(|_| ()),
        false => chart.draw_series(LineSeries::new(points, style)).map(|_| ()),
    }
    .map_err(err)
}

/// A series of values by M (one per repetition), drawn as its mean's line with a marker at every
/// value, in `look`; means and values below `floor` drawn at it.
fn draw_series<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    g: &BTreeMap<usize, Vec<f64>>,
    look: Look,
    floor: Option<f64>,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let floor = floor.unwrap_or(f64::NEG_INFINITY);
    draw_line(chart, g.iter().map(|(&m, v)| (m as f64, mean(v).max(floor))).collect(), look)?;
    chart
        .draw_series(g.iter().flat_map(|(&m, v)| v.iter().map(move |&y| marker_at((m as f64, y.max(floor)), look))))
        .map_err(err)?;
    Ok(())
}

/// Speedup per sweep group: lines over M (mean, with the min-max over repetitions) against the
/// ideal speedup M; bars per group when every cell has the same M.
pub(super) struct Speedup {
    pub(super) title: String,
    pub(super) groups: Vec<(String, BTreeMap<usize, Vec<f64>>)>,
    /// What the groups are, for the x axis of the bars.
    pub(super) bar_desc: String,
    /// Each group's look, when the groups are protocols under networks (empty: a sequence).
    pub(super) looks: Vec<Look>,
}

const SPEEDUP_DESC: &str = "speedup = global fit time / makespan";

/// The whiskers of a series at x: the range of its values `v`, `cap` pixels wide.
fn whiskers(x: f64, v: &[f64], color: RGBColor, cap: u32) -> ErrorBar<f64, f64, ErrorBarOrientV<f64, f64>> {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    ErrorBar::new_vertical(x, lo, mean(v), hi, color.stroke_width(1), cap)
}

impl Speedup {
    /// Whether any mean is over more than one repetition (then the whiskers need a legend note).
    fn repeated(&self) -> bool {
        self.groups.iter().any(|(_, g)| g.values().any(|v| v.len() > 1))
    }

    /// The look of group `i`: the reduction's own when there is one group.
    fn look(&self, i: usize) -> Look {
        if let Some(look) = self.looks.get(i) {
            return *look;
        }
        match self.groups.len() {
            1 => estimator_look("reduction"),
            n => sequence_look(i, n),
        }
    }
}

impl Figure for Speedup {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<Vec<Entry>, String> {
        let ms: Vec<usize> = self.groups.iter().flat_map(|(_, g)| g.keys().copied()).collect();
        if ms.iter().all(|&m| m == ms[0]) {
            return self.bars(area, ms[0]);
        }
        let (m_lo, m_hi) = (*ms.iter().min().expect("values") as f64, *ms.iter().max().expect("values") as f64);
        let (y_lo, y_hi) =
            log_bounds(self.groups.iter().flat_map(|(_, g)| g.values().flatten().copied()).chain([m_lo, m_hi]));
        let mut chart = chart_builder(area, &self.title, X_AREA)
            .build_cartesian_2d(machines_axis(&ms, x_pixels(area)), log_axis(y_lo, y_hi))
            .map_err(err)?;
        mesh(&mut chart, ("machines M", &machine_label), (SPEEDUP_DESC, &|v| log_label(*v)), true)?;
        let mut all_m = ms.clone();
        all_m.sort_unstable();
        all_m.dedup();
        let ideal = all_m.iter().map(|&m| (m as f64, m as f64)).collect();
        draw_line(&mut chart, ideal, GUIDE)?;
        let mut entries = vec![Entry::line("ideal: speedup = M", GUIDE)];
        for (i, (label, g)) in self.groups.iter().enumerate() {
            let look = self.look(i);
            draw_series(&mut chart, g, look, None)?;
            chart.draw_series(g.iter().map(|(&m, v)| whiskers(m as f64, v, look.color, 10))).map_err(err)?;
            entries.push(Entry::line(label.clone(), look));
        }
        if self.repeated() {
            entries.push(Entry::note("line: mean; markers: repetitions;"));
            entries.push(Entry::note("whiskers: their range"));
        }
        Ok(entries)
    }
}

impl Speedup {
    /// One bar per group (the mean speedup, with the repetitions' range) when all cells share `m`;
    /// networks are named on the axis up to any parenthesis, in full in the legend.
    fn bars<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, m: usize) -> Result<Vec<Entry>, String> {
        let means: Vec<f64> = self.groups.iter().map(|(_, g)| mean(&g[&m])).collect();
        let top = headroom(self.groups.iter().flat_map(|(_, g)| g[&m].iter().copied()).chain([1.0]), 1.15);
        let labels: Vec<String> =
            self.groups.iter().map(|(l, _)| l.split(" (").next().unwrap_or(l).replace(", ", "\n")).collect();
        let categories = Categories::new(&labels, x_pixels(area));
        let (y, step) = linear_axis(0.0..top);
        let mut chart = chart_builder(area, &self.title, categories.area())
            .build_cartesian_2d(categories.axis(), y)
            .map_err(err)?;
        mesh(&mut chart, (&self.bar_desc, &|_| String::new()), (SPEEDUP_DESC, &|v| linear_label(*v, step)), false)?;
        categories.label(area, &chart)?;
        let colour = estimator_look("reduction").color;
        chart
            .draw_series(
                means
                    .iter()
                    .enumerate()
                    .map(|(i, &s)| Rectangle::new([(i as f64 - 0.3, 0.0), (i as f64 + 0.3, s)], colour.filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(self.groups.iter().enumerate().map(|(i, (_, g))| whiskers(i as f64, &g[&m], BLACK, 12)))
            .map_err(err)?;
        draw_line(&mut chart, vec![(-0.5, 1.0), (labels.len() as f64 - 0.5, 1.0)], GUIDE)?;
        let mut entries =
            vec![Entry::block("reduction: mean speedup", colour), Entry::line("speedup 1: no gain", GUIDE)];
        if self.repeated() {
            entries.push(Entry::note("whiskers: range over repetitions"));
        }
        let shortened = self.groups.iter().zip(&labels).any(|((l, _), s)| *l != s.replace('\n', ", "));
        if shortened {
            entries.extend(self.groups.iter().map(|(l, _)| Entry::note(l.clone())));
        }
        Ok(entries)
    }
}

/// A categorical x axis: one position per label at 0, 1, ..., each label split at `\n` into lines
/// from the innermost sweep to the outermost. Each line is drawn once, centred under the run of
/// consecutive bars that share it and every line below it (M under its network, the network under
/// its protocol, and so on), the runs of a line alternating between two rows when their labels
/// would touch on one; a line that differs from bar to bar is drawn under its bars, ticked at the
/// labels that fit side by side (every one, or every second, third, ... counting back from the
/// last).
struct Categories {
    lines: Vec<Vec<String>>,
    shown: Vec<usize>,
    /// Per line of the labels, its runs ([`runs`]) and whether they alternate between two rows.
    runs: Vec<Vec<(usize, usize)>>,
    staggered: Vec<bool>,
}

/// Height of one line of a category label, in pixels.
const CATEGORY_LINE: u32 = TICK_SIZE + 3;

/// plotters draws a font of size `s` at `s / 1.24` pixels (the SVG's font-size).
const DRAWN_FONT_SCALE: f64 = 1.0 / 1.24;

/// The room a category label takes on its line, in pixels: its width as drawn and a gap.
fn category_width(label: &str) -> f64 {
    text_width(label, TICK_SIZE as f64 * DRAWN_FONT_SCALE) + 8.0
}

/// The runs of consecutive labels whose lines from `k` on agree: `(first, last)` label of each.
fn runs(lines: &[Vec<String>], k: usize) -> Vec<(usize, usize)> {
    let tail = |i: usize| lines[i].get(k..).unwrap_or(&[]);
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for i in 0..lines.len() {
        match runs.last_mut() {
            Some(run) if tail(run.0) == tail(i) => run.1 = i,
            _ => runs.push((i, i)),
        }
    }
    runs
}

impl Categories {
    fn new(labels: &[String], width: f64) -> Categories {
        let lines: Vec<Vec<String>> = labels.iter().map(|l| l.split('\n').map(str::to_string).collect()).collect();
        let n = lines.len().max(1);
        let first = lines.iter().filter_map(|l| l.first());
        let widest = first.map(|l| category_width(l)).fold(0.0, f64::max);
        let every = ((widest * n as f64 / width).ceil() as usize).max(1);
        let mut shown: Vec<usize> = (0..lines.len()).rev().step_by(every).collect();
        shown.reverse();
        let per_label = width / n as f64;
        let depth = lines.iter().map(Vec::len).max().unwrap_or(0);
        let runs: Vec<Vec<(usize, usize)>> = (0..depth).map(|k| runs(&lines, k)).collect();
        let staggered = runs
            .iter()
            .enumerate()
            .map(|(k, runs)| {
                let room = |i: usize| lines[i].get(k).map_or(0.0, |l| category_width(l));
                runs.len() < lines.len()
                    && runs.windows(2).any(|w| {
                        let apart = ((w[1].0 + w[1].1) as f64 - (w[0].0 + w[0].1) as f64) / 2.0 * per_label;
                        apart < (room(w[0].0) + room(w[1].0)) / 2.0
                    })
            })
            .collect();
        Categories { lines, shown, runs, staggered }
    }

    /// The x axis (its grid and tick marks at the shown labels; the labels are drawn by [`Self::label`]).
    fn axis(&self) -> Ticked<RangedCoordf64> {
        let ticks = self.shown.iter().map(|&i| i as f64).collect();
        Ticked { inner: (-0.5..(self.lines.len().max(1) as f64 - 0.5)).into(), ticks }
    }

    /// The first row of line `k` (each line takes one row, two when staggered).
    fn row(&self, k: usize) -> u32 {
        self.staggered[..k].iter().map(|&s| 1 + s as u32).sum()
    }

    /// Pixels below the chart for the labels and the axis description.
    fn area(&self) -> u32 {
        X_AREA + self.row(self.staggered.len()).saturating_sub(1) * CATEGORY_LINE
    }

    /// Draws the labels under their bars on `area`, whose chart is `chart`.
    fn label<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
        &self,
        area: &DrawingArea<DB, Shift>,
        chart: &ChartContext<'_, DB, Cartesian2d<Ticked<RangedCoordf64>, Y>>,
    ) -> Result<(), String> {
        let style = TextStyle::from((FONT, TICK_SIZE).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        let bottom = chart.y_range().start;
        for (k, runs) in self.runs.iter().enumerate() {
            let at: Vec<(f64, usize)> = match runs.len() == self.lines.len() {
                true => self.shown.iter().map(|&i| (i as f64, i)).collect(),
                false => runs.iter().map(|&(a, b)| ((a + b) as f64 / 2.0, a)).collect(),
            };
            // Where the last label of each row ends; one that would still touch it is left out.
            let mut right = [f64::NEG_INFINITY; 2];
            for (r, (x, i)) in at.into_iter().enumerate() {
                let Some(line) = self.lines[i].get(k) else { continue };
                let sub = usize::from(self.staggered[k] && r % 2 == 1);
                let (px, py) = chart.backend_coord(&(x, bottom));
                let half = category_width(line) / 2.0;
                if px as f64 - half < right[sub] {
                    continue;
                }
                right[sub] = px as f64 + half;
                let pos = (px, py + 8 + ((self.row(k) + sub as u32) * CATEGORY_LINE) as i32);
                area.draw(&Text::new(line.clone(), pos, style.clone())).map_err(err)?;
            }
        }
        Ok(())
    }
}

/// The phases of a bar, bottom to top: the slowest local fit, the network, the wait for the
/// deadline, the reduction; with protocols of several rounds, each summed over the rounds.
const PHASES: [(&str, &str, RGBColor); 4] = [
    ("slowest local fit", "slowest machine's work, per round", LOCAL_FIT),
    ("network", "network", IN_FLIGHT),
    ("wait for the deadline", "wait for the deadlines", WAIT),
    ("reduction", "server's steps (the reduction in one-shot)", REDUCTION),
];

/// A cell's bar: its label, the mean seconds of each of [`PHASES`], and the global fit's.
pub(super) struct Bar {
    pub(super) label: String,
    pub(super) phases: [f64; 4],
    pub(super) global: Option<f64>,
}

pub(super) struct Breakdown {
    pub(super) title: String,
    /// What the bars are (the x axis description).
    pub(super) x_desc: String,
    /// One bar per cell.
    pub(super) bars: Vec<Bar>,
    /// Whether some protocol takes several rounds (the phases are then sums over rounds).
    pub(super) rounds: bool,
}

impl Figure for Breakdown {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<Vec<Entry>, String> {
        let top = headroom(self.bars.iter().map(|b| b.phases.iter().sum::<f64>().max(b.global.unwrap_or(0.0))), 1.1);
        let labels: Vec<String> = self.bars.iter().map(|b| b.label.clone()).collect();
        let categories = Categories::new(&labels, x_pixels(area));
        let (y, step) = linear_axis(0.0..top);
        let mut chart = chart_builder(area, &self.title, categories.area())
            .build_cartesian_2d(categories.axis(), y)
            .map_err(err)?;
        let y_desc = "virtual time (seconds)";
        mesh(&mut chart, (&self.x_desc, &|_| String::new()), (y_desc, &|v| linear_label(*v, step)), false)?;
        categories.label(area, &chart)?;
        let mut entries = Vec::new();
        for (p, (one, several, c)) in PHASES.into_iter().enumerate() {
            let name = if self.rounds { several } else { one };
            // The wait is shown (and named in the legend) only when some cell waited.
            if p == 2 && self.bars.iter().all(|b| b.phases[p] == 0.0) {
                continue;
            }
            chart
                .draw_series(self.bars.iter().enumerate().map(|(i, b)| {
                    let base: f64 = b.phases[..p].iter().sum();
                    let x = i as f64;
                    Rectangle::new([(x - 0.35, base), (x + 0.35, base + b.phases[p])], c.filled())
                }))
                .map_err(err)?;
            entries.push(Entry::block(name, c));
        }
        if self.bars.iter().any(|b| b.global.is_some()) {
            chart
                .draw_series(self.bars.iter().enumerate().filter_map(|(i, b)| {
                    b.global.map(|g| {
                        PathElement::new(vec![(i as f64 - 0.45, g), (i as f64 + 0.45, g)], BLACK.stroke_width(3))
                    })
                }))
                .map_err(err)?;
            let global = Look { dashed: false, width: 3, ..estimator_look("global") };
            entries.push(Entry::line("global fit, one machine", global));
        }
        Ok(entries)
    }
}

/// One line of an accuracy plot: its legend label, its look, and its values over repetitions by M.
pub(super) struct Series {
    pub(super) label: String,
    pub(super) look: Look,
    pub(super) values: BTreeMap<usize, Vec<f64>>,
}

/// A metric by M for several estimators, with horizontal reference lines.
pub(super) struct Accuracy {
    pub(super) title: String,
    pub(super) y_desc: String,
    pub(super) log_y: bool,
    /// Values and means below it are drawn at it (after the mean is taken).
    pub(super) floor: Option<f64>,
    /// Per estimator (or protocol), in legend order.
    pub(super) series: Vec<Series>,
    /// The reference lines: legend label, value and look of each.
    pub(super) references: Vec<(String, f64, Look)>,
}

impl Accuracy {
    fn points(&self) -> impl Iterator<Item = f64> + '_ {
        let floor = self.floor.unwrap_or(f64::NEG_INFINITY);
        self.series
            .iter()
            .flat_map(|s| s.values.values().flatten().copied())
            .chain(self.references.iter().map(|r| r.1))
            .map(move |v| v.max(floor))
    }
}

impl Figure for Accuracy {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<Vec<Entry>, String> {
        let ms: Vec<usize> = self.series.iter().flat_map(|s| s.values.keys().copied()).collect();
        let x = machines_axis(&ms, x_pixels(area));
        if self.log_y {
            let (lo, hi) = log_bounds(self.points());
            let mut chart =
                chart_builder(area, &self.title, X_AREA).build_cartesian_2d(x, log_axis(lo, hi)).map_err(err)?;
            mesh(&mut chart, ("machines M", &machine_label), (&self.y_desc, &|v| log_label(*v)), true)?;
            self.fill(chart)
        } else {
            let (y, step) = linear_axis(linear_bounds(self.points()));
            let mut chart = chart_builder(area, &self.title, X_AREA).build_cartesian_2d(x, y).map_err(err)?;
            mesh(&mut chart, ("machines M", &machine_label), (&self.y_desc, &|v| linear_label(*v, step)), true)?;
            self.fill(chart)
        }
    }
}

impl Accuracy {
    /// The reference lines, then the series, the first (the reduction) drawn last so that it stays
    /// on top.
    fn fill<'a, DB: DrawingBackend + 'a, X, Y>(
        &self,
        mut chart: ChartContext<'a, DB, Cartesian2d<X, Y>>,
    ) -> Result<Vec<Entry>, String>
    where
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        let mut entries: Vec<Entry> = self.series.iter().map(|s| Entry::line(s.label.clone(), s.look)).collect();
        for (label, value, look) in &self.references {
            let r = chart.x_range();
            draw_line(&mut chart, vec![(r.start, *value), (r.end, *value)], *look)?;
            entries.push(Entry::line(label.clone(), *look));
        }
        for s in self.series.iter().rev() {
            draw_series(&mut chart, &s.values, s.look, self.floor)?;
        }
        Ok(entries)
    }
}

pub(super) struct Gantt<'a> {
    pub(super) title: String,
    pub(super) run: &'a CellRun,
}

/// Half the height of a timeline bar.
const GANTT_HALF_HEIGHT: f64 = 0.38;

type GanttChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticked<RangedCoordf64>, RangedCoordf64>>;

impl Figure for Gantt<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<Vec<Entry>, String> {
        let r = &self.run.record;
        let m = r.machines.len();
        let end = headroom(r.events.iter().map(|e| e.time).chain([r.makespan_s]), 1.05);
        // A little room left of 0, so that a failed machine's cross is not cut by the axis.
        let (x, step) = linear_axis(-0.015 * end..end);
        let (bottom, top) = (-(self.server_half() + 0.32), self.row(0) + 0.7);
        let mut chart = chart_builder(area, &self.title, X_AREA).build_cartesian_2d(x, bottom..top).map_err(err)?;
        let offset = self.offset();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.12))
            .y_labels((m + 1).min(25))
            .y_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() > 1e-6 || i < 0.0 || i > m as f64 + offset || (i > 0.0 && i <= offset) {
                    String::new()
                } else if i == 0.0 {
                    "server".into()
                } else {
                    format!("machine {}", m - (i - offset) as usize)
                }
            })
            .x_label_formatter(&|v| linear_label(*v, step))
            .x_desc("virtual time (seconds)")
            .label_style((FONT, 13))
            .axis_desc_style((FONT, DESC_SIZE))
            .draw()
            .map_err(err)?;
        let mut entries = self.draw_machines(&mut chart)?;
        entries.extend(self.draw_server(&mut chart)?);
        Ok(entries)
    }
}

impl Gantt<'_> {
    /// The y position of machine `machine`: machine 0 on top, the server at 0 (below the last machine
    /// by [`Self::offset`] rows more).
    fn row(&self, machine: usize) -> f64 {
        (self.run.record.machines.len() - machine) as f64 + self.offset()
    }

    /// Half the height of the server's bar: a machine's, or a 80th of the machines, whichever is more,
    /// so that the reduction stays visible among hundreds of machine rows.
    fn server_half(&self) -> f64 {
        GANTT_HALF_HEIGHT.max(self.run.record.machines.len() as f64 / 80.0)
    }

    /// Whole rows left empty above the server for its taller bar.
    fn offset(&self) -> f64 {
        (self.server_half() - GANTT_HALF_HEIGHT).ceil()
    }

    /// Every machine's work, its requests and answers in flight (late answers grey), and a cross for a
    /// failure, round by round from the record's timeline.
    fn draw_machines<DB: DrawingBackend>(&self, chart: &mut GanttChart<'_, DB>) -> Result<Vec<Entry>, String> {
        let r = &self.run.record;
        let spans = r.spans();
        let h = GANTT_HALF_HEIGHT;
        let several = r.rounds.len() > 1;
        let bar = |sp: &Span, color: RGBColor| {
            let y = self.row(sp.machine.expect("a machine's span"));
            Rectangle::new([(sp.start, y - h), (sp.end, y + h)], color.filled())
        };
        let of = |kind: SpanKind| spans.iter().filter(move |sp| sp.machine.is_some() && sp.kind == kind);
        chart.draw_series(of(SpanKind::Work).map(|sp| bar(sp, LOCAL_FIT))).map_err(err)?;
        chart.draw_series(of(SpanKind::Request).map(|sp| bar(sp, REQUEST))).map_err(err)?;
        chart.draw_series(of(SpanKind::Answer { late: false }).map(|sp| bar(sp, IN_FLIGHT))).map_err(err)?;
        chart.draw_series(of(SpanKind::Answer { late: true }).map(|sp| bar(sp, LATE))).map_err(err)?;
        let fits = r.machines.iter().any(|m| m.iterations.is_some());
        let mut entries = match (fits, several) {
            (true, false) => vec![Entry::block("local EM fit", LOCAL_FIT), Entry::block("report in flight", IN_FLIGHT)],
            (true, true) => vec![Entry::block("local EM fit, then E-steps", LOCAL_FIT)],
            (false, _) => vec![Entry::block("machine work", LOCAL_FIT)],
        };
        if several {
            entries.push(Entry::block("request in flight", REQUEST));
            entries.push(Entry::block("answer in flight", IN_FLIGHT));
        }
        if of(SpanKind::Answer { late: true }).next().is_some() {
            entries.push(Entry::block(if several { "late answer (not used)" } else { "late report (not used)" }, LATE));
        }
        let failures: Vec<&Event> = r.events.iter().filter(|e| e.kind == EventKind::Failed).collect();
        if !failures.is_empty() {
            let cross = |e: &&Event| {
                Cross::new((e.time, self.row(e.machine.expect("a machine fails"))), 6, FAILURE.stroke_width(2))
            };
            chart.draw_series(failures.iter().map(cross)).map_err(err)?;
            entries.push(Entry::line(
                "failed machine",
                Look { color: FAILURE, marker: Marker::Cross, dashed: false, width: 0 },
            ));
        }
        Ok(entries)
    }

    /// The server's steps (the reduction in one-shot), its waits for the deadline, and each deadline
    /// it stopped at.
    fn draw_server<'a, DB: DrawingBackend + 'a>(&self, chart: &mut GanttChart<'a, DB>) -> Result<Vec<Entry>, String> {
        let r = &self.run.record;
        let h = self.server_half();
        let mut entries = Vec::new();
        let waits: Vec<(f64, f64)> =
            r.rounds.iter().filter(|x| x.wait_s > 0.0).map(|x| (x.step_start_s - x.wait_s, x.step_start_s)).collect();
        if !waits.is_empty() {
            chart
                .draw_series(waits.iter().map(|&(a, b)| Rectangle::new([(a, -h), (b, h)], WAIT.filled())))
                .map_err(err)?;
            entries.push(Entry::block("server waits for the deadline", WAIT));
        }
        let steps: Vec<Span> = r.spans().into_iter().filter(|sp| sp.machine.is_none()).collect();
        let style = |sp: &Span| if sp.kind == (SpanKind::Step { reduces: true }) { REDUCTION } else { SERVER_STEP };
        chart
            .draw_series(steps.iter().map(|sp| Rectangle::new([(sp.start, -h), (sp.end, h)], style(sp).filled())))
            .map_err(err)?;
        if steps.iter().any(|sp| sp.kind == (SpanKind::Step { reduces: true })) {
            entries.push(Entry::block("reduction", REDUCTION));
        }
        if steps.iter().any(|sp| sp.kind == (SpanKind::Step { reduces: false })) {
            entries.push(Entry::block("server step (start fit, M-step, average)", SERVER_STEP));
        }
        let deadlines: Vec<f64> = r.events.iter().filter(|e| e.kind == EventKind::Deadline).map(|e| e.time).collect();
        if !deadlines.is_empty() {
            let deadline = Look { color: FAILURE, ..GUIDE };
            for d in &deadlines {
                draw_line(chart, vec![(*d, -(h + 0.32)), (*d, self.row(0) + 0.7)], deadline)?;
            }
            entries.push(Entry::line("deadline", deadline));
        }
        if let Some(why) = &r.stopped {
            entries.push(Entry::note(format!("ended early: {why}")));
        }
        if r.rounds.len() > 1 {
            // A faint line where each round opens (every k-th of many), so the rounds can be told apart.
            let every = r.rounds.len().div_ceil(40);
            let opening = Look { color: RGBColor(150, 150, 150), marker: Marker::None, dashed: true, width: 1 };
            for round in r.rounds.iter().skip(1).step_by(every) {
                draw_line(chart, vec![(round.open_s, -(h + 0.32)), (round.open_s, self.row(0) + 0.7)], opening)?;
            }
            let which = match every {
                1 => "a round opens".to_string(),
                _ => format!("a round opens (one line per {every} rounds)"),
            };
            entries.push(Entry::line(which, opening));
            entries.push(Entry::note(format!("{} rounds", r.rounds.len())));
        }
        Ok(entries)
    }
}

/// The MM objective's excess over its final value, per iteration, one line per distinct trace.
pub(super) struct Objective {
    pub(super) title: String,
    /// Per distinct trace: legend label (the cells that share it) and `(J_t - J_final) / S` per
    /// iteration, floored at [`EXCESS_FLOOR`].
    pub(super) traces: Vec<(String, Vec<f64>)>,
}

/// The smallest excess drawn: values at or below it (the final iteration's 0 among them) are drawn
/// at it, so that no cell disappears from the log axis.
pub(super) const EXCESS_FLOOR: f64 = 1e-12;

impl Figure for Objective {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<Vec<Entry>, String> {
        let longest = self.traces.iter().map(|(_, t)| t.len()).max().unwrap_or(1).max(2);
        let (lo, hi) = log_bounds(self.traces.iter().flat_map(|(_, t)| t.iter().copied()).chain([EXCESS_FLOOR]));
        // Whole iterations only (nice steps of at least 1), with room for the end markers.
        let last = (longest - 1) as f64;
        let (ticks, step) = linear_ticks(0.0, last, MAX_TICKS);
        let (ticks, step) = if step < 1.0 { ((0..longest).map(|i| i as f64).collect(), 1.0) } else { (ticks, step) };
        let pad = 0.03 * last;
        let x: Ticked<RangedCoordf64> = Ticked { inner: (-pad..last + pad).into(), ticks };
        let mut chart =
            chart_builder(area, &self.title, X_AREA).build_cartesian_2d(x, log_axis(lo, hi)).map_err(err)?;
        let y_desc = format!("(J - final J) / S, nats per point (at most {} drawn at it)", log_label(EXCESS_FLOOR));
        let x_desc = "MM iteration of the refinement on all supporting points";
        mesh(&mut chart, (x_desc, &|v| linear_label(*v, step)), (&y_desc, &|v| log_label(*v)), true)?;
        let mut entries = Vec::new();
        for (i, (label, t)) in self.traces.iter().enumerate() {
            let look = sequence_look(i, self.traces.len());
            let by_iteration: BTreeMap<usize, Vec<f64>> = t.iter().enumerate().map(|(j, &v)| (j, vec![v])).collect();
            draw_series(&mut chart, &by_iteration, look, None)?;
            entries.push(Entry::line(label.clone(), look));
        }
        entries.push(Entry::note("repetition 0"));
        Ok(entries)
    }
}

/// A straight expert line `y = a + b x` of a one-covariate model, with its band `+- 2 sd` when given.
pub(super) struct ExpertLine {
    pub(super) a: f64,
    pub(super) b: f64,
    pub(super) sd: Option<f64>,
    pub(super) look: Look,
    /// Written at the line's right end (an expert's number), when given.
    pub(super) label: Option<String>,
}

/// Data points and expert lines on one covariate (`dmoe teach`): points in their colours, bands
/// shaded, lines on top, over fixed axis ranges so that every step of a lesson shares its axes.
pub(super) struct Scene {
    pub(super) title: String,
    pub(super) x: std::ops::Range<f64>,
    pub(super) y: std::ops::Range<f64>,
    pub(super) points: Vec<(f64, f64, RGBColor)>,
    pub(super) lines: Vec<ExpertLine>,
    pub(super) legend: Vec<Entry>,
}

impl Scene {
    /// Draws the scene's chart in `area`.
    fn chart<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let ((x, x_step), (y, y_step)) = (linear_axis(self.x.clone()), linear_axis(self.y.clone()));
        let mut chart = chart_builder(area, &self.title, X_AREA).build_cartesian_2d(x, y).map_err(err)?;
        mesh(&mut chart, ("x", &|v| linear_label(*v, x_step)), ("y", &|v| linear_label(*v, y_step)), true)?;
        chart
            .draw_series(self.points.iter().map(|&(x, y, c)| Circle::new((x, y), 2, c.mix(0.55).filled())))
            .map_err(err)?;
        let (x0, x1) = (self.x.start, self.x.end);
        for l in &self.lines {
            if let Some(sd) = l.sd {
                let band = vec![
                    (x0, l.a + l.b * x0 - 2.0 * sd),
                    (x1, l.a + l.b * x1 - 2.0 * sd),
                    (x1, l.a + l.b * x1 + 2.0 * sd),
                    (x0, l.a + l.b * x0 + 2.0 * sd),
                ];
                chart.draw_series([Polygon::new(band, l.look.color.mix(0.12).filled())]).map_err(err)?;
            }
        }
        for l in &self.lines {
            draw_line(&mut chart, vec![(x0, l.a + l.b * x0), (x1, l.a + l.b * x1)], l.look)?;
        }
        // Numbers near the right edge, a little above their line (kept within the y range), each a
        // step further left than the one before, so that lines meeting at the edge keep apart.
        let (lift, (y0, y1)) = (0.045 * (self.y.end - self.y.start), (self.y.start, self.y.end));
        let style = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
        for (j, l) in self.lines.iter().filter(|l| l.label.is_some()).enumerate() {
            let at = x1 - (0.03 + 0.07 * j as f64) * (x1 - x0);
            let y = (l.a + l.b * at + lift).clamp(y0 + lift, y1 - lift);
            let text = Text::new(l.label.clone().unwrap_or_default(), (at, y), style.color(&l.look.color));
            chart.draw_series([text]).map_err(err)?;
        }
        Ok(())
    }
}

impl Figure for Scene {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<Vec<Entry>, String> {
        self.chart(area)?;
        Ok(self.legend.iter().map(Entry::clone).collect())
    }
}

/// Several scenes side by side in a grid (one per machine), with one legend.
pub(super) struct Panels {
    pub(super) scenes: Vec<Scene>,
    pub(super) legend: Vec<Entry>,
}

impl Figure for Panels {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<Vec<Entry>, String> {
        let cols = (self.scenes.len() as f64).sqrt().ceil() as usize;
        let rows = self.scenes.len().div_ceil(cols);
        for (scene, panel) in self.scenes.iter().zip(area.split_evenly((rows, cols))) {
            scene.chart(&panel)?;
        }
        Ok(self.legend.iter().map(Entry::clone).collect())
    }
}

/// Size of the M labels beside the trade-off plot's markers.
const POINT_LABEL_SIZE: f64 = 12.0;

/// Writes each label to the upper right of its point (backend pixels), moved up a line at a time (or,
/// at the top of the chart, down) until it overlaps no label already written, inside the chart's
/// `rows` of pixels, so that points that fall together (at the loss floor, say) stay readable.
fn draw_point_labels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    labels: &[(String, (i32, i32), RGBColor)],
    rows: std::ops::Range<i32>,
) -> Result<(), String> {
    let (x0, y0) = area.get_base_pixel();
    let height = POINT_LABEL_SIZE as i32 + 1;
    let (first, last) = (rows.start - y0, rows.end - y0 - height);
    let mut placed: Vec<(i32, i32, i32)> = Vec::new();
    for (text, (px, py), color) in labels {
        let (left, width) = (px - x0 + 6, text_width(text, POINT_LABEL_SIZE).ceil() as i32);
        let overlaps = |top: i32| {
            placed.iter().any(|&(l, t, w)| left < l + w && l < left + width && top < t + height && t < top + height)
        };
        let base = py - y0 - height - 2;
        let up = (0..20).map(|k| base - k * height);
        let down = (1..20).map(|k| base + k * height);
        let top = up
            .chain(down)
            .filter(|&t| (first..=last).contains(&t))
            .find(|&t| !overlaps(t))
            .unwrap_or(base.clamp(first, last.max(first)));
        placed.push((left, top, width));
        let font = (FONT, POINT_LABEL_SIZE).into_font().color(color);
        area.draw(&Text::new(text.clone(), (left, top), font)).map_err(err)?;
    }
    Ok(())
}

/// One protocol in a trade-off panel: its name, its look and its points `(M, mean makespan, mean
/// test log-likelihood per row lost against the global fit)`, by M.
pub(super) type TradeoffSeries = (String, Look, Vec<(usize, f64, f64)>);

/// Makespan against accuracy, both on log axes: the test log-likelihood per row each protocol loses
/// against the global fit (losses and gains below `floor` drawn at it), one panel per network with
/// a marker per protocol and M, the axes shared by the panels.
pub(super) struct Tradeoff {
    pub(super) title: String,
    /// Per network: its name and its protocols' series.
    pub(super) panels: Vec<(String, Vec<TradeoffSeries>)>,
    /// The smallest loss drawn.
    pub(super) floor: f64,
}

impl Figure for Tradeoff {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<Vec<Entry>, String> {
        let points = || self.panels.iter().flat_map(|(_, s)| s.iter().flat_map(|(_, _, p)| p.iter()));
        let (x_lo, x_hi) = log_bounds(points().map(|p| p.1));
        let (y_lo, y_hi) = log_bounds(points().map(|p| p.2.max(self.floor)));
        let fits = (area.dim_in_pixel().0 as f64 - 20.0) / (CHAR_EM * self.title.chars().count().max(1) as f64);
        let (top, body) = area.split_vertically(36);
        let title_font = (FONT, fits.clamp(11.0, 19.0)).into_font().color(&BLACK);
        top.draw(&Text::new(self.title.clone(), (MARGIN as i32, 10), title_font)).map_err(err)?;
        let panels = body.split_evenly((1, self.panels.len().max(1)));
        // About one x tick per 50 pixels of a panel.
        let x_ticks = ((panels[0].dim_in_pixel().0 as usize).saturating_sub(Y_AREA as usize) / 50).max(3);
        for (i, ((network, series), panel)) in self.panels.iter().zip(&panels).enumerate() {
            let x: Ticked<LogCoord<f64>> =
                Ticked { inner: (x_lo..x_hi).log_scale().into(), ticks: log_ticks(x_lo, x_hi, x_ticks) };
            let mut chart = ChartBuilder::on(panel)
                .caption(network, (FONT, 16))
                .margin(8)
                .x_label_area_size(X_AREA)
                .y_label_area_size(if i == 0 { Y_AREA } else { 45 })
                .build_cartesian_2d(x, log_axis(y_lo, y_hi))
                .map_err(err)?;
            let y_desc = match i {
                0 => format!("nats per test row lost vs global fit (below {} drawn at it)", log_label(self.floor)),
                _ => String::new(),
            };
            mesh(&mut chart, ("makespan (s)", &|v| log_label(*v)), (&y_desc, &|v| log_label(*v)), true)?;
            let mut labels = Vec::new();
            for (_, look, p) in series {
                let at: Vec<(f64, f64)> = p.iter().map(|&(_, t, l)| (t, l.max(self.floor))).collect();
                draw_line(&mut chart, at.clone(), Look { width: 1, ..*look })?;
                chart.draw_series(at.iter().map(|&(t, l)| marker_at((t, l), *look))).map_err(err)?;
                labels.extend(
                    p.iter().zip(&at).map(|(&(m, _, lost), point)| {
                        (self.point_label(m, lost), chart.backend_coord(point), look.color)
                    }),
                );
            }
            let (_, rows) = chart.plotting_area().get_pixel_range();
            draw_point_labels(panel, &labels, rows)?;
        }
        let mut entries: Vec<Entry> = match self.panels.first() {
            Some((_, series)) => series.iter().map(|(name, look, _)| Entry::line(name.clone(), *look)).collect(),
            None => Vec::new(),
        };
        entries.push(Entry::note("numbers: machines M; down and left is better"));
        if self.panels.iter().flat_map(|(_, s)| s.iter().flat_map(|(_, _, p)| p.iter())).any(|p| self.marks_gain(p.2)) {
            entries.push(Entry::note(format!(
                "M (+g): beats the global fit by g >= {} nats per test row",
                log_label(GAIN_MARK * self.floor)
            )));
        }
        Ok(entries)
    }
}

/// Gains over the global fit of at least this many floors are written beside their points (smaller
/// ones are as good as a tie).
const GAIN_MARK: f64 = 10.0;

impl Tradeoff {
    /// Whether a point's loss is a gain worth writing beside it.
    fn marks_gain(&self, lost: f64) -> bool {
        -lost >= GAIN_MARK * self.floor
    }

    /// A point's label: its M, and its gain over the global fit when [`Self::marks_gain`] (such a
    /// point is drawn at the floor with the smallest losses).
    fn point_label(&self, machines: usize, lost: f64) -> String {
        match self.marks_gain(lost) {
            true => format!("{machines} (+{:.1e})", -lost),
            false => machines.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_stay_finite_and_ordered_for_extreme_values() {
        let extreme = [0.0, 5e-324, 1e-300, 1.7e308, f64::MAX, -f64::MAX, f64::INFINITY, f64::NAN];
        let (lo, hi) = log_bounds(extreme.into_iter());
        assert!(lo > 0.0 && hi.is_finite() && lo < hi && (hi / lo).is_finite(), "{lo} {hi}");
        let r = linear_bounds(extreme.into_iter());
        assert!(r.start.is_finite() && r.end.is_finite() && r.start < r.end, "{r:?}");
        assert!(headroom(extreme.into_iter(), 1.45).is_finite());
        assert_eq!(log_bounds([f64::NAN, -1.0].into_iter()), (0.1, 10.0));
        assert_eq!(linear_bounds([f64::INFINITY].into_iter()), 0.0..1.0);
    }

    #[test]
    fn a_figure_of_extreme_values_is_drawn() {
        let g: BTreeMap<usize, Vec<f64>> = [(1, vec![1e-300, 1e300]), (4, vec![1.7e308, 2.0])].into();
        for log_y in [true, false] {
            let fig = Accuracy {
                title: "t".into(),
                y_desc: "y".into(),
                log_y,
                floor: log_y.then_some(1e-6),
                series: vec![Series {
                    label: "reduction".into(),
                    look: estimator_look("reduction"),
                    values: g.clone(),
                }],
                references: vec![("global".into(), f64::MAX, estimator_look("global"))],
            };
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
                register_font();
                fig.draw(&root).unwrap();
                root.present().unwrap();
            }
            assert!(svg.contains("<svg"), "log_y = {log_y}");
        }
    }
}
