//! 2-D maps (convergence, shear, residuals) drawn side by side with a shared
//! colour scale (viridis), a title per panel and one colour bar.
//!
//! Maps are row-major `[ny][nx]` like everywhere in cosmodiff; row 0 is drawn
//! at the **bottom** (`origin = "lower"` in matplotlib terms) so that `y`
//! increases upwards. Non-finite pixels (e.g. masked) are drawn grey. Maps
//! larger than the panel are block-averaged to at most `panel` pixels a side.

use crate::lines::fmt_tick;
use crate::{draw_err, init_fonts, PlotError, Result};
use plotters::prelude::*;
use std::path::Path;

/// One panel.
#[derive(Debug, Clone)]
pub struct MapPanel {
    /// Panel title.
    pub title: String,
    /// Row-major `[ny][nx]` values, row 0 at the bottom.
    pub data: Vec<f64>,
    /// Columns.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
}

/// Maps side by side.
#[derive(Debug, Clone)]
pub struct MapPlot {
    /// Figure title.
    pub title: String,
    /// The maps, left to right.
    pub panels: Vec<MapPanel>,
    /// Colour range; `None`: min/max over all finite pixels.
    pub range: Option<(f64, f64)>,
    /// Make the automatic range symmetric about zero.
    pub symmetric: bool,
    /// Label of the colour bar (the quantity and its units).
    pub colorbar_label: String,
    /// Panel side in pixels.
    pub panel: u32,
}

impl MapPlot {
    /// An empty figure with 320-pixel panels and an automatic range.
    pub fn new(title: &str) -> Self {
        Self {
            title: title.into(),
            panels: vec![],
            range: None,
            symmetric: false,
            colorbar_label: String::new(),
            panel: 320,
        }
    }
    /// Add a square `n x n` map.
    pub fn add(mut self, title: &str, data: &[f64], n: usize) -> Self {
        self.panels.push(MapPanel {
            title: title.into(),
            data: data.to_vec(),
            nx: n,
            ny: n,
        });
        self
    }
    /// Add a rectangular `ny x nx` map.
    pub fn add_rect(mut self, title: &str, data: &[f64], ny: usize, nx: usize) -> Self {
        self.panels.push(MapPanel {
            title: title.into(),
            data: data.to_vec(),
            nx,
            ny,
        });
        self
    }
    /// Fix the colour range to `[lo, hi]`.
    pub fn range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo, hi));
        self
    }
    /// Make the automatic colour range symmetric about zero.
    pub fn symmetric(mut self, on: bool) -> Self {
        self.symmetric = on;
        self
    }
    /// Label of the colour bar.
    pub fn label(mut self, l: &str) -> Self {
        self.colorbar_label = l.into();
        self
    }

    fn color_range(&self) -> Result<(f64, f64)> {
        if let Some((lo, hi)) = self.range {
            if !(lo.is_finite() && hi.is_finite() && hi > lo) {
                return Err(PlotError::Input(format!(
                    "map: bad colour range [{lo}, {hi}]"
                )));
            }
            return Ok((lo, hi));
        }
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for p in &self.panels {
            for &v in p.data.iter().filter(|v| v.is_finite()) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if !(lo <= hi) {
            return Err(PlotError::Input("map: no finite pixels".into()));
        }
        if self.symmetric {
            let m = lo.abs().max(hi.abs());
            (lo, hi) = (-m, m);
        }
        if lo == hi {
            let d = 0.5 * lo.abs().max(1e-12);
            (lo, hi) = (lo - d, hi + d);
        }
        Ok((lo, hi))
    }

    /// Render to a PNG file.
    pub fn save(&self, path: &Path) -> Result<()> {
        init_fonts();
        if self.panels.is_empty() {
            return Err(PlotError::Input("map: no panels".into()));
        }
        for p in &self.panels {
            if p.nx == 0 || p.ny == 0 || p.data.len() != p.nx * p.ny {
                return Err(PlotError::Input(format!(
                    "map '{}': {} values for {}x{} pixels",
                    p.title,
                    p.data.len(),
                    p.ny,
                    p.nx
                )));
            }
        }
        let (lo, hi) = self.color_range()?;
        let k = self.panels.len() as u32;
        let cbar_w = 110;
        let top = if self.title.is_empty() { 0 } else { 36 };
        let (w, h) = (k * (self.panel + 20) + cbar_w, self.panel + 70 + top);
        let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
        let e = draw_err(path);
        root.fill(&WHITE).map_err(&e)?;
        let area = if self.title.is_empty() {
            root.clone()
        } else {
            root.titled(&self.title, ("sans-serif", 22)).map_err(&e)?
        };
        let (maps, cbar) = area.split_horizontally(w - cbar_w);
        let cells = maps.split_evenly((1, self.panels.len()));
        let grey = RGBColor(170, 170, 170);
        for (p, cell) in self.panels.iter().zip(cells.iter()) {
            // Block-average to at most `panel` pixels per side.
            let f = p.nx.max(p.ny).div_ceil(self.panel as usize).max(1);
            let (bx, by) = (p.nx.div_ceil(f), p.ny.div_ceil(f));
            let mut chart = ChartBuilder::on(cell)
                .caption(&p.title, ("sans-serif", 18))
                .margin(6)
                .x_label_area_size(22)
                .y_label_area_size(30)
                .build_cartesian_2d(0.0..p.nx as f64, 0.0..p.ny as f64)
                .map_err(&e)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(5)
                .y_labels(5)
                .label_style(("sans-serif", 12))
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .draw()
                .map_err(&e)?;
            let mut rects = Vec::with_capacity(bx * by);
            for j in 0..by {
                for i in 0..bx {
                    let (mut s, mut c) = (0.0, 0usize);
                    for y in j * f..((j + 1) * f).min(p.ny) {
                        for x in i * f..((i + 1) * f).min(p.nx) {
                            let v = p.data[y * p.nx + x];
                            if v.is_finite() {
                                s += v;
                                c += 1;
                            }
                        }
                    }
                    let col = if c == 0 {
                        grey
                    } else {
                        ViridisRGB::get_color_normalized((s / c as f64).clamp(lo, hi), lo, hi)
                    };
                    let x0 = (i * f) as f64;
                    let y0 = (j * f) as f64;
                    rects.push(Rectangle::new(
                        [
                            (x0, y0),
                            (
                                (x0 + f as f64).min(p.nx as f64),
                                (y0 + f as f64).min(p.ny as f64),
                            ),
                        ],
                        col.filled(),
                    ));
                }
            }
            chart.draw_series(rects).map_err(&e)?;
        }
        // Colour bar.
        let mut cb = ChartBuilder::on(&cbar)
            .margin_top(30)
            .margin_bottom(28)
            .margin_right(8)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..1.0, lo..hi)
            .map_err(&e)?;
        cb.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(6)
            .y_label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .y_desc(&self.colorbar_label)
            .y_label_formatter(&|v| fmt_tick(*v))
            .draw()
            .map_err(&e)?;
        let steps = 200;
        cb.draw_series((0..steps).map(|i| {
            let a = lo + (hi - lo) * i as f64 / steps as f64;
            let b = lo + (hi - lo) * (i + 1) as f64 / steps as f64;
            Rectangle::new(
                [(0.0, a), (1.0, b)],
                ViridisRGB::get_color_normalized(0.5 * (a + b), lo, hi).filled(),
            )
        }))
        .map_err(&e)?;
        root.present().map_err(&e)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_png_with_shared_scale() {
        let dir = std::env::temp_dir().join("cosmodiff_plot_map_test");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("maps.png");
        let n = 48;
        let a: Vec<f64> = (0..n * n)
            .map(|i| ((i % n) as f64 * 0.2).sin() * ((i / n) as f64 * 0.1).cos())
            .collect();
        let mut b = a.iter().map(|v| 0.5 * v).collect::<Vec<_>>();
        b[5] = f64::NAN;
        MapPlot::new("kappa")
            .add("truth", &a, n)
            .add("Wiener", &b, n)
            .symmetric(true)
            .label("kappa")
            .save(&p)
            .unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        // Big maps are block-averaged.
        let big = vec![1.0; 700 * 700];
        MapPlot::new("")
            .add("big", &big, 700)
            .save(&dir.join("big.png"))
            .unwrap();
    }

    #[test]
    fn rejects_bad_input() {
        let p = std::env::temp_dir().join("cosmodiff_plot_map_bad.png");
        assert!(MapPlot::new("t").save(&p).is_err());
        assert!(MapPlot::new("t").add("a", &[1.0; 3], 2).save(&p).is_err());
        assert!(MapPlot::new("t")
            .add("a", &[f64::NAN; 4], 2)
            .save(&p)
            .is_err());
    }
}
