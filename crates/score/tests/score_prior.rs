//! Denoising score matching recovers a known score; model directories
//! round-trip.

use cosmodiff_field::grf2::Grf2;
use cosmodiff_field::{ClTable, Grid2};
use cosmodiff_lensing::score::{GaussianScore, MapScore};
use cosmodiff_nn::UNetConfig;
use cosmodiff_score::train::dihedral;
use cosmodiff_score::{train_score, ScoreModel, ScoreTrainConfig, SdeConfig};

/// burn's device RNG (weight initialisation) is process-wide: the training
/// tests run one at a time so each sees its own seeded stream.
static TRAINING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn gaussian_maps(n_maps: usize) -> (Grid2, ClTable, Vec<Vec<f64>>) {
    let grid = Grid2::new(16, 4.0).unwrap();
    let ell: Vec<f64> = (0..120).map(|i| 20.0 * 1.05f64.powi(i)).collect();
    let cl: Vec<f64> = ell.iter().map(|l| 1e-9 * (l / 1000.0).powf(-1.0)).collect();
    let table = ClTable::new(ell, cl).unwrap();
    let g = Grf2::from_cl(grid, &table).unwrap();
    let maps = (0..n_maps).map(|i| g.sample(100 + i as u64)).collect();
    (grid, table, maps)
}

fn rel_err(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        for (u, v) in x.iter().zip(y) {
            num += (u - v) * (u - v);
            den += v * v;
        }
    }
    (num / den).sqrt()
}

#[test]
fn dihedral_maps_are_the_eight_symmetries() {
    let n = 3;
    let m: Vec<f64> = (0..9).map(|v| v as f64).collect();
    let all: Vec<Vec<f64>> = (0..8).map(|k| dihedral(&m, n, k)).collect();
    for i in 0..8 {
        for j in 0..i {
            assert_ne!(all[i], all[j], "symmetries {i} and {j} coincide");
        }
        let mut s = all[i].clone();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(s, m, "a symmetry permutes pixels");
    }
    assert_eq!(all[0], m);
}

#[test]
fn score_matching_learns_the_gaussian_score() {
    let _serial = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    // Non-hybrid: the network alone must learn the score of Gaussian maps.
    let (grid, table, maps) = gaussian_maps(256);
    let cfg = ScoreTrainConfig {
        unet: UNetConfig {
            in_channels: 1,
            channels: vec![16, 32],
            embed_dim: 32,
        },
        sde: SdeConfig::Ve {
            sigma_min: 0.05,
            sigma_max: 10.0,
        },
        hybrid: false,
        batch_size: 32,
        steps: 400,
        learning_rate: 2e-3,
        seed: 0,
        progress: false,
        checkpoint: None,
    };
    let model = train_score(&maps, grid.n, grid.pixel_arcmin, &cfg).unwrap();
    let exact = GaussianScore::new(grid, table.on_grid(&grid)).unwrap();
    let test: Vec<Vec<f64>> = gaussian_maps(300).2[256..].to_vec();
    let d = model.config.data_std;
    let untrained = ScoreModel::init(model.config.clone(), 1).unwrap();
    for sigma_n in [0.3, 1.0, 3.0] {
        let sigma = sigma_n * d;
        let noisy: Vec<Vec<f64>> = test
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let z = cosmodiff_field::grf2::white_noise(m.len(), 7 + i as u64);
                m.iter().zip(z).map(|(a, e)| a + sigma * e).collect()
            })
            .collect();
        let s_true = exact.score(&noisy, sigma).unwrap();
        let e = rel_err(&model.score(&noisy, sigma).unwrap(), &s_true);
        let e0 = rel_err(&untrained.score(&noisy, sigma).unwrap(), &s_true);
        eprintln!("sigma = {sigma_n} data std: relative score error {e:.3} (untrained {e0:.3})");
        assert!(e < 0.25, "sigma {sigma_n}: relative error {e}");
        assert!(e < 0.5 * e0);
    }
}

#[test]
fn model_directory_round_trips() {
    let _serial = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let (grid, _, maps) = gaussian_maps(8);
    let cfg = ScoreTrainConfig {
        unet: UNetConfig {
            in_channels: 1,
            channels: vec![8, 8],
            embed_dim: 8,
        },
        steps: 2,
        batch_size: 4,
        ..Default::default()
    };
    let model = train_score(&maps, grid.n, grid.pixel_arcmin, &cfg).unwrap();
    let dir = std::env::temp_dir().join(format!("cosmodiff-score-rt-{}", std::process::id()));
    model.save(&dir).unwrap();
    let back = ScoreModel::load(&dir).unwrap();
    let s = 0.5 * model.config.data_std;
    let a = model.score(&maps[..2], s).unwrap();
    let b = back.score(&maps[..2], s).unwrap();
    assert_eq!(a, b);
    assert_eq!(back.config, model.config);
    // A damaged config is refused with a short message, not silently used.
    let json = std::fs::read_to_string(dir.join("score_model.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["radial_power"] = serde_json::json!([1.0]);
    std::fs::write(dir.join("score_model.json"), v.to_string()).unwrap();
    let e = ScoreModel::load(&dir).unwrap_err().to_string();
    assert!(e.contains("radial_power"), "{e}");
    // a map size past the grid limit: an error, not a panic in the power table
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["side"] = serde_json::json!(1_000_000);
    std::fs::write(dir.join("score_model.json"), v.to_string()).unwrap();
    let e = ScoreModel::load(&dir).unwrap_err().to_string();
    assert!(e.contains("too large"), "{e}");
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["unet"]["embed_dim"] = serde_json::json!(16);
    std::fs::write(dir.join("score_model.json"), v.to_string()).unwrap();
    let e = ScoreModel::load(&dir).unwrap_err().to_string();
    assert!(e.contains("does not match") && e.len() < 400, "{e}");
    std::fs::remove_dir_all(&dir).ok();
    assert!(ScoreModel::load(&dir).is_err());
    // Maps too large for float64 statistics.
    let huge: Vec<Vec<f64>> = maps
        .iter()
        .map(|m| m.iter().map(|v| v * 1e300).collect())
        .collect();
    let e = train_score(&huge, grid.n, grid.pixel_arcmin, &cfg)
        .unwrap_err()
        .to_string();
    assert!(e.contains("too large"), "{e}");
    // Noise levels far outside the maps' scale are refused before training.
    for (lo, hi) in [(1e-300, 50.0), (0.005, 1e300)] {
        let bad = ScoreTrainConfig {
            sde: SdeConfig::Ve {
                sigma_min: lo,
                sigma_max: hi,
            },
            ..cfg.clone()
        };
        let e = train_score(&maps, grid.n, grid.pixel_arcmin, &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[sde]"), "{e}");
    }
}
