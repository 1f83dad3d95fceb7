//! The figures of a study, each drawn once per backend (PNG and SVG, 800 x 600): speedup vs M with
//! the ideal line; the time breakdown per cell; accuracy vs M per estimator with the global fit as a
//! reference; one cluster's virtual timeline as a Gantt chart; the MM objective per iteration.
//! Text uses DejaVu Sans embedded in the binary, so PNGs render on machines without fonts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;

use crate::study::Plan;
use crate::study::{CellRun, ResultRow, StudyOutput};

const SIZE: (u32, u32) = (800, 600);
const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans is a valid font"));
    });
}

/// A chart builder in the shared look: a title of `size` points, 15 px margins, and label areas of
/// `(x, y)` pixels.
fn chart_builder<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: impl AsRef<str>,
    size: u32,
    areas: (u32, u32),
) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, (FONT, size)).margin(15).x_label_area_size(areas.0).y_label_area_size(areas.1);
    b
}

/// The legend of a chart, in the shared look.
fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// A figure that can be drawn on any backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing a plot: {e:?}")
}

/// Writes `stem.png` and `stem.svg`.
fn render(dir: &Path, stem: &str, fig: &impl Figure) -> Result<(), String> {
    register_font();
    let png = dir.join(format!("{stem}.png"));
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        fig.draw(&root)?;
        root.present().map_err(|e| format!("{}: {e:?}", png.display()))?;
    }
    let svg = dir.join(format!("{stem}.svg"));
    let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    fig.draw(&root)?;
    root.present().map_err(|e| format!("{}: {e:?}", svg.display()))
}

fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    C[i % C.len()]
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// A sweep group: the cells sharing n and network (so M varies along them).
fn group_label(checked: &Plan, n: usize, network: &str) -> String {
    let many_n = checked.cells.iter().any(|c| c.n != checked.cells[0].n);
    let many_net = checked.networks.len() > 1;
    match (many_n, many_net) {
        (true, true) => format!("n = {n}, {network}"),
        (true, false) => format!("n = {n}"),
        (false, true) => network.to_string(),
        (false, false) => "reduction".to_string(),
    }
}

/// `values[(group label)][M]` = per-repetition values of `f` for rows of `estimator`.
fn by_group_and_m(
    checked: &Plan,
    rows: &[ResultRow],
    estimator: &str,
    f: impl Fn(&ResultRow) -> Option<f64>,
) -> Vec<(String, BTreeMap<usize, Vec<f64>>)> {
    let mut out: Vec<(String, BTreeMap<usize, Vec<f64>>)> = Vec::new();
    for r in rows.iter().filter(|r| r.estimator == estimator) {
        let Some(v) = f(r).filter(|v| v.is_finite()) else { continue };
        let label = group_label(checked, r.n, &r.network);
        let pos = out.iter().position(|(l, _)| *l == label).unwrap_or_else(|| {
            out.push((label, BTreeMap::new()));
            out.len() - 1
        });
        out[pos].1.entry(r.machines).or_default().push(v);
    }
    out
}

/// Log-scale bounds padded by a factor, for a set of positive values.
fn log_bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.filter(|v| *v > 0.0).fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    if lo.is_finite() { (lo / 1.5, hi * 1.5) } else { (0.1, 10.0) }
}

struct Speedup {
    groups: Vec<(String, BTreeMap<usize, Vec<f64>>)>,
}

impl Figure for Speedup {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let ms: Vec<usize> = self.groups.iter().flat_map(|(_, g)| g.keys().copied()).collect();
        let (m_lo, m_hi) = (*ms.iter().min().unwrap_or(&1) as f64, *ms.iter().max().unwrap_or(&1) as f64);
        let (y_lo, y_hi) =
            log_bounds(self.groups.iter().flat_map(|(_, g)| g.values().flatten().copied()).chain([m_lo, m_hi]));
        let mut chart = chart_builder(root, "Speedup of the distributed fit vs number of machines", 22, (50, 70))
            .build_cartesian_2d((m_lo / 1.3..m_hi * 1.3).log_scale(), (y_lo..y_hi).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("machines M")
            .y_desc("speedup = global fit time / makespan")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .draw()
            .map_err(err)?;
        let mut all_m: Vec<usize> = ms.clone();
        all_m.sort_unstable();
        all_m.dedup();
        chart
            .draw_series(DashedLineSeries::new(
                all_m.iter().map(|&m| (m as f64, m as f64)),
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(err)?
            .label("ideal (speedup = M)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        for (i, (label, g)) in self.groups.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(g.iter().map(|(&m, v)| (m as f64, mean(v))), c.stroke_width(2)))
                .map_err(err)?
                .label(format!("{label} (mean, min-max over repetitions)"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
            chart
                .draw_series(g.iter().map(|(&m, v)| {
                    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = v.iter().copied().fold(0.0, f64::max);
                    ErrorBar::new_vertical(m as f64, lo, mean(v), hi, c.filled(), 8)
                }))
                .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    }
}

struct Breakdown {
    /// (label, compute, network, reduce, global) means per cell.
    bars: Vec<(String, f64, f64, f64, Option<f64>)>,
}

impl Figure for Breakdown {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        // Headroom above the tallest bar or the global line for the legend.
        let top = self.bars.iter().map(|b| (b.1 + b.2 + b.3).max(b.4.unwrap_or(0.0))).fold(0.0, f64::max) * 1.45;
        let n = self.bars.len();
        let labels: Vec<String> = self.bars.iter().map(|b| b.0.clone()).collect();
        let mut chart =
            chart_builder(root, "Where the distributed learning time goes (mean over repetitions)", 22, (60, 70))
                .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..top.max(1e-9))
                .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.min(20))
            .x_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc("cell")
            .y_desc("virtual time (seconds)")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .draw()
            .map_err(err)?;
        let parts = [("slowest local fit", 0usize), ("network", 1), ("reduction", 2)];
        for (name, p) in parts {
            let c = color(p);
            chart
                .draw_series(self.bars.iter().enumerate().map(|(i, b)| {
                    let seg = [b.1, b.2, b.3];
                    let base: f64 = seg[..p].iter().sum();
                    let x = i as f64;
                    Rectangle::new([(x - 0.35, base), (x + 0.35, base + seg[p])], c.filled())
                }))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], c.filled()));
        }
        if self.bars.iter().any(|b| b.4.is_some()) {
            chart
                .draw_series(self.bars.iter().enumerate().filter_map(|(i, b)| {
                    b.4.map(|g| {
                        PathElement::new(vec![(i as f64 - 0.45, g), (i as f64 + 0.45, g)], BLACK.stroke_width(3))
                    })
                }))
                .map_err(err)?
                .label("global fit on one machine")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(3)));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    }
}

struct Accuracy {
    title: String,
    y_desc: String,
    log_y: bool,
    /// Per estimator: M -> values over repetitions.
    series: Vec<(String, BTreeMap<usize, Vec<f64>>)>,
    /// The global fit's mean value.
    global: Option<f64>,
}

impl Accuracy {
    fn points(&self) -> impl Iterator<Item = f64> + '_ {
        self.series.iter().flat_map(|(_, g)| g.values().flatten().copied()).chain(self.global)
    }
}

impl Figure for Accuracy {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let ms: Vec<usize> = self.series.iter().flat_map(|(_, g)| g.keys().copied()).collect();
        let (m_lo, m_hi) = (*ms.iter().min().unwrap_or(&1) as f64, *ms.iter().max().unwrap_or(&1) as f64);
        let x = (m_lo / 1.3..m_hi * 1.3).log_scale();
        if self.log_y {
            let (lo, hi) = log_bounds(self.points());
            let chart = chart_builder(root, &self.title, 22, (50, 80))
                .build_cartesian_2d(x, (lo..hi).log_scale())
                .map_err(err)?;
            self.fill(chart, m_lo, m_hi)
        } else {
            let (lo, hi) = self.points().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
            let pad = ((hi - lo) * 0.1).max(1e-12);
            let chart = chart_builder(root, &self.title, 22, (50, 80))
                .build_cartesian_2d(x, (lo - pad)..(hi + pad))
                .map_err(err)?;
            self.fill(chart, m_lo, m_hi)
        }
    }
}

impl Accuracy {
    fn fill<'a, DB: DrawingBackend + 'a, X, Y>(
        &self,
        mut chart: ChartContext<'a, DB, Cartesian2d<X, Y>>,
        m_lo: f64,
        m_hi: f64,
    ) -> Result<(), String>
    where
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        chart
            .configure_mesh()
            .x_desc("machines M")
            .y_desc(&self.y_desc)
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .draw()
            .map_err(err)?;
        for (i, (name, g)) in self.series.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(g.iter().map(|(&m, v)| (m as f64, mean(v))), c.stroke_width(2)))
                .map_err(err)?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
            chart
                .draw_series(
                    g.iter().flat_map(|(&m, v)| v.iter().map(move |&y| Circle::new((m as f64, y), 3, c.filled()))),
                )
                .map_err(err)?;
        }
        if let Some(gv) = self.global {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(m_lo / 1.3, gv), (m_hi * 1.3, gv)],
                    8,
                    5,
                    BLACK.stroke_width(2),
                ))
                .map_err(err)?
                .label("global fit (reference)")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}

struct Gantt<'a> {
    run: &'a CellRun,
}

impl Figure for Gantt<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let r = &self.run.record;
        let m = r.machines.len();
        // Room on the right for the legend.
        let end = r.machines.iter().filter_map(|x| x.arrival_s).fold(r.makespan_s, f64::max).max(1e-9) * 1.45;
        let title = format!(
            "Virtual timeline: cell {} (M = {m}, n = {}), repetition {}",
            self.run.cell.index, self.run.cell.n, self.run.rep
        );
        let mut chart = chart_builder(root, title, 20, (50, 90))
            .build_cartesian_2d(0.0..end, -0.7..(m as f64 + 0.7))
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels((m + 1).min(25))
            .y_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() > 1e-6 || i < 0.0 || i > m as f64 {
                    String::new()
                } else if i == 0.0 {
                    "server".into()
                } else {
                    format!("machine {}", m - i as usize)
                }
            })
            .x_desc("virtual time (seconds)")
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 16))
            .draw()
            .map_err(err)?;
        let row = |machine: usize| (m - machine) as f64;
        let h = 0.38;
        chart
            .draw_series(r.machines.iter().filter_map(|x| {
                x.compute_s
                    .map(|c| Rectangle::new([(0.0, row(x.machine) - h), (c, row(x.machine) + h)], color(0).filled()))
            }))
            .map_err(err)?
            .label("local EM fit")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color(0).filled()));
        chart
            .draw_series(r.machines.iter().filter_map(|x| {
                let (c, a) = (x.compute_s?, x.arrival_s?);
                let style = if x.included { color(1).filled() } else { color(7).filled() };
                Some(Rectangle::new([(c, row(x.machine) - h), (a, row(x.machine) + h)], style))
            }))
            .map_err(err)?
            .label("report in flight (grey: late)")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color(1).filled()));
        if r.machines.iter().any(|x| x.failed) {
            chart
                .draw_series(
                    r.machines
                        .iter()
                        .filter(|x| x.failed)
                        .map(|x| Cross::new((0.0, row(x.machine)), 6, color(3).stroke_width(2))),
                )
                .map_err(err)?
                .label("failed machine")
                .legend(|(x, y)| Cross::new((x + 8, y), 5, color(3).stroke_width(2)));
        }
        chart
            .draw_series([Rectangle::new([(r.reduce_start_s, -h), (r.makespan_s, h)], color(2).filled())])
            .map_err(err)?
            .label("reduction")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color(2).filled()));
        if r.events.iter().any(|e| e.kind == crate::cluster::record::EventKind::Deadline) {
            let d = r.reduce_start_s;
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(d, -0.7), (d, m as f64 + 0.7)],
                    6,
                    4,
                    color(3).stroke_width(2),
                ))
                .map_err(err)?
                .label("deadline")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color(3).stroke_width(2)));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}

struct Objective<'a> {
    runs: Vec<&'a CellRun>,
}

impl Figure for Objective<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let longest = self.runs.iter().map(|r| r.record.objective_trace.len()).max().unwrap_or(1);
        let (lo, hi) = log_bounds(self.runs.iter().flat_map(|r| r.record.objective_trace.iter().copied()));
        let mut chart = chart_builder(root, "MM objective of the reduction per iteration (repetition 0)", 22, (50, 80))
            .build_cartesian_2d(0.0..((longest.max(2) - 1) as f64), (lo..hi).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("MM iteration (assignment steps)")
            .y_desc("transport objective J (no 1/S factor)")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .draw()
            .map_err(err)?;
        for (i, run) in self.runs.iter().enumerate() {
            let c = color(i);
            let t = &run.record.objective_trace;
            chart
                .draw_series(LineSeries::new(
                    t.iter().enumerate().filter(|(_, v)| **v > 0.0).map(|(j, &v)| (j as f64, v)),
                    c.stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("cell {} (M = {})", run.cell.index, run.record.machines.len()))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}

/// An accuracy plot's file stem, title, y-axis label, log scale, and the metric it reads.
type AccuracyMetric = (&'static str, &'static str, &'static str, bool, fn(&ResultRow) -> Option<f64>);

/// Draws every figure that the study's results support into `dir`.
pub fn write_all(dir: &Path, checked: &Plan, out: &StudyOutput) -> Result<(), String> {
    let rows = &out.rows;
    let speedup = by_group_and_m(checked, rows, "reduction", |r| r.speedup);
    if !speedup.is_empty() {
        render(dir, "speedup", &Speedup { groups: speedup })?;
    }
    // Bar labels name only what varies across cells; a network by its name up to any parenthesis.
    let varies = |f: &dyn Fn(&crate::study::Cell) -> usize| checked.cells.iter().any(|c| f(c) != f(&checked.cells[0]));
    let (vary_m, vary_n, vary_net) = (varies(&|c| c.machines), varies(&|c| c.n), varies(&|c| c.network));
    let bars: Vec<(String, f64, f64, f64, Option<f64>)> = checked
        .cells
        .iter()
        .map(|c| {
            let cell_rows: Vec<&ResultRow> = rows.iter().filter(|r| r.cell == c.index).collect();
            let red: Vec<&&ResultRow> = cell_rows.iter().filter(|r| r.estimator == "reduction").collect();
            let avg =
                |f: &dyn Fn(&ResultRow) -> Option<f64>| mean(&red.iter().filter_map(|r| f(r)).collect::<Vec<_>>());
            let glob: Vec<f64> =
                cell_rows.iter().filter(|r| r.estimator == "global").filter_map(|r| r.makespan_s).collect();
            let m = red.first().map_or(c.machines, |r| r.machines);
            let net = checked.networks[c.network].label.clone();
            let mut parts = Vec::new();
            if vary_m || !(vary_n || vary_net) {
                parts.push(format!("M={m}"));
            }
            if vary_n {
                parts.push(format!("n={}", c.n));
            }
            if vary_net {
                parts.push(net.split(" (").next().unwrap_or(&net).to_string());
            }
            (
                parts.join(" "),
                avg(&|r| r.local_compute_max_s),
                avg(&|r| r.network_s),
                avg(&|r| r.reduce_s),
                (!glob.is_empty()).then(|| mean(&glob)),
            )
        })
        .collect();
    render(dir, "time-breakdown", &Breakdown { bars })?;
    let metrics: [AccuracyMetric; 3] = [
        ("rpe", "Test relative prediction error vs M", "RPE = sum (y - yhat)^2 / sum y^2", false, |r| {
            Some(r.scores.rpe)
        }),
        ("param-mse", "Parameter error vs M (after label matching)", "parameter MSE against the truth", true, |r| {
            r.scores.param_mse
        }),
        (
            "transport",
            "Transport divergence to the true model vs M",
            "transport divergence (nats per point)",
            true,
            |r| r.scores.transport_to_truth,
        ),
    ];
    // One set of accuracy plots per sweep group (n and network), M along the x axis.
    let groups: Vec<(usize, usize)> = {
        let mut g: Vec<(usize, usize)> = checked.cells.iter().map(|c| (c.n, c.network)).collect();
        g.dedup();
        g
    };
    for (gi, &(n, net)) in groups.iter().enumerate() {
        let suffix = if groups.len() > 1 { format!("-{gi}") } else { String::new() };
        let group_rows: Vec<ResultRow> =
            rows.iter().filter(|r| r.n == n && r.network == checked.networks[net].label.clone()).cloned().collect();
        for (stem, title, y_desc, log_y, f) in metrics {
            let mut series = Vec::new();
            for est in ["reduction", "median", "aligned-average", "naive-average", "pooled"] {
                let mut g: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
                for r in group_rows.iter().filter(|r| r.estimator == est) {
                    if let Some(v) = f(r).filter(|v| v.is_finite() && (!log_y || *v > 0.0)) {
                        g.entry(r.machines).or_default().push(v);
                    }
                }
                if !g.is_empty() {
                    series.push((est.to_string(), g));
                }
            }
            let global: Vec<f64> = group_rows.iter().filter(|r| r.estimator == "global").filter_map(f).collect();
            if series.is_empty() {
                continue;
            }
            let title = if groups.len() > 1 {
                format!("{title} ({})", group_label(checked, n, &checked.networks[net].label.clone()))
            } else {
                title.to_string()
            };
            let fig = Accuracy {
                title,
                y_desc: y_desc.into(),
                log_y,
                series,
                global: (!global.is_empty()).then(|| mean(&global)),
            };
            render(dir, &format!("accuracy-{stem}{suffix}"), &fig)?;
        }
    }
    if let Some(run) = out.runs.iter().filter(|r| r.rep == 0).max_by_key(|r| (r.record.machines.len(), r.cell.index)) {
        render(dir, "timeline", &Gantt { run })?;
    }
    let first_rep: Vec<&CellRun> = out.runs.iter().filter(|r| r.rep == 0).take(8).collect();
    if !first_rep.is_empty() {
        render(dir, "mm-objective", &Objective { runs: first_rep })?;
    }
    Ok(())
}
