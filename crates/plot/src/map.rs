//! 2-D maps (convergence, shear, residuals) drawn side by side with a shared
//! colour scale. (Owned by the field/lensing work; extended there.)
