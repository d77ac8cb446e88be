//! Cloud-in-cell (CIC) mass assignment on a periodic cube, and its adjoints.
//!
//! Positions are in **cell units** of a cubic mesh of side `n` (cell `c` has
//! its centre at integer coordinate `c`, as in JaxPM/pmwd); coordinates
//! outside `[0, n)` wrap periodically. A particle at `x` with
//! `i = floor(x)`, `d = x - i` gives weight `W(x - c) = prod_a w_a` to the
//! 8 cells `c = i + {0,1}^3`, with `w_a = 1 - d_a` for the lower and `d_a` for
//! the upper neighbour (Hockney & Eastwood 1988).
//!
//! - paint:   `rho(c) = sum_p m_p W(x_p - c)`
//! - readout: `v_p = sum_c f(c) W(x_p - c)`
//!
//! Paint and readout are transposes of each other in the mesh values (the
//! momentum-conserving pair), so
//! - VJP of readout w.r.t. the mesh: `f_bar = paint(x, weights = v_bar)`,
//! - VJP of paint w.r.t. the weights: `m_bar = readout(rho_bar, x)`,
//! - VJP w.r.t. positions: `x_bar_p = v_bar_p grad_x [sum_c f(c) W(x_p - c)]`
//!   (readout) and `x_bar_p = m_p grad_x [sum_c rho_bar(c) W(x_p - c)]`
//!   (paint), both from [`readout_grad`]. At integer coordinates the
//!   one-sided derivative of `d = x - floor(x)` is used (floor has zero
//!   derivative), which is what automatic differentiation in JAX gives.
//!
//! Painting is rayon-parallel without atomics: particles are split into a
//! fixed number of contiguous chunks, each painted into a private buffer
//! covering only the x-planes its particles reach (small when particles are
//! stored in Lagrangian order, as in the particle-mesh code), then the buffers
//! are summed plane by plane in chunk order (deterministic for a given
//! thread count).

use rayon::prelude::*;

/// Split `x` into `(i mod n, d)` with `i = floor(x)`, `d = x - i` in `[0, 1)`.
/// `floor` without a libm call (baseline x86-64 has no `roundss`); exact
/// for |x| < 2^31, falls back to `f32::floor` beyond.
#[inline]
fn fast_floor(x: f32) -> f32 {
    if x.abs() < 2.0e9 {
        let t = x as i32 as f32;
        if t > x {
            t - 1.0
        } else {
            t
        }
    } else {
        x.floor()
    }
}

#[inline]
fn split(x: f32, n: usize) -> (usize, usize, f32) {
    let f = fast_floor(x);
    let d = x - f;
    let fi = f as i64;
    let ni = n as i64;
    // no integer division on the common path (|x| < 2n)
    let i = if (0..ni).contains(&fi) {
        fi
    } else if (-ni..0).contains(&fi) {
        fi + ni
    } else if (ni..2 * ni).contains(&fi) {
        fi - ni
    } else {
        fi.rem_euclid(ni)
    } as usize;
    let j = if i + 1 == n { 0 } else { i + 1 };
    (i, j, d)
}

/// The CIC stencil of a position: lower/upper cell index per axis (wrapped)
/// and the fractional offsets `d` (weights `1 - d` and `d`).
#[inline]
pub fn corners(p: &[f32; 3], n: usize) -> ([usize; 2], [usize; 2], [usize; 2], [f32; 3]) {
    let (x0, x1, dx) = split(p[0], n);
    let (y0, y1, dy) = split(p[1], n);
    let (z0, z1, dz) = split(p[2], n);
    ([x0, x1], [y0, y1], [z0, z1], [dx, dy, dz])
}

/// Add the CIC density of particles at `pos` (weights `weights`, default 1)
/// into `mesh` (length `n^3`, C order).
pub fn paint(n: usize, pos: &[[f32; 3]], weights: Option<&[f32]>, mesh: &mut [f32]) {
    assert_eq!(mesh.len(), n * n * n, "cic::paint: mesh length");
    if let Some(w) = weights {
        assert_eq!(w.len(), pos.len(), "cic::paint: weights length");
    }
    if pos.is_empty() {
        return;
    }
    let nchunk = (2 * rayon::current_num_threads()).clamp(1, pos.len());
    let csize = pos.len().div_ceil(nchunk);
    let n2 = n * n;
    // Each chunk: (first plane, number of planes, buffer).
    let bufs: Vec<(usize, usize, Vec<f32>)> = pos
        .par_chunks(csize)
        .enumerate()
        .map(|(c, ps)| {
            // Unwrapped plane range touched by this chunk.
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for p in ps {
                let f = fast_floor(p[0]) as i64;
                lo = lo.min(f);
                hi = hi.max(f + 1);
            }
            let len = ((hi - lo + 1) as usize).min(n);
            let first = lo.rem_euclid(n as i64) as usize;
            let mut buf = vec![0.0f32; len * n2];
            let off = c * csize;
            for (k, p) in ps.iter().enumerate() {
                let m = weights.map_or(1.0, |w| w[off + k]);
                let (xs, ys, zs, d) = corners(p, n);
                let wx = [1.0 - d[0], d[0]];
                let wy = [1.0 - d[1], d[1]];
                let wz = [1.0 - d[2], d[2]];
                for a in 0..2 {
                    // local plane index
                    let lx = (xs[a] + n - first) % n;
                    let base = lx * n2;
                    let ma = m * wx[a];
                    for b in 0..2 {
                        let mab = ma * wy[b];
                        let row = base + ys[b] * n;
                        buf[row + zs[0]] += mab * wz[0];
                        buf[row + zs[1]] += mab * wz[1];
                    }
                }
            }
            (first, len, buf)
        })
        .collect();
    mesh.par_chunks_mut(n2).enumerate().for_each(|(ix, plane)| {
        for (first, len, buf) in &bufs {
            let l = (ix + n - first) % n;
            if l < *len {
                for (v, b) in plane.iter_mut().zip(&buf[l * n2..(l + 1) * n2]) {
                    *v += *b;
                }
            }
        }
    });
}

/// Paint three weight components at once (one stencil per particle):
/// returns `[paint(x, w[..][0]), paint(x, w[..][1]), paint(x, w[..][2])]`.
/// Used by the force VJP.
pub fn paint3(n: usize, pos: &[[f32; 3]], w: &[[f32; 3]]) -> [Vec<f32>; 3] {
    assert_eq!(w.len(), pos.len(), "cic::paint3: weights length");
    let n2 = n * n;
    let mut out: [Vec<f32>; 3] = std::array::from_fn(|_| vec![0.0f32; n * n2]);
    if pos.is_empty() {
        return out;
    }
    let nchunk = (2 * rayon::current_num_threads()).clamp(1, pos.len());
    let csize = pos.len().div_ceil(nchunk);
    let bufs: Vec<(usize, usize, Vec<[f32; 3]>)> = pos
        .par_chunks(csize)
        .enumerate()
        .map(|(c, ps)| {
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for p in ps {
                let f = fast_floor(p[0]) as i64;
                lo = lo.min(f);
                hi = hi.max(f + 1);
            }
            let len = ((hi - lo + 1) as usize).min(n);
            let first = lo.rem_euclid(n as i64) as usize;
            let mut buf = vec![[0.0f32; 3]; len * n2];
            let off = c * csize;
            for (k, p) in ps.iter().enumerate() {
                let m = w[off + k];
                let (xs, ys, zs, d) = corners(p, n);
                let wx = [1.0 - d[0], d[0]];
                let wy = [1.0 - d[1], d[1]];
                let wz = [1.0 - d[2], d[2]];
                for a in 0..2 {
                    let lx = (xs[a] + n - first) % n;
                    for b in 0..2 {
                        let row = lx * n2 + ys[b] * n;
                        for cc in 0..2 {
                            let wt = wx[a] * wy[b] * wz[cc];
                            let v = &mut buf[row + zs[cc]];
                            v[0] += wt * m[0];
                            v[1] += wt * m[1];
                            v[2] += wt * m[2];
                        }
                    }
                }
            }
            (first, len, buf)
        })
        .collect();
    let [o0, o1, o2] = &mut out;
    o0.par_chunks_mut(n2)
        .zip(o1.par_chunks_mut(n2))
        .zip(o2.par_chunks_mut(n2))
        .enumerate()
        .for_each(|(ix, ((p0, p1), p2))| {
            for (first, len, buf) in &bufs {
                let l = (ix + n - first) % n;
                if l < *len {
                    for (i, b) in buf[l * n2..(l + 1) * n2].iter().enumerate() {
                        p0[i] += b[0];
                        p1[i] += b[1];
                        p2[i] += b[2];
                    }
                }
            }
        });
    out
}

/// CIC interpolation of `mesh` at `pos`.
pub fn readout(n: usize, mesh: &[f32], pos: &[[f32; 3]]) -> Vec<f32> {
    let mut out = vec![0.0f32; pos.len()];
    readout_into(n, mesh, pos, &mut out);
    out
}

/// CIC interpolation of `mesh` at `pos` into `out`.
pub fn readout_into(n: usize, mesh: &[f32], pos: &[[f32; 3]], out: &mut [f32]) {
    assert_eq!(mesh.len(), n * n * n, "cic::readout: mesh length");
    assert_eq!(out.len(), pos.len());
    out.par_iter_mut().zip(pos.par_iter()).for_each(|(o, p)| {
        let (xs, ys, zs, d) = corners(p, n);
        let wx = [1.0 - d[0], d[0]];
        let wy = [1.0 - d[1], d[1]];
        let wz = [1.0 - d[2], d[2]];
        let mut s = 0.0f32;
        for a in 0..2 {
            for b in 0..2 {
                let row = (xs[a] * n + ys[b]) * n;
                s += wx[a] * wy[b] * (wz[0] * mesh[row + zs[0]] + wz[1] * mesh[row + zs[1]]);
            }
        }
        *o = s;
    });
}

/// Gradient with respect to the position of the CIC interpolant of `mesh`,
/// `grad_x sum_c f(c) W(x - c)`, at each of `pos`, multiplied by `scale[p]`
/// when given.
pub fn readout_grad(
    n: usize,
    mesh: &[f32],
    pos: &[[f32; 3]],
    scale: Option<&[f32]>,
) -> Vec<[f32; 3]> {
    let mut out = vec![[0.0f32; 3]; pos.len()];
    readout_grad_acc(n, mesh, pos, scale, &mut out);
    out
}

/// As [`readout_grad`] but adds into `out`.
pub fn readout_grad_acc(
    n: usize,
    mesh: &[f32],
    pos: &[[f32; 3]],
    scale: Option<&[f32]>,
    out: &mut [[f32; 3]],
) {
    assert_eq!(mesh.len(), n * n * n, "cic::readout_grad: mesh length");
    assert_eq!(out.len(), pos.len());
    if let Some(s) = scale {
        assert_eq!(s.len(), pos.len());
    }
    out.par_iter_mut()
        .zip(pos.par_iter())
        .enumerate()
        .for_each(|(i, (o, p))| {
            let (xs, ys, zs, d) = corners(p, n);
            let w = [[1.0 - d[0], d[0]], [1.0 - d[1], d[1]], [1.0 - d[2], d[2]]];
            const S: [f32; 2] = [-1.0, 1.0];
            let mut g = [0.0f32; 3];
            for a in 0..2 {
                for b in 0..2 {
                    let row = (xs[a] * n + ys[b]) * n;
                    for c in 0..2 {
                        let f = mesh[row + zs[c]];
                        g[0] += S[a] * w[1][b] * w[2][c] * f;
                        g[1] += w[0][a] * S[b] * w[2][c] * f;
                        g[2] += w[0][a] * w[1][b] * S[c] * f;
                    }
                }
            }
            let s = scale.map_or(1.0, |s| s[i]);
            o[0] += s * g[0];
            o[1] += s * g[1];
            o[2] += s * g[2];
        });
}

/// VJP of [`readout`] with respect to the mesh values: `paint(x, v_bar)`.
pub fn readout_vjp_mesh(n: usize, pos: &[[f32; 3]], v_bar: &[f32]) -> Vec<f32> {
    let mut m = vec![0.0f32; n * n * n];
    paint(n, pos, Some(v_bar), &mut m);
    m
}

/// VJP of [`readout`] with respect to the positions.
pub fn readout_vjp_pos(n: usize, mesh: &[f32], pos: &[[f32; 3]], v_bar: &[f32]) -> Vec<[f32; 3]> {
    readout_grad(n, mesh, pos, Some(v_bar))
}

/// VJP of [`paint`] with respect to the particle weights: `readout(rho_bar)`.
pub fn paint_vjp_weights(n: usize, rho_bar: &[f32], pos: &[[f32; 3]]) -> Vec<f32> {
    readout(n, rho_bar, pos)
}

/// VJP of [`paint`] with respect to the positions.
pub fn paint_vjp_pos(
    n: usize,
    rho_bar: &[f32],
    pos: &[[f32; 3]],
    weights: Option<&[f32]>,
) -> Vec<[f32; 3]> {
    readout_grad(n, rho_bar, pos, weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64) / ((1u64 << 53) as f64)
    }

    fn setup(n: usize, np: usize, seed: u64) -> (Vec<[f32; 3]>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut s = seed;
        // positions spread over [-n, 2n) to exercise the periodic wrap
        let pos: Vec<[f32; 3]> = (0..np)
            .map(|_| {
                [
                    (lcg(&mut s) * 3.0 - 1.0) as f32 * n as f32,
                    (lcg(&mut s) * n as f64) as f32,
                    (lcg(&mut s) * n as f64) as f32,
                ]
            })
            .collect();
        let w: Vec<f32> = (0..np).map(|_| lcg(&mut s) as f32).collect();
        let mesh: Vec<f32> = (0..n * n * n).map(|_| lcg(&mut s) as f32 - 0.5).collect();
        let vb: Vec<f32> = (0..np).map(|_| lcg(&mut s) as f32 - 0.5).collect();
        (pos, w, mesh, vb)
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    #[test]
    fn paint_conserves_mass_and_grid_points() {
        let n = 8;
        let (pos, w, _, _) = setup(n, 500, 1);
        let mut m = vec![0.0; n * n * n];
        paint(n, &pos, Some(&w), &mut m);
        let tot: f64 = m.iter().map(|v| *v as f64).sum();
        let wt: f64 = w.iter().map(|v| *v as f64).sum();
        assert!((tot - wt).abs() < 1e-4 * wt);
        // particle exactly on a grid point (and on a wrapped one)
        let mut m = vec![0.0; n * n * n];
        paint(n, &[[3.0, -1.0, 8.0]], None, &mut m);
        assert_eq!(m[(3 * n + 7) * n], 1.0);
    }

    /// <readout(f, x), v> == <f, paint(x, v)>: paint is readout's transpose.
    #[test]
    fn dot_product_paint_readout() {
        let n = 8;
        let (pos, _, mesh, vb) = setup(n, 300, 2);
        let lhs = dot(&readout(n, &mesh, &pos), &vb);
        let rhs = dot(&mesh, &readout_vjp_mesh(n, &pos, &vb));
        assert!((lhs - rhs).abs() < 1e-5 * lhs.abs().max(1.0), "{lhs} {rhs}");
        // paint's VJP w.r.t. weights is readout
        let mut rho = vec![0.0; n * n * n];
        paint(n, &pos, Some(&vb), &mut rho);
        let lhs = dot(&rho, &mesh);
        let rhs = dot(&vb, &paint_vjp_weights(n, &mesh, &pos));
        assert!((lhs - rhs).abs() < 1e-5 * lhs.abs().max(1.0));
    }

    /// Position VJPs against central finite differences (f64 evaluation of
    /// the f32 kernel is avoided: positions chosen away from cell edges).
    #[test]
    fn position_vjps_match_finite_differences() {
        let n = 6;
        let (mut pos, w, mesh, vb) = setup(n, 40, 3);
        for p in pos.iter_mut() {
            for c in p.iter_mut() {
                // keep fractional part in [0.2, 0.8]
                let f = c.floor();
                *c = f + 0.2 + 0.6 * (*c - f);
            }
        }
        let g_read = readout_vjp_pos(n, &mesh, &pos, &vb);
        let g_paint = paint_vjp_pos(n, &mesh, &pos, Some(&w));
        let h = 1e-2f32;
        for p in 0..pos.len() {
            for a in 0..3 {
                let mut pp = pos.clone();
                let mut pm = pos.clone();
                pp[p][a] += h;
                pm[p][a] -= h;
                let fd = (dot(&readout(n, &mesh, &pp), &vb) - dot(&readout(n, &mesh, &pm), &vb))
                    / (2.0 * h as f64);
                assert!(
                    (fd - g_read[p][a] as f64).abs() < 1e-4,
                    "readout {p} {a}: {fd} {}",
                    g_read[p][a]
                );
                let loss = |q: &[[f32; 3]]| {
                    let mut r = vec![0.0; n * n * n];
                    paint(n, q, Some(&w), &mut r);
                    dot(&r, &mesh)
                };
                let fd = (loss(&pp) - loss(&pm)) / (2.0 * h as f64);
                assert!(
                    (fd - g_paint[p][a] as f64).abs() < 1e-4,
                    "paint {p} {a}: {fd} {}",
                    g_paint[p][a]
                );
            }
        }
    }

    #[test]
    fn paint3_equals_three_paints() {
        let n = 8;
        let (pos, w, _, vb) = setup(n, 700, 5);
        let w3: Vec<[f32; 3]> = (0..pos.len()).map(|i| [w[i], vb[i], 1.0]).collect();
        let out = paint3(n, &pos, &w3);
        for (k, ws) in [w.clone(), vb.clone(), vec![1.0; pos.len()]]
            .iter()
            .enumerate()
        {
            let mut m = vec![0.0; n * n * n];
            paint(n, &pos, Some(ws), &mut m);
            for (a, b) in m.iter().zip(&out[k]) {
                assert!((a - b).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn fast_floor_matches_floor() {
        for &x in &[
            -3.5f32,
            -3.0,
            -0.0,
            0.0,
            -1e-7,
            1e-7,
            2.999_999_8,
            63.0,
            -64.25,
            1e10,
            -1e10,
        ] {
            assert_eq!(fast_floor(x), x.floor(), "{x}");
        }
    }

    /// Chunked parallel paint equals a serial reference.
    #[test]
    fn parallel_paint_matches_serial() {
        let n = 8;
        let (pos, w, _, _) = setup(n, 2000, 4);
        let mut m = vec![0.0; n * n * n];
        paint(n, &pos, Some(&w), &mut m);
        let mut r = vec![0.0f64; n * n * n];
        for (p, wi) in pos.iter().zip(&w) {
            let (xs, ys, zs, d) = corners(p, n);
            for a in 0..2 {
                for b in 0..2 {
                    for c in 0..2 {
                        let wt =
                            [1.0 - d[0], d[0]][a] * [1.0 - d[1], d[1]][b] * [1.0 - d[2], d[2]][c];
                        r[(xs[a] * n + ys[b]) * n + zs[c]] += (*wi * wt) as f64;
                    }
                }
            }
        }
        for (a, b) in m.iter().zip(&r) {
            assert!((*a as f64 - b).abs() < 1e-4);
        }
    }
}
