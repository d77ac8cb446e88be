//! The tomographic log-normal convergence simulator of the sbi_lens
//! benchmark (Zeghal, Lanzieri, Lanusse et al. 2024, arXiv:2409.17975;
//! Lanzieri, Zeghal et al. 2024, arXiv:2407.10877), as a differentiable
//! map `(C_ell, lambda, z) -> kappa` with a hand-written reverse mode.
//!
//! For `B` source bins on an `n x n` grid of pixel area `A` (sr), pair
//! `p = (i, j)`, `j >= i`, and Fourier mode `k`:
//!
//! ```text
//! P_p(k)   = C_p(|ell_k|) / A                 (interpolated as jax-cosmo does; P_p(0) = 0)
//! xi_p     = Re IFFT[P_p]                      (pixel-space correlation)
//! C^G_p(k) = | FFT[ ln(1 + xi_p / (lambda_i lambda_j)) ](k) |,  C^G_p(0) = 0
//! L(k)     = C^G(k)^{1/2}                      (B x B symmetric root, negative eigenvalues clipped)
//! g_i      = Re IFFT[ sum_j L_ij(k) FFT[z_j](k) ],   z ~ N(0, I)^(B x n x n)
//! kappa_i  = lambda_i (exp(g_i - Var(g_i)/2) - 1)
//! ```
//!
//! `Var(g_i)` is the sample variance of the map `g_i` itself (as in
//! sbi_lens), so it depends on `z` and enters the adjoint. The log-normal
//! transform of the spectra is Xavier et al. (2016); the absolute value of
//! the transformed spectrum and the clipping follow sbi_lens exactly.
//!
//! [`TomoLogNormal::factors`] runs the `theta`-dependent part once (all
//! maps of one cosmology share it), [`Factors::field`] the `z` part;
//! [`Factors::vjp`] returns the cotangents of the `C_ell` nodes, the shifts
//! and `z`, from which a caller contracts with `dC_ell/dtheta` (dual
//! numbers) to get `d/dtheta`.

use cosmodiff_field::fft2::{Fft2, C64};
use cosmodiff_field::grid2::Grid2;
use cosmodiff_field::linalg::sym_eigen;
use rayon::prelude::*;

use crate::error::{check_len, value, Result};

/// The simulator on one grid for `n_bins` bins, with `C_ell` given on fixed
/// multipole nodes.
#[derive(Debug, Clone)]
pub struct TomoLogNormal {
    grid: Grid2,
    fft: Fft2,
    nb: usize,
    nodes: Vec<f64>,
    /// Per Fourier mode `(a, b, t)`: `C(|ell|) = (1 - t) C[a] + t C[b]`
    /// (mode 0 unused).
    interp: Vec<(usize, usize, f64)>,
}

/// The `theta`-dependent factors: everything up to `L(k)`.
#[derive(Debug, Clone)]
pub struct Factors<'a> {
    sim: &'a TomoLogNormal,
    shifts: Vec<f64>,
    /// `xi_p` per pair.
    xi: Vec<Vec<f64>>,
    /// `FFT[ln(1 + xi_p / lambda_i lambda_j)]` per pair.
    fhat: Vec<Vec<C64>>,
    /// Eigenvalues, `[npix][B]` flat.
    eval: Vec<f64>,
    /// Eigenvectors, `[npix][B x B]` flat (row-major, vectors in columns).
    evec: Vec<f64>,
    /// `L(k)`, `[npix][B x B]` flat, row-major.
    root: Vec<f64>,
}

/// One simulated field: the maps and what the reverse mode needs.
#[derive(Debug, Clone)]
pub struct Field {
    /// `FFT[z_j]` per bin.
    zhat: Vec<Vec<C64>>,
    /// Gaussian maps `g_i`.
    g: Vec<Vec<f64>>,
    /// `exp(g_i - Var(g_i)/2)`.
    e: Vec<Vec<f64>>,
    /// Convergence maps `kappa_i`, `[B][n*n]`.
    pub kappa: Vec<Vec<f64>>,
}

/// Cotangents returned by [`Factors::vjp`].
#[derive(Debug, Clone)]
pub struct Cotangents {
    /// `d/dC_p(ell_n)` per pair and node (`[n_pairs][n_nodes]`).
    pub cl: Vec<Vec<f64>>,
    /// `d/dlambda_i`.
    pub shifts: Vec<f64>,
    /// `d/dz_j`, `[B][n*n]`.
    pub z: Vec<Vec<f64>>,
}

/// Number of auto and cross pairs of `b` bins.
pub fn n_pairs(b: usize) -> usize {
    b * (b + 1) / 2
}

/// Pairs `(i, j)`, `j >= i`, in row-major order (jax-cosmo's and
/// `cosmodiff_cosmo::cl::tracer_pairs`' order).
pub fn pairs(b: usize) -> Vec<(usize, usize)> {
    (0..b).flat_map(|i| (i..b).map(move |j| (i, j))).collect()
}

impl TomoLogNormal {
    /// `nodes`: the multipoles at which `C_ell` is given, in the caller's
    /// table order, interpolated exactly as `jax_cosmo.scipy.interpolate.interp`
    /// does (see [`jax_cosmo_interp`]); every `|ell|` of the grid must lie
    /// within the nodes' range.
    pub fn new(grid: Grid2, n_bins: usize, nodes: Vec<f64>) -> Result<Self> {
        if n_bins == 0 {
            return Err(value("number of bins", "must be at least 1"));
        }
        if nodes.len() < 3 || nodes.iter().any(|l| !l.is_finite()) {
            return Err(value("ell nodes", "need at least three finite multipoles"));
        }
        let ell = grid.ell_abs();
        let lmax = ell.iter().cloned().fold(0.0, f64::max);
        let lmin = ell[1..].iter().cloned().fold(f64::INFINITY, f64::min);
        let (nmin, nmax) = nodes
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        if lmin < nmin || lmax > nmax {
            return Err(value(
                "ell nodes",
                format!(
                    "[{nmin}, {nmax}] does not cover the grid's |ell| in [{lmin:.1}, {lmax:.1}]"
                ),
            ));
        }
        let interp = ell.iter().map(|&l| jax_cosmo_interp(&nodes, l)).collect();
        let fft = Fft2::new(grid.n);
        Ok(Self {
            grid,
            fft,
            nb: n_bins,
            nodes,
            interp,
        })
    }

    pub fn grid(&self) -> &Grid2 {
        &self.grid
    }
    pub fn n_bins(&self) -> usize {
        self.nb
    }
    pub fn nodes(&self) -> &[f64] {
        &self.nodes
    }

    /// Per Fourier mode `(a, b, t)`: the simulator's `C(|ell_k|)` is
    /// `(1 - t) C[a] + t C[b]` (mode 0 unused).
    pub fn mode_interp(&self) -> &[(usize, usize, f64)] {
        &self.interp
    }

    /// The nodes that carry weight for some mode (`C_ell` elsewhere is
    /// never read, so callers may leave it at zero).
    pub fn used_nodes(&self) -> std::ops::Range<usize> {
        let lo = self.interp[1..]
            .iter()
            .map(|p| p.0.min(p.1))
            .min()
            .unwrap_or(0);
        let hi = self.interp[1..]
            .iter()
            .map(|p| p.0.max(p.1) + 1)
            .max()
            .unwrap_or(1);
        lo..hi
    }

    /// Steps 1-5 of the module docs: per-mode `L(k)` from the `C_ell`
    /// nodes (`[n_pairs][n_nodes]`, pair order of [`pairs`]) and the
    /// shifts `lambda_i > 0`.
    pub fn factors(&self, cl: &[Vec<f64>], shifts: &[f64]) -> Result<Factors<'_>> {
        let nb = self.nb;
        let np = self.grid.npix();
        check_len("C_ell pairs", n_pairs(nb), cl.len())?;
        check_len("log-normal shifts", nb, shifts.len())?;
        for c in cl {
            check_len("C_ell nodes", self.nodes.len(), c.len())?;
        }
        if let Some(s) = shifts.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(value("log-normal shift", format!("must be > 0, got {s}")));
        }
        let inv_area = 1.0 / self.grid.pixel_area_sr();
        let prs = pairs(nb);
        let per_pair: Vec<(Vec<f64>, Vec<C64>)> = prs
            .par_iter()
            .zip(cl.par_iter())
            .map(|(&(i, j), c)| {
                let mut p: Vec<C64> = self
                    .interp
                    .iter()
                    .map(|&(a, b, t)| C64::new((c[a] * (1.0 - t) + c[b] * t) * inv_area, 0.0))
                    .collect();
                p[0] = C64::new(0.0, 0.0);
                self.fft.inverse_inplace(&mut p)?;
                let xi: Vec<f64> = p.iter().map(|v| v.re).collect();
                let ll = shifts[i] * shifts[j];
                let mut u = Vec::with_capacity(np);
                for &x in &xi {
                    let a = 1.0 + x / ll;
                    if !(a > 0.0) {
                        return Err(value(
                            "log-normal transform",
                            format!(
                                "1 + xi / (lambda_{i} lambda_{j}) = {a:.3e} <= 0 (xi = {x:.3e}, shifts {:.3e}, {:.3e})",
                                shifts[i], shifts[j]
                            ),
                        ));
                    }
                    u.push(C64::new(a.ln(), 0.0));
                }
                self.fft.forward_inplace(&mut u)?;
                Ok((xi, u))
            })
            .collect::<Result<_>>()?;
        let (xi, fhat): (Vec<_>, Vec<_>) = per_pair.into_iter().unzip();
        // C^G is even in k (|FFT| of a real map), so each mode and its
        // partner -k share one decomposition: solve the canonical one.
        let b2 = nb * nb;
        let mut eval = vec![0.0; np * nb];
        let mut evec = vec![0.0; np * b2];
        let mut root = vec![0.0; np * b2];
        eval.par_chunks_mut(nb)
            .zip(evec.par_chunks_mut(b2))
            .zip(root.par_chunks_mut(b2))
            .enumerate()
            .for_each(|(k, ((w, v), l))| {
                if k == 0 {
                    return;
                }
                let kc = k.min(self.grid.neg_index(k));
                let mut m = Scratch::zeros(b2);
                let m = &mut *m;
                for (p, &(i, j)) in prs.iter().enumerate() {
                    let x = fhat[p][kc].norm();
                    m[i * nb + j] = x;
                    m[j * nb + i] = x;
                }
                sym_eigen_into(m, nb, w, v);
                for q in 0..nb {
                    let s = w[q].max(0.0).sqrt();
                    if s == 0.0 {
                        continue;
                    }
                    for i in 0..nb {
                        let a = v[i * nb + q] * s;
                        for j in 0..nb {
                            l[i * nb + j] += a * v[j * nb + q];
                        }
                    }
                }
            });
        Ok(Factors {
            sim: self,
            shifts: shifts.to_vec(),
            xi,
            fhat,
            eval,
            evec,
            root,
        })
    }
}

impl Factors<'_> {
    /// The shifts `lambda_i`.
    pub fn shifts(&self) -> &[f64] {
        &self.shifts
    }

    /// `L(k)` of mode `k` (row-major `B x B`).
    pub fn root(&self, k: usize) -> &[f64] {
        let b2 = self.sim.nb * self.sim.nb;
        &self.root[k * b2..(k + 1) * b2]
    }

    /// `|FFT[ln(1 + xi_p / lambda_i lambda_j)]|` of pair `p`, mode 0 set to 0:
    /// the Gaussian field's per-mode power in pixel units.
    pub fn gaussian_power(&self, p: usize) -> Vec<f64> {
        let mut g: Vec<f64> = self.fhat[p].iter().map(|v| v.norm()).collect();
        g[0] = 0.0;
        g
    }

    /// Steps 6-7: the convergence maps of the white noise `z` (`[B][n*n]`).
    pub fn field(&self, z: &[Vec<f64>]) -> Result<Field> {
        let sim = self.sim;
        let nb = sim.nb;
        let np = sim.grid.npix();
        check_len("white-noise maps", nb, z.len())?;
        for w in z {
            check_len("white-noise map", np, w.len())?;
        }
        let zhat: Vec<Vec<C64>> = z
            .iter()
            .map(|w| sim.fft.forward_real(w))
            .collect::<cosmodiff_field::Result<_>>()?;
        let g: Vec<Vec<f64>> = (0..nb)
            .map(|i| {
                let b: Vec<C64> = (0..np)
                    .into_par_iter()
                    .map(|k| {
                        let l = self.root(k);
                        (0..nb).map(|j| zhat[j][k] * l[i * nb + j]).sum()
                    })
                    .collect();
                sim.fft.inverse_real(b)
            })
            .collect::<cosmodiff_field::Result<_>>()?;
        let mut e = Vec::with_capacity(nb);
        let mut kappa = Vec::with_capacity(nb);
        for (i, gi) in g.iter().enumerate() {
            let var = variance(gi);
            let ei: Vec<f64> = gi.iter().map(|x| (x - 0.5 * var).exp()).collect();
            kappa.push(ei.iter().map(|x| self.shifts[i] * (x - 1.0)).collect());
            e.push(ei);
        }
        Ok(Field { zhat, g, e, kappa })
    }

    /// Reverse mode through [`Factors::field`] and [`TomoLogNormal::factors`]:
    /// the cotangents of `C_ell`, the shifts and `z` given `kbar = dF/dkappa`.
    pub fn vjp(&self, field: &Field, kbar: &[Vec<f64>]) -> Result<Cotangents> {
        let sim = self.sim;
        let nb = sim.nb;
        let np = sim.grid.npix();
        let n2 = np as f64;
        check_len("kappa cotangent maps", nb, kbar.len())?;
        let mut shift_bar = vec![0.0; nb];
        // kappa_i = lambda_i (e_i - 1), e_i = exp(g_i - Var(g_i)/2).
        let mut gbar_hat: Vec<Vec<C64>> = Vec::with_capacity(nb);
        for i in 0..nb {
            check_len("kappa cotangent map", np, kbar[i].len())?;
            let (e, g, kb) = (&field.e[i], &field.g[i], &kbar[i]);
            shift_bar[i] = kb.iter().zip(e).map(|(c, e)| c * (e - 1.0)).sum();
            let mut gb: Vec<f64> = kb
                .iter()
                .zip(e)
                .map(|(c, e)| c * self.shifts[i] * e)
                .collect();
            // d Var(g) / d g_x = 2 (g_x - mean g) / npix.
            let var_bar = -0.5 * gb.iter().sum::<f64>();
            let mean = g.iter().sum::<f64>() / n2;
            for (b, x) in gb.iter_mut().zip(g) {
                *b += var_bar * 2.0 * (x - mean) / n2;
            }
            // g = Re IFFT[G]  =>  Gbar = FFT[gbar] / n^2.
            let mut h = sim.fft.forward_real(&gb)?;
            h.iter_mut().for_each(|v| *v /= n2);
            gbar_hat.push(h);
        }
        // G_i = sum_j L_ij Z_j: Zbar_j = sum_i L_ij Gbar_i, Lbar_ij = Re(conj(Gbar_i) Z_j);
        // then Mbar(k) through the matrix square root.
        let b2 = nb * nb;
        let mut zb_modes = vec![C64::new(0.0, 0.0); np * nb];
        let mut mbar = vec![0.0; np * b2];
        zb_modes
            .par_chunks_mut(nb)
            .zip(mbar.par_chunks_mut(b2))
            .enumerate()
            .for_each(|(k, (zb, mb))| {
                let l = self.root(k);
                for (j, z) in zb.iter_mut().enumerate() {
                    *z = (0..nb).map(|i| gbar_hat[i][k] * l[i * nb + j]).sum();
                }
                let mut lb = Scratch::zeros(b2);
                let lb = &mut *lb;
                for i in 0..nb {
                    for j in 0..nb {
                        lb[i * nb + j] = (gbar_hat[i][k].conj() * field.zhat[j][k]).re;
                    }
                }
                self.root_vjp(k, lb, mb);
            });
        // Z_j = FFT[z_j]  =>  zbar_j = Re(n^2 IFFT[Zbar_j]).
        let z_bar = (0..nb)
            .map(|j| {
                let b: Vec<C64> = (0..np).map(|k| zb_modes[k * nb + j] * n2).collect();
                sim.fft.inverse_real(b)
            })
            .collect::<cosmodiff_field::Result<Vec<_>>>()?;
        // Back through |F_p|, the FFT, the log and the inverse FFT of P_p.
        let prs = pairs(nb);
        let inv_area = 1.0 / sim.grid.pixel_area_sr();
        let per_pair: Vec<(Vec<f64>, f64)> = prs
            .par_iter()
            .enumerate()
            .map(|(p, &(i, j))| {
                let mut fb: Vec<C64> = (0..np)
                    .map(|k| {
                        let m = &mbar[k * b2..(k + 1) * b2];
                        let cb = if i == j {
                            m[i * nb + i]
                        } else {
                            m[i * nb + j] + m[j * nb + i]
                        };
                        let f = self.fhat[p][k];
                        let a = f.norm();
                        if k == 0 || a == 0.0 {
                            C64::new(0.0, 0.0)
                        } else {
                            f * (cb / a)
                        }
                    })
                    .collect();
                // F = FFT[u]  =>  ubar = Re(n^2 IFFT[Fbar]).
                sim.fft.inverse_inplace(&mut fb)?;
                let ll = self.shifts[i] * self.shifts[j];
                let mut ll_bar = 0.0;
                let mut xb: Vec<C64> = Vec::with_capacity(np);
                for (v, &x) in fb.iter().zip(&self.xi[p]) {
                    let ub = v.re * n2;
                    xb.push(C64::new(ub / (ll + x), 0.0));
                    ll_bar -= ub * x / (ll * (ll + x));
                }
                // xi = Re IFFT[P]  =>  Pbar = Re FFT[xibar] / n^2.
                sim.fft.forward_inplace(&mut xb)?;
                let mut cb = vec![0.0; sim.nodes.len()];
                for (k, &(a, b, t)) in sim.interp.iter().enumerate().skip(1) {
                    let pb = xb[k].re / n2 * inv_area;
                    cb[a] += pb * (1.0 - t);
                    cb[b] += pb * t;
                }
                Ok((cb, ll_bar))
            })
            .collect::<Result<_>>()?;
        let mut cl_bar = Vec::with_capacity(prs.len());
        for ((i, j), (cb, llb)) in prs.into_iter().zip(per_pair) {
            shift_bar[i] += llb * self.shifts[j];
            shift_bar[j] += llb * self.shifts[i];
            cl_bar.push(cb);
        }
        Ok(Cotangents {
            cl: cl_bar,
            shifts: shift_bar,
            z: z_bar,
        })
    }

    /// Adjoint of `M -> M^{1/2}` (negative eigenvalues clipped) at mode `k`,
    /// written into `out`: in the eigenbasis `Mbar' = D o (V^T sym(Lbar) V)`
    /// with the divided differences `D_ab = (f(w_a) - f(w_b)) / (w_a - w_b)`,
    /// `f = sqrt(max(., 0))` (Daleckii-Krein), `1/(s_a + s_b)` when both
    /// are positive; `O(B^3)` per mode.
    fn root_vjp(&self, k: usize, lb: &[f64], out: &mut [f64]) {
        let nb = self.sim.nb;
        if k == 0 {
            out.iter_mut().for_each(|v| *v = 0.0);
            return;
        }
        let w = &self.eval[k * nb..(k + 1) * nb];
        if nb == 1 {
            let s = w[0].max(0.0).sqrt();
            out[0] = if s > 0.0 { 0.5 * lb[0] / s } else { 0.0 };
            return;
        }
        let v = &self.evec[k * nb * nb..(k + 1) * nb * nb];
        let f = |x: f64| x.max(0.0).sqrt();
        let sym = |i: usize, j: usize| 0.5 * (lb[i * nb + j] + lb[j * nb + i]);
        // A = sym(Lbar) V, T = V^T A, T o= D.
        let mut a = Scratch::zeros(nb * nb);
        let a = &mut *a;
        for i in 0..nb {
            for b in 0..nb {
                a[i * nb + b] = (0..nb).map(|j| sym(i, j) * v[j * nb + b]).sum();
            }
        }
        let mut t = Scratch::zeros(nb * nb);
        let t = &mut *t;
        for x in 0..nb {
            for b in 0..nb {
                let s: f64 = (0..nb).map(|i| v[i * nb + x] * a[i * nb + b]).sum();
                let (sa, sb) = (f(w[x]), f(w[b]));
                let d = if sa > 0.0 && sb > 0.0 {
                    1.0 / (sa + sb)
                } else if sa == 0.0 && sb == 0.0 {
                    0.0
                } else {
                    (sa - sb) / (w[x] - w[b])
                };
                t[x * nb + b] = s * d;
            }
        }
        // out = V T V^T.
        for i in 0..nb {
            for b in 0..nb {
                a[i * nb + b] = (0..nb).map(|x| v[i * nb + x] * t[x * nb + b]).sum();
            }
        }
        for i in 0..nb {
            for j in 0..nb {
                out[i * nb + j] = (0..nb).map(|b| a[i * nb + b] * v[j * nb + b]).sum();
            }
        }
    }
}

/// Zeroed per-mode scratch space: on the stack for up to 8 bins (the
/// per-mode loops run 10^4-10^5 times per gradient, where a heap
/// allocation each cost more than the arithmetic), on the heap beyond.
// The large inline variant is the point: it lives on the stack.
#[allow(clippy::large_enum_variant)]
enum Scratch {
    Stack([f64; 64], usize),
    Heap(Vec<f64>),
}

impl Scratch {
    fn zeros(len: usize) -> Self {
        if len <= 64 {
            Scratch::Stack([0.0; 64], len)
        } else {
            Scratch::Heap(vec![0.0; len])
        }
    }
}

impl std::ops::Deref for Scratch {
    type Target = [f64];
    fn deref(&self) -> &[f64] {
        match self {
            Scratch::Stack(a, n) => &a[..*n],
            Scratch::Heap(v) => v,
        }
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f64] {
        match self {
            Scratch::Stack(a, n) => &mut a[..*n],
            Scratch::Heap(v) => v,
        }
    }
}

/// Eigen-decomposition of the symmetric `n x n` matrix `m` into `w` and
/// the column eigenvectors `v` (row-major): stack-allocated nalgebra
/// matrices for the tomographic sizes (one per Fourier mode, 10^5 per
/// evaluation), the heap version above.
fn sym_eigen_into(m: &[f64], n: usize, w: &mut [f64], v: &mut [f64]) {
    macro_rules! fixed {
        ($($k:literal)*) => {
            match n {
                1 => {
                    w[0] = m[0];
                    v[0] = 1.0;
                }
                $($k => {
                    let e = nalgebra::SMatrix::<f64, $k, $k>::from_row_slice(m).symmetric_eigen();
                    w.copy_from_slice(e.eigenvalues.as_slice());
                    for i in 0..$k {
                        for q in 0..$k {
                            v[i * $k + q] = e.eigenvectors[(i, q)];
                        }
                    }
                })*
                _ => {
                    let (ww, vv) = sym_eigen(m, n);
                    w.copy_from_slice(&ww);
                    v.copy_from_slice(&vv);
                }
            }
        };
    }
    fixed!(2 3 4 5 6 7 8);
}

/// `jax_cosmo.scipy.interpolate.interp(x, xp, fp)` as weights:
/// `ind` = the first nearest node, clipped to `[1, n - 2]`; the partner is
/// `ind + 1` if `clip(x, xp[1], xp[n-2]) >= xp[ind]`, else `ind - 1`; the
/// value is the straight line through the two (extrapolated if `x` lies
/// on the other side). On a sorted table this is linear interpolation; on
/// sbi_lens' LSST table (`2 pi |fftfreq(2n)|`, whose `xp[n-2]` is the
/// second node) it takes the left neighbour of the nearest node above
/// `ell = 2 xp[1]`, which a faithful reproduction keeps.
/// Returns `(ind, partner, t)` with value `(1 - t) fp[ind] + t fp[partner]`.
pub fn jax_cosmo_interp(xp: &[f64], x: f64) -> (usize, usize, f64) {
    let n = xp.len();
    let mut ind = 0;
    let mut best = f64::INFINITY;
    for (i, &v) in xp.iter().enumerate() {
        let d = (x - v) * (x - v);
        if d < best {
            best = d;
            ind = i;
        }
    }
    let ind = ind.clamp(1, n - 2);
    // jnp.clip(x, xp[1], xp[-2]) = min(max(x, xp[1]), xp[-2]).
    let c = x.max(xp[1]).min(xp[n - 2]);
    let j = if c - xp[ind] >= 0.0 { ind + 1 } else { ind - 1 };
    let dx = xp[j] - xp[ind];
    (ind, j, if dx == 0.0 { 0.0 } else { (x - xp[ind]) / dx })
}

/// Population variance (numpy's `var`, ddof = 0).
fn variance(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// The simulator, C_ell nodes, shifts and one white-noise field.
    type Case = (TomoLogNormal, Vec<Vec<f64>>, Vec<f64>, Vec<Vec<f64>>);

    fn setup(n: usize, nb: usize) -> Case {
        let grid = Grid2::new(n, 4.0).unwrap();
        let lmax = grid.ell_abs().iter().cloned().fold(0.0, f64::max);
        let nodes: Vec<f64> = (0..40)
            .map(|i| 1.0 + (lmax * 1.1) * i as f64 / 39.0)
            .collect();
        let sim = TomoLogNormal::new(grid, nb, nodes.clone()).unwrap();
        // Power-law spectra with cross-correlations 0.8 between bins.
        let amp: Vec<f64> = (0..nb).map(|i| 1e-9 * (1.0 + i as f64)).collect();
        let cl = pairs(nb)
            .into_iter()
            .map(|(i, j)| {
                let r = if i == j { 1.0 } else { 0.8 };
                nodes
                    .iter()
                    .map(|l| r * (amp[i] * amp[j]).sqrt() * (1.0 + l / 300.0).powf(-1.2))
                    .collect()
            })
            .collect();
        let shifts: Vec<f64> = (0..nb).map(|i| 0.02 + 0.01 * i as f64).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let z = (0..nb)
            .map(|_| {
                (0..n * n)
                    .map(|_| {
                        rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng)
                    })
                    .collect()
            })
            .collect();
        (sim, cl, shifts, z)
    }

    /// `sum_i <a_i, b_i>` over bins.
    fn dot(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.iter().zip(y).map(|(u, v)| u * v).sum::<f64>())
            .sum()
    }

    /// `nb` maps of `npix` values uniform in [-1/2, 1/2).
    fn uniform_maps(rng: &mut rand::rngs::StdRng, nb: usize, npix: usize) -> Vec<Vec<f64>> {
        (0..nb)
            .map(|_| (0..npix).map(|_| rng.random::<f64>() - 0.5).collect())
            .collect()
    }

    /// F(cl, shifts, z) = sum_i <w_i, kappa_i> for fixed random weights.
    fn objective(
        sim: &TomoLogNormal,
        cl: &[Vec<f64>],
        s: &[f64],
        z: &[Vec<f64>],
        w: &[Vec<f64>],
    ) -> f64 {
        let f = sim.factors(cl, s).unwrap();
        dot(&f.field(z).unwrap().kappa, w)
    }

    /// The reverse mode against central finite differences in every input
    /// kind, for one and three bins.
    #[test]
    fn vjp_matches_finite_differences() {
        for nb in [1, 3] {
            let (sim, cl, s, z) = setup(16, nb);
            let mut rng = rand::rngs::StdRng::seed_from_u64(9);
            let w = uniform_maps(&mut rng, nb, 256);
            let f = sim.factors(&cl, &s).unwrap();
            let field = f.field(&z).unwrap();
            let ct = f.vjp(&field, &w).unwrap();
            // z
            for &(b, x) in &[(0usize, 5usize), (nb - 1, 77), (nb / 2, 200)] {
                let h = 1e-5;
                let mut zp = z.clone();
                zp[b][x] += h;
                let mut zm = z.clone();
                zm[b][x] -= h;
                let fd = (objective(&sim, &cl, &s, &zp, &w) - objective(&sim, &cl, &s, &zm, &w))
                    / (2.0 * h);
                assert!(
                    (fd - ct.z[b][x]).abs() < 1e-6 * (1.0 + fd.abs()) + 1e-9,
                    "nb={nb} z[{b}][{x}]: fd {fd} vs {}",
                    ct.z[b][x]
                );
            }
            // shifts
            for i in 0..nb {
                let h = 1e-6 * s[i];
                let mut sp = s.clone();
                sp[i] += h;
                let mut sm = s.clone();
                sm[i] -= h;
                let fd = (objective(&sim, &cl, &sp, &z, &w) - objective(&sim, &cl, &sm, &z, &w))
                    / (2.0 * h);
                assert!(
                    (fd - ct.shifts[i]).abs() < 1e-5 * fd.abs().max(1e-3),
                    "nb={nb} shift {i}: fd {fd} vs {}",
                    ct.shifts[i]
                );
            }
            // C_ell along a random direction of all nodes and pairs.
            let dir: Vec<Vec<f64>> = cl
                .iter()
                .map(|c| c.iter().map(|v| v * (rng.random::<f64>() - 0.5)).collect())
                .collect();
            let h = 1e-5;
            let shifted = |e: f64| -> Vec<Vec<f64>> {
                cl.iter()
                    .zip(&dir)
                    .map(|(c, d)| c.iter().zip(d).map(|(a, b)| a + e * b).collect())
                    .collect()
            };
            let fd = (objective(&sim, &shifted(h), &s, &z, &w)
                - objective(&sim, &shifted(-h), &s, &z, &w))
                / (2.0 * h);
            let an = dot(&ct.cl, &dir);
            assert!(
                (fd - an).abs() < 1e-5 * fd.abs().max(1e-6),
                "nb={nb} C_ell direction: fd {fd} vs {an}"
            );
        }
    }

    /// The z-adjoint is the transpose of the z-Jacobian: <u, J v> = <J^T u, v>
    /// with J v from a tiny central difference of the (smooth) map.
    #[test]
    fn z_adjoint_dot_product() {
        let (sim, cl, s, z) = setup(16, 2);
        let f = sim.factors(&cl, &s).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let u = uniform_maps(&mut rng, 2, 256);
        let v = uniform_maps(&mut rng, 2, 256);
        let h = 1e-6;
        let at = |e: f64| -> Vec<Vec<f64>> {
            let zz: Vec<Vec<f64>> = z
                .iter()
                .zip(&v)
                .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x + e * y).collect())
                .collect();
            f.field(&zz).unwrap().kappa
        };
        let (kp, km) = (at(h), at(-h));
        let jv: Vec<Vec<f64>> = kp
            .iter()
            .zip(&km)
            .map(|(p, m)| p.iter().zip(m).map(|(a, b)| (a - b) / (2.0 * h)).collect())
            .collect();
        let ujv = dot(&u, &jv);
        let ct = f.vjp(&f.field(&z).unwrap(), &u).unwrap();
        let jtuv = dot(&ct.z, &v);
        assert!(
            (ujv - jtuv).abs() < 1e-7 * ujv.abs().max(1e-12),
            "{ujv} vs {jtuv}"
        );
    }

    /// The Gaussian field g has per-mode power C^G: the mean |FFT g|^2 / npix
    /// over 400 white-noise draws, summed over modes, within 2%.
    #[test]
    fn gaussian_power_is_the_per_mode_variance() {
        let (sim, cl, s, _) = setup(16, 1);
        let f = sim.factors(&cl, &s).unwrap();
        let cg = f.gaussian_power(0);
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut acc = vec![0.0; 256];
        let reps = 400;
        for _ in 0..reps {
            let z: Vec<f64> = (0..256)
                .map(|_| rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut rng))
                .collect();
            let field = f.field(&[z]).unwrap();
            let gh = sim.fft.forward_real(&field.g[0]).unwrap();
            for (a, v) in acc.iter_mut().zip(&gh) {
                *a += v.norm_sqr() / 256.0 / reps as f64;
            }
        }
        // Sum over modes (200 independent-ish modes, 400 draws each: ~0.5%).
        let (a, b): (f64, f64) = (acc.iter().sum(), cg.iter().sum());
        assert!((a / b - 1.0).abs() < 0.02, "{a} vs {b}");
    }
}
