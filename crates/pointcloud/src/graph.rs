//! Batched periodic k-nearest-neighbour graphs of point clouds.
//!
//! Each valid node `i` receives `k` edges from its `k` nearest valid
//! neighbours (minimum image in a periodic box, the search of
//! [`cosmodiff_catalog::knn::nearest_neighbours`], O(N log N)). Edges are
//! stored receiver-major: edge `i k + e` ends at node `i`, so a message
//! tensor `[nodes, k, H]` sums over its middle axis without a scatter.
//! Padding nodes (mask 0) receive `k` self-loops and send nothing to valid
//! nodes.

use cosmodiff_nn::burn;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::{invalid, Result};

/// The senders of a batch of graphs, receiver-major.
#[derive(Clone, Debug)]
pub struct KnnGraph {
    /// `[B N k]` global sender indices (`b N + j`).
    pub senders: Tensor<1, Int>,
    /// Neighbours per node.
    pub k: usize,
}

/// Wrap `x` into `[0, box_size)`.
fn wrap(x: f64, box_size: f64) -> f64 {
    let w = x - box_size * (x / box_size).floor();
    if w >= box_size {
        0.0
    } else {
        w
    }
}

/// The kNN graph of positions `pos` (row-major `[B, N, 3]`, any real
/// numbers, wrapped into the box) with `mask` `[B, N]` (row-major, 1 valid).
/// Every cloud needs more than `k` valid points.
pub fn knn_graph(
    pos: &[f64],
    mask: &[f64],
    batch: usize,
    n: usize,
    k: usize,
    box_size: f64,
    device: &Device,
) -> Result<KnnGraph> {
    let mut senders = vec![0i64; batch * n * k];
    for b in 0..batch {
        let valid: Vec<usize> = (0..n).filter(|&i| mask[b * n + i] > 0.5).collect();
        if valid.len() <= k {
            return invalid(format!(
                "a point cloud has {} valid points, fewer than k + 1 = {}",
                valid.len(),
                k + 1
            ));
        }
        let pts: Vec<[f64; 3]> = valid
            .iter()
            .map(|&i| [0, 1, 2].map(|a| wrap(pos[(b * n + i) * 3 + a], box_size)))
            .collect();
        let near = cosmodiff_catalog::knn::nearest_neighbours(&pts, box_size, k);
        for i in 0..n {
            let row = &mut senders[(b * n + i) * k..(b * n + i + 1) * k];
            row.fill((b * n + i) as i64);
        }
        for (vi, list) in valid.iter().zip(&near) {
            let row = &mut senders[(b * n + vi) * k..(b * n + vi + 1) * k];
            for (slot, &(j, _)) in row.iter_mut().zip(list) {
                *slot = (b * n + valid[j as usize]) as i64;
            }
        }
    }
    let len = senders.len();
    Ok(KnnGraph {
        senders: Tensor::from_data(TensorData::new(senders, [len]), device),
        k,
    })
}

/// Minimum-image displacements `x_j - x_i` `[B N, k, 3]` along the edges of
/// `graph` for positions `pos` `[B N, 3]`, differentiable in `pos`.
pub fn displacements(pos: Tensor<2>, graph: &KnnGraph, box_size: f64) -> Tensor<3> {
    let [nodes, _] = pos.dims();
    let from = pos
        .clone()
        .select(0, graph.senders.clone())
        .reshape([nodes, graph.k, 3]);
    let d = from - pos.reshape([nodes, 1, 3]);
    d.clone() - (d / box_size).round() * box_size
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmodiff_nn::tensor::{default_device, to_vec};

    #[test]
    fn graphs_are_periodic_per_cloud_and_padding_points_to_itself() {
        let dev = default_device();
        // two clouds of four points on the x axis of a box of side 10;
        // the second has one padding point
        let xs = [0.5, 2.0, 9.5, 5.0, 1.0, 3.0, -4.0, 0.0];
        let pos: Vec<f64> = xs.iter().flat_map(|&x| [x, 0.0, 0.0]).collect();
        let mask = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
        let g = knn_graph(&pos, &mask, 2, 4, 1, 10.0, &dev).unwrap();
        let s: Vec<i64> = g.senders.clone().into_data().iter::<i64>().collect();
        // 0.5's nearest is 9.5 (distance 1); -4 wraps to 6, nearest 3
        assert_eq!(s, vec![2, 0, 0, 1, 5, 4, 5, 7]);
        let p = Tensor::<2>::from_data(
            TensorData::new(pos.iter().map(|&v| v as f32).collect::<Vec<_>>(), [8, 3]),
            &dev,
        );
        let d = to_vec(displacements(p, &g, 10.0));
        assert_eq!(d[0], -1.0);
        assert_eq!(d[18], -3.0, "-4 -> 3 is -3 (not +7) in a box of 10");
        assert!(knn_graph(&pos, &mask, 2, 4, 3, 10.0, &dev).is_err());
    }
}
