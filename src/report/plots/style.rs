//! The fixed look of what the plots show: one colour, marker and line pattern per estimator (the
//! same in every plot of every run), and the legend, drawn in a panel beside the chart so that it
//! never covers data.

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

/// The palette (colour-blind safe, Okabe & Ito 2008), black first.
pub(super) const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 0, 0),
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
];

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
/// global fit a dashed black line, the baselines each their own colour and marker.
pub(super) fn estimator_look(name: &str) -> Look {
    let (c, marker, dashed, width) = match name {
        "reduction" => (1, Marker::Circle, false, 3),
        "global" => (0, Marker::None, true, 2),
        "median" => (3, Marker::Triangle, false, 2),
        "aligned-average" => (4, Marker::Square, true, 2),
        "naive-average" => (2, Marker::Cross, false, 2),
        "pooled" => (5, Marker::Diamond, true, 2),
        _ => (7, Marker::Circle, false, 2),
    };
    Look { color: PALETTE[c], marker, dashed, width }
}

/// The look of the `i`-th of several series of one kind (sweep groups, cells): colours in palette
/// order after black, markers cycling with them, solid for the first round of colours and dashed
/// for the second.
pub(super) fn nth_look(i: usize) -> Look {
    let colours = PALETTE.len() - 1;
    let markers = [Marker::Circle, Marker::Square, Marker::Triangle, Marker::Diamond];
    Look {
        color: PALETTE[1 + i % colours],
        marker: markers[i % markers.len()],
        dashed: (i / colours) % 2 == 1,
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
}

/// One legend entry.
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
}

/// Draws the legend's entries top down in the side panel `area`, with the font shrunk (down to 9
/// points) when there are many; entries that still do not fit are summarised in a last line.
pub(super) fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[Entry]) -> Result<(), String> {
    if entries.is_empty() {
        return Ok(());
    }
    let (_, height) = area.dim_in_pixel();
    let top = 60i32;
    let room = height as i32 - top - 20;
    // Small enough for the entries to fit the height and the longest label the width; labels still
    // too long at the smallest size are cut with an ellipsis.
    let width = area.dim_in_pixel().0 as f64 - 54.0;
    let longest = entries.iter().map(|e| e.label.chars().count()).max().unwrap_or(1) as f64;
    let by_width = (width / (CHAR_EM * longest)) as i32;
    let size = (room / entries.len() as i32 - 6).min(by_width).clamp(9, 14);
    let fit = |label: &str| {
        let chars = (width / (CHAR_EM * size as f64)) as usize;
        match label.chars().count() > chars {
            true => format!("{}...", label.chars().take(chars.saturating_sub(3)).collect::<String>()),
            false => label.to_string(),
        }
    };
    let step = size + 6;
    let fits = (room / step) as usize;
    let shown = if entries.len() > fits { fits.saturating_sub(1) } else { entries.len() };
    for (i, e) in entries.iter().take(shown).enumerate() {
        let y = top + i as i32 * step + step / 2;
        draw_swatch(area, e.swatch, (8, y))?;
        area.draw(&Text::new(fit(&e.label), (44, y - size / 2), (FONT, size as f64))).map_err(err)?;
    }
    if shown < entries.len() {
        let y = top + shown as i32 * step;
        let more = format!("... and {} more", entries.len() - shown);
        area.draw(&Text::new(more, (44, y), (FONT, size as f64))).map_err(err)?;
    }
    Ok(())
}

/// A swatch 30 pixels wide whose middle left is at `(x, y)`.
fn draw_swatch<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    swatch: Swatch,
    (x, y): (i32, i32),
) -> Result<(), String> {
    match swatch {
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
