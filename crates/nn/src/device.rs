//! The device networks run on, chosen at run time for the whole process
//! (`cosmodiff --device`, the `COSMODIFF_DEVICE` environment variable,
//! `cosmodiff.set_device` in Python).
//!
//! burn 0.22 dispatches every tensor operation on the device it was created
//! on, so one build holds several backends and the choice is a value, not a
//! type: [`default_device`] hands out the selected one and every network,
//! training loop and sampler of cosmodiff creates its tensors there.
//!
//! | name | backend | compiled with |
//! |---|---|---|
//! | `cpu` (default) | burn `flex` + cosmodiff's fused CPU kernels | always |
//! | `flex` | burn `flex`, burn's composed operations only | always (benchmarks) |
//! | `cuda`, `cuda:N` | burn `cuda` (cubecl), GPU `N` | feature `cuda` |
//! | `wgpu` | burn `wgpu` (cubecl; Vulkan, Metal or DX12, also Mesa's lavapipe on a CPU) | feature `wgpu` |
//! | `ndarray` | burn `ndarray` with the system OpenBLAS | feature `ndarray` (benchmarks) |
//!
//! Selecting a device runs one small operation on it, so a build without
//! CUDA's driver, or a machine without a GPU adapter, is refused up front
//! with a one-line error instead of failing inside a training run.

use std::sync::RwLock;

use burn::tensor::{Device, Tensor};

use crate::error::NnError;

/// A device a network can run on (see the module table).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceKind {
    /// burn `flex` with the fused kernels of this crate.
    #[default]
    Cpu,
    /// burn `flex` with burn's composed operations only.
    Flex,
    /// A CUDA GPU by index.
    Cuda(usize),
    /// The default wgpu adapter.
    Wgpu,
    /// burn `ndarray` (system BLAS).
    NdArray,
}

impl DeviceKind {
    /// Parse a device name: `cpu`, `flex`, `cuda`, `cuda:N`, `wgpu`,
    /// `ndarray` (case-insensitive). Names of backends this build lacks
    /// are refused with the list of those it has.
    pub fn parse(name: &str) -> Result<Self, NnError> {
        let lower = name.trim().to_ascii_lowercase();
        let kind = match lower.as_str() {
            "cpu" => Self::Cpu,
            "flex" => Self::Flex,
            "cuda" => Self::Cuda(0),
            "wgpu" => Self::Wgpu,
            "ndarray" => Self::NdArray,
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(i)) => Self::Cuda(i),
                _ => {
                    return Err(NnError::Device(format!(
                        "unknown device '{name}'; this build supports: {}",
                        compiled().join(", ")
                    )))
                }
            },
        };
        if !compiled().contains(&kind.family()) {
            return Err(NnError::Device(format!(
                "device '{name}' is not compiled into this build (rebuild with --features {}); this build supports: {}",
                kind.family(),
                compiled().join(", ")
            )));
        }
        Ok(kind)
    }

    /// The backend's name without a device index (`cuda` for `cuda:1`).
    pub fn family(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Flex => "flex",
            Self::Cuda(_) => "cuda",
            Self::Wgpu => "wgpu",
            Self::NdArray => "ndarray",
        }
    }

    /// The burn device. Only called for kinds [`DeviceKind::parse`]
    /// accepted, so a backend missing from the build falls back to `flex`.
    fn device(self) -> Device {
        match self {
            Self::Cpu | Self::Flex => Device::flex(),
            #[cfg(feature = "cuda")]
            Self::Cuda(i) => Device::cuda(i),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)] // burn-ndarray is kept here as a benchmark baseline
            Self::NdArray => Device::ndarray(),
            #[allow(unreachable_patterns)]
            _ => Device::flex(),
        }
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cuda(i) if *i > 0 => write!(f, "cuda:{i}"),
            _ => f.write_str(self.family()),
        }
    }
}

/// The backends compiled into this build, by name.
pub fn compiled() -> Vec<&'static str> {
    let mut names = vec!["cpu", "flex"];
    if cfg!(feature = "cuda") {
        names.push("cuda");
    }
    if cfg!(feature = "wgpu") {
        names.push("wgpu");
    }
    if cfg!(feature = "ndarray") {
        names.push("ndarray");
    }
    names
}

/// The selection; `None` until [`select`] or the first [`selected`], which
/// reads `COSMODIFF_DEVICE`.
static SELECTED: RwLock<Option<DeviceKind>> = RwLock::new(None);

/// Make `kind` the device of every network created from now on, after
/// checking that it runs (one small reduction on it). Tensors and networks
/// made before stay where they are.
pub fn select(kind: DeviceKind) -> Result<(), NnError> {
    probe(kind)?;
    *SELECTED.write().unwrap_or_else(|e| e.into_inner()) = Some(kind);
    Ok(())
}

/// [`DeviceKind::parse`] then [`select`].
pub fn select_name(name: &str) -> Result<DeviceKind, NnError> {
    let kind = DeviceKind::parse(name)?;
    select(kind)?;
    Ok(kind)
}

/// The device selected by [`select`]; until then the one named by the
/// environment variable `COSMODIFF_DEVICE` if it parses and starts (so
/// `COSMODIFF_DEVICE=wgpu cargo test` runs the tests there; the front ends
/// refuse a bad value in words before this), else `cpu`.
pub fn selected() -> DeviceKind {
    if let Some(kind) = *SELECTED.read().unwrap_or_else(|e| e.into_inner()) {
        return kind;
    }
    // probed outside the lock: a probe's operations may ask for the device
    let kind = match std::env::var("COSMODIFF_DEVICE") {
        Err(_) => DeviceKind::Cpu,
        Ok(name) => match DeviceKind::parse(&name).and_then(|k| probe(k).map(|()| k)) {
            Ok(kind) => kind,
            Err(e) => {
                eprintln!("warning: COSMODIFF_DEVICE: {e}; using cpu");
                DeviceKind::Cpu
            }
        },
    };
    *SELECTED
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert(kind)
}

/// The device networks run on: the one [`select`]ed, burn's `flex` CPU
/// backend with the fused kernels by default.
pub fn default_device() -> Device {
    selected().device()
}

/// Whether the fused CPU kernels may run: not when `flex` was selected to
/// measure burn's composed operations.
pub(crate) fn kernels_enabled() -> bool {
    selected() != DeviceKind::Flex
}

/// Run `sum(ones(4)) == 4` on `kind`; a backend that cannot start (no
/// driver, no adapter) panics inside burn, which is caught and reported in
/// one line.
fn probe(kind: DeviceKind) -> Result<(), NnError> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| {
        let t = Tensor::<1>::ones([4], &kind.device());
        t.sum().into_scalar::<f32>()
    });
    std::panic::set_hook(previous);
    match result {
        Ok(4.0) => Ok(()),
        Ok(v) => Err(NnError::Device(format!(
            "device '{kind}' computed sum(ones(4)) = {v}; it is not usable"
        ))),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "it failed to start".into());
            let first = msg.lines().next().unwrap_or_default().to_string();
            Err(NnError::Device(format!(
                "device '{kind}' is not available on this machine ({first}); this build supports: {}",
                compiled().join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_or_missing_backends_are_refused() {
        assert_eq!(DeviceKind::parse("CPU").unwrap(), DeviceKind::Cpu);
        assert_eq!(DeviceKind::parse(" flex ").unwrap(), DeviceKind::Flex);
        let err = DeviceKind::parse("tpu").unwrap_err().to_string();
        assert!(err.contains("unknown device 'tpu'"), "{err}");
        assert!(err.contains("this build supports: cpu, flex"), "{err}");
        assert!(DeviceKind::parse("cuda:x").is_err());
        if cfg!(feature = "cuda") {
            assert_eq!(DeviceKind::parse("cuda:2").unwrap(), DeviceKind::Cuda(2));
        } else {
            let err = DeviceKind::parse("cuda").unwrap_err().to_string();
            assert!(err.contains("not compiled into this build"), "{err}");
            assert!(err.contains("--features cuda"), "{err}");
        }
        if !cfg!(feature = "wgpu") {
            assert!(DeviceKind::parse("wgpu").is_err());
        }
        assert_eq!(DeviceKind::Cuda(1).to_string(), "cuda:1");
        assert_eq!(DeviceKind::Cuda(0).to_string(), "cuda");
    }

    #[test]
    fn the_cpu_backends_pass_the_probe() {
        probe(DeviceKind::Cpu).unwrap();
        probe(DeviceKind::Flex).unwrap();
    }
}
