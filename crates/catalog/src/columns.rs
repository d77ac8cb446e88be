//! A periodic neighbour structure for points in a cubic box: the box is cut
//! into `nc x nc` columns along z (side `s = L/nc >= r_cell`); points are
//! sorted by column, then by z inside a column. A search of radius `r`
//! visits the columns whose xy distance to the query column can be `<= r`,
//! and in each only the contiguous z-window `|dz| <= sqrt(r^2 - d_xy,min^2)`
//! (two binary searches, two ranges when the window wraps).
//!
//! Columns keep the index dense (`nc^2` offsets, not `nc^3` cells), so the
//! cells can be as small as the linking length of a friends-of-friends run on
//! 256^3 particles (1,280^2 columns) without a hash map; the z-window does
//! the work of the third dimension. Written here rather than taken from a
//! k-d tree crate (kiddo): the searches must be periodic with the minimum
//! image, which those trees do not offer without copying ghost particles.
//!
//! Each unordered pair within `r` is visited exactly once by
//! [`Columns::for_each_pair_in_column`] over all columns (a half stencil:
//! the own column with `j > i`, and half of the neighbour offsets), which is
//! what pair counting and friends-of-friends linking need.

use crate::min_image;
use rayon::prelude::*;

/// Points sorted into periodic z-columns.
#[derive(Debug, Clone)]
pub struct Columns {
    box_size: f64,
    nc: usize,
    side: f64,
    /// `start[c]..start[c + 1]`: the sorted points of column `c = cx nc + cy`.
    start: Vec<usize>,
    /// Original index of each sorted point.
    pub index: Vec<u32>,
    /// Sorted x coordinates [Mpc/h].
    pub x: Vec<f64>,
    /// Sorted y coordinates [Mpc/h].
    pub y: Vec<f64>,
    /// Sorted z coordinates [Mpc/h] (ascending within each column).
    pub z: Vec<f64>,
}

/// A neighbour column offset of a stencil of radius `r`.
#[derive(Debug, Clone, Copy)]
pub struct Offset {
    /// Column offset in x, modulo `nc`.
    pub ox: usize,
    /// Column offset in y, modulo `nc`.
    pub oy: usize,
    /// Half width of the z-window [Mpc/h].
    pub h: f64,
    /// The offset is its own inverse modulo `nc` (e.g. `nc/2`): visit a
    /// column pair from the lower column index only.
    pub self_inverse: bool,
    /// Signed minimum-image column offset in x, in `[-nc/2, nc/2]`.
    pub sx: i64,
    /// Signed minimum-image column offset in y, in `[-nc/2, nc/2]`.
    pub sy: i64,
    /// Every offset of the stencil is a distinct column (`nc >= 2 reach + 1`):
    /// the periodic image of a neighbour column is fixed, so separations need
    /// no minimum-image rounding.
    pub unique: bool,
}

impl Columns {
    /// Sort `pos` (in `[0, L)`, unchecked) into columns of side at least
    /// `min_side` (at most `4 N` columns in all, at least one).
    pub fn new(pos: &[[f64; 3]], box_size: f64, min_side: f64) -> Self {
        let n = pos.len();
        let by_side = if min_side > 0.0 {
            (box_size / min_side).floor()
        } else {
            f64::INFINITY
        };
        let by_count = (4.0 * n as f64 + 16.0).sqrt().floor();
        let nc = by_side.min(by_count).clamp(1.0, 65_536.0) as usize;
        let side = box_size / nc as f64;
        let col = |p: &[f64; 3]| -> usize {
            let cx = ((p[0] / side) as usize).min(nc - 1);
            let cy = ((p[1] / side) as usize).min(nc - 1);
            cx * nc + cy
        };
        let cols: Vec<u32> = pos.par_iter().map(|p| col(p) as u32).collect();
        let mut start = vec![0usize; nc * nc + 1];
        for &c in &cols {
            start[c as usize + 1] += 1;
        }
        for c in 0..nc * nc {
            start[c + 1] += start[c];
        }
        let mut fill = start.clone();
        let mut index = vec![0u32; n];
        for (i, &c) in cols.iter().enumerate() {
            index[fill[c as usize]] = i as u32;
            fill[c as usize] += 1;
        }
        // sort each column by z (ties by index: deterministic)
        {
            let mut chunks: Vec<&mut [u32]> = Vec::with_capacity(nc * nc);
            let mut rest: &mut [u32] = &mut index;
            for c in 0..nc * nc {
                let (a, b) = rest.split_at_mut(start[c + 1] - start[c]);
                chunks.push(a);
                rest = b;
            }
            chunks.par_iter_mut().for_each(|ch| {
                ch.sort_unstable_by(|&a, &b| {
                    pos[a as usize][2]
                        .total_cmp(&pos[b as usize][2])
                        .then(a.cmp(&b))
                })
            });
        }
        let x = index.par_iter().map(|&i| pos[i as usize][0]).collect();
        let y = index.par_iter().map(|&i| pos[i as usize][1]).collect();
        let z = index.par_iter().map(|&i| pos[i as usize][2]).collect();
        Self {
            box_size,
            nc,
            side,
            start,
            index,
            x,
            y,
            z,
        }
    }

    /// Box side [Mpc/h].
    pub fn box_size(&self) -> f64 {
        self.box_size
    }

    /// Columns per side.
    pub fn nc(&self) -> usize {
        self.nc
    }

    /// Number of columns (`nc^2`).
    pub fn n_columns(&self) -> usize {
        self.nc * self.nc
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// No points.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Sorted-point range of column `c`.
    pub fn range(&self, c: usize) -> std::ops::Range<usize> {
        self.start[c]..self.start[c + 1]
    }

    /// Column of a point (unchecked, in `[0, L)`).
    pub fn column_of(&self, p: &[f64; 3]) -> (usize, usize) {
        let cx = ((p[0] / self.side) as usize).min(self.nc - 1);
        let cy = ((p[1] / self.side) as usize).min(self.nc - 1);
        (cx, cy)
    }

    /// All column offsets (modulo `nc`, each once) that can hold a point
    /// within `r` of a point of the centre column, with their z half-windows.
    pub fn full_stencil(&self, r: f64) -> Vec<Offset> {
        let nc = self.nc as i64;
        let reach = ((r / self.side).ceil() as i64).min(nc);
        let unique = nc > 2 * reach;
        let mut seen = vec![false; self.nc * self.nc];
        let mut out = Vec::new();
        for dx in -reach..=reach {
            for dy in -reach..=reach {
                let (ox, oy) = (dx.rem_euclid(nc) as usize, dy.rem_euclid(nc) as usize);
                if std::mem::replace(&mut seen[ox * self.nc + oy], true) {
                    continue;
                }
                // signed minimum-image offsets and the smallest xy distance
                let sx = signed(ox, self.nc);
                let sy = signed(oy, self.nc);
                let mx = (sx.unsigned_abs().saturating_sub(1)) as f64 * self.side;
                let my = (sy.unsigned_abs().saturating_sub(1)) as f64 * self.side;
                let d2 = mx * mx + my * my;
                if d2 > r * r {
                    continue;
                }
                let self_inverse = (self.nc - ox) % self.nc == ox && (self.nc - oy) % self.nc == oy;
                out.push(Offset {
                    ox,
                    oy,
                    h: (r * r - d2).sqrt(),
                    self_inverse,
                    sx,
                    sy,
                    unique,
                });
            }
        }
        out
    }

    /// Half of [`Self::full_stencil`]: the zero offset first, then one of
    /// each pair `{o, -o}` (self-inverse offsets kept, flagged).
    pub fn half_stencil(&self, r: f64) -> Vec<Offset> {
        let nc = self.nc;
        let mut full = self.full_stencil(r);
        full.sort_by_key(|o| (o.ox != 0 || o.oy != 0, o.ox, o.oy));
        full.into_iter()
            .filter(|o| {
                let neg = ((nc - o.ox) % nc, (nc - o.oy) % nc);
                (o.ox, o.oy) <= neg
            })
            .collect()
    }

    /// Sorted indices `lo..hi` of column `c` with `z` in `[a, b)` (no wrap).
    #[inline]
    fn z_between(&self, c: usize, a: f64, b: f64) -> (usize, usize) {
        let r = self.range(c);
        let zs = &self.z[r.clone()];
        let lo = zs.partition_point(|z| *z < a);
        let hi = zs.partition_point(|z| *z < b);
        (r.start + lo, r.start + hi)
    }

    /// Up to two sorted-index ranges of column `c` holding every point with
    /// periodic `|z - z0| <= h` (a superset bounded by the window), each with
    /// the shift that brings its points to the image nearest `z0`
    /// (`z - z0 + shift` is the separation). With `2 h >= L` the whole column
    /// is returned with shift NaN: use the minimum image.
    #[inline]
    pub fn z_window(&self, c: usize, z0: f64, h: f64) -> [(usize, usize, f64); 2] {
        let l = self.box_size;
        if 2.0 * h >= l {
            let r = self.range(c);
            return [(r.start, r.end, f64::NAN), (r.end, r.end, 0.0)];
        }
        let (a, b) = (z0 - h, z0 + h);
        // right-closed windows: nudge the upper bound past equality
        let up = |v: f64| v.next_up();
        let with = |(lo, hi): (usize, usize), s: f64| (lo, hi, s);
        if a < 0.0 {
            [
                with(self.z_between(c, 0.0, up(b)), 0.0),
                with(self.z_between(c, a + l, l), -l),
            ]
        } else if b >= l {
            [
                with(self.z_between(c, a, l), 0.0),
                with(self.z_between(c, 0.0, up(b - l)), l),
            ]
        } else {
            [with(self.z_between(c, a, up(b)), 0.0), (0, 0, 0.0)]
        }
    }

    /// Periodic shift of the neighbour column at signed offset `s` from
    /// column index `c` along one axis: `-L`, 0 or `L`.
    #[inline(always)]
    fn image_shift(&self, c: usize, s: i64) -> f64 {
        let u = c as i64 + s;
        let nc = self.nc as i64;
        if u < 0 {
            -self.box_size
        } else if u >= nc {
            self.box_size
        } else {
            0.0
        }
    }

    /// Separation squared of sorted points `i` and `j` with fixed image
    /// shifts, or with the minimum image where a shift is NaN.
    #[inline(always)]
    fn d2_shifted(&self, i: usize, j: usize, s: [f64; 3]) -> f64 {
        let l = self.box_size;
        let d = |xj: f64, xi: f64, sh: f64| {
            if sh.is_nan() {
                min_image(xj - xi, l)
            } else {
                xj + sh - xi
            }
        };
        let dx = d(self.x[j], self.x[i], s[0]);
        let dy = d(self.y[j], self.y[i], s[1]);
        let dz = d(self.z[j], self.z[i], s[2]);
        dx * dx + dy * dy + dz * dz
    }

    /// The candidate ranges of the half stencil of column `c`: for each sorted
    /// point `i` of the column, contiguous sorted ranges `a..b` (of `j > i`
    /// in the own column) with the image shifts `[sx, sy, sz]` such that
    /// `x_j + sx - x_i` (etc.) is the separation (a NaN shift: use the
    /// minimum image on that axis). Every unordered pair within `r` lies in
    /// exactly one range over all columns; candidates beyond `r` are the
    /// caller's to reject.
    #[inline(always)]
    pub fn for_each_candidate_range<F: FnMut(usize, usize, usize, [f64; 3])>(
        &self,
        c: usize,
        half: &[Offset],
        mut f: F,
    ) {
        let nc = self.nc;
        let l = self.box_size;
        let (cx, cy) = (c / nc, c % nc);
        let own = self.range(c);
        for o in half {
            let c2 = ((cx + o.ox) % nc) * nc + (cy + o.oy) % nc;
            // fixed x/y images of the neighbour column, unless the stencil aliases
            let (shx, shy) = if o.unique {
                (self.image_shift(cx, o.sx), self.image_shift(cy, o.sy))
            } else {
                (f64::NAN, f64::NAN)
            };
            if o.ox == 0 && o.oy == 0 {
                // own column: j > i; direct window z_j - z_i <= h, or wrapped
                // z_j >= z_i + L - h (image z_j - L). Both bounds only grow
                // with z_i: two pointers.
                let whole = 2.0 * o.h >= l;
                // one column spans the box: x and y need the minimum image
                let sxy = if nc >= 2 { 0.0 } else { f64::NAN };
                let (mut hi1, mut lo2) = (own.start, own.start);
                for i in own.clone() {
                    if whole {
                        f(i, i + 1, own.end, [sxy, sxy, f64::NAN]);
                        continue;
                    }
                    let zi = self.z[i];
                    hi1 = hi1.max(i + 1);
                    while hi1 < own.end && self.z[hi1] <= zi + o.h {
                        hi1 += 1;
                    }
                    let t = zi + l - o.h;
                    while lo2 < own.end && self.z[lo2] < t {
                        lo2 += 1;
                    }
                    f(i, i + 1, hi1, [sxy, sxy, 0.0]);
                    let lo = lo2.max(hi1);
                    if lo < own.end {
                        f(i, lo, own.end, [sxy, sxy, -l]);
                    }
                }
                continue;
            }
            if o.self_inverse && c2 < c {
                continue;
            }
            let nb = self.range(c2);
            let m = nb.len();
            if m == 0 {
                continue;
            }
            if 2.0 * o.h >= l {
                for i in own.clone() {
                    f(i, nb.start, nb.end, [shx, shy, f64::NAN]);
                }
                continue;
            }
            // The neighbour column as a periodic sequence: virtual index
            // t in [-m, 2m) holds z[t mod m] + L floor(t / m). The window
            // [z_i - h, z_i + h] slides up with z_i: two pointers lo, hi.
            let v = |t: i64| -> f64 {
                let k = t.div_euclid(m as i64);
                self.z[nb.start + t.rem_euclid(m as i64) as usize] + l * k as f64
            };
            let (mut lo, mut hi) = (-(m as i64), -(m as i64));
            for i in own.clone() {
                let zi = self.z[i];
                while lo < 2 * m as i64 && v(lo) < zi - o.h {
                    lo += 1;
                }
                hi = hi.max(lo);
                while hi < 2 * m as i64 && v(hi) <= zi + o.h {
                    hi += 1;
                }
                // split [lo, hi) by period: each piece one image shift
                let mut t = lo;
                while t < hi {
                    let k = t.div_euclid(m as i64);
                    let end = hi.min((k + 1) * m as i64);
                    let a = nb.start + t.rem_euclid(m as i64) as usize;
                    let b = a + (end - t) as usize;
                    f(i, a, b, [shx, shy, l * k as f64]);
                    t = end;
                }
            }
        }
    }

    /// Visit every unordered pair `(i, j)` of sorted points with at least one
    /// point in column `c` (and the other in a column of the half stencil
    /// `half`) at periodic distance `d <= r`: `f(i, j, d^2)`. Over all
    /// columns, every pair within `r` is visited exactly once.
    #[inline]
    pub fn for_each_pair_in_column<F: FnMut(usize, usize, f64)>(
        &self,
        c: usize,
        r: f64,
        half: &[Offset],
        mut f: F,
    ) {
        let r2 = r * r;
        self.for_each_candidate_range(c, half, |i, a, b, s| {
            for j in a..b {
                let d2 = self.d2_shifted(i, j, s);
                if d2 <= r2 {
                    f(i, j, d2);
                }
            }
        });
    }

    /// Visit every sorted point within periodic distance `r` of `q` (in
    /// `[0, L)`): `f(j, d^2)`. `full` is [`Self::full_stencil`]`(r)`.
    #[inline]
    pub fn for_each_within<F: FnMut(usize, f64)>(
        &self,
        q: &[f64; 3],
        r: f64,
        full: &[Offset],
        mut f: F,
    ) {
        let nc = self.nc;
        let l = self.box_size;
        let r2 = r * r;
        let (cx, cy) = self.column_of(q);
        for o in full {
            let c2 = ((cx + o.ox) % nc) * nc + (cy + o.oy) % nc;
            for (a, b, _) in self.z_window(c2, q[2], o.h) {
                for j in a..b {
                    let dx = min_image(self.x[j] - q[0], l);
                    let dy = min_image(self.y[j] - q[1], l);
                    let dz = min_image(self.z[j] - q[2], l);
                    let d2 = dx * dx + dy * dy + dz * dz;
                    if d2 <= r2 {
                        f(j, d2);
                    }
                }
            }
        }
    }
}

/// Offset `o` modulo `n` as the signed minimum image in `[-n/2, n/2]`.
fn signed(o: usize, n: usize) -> i64 {
    let o = o as i64;
    let n = n as i64;
    if 2 * o > n {
        o - n
    } else {
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(pos: &[[f64; 3]], l: f64, r: f64) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for i in 0..pos.len() {
            for j in i + 1..pos.len() {
                let d2: f64 = (0..3)
                    .map(|a| min_image(pos[j][a] - pos[i][a], l).powi(2))
                    .sum();
                if d2 <= r * r {
                    out.push((i as u32, j as u32));
                }
            }
        }
        out
    }

    /// Every pair within r is visited exactly once, for column sizes from
    /// one column to many and radii up to L/2 (aliasing stencils).
    #[test]
    fn half_stencil_visits_each_pair_once() {
        let l = 10.0;
        let pos = crate::uniform_points(400, l, 1);
        for (r, side) in [
            (0.7, 0.7),
            (1.3, 0.4),
            (3.0, 3.0),
            (5.0, 2.0),
            (5.0, 5.0),
            (2.0, 20.0),
        ] {
            let cols = Columns::new(&pos, l, side);
            let half = cols.half_stencil(r);
            let mut got = Vec::new();
            for c in 0..cols.n_columns() {
                cols.for_each_pair_in_column(c, r, &half, |i, j, _| {
                    let (a, b) = (cols.index[i], cols.index[j]);
                    got.push((a.min(b), a.max(b)));
                });
            }
            got.sort_unstable();
            let want = brute(&pos, l, r);
            assert_eq!(got.len(), want.len(), "r {r} side {side} nc {}", cols.nc());
            assert_eq!(got, want, "r {r} side {side}");
        }
    }

    #[test]
    fn within_finds_all_neighbours() {
        let l = 5.0;
        let pos = crate::uniform_points(300, l, 2);
        let cols = Columns::new(&pos, l, 0.5);
        for r in [0.3, 1.0, 2.5] {
            let full = cols.full_stencil(r);
            for q in [[0.01, 4.99, 2.5], [2.5, 2.5, 0.0], [4.9, 0.1, 4.95]] {
                let mut got: Vec<u32> = Vec::new();
                cols.for_each_within(&q, r, &full, |j, _| got.push(cols.index[j]));
                got.sort_unstable();
                let want: Vec<u32> = (0..pos.len() as u32)
                    .filter(|&j| {
                        (0..3)
                            .map(|a| min_image(pos[j as usize][a] - q[a], l).powi(2))
                            .sum::<f64>()
                            <= r * r
                    })
                    .collect();
                assert_eq!(got, want, "r {r} q {q:?}");
            }
        }
    }
}
