"""Reference numbers from the original sbi_lens JAX simulators (for the Rust port).

What it does
------------
Runs the two log-normal weak-lensing simulators of DifferentiableUniverseInitiative/sbi_lens,
unmodified, and writes float64 reference arrays to
``crates/pipeline/tests/data/sbi_lens_reference.npz``:

* ``lsst_*``: commit d239796 (HEAD, 2024-03-05), ``sbi_lens/simulator/LogNormal_field.py``
  (+ ``redshift.py``, ``romberg.py``), ``lensingLogNormal()`` with its defaults
  (N=256, map_size=10 deg, 27 gal/arcmin^2, sigma_e=0.26, 5 bins, smail a=2 b=0.68 z0=0.11,
  photo-z 0.05, shift table ``lognormal_shifts_LSSTY10_om_s8_w_bin.npy``).
* ``s128_*``: commit 3476824 (2023-04-21), ``lensingLogNormal(N=128, map_size=5,
  gal_per_arcmin2=30, sigma_e=0.2)`` with ``lognormal_shift.csv``.

The simulator files are extracted with ``git show`` from a snapshot of the repository and
imported directly (the package ``__init__`` is bypassed; JaxPM etc. are not needed).
Under x64, ``subdivide`` (redshift.py) fails inside tfp's ``find_root_chandrupatla``
(python-float brackets -> float32 loop state vs float64 objective); the script wraps that
function to pass the brackets as float64 (tolerance etc. unchanged: position_tolerance 1e-8).
Intermediate quantities (ell table, C_ell table, shifts, power maps) are captured by wrapping
``jax_cosmo.angular_cl.angular_cl`` and the module-level ``shift_fn`` /
``make_lognormal_power_map`` during an eager (non-jit) run of the model, so they are exactly
what the simulator computes.

Deterministic latent field (float64), bin b, row i, column j, 0-based::

    z[b, i, j] = sqrt(2) * sin(1.0 + 12.9898 * i + 78.233 * j + 37.719 * b)

shape [n_bins, N, N] for lsst (the numpyro site "z"); for s128 the site is [N, N] and b = 0.

Stored keys (P = prefix ``lsst_`` or ``s128_``): P+theta, P+theta2, P+ell, P+cl, P+cl2,
P+shift, P+shift2, P+kappa, P+kappa2 (lsst: first 16 rows [16,256,5]; s128 [128,128,1]),
P+logp, P+grad_theta, P+grad_z_rows ([n_bins,16,N]), P+logp2, P+grad_theta2, P+grad_z_rows2,
P+power_row0 (lsst: C_G of pairs (0,0),(0,4), rows 0..3, [2,4,256]; s128 full C_G [128,128]),
lsst_zbounds [6], lsst_nz_z [401], lsst_nz [5,401], lsst_ngal [5].
logp is numpyro.infer.util.log_density in CONSTRAINED space with every sample site given
(parameters, z, y = the observed map m_data); gradients are w.r.t. the parameters (model
order) and z.

Venv recipe (CPU, Python 3.11)
------------------------------
    python3 -m venv /work/venv-sbilens
    /work/venv-sbilens/bin/pip install jax==0.4.30 jaxlib==0.4.30 numpy==1.26.4 \
        scipy==1.13.1 numpyro==0.15.3 tensorflow-probability==0.24.0 jax-cosmo==0.1.0
(resolved extras: ml_dtypes 0.5.4, opt_einsum 3.4.0, dm-tree 0.1.10, multipledispatch 1.0.0,
gast 0.7.0, cloudpickle 3.1.3, decorator 5.3.2.) jax 0.4.25 / numpyro 0.14.0 / tfp 0.23.0
give the same float64 output (max relative difference 1e-14) but jaxlib 0.4.25 aborts
(XLA "Check failed: has_layout()") compiling the float32 gradient in jax_gradient_time.py.

How to run
----------
    /work/venv-sbilens/bin/python bench/lensing_cosmology/make_sbi_lens_reference.py
Environment overrides: SBI_LENS_REPO (git dir of the snapshot, default
/work/.mirror/DifferentiableUniverseInitiative+sbi_lens/repo), SBI_LENS_DATA (folder with
the m_data__*.npy files, default /work/shared/reference/sbi_lens), SBI_LENS_OUT (npz path).
Takes a few minutes on 2 CPU cores.
"""

import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REPO = os.environ.get(
    "SBI_LENS_REPO", "/work/.mirror/DifferentiableUniverseInitiative+sbi_lens/repo"
)
DATA = Path(os.environ.get("SBI_LENS_DATA", "/work/shared/reference/sbi_lens"))
OUT = Path(
    os.environ.get(
        "SBI_LENS_OUT", ROOT / "crates/pipeline/tests/data/sbi_lens_reference.npz"
    )
)

LSST_COMMIT = "d239796b30027ccb12b289e4c14fd61fbdec4d61"
S128_COMMIT = "3476824894db65adb0c90ea9c905ebc19244159c"
NROWS = 16


def extract(commit, paths, dest):
    """git show commit:path for each path into dest/<commit>/path; returns the root."""
    root = Path(dest) / commit[:7]
    for p in paths:
        out = root / p
        out.parent.mkdir(parents=True, exist_ok=True)
        blob = subprocess.run(
            ["git", "-C", REPO, "show", f"{commit}:{p}"], check=True, capture_output=True
        ).stdout
        out.write_bytes(blob)
    for d in ["sbi_lens", "sbi_lens/simulator"]:
        (root / d / "__init__.py").write_text("")  # bypass the real package __init__
    return root


def load_module(name, path, sys_path_root=None):
    if sys_path_root is not None:
        sys.path.insert(0, str(sys_path_root))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def latent_z(nbins, n):
    b = np.arange(nbins, dtype=np.float64)[:, None, None]
    i = np.arange(n, dtype=np.float64)[None, :, None]
    j = np.arange(n, dtype=np.float64)[None, None, :]
    return np.sqrt(2.0) * np.sin(1.0 + 12.9898 * i + 78.233 * j + 37.719 * b)


class Recorder:
    """Wraps functions to record concrete (non-traced) inputs/outputs."""

    def __init__(self):
        self.on = False
        self.log = {}

    def wrap(self, key, fn, keep):
        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            if self.on and not isinstance(out, jax.core.Tracer):
                self.log.setdefault(key, []).append(keep(args, out))
            return out

        return wrapped


def load_simulators():
    """Extract both simulator versions from the git snapshot and import them."""
    tmp = tempfile.mkdtemp(prefix="sbilens_src_")
    atexit.register(shutil.rmtree, tmp, True)  # files are read by the models at run time
    lsst_root = extract(
        LSST_COMMIT,
        [
            "sbi_lens/simulator/LogNormal_field.py",
            "sbi_lens/simulator/redshift.py",
            "sbi_lens/simulator/romberg.py",
            "sbi_lens/data/lognormal_shifts_LSSTY10_om_s8_w_bin.npy",
        ],
        tmp,
    )
    s128_root = extract(
        S128_COMMIT,
        ["sbi_lens/simulator/LogNormal_field.py", "sbi_lens/data/lognormal_shift.csv"],
        tmp,
    )
    # lsst module imports sbi_lens.simulator.redshift -> needs its root on sys.path
    lsst = load_module(
        "sbi_lens.simulator.LogNormal_field",
        lsst_root / "sbi_lens/simulator/LogNormal_field.py",
        sys_path_root=lsst_root,
    )
    # Under x64 the tfp root finder infers float32 from the python-float brackets
    # (0.0, pz.zmax) while the objective is float64 -> lax.while_loop type error.
    # Cast the brackets to the default float (float64 under x64); this is the only
    # change to the simulators' behaviour (in float32 mode it is a no-op).
    red = sys.modules["sbi_lens.simulator.redshift"]
    _froot = red.find_root_chandrupatla

    def _froot64(fn, low, high, **k):
        dt = jnp.result_type(float)  # float64 under x64, float32 otherwise
        return _froot(fn, jnp.asarray(low, dt), jnp.asarray(high, dt), **k)

    red.find_root_chandrupatla = _froot64
    s128 = load_module(
        "sbi_lens_s128_LogNormal_field", s128_root / "sbi_lens/simulator/LogNormal_field.py"
    )

    return lsst, s128


def make_setups(lsst, s128):
    """The two set-ups: model, kwargs, parameter names (model order), points."""
    return {
        "lsst": dict(
            model=lsst.lensingLogNormal,
            kwargs={},
            names=["omega_c", "omega_b", "sigma_8", "h_0", "n_s", "w_0"],
            theta=[0.2664, 0.0492, 0.831, 0.6727, 0.9645, -1.0],
            theta2=[0.30, 0.05, 0.78, 0.70, 0.95, -0.8],
            nbins=5,
            N=256,
            mdata="m_data__256N_10ms_27gpa_0.26se.npy",
        ),
        "s128": dict(
            model=s128.lensingLogNormal,
            kwargs=dict(N=128, map_size=5, gal_per_arcmin2=30, sigma_e=0.2),
            names=["omega_c", "sigma_8"],
            theta=[0.3, 0.8],
            theta2=[0.25, 0.85],
            nbins=1,
            N=128,
            mdata="m_data__128N_5ms_30gpa_0.2se.npy",
        ),
    }


def main():
    jax.config.update("jax_enable_x64", True)
    import jax_cosmo as jc
    from numpyro import handlers
    from numpyro.infer.util import log_density

    lsst, s128 = load_simulators()

    rec = Recorder()
    orig_acl = jc.angular_cl.angular_cl
    jc.angular_cl.angular_cl = rec.wrap(
        "acl", orig_acl, lambda a, o: (np.asarray(a[1]), np.asarray(o))
    )
    for mod in (lsst, s128):
        mod.shift_fn = rec.wrap("shift", mod.shift_fn, lambda a, o: np.asarray(o))
        mod.make_lognormal_power_map = rec.wrap(
            "cg", mod.make_lognormal_power_map, lambda a, o: np.asarray(o)
        )

    res = {}

    setups = make_setups(lsst, s128)

    for tag, s in setups.items():
        P = tag + "_"
        N, nb = s["N"], s["nbins"]
        z = latent_z(nb, N)
        z_site = z if tag == "lsst" else z[0]
        y = jnp.asarray(np.load(DATA / s["mdata"]), dtype=jnp.float64)
        model = s["model"]
        kw = s["kwargs"]

        def params_of(theta_vec, zz):
            d = {n: theta_vec[k] for k, n in enumerate(s["names"])}
            d["z"] = zz
            return d

        for suffix, th in (("", s["theta"]), ("2", s["theta2"])):
            th = np.asarray(th, dtype=np.float64)
            res[P + "theta" + suffix] = th
            # --- eager noiseless forward with recording
            rec.log = {}
            rec.on = True
            cond = handlers.condition(
                handlers.seed(model, jax.random.PRNGKey(0)),
                data=params_of(jnp.asarray(th), jnp.asarray(z_site)),
            )
            kappa = np.asarray(cond(with_noise=False, **kw))
            rec.on = False
            assert len(rec.log["acl"]) == 1 and len(rec.log["shift"]) == 1
            ell, cl = rec.log["acl"][0]
            if tag == "s128":
                kappa = kappa[:, :, None]
                cl = cl.reshape(1, -1)
            else:
                kappa = kappa[:NROWS]
            if suffix == "":
                res[P + "ell"] = ell
            else:
                assert np.array_equal(res[P + "ell"], ell)
            res[P + "cl" + suffix] = cl
            res[P + "shift" + suffix] = np.atleast_1d(rec.log["shift"][0])
            res[P + "kappa" + suffix] = kappa
            if suffix == "":
                cg = rec.log["cg"]
                if tag == "lsst":
                    assert len(cg) == 15
                    res[P + "power_row0"] = np.stack([cg[0][:4], cg[4][:4]])
                else:
                    assert len(cg) == 1
                    res[P + "power_row0"] = cg[0]

            # --- log joint density (constrained space) and gradients
            def logp_fn(theta_vec, zz):
                d = params_of(theta_vec, zz)
                d["y"] = y
                return log_density(model, (), kw, d)[0]

            vg = jax.jit(jax.value_and_grad(logp_fn, argnums=(0, 1)))
            lp, (gth, gz) = vg(jnp.asarray(th), jnp.asarray(z_site))
            gz = np.asarray(gz).reshape(nb, N, N)
            res[P + "logp" + suffix] = np.float64(lp)
            res[P + "grad_theta" + suffix] = np.asarray(gth)
            res[P + "grad_z_rows" + suffix] = gz[:, :NROWS, :]
            print(f"{tag}{suffix}: logp={float(lp):.10g} grad_theta={np.asarray(gth)}")

        if tag == "lsst":
            nz = jc.redshift.smail_nz(2, 0.68, 0.11, gals_per_arcmin2=27)
            bins = lsst.subdivide(nz, nbins=5, zphot_sigma=0.05)
            zb = [float(bins[0].params[1])] + [float(b.params[2]) for b in bins]
            zgrid = np.linspace(0.0, 4.0, 401)
            res["lsst_zbounds"] = np.asarray(zb)
            res["lsst_nz_z"] = zgrid
            res["lsst_nz"] = np.stack([np.asarray(b(jnp.asarray(zgrid))) for b in bins])
            res["lsst_ngal"] = np.asarray([float(b.gals_per_arcmin2) for b in bins])

    jc.angular_cl.angular_cl = orig_acl
    res = {k: np.asarray(v, dtype=np.float64) for k, v in res.items()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez(OUT, **res)  # uncompressed: the Rust zip reader has no deflate
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    for k in sorted(res):
        print(f"  {k:24s} {res[k].shape}")


if __name__ == "__main__":
    main()
