//! Implicit inference on the sbi_lens 128^2 set-up in CI-sized form: a VMIM
//! ResNet compressor trained with its flow on 2,000 simulations for a few
//! epochs, then NPE on the frozen summaries.
//!
//! - Calibration (the TARP criterion, mean |ECP(alpha) - alpha| <=
//!   0.03): on 500 fresh simulations rather than 200, because the statistic
//!   of a perfectly calibrated posterior is itself ~0.022 +- 0.01 on 200
//!   (the mean absolute deviation of an empirical CDF), ~0.014 on 500.
//! - Informative: calibration alone would be passed by the prior, so the
//!   posterior of the observed benchmark map must be at most 0.6 times as
//!   wide as the prior (N(0.3, 0.05), N(0.8, 0.05)) in each parameter (the
//!   full-field posterior is ~0.25 times as wide) and within 3 sd of the
//!   reference full-field posterior's mean.

use cosmodiff_pipeline::lensing_cosmology::implicit::{
    simulate_training_set, train, Compression, ImplicitOptions,
};
use cosmodiff_pipeline::lensing_cosmology::{run::read_maps, FieldModel, Setup, SetupName};
use cosmodiff_sbi::Method;
use ndarray::Axis;
use std::path::Path;

#[test]
fn vmim_posterior_is_calibrated_and_informative() {
    let model = FieldModel::new(Setup::new(SetupName::SbiLens128).unwrap()).unwrap();
    let (theta, x) = simulate_training_set(&model, 2000, 1).unwrap();
    let mut opts = ImplicitOptions::new(Compression::Vmim, Method::Npe);
    opts.train.max_epochs = 8;
    opts.progress = false;
    let trained = train(&model, theta.view(), x.view(), &opts).unwrap();
    assert_eq!(trained.n_simulations, 2000);

    let cal = trained.coverage(&model, 500, 500, 7).unwrap();
    println!(
        "TARP on 500: mean |ECP - alpha| {:.4}, max {:.4}, ATC {:.4}",
        cal.tarp.mean_deviation, cal.tarp.max_deviation, cal.tarp.atc
    );
    assert!(
        cal.tarp.mean_deviation <= 0.03,
        "mean |ECP - alpha| = {}",
        cal.tarp.mean_deviation
    );

    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/sbi_lens");
    let data = read_maps(
        &shared.join("m_data__128N_5ms_30gpa_0.2se.npy"),
        &model.setup,
    )
    .unwrap();
    let draws = trained.posterior(&data, 4000, 3).unwrap();
    let mean = draws.mean_axis(Axis(0)).unwrap();
    let sd = draws.std_axis(Axis(0), 1.0);
    let reference = cosmodiff_pipeline::io::read_float_npy(
        &shared.join("posterior_full_field__128N_5ms_30gpa_0.2se.npy"),
        "reference",
    )
    .unwrap();
    println!("VMIM posterior: mean {mean}, sd {sd}");
    for k in 0..2 {
        let r = reference.index_axis(Axis(1), k);
        let rm = r.mean().unwrap();
        assert!(
            sd[k] < 0.6 * 0.05,
            "parameter {k}: sd {} vs prior 0.05",
            sd[k]
        );
        assert!(
            (mean[k] - rm).abs() < 3.0 * sd[k],
            "parameter {k}: mean {} vs full-field {rm} (sd {})",
            mean[k],
            sd[k]
        );
    }
}
