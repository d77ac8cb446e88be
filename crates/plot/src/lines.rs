//! Curves y(x) with optional symmetric error bars, linear or log axes.
//! Used for P(k) in (Mpc/h)^3 vs k in h/Mpc and for C_ell vs ell.

use crate::{draw_err, init_fonts, PlotError, Result};
use plotters::prelude::*;
use std::path::Path;

/// One curve of a [`LinePlot`].
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend entry.
    pub label: String,
    /// Abscissae.
    pub x: Vec<f64>,
    /// Ordinates, one per abscissa.
    pub y: Vec<f64>,
    /// Symmetric 1-sigma error bars, drawn when present.
    pub yerr: Option<Vec<f64>>,
    /// Draw points instead of a line.
    pub points: bool,
}

impl Series {
    /// A curve through `(x, y)`.
    pub fn line(label: &str, x: &[f64], y: &[f64]) -> Self {
        Self {
            label: label.into(),
            x: x.to_vec(),
            y: y.to_vec(),
            yerr: None,
            points: false,
        }
    }
    /// Markers at `(x, y)`, with symmetric error bars `yerr` if given.
    pub fn points(label: &str, x: &[f64], y: &[f64], yerr: Option<&[f64]>) -> Self {
        Self {
            label: label.into(),
            x: x.to_vec(),
            y: y.to_vec(),
            yerr: yerr.map(|e| e.to_vec()),
            points: true,
        }
    }
}

/// A figure with one panel of curves.
#[derive(Debug, Clone)]
pub struct LinePlot {
    /// Figure title.
    pub title: String,
    /// x-axis label (with units).
    pub xlabel: String,
    /// y-axis label (with units).
    pub ylabel: String,
    /// Logarithmic x axis.
    pub logx: bool,
    /// Logarithmic y axis.
    pub logy: bool,
    /// The curves, drawn in order.
    pub series: Vec<Series>,
    /// Figure size in pixels (width, height).
    pub size: (u32, u32),
}

impl LinePlot {
    /// An empty 800x600 figure with linear axes.
    pub fn new(title: &str, xlabel: &str, ylabel: &str) -> Self {
        Self {
            title: title.into(),
            xlabel: xlabel.into(),
            ylabel: ylabel.into(),
            logx: false,
            logy: false,
            series: vec![],
            size: (800, 600),
        }
    }
    /// Logarithmic x axis on or off.
    pub fn log_x(mut self, on: bool) -> Self {
        self.logx = on;
        self
    }
    /// Logarithmic y axis on or off.
    pub fn log_y(mut self, on: bool) -> Self {
        self.logy = on;
        self
    }
    /// Append a series (builder style, not `std::ops::Add`).
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }

    /// Data range over all series, positive values only on log axes.
    fn range(&self) -> Result<((f64, f64), (f64, f64))> {
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for s in &self.series {
            if s.x.len() != s.y.len() {
                return Err(PlotError::Input(format!(
                    "series '{}': x and y lengths differ",
                    s.label
                )));
            }
            for (i, (&x, &y)) in s.x.iter().zip(&s.y).enumerate() {
                let e = s.yerr.as_ref().map(|e| e[i].abs()).unwrap_or(0.0);
                if !x.is_finite() || !y.is_finite() || (self.logx && x <= 0.0) {
                    continue;
                }
                x0 = x0.min(x);
                x1 = x1.max(x);
                for v in [y - e, y + e] {
                    if self.logy && v <= 0.0 {
                        continue;
                    }
                    y0 = y0.min(v);
                    y1 = y1.max(v);
                }
            }
        }
        if !(x0 <= x1) || !(y0 <= y1) {
            return Err(PlotError::Input("nothing finite to plot".into()));
        }
        // A single value (e.g. one training epoch): a range around it.
        let widen = |v: f64| (v - 0.5 * v.abs().max(1.0), v + 0.5 * v.abs().max(1.0));
        if x0 == x1 {
            (x0, x1) = if self.logx {
                (x0 / 2.0, x1 * 2.0)
            } else {
                widen(x0)
            };
        }
        if y0 == y1 {
            (y0, y1) = widen(y0);
        }
        if self.logy {
            Ok(((x0, x1), (y0 / 1.5, y1 * 1.5)))
        } else {
            let pad = 0.05 * (y1 - y0);
            Ok(((x0, x1), (y0 - pad, y1 + pad)))
        }
    }

    /// Render to a PNG file.
    pub fn save(&self, path: &Path) -> Result<()> {
        init_fonts();
        let ((x0, x1), (y0, y1)) = self.range()?;
        let root = BitMapBackend::new(path, self.size).into_drawing_area();
        let e = draw_err(path);
        root.fill(&WHITE).map_err(&e)?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(80);
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(&self.xlabel)
                    .y_desc(&self.ylabel)
                    .x_label_formatter(&|v| fmt_tick(*v))
                    .y_label_formatter(&|v| fmt_tick(*v))
                    .draw()
                    .map_err(&e)?;
                for (i, s) in self.series.iter().enumerate() {
                    let color = Palette99::pick(i).to_rgba();
                    let pts: Vec<(f64, f64)> =
                        s.x.iter()
                            .zip(&s.y)
                            .filter(|(x, y)| {
                                x.is_finite()
                                    && y.is_finite()
                                    && (!self.logx || **x > 0.0)
                                    && (!self.logy || **y > 0.0)
                            })
                            .map(|(x, y)| (*x, *y))
                            .collect();
                    if s.points {
                        chart
                            .draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))
                            .map_err(&e)?
                            .label(s.label.clone())
                            .legend(move |(x, y)| Circle::new((x + 10, y), 3, color.filled()));
                        if let Some(err) = &s.yerr {
                            let bars: Vec<_> =
                                s.x.iter()
                                    .zip(&s.y)
                                    .zip(err)
                                    .filter(|((x, y), _)| x.is_finite() && y.is_finite())
                                    .map(|((x, y), d)| {
                                        let lo = if self.logy {
                                            (y - d.abs()).max(y * 1e-3)
                                        } else {
                                            y - d.abs()
                                        };
                                        ErrorBar::new_vertical(
                                            *x,
                                            lo,
                                            *y,
                                            y + d.abs(),
                                            color.filled(),
                                            6,
                                        )
                                    })
                                    .collect();
                            chart.draw_series(bars).map_err(&e)?;
                        }
                    } else {
                        chart
                            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                            .map_err(&e)?
                            .label(s.label.clone())
                            .legend(move |(x, y)| {
                                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                            });
                    }
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(&e)?;
            }};
        }
        match (self.logx, self.logy) {
            (true, true) => draw!(builder
                .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
                .map_err(&e)?),
            (true, false) => draw!(builder
                .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
                .map_err(&e)?),
            (false, true) => draw!(builder
                .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                .map_err(&e)?),
            (false, false) => draw!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(&e)?),
        }
        root.present().map_err(&e)?;
        Ok(())
    }
}

/// Compact tick labels: plain for moderate magnitudes, scientific otherwise.
pub fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if (1e-2..1e4).contains(&a) {
        let s = format!("{:.3}", v);
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{:.1e}", v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_png_log_axes_with_errors() {
        let dir = std::env::temp_dir().join("cosmodiff_plot_lines_test");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("cl.png");
        let ell: Vec<f64> = (1..30).map(|i| 10.0 * 1.2f64.powi(i)).collect();
        let cl: Vec<f64> = ell.iter().map(|l| 1e-8 * (l / 100.0).powf(-1.2)).collect();
        let err: Vec<f64> = cl.iter().map(|c| 0.2 * c).collect();
        LinePlot::new("C_ell", "ell", "C_ell")
            .log_x(true)
            .log_y(true)
            .add(Series::line("theory", &ell, &cl))
            .add(Series::points("measured", &ell, &cl, Some(&err)))
            .save(&p)
            .unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }

    #[test]
    fn a_single_point_gets_a_range() {
        // One training epoch: one point per curve.
        let plot =
            LinePlot::new("loss", "epoch", "loss").add(Series::line("train", &[1.0], &[0.5]));
        let ((x0, x1), (y0, y1)) = plot.range().unwrap();
        assert!(x0 < 1.0 && x1 > 1.0 && y0 < 0.5 && y1 > 0.5);
        let p = std::env::temp_dir().join("cosmodiff_plot_single.png");
        plot.save(&p).unwrap();
    }

    #[test]
    fn rejects_empty() {
        let p = std::env::temp_dir().join("cosmodiff_plot_empty.png");
        assert!(LinePlot::new("t", "x", "y").save(&p).is_err());
    }
}
