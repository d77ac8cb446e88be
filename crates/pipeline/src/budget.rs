//! Memory budgets: a command estimates its peak memory from its sizes before
//! it allocates anything, and is refused in one line when the estimate does
//! not fit in the memory the machine has free (`MemAvailable` of
//! `/proc/meminfo`), or in the limit given with `--max-memory`.
//!
//! The estimates are models of each command's largest arrays, checked
//! against measured peak resident memory (`/usr/bin/time -v`) in
//! `docs/reliability.md`; they are meant to be within a factor of about 1.5,
//! enough to refuse a run that would be killed for memory, not to plan one to
//! the last megabyte.

use anyhow::{bail, Result};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// `--max-memory` in bytes; 0: the machine's available memory.
static LIMIT: AtomicU64 = AtomicU64::new(0);

/// Set the memory limit (bytes) every later [`check`] uses; `None` returns
/// to the machine's available memory.
pub fn set_max_memory(bytes: Option<u64>) {
    LIMIT.store(bytes.unwrap_or(0), Ordering::Relaxed);
}

/// Parse a memory size: a number with an optional unit `K`, `M`, `G`, `T`
/// (powers of 1024; `KB`, `GiB`, ... accepted) and bytes without one,
/// e.g. `16G`, `512MiB`, `2.5g`.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        anyhow::anyhow!("--max-memory {text:?}: expected a size such as 16G, 512M or 2.5G")
    })?;
    let unit = unit.trim().to_ascii_lowercase();
    let scale = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0_f64.powi(2),
        "g" => 1024.0_f64.powi(3),
        "t" => 1024.0_f64.powi(4),
        _ => bail!("--max-memory {text:?}: unknown unit {unit:?} (use K, M, G or T)"),
    };
    let bytes = value * scale;
    if !(1.0..1.8e19).contains(&bytes) {
        bail!("--max-memory {text:?}: must be a positive size below 16 EiB");
    }
    Ok(bytes as u64)
}

/// Memory a new allocation can get without swapping or being killed, in
/// bytes: the machine's `MemAvailable`, or less under a container or batch
/// system (Slurm) memory limit (cgroup v2 `memory.max` minus
/// `memory.current`, or cgroup v1 `memory.limit_in_bytes` minus
/// `memory.usage_in_bytes`). Linux only.
pub fn available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    let machine = kib.checked_mul(1024)?;
    Some(match cgroup_headroom() {
        Some(c) => machine.min(c),
        None => machine,
    })
}

/// What the process's memory cgroup still allows, if it sets a limit.
fn cgroup_headroom() -> Option<u64> {
    let read = |p: &str| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    // v2: the line "0::/path"; "max" (no limit) does not parse
    if let Some(rel) = own.lines().find_map(|l| l.strip_prefix("0::")) {
        let dir = format!("/sys/fs/cgroup{}", rel.trim_end_matches('/'));
        if let Some(limit) = read(&format!("{dir}/memory.max")) {
            let used = read(&format!("{dir}/memory.current")).unwrap_or(0);
            return Some(limit.saturating_sub(used));
        }
    }
    // v1: the memory controller's line "N:memory:/path"
    let rel = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctl, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctl.split(',').any(|c| c == "memory").then_some(path)
    })?;
    let rel = rel.trim_end_matches('/');
    let dir = [
        format!("/sys/fs/cgroup/memory{rel}"),
        "/sys/fs/cgroup/memory".to_string(),
    ]
    .into_iter()
    .find(|d| Path::new(&format!("{d}/memory.limit_in_bytes")).exists())?;
    let limit = read(&format!("{dir}/memory.limit_in_bytes"))?;
    if limit >= 1 << 60 {
        return None; // v1's "no limit"
    }
    let used = read(&format!("{dir}/memory.usage_in_bytes")).unwrap_or(0);
    Some(limit.saturating_sub(used))
}

/// A size in the units people read: `512 MiB`, `8.6 GiB`.
pub fn human(bytes: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Refuse `what` (e.g. `"pm run with n_mesh = 1024, n_particles = 512"`)
/// when its estimated peak memory `bytes` exceeds `--max-memory` or, without
/// one, the machine's available memory.
pub fn check(what: &str, bytes: f64) -> Result<()> {
    log::info!("{what}: estimated peak memory {}", human(bytes));
    let limit = LIMIT.load(Ordering::Relaxed);
    if limit > 0 {
        if bytes > limit as f64 {
            bail!(
                "{what} needs about {} of memory, more than --max-memory {}: reduce the sizes or raise --max-memory",
                human(bytes),
                human(limit as f64)
            );
        }
    } else if let Some(free) = available() {
        if bytes > free as f64 {
            bail!(
                "{what} needs about {} of memory but this machine has {} available: reduce the sizes (or pass --max-memory SIZE if the estimate is too high)",
                human(bytes),
                human(free as f64)
            );
        }
    }
    reserve(what, bytes)
}

/// Ask the allocator for `bytes` through its fallible path
/// (`try_reserve_exact`) and give them back: a size no allocator can map
/// (beyond the address space, also under a large `--max-memory`) is an
/// error here instead of an abort in the middle of the run. The pages are
/// never touched, so this costs no memory. It is no guard against running
/// out of physical memory: Linux maps far more than it has (measured: 800
/// GiB reserved on a 24 GiB machine), which is what the estimates are for.
fn reserve(what: &str, bytes: f64) -> Result<()> {
    let n = if bytes.is_finite() && bytes >= 0.0 && bytes < usize::MAX as f64 {
        bytes as usize
    } else {
        usize::MAX
    };
    let mut probe: Vec<u8> = Vec::new();
    if probe.try_reserve_exact(n).is_err() {
        bail!(
            "{what} needs about {} of memory, which the system refuses to allocate: reduce the sizes",
            human(bytes)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_no_allocator_serves_are_refused() {
        reserve("a small run", 1e6).unwrap();
        let e = reserve("a huge run", 1e30).unwrap_err().to_string();
        assert!(e.contains("refuses to allocate"), "{e}");
    }

    #[test]
    fn sizes_parse_with_units_and_bad_ones_are_named() {
        assert_eq!(parse_size("16G").unwrap(), 16 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(
            parse_size("2.5g").unwrap(),
            (2.5 * (1u64 << 30) as f64) as u64
        );
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1 kB").unwrap(), 1024);
        for bad in ["", "G", "-1G", "1X", "nan", "1e30"] {
            let e = parse_size(bad).unwrap_err().to_string();
            assert!(e.starts_with("--max-memory"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_run_over_the_limit_is_refused_with_the_estimate() {
        assert_eq!(human(1536.0 * 1024.0 * 1024.0), "1.5 GiB");
        assert_eq!(human(12.0), "12 B");
        if let Some(a) = available() {
            assert!(a > 1 << 20, "MemAvailable {a}");
            let e = check("a test", 1e15).unwrap_err().to_string();
            assert!(
                e.contains("needs about") && e.contains("this machine has"),
                "{e}"
            );
            check("a test", 1024.0).unwrap();
        }
    }
}
