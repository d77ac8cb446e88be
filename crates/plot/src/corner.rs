//! Corner plots of posterior draws: 1-D marginal histograms on the diagonal
//! and 68/95% highest-density contours below it. (Owned by the infer work.)
