//! The fixed look of what the plots show: one colour, marker and line pattern per estimator (the
//! same in every plot of every run, and used for nothing else), a sequential scale for series that
//! are many of one kind (cells, sweep groups), the colours of the phases of a cluster run, and the
//! legend, drawn in a panel beside the chart so that it never covers data.

use plotters::coord::Shift;
use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use plotters_backend::{BackendCoord, DrawingErrorKind};

use super::figures::{FONT, err};

/// Width of a character of legend or title text, in font sizes (DejaVu Sans averages about 0.55;
/// the margin keeps wide letters inside).
pub(super) const CHAR_EM: f64 = 0.62;

/// Width of the legend panel on the right of every figure, in pixels.
pub(super) const LEGEND_WIDTH: u32 = 240;

/// The estimators' colours (colour-blind safe, Okabe & Ito 2008, then three tones of their own for the
/// protocols' models), by [`estimator_look`] only.
const ESTIMATOR_COLOURS: [RGBColor; 10] = [
    RGBColor(0, 0, 0),
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(120, 120, 120),
    RGBColor(0, 50, 100),
    RGBColor(0, 170, 190),
    RGBColor(140, 80, 20),
];

/// The phases of a cluster run, in the time breakdown and the timeline alike.
pub(super) const LOCAL_FIT: RGBColor = RGBColor(86, 180, 233);
pub(super) const IN_FLIGHT: RGBColor = RGBColor(240, 200, 50);
pub(super) const REDUCTION: RGBColor = RGBColor(70, 70, 70);
pub(super) const SERVER_STEP: RGBColor = RGBColor(0, 90, 60);
pub(super) const REQUEST: RGBColor = RGBColor(250, 150, 90);
pub(super) const WAIT: RGBColor = RGBColor(160, 130, 210);
pub(super) const LATE: RGBColor = RGBColor(200, 200, 200);
pub(super) const FAILURE: RGBColor = RGBColor(170, 20, 60);

/// Reference lines that are not an estimator (the ideal speedup, a warning level).
pub(super) const GUIDE: Look = Look { color: RGBColor(110, 110, 110), marker: Marker::None, dashed: true, width: 2 };

/// Anchors of the sequential scale (viridis, without its lightest yellow).
const SEQUENCE: [(f64, f64, f64); 4] =
    [(68.0, 1.0, 84.0), (59.0, 82.0, 139.0), (33.0, 145.0, 140.0), (94.0, 190.0, 80.0)];

/// A marker shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    Cross,
    None,
}

/// How one series is drawn: colour, marker, dashed or solid line, line width.
#[derive(Debug, Clone, Copy)]
pub(super) struct Look {
    pub(super) color: RGBColor,
    pub(super) marker: Marker,
    pub(super) dashed: bool,
    pub(super) width: u32,
}

/// The look of an estimator, fixed by its name: the reduction a thick blue line with circles, the
/// global fit a dashed black line, the true model a dashed grey one, the baselines and the other
/// protocols' models (exact EM navy squares, refine teal triangles, fedavg brown diamonds) each
/// their own colour and marker.
pub(super) fn estimator_look(name: &str) -> Look {
    let (c, marker, dashed, width) = match name {
        "reduction" => (1, Marker::Circle, false, 3),
        "global" => (0, Marker::None, true, 2),
        "median" => (3, Marker::Triangle, false, 2),
        "aligned-average" => (4, Marker::Square, true, 2),
        "naive-average" => (2, Marker::Cross, false, 2),
        "pooled" => (5, Marker::Diamond, true, 2),
        "truth" => (6, Marker::None, true, 2),
        "distributed-em" => (7, Marker::Square, false, 3),
        "refine" => (8, Marker::Triangle, false, 3),
        "fedavg" => (9, Marker::Diamond, false, 2),
        _ => (6, Marker::Circle, false, 2),
    };
    Look { color: ESTIMATOR_COLOURS[c], marker, dashed, width }
}

/// The look of the `i`-th of `count` series of one kind (cells, sweep groups): a colour along the
/// sequential scale (so neighbours in the sweep have neighbouring colours and none is an
/// estimator's), markers cycling, every other series dashed.
pub(super) fn sequence_look(i: usize, count: usize) -> Look {
    let t = if count < 2 { 0.0 } else { i as f64 / (count - 1) as f64 } * (SEQUENCE.len() - 1) as f64;
    let (k, f) = ((t.floor() as usize).min(SEQUENCE.len() - 2), t - t.floor().min((SEQUENCE.len() - 2) as f64));
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    let (a, b) = (SEQUENCE[k], SEQUENCE[k + 1]);
    let markers = [Marker::Circle, Marker::Square, Marker::Triangle, Marker::Diamond];
    Look {
        color: RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2)),
        marker: markers[i % markers.len()],
        dashed: i % 2 == 1,
        width: 2,
    }
}

/// The look's marker centred on `at` (data coordinates on a chart, pixels on a plain area), about
/// 10 pixels across: an element of its own so that every marker shape has one type.
pub(super) struct MarkerAt<C> {
    at: C,
    look: Look,
}

pub(super) fn marker_at<C>(at: C, look: Look) -> MarkerAt<C> {
    MarkerAt { at, look }
}

impl<'a, C> PointCollection<'a, C> for &'a MarkerAt<C> {
    type Point = &'a C;
    type IntoIter = std::iter::Once<&'a C>;

    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<C, DB: DrawingBackend> Drawable<DB> for MarkerAt<C> {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut points: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let Some((x, y)) = points.next() else { return Ok(()) };
        let (fill, r) = (self.look.color.filled(), 4);
        match self.look.marker {
            Marker::None => Ok(()),
            Marker::Circle => backend.draw_circle((x, y), r as u32, &fill, true),
            Marker::Square => backend.draw_rect((x - r, y - r), (x + r, y + r), &fill, true),
            Marker::Triangle => backend.fill_polygon([(x, y - r - 1), (x + r + 1, y + r), (x - r - 1, y + r)], &fill),
            Marker::Diamond => {
                backend.fill_polygon([(x, y - r - 1), (x + r + 1, y), (x, y + r + 1), (x - r - 1, y)], &fill)
            }
            Marker::Cross => {
                let line = self.look.color.stroke_width(2);
                backend.draw_line((x - r, y - r), (x + r, y + r), &line)?;
                backend.draw_line((x - r, y + r), (x + r, y - r), &line)
            }
        }
    }
}

/// What a legend entry shows beside its text.
#[derive(Debug, Clone, Copy)]
pub(super) enum Swatch {
    /// A line (solid or dashed) with the look's marker on it.
    Line(Look),
    /// A filled box.
    Block(RGBColor),
    /// Nothing: the entry is a note.
    Note,
}

/// One legend entry.
#[derive(Clone)]
pub(super) struct Entry {
    pub(super) label: String,
    pub(super) swatch: Swatch,
}

impl Entry {
    pub(super) fn line(label: impl Into<String>, look: Look) -> Entry {
        Entry { label: label.into(), swatch: Swatch::Line(look) }
    }

    pub(super) fn block(label: impl Into<String>, color: RGBColor) -> Entry {
        Entry { label: label.into(), swatch: Swatch::Block(color) }
    }

    pub(super) fn note(label: impl Into<String>) -> Entry {
        Entry { label: label.into(), swatch: Swatch::Note }
    }
}

/// Draws the legend's entries top down in the side panel `area`; entries that do not fit even at
/// the smallest font are summarised in a last line.
pub(super) fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[Entry]) -> Result<(), String> {
    if entries.is_empty() {
        return Ok(());
    }
    let (width, height) = area.dim_in_pixel();
    let (top, left) = (60i32, 44i32);
    let room = height as i32 - top - 20;
    // Labels wrap at word boundaries to the panel's width; the font shrinks (down to 10 points)
    // when the wrapped entries would not fit the height.
    let layout = |size: i32| -> Vec<Vec<String>> {
        let chars = ((width as f64 - left as f64 - 6.0) / (CHAR_EM * size as f64)) as usize;
        entries.iter().map(|e| wrap(&e.label, chars.max(8))).collect()
    };
    let height_of =
        |lines: &[Vec<String>], size: i32| lines.iter().map(|l| l.len() as i32 * (size + 2) + 6).sum::<i32>();
    let size = (10..=14).rev().find(|&s| height_of(&layout(s), s) <= room).unwrap_or(10);
    let mut y = top;
    for (i, (e, lines)) in entries.iter().zip(layout(size)).enumerate() {
        let h = lines.len() as i32 * (size + 2) + 6;
        if y + h > top + room {
            let more = format!("... and {} more", entries.len() - i);
            area.draw(&Text::new(more, (left, y), (FONT, size as f64))).map_err(err)?;
            break;
        }
        draw_swatch(area, e.swatch, (8, y + size / 2 + 1))?;
        for (k, line) in lines.into_iter().enumerate() {
            area.draw(&Text::new(line, (left, y + k as i32 * (size + 2)), (FONT, size as f64))).map_err(err)?;
        }
        y += h;
    }
    Ok(())
}

/// `text` broken at spaces into lines of at most `chars` characters (a longer word is cut).
fn wrap(text: &str, chars: usize) -> Vec<String> {
    crate::report::summary::wrap(text, chars).into_iter().map(|l| l.chars().take(chars).collect()).collect()
}

/// A swatch 30 pixels wide whose middle left is at `(x, y)`.
fn draw_swatch<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    swatch: Swatch,
    (x, y): (i32, i32),
) -> Result<(), String> {
    match swatch {
        Swatch::Note => Ok(()),
        Swatch::Block(c) => area.draw(&Rectangle::new([(x, y - 6), (x + 30, y + 6)], c.filled())).map_err(err),
        Swatch::Line(look) => {
            let style = look.color.stroke_width(look.width);
            if look.dashed {
                for s in [0, 12, 24] {
                    area.draw(&PathElement::new(vec![(x + s, y), (x + s + 7, y)], style)).map_err(err)?;
                }
            } else {
                area.draw(&PathElement::new(vec![(x, y), (x + 30, y)], style)).map_err(err)?;
            }
            area.draw(&marker_at((x + 15, y), look)).map_err(err)
        }
    }
}
