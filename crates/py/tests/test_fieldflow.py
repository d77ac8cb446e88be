"""TRENF field flows from Python: the same workflow functions as
``cosmodiff fieldflow`` (crates/pipeline/src/fieldflow.rs), checked for
their interface and against the CLI's numbers."""
import json
import subprocess

import numpy as np
import pytest

import cosmodiff
from conftest import find_cli


def _boxes(path, n=10, side=8):
    rng = np.random.default_rng(3)
    theta = np.column_stack([np.linspace(0.2, 0.4, n), np.linspace(0.7, 0.9, n)])
    field = rng.normal(size=(n, side, side, side)) * theta[:, 1, None, None, None]
    np.savez(path, theta=theta, theta_names=np.array(["Omega_m", "sigma8"]), field=field)
    return field, theta


def test_train_logprob_infer_on_boxes(tmp_path):
    field, theta = _boxes(tmp_path / "boxes.npz")
    cfg = tmp_path / "small.toml"
    cfg.write_text("[flow]\nlayers = 1\nknots = 6\n[train]\nepochs = 2\nbatch_size = 4\n")
    report = cosmodiff.fieldflow_train(str(tmp_path / "boxes.npz"), str(tmp_path / "model"), config=str(cfg))
    assert report["epochs"] == 2 and report["n_fields"] == 10
    meta = json.loads((tmp_path / "model" / "fieldflow.json").read_text())
    assert meta["theta_names"] == ["Omega_m", "sigma8"]
    lp = cosmodiff.fieldflow_logprob(str(tmp_path / "model"), field[0], [0.3, 0.8])
    assert abs(lp["logprob"] - lp["logdet"] - lp["base_logprob"]) < 1e-6 * abs(lp["logprob"])
    # The CLI gives the same number from the same files.
    np.save(tmp_path / "box.npy", field[0])
    exe = find_cli()
    if exe is not None:
        subprocess.run(
            [str(exe), "fieldflow", "logprob", "--model", str(tmp_path / "model"), "--field",
             str(tmp_path / "box.npy"), "--theta", "0.3,0.8", "--out", str(tmp_path / "lp.json")],
            check=True,
        )
        assert json.loads((tmp_path / "lp.json").read_text())["logprob"] == lp["logprob"]
    with pytest.raises(cosmodiff.CosmodiffError, match="outside the training range"):
        cosmodiff.fieldflow_logprob(str(tmp_path / "model"), field[0], [0.9, 0.8])
    with pytest.raises(cosmodiff.CosmodiffError, match="trained on"):
        cosmodiff.fieldflow_logprob(str(tmp_path / "model"), field[0, 0], [0.3, 0.8])
    r = cosmodiff.fieldflow_infer(str(tmp_path / "model"), str(tmp_path / "box.npy"), str(tmp_path / "post"),
                                  samples=20, seed=1)
    assert r["samples"].shape == (20, 2)
    assert r["summary"]["names"] == ["Omega_m", "sigma8"]
    assert (tmp_path / "post" / "summary.json").exists()


def test_density_campaign_fisher_and_calibration(tmp_path):
    cfg = tmp_path / "campaign.toml"
    cfg.write_text(
        "[box]\nn_particles = 8\nn_mesh = 8\nbox_size = 128.0\n[steps]\nn = 4\n"
        "[design]\nkind = \"latin_hypercube\"\nn = 20\nOmega_m = [0.2, 0.4]\nsigma8 = [0.7, 0.9]\n"
    )
    cosmodiff.simulate_density(str(cfg), str(tmp_path / "boxes"))
    z = np.load(tmp_path / "boxes" / "fields.npz")
    assert z["field"].shape == (20, 8, 8, 8) and list(z["theta_names"]) == ["Omega_m", "sigma8"]
    small = tmp_path / "small.toml"
    small.write_text("[flow]\nlayers = 1\nknots = 6\n[train]\nepochs = 2\nbatch_size = 4\n")
    model = str(tmp_path / "model")
    cosmodiff.fieldflow_train(str(tmp_path / "boxes" / "fields.npz"), model, config=str(small))
    f = cosmodiff.fieldflow_fisher(model, [0.3, 0.8], str(tmp_path / "fisher.json"), samples=3)
    assert f["fisher"].shape == (2, 2) and f["fisher"][0, 1] == f["fisher"][1, 0]
    assert f["summary"]["names"] == ["Omega_m", "sigma8"]
    c = cosmodiff.fieldflow_calibrate(model, str(tmp_path / "boxes" / "fields.npz"), str(tmp_path / "cal"),
                                      grid=5, max_fields=3)
    assert c["n_fields"] == 3 and set(c["coverage_68"]) == {"Omega_m", "sigma8"}
    assert (tmp_path / "cal" / "per_field.csv").exists()
    with pytest.raises(cosmodiff.CosmodiffError, match="outside the training range"):
        cosmodiff.fieldflow_fisher(model, [0.9, 0.8], str(tmp_path / "bad.json"))
    # a folder of another run is refused, --overwrite replaces it
    with pytest.raises(cosmodiff.CosmodiffError, match="pass --overwrite"):
        cosmodiff.fieldflow_calibrate(model, str(tmp_path / "boxes" / "fields.npz"), str(tmp_path / "cal"),
                                      grid=5, max_fields=2)
    c = cosmodiff.fieldflow_calibrate(model, str(tmp_path / "boxes" / "fields.npz"), str(tmp_path / "cal"),
                                      grid=5, max_fields=2, overwrite=True)
    assert c["n_fields"] == 2
    manifest = json.loads((tmp_path / "cal" / "cosmodiff-run.json").read_text())
    assert manifest["command"] == "fieldflow calibrate" and manifest["status"] == "finished"
