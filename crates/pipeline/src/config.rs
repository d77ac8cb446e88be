//! TOML config sections shared by the commands (`[cosmology]`, `[options]`,
//! `[[tracer]]`, `[cl]`, ...), with errors that name the file, line and key.

// The input layer: no panic reachable from a file's contents.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use anyhow::{anyhow, bail, Context, Result};
use cosmodiff_cosmo::nz::{Nz, RedshiftDistribution};
use cosmodiff_cosmo::tracers::TracerKind;
use cosmodiff_cosmo::{ClOptions, Cosmology, NonLinear, Tracer, TransferFunction};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Read and parse a TOML file into `T`; errors are one line: `FILE:LINE: message`.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    parse(&text, path)
}

pub fn parse<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    toml::from_str::<T>(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let msg = in_words(&e.message().replace('\n', " "));
        match line {
            Some(l) => anyhow!("{}:{l}: {msg}", path.display()),
            None => anyhow!("{}: {msg}", path.display()),
        }
    })
}

/// serde's type names in a parse error (`expected struct PowerSection`,
/// `expected usize`) in the words of a config file.
fn in_words(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find("expected ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + "expected ".len()..];
        let (word, after) = match tail.split_once(' ') {
            Some((w, a)) => (w, Some(a)),
            None => (tail, None),
        };
        let word_end = |w: &str| w.trim_end_matches([',', '.', ';']).len();
        let (what, consumed) = match word {
            "struct" | "enum" => {
                let name = after.unwrap_or("");
                let n = name.find([' ', ',', '.']).unwrap_or(name.len());
                let phrase = if word == "struct" {
                    "a table"
                } else {
                    "one of the allowed names"
                };
                (phrase, word.len() + 1 + n)
            }
            w => {
                let core = &w[..word_end(w)];
                let phrase = match core {
                    "usize" | "u64" | "u32" | "u16" | "u8" => "a non-negative integer",
                    "i64" | "i32" => "an integer",
                    "f64" | "f32" => "a number",
                    "bool" => "true or false",
                    _ => "",
                };
                if phrase.is_empty() {
                    out.push_str("expected ");
                    rest = tail;
                    continue;
                }
                (phrase, core.len())
            }
        };
        out.push_str("expected ");
        out.push_str(what);
        rest = &tail[consumed.min(tail.len())..];
    }
    out.push_str(rest);
    out
}

/// `[cosmology]`: any key omitted takes the Planck 2015 value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct CosmologySection {
    pub Omega_c: Option<f64>,
    pub Omega_b: Option<f64>,
    pub h: Option<f64>,
    pub n_s: Option<f64>,
    pub sigma8: Option<f64>,
    pub Omega_k: Option<f64>,
    pub w0: Option<f64>,
    pub wa: Option<f64>,
    /// Start from "planck15" (default) or "planck18".
    pub preset: Option<String>,
}

impl CosmologySection {
    pub fn build(&self) -> Result<Cosmology> {
        let mut c = match self.preset.as_deref() {
            None | Some("planck15") => Cosmology::planck15(),
            Some("planck18") => Cosmology::planck18(),
            Some(p) => bail!("[cosmology] preset = \"{p}\": expected \"planck15\" or \"planck18\""),
        };
        macro_rules! set {
            ($f:ident, $k:ident) => {
                if let Some(v) = self.$k {
                    c.$f = v;
                }
            };
        }
        set!(omega_c, Omega_c);
        set!(omega_b, Omega_b);
        set!(h, h);
        set!(n_s, n_s);
        set!(sigma8, sigma8);
        set!(omega_k, Omega_k);
        set!(w0, w0);
        set!(wa, wa);
        c.validate().map_err(|e| anyhow!("[cosmology] {e}"))?;
        Ok(c)
    }
}

/// `[options]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionsSection {
    pub transfer: Option<String>,
    pub nonlinear: Option<String>,
}

impl OptionsSection {
    pub fn build(&self) -> Result<ClOptions> {
        let mut o = ClOptions::default();
        if let Some(t) = &self.transfer {
            o.transfer = t
                .parse::<TransferFunction>()
                .map_err(|e| anyhow!("[options] {e}"))?;
        }
        if let Some(n) = &self.nonlinear {
            o.nonlinear = n
                .parse::<NonLinear>()
                .map_err(|e| anyhow!("[options] {e}"))?;
        }
        Ok(o)
    }
}

/// `nz = { kind = "smail", a, b, z0 }` and friends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NzSpec {
    pub kind: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub z0: Option<f64>,
    pub sigma: Option<f64>,
    /// Upper end of the support for smail/gaussian (default 5).
    pub zmax: Option<f64>,
    /// Two columns (z, n) or three (z_lo, z_hi, count), relative to the config file.
    pub file: Option<PathBuf>,
    /// Photo-z shift dz: n(z) -> n(z - dz).
    pub shift: Option<f64>,
}

impl NzSpec {
    pub fn build(&self, base: &Path, ctx: &str) -> Result<Nz> {
        let need = |v: Option<f64>, k: &str| {
            v.ok_or_else(|| anyhow!("{ctx} nz: kind = \"{}\" needs key '{k}'", self.kind))
        };
        // keys of another kind would be silently ignored: refuse them
        let allowed: &[&str] = match self.kind.as_str() {
            "smail" => &["a", "b", "z0", "zmax", "shift"],
            "gaussian" => &["z0", "sigma", "zmax", "shift"],
            "delta" => &["z0", "shift"],
            "histogram" | "tabulated" => &["file", "shift"],
            k => bail!("{ctx} nz: kind = \"{k}\": expected \"smail\", \"gaussian\", \"delta\" or \"histogram\""),
        };
        let given = [
            ("a", self.a.is_some()),
            ("b", self.b.is_some()),
            ("z0", self.z0.is_some()),
            ("sigma", self.sigma.is_some()),
            ("zmax", self.zmax.is_some()),
            ("file", self.file.is_some()),
            ("shift", self.shift.is_some()),
        ];
        if let Some((k, _)) = given.iter().find(|(k, set)| *set && !allowed.contains(k)) {
            bail!(
                "{ctx} nz: kind = \"{}\" does not take key '{k}' (it takes {})",
                self.kind,
                allowed.join(", ")
            );
        }
        let zmax = self.zmax.unwrap_or(5.0);
        let d = match self.kind.as_str() {
            "smail" => RedshiftDistribution::Smail {
                a: need(self.a, "a")?,
                b: need(self.b, "b")?,
                z0: need(self.z0, "z0")?,
                zmax,
            },
            "gaussian" => RedshiftDistribution::Gaussian {
                z0: need(self.z0, "z0")?,
                sigma: need(self.sigma, "sigma")?,
                zmax,
            },
            "delta" => RedshiftDistribution::Delta {
                z0: need(self.z0, "z0")?,
            },
            "histogram" | "tabulated" => {
                let f = self.file.as_ref().ok_or_else(|| {
                    anyhow!("{ctx} nz: kind = \"{}\" needs key 'file'", self.kind)
                })?;
                let p = if f.is_absolute() {
                    f.clone()
                } else {
                    base.join(f)
                };
                RedshiftDistribution::from_file(&p).map_err(|e| anyhow!("{ctx} nz: {e}"))?
            }
            _ => unreachable!("kind checked above"),
        };
        Nz::new(d, self.shift.unwrap_or(0.0)).map_err(|e| anyhow!("{ctx} nz: {e}"))
    }
}

/// One `[[tracer]]` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracerSpec {
    pub kind: String,
    pub nz: NzSpec,
    pub ia_amplitude: Option<f64>,
    pub m_bias: Option<f64>,
    pub sigma_e: Option<f64>,
    pub gals_per_arcmin2: Option<f64>,
    pub bias: Option<f64>,
}

impl TracerSpec {
    pub fn build(&self, base: &Path, i: usize) -> Result<Tracer> {
        let ctx = format!("[[tracer]] #{}", i + 1);
        let nz = self.nz.build(base, &ctx)?;
        let n = self.gals_per_arcmin2.unwrap_or(10.0);
        let t = match self.kind.as_str() {
            "weak_lensing" => {
                if self.bias.is_some() {
                    bail!("{ctx}: 'bias' applies to kind = \"number_counts\" only");
                }
                Tracer {
                    nz,
                    kind: TracerKind::WeakLensing {
                        ia_amplitude: self.ia_amplitude.unwrap_or(0.0),
                        m_bias: self.m_bias.unwrap_or(0.0),
                        sigma_e: self.sigma_e.unwrap_or(0.26),
                    },
                    gals_per_arcmin2: n,
                }
            }
            "number_counts" => {
                if self.ia_amplitude.is_some() || self.m_bias.is_some() || self.sigma_e.is_some() {
                    bail!("{ctx}: ia_amplitude, m_bias and sigma_e apply to kind = \"weak_lensing\" only");
                }
                Tracer::number_counts(nz, self.bias.unwrap_or(1.0), n)
            }
            k => bail!("{ctx}: kind = \"{k}\": expected \"weak_lensing\" or \"number_counts\""),
        };
        t.validate().map_err(|e| anyhow!("{ctx}: {e}"))?;
        Ok(t)
    }
}

pub fn build_tracers(specs: &[TracerSpec], base: &Path) -> Result<Vec<Tracer>> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| s.build(base, i))
        .collect()
}

/// `[cl]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClSection {
    pub ell: Vec<f64>,
    pub f_sky: Option<f64>,
}

impl ClSection {
    pub fn check(&self) -> Result<()> {
        if self.ell.is_empty() || self.ell.iter().any(|l| !(*l >= 2.0 && l.is_finite())) {
            bail!("[cl] ell: expected a non-empty list of multipoles >= 2");
        }
        if let Some(f) = self.f_sky {
            if !(f > 0.0 && f <= 1.0) {
                bail!("[cl] f_sky = {f}: expected a value in (0, 1]");
            }
        }
        Ok(())
    }
}

/// Folder of the config file (relative paths inside it resolve there).
pub fn base_dir(path: &Path) -> PathBuf {
    path.parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        })
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_use_the_words_of_a_config_file() {
        assert_eq!(
            in_words("invalid type: integer `1`, expected struct PowerSection"),
            "invalid type: integer `1`, expected a table"
        );
        assert_eq!(
            in_words("invalid type: string \"x\", expected usize"),
            "invalid type: string \"x\", expected a non-negative integer"
        );
        assert_eq!(
            in_words("invalid value: integer `-1`, expected u64, or so"),
            "invalid value: integer `-1`, expected a non-negative integer, or so"
        );
        assert_eq!(in_words("expected f64"), "expected a number");
        assert_eq!(
            in_words("unknown field `x`, expected one of `a`, `b`"),
            "unknown field `x`, expected one of `a`, `b`"
        );
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct T {
            n: usize,
        }
        let e = parse::<T>("n = -3", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml:1:") && e.contains("non-negative integer"),
            "{e}"
        );
        assert!(!e.contains("usize"), "{e}");
    }
}
