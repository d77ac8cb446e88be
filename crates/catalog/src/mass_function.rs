//! The measured halo mass function
//!
//! `dn/dln M = N_b / (L^3 Delta ln M_b)` [(Mpc/h)^-3]
//!
//! in bins of `log10 M` [Msun/h], with the Poisson error `sqrt(N_b) / (L^3 Delta ln M_b)`.
//! Predictions (Sheth & Tormen 1999, Tinker et al. 2008) are in
//! `cosmodiff_cosmo::halo_mass_function`.

use crate::{check_box_size, input, Result};
use std::f64::consts::LN_10;

/// A binned mass function.
#[derive(Debug, Clone, Default)]
pub struct MassFunction {
    /// Bin edges in `log10 M` [Msun/h].
    pub log_mass_edges: Vec<f64>,
    /// Bin centres in `log10 M`.
    pub log_mass: Vec<f64>,
    /// Halos per bin.
    pub count: Vec<u64>,
    /// `dn/dln M` [(Mpc/h)^-3].
    pub dn_dlnm: Vec<f64>,
    /// Poisson error of `dn/dln M`.
    pub error: Vec<f64>,
}

/// `dn/dln M` of halo masses `mass` [Msun/h] in a box of side `box_size`
/// [Mpc/h], in the `log10 M` bins `log_mass_edges` (increasing; halos
/// outside are ignored).
pub fn mass_function(mass: &[f64], box_size: f64, log_mass_edges: &[f64]) -> Result<MassFunction> {
    check_box_size(box_size)?;
    if log_mass_edges.len() < 2 || log_mass_edges.windows(2).any(|w| !(w[1] > w[0])) {
        return input("mass-function bins: need at least two strictly increasing log10 M edges");
    }
    if let Some(i) = mass.iter().position(|m| !(*m > 0.0 && m.is_finite())) {
        return input(format!("halo mass {i} = {} is not positive", mass[i]));
    }
    let nb = log_mass_edges.len() - 1;
    let mut count = vec![0u64; nb];
    for m in mass {
        let x = m.log10();
        let b = log_mass_edges.partition_point(|e| *e <= x);
        if b >= 1 && b <= nb {
            count[b - 1] += 1;
        }
    }
    let v = box_size.powi(3);
    let mut out = MassFunction {
        log_mass_edges: log_mass_edges.to_vec(),
        ..Default::default()
    };
    for b in 0..nb {
        let dln = (log_mass_edges[b + 1] - log_mass_edges[b]) * LN_10;
        out.log_mass
            .push(0.5 * (log_mass_edges[b] + log_mass_edges[b + 1]));
        out.count.push(count[b]);
        out.dn_dlnm.push(count[b] as f64 / (v * dln));
        out.error.push((count[b] as f64).sqrt() / (v * dln));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_density() {
        let m = [1e12, 2e12, 5e12, 1.5e13, 9e14];
        let f = mass_function(&m, 10.0, &[12.0, 12.5, 13.0, 14.0]).unwrap();
        assert_eq!(f.count, vec![2, 1, 1]);
        let dln = 0.5 * LN_10;
        assert!((f.dn_dlnm[0] - 2.0 / (1000.0 * dln)).abs() < 1e-15);
        assert!(mass_function(&m, 10.0, &[13.0, 12.0]).is_err());
    }
}
