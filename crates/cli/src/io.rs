//! .npy/.npz helpers.
