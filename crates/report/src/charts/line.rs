//! Line charts (one line per series, markers on the points), with the legend in a panel on the
//! right so it never hides data; optional log2 x axis for concurrency.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::TickedAxis;
use super::style::{self, FAMILY};
use super::{err, Drawable};
use crate::numfmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XScale {
    Linear,
    /// Logarithmic, base 2; ticks at powers of two (concurrency 1, 2, 4, … 512).
    Log2,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    /// Palette index.
    pub color: usize,
    pub dashed: bool,
    /// (x, y) in data units; drawn in the order given.
    pub points: Vec<(f64, f64)>,
    /// Optional text next to each point (e.g. `c64`); empty for none.
    pub point_labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub title: String,
    /// A grey line under the title (e.g. "solid: median · dashed: p99").
    pub subtitle: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x_scale: XScale,
    pub series: Vec<Series>,
}

impl LineChart {
    /// Picks log2 for positive x values spanning at least 8×, linear otherwise.
    pub fn scale_for(xs: &[f64]) -> XScale {
        let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if min > 0.0 && max.is_finite() && max / min >= 8.0 {
            XScale::Log2
        } else {
            XScale::Linear
        }
    }

    /// True when some series has a point to draw.
    pub fn has_points(&self) -> bool {
        self.series.iter().any(|s| !s.points.is_empty())
    }

    fn tx(&self, x: f64) -> f64 {
        match self.x_scale {
            XScale::Linear => x,
            XScale::Log2 => x.log2(),
        }
    }

    /// X range (transformed) and tick positions (transformed).
    fn x_axis(&self) -> (f64, f64, Vec<f64>) {
        let xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| self.tx(p.0)))
            .filter(|v| v.is_finite())
            .collect();
        let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !min.is_finite() {
            return (0.0, 1.0, vec![0.0, 1.0]);
        }
        match self.x_scale {
            XScale::Log2 => {
                let lo = min - 0.3;
                let hi = max + 0.3;
                let mut ticks: Vec<f64> = ((lo.ceil() as i64)..=(hi.floor() as i64))
                    .map(|k| k as f64)
                    .collect();
                if ticks.len() > 12 {
                    ticks.retain(|k| (*k as i64) % 2 == 0);
                }
                (lo, hi, ticks)
            }
            XScale::Linear => {
                let (lo, hi) = if min >= 0.0 {
                    (0.0, if max > 0.0 { max * 1.06 } else { 1.0 })
                } else {
                    let pad = ((max - min) * 0.06).max(1e-9);
                    (min - pad, max + pad)
                };
                (lo, hi, style::nice_ticks(lo, hi, 8))
            }
        }
    }

    fn y_axis(&self) -> (f64, f64, Vec<f64>) {
        let max = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        let hi = if max.is_finite() && max > 0.0 {
            max * 1.12
        } else {
            1.0
        };
        (0.0, hi, style::nice_ticks(0.0, hi, 7))
    }
}

/// Draws point labels (pixel positions of their points) where they do not overlap each other:
/// above right of the point, else above left, below right, below left; skipped if none fits.
fn place_point_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    labels: &[((i32, i32), String)],
) -> Result<(), String> {
    let font = (FAMILY, style::POINT_LABEL_PX)
        .into_font()
        .color(&style::MUTED);
    let (w, h) = root.dim_in_pixel();
    let mut taken: Vec<(i32, i32, i32, i32)> = Vec::new();
    let overlaps = |a: &(i32, i32, i32, i32), b: &(i32, i32, i32, i32)| {
        a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
    };
    // Markers are obstacles too.
    for ((px, py), _) in labels {
        taken.push((px - 5, py - 5, px + 5, py + 5));
    }
    for ((px, py), text) in labels {
        let (tw, th) = root.estimate_text_size(text, &font).map_err(err)?;
        let (tw, th) = (tw as i32, th as i32);
        let candidates = [
            (px + 7, py - 7 - th),
            (px - 7 - tw, py - 7 - th),
            (px + 7, py + 7),
            (px - 7 - tw, py + 7),
        ];
        let spot = candidates.iter().find(|(x, y)| {
            let r = (*x, *y, x + tw, y + th);
            r.0 >= 0
                && r.1 >= 0
                && r.2 <= w as i32
                && r.3 <= h as i32
                && !taken.iter().any(|t| overlaps(t, &r))
        });
        if let Some(&(x, y)) = spot {
            taken.push((x, y, x + tw, y + th));
            root.draw(&Text::new(
                text.clone(),
                (x, y),
                font.clone().pos(Pos::new(HPos::Left, VPos::Top)),
            ))
            .map_err(err)?;
        }
    }
    Ok(())
}

fn legend_sample<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    s: &Series,
) -> Result<(), String> {
    let c = style::color(s.color);
    let line_style = ShapeStyle {
        color: c.to_rgba(),
        filled: false,
        stroke_width: 3,
    };
    let (x, y) = at;
    if s.dashed {
        area.draw(&DashedPathElement::new(
            vec![(x, y), (x + 38, y)],
            8,
            5,
            line_style,
        ))
        .map_err(err)?;
        area.draw(&Circle::new((x + 19, y), 5, WHITE.filled()))
            .map_err(err)?;
        area.draw(&Circle::new((x + 19, y), 5, line_style))
            .map_err(err)?;
    } else {
        area.draw(&PathElement::new(vec![(x, y), (x + 38, y)], line_style))
            .map_err(err)?;
        area.draw(&Circle::new((x + 19, y), 5, c.filled()))
            .map_err(err)?;
    }
    Ok(())
}

impl Drawable for LineChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let (w, _h) = root.dim_in_pixel();
        let (head, body) = root.split_vertically(if self.subtitle.is_empty() { 60 } else { 84 });
        head.draw(&Text::new(
            self.title.clone(),
            (28, 18),
            (FAMILY, style::TITLE_PX).into_font().color(&style::INK),
        ))
        .map_err(err)?;
        if !self.subtitle.is_empty() {
            head.draw(&Text::new(
                self.subtitle.clone(),
                (28, 56),
                (FAMILY, style::SUBTITLE_PX)
                    .into_font()
                    .color(&style::MUTED),
            ))
            .map_err(err)?;
        }

        // Legend panel on the right, as wide as its longest label.
        let legend_font = (FAMILY, style::LEGEND_PX).into_font().color(&style::INK);
        let widest = self
            .series
            .iter()
            .filter(|s| !s.points.is_empty())
            .map(|s| {
                root.estimate_text_size(&s.label, &legend_font)
                    .map(|(tw, _)| tw)
                    .unwrap_or(200)
            })
            .max()
            .unwrap_or(0);
        let legend_w = (widest + 80).clamp(140, w / 3);
        let (plot, legend) = body.split_horizontally(w - legend_w);

        let (x_lo, x_hi, x_ticks) = self.x_axis();
        let (y_lo, y_hi, y_ticks) = self.y_axis();
        let mut chart = ChartBuilder::on(&plot)
            .margin_left(16)
            .margin_right(16)
            .margin_top(8)
            .margin_bottom(12)
            .x_label_area_size(58)
            .y_label_area_size(92)
            .build_cartesian_2d(
                TickedAxis::new(x_lo, x_hi, x_ticks),
                TickedAxis::new(y_lo, y_hi, y_ticks),
            )
            .map_err(err)?;
        let log2 = self.x_scale == XScale::Log2;
        let x_fmt = move |v: &f64| {
            if log2 {
                numfmt::plain(2f64.powf(*v).round())
            } else {
                numfmt::tick(*v)
            }
        };
        let y_fmt = |v: &f64| numfmt::tick(*v);
        chart
            .configure_mesh()
            .x_desc(self.x_desc.clone())
            .y_desc(self.y_desc.clone())
            .axis_desc_style((FAMILY, style::AXIS_DESC_PX).into_font().color(&style::INK))
            .label_style((FAMILY, style::TICK_PX).into_font().color(&style::MUTED))
            .bold_line_style(style::GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(style::AXIS)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .draw()
            .map_err(err)?;

        let mut labels: Vec<((i32, i32), String)> = Vec::new();
        for s in self.series.iter().filter(|s| !s.points.is_empty()) {
            let c = style::color(s.color);
            let line_style = ShapeStyle {
                color: c.to_rgba(),
                filled: false,
                stroke_width: 3,
            };
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|&(x, y)| (self.tx(x), y))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            if s.dashed {
                chart
                    .draw_series(DashedLineSeries::new(pts.clone(), 10, 6, line_style))
                    .map_err(err)?;
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 5, WHITE.filled())))
                    .map_err(err)?;
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 5, line_style)))
                    .map_err(err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(pts.clone(), line_style))
                    .map_err(err)?;
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 5, c.filled())))
                    .map_err(err)?;
            }
            for (&(x, y), l) in s.points.iter().zip(&s.point_labels) {
                let p = (self.tx(x), y);
                if p.0.is_finite() && p.1.is_finite() {
                    labels.push((chart.backend_coord(&p), l.clone()));
                }
            }
        }
        place_point_labels(root, &labels)?;

        // Legend entries.
        let mut y = 24;
        for s in self.series.iter().filter(|s| !s.points.is_empty()) {
            legend_sample(&legend, (8, y), s)?;
            legend
                .draw(&Text::new(
                    s.label.clone(),
                    (56, y),
                    legend_font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
                ))
                .map_err(err)?;
            y += 30;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_is_chosen_for_wide_positive_ranges() {
        assert_eq!(LineChart::scale_for(&[1.0, 4.0, 64.0]), XScale::Log2);
        assert_eq!(LineChart::scale_for(&[8.0, 16.0, 32.0]), XScale::Linear);
        assert_eq!(LineChart::scale_for(&[0.0, 64.0]), XScale::Linear);
    }

    #[test]
    fn log2_axis_ticks_are_powers_of_two() {
        let chart = LineChart {
            title: String::new(),
            subtitle: String::new(),
            x_desc: String::new(),
            y_desc: String::new(),
            x_scale: XScale::Log2,
            series: vec![Series {
                label: "a".into(),
                color: 0,
                dashed: false,
                points: vec![(1.0, 1.0), (80.0, 2.0), (512.0, 3.0)],
                point_labels: vec![],
            }],
        };
        let (lo, hi, ticks) = chart.x_axis();
        assert!(lo < 0.0 && hi > 9.0);
        assert_eq!(ticks, (0..=9).map(f64::from).collect::<Vec<_>>());
    }
}
