"""The public surface: every exported name exists and is documented; arrays
come back as float64 numpy arrays that own Rust's buffers."""

import numpy as np

import cosmodiff as cd


def test_exports_are_documented():
    assert cd.__doc__ and "Mpc/h" in cd.__doc__
    for name in cd.__all__:
        obj = getattr(cd, name)
        assert obj.__doc__ and len(obj.__doc__.strip()) > 10, name
    assert issubclass(cd.CosmodiffError, ValueError)
    assert isinstance(cd.__version__, str)


def test_inputs_accept_lists_scalars_and_views():
    c = cd.Cosmology()
    a = np.linspace(0.2, 1.0, 10)
    full = cd.comoving_distance(c, a)
    np.testing.assert_array_equal(cd.comoving_distance(c, list(a)), full)
    np.testing.assert_array_equal(cd.comoving_distance(c, a[::2]), full[::2])  # non-contiguous view
    np.testing.assert_array_equal(cd.comoving_distance(c, a.astype(np.float32)), cd.comoving_distance(c, a.astype(np.float32).astype(float)))
    assert isinstance(cd.hubble(c, 1), float)
    out = cd.pk_linear(c, [0.1], [0.0])
    assert out.dtype == np.float64 and out.flags.c_contiguous and out.flags.writeable
    nz = cd.smail_nz(1, 2, 1)
    assert isinstance(nz(0.5), float) and nz([0.5, 1.0]).shape == (2,)


def test_a_rust_panic_is_one_line_cosmodiff_error():
    import pytest

    with pytest.raises(cd.CosmodiffError, match=r"internal error in cosmodiff\._panic_for_tests: boom second line; please report"):
        cd._core._panic_for_tests("boom\nsecond line")


def test_memory_limit_refuses_big_runs(tmp_path):
    import pytest

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        "[box]\nn_particles = 32\nn_mesh = 64\n[design]\nn = 2\nOmega_m = [0.2, 0.4]\nsigma8 = [0.7, 0.9]\n"
    )
    cd.set_max_memory("10M")
    try:
        with pytest.raises(cd.CosmodiffError, match="more than --max-memory 10.0 MiB"):
            cd.simulate_density(str(cfg), str(tmp_path / "boxes"))
    finally:
        cd.set_max_memory(None)
    assert not (tmp_path / "boxes").exists()
    with pytest.raises(cd.CosmodiffError, match="unknown unit"):
        cd.set_max_memory("3 parsecs")


def test_device_selection():
    import subprocess
    import sys

    import pytest

    assert cd.devices()[:2] == ["cpu", "flex"]
    assert cd.device() == "cpu"
    try:
        assert cd.set_device("FLEX") == "flex"
        assert cd.device() == "flex"
    finally:
        cd.set_device("cpu")
    assert cd.device() == "cpu"
    with pytest.raises(cd.CosmodiffError, match=r"unknown device 'tpu'; this build supports: cpu, flex"):
        cd.set_device("tpu")
    if "cuda" not in cd.devices():
        with pytest.raises(cd.CosmodiffError, match="not compiled into this build"):
            cd.set_device("cuda")
    # the environment variable is read at import, as the command line reads it
    env = dict(__import__("os").environ, COSMODIFF_DEVICE="flex")
    out = subprocess.run(
        [sys.executable, "-c", "import cosmodiff; print(cosmodiff.device())"], env=env, capture_output=True, text=True
    )
    assert out.stdout.strip() == "flex", out.stderr
    env["COSMODIFF_DEVICE"] = "tpu"
    out = subprocess.run([sys.executable, "-c", "import cosmodiff"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "unknown device 'tpu'" in out.stderr
