//! Cloud-in-cell paint and read-out for particles on a Lagrangian lattice,
//! with stencils built from the integer lattice index plus the float32
//! displacement (as pmwd does).
//!
//! Particle `(i, j, k)` (C order) of an `np^3` lattice starts at
//! `q = (i, j, k) nm/np` mesh cells. Each lattice coordinate is split once
//! into an integer part `qi` and a fraction `qf` in `[0, 1)` (both exact:
//! `qf = (i nm mod np)/np`). A particle with displacement `s` then has, per
//! axis, `y = qf + s`, lower cell `c = (qi + floor(y)) mod nm` and offset
//! `d = y - floor(y)`. Because `|y|` is of the order of the displacement
//! (a few cells) rather than of the box (`nm` cells), `d` keeps float32
//! precision relative to `s` everywhere in the box: the rounding of
//! `q + s` to float32 (`~nm 6e-8` cells) never enters the forward model, so
//! finite differences of the model are not polluted by it.
//!
//! CIC weights (Hockney & Eastwood): `1 - d` to cell `c`, `d` to `c + 1`
//! per axis; the cell `c` has its centre at the integer coordinate `c`
//! (as in `cosmodiff_field::cic`, JaxPM and pmwd). The position gradient of
//! the interpolant uses the one-sided derivative at integer `y` (what
//! automatic differentiation gives).
//!
//! All loops are rayon-parallel over rows of particles (fixed `i, j`), so no
//! index divisions are needed. Painting is deterministic for a given thread
//! count: particles are split into contiguous blocks of lattice planes, each
//! painted into a private buffer covering only the mesh planes it reaches,
//! and the buffers are added plane by plane in block order.

use rayon::prelude::*;

/// One particle's CIC stencil: lower/upper cell per axis and offsets.
#[derive(Debug, Clone, Copy)]
pub struct Stencil {
    pub x: [usize; 2],
    pub y: [usize; 2],
    pub z: [usize; 2],
    pub d: [f32; 3],
}

impl Stencil {
    /// Weights `[1 - d, d]` per axis.
    #[inline(always)]
    pub fn w(&self) -> [[f32; 2]; 3] {
        [
            [1.0 - self.d[0], self.d[0]],
            [1.0 - self.d[1], self.d[1]],
            [1.0 - self.d[2], self.d[2]],
        ]
    }
}

/// `floor` without a libm call; exact for |x| < 2^31.
#[inline(always)]
fn floor_i32(x: f32) -> i32 {
    let t = x as i32;
    if (t as f32) > x {
        t - 1
    } else {
        t
    }
}

/// The Lagrangian lattice of `np^3` particles on an `nm^3` mesh.
#[derive(Debug, Clone)]
pub struct Lattice {
    pub np: usize,
    pub nm: usize,
    /// Integer part of `i nm / np` (mesh cells), per lattice index.
    qi: Vec<i32>,
    /// Fractional part of `i nm / np`, per lattice index.
    qf: Vec<f32>,
}

impl Lattice {
    pub fn new(np: usize, nm: usize) -> Self {
        assert!(np > 0 && nm > 0 && nm < (1 << 30), "Lattice: sizes");
        let qi = (0..np).map(|i| ((i * nm) / np) as i32).collect();
        let qf = (0..np)
            .map(|i| (((i * nm) % np) as f64 / np as f64) as f32)
            .collect();
        Self { np, nm, qi, qf }
    }

    /// Number of particles.
    pub fn len(&self) -> usize {
        self.np * self.np * self.np
    }

    pub fn is_empty(&self) -> bool {
        self.np == 0
    }

    /// Lower cell (wrapped), upper cell and offset along one axis for
    /// lattice index `l` and displacement `s`; also the unwrapped lower cell.
    #[inline(always)]
    fn axis(&self, l: usize, s: f32) -> (usize, usize, f32, i32) {
        let y = self.qf[l] + s;
        let f = floor_i32(y);
        let d = y - f as f32;
        let u = self.qi[l] + f;
        let n = self.nm as i32;
        let c = if u >= 0 && u < n {
            u
        } else if u < 0 && u >= -n {
            u + n
        } else if u >= n && u < 2 * n {
            u - n
        } else {
            u.rem_euclid(n)
        } as usize;
        let c1 = if c + 1 == self.nm { 0 } else { c + 1 };
        (c, c1, d, u)
    }

    /// Stencil of particle `(i, j, k)` with displacement `s`.
    #[inline(always)]
    pub fn stencil(&self, i: usize, j: usize, k: usize, s: &[f32; 3]) -> Stencil {
        let (x0, x1, dx, _) = self.axis(i, s[0]);
        let (y0, y1, dy, _) = self.axis(j, s[1]);
        let (z0, z1, dz, _) = self.axis(k, s[2]);
        Stencil {
            x: [x0, x1],
            y: [y0, y1],
            z: [z0, z1],
            d: [dx, dy, dz],
        }
    }

    /// Positions `q + s` in mesh cells (rounded to float32; for output).
    pub fn positions(&self, disp: &[[f32; 3]]) -> Vec<[f32; 3]> {
        assert_eq!(disp.len(), self.len());
        let np = self.np;
        let h = self.nm as f64 / np as f64;
        let mut x = vec![[0.0f32; 3]; disp.len()];
        x.par_chunks_mut(np)
            .zip(disp.par_chunks(np))
            .enumerate()
            .for_each(|(r, (xo, so))| {
                let (i, j) = (r / np, r % np);
                let (qx, qy) = ((i as f64 * h) as f32, (j as f64 * h) as f32);
                for (k, (o, s)) in xo.iter_mut().zip(so).enumerate() {
                    *o = [qx + s[0], qy + s[1], (k as f64 * h) as f32 + s[2]];
                }
            });
        x
    }

    /// Displacements `x - q` of positions `x` (mesh cells).
    pub fn displacements(&self, pos: &[[f32; 3]]) -> Vec<[f32; 3]> {
        assert_eq!(pos.len(), self.len());
        let np = self.np;
        let h = self.nm as f64 / np as f64;
        pos.par_iter()
            .enumerate()
            .map(|(p, x)| {
                let q = [
                    (p / (np * np)) as f64,
                    ((p / np) % np) as f64,
                    (p % np) as f64,
                ];
                std::array::from_fn(|a| (x[a] as f64 - q[a] * h) as f32)
            })
            .collect()
    }

    /// Unwrapped range of mesh x-planes `[lo, hi]` reached by the particles
    /// of lattice planes `i0..i1`.
    fn plane_range(&self, disp: &[[f32; 3]], i0: usize, i1: usize) -> (i64, i64) {
        let n2 = self.np * self.np;
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for i in i0..i1 {
            let (qi, qf) = (self.qi[i] as i64, self.qf[i]);
            let (mut smin, mut smax) = (f32::INFINITY, f32::NEG_INFINITY);
            for s in &disp[i * n2..(i + 1) * n2] {
                smin = smin.min(s[0]);
                smax = smax.max(s[0]);
            }
            lo = lo.min(qi + floor_i32(qf + smin) as i64);
            hi = hi.max(qi + floor_i32(qf + smax) as i64 + 1);
        }
        (lo, hi)
    }

    /// Blocks of lattice planes for the parallel paint.
    fn blocks(&self) -> Vec<(usize, usize)> {
        let nb = (2 * rayon::current_num_threads()).clamp(1, self.np);
        let bs = self.np.div_ceil(nb);
        (0..self.np)
            .step_by(bs)
            .map(|i0| (i0, (i0 + bs).min(self.np)))
            .collect()
    }

    /// Paint `K` weight components per particle (`weight(p) -> [f32; K]`)
    /// into `target` (`nm^3` cells of `[f32; K]`, C order, overwritten).
    /// `bufs` is reusable scratch.
    fn paint_k<const K: usize>(
        &self,
        disp: &[[f32; 3]],
        weight: impl Fn(usize) -> [f32; K] + Sync,
        bufs: &mut Vec<Vec<[f32; K]>>,
        target: &mut [[f32; K]],
    ) {
        let (np, nm) = (self.np, self.nm);
        let n2 = nm * nm;
        assert_eq!(disp.len(), self.len());
        assert_eq!(target.len(), nm * n2);
        let blocks = self.blocks();
        bufs.resize_with(blocks.len(), Vec::new);
        let ranges: Vec<(usize, usize)> = blocks
            .par_iter()
            .zip(bufs.par_iter_mut())
            .map(|(&(i0, i1), buf)| {
                let (lo, hi) = self.plane_range(disp, i0, i1);
                let len = ((hi - lo + 1) as usize).min(nm);
                let first = lo.rem_euclid(nm as i64) as usize;
                buf.clear();
                buf.resize(len * n2, [0.0; K]);
                for i in i0..i1 {
                    for j in 0..np {
                        let r = (i * np + j) * np;
                        for (k, s) in disp[r..r + np].iter().enumerate() {
                            let m = weight(r + k);
                            let st = self.stencil(i, j, k, s);
                            let w = st.w();
                            for a in 0..2 {
                                let lx = st.x[a] + nm - first;
                                let lx = if lx >= nm { lx - nm } else { lx };
                                for b in 0..2 {
                                    let wab = w[0][a] * w[1][b];
                                    let row = lx * n2 + st.y[b] * nm;
                                    for c in 0..2 {
                                        let wt = wab * w[2][c];
                                        let v = &mut buf[row + st.z[c]];
                                        for q in 0..K {
                                            v[q] += wt * m[q];
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                (first, len)
            })
            .collect();
        let bufs = &*bufs;
        target
            .par_chunks_mut(n2)
            .enumerate()
            .for_each(|(ix, plane)| {
                plane.fill([0.0; K]);
                for ((first, len), buf) in ranges.iter().zip(bufs) {
                    let l = (ix + nm - first) % nm;
                    if l < *len {
                        for (v, b) in plane.iter_mut().zip(&buf[l * n2..(l + 1) * n2]) {
                            for q in 0..K {
                                v[q] += b[q];
                            }
                        }
                    }
                }
            });
    }

    /// CIC mass assignment (unit masses) into `mesh` (overwritten, `nm^3`).
    pub fn paint(&self, disp: &[[f32; 3]], mesh: &mut [f32], scratch: &mut Scratch) {
        self.paint_k::<1>(disp, |_| [1.0], &mut scratch.b1, as_k1_mut(mesh));
    }

    /// Paint with weights `w` (one per particle) into `mesh` (overwritten).
    pub fn paint_weighted(
        &self,
        disp: &[[f32; 3]],
        w: &[f32],
        mesh: &mut [f32],
        scratch: &mut Scratch,
    ) {
        assert_eq!(w.len(), disp.len());
        self.paint_k::<1>(disp, |p| [w[p]], &mut scratch.b1, as_k1_mut(mesh));
    }

    /// Paint three weight components at once into an interleaved mesh
    /// (`[f32; 3]` per cell, overwritten).
    pub fn paint3(
        &self,
        disp: &[[f32; 3]],
        w: &[[f32; 3]],
        mesh: &mut [[f32; 3]],
        scratch: &mut Scratch,
    ) {
        assert_eq!(w.len(), disp.len());
        self.paint_k::<3>(disp, |p| w[p], &mut scratch.b3, mesh);
    }

    /// Paint unit masses and three weight components in one pass into an
    /// interleaved mesh (`[count, w_x, w_y, w_z]` per cell, overwritten).
    /// Lane 0 equals [`Self::paint`] and lanes 1..4 equal [`Self::paint3`]
    /// to the bit (same stencils, same summation order, `wt * 1.0 = wt`).
    pub fn paint_count_and3(
        &self,
        disp: &[[f32; 3]],
        w: &[[f32; 3]],
        mesh: &mut [[f32; 4]],
        scratch: &mut Scratch,
    ) {
        assert_eq!(w.len(), disp.len());
        self.paint_k::<4>(
            disp,
            |p| {
                let v = w[p];
                [1.0, v[0], v[1], v[2]]
            },
            &mut scratch.b4,
            mesh,
        );
    }

    /// Read out an interleaved mesh (`[f32; K]` per cell) at the particles:
    /// `out[p][q] = sum_c W(x_p - c) mesh[c][q]`.
    pub fn readout<const K: usize>(
        &self,
        mesh: &[[f32; K]],
        disp: &[[f32; 3]],
        out: &mut [[f32; K]],
    ) {
        let (np, nm) = (self.np, self.nm);
        assert_eq!(mesh.len(), nm * nm * nm);
        assert_eq!(disp.len(), self.len());
        assert_eq!(out.len(), disp.len());
        out.par_chunks_mut(np)
            .zip(disp.par_chunks(np))
            .enumerate()
            .for_each(|(r, (o, s))| {
                let (i, j) = (r / np, r % np);
                for (k, (o, s)) in o.iter_mut().zip(s).enumerate() {
                    let st = self.stencil(i, j, k, s);
                    let w = st.w();
                    let mut acc = [0.0f32; K];
                    for a in 0..2 {
                        for b in 0..2 {
                            let wab = w[0][a] * w[1][b];
                            let row = (st.x[a] * nm + st.y[b]) * nm;
                            let (m0, m1) = (&mesh[row + st.z[0]], &mesh[row + st.z[1]]);
                            let (w0, w1) = (wab * w[2][0], wab * w[2][1]);
                            for q in 0..K {
                                acc[q] += w0 * m0[q] + w1 * m1[q];
                            }
                        }
                    }
                    *o = acc;
                }
            });
    }

    /// Position gradient of the interpolant of `sum_q u_p[q] mesh[.][q]`
    /// at each particle (`u(p) -> [f32; K]`), written into `out`
    /// (`add = true` adds instead).
    pub fn readout_grad<const K: usize>(
        &self,
        mesh: &[[f32; K]],
        disp: &[[f32; 3]],
        u: impl Fn(usize) -> [f32; K] + Sync,
        out: &mut [[f32; 3]],
        add: bool,
    ) {
        let (np, nm) = (self.np, self.nm);
        assert_eq!(mesh.len(), nm * nm * nm);
        assert_eq!(disp.len(), self.len());
        assert_eq!(out.len(), disp.len());
        out.par_chunks_mut(np)
            .zip(disp.par_chunks(np))
            .enumerate()
            .for_each(|(r, (o, s))| {
                let (i, j) = (r / np, r % np);
                for (k, (o, s)) in o.iter_mut().zip(s).enumerate() {
                    let up = u(r * np + k);
                    let st = self.stencil(i, j, k, s);
                    let w = st.w();
                    const S: [f32; 2] = [-1.0, 1.0];
                    let mut g = [0.0f32; 3];
                    for a in 0..2 {
                        for b in 0..2 {
                            let row = (st.x[a] * nm + st.y[b]) * nm;
                            for c in 0..2 {
                                let m = &mesh[row + st.z[c]];
                                let mut v = 0.0f32;
                                for q in 0..K {
                                    v += up[q] * m[q];
                                }
                                g[0] += S[a] * w[1][b] * w[2][c] * v;
                                g[1] += w[0][a] * S[b] * w[2][c] * v;
                                g[2] += w[0][a] * w[1][b] * S[c] * v;
                            }
                        }
                    }
                    if add {
                        o[0] += g[0];
                        o[1] += g[1];
                        o[2] += g[2];
                    } else {
                        *o = g;
                    }
                }
            });
    }
}

/// Reusable paint buffers (one per block of lattice planes).
#[derive(Debug, Default)]
pub struct Scratch {
    b1: Vec<Vec<[f32; 1]>>,
    b3: Vec<Vec<[f32; 3]>>,
    b4: Vec<Vec<[f32; 4]>>,
}

/// View a scalar mesh as `[f32; 1]` cells.
pub fn as_k1(m: &[f32]) -> &[[f32; 1]] {
    // SAFETY: [f32; 1] has the size and alignment of f32.
    unsafe { std::slice::from_raw_parts(m.as_ptr().cast(), m.len()) }
}

/// Mutable view of a scalar mesh as `[f32; 1]` cells.
pub fn as_k1_mut(m: &mut [f32]) -> &mut [[f32; 1]] {
    // SAFETY: [f32; 1] has the size and alignment of f32.
    unsafe { std::slice::from_raw_parts_mut(m.as_mut_ptr().cast(), m.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(s: &mut u64) -> f32 {
        *s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*s >> 40) as f64 / (1u64 << 24) as f64) as f32
    }

    fn disp(l: &Lattice, amp: f32, seed: u64) -> Vec<[f32; 3]> {
        let mut s = seed;
        (0..l.len())
            .map(|_| std::array::from_fn(|_| amp * (2.0 * lcg(&mut s) - 1.0)))
            .collect()
    }

    /// Same density as `cosmodiff_field::cic::paint` of the positions, and
    /// readout is paint's transpose; finer mesh with a non-integer ratio.
    #[test]
    fn matches_field_cic_and_is_transpose() {
        for (np, nm) in [(8usize, 8usize), (8, 12), (6, 16)] {
            let l = Lattice::new(np, nm);
            let d = disp(&l, 5.0, 1);
            let x = l.positions(&d);
            let mut a = vec![0.0f32; nm * nm * nm];
            let mut sc = Scratch::default();
            l.paint(&d, &mut a, &mut sc);
            let mut b = vec![0.0f32; nm * nm * nm];
            cosmodiff_field::cic::paint(nm, &x, None, &mut b);
            for (u, v) in a.iter().zip(&b) {
                assert!((u - v).abs() < 1e-4, "{np} {nm}: {u} {v}");
            }
            let tot: f64 = a.iter().map(|v| *v as f64).sum();
            assert!((tot - l.len() as f64).abs() < 1e-3);
            // <readout(f), v> = <f, paint(v)>
            let mut s = 9;
            let f: Vec<[f32; 1]> = (0..nm * nm * nm).map(|_| [lcg(&mut s) - 0.5]).collect();
            let v: Vec<f32> = (0..l.len()).map(|_| lcg(&mut s) - 0.5).collect();
            let mut r = vec![[0.0f32; 1]; l.len()];
            l.readout(&f, &d, &mut r);
            let lhs: f64 = r.iter().zip(&v).map(|(a, b)| a[0] as f64 * *b as f64).sum();
            let mut pv = vec![0.0f32; nm * nm * nm];
            l.paint_weighted(&d, &v, &mut pv, &mut sc);
            let rhs: f64 = pv
                .iter()
                .zip(&f)
                .map(|(a, b)| *a as f64 * b[0] as f64)
                .sum();
            assert!((lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0), "{lhs} {rhs}");
        }
    }

    /// Position gradient of the read-out against finite differences
    /// (offsets kept away from cell faces).
    #[test]
    fn readout_grad_matches_finite_differences() {
        let (np, nm) = (4usize, 8usize);
        let l = Lattice::new(np, nm);
        let mut d = disp(&l, 3.0, 2);
        for s in d.iter_mut() {
            for c in s.iter_mut() {
                let f = c.floor();
                *c = f + 0.2 + 0.6 * (*c - f);
            }
        }
        let mut s = 5;
        let f: Vec<[f32; 2]> = (0..nm * nm * nm)
            .map(|_| [lcg(&mut s) - 0.5, lcg(&mut s) - 0.5])
            .collect();
        let u: Vec<[f32; 2]> = (0..l.len()).map(|_| [lcg(&mut s), lcg(&mut s)]).collect();
        let mut g = vec![[0.0f32; 3]; l.len()];
        l.readout_grad(&f, &d, |p| u[p], &mut g, false);
        let val = |d: &[[f32; 3]]| -> f64 {
            let mut r = vec![[0.0f32; 2]; l.len()];
            l.readout(&f, d, &mut r);
            r.iter()
                .zip(&u)
                .map(|(a, b)| (a[0] * b[0] + a[1] * b[1]) as f64)
                .sum()
        };
        for p in [0usize, 17, 63] {
            for a in 0..3 {
                let h = 1e-2f32;
                let (mut dp, mut dm) = (d.clone(), d.clone());
                dp[p][a] += h;
                dm[p][a] -= h;
                let fd = (val(&dp) - val(&dm)) / (2.0 * h as f64);
                assert!((fd - g[p][a] as f64).abs() < 1e-4, "{fd} {}", g[p][a]);
            }
        }
    }
}
