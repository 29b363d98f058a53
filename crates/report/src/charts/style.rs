//! Colours, fonts and sizes shared by every chart; the font is compiled in.

use std::sync::OnceLock;

use plotters::style::{FontStyle, RGBColor};

/// DejaVu Sans (see `assets/README.md` for its source and licence).
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The embedded font file.
pub fn font_bytes() -> &'static [u8] {
    FONT_BYTES
}

/// The family name the charts ask for.
pub const FAMILY: &str = "sans-serif";

/// Registers the embedded font with plotters once per process.
pub fn ensure_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_BYTES)
            .map_err(|_| "the embedded DejaVu Sans font could not be loaded".to_string())
    })
    .clone()
}

/// Pixel size of every chart (PNG) and its SVG twin.
pub const SIZE: (u32, u32) = (1200, 720);

pub const TITLE_PX: u32 = 28;
pub const SUBTITLE_PX: u32 = 17;
pub const AXIS_DESC_PX: u32 = 20;
pub const TICK_PX: u32 = 17;
pub const LEGEND_PX: u32 = 17;
pub const POINT_LABEL_PX: u32 = 13;

pub const INK: RGBColor = RGBColor(0x22, 0x2b, 0x36);
pub const MUTED: RGBColor = RGBColor(0x5f, 0x6b, 0x7a);
pub const GRID: RGBColor = RGBColor(0xe3, 0xe7, 0xec);
pub const AXIS: RGBColor = RGBColor(0x9a, 0xa5, 0xb1);

/// Tableau 10: distinct, colour-blind-friendlier than the plotters defaults.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// About `target` round tick positions (steps of 1, 2 or 5 × 10^k) covering [lo, hi].
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut i = 0.0;
    loop {
        let v = first + i * step;
        if v > hi + step * 1e-9 {
            break;
        }
        // Snap float noise (0.30000000000000004) to the step grid.
        ticks.push((v / step).round() * step);
        i += 1.0;
    }
    ticks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn font_registers() {
        assert_eq!(ensure_font(), Ok(()));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(
            nice_ticks(0.0, 1100.0, 6),
            vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]
        );
        assert_eq!(nice_ticks(0.0, 1.0, 4), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(nice_ticks(5.0, 5.0, 4), vec![5.0]);
    }
}
