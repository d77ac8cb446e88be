//! Corner plots of posterior draws: 1-D marginal histograms on the diagonal
//! and 68/95% highest-density contours below it. (Owned by the infer work.)
//!
//! The 2-D contours are drawn on a histogram of the draws smoothed with a
//! Gaussian kernel (`smooth` bins wide); the levels are those of the
//! highest-density regions holding 68% and 95% of the smoothed histogram
//! mass, traced by marching squares and shaded underneath.

use crate::lines::fmt_tick;
use crate::{draw_err, init_fonts, PlotError, Result};
use plotters::prelude::*;
use std::path::Path;

/// Corner-plot options. Draws are passed row-major `[n, dim]`.
#[derive(Debug, Clone)]
pub struct CornerPlot {
    /// Parameter names, one per column of the draws (axis labels).
    pub names: Vec<String>,
    /// True values, drawn as lines / markers (NaN entries are skipped).
    pub truths: Option<Vec<f64>>,
    /// Histogram bins per axis.
    pub bins: usize,
    /// Gaussian smoothing of the 2-D histograms, in bins.
    pub smooth: f64,
    /// Size of one panel in pixels.
    pub panel: u32,
    /// Figure title (empty: none).
    pub title: String,
}

/// Corner plot of `draws` (`[n, names.len()]`, row-major) with default options.
pub fn corner(path: &Path, draws: &[f64], names: &[String], truths: Option<&[f64]>) -> Result<()> {
    CornerPlot::new(names).truths(truths).save(path, draws)
}

impl CornerPlot {
    /// Defaults: 30 bins, 1-bin smoothing, 220-pixel panels, no truths.
    pub fn new(names: &[String]) -> Self {
        Self {
            names: names.to_vec(),
            truths: None,
            bins: 30,
            smooth: 1.0,
            panel: 220,
            title: String::new(),
        }
    }
    /// True values to mark (NaN entries skipped).
    pub fn truths(mut self, t: Option<&[f64]>) -> Self {
        self.truths = t.map(|t| t.to_vec());
        self
    }
    /// Histogram bins per axis (at least 4).
    pub fn bins(mut self, b: usize) -> Self {
        self.bins = b.max(4);
        self
    }
    /// Figure title.
    pub fn title(mut self, t: &str) -> Self {
        self.title = t.into();
        self
    }

    /// Render to a PNG file.
    pub fn save(&self, path: &Path, draws: &[f64]) -> Result<()> {
        self.save_many(path, &[("", draws)])
    }

    /// Several posteriors on one corner plot, each in its own colour
    /// (contours and marginals; the first one shaded), with a legend of
    /// the labels in the empty upper triangle. Ranges cover every set.
    pub fn save_many(&self, path: &Path, sets: &[(&str, &[f64])]) -> Result<()> {
        init_fonts();
        let d = self.names.len();
        if sets.is_empty() {
            return Err(PlotError::Input("corner: no draws".into()));
        }
        for (label, draws) in sets {
            if d == 0 || draws.is_empty() || !draws.len().is_multiple_of(d) {
                return Err(PlotError::Input(format!(
                    "corner: {} values{} do not form rows of {} parameters",
                    draws.len(),
                    if label.is_empty() {
                        String::new()
                    } else {
                        format!(" of '{label}'")
                    },
                    d
                )));
            }
        }
        if let Some(t) = &self.truths {
            if t.len() != d {
                return Err(PlotError::Input(format!(
                    "corner: {} truths for {} parameters",
                    t.len(),
                    d
                )));
            }
        }
        // Per set: finite values per parameter, and full columns.
        let cols: Vec<Vec<Vec<f64>>> = sets
            .iter()
            .map(|(_, draws)| {
                let n = draws.len() / d;
                (0..d)
                    .map(|k| (0..n).map(|r| draws[r * d + k]).collect())
                    .collect()
            })
            .collect();
        let finite =
            |v: &Vec<f64>| -> Vec<f64> { v.iter().copied().filter(|x| x.is_finite()).collect() };
        let ranges: Vec<(f64, f64)> = (0..d)
            .map(|k| {
                let mut lo = f64::INFINITY;
                let mut hi = f64::NEG_INFINITY;
                for c in &cols {
                    let (a, b) = range(&finite(&c[k]))?;
                    lo = lo.min(a);
                    hi = hi.max(b);
                }
                Ok((lo, hi))
            })
            .collect::<Result<_>>()?;

        let side = self.panel * d as u32 + 40;
        let top = if self.title.is_empty() { 0 } else { 40 };
        let root = BitMapBackend::new(path, (side, side + top)).into_drawing_area();
        let e = draw_err(path);
        root.fill(&WHITE).map_err(&e)?;
        let area = if self.title.is_empty() {
            root.clone()
        } else {
            root.titled(&self.title, ("sans-serif", 24)).map_err(&e)?
        };
        let panels = area.split_evenly((d, d));
        let truth_col = RGBColor(200, 60, 40);
        for i in 0..d {
            for j in 0..d {
                if j > i {
                    continue;
                }
                let pa = &panels[i * d + j];
                let bottom = i == d - 1;
                let left = j == 0;
                let mut b = ChartBuilder::on(pa);
                b.margin(6).x_label_area_size(40).y_label_area_size(52);
                let (x0, x1) = ranges[j];
                if i == j {
                    let hists: Vec<(Vec<f64>, Vec<f64>)> = cols
                        .iter()
                        .map(|c| {
                            let (centers, counts) = hist1d(&finite(&c[i]), x0, x1, self.bins);
                            let m = counts.iter().cloned().fold(0.0, f64::max).max(1.0);
                            (centers, counts.into_iter().map(|v| v / m).collect())
                        })
                        .collect();
                    let mut chart = b.build_cartesian_2d(x0..x1, 0.0..1.1).map_err(&e)?;
                    let xdesc = if bottom { self.names[j].as_str() } else { "" };
                    chart
                        .configure_mesh()
                        .disable_mesh()
                        .x_labels(4)
                        .y_labels(0)
                        .x_desc(xdesc)
                        .label_style(("sans-serif", 12))
                        .axis_desc_style(("sans-serif", 15))
                        .x_label_formatter(&|v| if bottom { fmt_tick(*v) } else { String::new() })
                        .y_label_formatter(&|_| String::new())
                        .draw()
                        .map_err(&e)?;
                    let w = (x1 - x0) / self.bins as f64;
                    for (s, (centers, counts)) in hists.iter().enumerate() {
                        let col = PALETTE[s % PALETTE.len()];
                        let mut step = vec![(x0, 0.0)];
                        for (c, h) in centers.iter().zip(counts) {
                            step.push((c - 0.5 * w, *h));
                            step.push((c + 0.5 * w, *h));
                        }
                        step.push((x1, 0.0));
                        if s == 0 {
                            chart
                                .draw_series(std::iter::once(Polygon::new(
                                    step.clone(),
                                    col.mix(0.15).filled(),
                                )))
                                .map_err(&e)?;
                        }
                        chart
                            .draw_series(LineSeries::new(step, col.stroke_width(2)))
                            .map_err(&e)?;
                    }
                    if let Some(t) = self.truths.as_ref().map(|t| t[i]).filter(|t| t.is_finite()) {
                        chart
                            .draw_series(LineSeries::new(
                                vec![(t, 0.0), (t, 1.1)],
                                truth_col.stroke_width(2),
                            ))
                            .map_err(&e)?;
                    }
                } else {
                    let (y0, y1) = ranges[i];
                    let mut chart = b.build_cartesian_2d(x0..x1, y0..y1).map_err(&e)?;
                    let xdesc = if bottom { self.names[j].as_str() } else { "" };
                    let ydesc = if left { self.names[i].as_str() } else { "" };
                    chart
                        .configure_mesh()
                        .disable_mesh()
                        .x_labels(4)
                        .y_labels(4)
                        .x_desc(xdesc)
                        .y_desc(ydesc)
                        .label_style(("sans-serif", 12))
                        .axis_desc_style(("sans-serif", 15))
                        .x_label_formatter(&|v| if bottom { fmt_tick(*v) } else { String::new() })
                        .y_label_formatter(&|v| if left { fmt_tick(*v) } else { String::new() })
                        .draw()
                        .map_err(&e)?;
                    let nb = self.bins;
                    let (dx, dy) = ((x1 - x0) / nb as f64, (y1 - y0) / nb as f64);
                    for (s, c) in cols.iter().enumerate() {
                        let col = PALETTE[s % PALETTE.len()];
                        let mut h = hist2d(&c[j], &c[i], (x0, x1), (y0, y1), nb);
                        smooth2d(&mut h, nb, self.smooth);
                        let levels = hpd_levels(&h, &[0.95, 0.68]);
                        if s == 0 {
                            // Shading of the first set: 95% region light, 68% darker.
                            let mut cells = vec![];
                            for a in 0..nb {
                                for bb in 0..nb {
                                    let v = h[a * nb + bb];
                                    let alpha = if v >= levels[1] {
                                        0.45
                                    } else if v >= levels[0] {
                                        0.2
                                    } else {
                                        continue;
                                    };
                                    let (cx, cy) = (x0 + a as f64 * dx, y0 + bb as f64 * dy);
                                    cells.push(Rectangle::new(
                                        [(cx, cy), (cx + dx, cy + dy)],
                                        col.mix(alpha).filled(),
                                    ));
                                }
                            }
                            chart.draw_series(cells).map_err(&e)?;
                        }
                        for (li, &lev) in levels.iter().enumerate() {
                            let segs = marching_squares(&h, nb, lev, (x0, dx), (y0, dy));
                            let style = col.stroke_width(if li == 1 { 2 } else { 1 });
                            chart
                                .draw_series(
                                    segs.into_iter()
                                        .map(|s| PathElement::new(vec![s.0, s.1], style)),
                                )
                                .map_err(&e)?;
                        }
                    }
                    if let Some(t) = &self.truths {
                        let (tx, ty) = (t[j], t[i]);
                        if tx.is_finite() {
                            chart
                                .draw_series(LineSeries::new(
                                    vec![(tx, y0), (tx, y1)],
                                    truth_col.mix(0.8),
                                ))
                                .map_err(&e)?;
                        }
                        if ty.is_finite() {
                            chart
                                .draw_series(LineSeries::new(
                                    vec![(x0, ty), (x1, ty)],
                                    truth_col.mix(0.8),
                                ))
                                .map_err(&e)?;
                        }
                        if tx.is_finite() && ty.is_finite() {
                            chart
                                .draw_series(std::iter::once(Circle::new(
                                    (tx, ty),
                                    4,
                                    truth_col.filled(),
                                )))
                                .map_err(&e)?;
                        }
                    }
                }
            }
        }
        // Legend in the top-right panel (empty for d >= 2).
        if sets.iter().any(|(l, _)| !l.is_empty()) {
            let pa = &panels[d - 1];
            for (s, (label, _)) in sets.iter().enumerate() {
                let col = PALETTE[s % PALETTE.len()];
                let y = 20 + 24 * s as i32;
                pa.draw(&Rectangle::new([(10, y), (34, y + 12)], col.filled()))
                    .map_err(&e)?;
                pa.draw(&Text::new(
                    label.to_string(),
                    (42, y - 2),
                    ("sans-serif", 15),
                ))
                .map_err(&e)?;
            }
            if self.truths.is_some() {
                let y = 20 + 24 * sets.len() as i32;
                pa.draw(&Circle::new((22, y + 6), 4, truth_col.filled()))
                    .map_err(&e)?;
                pa.draw(&Text::new("truth", (42, y - 2), ("sans-serif", 15)))
                    .map_err(&e)?;
            }
        }
        root.present().map_err(&e)?;
        Ok(())
    }
}

/// Colours of the overlaid posteriors (blue, orange, green, purple, grey);
/// the truth is drawn in red.
const PALETTE: [RGBColor; 5] = [
    RGBColor(31, 90, 170),
    RGBColor(230, 120, 20),
    RGBColor(40, 150, 60),
    RGBColor(140, 70, 170),
    RGBColor(100, 100, 100),
];

/// Plot range: the 0.1%..99.9% quantile range widened by 5% on each side.
fn range(v: &[f64]) -> Result<(f64, f64)> {
    if v.is_empty() {
        return Err(PlotError::Input(
            "corner: a parameter has no finite draws".into(),
        ));
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let q = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
    let (lo, hi) = (q(0.001), q(0.999));
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5 * lo.abs().max(1e-3), hi + 0.5 * hi.abs().max(1e-3))
    };
    let pad = 0.05 * (hi - lo);
    Ok((lo - pad, hi + pad))
}

fn hist1d(v: &[f64], x0: f64, x1: f64, nb: usize) -> (Vec<f64>, Vec<f64>) {
    let w = (x1 - x0) / nb as f64;
    let mut c = vec![0.0; nb];
    for &x in v {
        let k = ((x - x0) / w).floor();
        if k >= 0.0 && (k as usize) < nb {
            c[k as usize] += 1.0;
        }
    }
    ((0..nb).map(|k| x0 + (k as f64 + 0.5) * w).collect(), c)
}

/// Counts `h[a * nb + b]` with `a` the x bin and `b` the y bin.
fn hist2d(x: &[f64], y: &[f64], xr: (f64, f64), yr: (f64, f64), nb: usize) -> Vec<f64> {
    let mut h = vec![0.0; nb * nb];
    let (wx, wy) = ((xr.1 - xr.0) / nb as f64, (yr.1 - yr.0) / nb as f64);
    for (&a, &b) in x.iter().zip(y) {
        let (i, j) = (((a - xr.0) / wx).floor(), ((b - yr.0) / wy).floor());
        if i >= 0.0 && j >= 0.0 && (i as usize) < nb && (j as usize) < nb {
            h[i as usize * nb + j as usize] += 1.0;
        }
    }
    h
}

/// Separable Gaussian smoothing with standard deviation `sigma` bins.
fn smooth2d(h: &mut [f64], nb: usize, sigma: f64) {
    if sigma <= 0.0 {
        return;
    }
    let r = (3.0 * sigma).ceil() as isize;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-0.5 * (i as f64 / sigma).powi(2)).exp())
        .collect();
    let mut tmp = vec![0.0; nb * nb];
    for a in 0..nb {
        for b in 0..nb {
            let mut s = 0.0;
            for (t, w) in k.iter().enumerate() {
                let aa = a as isize + t as isize - r;
                if aa >= 0 && (aa as usize) < nb {
                    s += w * h[aa as usize * nb + b];
                }
            }
            tmp[a * nb + b] = s;
        }
    }
    for a in 0..nb {
        for b in 0..nb {
            let mut s = 0.0;
            for (t, w) in k.iter().enumerate() {
                let bb = b as isize + t as isize - r;
                if bb >= 0 && (bb as usize) < nb {
                    s += w * tmp[a * nb + bb as usize];
                }
            }
            h[a * nb + b] = s;
        }
    }
}

/// Density thresholds whose super-level sets hold the given mass fractions
/// (highest-density regions of the histogram).
fn hpd_levels(h: &[f64], masses: &[f64]) -> Vec<f64> {
    let mut s: Vec<f64> = h.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = s.iter().sum();
    masses
        .iter()
        .map(|&m| {
            let mut c = 0.0;
            for &v in &s {
                c += v;
                if c >= m * total {
                    return v;
                }
            }
            *s.last().unwrap_or(&0.0)
        })
        .collect()
}

type Seg = ((f64, f64), (f64, f64));

/// Line segments of the `level` iso-contour of `h` sampled at bin centres.
fn marching_squares(
    h: &[f64],
    nb: usize,
    level: f64,
    (x0, dx): (f64, f64),
    (y0, dy): (f64, f64),
) -> Vec<Seg> {
    let pos = |a: f64, b: f64| (x0 + (a + 0.5) * dx, y0 + (b + 0.5) * dy);
    let mut segs = vec![];
    if !(level > 0.0) {
        return segs;
    }
    for a in 0..nb.saturating_sub(1) {
        for b in 0..nb.saturating_sub(1) {
            let c = [
                (a as f64, b as f64, h[a * nb + b]),
                (a as f64 + 1.0, b as f64, h[(a + 1) * nb + b]),
                (a as f64 + 1.0, b as f64 + 1.0, h[(a + 1) * nb + b + 1]),
                (a as f64, b as f64 + 1.0, h[a * nb + b + 1]),
            ];
            let mut pts = vec![];
            for k in 0..4 {
                let (p, q) = (c[k], c[(k + 1) % 4]);
                if (p.2 >= level) != (q.2 >= level) {
                    let t = (level - p.2) / (q.2 - p.2);
                    pts.push(pos(p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1)));
                }
            }
            if pts.len() >= 2 {
                segs.push((pts[0], pts[1]));
            }
            if pts.len() == 4 {
                segs.push((pts[2], pts[3]));
            }
        }
    }
    segs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_corner_png() {
        let dir = std::env::temp_dir().join("cosmodiff_plot_corner_test");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("corner.png");
        // Deterministic correlated pseudo-Gaussian draws (Box-Muller on a LCG).
        let mut s: u64 = 12345;
        let mut u = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut draws = vec![];
        for _ in 0..3000 {
            let (a, b) = (u(), u());
            let r = (-2.0 * a.ln()).sqrt();
            let (z1, z2) = (
                r * (std::f64::consts::TAU * b).cos(),
                r * (std::f64::consts::TAU * b).sin(),
            );
            let (c, d) = (u(), u());
            let z3 = (-2.0 * c.ln()).sqrt() * (std::f64::consts::TAU * d).cos();
            draws.extend([
                0.3 + 0.02 * z1,
                0.8 + 0.03 * (0.8 * z1 + 0.6 * z2),
                1.0 + z3,
            ]);
        }
        let names: Vec<String> = ["Omega_c", "sigma8", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        CornerPlot::new(&names)
            .truths(Some(&[0.3, 0.8, 1.0]))
            .title("test")
            .save(&p, &draws)
            .unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(corner(&p, &draws[..5], &names, None).is_err());
        // Two posteriors overlaid, with a legend.
        let shifted: Vec<f64> = draws.iter().map(|v| v + 0.01).collect();
        CornerPlot::new(&names)
            .truths(Some(&[0.3, 0.8, 1.0]))
            .save_many(&p, &[("a", &draws), ("b", &shifted)])
            .unwrap();
        assert_eq!(&std::fs::read(&p).unwrap()[1..4], b"PNG");
        assert!(CornerPlot::new(&names).save_many(&p, &[]).is_err());
    }

    #[test]
    fn hpd_levels_of_gaussian() {
        // For a 2-D standard normal the 68% HPD region is r^2 <= -2 ln(0.32).
        let nb = 200;
        let (x0, w) = (-6.0, 12.0 / nb as f64);
        let mut h = vec![0.0; nb * nb];
        for a in 0..nb {
            for b in 0..nb {
                let (x, y) = (x0 + (a as f64 + 0.5) * w, x0 + (b as f64 + 0.5) * w);
                h[a * nb + b] = (-0.5 * (x * x + y * y)).exp();
            }
        }
        let l = hpd_levels(&h, &[0.68]);
        let r2 = -2.0 * l[0].ln();
        assert!((r2 - (-2.0 * 0.32f64.ln())).abs() < 0.05, "r2 = {r2}");
    }
}
