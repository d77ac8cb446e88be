//! Angular power spectra in the Limber approximation (Limber 1953; LoVerde &
//! Afshordi 2008):
//!   C_ell^{ij} = F_i(ell) F_j(ell) \int dchi W_i(chi) W_j(chi) / f_K(chi)^2
//!                P((ell + 1/2) / f_K(chi), z(chi)),
//! with F = sqrt((l+2)!/(l-2)!)/(l+1/2)^2 for lensing and 1 for number counts.
//! The chi integral runs over ln z in [ln 1e-4, ln z_max] with composite
//! Gauss-Legendre panels split at the breakpoints of every n(z); the lensing efficiency
//! \int dz' n(z') f_K(chi'-chi)/f_K(chi') uses its own Gauss-Legendre rule on
//! [z, z_max] at every node (no interpolation tables), so curvature enters
//! exactly through f_K.
//!
//! Pair order: (i, j) with j >= i over the tracers in the order given.

use crate::background::Background;
use crate::growth::Growth;
use crate::numerics::{composite_gl, gauss_legendre};
use crate::power::{NonLinear, PowerSpectrum};
use crate::tracers::{Tracer, TracerKind, C1_RHOCRIT};
use crate::transfer::TransferFunction;
use crate::{CosmoError, Cosmology, Result, Scalar, HUBBLE_DISTANCE};

/// Numerical and physical options of the C_ell computation.
#[derive(Debug, Clone, Copy)]
pub struct ClOptions {
    pub transfer: TransferFunction,
    pub nonlinear: NonLinear,
    /// Gauss-Legendre panels of the outer z integral (4 nodes each).
    pub z_panels: usize,
}

impl Default for ClOptions {
    fn default() -> Self {
        Self {
            transfer: TransferFunction::EisensteinHu,
            nonlinear: NonLinear::Halofit,
            z_panels: 32,
        }
    }
}

/// Pair indices (i, j), j >= i.
pub fn tracer_pairs(n: usize) -> Vec<(usize, usize)> {
    let mut v = vec![];
    for i in 0..n {
        for j in i..n {
            v.push((i, j));
        }
    }
    v
}

/// Noise spectra `[n_pairs][n_ell]`: shape/shot noise on auto pairs, 0 on crosses.
pub fn angular_cl_noise(tracers: &[Tracer], ell: &[f64]) -> Vec<Vec<f64>> {
    tracer_pairs(tracers.len())
        .into_iter()
        .map(|(i, j)| {
            let n = if i == j { tracers[i].noise() } else { 0.0 };
            vec![n; ell.len()]
        })
        .collect()
}

fn check_inputs(tracers: &[Tracer], ell: &[f64]) -> Result<()> {
    if tracers.is_empty() {
        return Err(CosmoError::Input("no tracers given".into()));
    }
    for t in tracers {
        t.validate()?;
    }
    if ell.is_empty() || ell.iter().any(|l| !(*l >= 2.0 && l.is_finite())) {
        return Err(CosmoError::Input(
            "ell must be a non-empty list of multipoles >= 2".into(),
        ));
    }
    Ok(())
}

/// Limber C_ell `[n_pairs][n_ell]` for a cosmology (builds background, growth
/// and power spectrum).
pub fn angular_cl<T: Scalar>(
    cosmo: &Cosmology<T>,
    tracers: &[Tracer],
    ell: &[f64],
    opts: &ClOptions,
) -> Result<Vec<Vec<T>>> {
    check_inputs(tracers, ell)?;
    let bg = Background::new(cosmo)?;
    let pk = PowerSpectrum::new(cosmo, opts.transfer, opts.nonlinear)?;
    angular_cl_with(&bg, &pk, tracers, ell, opts)
}

/// Limber C_ell with a precomputed background and power spectrum.
pub fn angular_cl_with<T: Scalar>(
    bg: &Background<T>,
    pk: &PowerSpectrum<T>,
    tracers: &[Tracer],
    ell: &[f64],
    opts: &ClOptions,
) -> Result<Vec<Vec<T>>> {
    check_inputs(tracers, ell)?;
    let c = &bg.cosmo;
    let growth: &Growth<T> = &pk.growth;
    // Outer z nodes: panels split at every breakpoint.
    let z_hi = tracers.iter().map(|t| t.nz.zmax()).fold(0.0, f64::max);
    if z_hi > 1.0 / crate::background::A_MIN - 1.0 {
        return Err(CosmoError::Input(format!(
            "n(z) extends to z = {z_hi}, beyond z = 9999"
        )));
    }
    // Nodes uniform in ln z: at low ell the wiggles of P((l+1/2)/chi) crowd
    // into low redshift, where a uniform-z rule would need thousands of nodes.
    let z_lo = 1e-4;
    let mut edges = vec![z_lo, z_hi];
    for t in tracers {
        edges.extend(
            t.nz.breakpoints()
                .into_iter()
                .filter(|z| *z > z_lo && *z < z_hi),
        );
    }
    edges.sort_by(|a, b| a.partial_cmp(b).unwrap());
    edges.dedup_by(|a, b| (*a - *b).abs() < 1e-10);
    let mut zs = vec![];
    let mut ws = vec![];
    // Panels [ln z_lo, ln z_hi] and, per node, the panel it lies in.
    let mut panels: Vec<(f64, f64)> = vec![];
    let mut node_panel = vec![];
    let span = (z_hi / z_lo).ln();
    for e in edges.windows(2) {
        let (l0, l1) = (e[0].ln(), e[1].ln());
        let np = ((opts.z_panels as f64 * (l1 - l0) / span).ceil() as usize).max(1);
        let h = (l1 - l0) / np as f64;
        for p in 0..np {
            let (a, b) = (l0 + p as f64 * h, l0 + (p + 1) as f64 * h);
            let (x, w) = composite_gl(a, b, 1, 4);
            for (xi, wi) in x.into_iter().zip(w) {
                let z = xi.exp();
                zs.push(z);
                ws.push(wi * z);
                node_panel.push(panels.len());
            }
            panels.push((a, b));
        }
    }
    let nn = zs.len();
    let (g8x, g8w) = gauss_legendre(8);
    let prefac = c.omega_m() * (1.5 / (HUBBLE_DISTANCE * HUBBLE_DISTANCE));

    // Per node: chi, f_K, dchi/dz, D, kernels.
    let mut fk = Vec::with_capacity(nn);
    let mut dchidz = Vec::with_capacity(nn);
    let mut chi_n = Vec::with_capacity(nn);
    for &z in &zs {
        let a = 1.0 / (1.0 + z);
        let chi = bg.comoving_distance(a);
        chi_n.push(chi);
        fk.push(bg.transverse_distance(chi));
        dchidz.push(bg.dchi_dz(a));
    }
    let mut kernels: Vec<Vec<T>> = Vec::with_capacity(tracers.len());
    for t in tracers {
        let mut w = vec![T::zero(); nn];
        match t.kind {
            TracerKind::NumberCounts { bias } => {
                for j in 0..nn {
                    w[j] = dchidz[j].recip() * (bias * t.nz.eval(zs[j]));
                }
            }
            TracerKind::WeakLensing {
                ia_amplitude,
                m_bias,
                ..
            } => {
                // Lensing efficiency \int_z dz' n(z') f_K(chi'-chi)/f_K(chi')
                //   = c_K(chi) A(z) - f_K(chi) B(z),
                // A(z) = \int_z n dz',  B(z) = \int_z n c_K(chi')/f_K(chi') dz'
                // (exact for any curvature), tail integrals by 8-point
                // Gauss-Legendre on the same ln z panels.
                let tails = if t.nz.is_delta().is_none() {
                    let g = |lnz: f64| -> (T, T) {
                        let z = lnz.exp();
                        let n = t.nz.eval(z);
                        if n == 0.0 {
                            return (T::zero(), T::zero());
                        }
                        let chi = bg.comoving_distance(1.0 / (1.0 + z));
                        let nz = n * z;
                        (
                            T::from(nz),
                            bg.curvature_cos(chi) / bg.transverse_distance(chi) * nz,
                        )
                    };
                    let integrate = |a: f64, b: f64| -> (T, T) {
                        let (mut sa, mut sb) = (T::zero(), T::zero());
                        for (xi, wi) in g8x.iter().zip(&g8w) {
                            let (u, v) = g(a + 0.5 * (b - a) * (xi + 1.0));
                            let w = 0.5 * (b - a) * wi;
                            sa += u * w;
                            sb += v * w;
                        }
                        (sa, sb)
                    };
                    let np = panels.len();
                    let mut suffix = vec![(T::zero(), T::zero()); np + 1];
                    for p in (0..np).rev() {
                        let (a, b) = integrate(panels[p].0, panels[p].1);
                        suffix[p] = (suffix[p + 1].0 + a, suffix[p + 1].1 + b);
                    }
                    Some(
                        (0..nn)
                            .map(|j| {
                                let p = node_panel[j];
                                let (a, b) = integrate(zs[j].ln(), panels[p].1);
                                (suffix[p + 1].0 + a, suffix[p + 1].1 + b)
                            })
                            .collect::<Vec<_>>(),
                    )
                } else {
                    None
                };
                for j in 0..nn {
                    let z = zs[j];
                    let a = 1.0 / (1.0 + z);
                    let eff = match (&tails, t.nz.is_delta()) {
                        (Some(tl), _) => bg.curvature_cos(chi_n[j]) * tl[j].0 - fk[j] * tl[j].1,
                        (None, Some(zs_src)) if z < zs_src => {
                            let chis = bg.comoving_distance(1.0 / (1.0 + zs_src));
                            bg.transverse_distance(chis - chi_n[j]) / bg.transverse_distance(chis)
                        }
                        _ => T::zero(),
                    };
                    let mut wj = prefac * fk[j] * (1.0 / a) * eff;
                    if ia_amplitude != 0.0 {
                        wj -= c.omega_m() * (ia_amplitude * C1_RHOCRIT * t.nz.eval(z))
                            / growth.d1(a)
                            / dchidz[j];
                    }
                    w[j] = wj * (1.0 + m_bias);
                }
            }
        }
        kernels.push(w);
    }

    let pairs = tracer_pairs(tracers.len());
    let mut out = vec![vec![T::zero(); ell.len()]; pairs.len()];
    let needs_hf = pk.nonlinear == NonLinear::Halofit;
    // Node-wise halofit parameters and the integrand weight dchi/dz w / f_K^2.
    let mut pk_node: Vec<Vec<T>> = vec![vec![T::zero(); ell.len()]; nn];
    let active: Vec<bool> = (0..nn)
        .map(|j| kernels.iter().any(|w| w[j].re() != 0.0))
        .collect();
    for j in 0..nn {
        if !active[j] {
            continue;
        }
        let a = 1.0 / (1.0 + zs[j]);
        let hp = if needs_hf {
            Some(pk.halofit_params(a))
        } else {
            None
        };
        for (l, &ellv) in ell.iter().enumerate() {
            let k = fk[j].recip() * (ellv + 0.5);
            pk_node[j][l] = match &hp {
                Some(hp) => pk.pk_halofit(k, hp),
                None => pk.pk_linear(k, a),
            };
        }
    }
    for (p, &(i, jj)) in pairs.iter().enumerate() {
        for (l, &ellv) in ell.iter().enumerate() {
            let mut s = T::zero();
            for j in 0..nn {
                if !active[j] {
                    continue;
                }
                let wprod = kernels[i][j] * kernels[jj][j];
                if wprod.re() == 0.0 {
                    continue;
                }
                s += wprod * dchidz[j] / (fk[j] * fk[j]) * pk_node[j][l] * ws[j];
            }
            let mut f = 1.0;
            for t in [i, jj] {
                if tracers[t].is_lensing() {
                    f *= ell_factor_spin2(ellv);
                }
            }
            out[p][l] = s * f;
        }
    }
    Ok(out)
}

/// sqrt((l+2)!/(l-2)!) / (l+1/2)^2.
pub fn ell_factor_spin2(l: f64) -> f64 {
    ((l + 2.0) * (l + 1.0) * l * (l - 1.0)).sqrt() / ((l + 0.5) * (l + 0.5))
}
