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

/// Run `$body` (a block over the listed arguments, generic over `[$gen]`,
/// instantiated with `[$inst]`) either in a function compiled with AVX2 and
/// FMA (detected at run time: `$avx`) or in the baseline one. The same code
/// either way, and Rust never contracts `a * b + c` into an FMA, so the
/// results are identical to the bit.
macro_rules! simd_dispatch {
    ($avx:expr, [$($gen:tt)*], [$($inst:tt)*], ($($arg:ident : $ty:ty),*), $body:block) => {{
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        fn body<$($gen)*>($($arg: $ty),*) $body
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn body_avx2<$($gen)*>($($arg: $ty),*) {
            body::<$($inst)*>($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        if $avx {
            // SAFETY: AVX2 and FMA were detected at run time.
            unsafe { body_avx2::<$($inst)*>($($arg),*) }
        } else {
            body::<$($inst)*>($($arg),*)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = $avx;
            body::<$($inst)*>($($arg),*)
        }
    }};
}

/// `for k in 0..s.len() { let t: St2 = stencil of particle k; $body }` for
/// row `(i, j)`: stencils from the vectorised [`Lattice::row_stencils`], or
/// from [`Lattice::stencil`] for a row with a particle beyond one box
/// length. A macro rather than a closure so that the body is always inlined
/// into the loop.
macro_rules! for_stencils {
    ($lat:expr, $i:expr, $j:expr, $s:expr, $st:expr, |$k:ident, $t:ident| $body:block) => {{
        let (lat, i, j, s, st): (&Lattice, usize, usize, &[[f32; 3]], &mut RowSt) =
            ($lat, $i, $j, $s, $st);
        let n = s.len();
        if lat.row_stencils(i, j, s, st) {
            let (xo0, xo1) = (&st.xo[0][..n], &st.xo[1][..n]);
            let (yo0, yo1) = (&st.yo[0][..n], &st.yo[1][..n]);
            let (z0, z1) = (&st.z[0][..n], &st.z[1][..n]);
            let (dx, dy, dz) = (&st.d[0][..n], &st.d[1][..n], &st.d[2][..n]);
            for $k in 0..n {
                let $t = St2 {
                    xo: [xo0[$k], xo1[$k]],
                    yo: [yo0[$k], yo1[$k]],
                    z: [z0[$k], z1[$k]],
                    d: [dx[$k], dy[$k], dz[$k]],
                };
                $body
            }
        } else {
            let (nm, n2) = (lat.nm, lat.nm * lat.nm);
            for $k in 0..n {
                let u = lat.stencil(i, j, $k, &s[$k]);
                let $t = St2 {
                    xo: [u.x[0] * n2, u.x[1] * n2],
                    yo: [u.y[0] * nm, u.y[1] * nm],
                    z: u.z,
                    d: u.d,
                };
                $body
            }
        }
    }};
}

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
        let nm = self.nm;
        let n2 = nm * nm;
        assert_eq!(disp.len(), self.len());
        assert_eq!(target.len(), nm * n2);
        let blocks = self.blocks();
        bufs.resize_with(blocks.len(), Vec::new);
        let avx = has_avx2();
        let weight = &weight;
        let ranges: Vec<(usize, usize)> = blocks
            .par_iter()
            .zip(bufs.par_iter_mut())
            .map(|(&(i0, i1), buf)| {
                let (lo, hi) = self.plane_range(disp, i0, i1);
                let len = ((hi - lo + 1) as usize).min(nm);
                let first = lo.rem_euclid(nm as i64) as usize;
                buf.clear();
                buf.resize(len * n2, [0.0; K]);
                let (l, buf) = (self, &mut buf[..]);
                simd_dispatch!(avx, [const K: usize, W: Fn(usize) -> [f32; K]], [K, _],
                (l: &Lattice, i0: usize, i1: usize, disp: &[[f32; 3]], weight: &W,
                 first: usize, buf: &mut [[f32; K]]),
                {
                    let (np, nm) = (l.np, l.nm);
                    let n3 = nm * nm * nm;
                    // x-plane offset relative to the buffer's first plane
                    let shift = n3 - first * nm * nm;
                    let mut st = RowSt::default();
                    for i in i0..i1 {
                        for j in 0..np {
                            let r = (i * np + j) * np;
                            for_stencils!(l, i, j, &disp[r..r + np], &mut st, |k, t| {
                                let m = weight(r + k);
                                let w = t.w();
                                for a in 0..2 {
                                    let lx = t.xo[a] + shift;
                                    let lx = if lx >= n3 { lx - n3 } else { lx };
                                    for b in 0..2 {
                                        let wab = w[0][a] * w[1][b];
                                        let row = lx + t.yo[b];
                                        for c in 0..2 {
                                            let wt = wab * w[2][c];
                                            let v = &mut buf[row + t.z[c]];
                                            for q in 0..K {
                                                v[q] += wt * m[q];
                                            }
                                        }
                                    }
                                }
                            });
                        }
                    }
                });
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
        self.readout_first::<K, K>(mesh, disp, out);
    }

    /// Read out the first `J <= K` components of an interleaved mesh (all
    /// `K` lanes are accumulated, SIMD-friendly).
    pub fn readout_first<const K: usize, const J: usize>(
        &self,
        mesh: &[[f32; K]],
        disp: &[[f32; 3]],
        out: &mut [[f32; J]],
    ) {
        let (np, nm) = (self.np, self.nm);
        assert!(J <= K);
        assert_eq!(mesh.len(), nm * nm * nm);
        assert_eq!(disp.len(), self.len());
        assert_eq!(out.len(), disp.len());
        let avx = has_avx2();
        out.par_chunks_mut(np)
            .zip(disp.par_chunks(np))
            .enumerate()
            .for_each_init(RowSt::default, |st, (r, (o, s))| {
                let (i, j, l) = (r / np, r % np, self);
                simd_dispatch!(avx, [const K: usize, const J: usize], [K, J],
                (l: &Lattice, i: usize, j: usize, s: &[[f32; 3]], o: &mut [[f32; J]],
                 mesh: &[[f32; K]], st: &mut RowSt),
                {
                    assert_eq!(mesh.len(), l.nm.pow(3));
                    assert_eq!(o.len(), s.len());
                    for_stencils!(l, i, j, s, st, |k, t| {
                        let w = t.w();
                        let mut acc = [0.0f32; K];
                        for a in 0..2 {
                            for b in 0..2 {
                                let wab = w[0][a] * w[1][b];
                                let row = t.xo[a] + t.yo[b];
                                // SAFETY: St2 offsets address a cell of the nm^3 mesh.
                                let (m0, m1) = unsafe {
                                    (
                                        mesh.get_unchecked(row + t.z[0]),
                                        mesh.get_unchecked(row + t.z[1]),
                                    )
                                };
                                let (w0, w1) = (wab * w[2][0], wab * w[2][1]);
                                for q in 0..K {
                                    acc[q] += w0 * m0[q] + w1 * m1[q];
                                }
                            }
                        }
                        o[k] = std::array::from_fn(|q| acc[q]);
                    });
                });
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
        let avx = has_avx2();
        let u = &u;
        out.par_chunks_mut(np)
            .zip(disp.par_chunks(np))
            .enumerate()
            .for_each_init(RowSt::default, |st, (r, (o, s))| {
                let (i, j, l) = (r / np, r % np, self);
                simd_dispatch!(avx, [const K: usize, U: Fn(usize) -> [f32; K]], [K, _],
                (l: &Lattice, i: usize, j: usize, s: &[[f32; 3]], o: &mut [[f32; 3]],
                 mesh: &[[f32; K]], u: &U, add: bool, st: &mut RowSt),
                {
                    assert_eq!(mesh.len(), l.nm.pow(3));
                    assert_eq!(o.len(), s.len());
                    let p0 = (i * l.np + j) * l.np;
                    for_stencils!(l, i, j, s, st, |k, t| {
                        let up = u(p0 + k);
                        let w = t.w();
                        const S: [f32; 2] = [-1.0, 1.0];
                        let mut g = [0.0f32; 3];
                        for a in 0..2 {
                            for b in 0..2 {
                                let row = t.xo[a] + t.yo[b];
                                for c in 0..2 {
                                    // SAFETY: St2 offsets address a cell of the nm^3 mesh.
                                    let m = unsafe { mesh.get_unchecked(row + t.z[c]) };
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
                        let o = &mut o[k];
                        if add {
                            o[0] += g[0];
                            o[1] += g[1];
                            o[2] += g[2];
                        } else {
                            *o = g;
                        }
                    });
                });
            });
    }

    /// One pass over the particles: `out = ` lanes 0..3 of `mesh` read out
    /// (as [`Self::readout_first`]) and `sbar += grad interp(sum_q u_q
    /// mesh_q)` with `u = scale [fbar, 1]` (as [`Self::readout_grad`] with
    /// `add`), sharing each particle's stencil and cell loads; the same
    /// operations in the same order as the two separate calls.
    pub fn readout3_and_grad(
        &self,
        mesh: &[[f32; 4]],
        disp: &[[f32; 3]],
        fbar: &[[f32; 3]],
        scale: f32,
        out: &mut [[f32; 3]],
        sbar: &mut [[f32; 3]],
    ) {
        let (np, nm) = (self.np, self.nm);
        assert_eq!(mesh.len(), nm * nm * nm);
        assert_eq!(disp.len(), self.len());
        assert_eq!(fbar.len(), disp.len());
        assert_eq!(out.len(), disp.len());
        assert_eq!(sbar.len(), disp.len());
        let avx = has_avx2();
        out.par_chunks_mut(np)
            .zip(sbar.par_chunks_mut(np))
            .zip(disp.par_chunks(np).zip(fbar.par_chunks(np)))
            .enumerate()
            .for_each_init(RowSt::default, |st, (r, ((o, sb), (s, fb)))| {
                let (i, j, l) = (r / np, r % np, self);
                simd_dispatch!(avx, [], [],
                (l: &Lattice, i: usize, j: usize, s: &[[f32; 3]], fb: &[[f32; 3]],
                 o: &mut [[f32; 3]], sb: &mut [[f32; 3]], mesh: &[[f32; 4]],
                 scale: f32, st: &mut RowSt),
                {
                    let n = s.len();
                    assert_eq!(mesh.len(), l.nm.pow(3));
                    assert!(o.len() == n && sb.len() == n && fb.len() == n);
                    const S: [f32; 2] = [-1.0, 1.0];
                    for_stencils!(l, i, j, s, st, |k, t| {
                        let f = fb[k];
                        let up = [scale * f[0], scale * f[1], scale * f[2], scale];
                        let w = t.w();
                        let mut acc = [0.0f32; 4];
                        let mut g = [0.0f32; 3];
                        for a in 0..2 {
                            for b in 0..2 {
                                let wab = w[0][a] * w[1][b];
                                let row = t.xo[a] + t.yo[b];
                                // SAFETY: St2 offsets address a cell of the nm^3 mesh.
                                let mc = unsafe {
                                    [
                                        *mesh.get_unchecked(row + t.z[0]),
                                        *mesh.get_unchecked(row + t.z[1]),
                                    ]
                                };
                                let (w0, w1) = (wab * w[2][0], wab * w[2][1]);
                                for q in 0..4 {
                                    acc[q] += w0 * mc[0][q] + w1 * mc[1][q];
                                }
                                for c in 0..2 {
                                    let mut v = 0.0f32;
                                    for q in 0..4 {
                                        v += up[q] * mc[c][q];
                                    }
                                    g[0] += S[a] * w[1][b] * w[2][c] * v;
                                    g[1] += w[0][a] * S[b] * w[2][c] * v;
                                    g[2] += w[0][a] * w[1][b] * S[c] * v;
                                }
                            }
                        }
                        o[k] = [acc[0], acc[1], acc[2]];
                        let sb = &mut sb[k];
                        sb[0] += g[0];
                        sb[1] += g[1];
                        sb[2] += g[2];
                    });
                });
            });
    }
}

/// Stencils of one lattice row (fixed `i, j`, all `k`) as a structure of
/// arrays: x-plane offsets `cx nm^2`, y-row offsets `cy nm`, z cells, and
/// the offsets `d`. Built by [`Lattice::row_stencils`] in one loop that the
/// compiler vectorises (no data-dependent branches), then consumed by the
/// paint/read-out loops; values are bit-identical to [`Lattice::stencil`].
#[derive(Debug, Default, Clone)]
pub(crate) struct RowSt {
    xo: [Vec<usize>; 2],
    yo: [Vec<usize>; 2],
    z: [Vec<usize>; 2],
    d: [Vec<f32>; 3],
}

impl RowSt {
    fn resize(&mut self, n: usize) {
        for v in self.xo.iter_mut().chain(&mut self.yo).chain(&mut self.z) {
            v.resize(n, 0);
        }
        for v in self.d.iter_mut() {
            v.resize(n, 0.0);
        }
    }
}

/// Branch-free axis stencil: `(c0, c1, d, ok)` with `ok` false when the
/// unwrapped cell lies outside `[-n, 2n)` (or `y` is not finite): the caller
/// then falls back to [`Lattice::stencil`]. `c0`, `c1`, `d` equal
/// [`Lattice::axis`]'s whenever `ok`.
#[inline(always)]
fn axis_fast(qi: i32, qf: f32, s: f32, n: i32) -> (i32, i32, f32, bool) {
    let y = qf + s;
    // clamp (f32::max/min drop NaN, f32::clamp keeps it) so that the
    // conversion is defined
    #[allow(clippy::manual_clamp)]
    let yc = y.max(-1.0e7).min(1.0e7);
    // SAFETY: |yc| <= 1e7 is representable as i32.
    let t: i32 = unsafe { yc.to_int_unchecked() };
    let f = t - ((t as f32) > yc) as i32;
    let d = y - f as f32;
    let u = qi + f;
    let ok = u >= -n && u < 2 * n && yc == y;
    let c = u + n * ((u < 0) as i32) - n * ((u >= n) as i32);
    let c1 = c + 1;
    let c1 = c1 - n * ((c1 == n) as i32);
    (c, c1, d, ok)
}

/// Whether the AVX2 versions of the particle loops can run.
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// One particle's stencil as mesh offsets: x planes `cx nm^2`, y rows
/// `cy nm`, z cells, and the offsets (every `xo + yo + z < nm^3`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct St2 {
    pub xo: [usize; 2],
    pub yo: [usize; 2],
    pub z: [usize; 2],
    pub d: [f32; 3],
}

impl St2 {
    #[inline(always)]
    pub fn w(&self) -> [[f32; 2]; 3] {
        [
            [1.0 - self.d[0], self.d[0]],
            [1.0 - self.d[1], self.d[1]],
            [1.0 - self.d[2], self.d[2]],
        ]
    }
}

impl Lattice {
    /// Stencils of row `(i, j)` into `st`; false if some particle needs the
    /// general (slow) path.
    #[inline(always)]
    pub(crate) fn row_stencils(&self, i: usize, j: usize, s: &[[f32; 3]], st: &mut RowSt) -> bool {
        let n = self.nm as i32;
        let (nm, n2) = (self.nm, self.nm * self.nm);
        let len = s.len();
        st.resize(len);
        let (qix, qfx, qiy, qfy) = (self.qi[i], self.qf[i], self.qi[j], self.qf[j]);
        let (qi, qf) = (&self.qi[..len], &self.qf[..len]);
        let [xo0, xo1] = &mut st.xo;
        let [yo0, yo1] = &mut st.yo;
        let [z0, z1] = &mut st.z;
        let [dx, dy, dz] = &mut st.d;
        let (xo0, xo1, yo0, yo1) = (
            &mut xo0[..len],
            &mut xo1[..len],
            &mut yo0[..len],
            &mut yo1[..len],
        );
        let (z0, z1, dx, dy, dz) = (
            &mut z0[..len],
            &mut z1[..len],
            &mut dx[..len],
            &mut dy[..len],
            &mut dz[..len],
        );
        let mut ok = true;
        for k in 0..len {
            let sk = s[k];
            let (a0, a1, ax, oka) = axis_fast(qix, qfx, sk[0], n);
            let (b0, b1, by, okb) = axis_fast(qiy, qfy, sk[1], n);
            let (c0, c1, cz, okc) = axis_fast(qi[k], qf[k], sk[2], n);
            ok &= oka & okb & okc;
            xo0[k] = (a0 as u32 as usize) * n2;
            xo1[k] = (a1 as u32 as usize) * n2;
            yo0[k] = (b0 as u32 as usize) * nm;
            yo1[k] = (b1 as u32 as usize) * nm;
            z0[k] = c0 as u32 as usize;
            z1[k] = c1 as u32 as usize;
            dx[k] = ax;
            dy[k] = by;
            dz[k] = cz;
        }
        ok
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

    /// The vectorised row stencils equal [`Lattice::stencil`] to the bit
    /// whenever they accept a row, and rows with particles beyond one box
    /// length (taking the general path) still paint and read out correctly.
    #[test]
    fn row_stencils_equal_scalar_stencils_and_far_particles_work() {
        for (np, nm, amp) in [(8usize, 8usize, 5.0f32), (6, 16, 20.0), (8, 12, 40.0)] {
            let l = Lattice::new(np, nm);
            let d = disp(&l, amp, 3);
            let mut st = RowSt::default();
            let (mut fast, mut slow) = (0, 0);
            for i in 0..np {
                for j in 0..np {
                    let r = (i * np + j) * np;
                    let s = &d[r..r + np];
                    if l.row_stencils(i, j, s, &mut st) {
                        fast += 1;
                        for (k, sk) in s.iter().enumerate() {
                            let t = l.stencil(i, j, k, sk);
                            assert_eq!(st.xo[0][k], t.x[0] * nm * nm);
                            assert_eq!(st.xo[1][k], t.x[1] * nm * nm);
                            assert_eq!(st.yo[0][k], t.y[0] * nm);
                            assert_eq!(st.yo[1][k], t.y[1] * nm);
                            assert_eq!([st.z[0][k], st.z[1][k]], t.z);
                            for a in 0..3 {
                                assert_eq!(st.d[a][k].to_bits(), t.d[a].to_bits());
                            }
                        }
                    } else {
                        slow += 1;
                    }
                }
            }
            if amp <= nm as f32 {
                assert!(fast > 0 && slow == 0, "{fast} {slow}");
            }
            if amp > 2.0 * nm as f32 {
                assert!(slow > 0, "amp {amp}: no row took the general path");
            }
            // paint and read-out against field::cic and the transpose identity
            let x = l.positions(&d);
            let mut a = vec![0.0f32; nm * nm * nm];
            let mut sc = Scratch::default();
            l.paint(&d, &mut a, &mut sc);
            let mut b = vec![0.0f32; nm * nm * nm];
            cosmodiff_field::cic::paint(nm, &x, None, &mut b);
            for (u, v) in a.iter().zip(&b) {
                assert!((u - v).abs() < 1e-3, "{np} {nm} {amp}: {u} {v}");
            }
            let mut s = 4;
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
}
