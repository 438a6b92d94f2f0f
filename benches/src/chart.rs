//! The scale benchmark's chart: throughput against refresher processes and against
//! concurrency, two panels in one PNG (plotters' bitmap backend). Text is drawn with a
//! TrueType font read from a file at run time (Debian's `fonts-dejavu-core` ships
//! [`DEFAULT_FONT`]).

use crate::Result;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::Path;

/// The font used when none is given.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// One panel: its title, the x axis label, and (x, refreshes per second) points, drawn
/// evenly spaced in the given order.
#[derive(Debug, Clone)]
pub struct Panel {
    /// The panel's title.
    pub title: String,
    /// The x axis label.
    pub x_label: String,
    /// The points, in x order.
    pub points: Vec<(u32, f64)>,
}

/// Loads `font` (a TrueType file) as the chart's `sans-serif` face. Call once per process.
pub fn load_font(font: &Path) -> Result<()> {
    let bytes = std::fs::read(font).map_err(|e| {
        format!(
            "font {}: {e} (install Debian's fonts-dejavu-core or pass --font)",
            font.display()
        )
    })?;
    // plotters keeps a registered face for the whole process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{} is not a TrueType font", font.display()))?;
    Ok(())
}

/// Draws `panels` side by side into a PNG at `path` (`title` above them). The font must
/// have been loaded ([`load_font`]).
pub fn draw(path: &Path, title: &str, panels: &[Panel]) -> Result<()> {
    let width = 560 * panels.len().max(1) as u32;
    let root = BitMapBackend::new(path, (width, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| e.to_string())?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        // The x values are categories (1, 2, 3 processes; 8, 16, 64 concurrency): point i
        // sits at position i + 1, labelled with its value.
        let len = panel.points.len() as u32;
        let y_max = panel.points.iter().map(|p| p.1).fold(0.0, f64::max) * 1.2;
        let at: Vec<(u32, f64)> = (1..).zip(panel.points.iter().map(|p| p.1)).collect();
        let label = |x: &u32| match x.checked_sub(1).and_then(|i| panel.points.get(i as usize)) {
            Some(p) => p.0.to_string(),
            None => String::new(),
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 17))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(0u32..len + 1, 0.0..y_max.max(1.0))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(&panel.x_label)
            .y_desc("refreshes per second")
            .x_labels(len as usize + 2)
            .x_label_formatter(&label)
            .disable_x_mesh()
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(|e| e.to_string())?;
        let color = RGBColor(31, 119, 180);
        chart
            .draw_series(LineSeries::new(at.iter().copied(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                at.iter()
                    .map(|&(x, y)| Circle::new((x, y), 5, color.filled())),
            )
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                at.iter().map(|&(x, y)| {
                    Text::new(format!("{y:.0}/s"), (x, y * 1.05), ("sans-serif", 14))
                }),
            )
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_drawn_when_the_font_is_there() {
        let font = Path::new(DEFAULT_FONT);
        if !font.is_file() {
            // Text needs the font (Debian's fonts-dejavu-core); the rest is the same code.
            eprintln!("skipped: {DEFAULT_FONT} is not installed");
            return;
        }
        load_font(font).unwrap();
        let dir = std::env::temp_dir().join(format!("scale-chart-{}", crate::random_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.png");
        let panel = |x: &str, points: Vec<(u32, f64)>| Panel {
            title: format!("by {x}"),
            x_label: x.to_owned(),
            points,
        };
        draw(
            &path,
            "test",
            &[
                panel("processes", vec![(1, 3000.0), (2, 3500.0), (3, 3600.0)]),
                panel("concurrency", vec![(8, 2500.0), (64, 3100.0)]),
            ],
        )
        .unwrap();
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(load_font(&dir.join("missing.ttf")).is_err());
    }
}
