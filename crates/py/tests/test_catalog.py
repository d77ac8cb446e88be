"""Halo and galaxy catalogues from Python: the same numbers as the CLI
(`halos fof`, `hod populate`, `stats xi|pk|knn` on the same files), brute
force checks on small sets, and the gradients in the point weights."""

import subprocess

import numpy as np
import pytest

import cosmodiff as cd


def blobs(n=3000, box=50.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, box, (30, 3))
    centres[0] = [0.0, 0.0, 0.0]  # a group across the corner
    pts = centres[rng.integers(0, 30, n)] + rng.normal(0, 0.4, (n, 3))
    return np.mod(pts, box)


def brute_fof(pts, box, link):
    n = len(pts)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    d = pts[:, None, :] - pts[None, :, :]
    d -= box * np.round(d / box)
    close = (d**2).sum(-1) <= link**2
    for i, j in zip(*np.nonzero(np.triu(close, 1))):
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(n)])


def test_fof_groups_match_brute_force_and_wrap():
    box = 50.0
    pts = blobs()
    h = cd.fof(pts, box, 0.3, linking_length=0.2, min_particles=5)
    link = 0.2 * box / len(pts) ** (1 / 3)
    roots = brute_fof(pts, box, link)
    sizes = np.bincount(roots, minlength=len(pts))
    want = np.sort(sizes[sizes >= 5])[::-1]
    np.testing.assert_array_equal(h["n_particles"], want)
    # membership: particles of one halo share one brute-force group
    for k in range(len(want)):
        members = np.nonzero(h["particle_halo"] == k)[0]
        assert len(set(roots[members])) == 1 and len(members) == want[k]
    assert np.all((h["position"] >= 0) & (h["position"] < box))
    np.testing.assert_allclose(h["mass"], h["n_particles"] * h["particle_mass"], rtol=1e-12)


def test_xi_pair_counts_are_brute_force_and_vjp_is_consistent():
    box = 40.0
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, box, (600, 3))
    edges = [1.0, 3.0, 7.0, 15.0, 20.0]
    r = cd.xi(pts, box, edges)
    d = pts[:, None, :] - pts[None, :, :]
    d -= box * np.round(d / box)
    dist = np.sqrt((d**2).sum(-1))[np.triu_indices(len(pts), 1)]
    want, _ = np.histogram(dist, bins=edges)
    np.testing.assert_array_equal(r["pair_counts"], want)
    w = rng.uniform(0.5, 1.5, len(pts))
    g = np.array([1.0, -2.0, 0.5, 0.3])
    grad = cd.xi_vjp(pts, box, edges, g, weights=w)
    i, h = 11, 1e-6
    wp, wm = w.copy(), w.copy()
    wp[i] += h
    wm[i] -= h
    fd = (g @ cd.xi(pts, box, edges, weights=wp)["xi"] - g @ cd.xi(pts, box, edges, weights=wm)["xi"]) / (2 * h)
    assert abs(fd - grad[i]) < 1e-6 * max(1.0, abs(fd))
    with pytest.raises(cd.CosmodiffError, match="L/2"):
        cd.xi(pts, box, [1.0, 25.0])


def test_hod_relaxed_weights_and_statistics_shapes():
    rng = np.random.default_rng(2)
    box = 100.0
    hp = rng.uniform(0, box, (2000, 3))
    hm = 10 ** rng.uniform(12, 15, 2000)
    g = cd.hod_populate(hp, hm, box, seed=1)
    assert g["position"].shape[1] == 3 and g["is_central"].dtype == bool
    assert np.all(g["weight"] == 1.0)
    r = cd.hod_populate(hp, hm, box, relaxed_temperature=0.1, seed=1)
    assert np.all((r["weight"] >= 0) & (r["weight"] <= 1))
    p = cd.pk_points(g["position"], box, n_mesh=32)
    assert set(p) == {"k", "pk", "n_modes", "shot_noise"}
    assert abs(p["shot_noise"] - box**3 / len(g["position"])) < 1e-9 * p["shot_noise"]
    k = cd.knn_cdf(g["position"], box, k=[1, 5], n_query=5000)
    assert k["cdf"].shape == (2, len(k["r"]))
    with pytest.raises(cd.CosmodiffError, match="sigma-logm|sigma_logM"):
        cd.hod_populate(hp, hm, box, sigma_logm=0.0)


def test_python_matches_cli_bit_for_bit(tmp_path, cli):
    box = 50.0
    pts = blobs(seed=3)
    np.save(tmp_path / "p.npy", pts)
    subprocess.run([str(cli), "-q", "halos", "fof", "--positions", str(tmp_path / "p.npy"), "--box-size", "50",
                    "--omega-m", "0.3", "--min-particles", "5", "--out", str(tmp_path / "h.npz")], check=True)
    hc = np.load(tmp_path / "h.npz")
    hp = cd.fof(pts, box, 0.3, min_particles=5)
    for k in ("position", "mass", "n_particles"):
        np.testing.assert_array_equal(hc[k], hp[k])
    subprocess.run([str(cli), "-q", "hod", "populate", "--halos", str(tmp_path / "h.npz"), "--box-size", "50",
                    "--log-mmin", "12", "--log-m0", "12", "--log-m1", "12.5", "--seed", "4",
                    "--out", str(tmp_path / "g.npz")], check=True)
    gc = np.load(tmp_path / "g.npz")
    gp = cd.hod_populate(hp["position"], hp["mass"], box, log_mmin=12, log_m0=12, log_m1=12.5, seed=4)
    for k in ("position", "is_central", "weight"):
        np.testing.assert_array_equal(gc[k], gp[k])
    subprocess.run([str(cli), "-q", "stats", "xi", "--catalog", str(tmp_path / "g.npz"), "--box-size", "50",
                    "--r-edges", "1,2,5,10,25", "--out", str(tmp_path / "xi.npz")], check=True)
    xc = np.load(tmp_path / "xi.npz")
    xp = cd.xi(gp["position"], box, [1, 2, 5, 10, 25], weights=gp["weight"])
    for k in ("r", "xi", "pair_counts"):
        np.testing.assert_array_equal(xc[k], xp[k])


def test_dxi_dhod_end_to_end_from_python():
    """d xi / d(HOD parameters) through the relaxed weights, chained in
    Python (xi_vjp then hod_relaxed_vjp), against central differences."""
    rng = np.random.default_rng(5)
    box = 80.0
    hp = np.mod(rng.uniform(0, box, (8, 3))[rng.integers(0, 8, 300)] + rng.normal(0, 3, (300, 3)), box)
    hm = 10 ** rng.uniform(12.3, 14.8, 300)
    edges = [1.0, 3.0, 8.0, 20.0]
    g = np.array([1.0, -0.5, 2.0])
    theta = dict(log_mmin=12.8, sigma_logm=0.4, log_m0=12.7, log_m1=13.6, alpha=0.9)

    def loss(**kw):
        s = cd.hod_populate(hp, hm, box, relaxed_temperature=0.5, seed=3, **kw)
        return g @ cd.xi(s["position"], box, edges, weights=s["weight"])["xi"]

    s = cd.hod_populate(hp, hm, box, relaxed_temperature=0.5, seed=3, **theta)
    wbar = cd.xi_vjp(s["position"], box, edges, g, weights=s["weight"])
    grad = cd.hod_relaxed_vjp(hp, hm, box, wbar, relaxed_temperature=0.5, seed=3, **theta)
    for k, name in enumerate(theta):
        h = 1e-5
        up, dn = dict(theta), dict(theta)
        up[name] += h
        dn[name] -= h
        fd = (loss(**up) - loss(**dn)) / (2 * h)
        assert abs(grad[k] - fd) <= 1e-3 * abs(fd) + 1e-9, (name, grad[k], fd)
