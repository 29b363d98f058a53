//! A drawing-backend wrapper that lays out and rasterises text itself.
//!
//! plotters' `ab_glyph` text path drops each glyph's left side bearing and sizes glyphs
//! differently from the SVG it writes, so PNG labels come out unevenly spaced ("ma x").
//! This wrapper measures text with the embedded font at the SVG's size (`font-size` =
//! size / 1.24) for both backends, and, for bitmaps, draws glyphs at their true positions with
//! the same anchoring the SVG backend asks browsers for. Everything else is delegated.

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

use super::style::font_bytes;

/// The SVG backend writes `font-size = size / 1.24`.
const EM_PER_SIZE: f64 = 1.0 / 1.24;
/// x-height of DejaVu Sans in em (1120 / 2048): browsers' `ex`.
const EX: f32 = 0.547;

pub struct TextBackend<B> {
    inner: B,
    /// Rasterise text here (bitmaps) or pass it on (SVG keeps `<text>` elements).
    raster: bool,
    font: Option<FontRef<'static>>,
}

impl<B: DrawingBackend> TextBackend<B> {
    pub fn new(inner: B, raster: bool) -> Self {
        TextBackend {
            inner,
            raster,
            font: FontRef::try_from_slice(font_bytes()).ok(),
        }
    }
}

struct Layout {
    /// Glyphs with their pen x positions (baseline at y = 0), in px.
    glyphs: Vec<(ab_glyph::GlyphId, f32)>,
    width: f32,
    scale: PxScale,
    em: f32,
}

fn layout(font: &FontRef<'static>, text: &str, size: f64) -> Layout {
    let em = (size * EM_PER_SIZE) as f32;
    let units = font.units_per_em().unwrap_or(2048.0);
    let scale = PxScale::from(em * font.height_unscaled() / units);
    let scaled = font.as_scaled(scale);
    let mut x = 0.0;
    let mut prev = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            x += scaled.kern(p, id);
        }
        glyphs.push((id, x));
        x += scaled.h_advance(id);
        prev = Some(id);
    }
    Layout {
        glyphs,
        width: x,
        scale,
        em,
    }
}

impl<B: DrawingBackend> DrawingBackend for TextBackend<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<B::ErrorType>> {
        match &self.font {
            Some(font) => {
                let l = layout(font, text, style.size());
                Ok((l.width.ceil() as u32, l.em.ceil() as u32))
            }
            None => self.inner.estimate_text_size(text, style),
        }
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        let font = match (&self.font, self.raster) {
            (Some(f), true) => f.clone(),
            _ => return self.inner.draw_text(text, style, pos),
        };
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let l = layout(&font, text, style.size());
        // Anchor as the SVG backend does: text-anchor start/middle/end and a dy of 0.76em,
        // 0.5ex or -0.5ex from the anchor to the baseline.
        let x0 = match style.anchor().h_pos {
            HPos::Left => 0.0,
            HPos::Center => -l.width / 2.0,
            HPos::Right => -l.width,
        };
        let baseline = match style.anchor().v_pos {
            VPos::Top => 0.76 * l.em,
            VPos::Center => 0.5 * EX * l.em,
            VPos::Bottom => -0.5 * EX * l.em,
        };
        let trans = style.transform();
        let (w, h) = self.inner.get_size();
        let scaled = font.as_scaled(l.scale);
        let mut pixels: Vec<(i32, i32, f32)> = Vec::new();
        for (id, x) in &l.glyphs {
            let glyph = id.with_scale_and_position(l.scale, point(x0 + x, baseline));
            if let Some(outline) = scaled.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, cov| {
                    if cov > 0.0 {
                        pixels.push((b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32, cov));
                    }
                });
            }
        }
        for (lx, ly, cov) in pixels {
            let (dx, dy) = trans.transform(lx, ly);
            let (x, y) = (pos.0 + dx, pos.1 + dy);
            if x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
                self.inner.draw_pixel(
                    (x, y),
                    BackendColor {
                        alpha: color.alpha * f64::from(cov.min(1.0)),
                        rgb: color.rgb,
                    },
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_svg_font_size_and_keeps_bearings() {
        let font = FontRef::try_from_slice(font_bytes()).unwrap();
        let l = layout(&font, "max", 24.8);
        // font-size 20 px: DejaVu Sans "max" is about 2.07 em wide.
        assert!((l.em - 20.0).abs() < 1e-3);
        assert!(l.width > 38.0 && l.width < 45.0, "{}", l.width);
        // Pen positions increase by the advances.
        assert!(l.glyphs[0].1 == 0.0 && l.glyphs[1].1 > 0.0 && l.glyphs[2].1 > l.glyphs[1].1);
    }
}
