//! cosmodiff-cosmo
