//! Timing of the catalogue kernels for `bench/halos/run.sh` (a benchmark,
//! not a test): best wall time of `REPEAT` runs after one warm-up, on
//! points read from a float64 `.npy` `[N, 3]` (Mpc/h, in `[0, L)`).
//!
//! ```text
//! cargo run --release -p cosmodiff-catalog --example bench -- fof POS.npy L B [OUT.npy]
//! cargo run --release -p cosmodiff-catalog --example bench -- xi  POS.npy L e0,e1,... [OUT.npy]
//! ```
//!
//! `fof` writes each particle's group label (smallest member index, int64)
//! to `OUT.npy`; `xi` writes the pair counts (each pair once, float64).
//! Prints one JSON line: `{"kernel", "n", "threads", "best_s", "runs_s"}`.

use cosmodiff_catalog::fof::fof_labels;
use cosmodiff_catalog::pairs::pair_counts;
use ndarray::Array2;
use std::time::Instant;

const REPEAT: usize = 3;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 5 {
        eprintln!(
            "usage: bench fof POS.npy L B [OUT.npy] | bench xi POS.npy L e0,e1,... [OUT.npy]"
        );
        std::process::exit(2);
    }
    let pos: Array2<f64> = ndarray_npy::read_npy(&a[2]).expect("positions: float64 [N, 3] .npy");
    assert_eq!(pos.shape()[1], 3, "positions: [N, 3]");
    let pts: Vec<[f64; 3]> = pos.rows().into_iter().map(|r| [r[0], r[1], r[2]]).collect();
    let l: f64 = a[3].parse().expect("box size");
    cosmodiff_catalog::check_positions(&pts, l).expect("positions in [0, L)");
    let n = pts.len();
    let mut runs = Vec::new();
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    match a[1].as_str() {
        "fof" => {
            let b: f64 = a[4].parse().expect("linking length b");
            let link = b * l / (n as f64).cbrt();
            let mut labels = fof_labels(&pts, l, link); // warm-up
            for _ in 0..REPEAT {
                runs.push(time(&mut || labels = fof_labels(&pts, l, link)));
            }
            if let Some(out) = a.get(5) {
                let v = ndarray::Array1::from(labels.iter().map(|&x| x as i64).collect::<Vec<_>>());
                ndarray_npy::write_npy(out, &v).expect("write labels");
            }
        }
        "xi" => {
            let edges: Vec<f64> = a[4].split(',').map(|e| e.parse().expect("edge")).collect();
            let mut dd = pair_counts(&pts, None, l, &edges).expect("pair counts");
            for _ in 0..REPEAT {
                runs.push(time(&mut || {
                    dd = pair_counts(&pts, None, l, &edges).expect("pair counts")
                }));
            }
            if let Some(out) = a.get(5) {
                ndarray_npy::write_npy(out, &ndarray::Array1::from(dd)).expect("write counts");
            }
        }
        k => panic!("unknown kernel {k}: fof or xi"),
    }
    let best = runs.iter().cloned().fold(f64::INFINITY, f64::min);
    println!(
        "{{\"kernel\": \"{}\", \"n\": {n}, \"threads\": {}, \"best_s\": {best:.6}, \"runs_s\": {runs:?}}}",
        a[1],
        rayon::current_num_threads()
    );
}
