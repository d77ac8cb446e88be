//! `cosmodiff massmap --method ks|wiener --input FILE.npz --out FILE.npz`:
//! convergence (mass) maps from shear maps.

use crate::io::Npz;
use anyhow::{anyhow, bail, Context, Result};
use cosmodiff_field::fits::{read_fits, write_fits, FitsImage};
use cosmodiff_field::{ClMatrixTable, ClTable, Grid2};
use cosmodiff_lensing::prior::estimate_prior_from_shear;
use cosmodiff_lensing::wiener::{pixel_std, rotate_b_to_e};
use cosmodiff_lensing::{MessengerOpts, ShearOp, Wiener};
use cosmodiff_score::{map_posterior, PosteriorSettings, Sampler, ScoreModel};
use ndarray::ArrayD;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Method {
    /// Kaiser-Squires inversion, optional Gaussian smoothing.
    Ks,
    /// Wiener filter (posterior mean) with posterior samples and per-pixel std.
    Wiener,
    /// Posterior samples with a learned score (diffusion) prior.
    Diffusion,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum DiffusionSampler {
    /// Reverse-time SDE, Euler-Maruyama predictor + one Langevin corrector
    /// per step; with an even number (>= 4) of samples, in antithetic pairs
    /// (unless --independent).
    ReverseSde,
    /// Annealed HMC over the noise levels (Remy et al. 2022): 2 transitions
    /// of 5 leapfrog steps per level, Metropolis-corrected.
    AnnealedHmc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Solver {
    /// Conjugate gradients (exact to --tol).
    Cg,
    /// Messenger field with cooling (fast, no preconditioner needed).
    Messenger,
}

/// Reconstruct convergence maps from shear maps.
///
/// Input (.npz or .fits): `e1`, `e2`, `noise_std` (per-component noise
/// standard deviation per pixel; inf = unobserved), optional `mask`
/// (1 observed, 0 masked; values in between weight the pixel's inverse
/// noise variance for wiener and diffusion), optional `pixel_arcmin` (scalar; or pass
/// --pixel-arcmin), and for --cl-theory `ell` and `cl_theory` [n_pairs, n_ell].
/// Maps are [npix, npix] or, for several source bins, [n_bins, npix, npix];
/// each bin is reconstructed separately. FITS inputs use HDUs named E1, E2,
/// NOISE_STD, MASK, ELL, CL_THEORY and the PIXSCALE/CDELT header keys.
///
/// Output (.npz or .fits, by extension): `kappa_e`, `kappa_b` (same shape
/// as `e1`); for wiener also `kappa_std` and `samples` [n, npix, npix]
/// ([n_bins, n, npix, npix] for several bins). The Wiener `kappa_b` is the
/// Wiener filter of the B mode (the data rotated by 45 degrees) with the same
/// prior, a null test. Without --cl-theory the Wiener prior is a power law
/// fitted to C_E - C_B of the Kaiser-Squires map.
///
/// --method diffusion samples p(kappa | gamma) with a learned score prior
/// (`cosmodiff prior train`; default: the shipped prior of 64x64 log-normal
/// maps with 2-arcmin pixels) and the Gaussian shear likelihood (mask and
/// per-pixel noise), and writes `kappa_mean`, `kappa_std` [npix, npix] and
/// `samples` [N, npix, npix] (for a single bin, also when the input is
/// [1, npix, npix]; [n_bins, ...] for several bins). Maps must
/// match the prior's size and pixel scale. With the reverse SDE and an even
/// N >= 4, samples 2j and 2j+1 are an antithetic pair (see --independent).
#[derive(Debug)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[cfg_attr(feature = "cli", command(verbatim_doc_comment))]
pub struct Settings {
    /// Reconstruction method.
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    pub method: Method,
    /// Input shear maps (.npz or .fits).
    #[cfg_attr(feature = "cli", arg(long))]
    pub input: PathBuf,
    /// Output file (.npz or .fits).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// Gaussian smoothing of the Kaiser-Squires maps (kernel sigma, arcmin; ks only).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.0))]
    pub smoothing_arcmin: f64,
    /// Number of posterior samples, Wiener or diffusion (>= 2; also sets
    /// kappa_std) [default: 16].
    #[cfg_attr(feature = "cli", arg(long))]
    pub samples: Option<usize>,
    /// Score-prior model directory for --method diffusion (default: the shipped prior).
    #[cfg_attr(feature = "cli", arg(long))]
    pub prior: Option<PathBuf>,
    /// Posterior sampler for --method diffusion [default: reverse-sde].
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    pub sampler: Option<DiffusionSampler>,
    /// Noise levels for --method diffusion (reverse-SDE steps or annealed-HMC
    /// levels) [default: 300].
    #[cfg_attr(feature = "cli", arg(long))]
    pub steps: Option<usize>,
    /// Seed for the posterior samples, Wiener or diffusion [default: 0].
    #[cfg_attr(feature = "cli", arg(long))]
    pub seed: Option<u64>,
    /// Independent diffusion chains. By default (reverse SDE, an even number
    /// of at least 4 --samples) the chains come in antithetic pairs: samples 2j and 2j+1 are driven
    /// by opposite random numbers. Each is still a posterior sample, but
    /// `kappa_mean` then carries ~5x less Monte Carlo noise for the same
    /// cost (`kappa_std` accounts for the pairing; a plain std over
    /// `samples` reads slightly high for few samples).
    #[cfg_attr(feature = "cli", arg(long))]
    pub independent: bool,
    /// Use the theory spectrum (`ell`, `cl_theory` in the input) as the Wiener prior.
    #[cfg_attr(feature = "cli", arg(long))]
    pub cl_theory: bool,
    /// Pixel size in arcmin (overrides `pixel_arcmin` / the FITS header).
    #[cfg_attr(feature = "cli", arg(long))]
    pub pixel_arcmin: Option<f64>,
    /// Wiener solver [default: cg].
    #[cfg_attr(feature = "cli", arg(long, value_enum))]
    pub solver: Option<Solver>,
    /// Relative tolerance of the Wiener solves [default: 1e-6].
    #[cfg_attr(feature = "cli", arg(long))]
    pub tol: Option<f64>,
}

impl Settings {
    fn samples(&self) -> usize {
        self.samples.unwrap_or(16)
    }
    fn seed(&self) -> u64 {
        self.seed.unwrap_or(0)
    }
    fn steps(&self) -> usize {
        self.steps.unwrap_or(300)
    }
    fn tol(&self) -> f64 {
        self.tol.unwrap_or(1e-6)
    }

    /// Refuse options the chosen method would silently ignore.
    fn check_applicable(&self) -> Result<()> {
        let only = |set: bool, flag: &str, methods: &[Method]| -> Result<()> {
            if set && !methods.contains(&self.method) {
                let names: Vec<String> = methods
                    .iter()
                    .map(|m| format!("{m:?}").to_ascii_lowercase())
                    .collect();
                bail!("{flag} applies to --method {} only", names.join(" and "));
            }
            Ok(())
        };
        use Method::{Diffusion, Ks, Wiener};
        only(self.smoothing_arcmin > 0.0, "--smoothing-arcmin", &[Ks])?;
        only(self.samples.is_some(), "--samples", &[Wiener, Diffusion])?;
        only(self.seed.is_some(), "--seed", &[Wiener, Diffusion])?;
        only(self.cl_theory, "--cl-theory", &[Wiener])?;
        only(self.solver.is_some(), "--solver", &[Wiener])?;
        only(self.tol.is_some(), "--tol", &[Wiener])?;
        only(self.prior.is_some(), "--prior", &[Diffusion])?;
        only(self.sampler.is_some(), "--sampler", &[Diffusion])?;
        only(self.steps.is_some(), "--steps", &[Diffusion])?;
        only(self.independent, "--independent", &[Diffusion])?;
        self.sampler
            .unwrap_or(DiffusionSampler::ReverseSde)
            .check_independent(self.independent)
    }
}

/// Named arrays read from the input.
struct Input {
    path: String,
    arrays: Vec<(String, ArrayD<f64>)>,
    pixel_arcmin: Option<f64>,
}

impl Input {
    fn get(&self, name: &str) -> Option<&ArrayD<f64>> {
        self.arrays.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }
    fn need(&self, name: &str) -> Result<&ArrayD<f64>> {
        self.get(name)
            .ok_or_else(|| anyhow!("{}: missing array '{name}'", self.path))
    }
}

fn read_input(path: &Path) -> Result<Input> {
    let p = path.display().to_string();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "npz" => {
            let f = std::fs::File::open(path).with_context(|| format!("cannot open {p}"))?;
            let mut z = ndarray_npy::NpzReader::new(f)
                .map_err(|e| anyhow!("{p}: not a readable .npz ({e})"))?;
            let names = z.names().map_err(|e| anyhow!("{p}: {e}"))?;
            let mut arrays = vec![];
            for n in names {
                if ![
                    "e1",
                    "e2",
                    "noise_std",
                    "mask",
                    "pixel_arcmin",
                    "ell",
                    "cl_theory",
                ]
                .contains(&n.as_str())
                {
                    continue;
                }
                let a = crate::io::npz_float(&mut z, &n)
                    .map_err(|e| anyhow!("{p}: array '{n}' is not float64/float32 ({e})"))?;
                arrays.push((n, a));
            }
            let pixel_arcmin = match arrays.iter().find(|(n, _)| n == "pixel_arcmin") {
                Some((_, a)) if a.len() == 1 => Some(*a.iter().next().unwrap()),
                Some(_) => bail!("{p}: 'pixel_arcmin' must be a scalar"),
                None => None,
            };
            Ok(Input {
                path: p,
                arrays,
                pixel_arcmin,
            })
        }
        "fits" | "fit" => {
            let hdus = read_fits(path).map_err(|e| anyhow!("{e}"))?;
            let mut arrays = vec![];
            let mut scales = vec![];
            for h in hdus {
                let Some(name) = h.name.as_ref().map(|s| s.to_ascii_lowercase()) else {
                    continue;
                };
                if scales.iter().any(|(n, _)| *n == name) {
                    bail!(
                        "{p}: two HDUs are named {}: each map (E1, E2, NOISE_STD, ...) once",
                        name.to_ascii_uppercase()
                    );
                }
                scales.push((name.clone(), h.pixel_arcmin));
                let a = ArrayD::from_shape_vec(h.shape.clone(), h.data)
                    .map_err(|e| anyhow!("{p}: HDU {name}: {e}"))?;
                arrays.push((name, a));
            }
            // Maps of one survey share one pixel scale, E1's.
            let pixel_arcmin = scales.iter().find(|(n, _)| n == "e1").and_then(|s| s.1);
            if let Some(p0) = pixel_arcmin {
                if let Some((n, Some(q))) = scales
                    .iter()
                    .find(|(_, q)| q.is_some_and(|q| (q - p0).abs() > 1e-6 * p0))
                {
                    bail!("{p}: HDU {n} has pixels of {q} arcmin but E1 has {p0}");
                }
            }
            Ok(Input {
                path: p,
                arrays,
                pixel_arcmin,
            })
        }
        _ => bail!("{p}: unknown input format (use .npz or .fits)"),
    }
}

/// Split a [n, n] or [b, n, n] array into per-bin maps.
fn maps(inp: &Input, name: &str, a: &ArrayD<f64>) -> Result<(usize, Vec<Vec<f64>>)> {
    let s = a.shape();
    let n = match s {
        [n1, n2] if n1 == n2 => *n1,
        [_, n1, n2] if n1 == n2 => *n1,
        _ => bail!(
            "{}: array '{name}' has shape {s:?}; expected [npix, npix] or [n_bins, npix, npix]",
            inp.path
        ),
    };
    if n < 2 || s[0] == 0 {
        bail!(
            "{}: array '{name}' has shape {s:?}; need at least one bin of at least 2x2 pixels",
            inp.path
        );
    }
    let flat: Vec<f64> = a.iter().copied().collect();
    Ok((n, flat.chunks(n * n).map(|c| c.to_vec()).collect()))
}

impl Settings {
    /// Settings for `method` with every option at its default, and no files
    /// (for [`reconstruct`] on maps in memory).
    pub fn new(method: Method) -> Self {
        Self {
            method,
            input: PathBuf::new(),
            out: PathBuf::new(),
            smoothing_arcmin: 0.0,
            samples: None,
            prior: None,
            sampler: None,
            steps: None,
            seed: None,
            independent: false,
            cl_theory: false,
            pixel_arcmin: None,
            solver: None,
            tol: None,
        }
    }

    /// Every check of the options alone, made before any file is read.
    pub fn validate(&self) -> Result<()> {
        if !(self.smoothing_arcmin.is_finite() && self.smoothing_arcmin >= 0.0) {
            bail!(
                "--smoothing-arcmin must be >= 0, got {}",
                self.smoothing_arcmin
            );
        }
        if let Some(p) = self.pixel_arcmin {
            if !(p > 0.0 && p.is_finite()) {
                bail!("--pixel-arcmin must be a positive number of arcmin, got {p}");
            }
        }
        self.check_applicable()?;
        if !(2..=100_000).contains(&self.steps()) {
            bail!("--steps must be in 2..=100000, got {}", self.steps());
        }
        if self.samples() < 2 {
            bail!(
                "--samples must be >= 2 (kappa_std is estimated from the samples), got {}",
                self.samples()
            );
        }
        if !(self.tol() > 0.0 && self.tol() < 1.0) {
            bail!("--tol must be in (0, 1), got {}", self.tol());
        }
        Ok(())
    }
}

/// Shear maps of one or more source bins, in memory: what [`reconstruct`]
/// works on, whether read from a file or handed over from Python.
pub struct ShearMaps {
    /// Where the maps came from, the first word of every message about them
    /// (the input file's path, or a name such as `maps`).
    pub source: String,
    /// Map side, pixels.
    pub npix: usize,
    /// Ellipticity components per bin, each `[npix * npix]` row-major.
    pub e1: Vec<Vec<f64>>,
    /// Second ellipticity component per bin.
    pub e2: Vec<Vec<f64>>,
    /// Per-component noise standard deviation per pixel and bin (inf = unobserved).
    pub noise_std: Vec<Vec<f64>>,
    /// Optional weights in [0, 1] per pixel and bin (1 observed, 0 masked).
    pub mask: Option<Vec<Vec<f64>>>,
    /// Pixel size of the maps, arcmin, if they say (`--pixel-arcmin` overrides it).
    pub pixel_arcmin: Option<f64>,
    /// Theory spectra of the bins, the Wiener prior with `--cl-theory`.
    pub cl_theory: Option<ClMatrixTable>,
    /// One `[npix, npix]` map was given (rather than `[n_bins, npix, npix]`):
    /// the outputs drop the bin axis too.
    pub single_map: bool,
}

impl ShearMaps {
    /// The maps of a file read by [`read_input`]: shapes checked against
    /// `e1`, a single `noise_std` or `mask` map broadcast to every bin.
    fn from_input(inp: &Input, want_theory: bool) -> Result<Self> {
        let e1a = inp.need("e1")?;
        let (n, e1) = maps(inp, "e1", e1a)?;
        let nb = e1.len();
        let same = |name: &str, arr: &ArrayD<f64>| -> Result<Vec<Vec<f64>>> {
            let (m, v) = maps(inp, name, arr)?;
            if m != n {
                bail!(
                    "{}: array '{name}' is {m}x{m} but 'e1' is {n}x{n}",
                    inp.path
                );
            }
            if v.len() == nb {
                Ok(v)
            } else if v.len() == 1 {
                Ok(vec![v[0].clone(); nb])
            } else {
                bail!(
                    "{}: array '{name}' has {} bins but 'e1' has {nb}",
                    inp.path,
                    v.len()
                )
            }
        };
        let e2 = same("e2", inp.need("e2")?)?;
        if inp.need("e2")?.shape() != e1a.shape() {
            bail!(
                "{}: array 'e2' has shape {:?} but 'e1' has {:?}",
                inp.path,
                inp.need("e2")?.shape(),
                e1a.shape()
            );
        }
        let noise_std = same("noise_std", inp.need("noise_std")?)?;
        let mask = match inp.get("mask") {
            Some(m) => Some(same("mask", m)?),
            None => None,
        };
        let cl_theory = if want_theory {
            let ell = inp.need("ell")?;
            let cl = inp.need("cl_theory")?;
            if ell.ndim() != 1 || cl.ndim() != 2 || cl.shape()[1] != ell.len() {
                bail!(
                    "{}: 'cl_theory' must be [n_pairs, len(ell)], got {:?} with {} ell",
                    inp.path,
                    cl.shape(),
                    ell.len()
                );
            }
            let rows: Vec<Vec<f64>> = cl
                .outer_iter()
                .map(|r| r.iter().copied().collect())
                .collect();
            let t = ClMatrixTable::new(ell.iter().copied().collect(), rows)
                .map_err(|e| anyhow!("{}: 'cl_theory': {e}", inp.path))?;
            if t.n_bins() != nb {
                bail!(
                    "{}: 'cl_theory' describes {} bins but 'e1' has {nb}",
                    inp.path,
                    t.n_bins()
                );
            }
            Some(t)
        } else {
            None
        };
        Ok(Self {
            source: inp.path.clone(),
            npix: n,
            e1,
            e2,
            noise_std,
            mask,
            pixel_arcmin: inp.pixel_arcmin,
            cl_theory,
            single_map: e1a.ndim() == 2,
        })
    }
}

/// The reconstructed maps, as written: `(name, shape, values)` in order,
/// and what the samplers report.
pub struct MassMaps {
    /// `kappa_e`, `kappa_b` (ks, wiener) or `kappa_mean` (diffusion), then
    /// `kappa_std` and `samples` (wiener, diffusion).
    pub arrays: Vec<(&'static str, Vec<usize>, Vec<f64>)>,
    /// The pixel size used, arcmin (None: KS without smoothing and no scale given).
    pub pixel_arcmin: Option<f64>,
    /// Diffusion: the chains ran in antithetic pairs.
    pub antithetic: bool,
    /// Diffusion with annealed HMC: the mean Metropolis acceptance, per bin.
    pub acceptance: Vec<f64>,
}

impl MassMaps {
    /// The array called `name`.
    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.arrays
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, v)| v.as_slice())
    }
}

/// `cosmodiff massmap`: read the shear maps, reconstruct, write `.npz` or `.fits`.
pub fn run(a: &Settings) -> Result<()> {
    let out_ext = a
        .out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !["npz", "fits", "fit"].contains(&out_ext.as_str()) {
        bail!(
            "{}: unknown output format (use .npz or .fits)",
            a.out.display()
        );
    }
    a.validate()?;
    crate::output::refuse_overwriting_inputs("--out", &a.out, &[("--input", &a.input)])?;
    let inp = read_input(&a.input)?;
    let shear = ShearMaps::from_input(&inp, a.cl_theory)?;
    let result = reconstruct(a, &shear)?;
    let pix = result.pixel_arcmin;
    if out_ext == "npz" {
        let mut z = Npz::new();
        for (name, shape, data) in result.arrays {
            z.add(name, &shape, data)?;
        }
        if let Some(p) = pix {
            z.add("pixel_arcmin", &[], vec![p])?;
        }
        z.write(&a.out)?;
    } else {
        let imgs: Vec<FitsImage> = result
            .arrays
            .into_iter()
            .map(|(name, shape, data)| FitsImage::new(&name.to_ascii_uppercase(), shape, data, pix))
            .collect();
        crate::output::write_via(&a.out, |t| write_fits(t, &imgs).map_err(|e| anyhow!("{e}")))?;
    }
    log::info!("wrote {}", a.out.display());
    Ok(())
}

/// Convergence maps from shear maps, each bin separately, by the method and
/// options of `a` (its `input` and `out` are not used): Kaiser-Squires,
/// Wiener filter with posterior samples, or posterior samples under a
/// learned score prior. The one implementation behind `cosmodiff massmap`
/// and the Python `massmap_*` functions.
pub fn reconstruct(a: &Settings, shear: &ShearMaps) -> Result<MassMaps> {
    a.validate()?;
    let src = &shear.source;
    let n = shear.npix;
    let nb = shear.e1.len();
    let noise = &shear.noise_std;
    if nb == 0
        || [&shear.e2, noise].iter().any(|v| v.len() != nb)
        || shear.mask.as_ref().is_some_and(|m| m.len() != nb)
    {
        bail!("{src}: e1, e2, noise_std (and mask) need one map per bin, at least one bin");
    }
    if a.cl_theory && shear.cl_theory.is_none() {
        bail!("{src}: --cl-theory needs the theory spectra ('ell', 'cl_theory')");
    }
    let prior = if a.method == Method::Diffusion {
        Some(load_prior(a.prior.as_deref())?)
    } else {
        None
    };
    let mut pix = a.pixel_arcmin.or(shear.pixel_arcmin);
    if let Some(p) = &prior {
        let c = &p.config;
        if n != c.side {
            bail!(
                "{src}: maps are {n}x{n} pixels but the diffusion prior was trained on {}x{} maps; train one for this size with `cosmodiff prior train`",
                c.side,
                c.side
            );
        }
        match pix {
            Some(v) if !(((v - c.pixel_arcmin) / c.pixel_arcmin).abs() <= 1e-6) => bail!(
                "{src}: pixel_arcmin = {v} but the diffusion prior was trained on {} arcmin pixels",
                c.pixel_arcmin
            ),
            Some(_) => {}
            None => {
                log::info!(
                    "no pixel scale in the input: using the prior's {} arcmin",
                    c.pixel_arcmin
                );
                pix = Some(c.pixel_arcmin);
            }
        }
    }
    let need_pix = a.method == Method::Wiener || a.smoothing_arcmin > 0.0;
    // the flag, or the input's value, whichever gave the pixel size
    let pix_source = if a.pixel_arcmin.is_some() {
        "--pixel-arcmin".to_string()
    } else {
        src.to_string()
    };
    let grid = match pix {
        Some(p) => Grid2::new(n, p).map_err(|e| anyhow!("{pix_source}: {e}"))?,
        None if need_pix => bail!("{src}: no 'pixel_arcmin' in the input; pass --pixel-arcmin"),
        None => Grid2::new(n, 1.0).map_err(|e| anyhow!("{src}: {e}"))?,
    };
    let theory = if a.cl_theory {
        shear.cl_theory.as_ref()
    } else {
        None
    };

    let op = ShearOp::new(grid);
    let mut ke_all = vec![];
    let mut kb_all = vec![];
    let mut std_all = vec![];
    let mut samples_all = vec![];
    let mut antithetic = false;
    let mut acceptance = vec![];
    for b in 0..nb {
        let ctx = |e: cosmodiff_lensing::LensingError| anyhow!("{src}: bin {b}: {e}");
        let m = shear.mask.as_ref().map(|m| m[b].as_slice());
        let w = cosmodiff_lensing::noise::inverse_variance(&noise[b], m).map_err(ctx)?;
        if !w.iter().any(|&v| v > 0.0) {
            bail!("{src}: bin {b}: no observed pixels (mask all 0 or noise_std all inf)");
        }
        // Zero unobserved pixels (they may hold NaN).
        let g1: Vec<f64> = shear.e1[b]
            .iter()
            .zip(&w)
            .map(|(g, w)| if *w > 0.0 { *g } else { 0.0 })
            .collect();
        let g2: Vec<f64> = shear.e2[b]
            .iter()
            .zip(&w)
            .map(|(g, w)| if *w > 0.0 { *g } else { 0.0 })
            .collect();
        if let Some(i) = g1.iter().chain(&g2).position(|v| !v.is_finite()) {
            bail!(
                "{src}: bin {b}: non-finite shear in observed pixel {}",
                i % (n * n)
            );
        }
        match a.method {
            Method::Ks => {
                let (ke, kb) = op
                    .kaiser_squires_smoothed(&g1, &g2, a.smoothing_arcmin)
                    .map_err(ctx)?;
                ke_all.push(ke);
                kb_all.push(kb);
            }
            Method::Wiener => {
                let prior: ClTable = match theory {
                    Some(t) => t.pair(b, b).clone(),
                    None => estimate_prior_from_shear(grid, &g1, &g2, &noise[b], m).map_err(ctx)?,
                };
                let wf = Wiener::from_cl(grid, &prior, &noise[b], m).map_err(ctx)?;
                let solve = |d1: &[f64], d2: &[f64]| match a.solver.unwrap_or(Solver::Cg) {
                    Solver::Cg => wf.cg(d1, d2, a.tol(), 20_000),
                    Solver::Messenger => wf.messenger(
                        d1,
                        d2,
                        &MessengerOpts {
                            tol: a.tol(),
                            ..Default::default()
                        },
                    ),
                };
                let ke = solve(&g1, &g2).map_err(ctx)?;
                log::info!(
                    "bin {b}: Wiener E solved in {} iterations (residual {:.2e})",
                    ke.iterations,
                    ke.residual
                );
                let (r1, r2) = rotate_b_to_e(&g1, &g2);
                let kb = solve(&r1, &r2).map_err(ctx)?;
                let s = wf
                    .samples(
                        &ke.kappa,
                        a.samples(),
                        a.seed().wrapping_add(b as u64),
                        a.tol(),
                    )
                    .map_err(ctx)?;
                std_all.push(pixel_std(&s).map_err(ctx)?);
                ke_all.push(ke.kappa);
                kb_all.push(kb.kappa);
                samples_all.push(s.concat());
            }
            Method::Diffusion => {
                let model = prior.as_ref().expect("loaded above");
                let sampler = a.sampler.unwrap_or(DiffusionSampler::ReverseSde);
                let settings = sampler.settings(
                    a.steps(),
                    a.samples(),
                    a.seed().wrapping_add(b as u64),
                    !a.independent,
                );
                let post =
                    map_posterior(model, grid, &g1, &g2, &noise[b], m, &settings).map_err(ctx)?;
                antithetic = post.antithetic;
                if sampler == DiffusionSampler::AnnealedHmc {
                    acceptance.push(post.acceptance);
                }
                ke_all.push(post.mean);
                std_all.push(post.std);
                samples_all.push(post.samples.concat());
            }
        }
    }
    // Output shapes follow the input: [n, n] or [n_bins, n, n]; the diffusion
    // output of a single bin is always [n, n] / samples [N, n, n].
    let single = shear.single_map || (a.method == Method::Diffusion && nb == 1);
    let map_shape: Vec<usize> = if single { vec![n, n] } else { vec![nb, n, n] };
    let samp_shape: Vec<usize> = if single {
        vec![a.samples(), n, n]
    } else {
        vec![nb, a.samples(), n, n]
    };
    let mut arrays: Vec<(&str, Vec<usize>, Vec<f64>)> = if a.method == Method::Diffusion {
        vec![("kappa_mean", map_shape.clone(), ke_all.concat())]
    } else {
        vec![
            ("kappa_e", map_shape.clone(), ke_all.concat()),
            ("kappa_b", map_shape.clone(), kb_all.concat()),
        ]
    };
    if a.method != Method::Ks {
        arrays.push(("kappa_std", map_shape.clone(), std_all.concat()));
        arrays.push(("samples", samp_shape, samples_all.concat()));
    }
    Ok(MassMaps {
        arrays,
        pixel_arcmin: pix,
        antithetic,
        acceptance,
    })
}

/// The score prior from `--prior DIR`, or the shipped default.
fn load_prior(dir: Option<&Path>) -> Result<ScoreModel> {
    match dir {
        Some(d) => ScoreModel::load(d).map_err(|e| anyhow!("--prior: {e}")),
        None => ScoreModel::default_model().map_err(|e| anyhow!("default diffusion prior: {e}")),
    }
}

impl DiffusionSampler {
    /// `--independent` changes the reverse SDE only (annealed-HMC chains are
    /// always independent); shared by `massmap` and `prior evaluate`.
    pub fn check_independent(self, independent: bool) -> Result<()> {
        if independent && self == DiffusionSampler::AnnealedHmc {
            bail!("--independent applies to --sampler reverse-sde only (annealed-HMC chains are always independent)");
        }
        Ok(())
    }

    pub fn settings(
        self,
        steps: usize,
        chains: usize,
        seed: u64,
        antithetic: bool,
    ) -> PosteriorSettings {
        PosteriorSettings {
            sampler: match self {
                DiffusionSampler::ReverseSde => Sampler::ReverseSde,
                DiffusionSampler::AnnealedHmc => Sampler::AnnealedHmc,
            },
            steps,
            chains,
            seed,
            antithetic,
            progress: !crate::report::is_quiet(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmodiff_field::grf2::Grf2;

    fn write_input(path: &Path, n: usize, with_pix: bool) -> Vec<f64> {
        let grid = Grid2::new(n, 2.0).unwrap();
        let ell: Vec<f64> = (0..100).map(|i| 20.0 * 1.07f64.powi(i)).collect();
        let cl: Vec<f64> = ell
            .iter()
            .map(|l| 1e-9 * (l / 1000.0f64).powf(-1.2))
            .collect();
        let t = ClTable::new(ell.clone(), cl.clone()).unwrap();
        let kappa = Grf2::from_cl(grid, &t).unwrap().sample(1);
        let op = ShearOp::new(grid);
        let (g1, g2) = op.forward(&kappa, None).unwrap();
        let sig = 0.26 / (30.0f64 * 4.0).sqrt();
        let e1: Vec<f64> = g1
            .iter()
            .zip(cosmodiff_field::grf2::white_noise(n * n, 2))
            .map(|(g, w)| g + sig * w)
            .collect();
        let mut e2: Vec<f64> = g2
            .iter()
            .zip(cosmodiff_field::grf2::white_noise(n * n, 3))
            .map(|(g, w)| g + sig * w)
            .collect();
        let mut mask = vec![1.0; n * n];
        for i in 0..n {
            mask[5 * n + i] = 0.0;
            e2[5 * n + i] = f64::NAN; // masked pixels may hold NaN
        }
        let mut z = Npz::new();
        z.add("e1", &[n, n], e1).unwrap();
        z.add("e2", &[n, n], e2).unwrap();
        z.add("noise_std", &[n, n], vec![sig; n * n]).unwrap();
        z.add("mask", &[n, n], mask).unwrap();
        z.add_1d("ell", &ell).unwrap();
        z.add("cl_theory", &[1, ell.len()], cl).unwrap();
        if with_pix {
            z.add("pixel_arcmin", &[], vec![2.0]).unwrap();
        }
        z.write_unchecked(path).unwrap(); // masked pixels hold NaN
        kappa
    }

    fn args(method: Method, input: &Path, out: &Path) -> Settings {
        Settings {
            method,
            input: input.into(),
            out: out.into(),
            smoothing_arcmin: 0.0,
            samples: (method != Method::Ks).then_some(4),
            prior: None,
            sampler: None,
            steps: None,
            seed: None,
            independent: false,
            cl_theory: false,
            pixel_arcmin: None,
            solver: None,
            tol: None,
        }
    }

    fn read(path: &Path, name: &str) -> ArrayD<f64> {
        let mut z = ndarray_npy::NpzReader::new(std::fs::File::open(path).unwrap()).unwrap();
        z.by_name(name).unwrap()
    }

    #[test]
    fn ks_and_wiener_write_the_documented_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let inp = dir.path().join("in.npz");
        let n = 32;
        write_input(&inp, n, true);
        let out = dir.path().join("ks.npz");
        let mut a = args(Method::Ks, &inp, &out);
        a.smoothing_arcmin = 1.0;
        run(&a).unwrap();
        assert_eq!(read(&out, "kappa_e").shape(), &[n, n]);
        assert_eq!(read(&out, "kappa_b").shape(), &[n, n]);
        let out = dir.path().join("wf.npz");
        let mut a = args(Method::Wiener, &inp, &out);
        a.cl_theory = true;
        a.samples = Some(3);
        run(&a).unwrap();
        assert_eq!(read(&out, "samples").shape(), &[3, n, n]);
        let sd = read(&out, "kappa_std");
        assert!(sd.iter().all(|v| v.is_finite() && *v > 0.0));
        // Messenger solver and data-estimated prior; FITS output.
        let out = dir.path().join("wf.fits");
        let mut a = args(Method::Wiener, &inp, &out);
        a.solver = Some(Solver::Messenger);
        run(&a).unwrap();
        let h = read_fits(&out).unwrap();
        let names: Vec<_> = h.iter().map(|x| x.name.clone().unwrap()).collect();
        assert_eq!(names, ["KAPPA_E", "KAPPA_B", "KAPPA_STD", "SAMPLES"]);
        assert_eq!(h[0].pixel_arcmin, Some(2.0));
    }

    #[test]
    fn errors_are_one_line_and_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let inp = dir.path().join("nopix.npz");
        write_input(&inp, 16, false);
        let out = dir.path().join("o.npz");
        let e = format!("{:#}", run(&args(Method::Wiener, &inp, &out)).unwrap_err());
        assert!(
            e.contains("nopix.npz") && e.contains("pixel_arcmin") && !e.contains('\n'),
            "{e}"
        );
        let e = format!(
            "{:#}",
            run(&args(Method::Diffusion, &inp, &out)).unwrap_err()
        );
        assert!(e.contains("16x16") && e.contains("64x64"), "{e}");
        let e = format!(
            "{:#}",
            run(&args(Method::Ks, &dir.path().join("none.npz"), &out)).unwrap_err()
        );
        assert!(e.contains("none.npz"), "{e}");
        let mut a = args(Method::Wiener, &inp, &out);
        a.cl_theory = true;
        a.pixel_arcmin = Some(2.0);
        a.samples = Some(1);
        assert!(format!("{:#}", run(&a).unwrap_err()).contains("--samples"));
        // KS without a pixel scale works (the operator is scale-free).
        run(&args(Method::Ks, &inp, &out)).unwrap();
        // Nothing observed: an error for every method, not a map of zeros.
        let blind = dir.path().join("blind.npz");
        let n = 16;
        let mut z = Npz::new();
        for name in ["e1", "e2"] {
            z.add(name, &[n, n], vec![0.01; n * n]).unwrap();
        }
        z.add("noise_std", &[n, n], vec![0.02; n * n]).unwrap();
        z.add("mask", &[n, n], vec![0.0; n * n]).unwrap();
        z.write(&blind).unwrap();
        let e = format!("{:#}", run(&args(Method::Ks, &blind, &out)).unwrap_err());
        assert!(e.contains("no observed pixels"), "{e}");
        // No bins at all.
        let empty = dir.path().join("empty.npz");
        let mut z = Npz::new();
        for name in ["e1", "e2", "noise_std"] {
            z.add(name, &[0, n, n], vec![]).unwrap();
        }
        z.write(&empty).unwrap();
        let e = format!("{:#}", run(&args(Method::Ks, &empty, &out)).unwrap_err());
        assert!(e.contains("at least one bin"), "{e}");
        // FITS maps of one survey with different pixel scales.
        let mixed = dir.path().join("mixed.fits");
        let hdu =
            |name: &str, pix: f64| FitsImage::new(name, vec![n, n], vec![0.01; n * n], Some(pix));
        write_fits(
            &mixed,
            &[hdu("E1", 2.0), hdu("E2", 3.0), hdu("NOISE_STD", 2.0)],
        )
        .unwrap();
        let e = format!("{:#}", run(&args(Method::Ks, &mixed, &out)).unwrap_err());
        assert!(e.contains("e2") && e.contains("3 arcmin"), "{e}");
    }

    /// Options the chosen method would ignore are refused before any input
    /// is read, naming the option and the methods it belongs to.
    #[test]
    fn options_of_another_method_are_refused() {
        let (inp, out) = (Path::new("absent.npz"), Path::new("o.npz"));
        let refused = |a: Settings, want: &str| {
            let e = format!("{:#}", run(&a).unwrap_err());
            assert!(e.contains(want), "{e}");
        };
        let mut a = args(Method::Ks, inp, out);
        a.samples = Some(8);
        refused(a, "--samples applies to --method wiener and diffusion only");
        let mut a = args(Method::Ks, inp, out);
        a.seed = Some(1);
        refused(a, "--seed applies");
        let mut a = args(Method::Diffusion, inp, out);
        a.solver = Some(Solver::Messenger);
        refused(a, "--solver applies to --method wiener only");
        let mut a = args(Method::Diffusion, inp, out);
        a.tol = Some(1e-3);
        refused(a, "--tol applies");
        let mut a = args(Method::Wiener, inp, out);
        a.steps = Some(50);
        refused(a, "--steps applies to --method diffusion only");
        let mut a = args(Method::Wiener, inp, out);
        a.sampler = Some(DiffusionSampler::AnnealedHmc);
        refused(a, "--sampler applies");
        let mut a = args(Method::Wiener, inp, out);
        a.independent = true;
        refused(a, "--independent applies");
        let mut a = args(Method::Diffusion, inp, out);
        a.independent = true;
        a.sampler = Some(DiffusionSampler::AnnealedHmc);
        refused(a, "--sampler reverse-sde only");
        let mut a = args(Method::Wiener, inp, out);
        a.smoothing_arcmin = 2.0;
        refused(a, "--smoothing-arcmin applies to --method ks only");
        // the options of the method itself pass the check and reach the input
        let mut a = args(Method::Diffusion, inp, out);
        (a.steps, a.seed, a.independent) = (Some(50), Some(2), true);
        refused(a, "absent.npz");
    }
}
