//! `cosmodiff nn bench` and `--device`: every device of the build is timed,
//! ratios appear against a twin's JSON, bad devices and workloads are
//! refused in one line.

mod common;
use common::{bin, fails, run};

#[test]
fn nn_bench_times_each_device_and_compares_with_the_twin() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let twin = serde_json::json!({
        "tool": "torch (made up)",
        "nsf_two_moons": {"train_per_s": 1000.0, "eval_s": 0.01, "params": 60925},
    });
    std::fs::write(d.join("torch.json"), twin.to_string()).unwrap();
    let mut c = bin();
    c.current_dir(d).args([
        "nn",
        "bench",
        "--workloads",
        "nsf_two_moons",
        "--steps",
        "1",
        "--evals",
        "1",
        "--torch-json",
        "torch.json",
        "--json",
        "ours.json",
    ]);
    let o = c.output().unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        table.contains("pytorch") && table.contains("nsf_two_moons  flex"),
        "{table}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("ours.json")).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let devices: Vec<&str> = rows.iter().map(|r| r["device"].as_str().unwrap()).collect();
    // every device compiled in: at least the two CPU ones
    assert!(devices.starts_with(&["cpu", "flex"]), "{devices:?}");
    for r in rows {
        let per_s = r["train_per_s"].as_f64().unwrap();
        assert!(per_s > 0.0 && per_s.is_finite(), "{r}");
        let ratio = r["train_vs_torch"].as_f64().unwrap();
        assert!((ratio - per_s / 1000.0).abs() < 1e-9 * ratio, "{r}");
        let ratio = r["eval_vs_torch"].as_f64().unwrap();
        assert!(
            (ratio - 0.01 / r["eval_s"].as_f64().unwrap()).abs() < 1e-9 * ratio,
            "{r}"
        );
        assert_eq!(
            r["params"], rows[0]["params"],
            "same network on each device"
        );
    }
    // bad inputs: one line, exit 2
    fails(
        bin().args(["nn", "bench", "--workloads", "resnet"]),
        "unknown workload 'resnet'; expected one of unet64",
    );
    fails(
        bin().args(["nn", "bench", "--devices", "tpu"]),
        "unknown device 'tpu'",
    );
    fails(
        bin().args(["nn", "bench", "--steps", "0"]),
        "must be at least 1",
    );
    std::fs::write(
        d.join("bad.json"),
        r#"{"nsf_two_moons": {"train_per_s": -1, "eval_s": 1}}"#,
    )
    .unwrap();
    fails(
        bin()
            .current_dir(d)
            .args(["nn", "bench", "--torch-json", "bad.json"]),
        "nsf_two_moons.train_per_s must be a positive number",
    );
}

#[test]
fn the_device_comes_from_the_flag_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    // the environment variable is read as --device is, and checked the same way
    let mut c = bin();
    c.env("COSMODIFF_DEVICE", "tpu")
        .current_dir(dir.path())
        .args(["nn", "bench"]);
    fails(
        &mut c,
        "unknown device 'tpu'; this build supports: cpu, flex",
    );
    let mut c = bin();
    c.env("COSMODIFF_DEVICE", "flex").args([
        "--device",
        "cpu",
        "nn",
        "bench",
        "--workloads",
        "nsf_two_moons",
        "--devices",
        "cpu",
        "--steps",
        "1",
        "--evals",
        "1",
    ]);
    run(&mut c);
}
