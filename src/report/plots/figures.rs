//! How each figure of a study is drawn: the shared look (size, font, colours, legend), the
//! backends (PNG and SVG), and one `Figure` per kind of plot. What goes into them is chosen in
//! `plots.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::study::CellRun;

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

/// The mesh of a chart with axis descriptions, in the shared look: tick labels of 15 points,
/// descriptions of 16.
fn mesh<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .draw()
        .map_err(err)
}

/// A figure that can be drawn on any backend.
pub(super) trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing a plot: {e:?}")
}

/// Writes `stem.png` and `stem.svg`.
pub(super) fn render(dir: &Path, stem: &str, fig: &impl Figure) -> Result<(), String> {
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

/// Mean of the values (finite by the study's check).
pub(super) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The largest magnitude an axis reaches, and the largest ratio between the ends of a log axis. The
/// study refuses non-finite results before anything is drawn (`study::run`); this is the last
/// guard, because plotters' tick search never ends on an infinite range, or on a log range whose
/// ends' ratio overflows (1e-300 to 1e300), and padding a value near 1e308 makes it infinite.
const AXIS_LIMIT: f64 = 1e300;

/// Share of an accuracy plot's height kept above the data for its legend.
const LEGEND_ROOM: f64 = 0.3;

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

pub(super) struct Speedup {
    pub(super) groups: Vec<(String, BTreeMap<usize, Vec<f64>>)>,
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
        mesh(&mut chart, "machines M", "speedup = global fit time / makespan")?;
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

/// A cell's bar: label, then mean compute, network and reduction seconds, and the global fit's.
pub(super) type Bar = (String, f64, f64, f64, Option<f64>);

pub(super) struct Breakdown {
    /// One bar per cell.
    pub(super) bars: Vec<Bar>,
}

impl Figure for Breakdown {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        // Headroom above the tallest bar or the global line for the legend.
        let top = headroom(self.bars.iter().map(|b| (b.1 + b.2 + b.3).max(b.4.unwrap_or(0.0))), 1.45);
        let n = self.bars.len();
        let labels: Vec<String> = self.bars.iter().map(|b| b.0.clone()).collect();
        let mut chart =
            chart_builder(root, "Where the distributed learning time goes (mean over repetitions)", 22, (60, 70))
                .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..top)
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

pub(super) struct Accuracy {
    pub(super) title: String,
    pub(super) y_desc: String,
    pub(super) log_y: bool,
    /// Per estimator: M -> values over repetitions.
    pub(super) series: Vec<(String, BTreeMap<usize, Vec<f64>>)>,
    /// The global fit's mean value.
    pub(super) global: Option<f64>,
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
        // The top LEGEND_ROOM of the plot is left free of data for the legend (one line per
        // estimator in the upper right corner, over the largest M, where the worst estimator sits).
        if self.log_y {
            let (lo, hi) = log_bounds(self.points());
            let top = (hi * (hi / lo).powf(LEGEND_ROOM / (1.0 - LEGEND_ROOM))).min(AXIS_LIMIT);
            let chart = chart_builder(root, &self.title, 22, (50, 80))
                .build_cartesian_2d(x, (lo..top).log_scale())
                .map_err(err)?;
            self.fill(chart, m_lo, m_hi)
        } else {
            let r = linear_bounds(self.points());
            let top = (r.end + (r.end - r.start) * LEGEND_ROOM / (1.0 - LEGEND_ROOM)).min(AXIS_LIMIT * 2.0);
            let chart =
                chart_builder(root, &self.title, 22, (50, 80)).build_cartesian_2d(x, r.start..top).map_err(err)?;
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
        mesh(&mut chart, "machines M", &self.y_desc)?;
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

pub(super) struct Gantt<'a> {
    pub(super) run: &'a CellRun,
}

/// Half the height of a timeline bar.
const GANTT_HALF_HEIGHT: f64 = 0.38;

type GanttChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

impl Figure for Gantt<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let r = &self.run.record;
        let m = r.machines.len();
        // Room on the right for the legend.
        let end = headroom(r.machines.iter().filter_map(|x| x.arrival_s).chain([r.makespan_s]), 1.45);
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
        self.draw_machines(&mut chart)?;
        self.draw_server(&mut chart)?;
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}

impl Gantt<'_> {
    /// The y position of machine `machine`: machine 0 on top, the server at 0.
    fn row(&self, machine: usize) -> f64 {
        (self.run.record.machines.len() - machine) as f64
    }

    /// Every machine's local fit, its report in flight (grey when late), and a cross for a failure.
    fn draw_machines<DB: DrawingBackend>(&self, chart: &mut GanttChart<'_, DB>) -> Result<(), String> {
        let machines = &self.run.record.machines;
        let h = GANTT_HALF_HEIGHT;
        chart
            .draw_series(machines.iter().filter_map(|x| {
                x.compute_s.map(|c| {
                    Rectangle::new([(0.0, self.row(x.machine) - h), (c, self.row(x.machine) + h)], color(0).filled())
                })
            }))
            .map_err(err)?
            .label("local EM fit")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color(0).filled()));
        chart
            .draw_series(machines.iter().filter_map(|x| {
                let (c, a) = (x.compute_s?, x.arrival_s?);
                let style = if x.included { color(1).filled() } else { color(7).filled() };
                Some(Rectangle::new([(c, self.row(x.machine) - h), (a, self.row(x.machine) + h)], style))
            }))
            .map_err(err)?
            .label("report in flight (grey: late)")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color(1).filled()));
        if machines.iter().any(|x| x.failed) {
            chart
                .draw_series(
                    machines
                        .iter()
                        .filter(|x| x.failed)
                        .map(|x| Cross::new((0.0, self.row(x.machine)), 6, color(3).stroke_width(2))),
                )
                .map_err(err)?
                .label("failed machine")
                .legend(|(x, y)| Cross::new((x + 8, y), 5, color(3).stroke_width(2)));
        }
        Ok(())
    }

    /// The server's reduction, and the deadline when the server stopped waiting at it.
    fn draw_server<DB: DrawingBackend>(&self, chart: &mut GanttChart<'_, DB>) -> Result<(), String> {
        let r = &self.run.record;
        let (m, h) = (r.machines.len(), GANTT_HALF_HEIGHT);
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
        Ok(())
    }
}

pub(super) struct Objective<'a> {
    pub(super) runs: Vec<&'a CellRun>,
}

impl Figure for Objective<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let longest = self.runs.iter().map(|r| r.record.objective_trace.len()).max().unwrap_or(1);
        let (lo, hi) = log_bounds(self.runs.iter().flat_map(|r| r.record.objective_trace.iter().copied()));
        let mut chart = chart_builder(root, "MM objective of the reduction per iteration (repetition 0)", 22, (50, 80))
            .build_cartesian_2d(0.0..((longest.max(2) - 1) as f64), (lo..hi).log_scale())
            .map_err(err)?;
        mesh(&mut chart, "MM iteration (assignment steps)", "transport objective J (no 1/S factor)")?;
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
                series: vec![("reduction".into(), g.clone())],
                global: Some(f64::MAX),
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
