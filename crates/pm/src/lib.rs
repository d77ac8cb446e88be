//! cosmodiff-pm
