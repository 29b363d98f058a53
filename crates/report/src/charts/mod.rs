//! Charts as SVG and PNG files (plotters, embedded font), each drawn once per backend.

mod axis;
mod dist;
mod line;
pub mod style;
mod text_backend;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::ReportError;
use text_backend::TextBackend;

pub use dist::{DistChart, DistPanel};
pub use line::{LineChart, Series, XScale};

/// Something that draws itself on any plotters backend.
pub trait Drawable {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// One chart written to disk.
#[derive(Debug, Clone)]
pub struct ChartImage {
    /// File stem, e.g. `throughput_vs_concurrency`.
    pub name: String,
    pub title: String,
    pub svg_path: PathBuf,
    pub png_path: PathBuf,
    /// The PNG file's bytes, for embedding.
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Draws `chart` into `{dir}/{name}.svg` and `{dir}/{name}.png`.
pub fn render<D: Drawable>(
    dir: &Path,
    name: &str,
    title: &str,
    chart: &D,
) -> Result<ChartImage, ReportError> {
    let fail = |message: String| ReportError::Chart {
        name: name.to_string(),
        message,
    };
    style::ensure_font().map_err(fail)?;
    std::fs::create_dir_all(dir).map_err(|e| ReportError::write(dir, e))?;
    let (w, h) = style::SIZE;

    let mut svg = String::new();
    {
        let root =
            TextBackend::new(SVGBackend::with_string(&mut svg, (w, h)), false).into_drawing_area();
        chart.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let svg_path = dir.join(format!("{name}.svg"));
    std::fs::write(&svg_path, svg).map_err(|e| ReportError::write(&svg_path, e))?;

    let png_path = dir.join(format!("{name}.png"));
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = TextBackend::new(BitMapBackend::with_buffer(&mut rgb, (w, h)), true)
            .into_drawing_area();
        chart.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let png = encode_png(&rgb, w, h).map_err(|e| fail(format!("PNG encoding failed: {e}")))?;
    std::fs::write(&png_path, &png).map_err(|e| ReportError::write(&png_path, e))?;
    Ok(ChartImage {
        name: name.to_string(),
        title: title.to_string(),
        svg_path,
        png_path,
        png,
        width: w,
        height: h,
    })
}

/// An 8-bit RGB buffer as PNG.
fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// Converts any plotters drawing error into text.
pub(crate) fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}
