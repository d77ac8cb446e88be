//! cosmodiff-field
