//! Friends-of-friends halos (Davis, Efstathiou, Frenk & White 1985, ApJ
//! 292, 371): two particles are friends when their periodic separation is
//! at most `l = b L / N^(1/3)` (`b` the linking length in units of the mean
//! inter-particle separation, 0.2 by default, which picks out regions with
//! overdensity ~ 1/b^3 ~ 100 times the mean at their edge, More et al. 2011);
//! a halo is a connected set of friends with at least `min_particles`
//! members (20 by default).
//!
//! Pairs within `l` come from the periodic [`Columns`] (columns of side
//! `>= l`, each pair visited once); the groups from a union-find with path
//! halving whose root is the smallest member index, built per thread on a
//! block of columns and merged. Halo properties:
//!
//! - mass `M = n m_p`, `m_p = Omega_m rho_crit L^3 / N` [Msun/h];
//! - centre of mass with periodic unwrapping: member offsets taken as
//!   minimum images from the first member, averaged, wrapped into `[0, L)`;
//! - mean velocity [km/s] when velocities are given.
//!
//! Halos are sorted by mass descending (ties by their smallest particle index).

use crate::columns::Columns;
use crate::{check_positions, input, min_image, wrap, Result, RHO_CRIT};
use rayon::prelude::*;

/// Friends-of-friends settings.
#[derive(Debug, Clone, Copy)]
pub struct FofSettings {
    /// Linking length `b` in units of the mean inter-particle separation
    /// `L / N^(1/3)`, in (0, 1). Default 0.2.
    pub linking_length: f64,
    /// Smallest group kept as a halo. Default 20.
    pub min_particles: usize,
}

impl Default for FofSettings {
    fn default() -> Self {
        Self {
            linking_length: 0.2,
            min_particles: 20,
        }
    }
}

impl FofSettings {
    /// Check the ranges: `0 < b < 1`, `min_particles >= 1`.
    pub fn validate(&self) -> Result<()> {
        let b = self.linking_length;
        if !(b > 0.0 && b < 1.0) {
            return input(format!(
                "linking length must be in (0, 1) (units of the mean inter-particle separation), got {b}"
            ));
        }
        if self.min_particles == 0 {
            return input("min particles must be at least 1");
        }
        Ok(())
    }
}

/// A halo catalogue, sorted by mass descending.
#[derive(Debug, Clone, Default)]
pub struct Halos {
    /// Centre of mass [Mpc/h], in `[0, L)`.
    pub position: Vec<[f64; 3]>,
    /// Mean velocity [km/s] (when particle velocities were given).
    pub velocity: Option<Vec<[f64; 3]>>,
    /// Mass [Msun/h].
    pub mass: Vec<f64>,
    /// Number of member particles.
    pub n_particles: Vec<u64>,
    /// Halo of each input particle (index into the sorted catalogue), or -1.
    pub particle_halo: Vec<i64>,
}

impl Halos {
    /// Number of halos.
    pub fn len(&self) -> usize {
        self.mass.len()
    }

    /// No halos.
    pub fn is_empty(&self) -> bool {
        self.mass.is_empty()
    }
}

/// Particle mass `m_p = Omega_m rho_crit L^3 / N` [Msun/h] of `n_particles`
/// particles in a box of side `box_size` [Mpc/h].
pub fn particle_mass(omega_m: f64, box_size: f64, n_particles: usize) -> f64 {
    omega_m * RHO_CRIT * box_size.powi(3) / n_particles as f64
}

/// Union-find over `n` elements; the root of a set is its smallest element.
struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
        }
    }

    #[inline]
    fn find(&mut self, mut i: u32) -> u32 {
        while self.parent[i as usize] != i {
            let p = self.parent[i as usize];
            let gp = self.parent[p as usize];
            self.parent[i as usize] = gp;
            i = gp;
        }
        i
    }

    #[inline]
    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.parent[hi as usize] = lo;
        }
    }
}

/// Group label of every point: the smallest index of its friends-of-friends
/// group, for an absolute linking length `link` [Mpc/h] (`0 < link < L/2`).
/// Positions must be in `[0, L)` (see [`check_positions`]).
pub fn fof_labels(pos: &[[f64; 3]], box_size: f64, link: f64) -> Vec<u32> {
    let n = pos.len();
    if n == 0 {
        return Vec::new();
    }
    let cols = Columns::new(pos, box_size, link);
    let half = cols.half_stencil(link);
    // one union-find per block of columns (in sorted-point indices), merged
    let nblock = rayon::current_num_threads().clamp(1, cols.n_columns());
    let per = cols.n_columns().div_ceil(nblock);
    let locals: Vec<UnionFind> = (0..nblock)
        .into_par_iter()
        .map(|b| {
            let mut uf = UnionFind::new(n);
            for c in b * per..((b + 1) * per).min(cols.n_columns()) {
                cols.for_each_pair_in_column(c, link, &half, |i, j, _| {
                    uf.union(i as u32, j as u32)
                });
            }
            uf
        })
        .collect();
    let mut locals = locals.into_iter();
    let mut uf = locals.next().expect("at least one block");
    for mut other in locals {
        for i in 0..n as u32 {
            let r = other.find(i);
            if r != i {
                uf.union(i, r);
            }
        }
    }
    // relabel: smallest original index of each group
    let mut min_orig = vec![u32::MAX; n];
    let roots: Vec<u32> = (0..n as u32).map(|i| uf.find(i)).collect();
    for (s, &r) in roots.iter().enumerate() {
        let o = cols.index[s];
        if o < min_orig[r as usize] {
            min_orig[r as usize] = o;
        }
    }
    let mut label = vec![0u32; n];
    for (s, &r) in roots.iter().enumerate() {
        label[cols.index[s] as usize] = min_orig[r as usize];
    }
    label
}

/// Friends-of-friends halos of the particles at `pos` [Mpc/h, in `[0, L)`]
/// with optional velocities [km/s]; each particle weighs `particle_mass`
/// [Msun/h] (see [`particle_mass`]).
pub fn friends_of_friends(
    pos: &[[f64; 3]],
    vel: Option<&[[f64; 3]]>,
    box_size: f64,
    particle_mass: f64,
    settings: &FofSettings,
) -> Result<Halos> {
    settings.validate()?;
    check_positions(pos, box_size)?;
    if pos.is_empty() {
        return input("no particles: the catalogue is empty");
    }
    if let Some(v) = vel {
        if v.len() != pos.len() {
            return input(format!(
                "{} velocities for {} particles",
                v.len(),
                pos.len()
            ));
        }
        if let Some(i) = v.iter().position(|v| v.iter().any(|x| !x.is_finite())) {
            return input(format!("velocity {i} is not finite"));
        }
    }
    if !(particle_mass > 0.0 && particle_mass.is_finite()) {
        return input(format!(
            "particle mass must be positive, got {particle_mass}"
        ));
    }
    let n = pos.len();
    let link = settings.linking_length * box_size / (n as f64).cbrt();
    let label = fof_labels(pos, box_size, link);

    // members per group label, in particle order
    let mut count = vec![0u32; n];
    for &g in &label {
        count[g as usize] += 1;
    }
    let mut groups: Vec<u32> = (0..n as u32)
        .filter(|&g| label[g as usize] == g && count[g as usize] as usize >= settings.min_particles)
        .collect();
    groups.sort_by(|a, b| count[*b as usize].cmp(&count[*a as usize]).then(a.cmp(b)));
    let mut halo_of = vec![-1i64; n];
    for (h, &g) in groups.iter().enumerate() {
        halo_of[g as usize] = h as i64;
    }
    let particle_halo: Vec<i64> = label.iter().map(|&g| halo_of[g as usize]).collect();

    let nh = groups.len();
    let mut sum = vec![[0.0f64; 3]; nh];
    let mut vsum = vec![[0.0f64; 3]; nh];
    for (i, &h) in particle_halo.iter().enumerate() {
        if h < 0 {
            continue;
        }
        let h = h as usize;
        let r = pos[groups[h] as usize]; // first member
        for a in 0..3 {
            sum[h][a] += min_image(pos[i][a] - r[a], box_size);
            if let Some(v) = vel {
                vsum[h][a] += v[i][a];
            }
        }
    }
    let mut out = Halos {
        particle_halo,
        ..Default::default()
    };
    for (h, &g) in groups.iter().enumerate() {
        let m = count[g as usize] as f64;
        let r = pos[g as usize];
        out.position.push([
            wrap(r[0] + sum[h][0] / m, box_size),
            wrap(r[1] + sum[h][1] / m, box_size),
            wrap(r[2] + sum[h][2] / m, box_size),
        ]);
        out.mass.push(m * particle_mass);
        out.n_particles.push(count[g as usize] as u64);
    }
    if vel.is_some() {
        out.velocity = Some(
            groups
                .iter()
                .zip(&vsum)
                .map(|(&g, s)| {
                    let m = count[g as usize] as f64;
                    [s[0] / m, s[1] / m, s[2] / m]
                })
                .collect(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    /// O(N^2) union-find over all pairs: the definition.
    fn brute_labels(pos: &[[f64; 3]], l: f64, link: f64) -> Vec<u32> {
        let mut uf = UnionFind::new(pos.len());
        for i in 0..pos.len() {
            for j in i + 1..pos.len() {
                let d2: f64 = (0..3)
                    .map(|a| min_image(pos[j][a] - pos[i][a], l).powi(2))
                    .sum();
                if d2 <= link * link {
                    uf.union(i as u32, j as u32);
                }
            }
        }
        (0..pos.len() as u32).map(|i| uf.find(i)).collect()
    }

    fn uniform(n: usize, l: f64, seed: u64) -> Vec<[f64; 3]> {
        crate::uniform_points(n, l, seed)
    }

    /// Gaussian blobs, some centred on the box faces and corners so that
    /// groups wrap across the periodic boundary, plus a uniform background.
    fn clustered(n: usize, l: f64, seed: u64) -> Vec<[f64; 3]> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut centres = vec![
            [0.0, 0.0, 0.0],
            [0.0, 0.5 * l, 0.5 * l],
            [0.99 * l, 0.3 * l, 0.0],
        ];
        centres.extend(uniform(40, l, seed + 1));
        let mut out = Vec::with_capacity(n);
        let g = Normal::new(0.0, 1.0).unwrap();
        while out.len() < n {
            if out.len() % 4 == 0 {
                out.extend(uniform(1, l, seed + 7 + out.len() as u64));
                continue;
            }
            let c = centres[out.len() % centres.len()];
            let s = 0.004 * l * (1.0 + (out.len() % 3) as f64);
            out.push([
                wrap(c[0] + s * g.sample(&mut rng), l),
                wrap(c[1] + s * g.sample(&mut rng), l),
                wrap(c[2] + s * g.sample(&mut rng), l),
            ]);
        }
        out
    }

    #[test]
    fn memberships_match_brute_force_union_find() {
        let l = 100.0;
        for (name, pos, b) in [
            ("uniform b=0.2", uniform(5000, l, 3), 0.2),
            ("uniform b=0.5", uniform(5000, l, 4), 0.5),
            ("clustered b=0.2", clustered(5000, l, 5), 0.2),
            ("clustered b=0.05", clustered(5000, l, 6), 0.05),
        ] {
            let link = b * l / (pos.len() as f64).cbrt();
            let got = fof_labels(&pos, l, link);
            let want = brute_labels(&pos, l, link);
            // both label with the smallest member index: identical partitions
            assert_eq!(got, want, "{name}");
            let ngroups = (0..pos.len()).filter(|&i| want[i] as usize == i).count();
            let wrapped = (0..pos.len()).any(|i| {
                let j = want[i] as usize;
                (0..3).any(|a| (pos[i][a] - pos[j][a]).abs() > l / 2.0)
            });
            eprintln!("{name}: {ngroups} groups, a group wraps: {wrapped}");
            if name.starts_with("clustered") {
                assert!(wrapped, "{name}: the test must include wrapping groups");
            }
        }
    }

    #[test]
    fn halo_properties_wrap_and_sort() {
        // two compact groups: 30 particles straddling the corner, 25 inside
        let l = 50.0;
        let mut pos = Vec::new();
        let mut vel = Vec::new();
        for i in 0..30 {
            let d = 0.01 * i as f64 - 0.145; // around the corner, step 0.01
            pos.push([wrap(d, l), wrap(-d, l), wrap(d * 0.5, l)]);
            vel.push([100.0, -50.0, i as f64]);
        }
        for i in 0..25 {
            pos.push([20.0 + 0.01 * i as f64, 20.0, 20.0]);
            vel.push([0.0, 0.0, 0.0]);
        }
        pos.extend(
            uniform(5, l, 9)
                .iter()
                .map(|p| [p[0], p[1], 40.0 + p[2] * 0.01]),
        );
        vel.extend(std::iter::repeat_n([0.0; 3], 5));
        let s = FofSettings {
            linking_length: 0.2,
            min_particles: 20,
        };
        // b * L / N^(1/3) = 0.2 * 50 / 60^(1/3) ~ 2.55 Mpc/h: the groups link
        let h = friends_of_friends(&pos, Some(&vel), l, 1e10, &s).unwrap();
        assert_eq!(h.n_particles, vec![30, 25]);
        assert_eq!(h.mass, vec![30e10, 25e10]);
        let c = h.position[0];
        // centre: mean offset is -0.145 + 0.01 * 14.5 = 0 -> the corner
        for a in 0..3 {
            assert!(min_image(c[a], l).abs() < 1e-9, "{c:?}");
            assert!(c[a] >= 0.0 && c[a] < l);
        }
        let v = h.velocity.as_ref().unwrap()[0];
        assert!((v[0] - 100.0).abs() < 1e-12 && (v[2] - 14.5).abs() < 1e-12);
        assert!(h.particle_halo[..30].iter().all(|&x| x == 0));
        assert!(h.particle_halo[30..55].iter().all(|&x| x == 1));
        assert!(h.particle_halo[55..].iter().all(|&x| x == -1));
    }

    #[test]
    fn bad_input_names_the_argument() {
        let pos = vec![[1.0, 2.0, 3.0]; 10];
        let bad = |b: f64| FofSettings {
            linking_length: b,
            min_particles: 20,
        };
        for b in [0.0, 1.0, -0.1, f64::NAN] {
            let e = friends_of_friends(&pos, None, 10.0, 1.0, &bad(b)).unwrap_err();
            assert!(e.to_string().contains("linking length"), "{e}");
        }
        let e = friends_of_friends(&pos, None, -1.0, 1.0, &FofSettings::default()).unwrap_err();
        assert!(e.to_string().contains("box size"), "{e}");
        let mut p2 = pos.clone();
        p2[3][1] = 10.0;
        let e = friends_of_friends(&p2, None, 10.0, 1.0, &FofSettings::default()).unwrap_err();
        assert!(e.to_string().contains("position 3"), "{e}");
        p2[3][1] = f64::NAN;
        let e = friends_of_friends(&p2, None, 10.0, 1.0, &FofSettings::default()).unwrap_err();
        assert!(e.to_string().contains("not finite"), "{e}");
        let e = friends_of_friends(&[], None, 10.0, 1.0, &FofSettings::default()).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }
}
