//! cosmodiff-lensing
