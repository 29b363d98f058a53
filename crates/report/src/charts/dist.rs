//! Per-request latency distributions: one histogram panel per metric, with p50/p90/p99 marked.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::TickedAxis;
use super::style::{self, FAMILY};
use super::{err, Drawable};
use crate::numfmt;
use crate::stats::percentile_sorted;

#[derive(Debug, Clone, PartialEq)]
pub struct DistPanel {
    /// Panel caption, e.g. `TTFT`.
    pub name: String,
    /// X axis description with unit, e.g. `TTFT (ms)`.
    pub x_desc: String,
    /// Values in any order.
    pub values: Vec<f64>,
    pub color: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DistChart {
    pub title: String,
    pub subtitle: String,
    pub panels: Vec<DistPanel>,
}

/// Bin edges and counts of a histogram over [min, max].
pub(crate) fn histogram(sorted: &[f64]) -> (Vec<f64>, Vec<u32>) {
    let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
        return (vec![0.0, 1.0], vec![0]);
    };
    let bins = ((sorted.len() as f64).sqrt() * 1.5)
        .round()
        .clamp(8.0, 40.0) as usize;
    let (lo, hi) = if max > min {
        (min, max)
    } else {
        (min - 0.5, max + 0.5)
    };
    let width = (hi - lo) / bins as f64;
    let edges: Vec<f64> = (0..=bins).map(|i| lo + width * i as f64).collect();
    let mut counts = vec![0u32; bins];
    for v in sorted {
        let idx = (((v - lo) / width) as usize).min(bins - 1);
        counts[idx] += 1;
    }
    (edges, counts)
}

/// Whole-number ticks for request counts: steps of 1, 2, (2.5,) 5 × 10^k.
fn count_ticks(hi: f64) -> Vec<f64> {
    let raw = (hi / 6.0).max(1.0);
    let mut mag = 1.0;
    let step = loop {
        let steps: &[f64] = if mag >= 10.0 {
            &[1.0, 2.0, 2.5, 5.0]
        } else {
            &[1.0, 2.0, 5.0]
        };
        if let Some(m) = steps.iter().find(|m| *m * mag >= raw) {
            break m * mag;
        }
        mag *= 10.0;
    };
    (0..)
        .map(|i| f64::from(i) * step)
        .take_while(|v| *v <= hi)
        .collect()
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &DistPanel,
) -> Result<(), String> {
    let mut sorted: Vec<f64> = panel
        .values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    sorted.sort_by(f64::total_cmp);
    let (edges, counts) = histogram(&sorted);
    let x_lo = edges[0];
    let x_hi = edges[edges.len() - 1];
    let pad = (x_hi - x_lo) * 0.03;
    let max_count = counts.iter().copied().max().unwrap_or(0).max(1);
    let y_hi = f64::from(max_count) * 1.3;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{}  (n = {})", panel.name, sorted.len()),
            (FAMILY, style::AXIS_DESC_PX + 2)
                .into_font()
                .color(&style::INK),
        )
        .margin(16)
        .x_label_area_size(64)
        .y_label_area_size(80)
        .build_cartesian_2d(
            TickedAxis::new(x_lo - pad, x_hi + pad, style::nice_ticks(x_lo, x_hi, 5)),
            TickedAxis::new(0.0, y_hi, count_ticks(y_hi)),
        )
        .map_err(err)?;
    let fmt = |v: &f64| numfmt::tick(*v);
    chart
        .configure_mesh()
        .x_desc(panel.x_desc.clone())
        .y_desc("requests")
        .axis_desc_style((FAMILY, style::AXIS_DESC_PX).into_font().color(&style::INK))
        .label_style((FAMILY, style::TICK_PX).into_font().color(&style::MUTED))
        .bold_line_style(style::GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(style::AXIS)
        .x_label_formatter(&fmt)
        .y_label_formatter(&fmt)
        .draw()
        .map_err(err)?;
    let c = style::color(panel.color);
    chart
        .draw_series(counts.iter().enumerate().map(|(i, &n)| {
            let mut bar = Rectangle::new(
                [(edges[i], 0.0), (edges[i + 1], f64::from(n))],
                c.mix(0.85).filled(),
            );
            bar.set_margin(0, 0, 1, 1);
            bar
        }))
        .map_err(err)?;
    // Percentile lines with "pNN value" labels centred above them; a label that would overlap
    // an earlier one moves down a level.
    let font = (FAMILY, style::POINT_LABEL_PX + 2)
        .into_font()
        .color(&style::INK);
    let line = ShapeStyle {
        color: style::INK.to_rgba(),
        filled: false,
        stroke_width: 2,
    };
    let (px_lo, px_hi) = {
        let a = chart.backend_coord(&(x_lo - pad, 0.0));
        let b = chart.backend_coord(&(x_hi + pad, 0.0));
        (a.0, b.0)
    };
    let levels = [0.96, 0.88, 0.80];
    let mut placed: Vec<(i32, i32, i32, i32)> = Vec::new();
    // Percentiles whose lines are close together (under 40 px) share one label.
    let mut marks: Vec<(f64, String)> = Vec::new();
    let mut last_px: Option<i32> = None;
    for (q, name) in [(50.0, "p50"), (90.0, "p90"), (99.0, "p99")] {
        let Some(v) = percentile_sorted(&sorted, q) else {
            continue;
        };
        let px = chart.backend_coord(&(v, 0.0)).0;
        let label = format!("{name} {}", numfmt::tick(v));
        match (last_px, marks.last_mut()) {
            (Some(lp), Some(last)) if (px - lp).abs() < 40 => {
                last.1 = format!("{} · {label}", last.1);
            }
            _ => marks.push((v, label)),
        }
        last_px = Some(px);
    }
    for (v, text) in marks {
        let (tw, th) = area.estimate_text_size(&text, &font).map_err(err)?;
        let (tw, th) = (tw as i32, th as i32);
        let x_px = chart.backend_coord(&(v, 0.0)).0;
        let left = (x_px - tw / 2).clamp(px_lo, (px_hi - tw).max(px_lo));
        let mut spot = None;
        for level in levels {
            let top = chart.backend_coord(&(v, y_hi * level)).1 - th;
            let r = (left - 3, top, left + tw + 3, top + th);
            if !placed
                .iter()
                .any(|p| p.0 < r.2 && r.0 < p.2 && p.1 < r.3 && r.1 < p.3)
            {
                spot = Some((level, r));
                break;
            }
        }
        let (level, rect) = spot.unwrap_or((levels[levels.len() - 1], (left, 0, left, 0)));
        placed.push(rect);
        chart
            .draw_series(std::iter::once(DashedPathElement::new(
                vec![(v, 0.0), (v, y_hi * level * 0.985)],
                6,
                4,
                line,
            )))
            .map_err(err)?;
        if rect.2 > rect.0 {
            let base = area.get_base_pixel();
            area.draw(&Text::new(
                text,
                (rect.0 + 3 - base.0, rect.1 - base.1),
                font.clone().pos(Pos::new(HPos::Left, VPos::Top)),
            ))
            .map_err(err)?;
        }
    }
    Ok(())
}

impl Drawable for DistChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let (head, body) = root.split_vertically(84);
        head.draw(&Text::new(
            self.title.clone(),
            (28, 18),
            (FAMILY, style::TITLE_PX).into_font().color(&style::INK),
        ))
        .map_err(err)?;
        head.draw(&Text::new(
            self.subtitle.clone(),
            (28, 56),
            (FAMILY, style::SUBTITLE_PX)
                .into_font()
                .color(&style::MUTED),
        ))
        .map_err(err)?;
        let n = self.panels.len().max(1);
        let areas = body.split_evenly((1, n));
        for (area, panel) in areas.iter().zip(&self.panels) {
            draw_panel(area, panel)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_every_value() {
        let v: Vec<f64> = (0..100).map(f64::from).collect();
        let (edges, counts) = histogram(&v);
        assert_eq!(counts.len(), 15);
        assert_eq!(edges.len(), 16);
        assert_eq!(counts.iter().sum::<u32>(), 100);
        assert_eq!(edges[0], 0.0);
        assert_eq!(edges[15], 99.0);
        assert_eq!(count_ticks(13.0), vec![0.0, 5.0, 10.0]);
        assert_eq!(
            count_ticks(130.0),
            vec![0.0, 25.0, 50.0, 75.0, 100.0, 125.0]
        );
        assert_eq!(count_ticks(3.0), vec![0.0, 1.0, 2.0, 3.0]);
        let (_, one) = histogram(&[5.0, 5.0]);
        assert_eq!(one.iter().sum::<u32>(), 2);
    }
}
