//! The `[gradient]` section of `cosmodiff pm run`: the loss of the final
//! density (P(k) against a table, or MSE against a density) and its adjoint
//! gradients with respect to the initial field, sigma8 and Omega_m.

use super::*;

/// The checked `[gradient]` section.
pub(super) struct GradSetup {
    loss: LossKind,
    omega_m_step: f64,
}

enum LossKind {
    Mse {
        target: Vec<f32>,
    },
    Pk {
        /// `(bin, target P, modes)` of the bins in the loss
        sel: Vec<(usize, f64, f64)>,
        /// number of bins of the mesh's spectrum
        n_bins: usize,
        chi2: bool,
        compensate: bool,
    },
}

impl GradSetup {
    pub(super) fn new(g: &GradientSection, base: &Path, nm: usize, box_size: f64) -> Result<Self> {
        let target = g
            .target
            .as_ref()
            .map(|p| resolve(base, p))
            .ok_or_else(|| anyhow!("[gradient] target = \"FILE\" is required"))?;
        let pk_only = |set: bool, key: &str, loss: &str| -> Result<()> {
            if set {
                bail!("[gradient] {key} applies to loss = \"pk\" only, not \"{loss}\"");
            }
            Ok(())
        };
        let loss = match g.loss.as_deref() {
            Some("mse") => {
                pk_only(g.pk_form.is_some(), "pk_form", "mse")?;
                pk_only(g.target_column.is_some(), "target_column", "mse")?;
                pk_only(g.k_min.is_some() || g.k_max.is_some(), "k_min/k_max", "mse")?;
                pk_only(g.compensate.is_some(), "compensate", "mse")?;
                let a = crate::io::read_float_npy(&target, "[gradient] target")?;
                if a.shape() != [nm, nm, nm] {
                    bail!(
                        "[gradient] target {}: shape {:?}, expected [{nm}, {nm}, {nm}] (n_mesh)",
                        target.display(),
                        a.shape()
                    );
                }
                if a.iter().any(|v| !v.is_finite()) {
                    bail!(
                        "[gradient] target {}: contains non-finite values",
                        target.display()
                    );
                }
                LossKind::Mse {
                    target: a.iter().map(|v| *v as f32).collect(),
                }
            }
            Some("pk") => {
                let chi2 = match g.pk_form.as_deref().unwrap_or("log") {
                    "log" => false,
                    "chi2" => true,
                    f => bail!("[gradient] pk_form = \"{f}\": expected \"log\" or \"chi2\""),
                };
                let col = g.target_column.unwrap_or(2);
                if col < 2 {
                    bail!("[gradient] target_column = {col}: must be >= 2 (column 1 is k)");
                }
                let table = read_pk_table(&target, col)?;
                let k_min = g.k_min.unwrap_or(0.0);
                let k_max = g.k_max.unwrap_or(f64::INFINITY);
                if !(k_min >= 0.0 && k_max > k_min) {
                    bail!("[gradient] need 0 <= k_min < k_max, got {k_min}, {k_max}");
                }
                // the bins depend on the mesh alone: select them before the run
                let bins = k_bins(nm, box_size);
                let sel: Vec<(usize, f64, f64)> = (0..bins.k.len())
                    .filter(|&b| bins.k[b] >= k_min && bins.k[b] <= k_max)
                    .filter_map(|b| {
                        interp_loglog(&table, bins.k[b]).map(|t| (b, t, bins.n_modes[b]))
                    })
                    .collect();
                let (Some(first), Some(last)) = (sel.first(), sel.last()) else {
                    bail!(
                        "[gradient] no P(k) bin (k = {:.4} .. {:.4} h/Mpc) inside the target table's k range and [k_min, k_max]",
                        bins.k[0],
                        bins.k[bins.k.len() - 1]
                    );
                };
                log::info!(
                    "pm gradient: P(k) loss over {} bins, k = {:.4} .. {:.4} h/Mpc",
                    sel.len(),
                    bins.k[first.0],
                    bins.k[last.0]
                );
                LossKind::Pk {
                    sel,
                    n_bins: bins.k.len(),
                    chi2,
                    compensate: g.compensate.unwrap_or(false),
                }
            }
            Some(l) => bail!("[gradient] loss = \"{l}\": expected \"pk\" or \"mse\""),
            None => bail!("[gradient] loss = \"pk\" or \"mse\" is required"),
        };
        let omega_m_step = g.omega_m_step.unwrap_or(1e-3);
        // Below ~1e-6 the central difference of the growth integrals is
        // rounding noise (1e-300 gave exactly 0).
        if !(1e-6..0.05).contains(&omega_m_step) {
            bail!("[gradient] omega_m_step = {omega_m_step}: expected 1e-6 <= step < 0.05");
        }
        Ok(Self { loss, omega_m_step })
    }
}

/// `k P` rows of a table (`#` comments), P from 1-based column `col`;
/// strictly increasing positive k, positive P.
fn read_pk_table(path: &Path, col: usize) -> Result<Vec<(f64, f64)>> {
    let txt = std::fs::read_to_string(path)
        .with_context(|| format!("[gradient] target {}", path.display()))?;
    let mut rows = vec![];
    let mut ncols = None;
    for (i, l) in txt.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let v: Vec<f64> = l
            .split_whitespace()
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                anyhow!(
                    "[gradient] target {}: line {}: not numbers",
                    path.display(),
                    i + 1
                )
            })?;
        if v.len() < col {
            bail!(
                "[gradient] target {}: line {}: {} columns, target_column = {col}",
                path.display(),
                i + 1,
                v.len()
            );
        }
        // a row with another column count is a damaged or concatenated table
        match ncols {
            None => ncols = Some(v.len()),
            Some(n) if n != v.len() => bail!(
                "[gradient] target {}: line {}: {} columns where earlier rows have {n}",
                path.display(),
                i + 1,
                v.len()
            ),
            Some(_) => {}
        }
        let (k, p) = (v[0], v[col - 1]);
        if !(k > 0.0 && p > 0.0 && k.is_finite() && p.is_finite()) {
            bail!(
                "[gradient] target {}: line {}: need k > 0 and P > 0",
                path.display(),
                i + 1
            );
        }
        if let Some((k0, _)) = rows.last() {
            if k <= *k0 {
                bail!(
                    "[gradient] target {}: line {}: k must increase",
                    path.display(),
                    i + 1
                );
            }
        }
        rows.push((k, p));
    }
    if rows.len() < 2 {
        bail!("[gradient] target {}: need at least 2 rows", path.display());
    }
    Ok(rows)
}

/// Linear interpolation in `(ln k, ln P)`; `None` outside the table.
fn interp_loglog(t: &[(f64, f64)], k: f64) -> Option<f64> {
    if k < t[0].0 || k > t[t.len() - 1].0 {
        return None;
    }
    let j = t.partition_point(|r| r.0 <= k).clamp(1, t.len() - 1) - 1;
    let (k0, p0, k1, p1) = (t[j].0, t[j].1, t[j + 1].0, t[j + 1].1);
    let u = (k.ln() - k0.ln()) / (k1.ln() - k0.ln());
    Some((p0.ln() + u * (p1.ln() - p0.ln())).exp())
}

pub(super) struct GradContext<'a> {
    pub(super) pm: &'a Pm,
    pub(super) sch: &'a Schedule,
    pub(super) cosmo: &'a Cosmology,
    pub(super) steps: &'a StepConfig,
    pub(super) lin: &'a [f64],
    pub(super) white: Option<&'a [f64]>,
    pub(super) config: &'a Path,
}

/// The loss of the final counts: `(L, dL/drho)`.
type DensityLoss<'a> = Box<dyn Fn(&[f32]) -> (f64, Vec<f32>) + Sync + 'a>;

fn density_loss<'a>(gs: &'a GradSetup, ctx: &GradContext) -> DensityLoss<'a> {
    let (nm, box_size) = (ctx.pm.cfg.n_mesh, ctx.pm.cfg.box_size);
    match &gs.loss {
        LossKind::Mse { target } => Box::new(move |rho: &[f32]| {
            let n = rho.len() as f64;
            let mut l = 0.0f64;
            let u = rho
                .iter()
                .zip(target)
                .map(|(r, t)| {
                    let d = *r as f64 - *t as f64;
                    l += d * d;
                    (2.0 * d / n) as f32
                })
                .collect();
            (l / n, u)
        }),
        LossKind::Pk {
            sel,
            n_bins,
            chi2,
            compensate,
        } => {
            let opt = PkOptions {
                compensate: compensate.then_some(Compensation::Cic),
                is_delta: false,
            };
            let (chi2, nb) = (*chi2, *n_bins);
            Box::new(move |rho: &[f32]| {
                let p = power_spectrum(rho, nm, box_size, &opt)
                    .expect("same mesh as the checked run")
                    .p;
                let mut pbar = vec![0.0f64; nb];
                let mut l = 0.0;
                for &(b, t, nmod) in sel {
                    if chi2 {
                        l += nmod * (p[b] - t).powi(2) / (2.0 * t * t);
                        pbar[b] = nmod * (p[b] - t) / (t * t);
                    } else {
                        let d = p[b].ln() - t.ln();
                        l += d * d;
                        pbar[b] = 2.0 * d / p[b];
                    }
                }
                let g = power_spectrum_vjp(rho, nm, box_size, &opt, &pbar)
                    .expect("same mesh as the checked run");
                (l, g.iter().map(|v| *v as f32).collect())
            })
        }
    }
}

pub(super) fn gradient_outputs(gs: &GradSetup, ctx: &GradContext, out: &Path) -> Result<()> {
    let t0 = Instant::now();
    let pm = ctx.pm;
    let np = pm.cfg.n_particles;
    let dl = density_loss(gs, ctx);
    let loss = |st: &cosmodiff_pm::State| {
        let rho = pm.density_counts(st);
        let (l, u) = dl(&rho);
        let g = pm.force.counts_vjp(&st.disp, &u);
        (l, g, vec![[0.0f32; 3]; st.mom.len()])
    };
    // the same linear P(k) closure as the run (white noise -> delta_L)
    let power = |c: &Cosmology| -> Result<PowerSpectrum<f64>> {
        PowerSpectrum::new(c, TransferFunction::EisensteinHu, NonLinear::Linear)
            .map_err(|e| anyhow!("power spectrum: {e}"))
    };
    let pk_of = |p: &PowerSpectrum<f64>, k: f64| if k > 0.0 { p.pk_linear(k, 1.0) } else { 0.0 };
    let p0 = power(ctx.cosmo)?;
    let pk0 = |k: f64| pk_of(&p0, k);
    let white = ctx.white.map(|w| (w, &pk0 as &(dyn Fn(f64) -> f64 + Sync)));
    let g = pm
        .gradient(
            ctx.lin,
            white,
            ctx.sch,
            &loss,
            cosmodiff_pm::AdjointMode::Reverse,
        )
        .map_err(|e| anyhow!("{}: [gradient] {e}", ctx.config.display()))?;

    // d/dOmega_m: vary Omega_c at fixed everything else
    let h = gs.omega_m_step;
    let shifted = |s: f64| -> Result<Cosmology> {
        let mut c = *ctx.cosmo;
        c.omega_c += s;
        c.validate()
            .map_err(|e| anyhow!("[gradient] Omega_m {s:+}: {e}"))?;
        Ok(c)
    };
    let (cp, cm) = (shifted(h)?, shifted(-h)?);
    let sched = |c: &Cosmology| -> Result<Schedule> {
        Schedule::new(&CosmoGrowth::new(c)?, ctx.steps)
            .map_err(|e| anyhow!("[gradient] schedule at Omega_m {}: {e}", c.omega_m()))
    };
    let dsch = sched(&cp)?.diff(&sched(&cm)?, 2.0 * h);
    let d_dyn = g.schedule.dot(&dsch);
    let d_pow = match ctx.white {
        Some(w) => {
            let (pp, pmn) = (power(&cp)?, power(&cm)?);
            let lp = pm.linear_field(w, &|k| pk_of(&pp, k))?;
            let lm = pm.linear_field(w, &|k| pk_of(&pmn, k))?;
            g.linear_field
                .iter()
                .zip(lp.iter().zip(&lm))
                .map(|(gb, (a, b))| gb * (a - b) / (2.0 * h))
                .sum()
        }
        None => 0.0,
    };
    let (name, field) = match &g.white_noise {
        Some(w) => ("grad_white_noise.npy", w),
        None => ("grad_linear_field.npy", &g.linear_field),
    };
    let arr = ndarray::Array3::from_shape_vec((np, np, np), field.clone())?;
    crate::output::write_npy(&out.join(name), &arr)?;
    let sigma8 = ctx.cosmo.sigma8;
    let ic = if ctx.white.is_some() {
        "white_noise"
    } else {
        "linear_field"
    };
    let loss_kind = match &gs.loss {
        LossKind::Mse { .. } => "mse".to_string(),
        LossKind::Pk { chi2, .. } => format!("pk_{}", if *chi2 { "chi2" } else { "log" }),
    };
    let js = serde_json::json!({
        "loss": g.loss,
        "loss_kind": loss_kind,
        "ic": ic,
        "dloss_dsigma8": ctx.white.map(|_| g.dlog_amplitude / sigma8),
        "dloss_dlog_amplitude": g.dlog_amplitude,
        "dloss_dOmega_m": d_dyn + d_pow,
        "dloss_dOmega_m_dynamics": d_dyn,
        "dloss_dOmega_m_linear_power": d_pow,
        "Omega_m": ctx.cosmo.omega_m(),
        "sigma8": sigma8,
        "omega_m_step": h,
        "fixed": "Omega_b, h, n_s, sigma8, Omega_k, w0, wa (Omega_m varied through Omega_c)",
        "adjoint": "reverse",
    });
    crate::output::write_bytes(
        &out.join("grad_cosmology.json"),
        (serde_json::to_string_pretty(&js)? + "\n").as_bytes(),
    )?;
    let el = t0.elapsed().as_secs_f64();
    println!(
        "wrote {}/{name}, grad_cosmology.json (loss {:.6e}, {el:.2} s)",
        out.display(),
        g.loss
    );
    Ok(())
}
